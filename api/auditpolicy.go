package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/misybot/tenancy/internal/domain/registry"
	"github.com/misybot/tenancy/internal/model/tenant"
)

type auditPolicyRequest struct {
	// Pointers, so that an absent field is "required", not zero: PUT replaces the policy.
	RetentionDays *int  `json:"retentionDays" validate:"required,min=1,max=36500"`
	LegalHold     *bool `json:"legalHold" validate:"required"`
}

func (s *Server) getAuditPolicy(c echo.Context) error {
	id, _ := tenant.IDFrom(c.Request().Context())
	p, err := s.registry.AuditPolicy(c.Request().Context(), id)
	if err != nil {
		return registryError(err)
	}
	return c.JSON(http.StatusOK, p)
}

// putAuditPolicy replaces a tenant's retention period and legal hold. Admins only: a shorter
// period deletes events at the next retention run. The change itself is audited (by the
// middleware, like every management write).
func (s *Server) putAuditPolicy(c echo.Context) error {
	id, err := pathTenantID(c)
	if err != nil {
		return err
	}
	var req auditPolicyRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := s.validate(&req); err != nil {
		return err
	}
	p, err := s.registry.SetAuditPolicy(c.Request().Context(), id, registry.AuditPolicy{RetentionDays: *req.RetentionDays, LegalHold: *req.LegalHold})
	if err != nil {
		return registryError(err)
	}
	s.logger.Info("audit policy changed", "tenant_id", id, "retention_days", p.RetentionDays, "legal_hold", p.LegalHold, "operator", operatorOf(c).Name)
	return c.JSON(http.StatusOK, p)
}
