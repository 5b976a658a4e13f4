// Package tenant is the tenant domain model: identity, lifecycle status, type and the
// permissions a type may hold. It has no I/O; stores and the API build on it.
package tenant

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// ID rules: a lowercase slug of 3 to 40 characters, starting with a letter, ending with a letter
// or digit. The bound keeps the per-tenant MongoDB database name ("tenant_" + id) well inside
// MongoDB's 64-byte limit, and the alphabet keeps ids free of glob characters (Redis MATCH),
// dots and slashes (database names, paths).
const (
	IDMinLen = 3
	IDMaxLen = 40
)

// ErrInvalidID is returned by ValidateID; the message says which rule failed.
var ErrInvalidID = errors.New("invalid tenant id")

// validIDChars is ^[a-z][a-z0-9-]*[a-z0-9]$ as a loop: the check runs on every tenant-scoped
// call (tenant.IDFrom), where a regexp costs more than the work it guards.
func validIDChars(id string) bool {
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' || c == '-':
			if i == 0 || (c == '-' && i == len(id)-1) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// ValidateID checks a tenant id against the rules above.
func ValidateID(id string) error {
	switch {
	case len(id) < IDMinLen || len(id) > IDMaxLen:
		return fmt.Errorf("%w: must be %d to %d characters", ErrInvalidID, IDMinLen, IDMaxLen)
	case !validIDChars(id):
		return fmt.Errorf("%w: use lowercase letters, digits and hyphens, starting with a letter and not ending with a hyphen", ErrInvalidID)
	}
	return nil
}

// Status is a tenant's lifecycle status. Only lifecycle workflows move it past Pending.
type Status string

const (
	StatusPending     Status = "pending"
	StatusOnboarding  Status = "onboarding"
	StatusActive      Status = "active"
	StatusSuspended   Status = "suspended"
	StatusOffboarding Status = "offboarding"
	StatusOffboarded  Status = "offboarded"
	StatusFailed      Status = "failed"
)

// Statuses lists every status, in lifecycle order.
var Statuses = []Status{StatusPending, StatusOnboarding, StatusActive, StatusSuspended, StatusOffboarding, StatusOffboarded, StatusFailed}

// Valid reports whether s is a known status.
func (s Status) Valid() bool { return slices.Contains(Statuses, s) }

// Type is a tenant's commercial type; it bounds which permissions the tenant may hold.
type Type string

const (
	TypeOwner      Type = "owner"
	TypeEnterprise Type = "enterprise"
	TypeStandard   Type = "standard"
	TypeTrial      Type = "trial"
)

// Types lists every tenant type.
var Types = []Type{TypeOwner, TypeEnterprise, TypeStandard, TypeTrial}

// Valid reports whether t is a known type.
func (t Type) Valid() bool { return slices.Contains(Types, t) }

// Permission is something a tenant may do through the tenant API.
type Permission string

const (
	PermSettingsRead       Permission = "settings:read"
	PermSettingsWrite      Permission = "settings:write"
	PermConversationsRead  Permission = "conversations:read"
	PermConversationsWrite Permission = "conversations:write"
	PermAuditRead          Permission = "audit:read"
)

// Permissions lists every permission.
var Permissions = []Permission{PermSettingsRead, PermSettingsWrite, PermConversationsRead, PermConversationsWrite, PermAuditRead}

// allowedByType is the ceiling of permissions per type: a trial cannot write settings or read
// its audit trail, a standard tenant cannot read its audit trail.
var allowedByType = map[Type][]Permission{
	TypeOwner:      Permissions,
	TypeEnterprise: Permissions,
	TypeStandard:   {PermSettingsRead, PermSettingsWrite, PermConversationsRead, PermConversationsWrite},
	TypeTrial:      {PermSettingsRead, PermConversationsRead, PermConversationsWrite},
}

// DefaultPermissions are granted when a registration names none: the type's whole ceiling.
func DefaultPermissions(t Type) []Permission { return slices.Clone(allowedByType[t]) }

// CheckPermissions returns an error naming the first permission that is unknown or above the
// type's ceiling.
func CheckPermissions(t Type, perms []Permission) error {
	for _, p := range perms {
		if !slices.Contains(Permissions, p) {
			return fmt.Errorf("unknown permission %q", p)
		}
		if !slices.Contains(allowedByType[t], p) {
			return fmt.Errorf("permission %q is not allowed for tenant type %q", p, t)
		}
	}
	return nil
}

// NeedsApproval reports whether onboarding a tenant of this type waits for an operator's
// approve signal before anything is provisioned: the types whose ceiling holds every
// permission.
func (t Type) NeedsApproval() bool { return t == TypeEnterprise || t == TypeOwner }

// Raises lists what a change from (type from, permissions have) to (type to, permissions want)
// raises: a type whose ceiling allows a permission the old one did not, and each permission
// added. Empty: the change keeps or lowers the tenant's ceiling, and needs no approval.
func Raises(from Type, have []Permission, to Type, want []Permission) []string {
	var out []string
	for _, p := range allowedByType[to] {
		if !slices.Contains(allowedByType[from], p) {
			out = append(out, fmt.Sprintf("type %s to %s", from, to))
			break
		}
	}
	for _, p := range want {
		if !slices.Contains(have, p) {
			out = append(out, "permission "+string(p))
		}
	}
	return out
}

// Tenant is one registered tenant, as stored in the registry. It never holds the tenant secret:
// the secret exists in plain text only in the answer to the request that created it.
type Tenant struct {
	ID               string       `json:"tenantId"`
	SiteID           string       `json:"siteId"`
	Name             string       `json:"tenantName"`
	ContactEmail     string       `json:"contactEmail"`
	WebsiteURL       string       `json:"websiteUrl"`
	BusinessIndustry string       `json:"businessIndustry"`
	AllowedOrigins   []string     `json:"allowedOrigins"`
	Permissions      []Permission `json:"permissions"`
	Type             Type         `json:"tenantType"`
	Status           Status       `json:"status"`
	// StatusReason says why the last lifecycle change happened (e.g. why onboarding failed).
	StatusReason string    `json:"statusReason,omitempty"`
	IsActive     bool      `json:"isActive"`
	CreatedAt    time.Time `json:"createdAt"`
	UpdatedAt    time.Time `json:"updatedAt"`
	// CellID is the cell the tenant's data lives on; empty until onboarding places it.
	CellID string `json:"cellId,omitempty"`
}

// Deletable reports whether the tenant can be removed from the registry outright: only while
// nothing was provisioned for it. Anything past Pending goes through offboarding.
func (t Tenant) Deletable() bool { return t.Status == StatusPending }
