package api

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/misybot/tenancy/activities"
	"github.com/misybot/tenancy/internal/control/lifecycle"
	"github.com/misybot/tenancy/internal/domain/cells"
	"github.com/misybot/tenancy/internal/domain/registry"
	"github.com/misybot/tenancy/internal/domain/tenantservice"
	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/workflows"
)

// SecretField names the tenant secret in sealing's associated data; a ciphertext sealed for it
// opens for no other field.
const SecretField = registry.SecretField

// tenantFields are the fields an operator sets at registration and may replace with PUT.
type tenantFields struct {
	SiteID           string              `json:"siteId" validate:"omitempty,max=64,printascii,excludesall= "`
	Name             string              `json:"tenantName" validate:"required,notblank,max=200"`
	ContactEmail     string              `json:"contactEmail" validate:"required,max=254,email"`
	WebsiteURL       string              `json:"websiteUrl" validate:"omitempty,max=2048,http_url"`
	BusinessIndustry string              `json:"businessIndustry" validate:"max=100"`
	AllowedOrigins   []string            `json:"allowedOrigins" validate:"max=50,unique,dive,max=255,origin"`
	Permissions      []tenant.Permission `json:"permissions" validate:"max=20,unique"`
	Type             tenant.Type         `json:"tenantType" validate:"required,oneof=owner enterprise standard trial"`
}

type registerRequest struct {
	ID string `json:"tenantId" validate:"required,tenantid"`
	tenantFields
}

type updateRequest struct {
	// ID may be repeated in the body; if present it must match the path.
	ID string `json:"tenantId"`
	tenantFields
}

// registerResponse is the only answer that ever carries the tenant secret.
type registerResponse struct {
	tenant.Tenant
	Secret string `json:"tenantSecret"`
}

type listResponse struct {
	Items      []tenant.Tenant `json:"items"`
	NextCursor string          `json:"nextCursor,omitempty"`
}

// checkPermissions applies the profile rules (tenantservice.Normalize): an absent permission
// list is the type's whole ceiling, every permission within it, an absent origin list empty.
func (f *tenantFields) checkPermissions() error {
	t := tenant.Tenant{Type: f.Type, Permissions: f.Permissions, AllowedOrigins: f.AllowedOrigins}
	if err := tenantservice.Normalize(&t); err != nil {
		return serviceError(err)
	}
	f.Permissions, f.AllowedOrigins = t.Permissions, t.AllowedOrigins
	return nil
}

// serviceError maps the tenant service's rule violations to a validation problem.
func serviceError(err error) error {
	var fe *tenantservice.FieldError
	if errors.As(err, &fe) {
		return validationProblem(FieldError{Field: fe.Field, Message: fe.Message})
	}
	return err
}

func (s *Server) registerTenant(c echo.Context) error {
	var req registerRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := s.validate(&req); err != nil {
		return err
	}
	if err := req.checkPermissions(); err != nil {
		return err
	}
	auditTenant(c, req.ID)
	created, secretText, err := s.register(c.Request().Context(), req)
	if errors.Is(err, registry.ErrExists) {
		return conflict(fmt.Sprintf("tenant %q is already registered", req.ID))
	}
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, TenantsPath+"/"+created.ID)
	return c.JSON(http.StatusCreated, registerResponse{Tenant: created, Secret: secretText})
}

// register creates the tenant from the request, with a fresh secret (tenantservice.Register).
func (s *Server) register(ctx context.Context, req registerRequest) (tenant.Tenant, string, error) {
	created, secret, err := s.tenants.Register(ctx, tenant.Tenant{
		ID: req.ID, SiteID: req.SiteID, Name: req.Name, ContactEmail: req.ContactEmail,
		WebsiteURL: req.WebsiteURL, BusinessIndustry: req.BusinessIndustry,
		AllowedOrigins: req.AllowedOrigins, Permissions: req.Permissions, Type: req.Type,
	})
	return created, secret, serviceError(err)
}

// pathTenantID validates the :tenantId path parameter; a malformed id is a 400, not a lookup.
func pathTenantID(c echo.Context) (string, error) {
	id := c.Param("tenantId")
	if err := tenant.ValidateID(id); err != nil {
		return "", validationProblem(FieldError{Field: "tenantId", Message: err.Error()})
	}
	return id, nil
}

// registryError maps the registry's refusals to problems; anything else stays a server error.
func registryError(err error) error {
	var se *registry.StatusError
	switch {
	case errors.Is(err, registry.ErrNotFound):
		return notFound(err.Error())
	case errors.As(err, &se) && errors.Is(err, registry.ErrNotDeletable):
		p := conflict(fmt.Sprintf("tenant is %s: provisioned tenants are removed by offboarding (POST %s/{tenantId}/offboard)", se.Status, TenantsPath))
		p.CurrentStatus = string(se.Status)
		return p
	case errors.As(err, &se):
		p := conflict(fmt.Sprintf("tenant is %s and can no longer be changed", se.Status))
		p.CurrentStatus = string(se.Status)
		return p
	}
	return err
}

func (s *Server) getTenant(c echo.Context) error {
	id, err := pathTenantID(c)
	if err != nil {
		return err
	}
	t, err := s.registry.Get(c.Request().Context(), id)
	if err != nil {
		return registryError(err)
	}
	return c.JSON(http.StatusOK, t)
}

const (
	defaultPageSize = 20
	maxPageSize     = 100
)

var listParams = []string{"status", "tenantType", "idPrefix", "cellId", "limit", "cursor"}

// idPrefixPattern is the beginning of a tenant id (tenant.ValidateID's characters): nothing a
// LIKE pattern would read as a wildcard.
var idPrefixPattern = regexp.MustCompile(`^[a-z0-9-]{1,40}$`)

func (s *Server) listTenants(c echo.Context) error {
	q := c.QueryParams()
	for name := range q {
		if !slices.Contains(listParams, name) {
			return validationProblem(FieldError{Field: name, Message: "is not a known query parameter (status, tenantType, idPrefix, cellId, limit, cursor)"})
		}
	}
	f := registry.Filter{Status: tenant.Status(q.Get("status")), Type: tenant.Type(q.Get("tenantType")),
		IDPrefix: q.Get("idPrefix"), CellID: q.Get("cellId"), Limit: defaultPageSize}
	var errs []FieldError
	if _, set := q["idPrefix"]; set && !idPrefixPattern.MatchString(f.IDPrefix) {
		errs = append(errs, FieldError{Field: "idPrefix", Message: "must be the beginning of a tenant id: 1 to 40 lowercase letters, digits and hyphens"})
	}
	if _, set := q["cellId"]; set && !cells.ValidID(f.CellID) {
		errs = append(errs, FieldError{Field: "cellId", Message: cellIDRule})
	}
	if f.Status != "" && !f.Status.Valid() {
		errs = append(errs, FieldError{Field: "status", Message: fmt.Sprintf("must be one of %v", tenant.Statuses)})
	}
	if f.Type != "" && !f.Type.Valid() {
		errs = append(errs, FieldError{Field: "tenantType", Message: fmt.Sprintf("must be one of %v", tenant.Types)})
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPageSize {
			errs = append(errs, FieldError{Field: "limit", Message: fmt.Sprintf("must be an integer from 1 to %d", maxPageSize)})
		}
		f.Limit = n
	}
	if v := q.Get("cursor"); v != "" {
		after, err := base64.RawURLEncoding.DecodeString(v)
		if err != nil || tenant.ValidateID(string(after)) != nil {
			errs = append(errs, FieldError{Field: "cursor", Message: "is not a cursor this API issued"})
		}
		f.After = string(after)
	}
	if len(errs) > 0 {
		return validationProblem(errs...)
	}

	items, more, err := s.registry.List(c.Request().Context(), f)
	if err != nil {
		return err
	}
	out := listResponse{Items: items}
	if out.Items == nil {
		out.Items = []tenant.Tenant{}
	}
	if more {
		out.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(items[len(items)-1].ID))
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) updateTenant(c echo.Context) error {
	id, err := pathTenantID(c)
	if err != nil {
		return err
	}
	var req updateRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.ID != "" && req.ID != id {
		return validationProblem(FieldError{Field: "tenantId", Message: "differs from the tenant id in the path; a tenant id cannot change"})
	}
	if err := s.validate(&req); err != nil {
		return err
	}
	current, err := s.registry.Get(c.Request().Context(), id)
	if err != nil {
		return registryError(err)
	}
	if current.Status == tenant.StatusOffboarding || current.Status == tenant.StatusOffboarded {
		return registryError(&registry.StatusError{Err: registry.ErrFrozen, Status: current.Status})
	}
	if req.Permissions == nil {
		// Absent means unchanged, never "widen to the type's ceiling".
		req.Permissions = current.Permissions
	}
	if err := req.checkPermissions(); err != nil {
		return err
	}
	if req.SiteID == "" {
		req.SiteID = current.SiteID
	}
	// A change that raises the tenant's ceiling (a higher type, an added permission) waits for
	// a platform-admin other than the requester; keeping or lowering it takes effect at once.
	if raises := tenant.Raises(current.Type, current.Permissions, req.Type, req.Permissions); len(raises) > 0 {
		return s.proposeProfileChange(c, id, req, raises)
	}
	t, err := s.tenants.UpdateProfile(c.Request().Context(), id, registry.Update{
		SiteID: req.SiteID, Name: req.Name, ContactEmail: req.ContactEmail, WebsiteURL: req.WebsiteURL,
		BusinessIndustry: req.BusinessIndustry, AllowedOrigins: req.AllowedOrigins,
		Permissions: req.Permissions, Type: req.Type,
	})
	if err != nil {
		return registryError(err)
	}
	return c.JSON(http.StatusOK, t)
}

// proposeProfileChange starts the approval workflow of a PUT that raises the tenant's ceiling
// and answers 202: nothing changes until a platform-admin other than the requester approves
// (POST …/{tenantId}/approve) or anyone with the role rejects (…/reject).
func (s *Server) proposeProfileChange(c echo.Context, id string, req updateRequest, raises []string) error {
	if s.lifecycle == nil {
		return newProblem(http.StatusServiceUnavailable, ProblemUnavailable, "Service unavailable", "approvals need the workflow service")
	}
	run, err := s.lifecycle.StartProfileChange(c.Request().Context(), workflows.ProfileChangeInput{
		Change: activities.ProfileChange{
			TenantID: id, SiteID: req.SiteID, Name: req.Name, ContactEmail: req.ContactEmail, WebsiteURL: req.WebsiteURL,
			BusinessIndustry: req.BusinessIndustry, AllowedOrigins: req.AllowedOrigins, Permissions: req.Permissions, Type: req.Type,
		},
		RequestedBy: operatorOf(c).Name, Raises: raises,
	})
	if err != nil {
		return lifecycleError(err)
	}
	s.logger.Info("tenant profile change awaits approval", "tenant_id", id, "raises", raises, "operator", operatorOf(c).Name)
	return c.JSON(http.StatusAccepted, profileChangeResponse{
		operationResponse: s.accepted(c, lifecycle.ProfileChange, id, run), AwaitingApproval: true, Raises: raises,
	})
}

// profileChangeResponse is the 202 answer of a PUT that needs approval.
type profileChangeResponse struct {
	operationResponse
	AwaitingApproval bool     `json:"awaitingApproval"`
	Raises           []string `json:"raises"`
}

// decide approves or rejects the tenant's run waiting for approval (a profile change, else an
// onboarding). Platform-admins only, and never the requester of the change.
func (s *Server) decide(approve bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := pathTenantID(c)
		if err != nil {
			return err
		}
		if s.lifecycle == nil {
			return newProblem(http.StatusServiceUnavailable, ProblemUnavailable, "Service unavailable", "approvals need the workflow service")
		}
		run, err := s.lifecycle.Decide(c.Request().Context(), id, deciderOf(c), approve)
		switch {
		case errors.Is(err, lifecycle.ErrSelfApproval):
			return newProblem(http.StatusForbidden, ProblemForbidden, "Forbidden", err.Error())
		case errors.Is(err, lifecycle.ErrNothingToApprove):
			return conflict(err.Error())
		case err != nil:
			return lifecycleError(err)
		}
		return c.JSON(http.StatusAccepted, s.accepted(c, lifecycle.ProfileChange, id, run))
	}
}

// deciderOf is the authenticated operator as the decider of a recorded decision.
func deciderOf(c echo.Context) lifecycle.Decider {
	op := operatorOf(c)
	return lifecycle.Decider{Name: op.Name, Role: string(op.Role)}
}

// signalRun sends an operator's decision (retry, abort, cancel-offboard) to the tenant's run
// waiting for it. The decision is recorded with the authenticated operator and role, and the
// run is signalled with its id only: the run reads it back before it acts, so the raw
// `temporal workflow signal` this replaces cannot be forged. 409 when no run waits for it.
func (s *Server) signalRun(signal string) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := pathTenantID(c)
		if err != nil {
			return err
		}
		if s.lifecycle == nil {
			return newProblem(http.StatusServiceUnavailable, ProblemUnavailable, "Service unavailable", "operator decisions need the workflow service")
		}
		if _, err := s.registry.Get(c.Request().Context(), id); err != nil {
			return registryError(err)
		}
		run, err := s.lifecycle.Signal(c.Request().Context(), id, signal, deciderOf(c))
		var notWaiting *lifecycle.ErrNotWaiting
		switch {
		case errors.As(err, &notWaiting):
			return conflict(notWaiting.Error())
		case errors.Is(err, lifecycle.ErrNoOperation):
			return conflict("no operation of this tenant is running")
		case err != nil:
			return lifecycleError(err)
		}
		s.logger.Info("operator decision sent", "tenant_id", id, "signal", signal, "workflow_id", run.WorkflowID, "operator", operatorOf(c).Name)
		return c.JSON(http.StatusAccepted, s.accepted(c, lifecycle.Operation(signal), id, run))
	}
}

func (s *Server) deleteTenant(c echo.Context) error {
	id, err := pathTenantID(c)
	if err != nil {
		return err
	}
	if err := s.registry.Delete(c.Request().Context(), id); err != nil {
		return registryError(err)
	}
	s.logger.Info("tenant deleted", "tenant_id", id)
	return c.NoContent(http.StatusNoContent)
}
