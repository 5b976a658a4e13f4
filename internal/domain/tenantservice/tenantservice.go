// Package tenantservice owns the rules of a tenant's registration, its secret and its profile:
// how a secret is made and sealed, what a registration defaults, which permissions a type
// allows, and that a profile change reaches the Redis context record that request checks read.
// The API's handlers, the operator CLI and the worker's activities call it, so each rule has
// one home.
package tenantservice

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"

	"github.com/misybot/tenancy/internal/domain/registry"
	"github.com/misybot/tenancy/internal/keys/seal"
	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/stores/tenantredis"
)

// Service registers tenants and changes their secret and profile. Safe for concurrent use.
type Service struct {
	registry *registry.Registry
	sealer   *seal.Sealer
	// redis holds the context records; nil in a process without Redis (nothing to refresh).
	redis  *tenantredis.Store
	logger *slog.Logger
}

// New returns a Service over the registry, the master key versions and the context records.
func New(reg *registry.Registry, sealer *seal.Sealer, redis *tenantredis.Store, logger *slog.Logger) *Service {
	return &Service{registry: reg, sealer: sealer, redis: redis, logger: logger}
}

// FieldError is a registration or profile that breaks a rule; Field names the offending field
// as the API spells it (permissions[2]).
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// Normalize applies the profile rules to t in place: an absent permission list is the type's
// whole ceiling, every permission must be within the type's ceiling, and an absent origin list
// is empty. It returns a *FieldError for the first permission out of bounds.
func Normalize(t *tenant.Tenant) error {
	if t.Permissions == nil {
		t.Permissions = tenant.DefaultPermissions(t.Type)
	}
	for i, p := range t.Permissions {
		if err := tenant.CheckPermissions(t.Type, []tenant.Permission{p}); err != nil {
			return &FieldError{Field: fmt.Sprintf("permissions[%d]", i), Message: err.Error()}
		}
	}
	if t.AllowedOrigins == nil {
		t.AllowedOrigins = []string{}
	}
	return nil
}

// Register creates a tenant, pending, with a fresh secret; t is normalized first, and gets a
// random site id when it has none. The plain secret is returned for the caller to show once:
// only its sealed form is stored, and nothing returns it again. registry.ErrExists when the id
// is taken.
func (s *Service) Register(ctx context.Context, t tenant.Tenant) (tenant.Tenant, string, error) {
	if err := tenant.ValidateID(t.ID); err != nil {
		return tenant.Tenant{}, "", &FieldError{Field: "tenantId", Message: err.Error()}
	}
	if err := Normalize(&t); err != nil {
		return tenant.Tenant{}, "", err
	}
	if t.SiteID == "" {
		t.SiteID = newSiteID()
	}
	secret, sealed, err := s.newSecret(t.ID)
	if err != nil {
		return tenant.Tenant{}, "", err
	}
	created, err := s.registry.Create(ctx, registry.NewTenant{Tenant: t, SealedSecret: sealed, SecretKeyVersion: 1})
	if err != nil {
		return tenant.Tenant{}, "", err
	}
	s.logger.Info("tenant registered", "tenant_id", created.ID, "tenant_type", created.Type)
	return created, secret, nil
}

// RotateSecret issues a new secret for a registered tenant, returned for the caller to show
// once; the previous one keeps working until previousValidUntil (now plus overlap; overlap 0
// revokes it at once). Other API processes learn of the rotation through the tenant's Redis
// context record; if that mark cannot be written they may accept the previous secret from
// their cache for up to 30 s, which is logged, not failed: the rotation itself is committed.
func (s *Service) RotateSecret(ctx context.Context, id string, overlap time.Duration) (secret string, previousValidUntil time.Time, err error) {
	if _, err := s.registry.Get(ctx, id); err != nil {
		return "", time.Time{}, err
	}
	secret, sealed, err := s.newSecret(id)
	if err != nil {
		return "", time.Time{}, err
	}
	until, err := s.registry.RotateSecret(ctx, id, sealed, overlap)
	if err != nil {
		return "", time.Time{}, err
	}
	if s.redis != nil {
		if err := s.redis.MarkSecretRotated(tenant.WithID(ctx, id), time.Now()); err != nil {
			s.logger.Error("secret rotated, but other API processes may accept the previous one from their cache for up to 30 s",
				"tenant_id", id, "err", err)
		}
	}
	s.logger.Info("tenant secret rotated", "tenant_id", id, "previous_valid_until", until, "overlap", overlap)
	return secret, until, nil
}

// UpdateProfile replaces a tenant's profile in the registry, then mirrors type, permissions and
// origins to its context record, so request checks never run on stale values. Offboarding and
// offboarded tenants are frozen (registry.StatusError).
func (s *Service) UpdateProfile(ctx context.Context, id string, u registry.Update) (tenant.Tenant, error) {
	t, err := s.registry.Update(ctx, id, u)
	if err != nil {
		return tenant.Tenant{}, err
	}
	if err := RefreshProfile(ctx, s.redis, t); err != nil {
		return t, err
	}
	s.logger.Info("tenant updated", "tenant_id", id)
	return t, nil
}

// ContextRecord is the tenant's whole Redis context record as the registry says it should be,
// for provisioning (status included: the lifecycle writes it). StatusVersion is the registry
// row's update time, so a stale writer cannot overwrite a newer status.
func ContextRecord(t tenant.Tenant, now time.Time) tenantredis.ContextRecord {
	return tenantredis.ContextRecord{
		Status: string(t.Status), Type: string(t.Type), Permissions: permissionStrings(t.Permissions),
		AllowedOrigins: t.AllowedOrigins, UpdatedAt: now.UTC(), StatusVersion: t.UpdatedAt.UnixNano(),
	}
}

// RefreshProfile mirrors a tenant's type, permissions and origins to its context record, never
// its status (the lifecycle's to write). A tenant without a record (not provisioned) has
// nothing to refresh; a nil store (a process without Redis) does nothing.
func RefreshProfile(ctx context.Context, redis *tenantredis.Store, t tenant.Tenant) error {
	if redis == nil {
		return nil
	}
	if _, err := redis.UpdateProfile(tenant.WithID(ctx, t.ID), string(t.Type), permissionStrings(t.Permissions), t.AllowedOrigins); err != nil {
		return fmt.Errorf("refresh context record of %s: %w", t.ID, err)
	}
	return nil
}

func permissionStrings(ps []tenant.Permission) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = string(p)
	}
	return out
}

// newSecret makes a tenant secret, 32 bytes from crypto/rand, hex-encoded, and seals it for the
// tenant's secret field (registry.SecretField), so the ciphertext opens for no other tenant or
// field.
func (s *Service) newSecret(id string) (secret string, sealed []byte, err error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", nil, fmt.Errorf("generate secret: %w", err)
	}
	secret = hex.EncodeToString(raw)
	clear(raw)
	sealed, err = s.sealer.Seal(id, registry.SecretField, []byte(secret))
	if err != nil {
		return "", nil, fmt.Errorf("seal secret: %w", err)
	}
	return secret, sealed, nil
}

// newSiteID returns a random UUIDv4 for tenants registered without a site id.
func newSiteID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms (Go 1.24+)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
