package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/misybot/tenancy/internal/model/limits"
	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/stores/tenantdb"
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

// listSettings answers one page of settings by key (?limit, default limits.DefaultPage, at
// most limits.MaxPage; ?cursor from the previous page's nextCursor), so no answer is larger
// than a page of the largest values a tenant may keep.
func (s *Server) listSettings(c echo.Context) error {
	limit, err := pageLimit(c)
	if err != nil {
		return err
	}
	after := c.QueryParam("cursor")
	if after != "" && !settingKey.MatchString(after) {
		return validationProblem(FieldError{Field: "cursor", Message: "must be a nextCursor of an earlier page"})
	}
	items, next, err := s.settings.Settings(c.Request().Context(), after, limit)
	if err != nil {
		return err
	}
	return c.JSONBlob(http.StatusOK, settingsPage(items, next))
}

// settingsPage writes a page of settings as page{Items, NextCursor} would encode it, copying
// each value as PostgreSQL returned it: jsonb's text is valid JSON already, and encoding/json
// would validate and compact every byte of it again (a third of the CPU of a page of large
// values, measured by BenchmarkNoisyNeighbour's profile).
func settingsPage(items []tenantdb.Setting, next string) []byte {
	n := 32
	for _, it := range items {
		n += len(it.Key) + len(it.Value) + 80
	}
	buf := bytes.NewBuffer(make([]byte, 0, n))
	buf.WriteString(`{"items":[`)
	for i, it := range items {
		if i > 0 {
			buf.WriteByte(',')
		}
		key, _ := json.Marshal(it.Key)
		at, _ := it.UpdatedAt.MarshalJSON()
		buf.WriteString(`{"key":`)
		buf.Write(key)
		buf.WriteString(`,"value":`)
		buf.Write(it.Value)
		buf.WriteString(`,"updatedAt":`)
		buf.Write(at)
		buf.WriteByte('}')
	}
	buf.WriteByte(']')
	if next != "" {
		cursor, _ := json.Marshal(next)
		buf.WriteString(`,"nextCursor":`)
		buf.Write(cursor)
	}
	buf.WriteByte('}')
	return buf.Bytes()
}

// page is every paginated answer of the tenant API: nextCursor is absent on the last page.
type page struct {
	Items      any    `json:"items"`
	NextCursor string `json:"nextCursor,omitempty"`
}

// pageLimit reads ?limit: limits.DefaultPage when absent, 1 to limits.MaxPage otherwise.
func pageLimit(c echo.Context) (int, error) {
	v := c.QueryParam("limit")
	if v == "" {
		return limits.DefaultPage, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > limits.MaxPage {
		return 0, validationProblem(FieldError{Field: "limit", Message: fmt.Sprintf("must be an integer from 1 to %d", limits.MaxPage)})
	}
	return n, nil
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
	st, err := s.settings.PutSetting(c.Request().Context(), key, req.Value, s.limits)
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
