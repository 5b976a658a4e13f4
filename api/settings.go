package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"regexp"

	"github.com/labstack/echo/v4"

	"github.com/misybot/tenancy/internal/tenant"
	"github.com/misybot/tenancy/internal/tenantdb"
)

// settingKey matches the tenant_settings key constraint; checking it here turns a bad key into
// a 400 instead of a database error.
var settingKey = regexp.MustCompile(`^[a-z][a-z0-9_.-]{0,63}$`)

// tenantScope puts the path's tenant into the request context, after checking it is
// registered and provisioned. Handlers behind it reach tenant data only through stores that read the tenant
// from the context, so a handler cannot name another tenant by mistake.
func (s *Server) tenantScope(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := pathTenantID(c)
		if err != nil {
			return err
		}
		t, err := s.registry.Get(c.Request().Context(), id)
		if err != nil {
			return registryError(err)
		}
		// Only a provisioned, live tenant has tenant data: before onboarding there is nothing to
		// read, and from offboarding on a write would recreate data after (or during) the purge.
		if t.Status != tenant.StatusActive && t.Status != tenant.StatusSuspended {
			p := conflict("tenant is " + string(t.Status) + "; its data can be reached only while it is active or suspended")
			p.CurrentStatus = string(t.Status)
			return p
		}
		c.SetRequest(c.Request().WithContext(tenant.WithID(c.Request().Context(), id)))
		return next(c)
	}
}

func pathSettingKey(c echo.Context) (string, error) {
	key := c.Param("key")
	if !settingKey.MatchString(key) {
		return "", validationProblem(FieldError{Field: "key", Message: "must be 1 to 64 characters: lowercase letters, digits, '_', '.', '-', starting with a letter"})
	}
	return key, nil
}

func settingError(err error) error {
	if errors.Is(err, tenantdb.ErrNotFound) {
		return notFound(err.Error())
	}
	return err
}

func (s *Server) listSettings(c echo.Context) error {
	items, err := s.settings.Settings(c.Request().Context())
	if err != nil {
		return err
	}
	if items == nil {
		items = []tenantdb.Setting{}
	}
	return c.JSON(http.StatusOK, map[string]any{"items": items})
}

func (s *Server) getSetting(c echo.Context) error {
	key, err := pathSettingKey(c)
	if err != nil {
		return err
	}
	st, err := s.settings.Setting(c.Request().Context(), key)
	if err != nil {
		return settingError(err)
	}
	return c.JSON(http.StatusOK, st)
}

type putSettingRequest struct {
	Value json.RawMessage `json:"value"`
}

func (s *Server) putSetting(c echo.Context) error {
	key, err := pathSettingKey(c)
	if err != nil {
		return err
	}
	var req putSettingRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if len(req.Value) == 0 {
		return validationProblem(FieldError{Field: "value", Message: "is required (any JSON value)"})
	}
	st, err := s.settings.PutSetting(c.Request().Context(), key, req.Value)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, st)
}

func (s *Server) deleteSetting(c echo.Context) error {
	key, err := pathSettingKey(c)
	if err != nil {
		return err
	}
	if err := s.settings.DeleteSetting(c.Request().Context(), key); err != nil {
		return settingError(err)
	}
	return c.NoContent(http.StatusNoContent)
}
