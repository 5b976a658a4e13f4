package api

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/misybot/tenancy/internal/domain/conversations"
	"github.com/misybot/tenancy/internal/model/tenant"
)

// tenantAPIRoutes mounts the signed tenant API. Every route runs, in order: CORS (preflights
// end there), signature and tenant status, the tenant's share of concurrency (limitTenant),
// the tenant's own origin list, then the permission the endpoint needs. Handlers reach data only through stores that take the tenant from the
// context the signature check set, so no id in a path, query or body can name another tenant.
func (s *Server) tenantAPIRoutes(e *echo.Echo) {
	base := []echo.MiddlewareFunc{s.tenantCORS, s.verifySignature, s.limitTenant, s.checkOrigin}
	with := func(p tenant.Permission) []echo.MiddlewareFunc {
		return append(base[:len(base):len(base)], s.permit(p))
	}
	g := TenantAPIPath

	e.OPTIONS(g+"/*", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) }, s.tenantCORS)
	e.GET(g+"/me", s.tenantMe, base...)
	e.GET(g+"/settings", s.listSettings, with(tenant.PermSettingsRead)...)
	e.GET(g+"/settings/:key", s.getSetting, with(tenant.PermSettingsRead)...)
	s.audited(e.PUT(g+"/settings/:key", s.putSetting, with(tenant.PermSettingsWrite)...), "tenant-api.setting.put")
	s.audited(e.DELETE(g+"/settings/:key", s.deleteSetting, with(tenant.PermSettingsWrite)...), "tenant-api.setting.delete")
	s.audited(e.POST(g+"/conversations", s.createConversation, with(tenant.PermConversationsWrite)...), "tenant-api.conversation.create")
	e.GET(g+"/conversations", s.listConversations, with(tenant.PermConversationsRead)...)
	e.GET(g+"/conversations/:id", s.getConversation, with(tenant.PermConversationsRead)...)
	s.audited(e.POST(g+"/conversations/:id/messages", s.addMessage, with(tenant.PermConversationsWrite)...), "tenant-api.message.add")
	if s.tenantAuditHandler != nil {
		e.GET(g+"/audit", s.tenantAuditHandler, with(tenant.PermAuditRead)...)
	}
}

// tenantMe answers with the calling tenant's own profile (never its secret).
func (s *Server) tenantMe(c echo.Context) error {
	id, err := tenant.IDFrom(c.Request().Context())
	if err != nil {
		return err
	}
	t, err := s.registry.Get(c.Request().Context(), id)
	if err != nil {
		return registryError(err)
	}
	return c.JSON(http.StatusOK, t)
}

var conversationID = regexp.MustCompile(`^[0-9a-f]{24}$`)

func pathConversationID(c echo.Context) (string, error) {
	id := c.Param("id")
	if !conversationID.MatchString(id) {
		return "", validationProblem(FieldError{Field: "id", Message: "must be a conversation id (24 hex digits)"})
	}
	return id, nil
}

type createConversationRequest struct {
	Title string `json:"title" validate:"required,max=200"`
}

func (s *Server) createConversation(c echo.Context) error {
	var req createConversationRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := s.validate(&req); err != nil {
		return err
	}
	conv, err := s.conversations.Create(c.Request().Context(), req.Title)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, conv)
}

// listConversations answers a page of conversations, most recently updated first (?limit,
// ?cursor: the previous page's nextCursor).
func (s *Server) listConversations(c echo.Context) error {
	limit, err := pageLimit(c)
	if err != nil {
		return err
	}
	var after *conversations.ListCursor
	if v := c.QueryParam("cursor"); v != "" {
		cur, ok := conversations.ParseListCursor(v)
		if !ok {
			return validationProblem(FieldError{Field: "cursor", Message: "must be a nextCursor of an earlier page"})
		}
		after = &cur
	}
	items, next, err := s.conversations.List(c.Request().Context(), after, int64(limit))
	if err != nil {
		return err
	}
	out := page{Items: items}
	if next != nil {
		out.NextCursor = next.String()
	}
	return c.JSON(http.StatusOK, out)
}

// getConversation answers a conversation with a page of its messages, oldest first (?limit,
// ?cursor: the previous answer's nextCursor), never the whole conversation at once.
func (s *Server) getConversation(c echo.Context) error {
	id, err := pathConversationID(c)
	if err != nil {
		return err
	}
	limit, err := pageLimit(c)
	if err != nil {
		return err
	}
	p, err := s.conversations.Get(c.Request().Context(), id, c.QueryParam("cursor"), limit)
	switch {
	case errors.Is(err, conversations.ErrNotFound):
		return notFound("no such conversation")
	case errors.Is(err, conversations.ErrBadCursor):
		return validationProblem(FieldError{Field: "cursor", Message: "must be a nextCursor of an earlier page"})
	case err != nil:
		return err
	}
	return c.JSON(http.StatusOK, conversationPage{Conversation: p.Conversation, Messages: p.Messages, NextCursor: p.Next})
}

type conversationPage struct {
	Conversation conversations.Conversation `json:"conversation"`
	Messages     []conversations.Message    `json:"messages"`
	NextCursor   string                     `json:"nextCursor,omitempty"`
}

// addMessageRequest's text is bounded in bytes by the tenant's MaxMessageBytes (413 past it).
type addMessageRequest struct {
	Role string `json:"role" validate:"required,oneof=user assistant system"`
	Text string `json:"text" validate:"required"`
}

func (s *Server) addMessage(c echo.Context) error {
	id, err := pathConversationID(c)
	if err != nil {
		return err
	}
	var req addMessageRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := s.validate(&req); err != nil {
		return err
	}
	msg, err := s.conversations.AddMessage(c.Request().Context(), id, req.Role, req.Text)
	if errors.Is(err, conversations.ErrNotFound) {
		return notFound("no such conversation")
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, msg)
}

type rotateSecretResponse struct {
	TenantID string `json:"tenantId"`
	Secret   string `json:"tenantSecret"`
	// PreviousValidUntil is when the old secret stops verifying.
	PreviousValidUntil string `json:"previousSecretValidUntil"`
}

// maxSecretOverlap bounds the overlap a rotation may ask for.
const maxSecretOverlap = 30 * 24 * time.Hour

// rotateSecret issues a new tenant secret, shown once in this answer; the old one keeps
// working until the overlap ends: SECRET_ROTATION_OVERLAP, or ?overlap=<duration> (0s revokes
// it at once, in every API process: see MarkSecretRotated). Platform-admins only: whoever
// rotates a tenant's secret learns it, and with it can act as the tenant.
func (s *Server) rotateSecret(c echo.Context) error {
	id, err := pathTenantID(c)
	if err != nil {
		return err
	}
	overlap := s.secretOverlap
	if v := c.QueryParam("overlap"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > maxSecretOverlap {
			return validationProblem(FieldError{Field: "overlap", Message: fmt.Sprintf("must be a duration from 0s to %s, e.g. 0s, 15m, 24h", maxSecretOverlap)})
		}
		overlap = d
	}
	// Other API processes drop the secret they cached on their next request of this tenant,
	// told through the context record (tenantservice.RotateSecret); this one drops it now.
	secret, until, err := s.tenants.RotateSecret(c.Request().Context(), id, overlap)
	if err != nil {
		return registryError(err)
	}
	s.secrets.drop(id)
	s.logger.Info("tenant secret rotated by an operator", "tenant_id", id, "operator", operatorOf(c).Name)
	return c.JSON(http.StatusOK, rotateSecretResponse{TenantID: id, Secret: secret, PreviousValidUntil: until.UTC().Format("2006-01-02T15:04:05Z07:00")})
}
