package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/api"
	"github.com/misybot/tenancy/internal/keys/signing"
	"github.com/misybot/tenancy/internal/testkit/testenv"
)

// openAPI is the API's own document (as served at /openapi.json) and a router over it. The
// router ignores the document's servers: the stacks listen on a port of their own.
var openAPI = sync.OnceValues(func() (*openAPIChecker, error) {
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPIDocument())
	if err != nil {
		return nil, err
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, err
	}
	doc.Servers = nil
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, err
	}
	return &openAPIChecker{doc: doc, router: router}, nil
})

type openAPIChecker struct {
	doc    *openapi3.T
	router routers.Router
}

// checkOpenAPI wraps the stack's API: every request an e2e test sends, and the answer it gets,
// is validated against the OpenAPI document (kin-openapi's openapi3filter), whichever client
// sent it. What it holds the API to:
//   - a request the document calls valid gets an answer whose status and body the document
//     describes for that operation;
//   - a request the document calls invalid (a missing signature header, a malformed tenant id,
//     a bad body…) is refused with a 4xx, itself as described;
//   - a request to no described path gets a 404 problem, to no described method a 405 one.
//
// Authentication is the API's job, not the validator's: the security requirements are
// accepted as they are (NoopAuthenticationFunc). The dashboard's static files are not
// described, and not checked.
func checkOpenAPI(t *testing.T, next http.Handler) http.Handler {
	t.Helper()
	oa, err := openAPI()
	if err != nil {
		t.Fatalf("the OpenAPI document does not load: %v", err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/dashboard") {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("openapi: read the request body: %v", err)
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := &recordingWriter{ResponseWriter: w, status: http.StatusOK}
		oa.check(t, r.Clone(context.Background()), body, rec, func() { next.ServeHTTP(rec, r) })
	})
}

// check validates the request, serves it, then validates the answer.
func (oa *openAPIChecker) check(t *testing.T, req *http.Request, body []byte, rec *recordingWriter, serve func()) {
	req.Body = io.NopCloser(bytes.NewReader(body))
	what := req.Method + " " + req.URL.RequestURI()
	route, params, routeErr := oa.router.FindRoute(req)
	var input *openapi3filter.RequestValidationInput
	var reqErr error
	if routeErr == nil {
		input = &openapi3filter.RequestValidationInput{
			Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true},
		}
		reqErr = openapi3filter.ValidateRequest(context.Background(), input)
	}
	serve()
	got := rec.status
	answer := strings.TrimSpace(string(truncate(rec.body.Bytes(), 600)))

	switch {
	case errors.Is(routeErr, routers.ErrPathNotFound), errors.Is(routeErr, routers.ErrMethodNotAllowed):
		want := http.StatusNotFound
		if errors.Is(routeErr, routers.ErrMethodNotAllowed) {
			want = http.StatusMethodNotAllowed
		}
		if got != want {
			t.Errorf("openapi: %s is not described (%v), yet the API answered %d: %s", what, routeErr, got, answer)
		}
		oa.checkProblem(t, what, rec)
		return
	case routeErr != nil:
		t.Errorf("openapi: %s: %v", what, routeErr)
		return
	case reqErr != nil && (got < 400 || got > 499):
		t.Errorf("openapi: %s is invalid by the document, yet the API answered %d: %v\nanswer: %s", what, got, reqErr, answer)
	}
	if req.Method == http.MethodHead {
		return
	}
	resErr := openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: input, Status: got, Header: rec.Header(),
		Body:    io.NopCloser(bytes.NewReader(rec.body.Bytes())),
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	})
	if resErr != nil {
		t.Errorf("openapi: the answer %d to %s is not as described: %v\nanswer: %s", got, what, resErr, answer)
	}
}

// checkProblem validates an answer to an undescribed request against the Problem schema.
func (oa *openAPIChecker) checkProblem(t *testing.T, what string, rec *recordingWriter) {
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("openapi: the answer to %s is %q, not a problem document", what, ct)
		return
	}
	var v any
	if err := json.Unmarshal(rec.body.Bytes(), &v); err != nil {
		t.Errorf("openapi: the answer to %s is not JSON: %v", what, err)
		return
	}
	if err := oa.doc.Components.Schemas["Problem"].Value.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
		t.Errorf("openapi: the answer to %s is not a problem document: %v", what, err)
	}
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return append(b[:n:n], "…"...)
	}
	return b
}

// recordingWriter passes the answer through and keeps a copy of its status and body.
type recordingWriter struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
	wrote  bool
}

func (w *recordingWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recordingWriter) Write(b []byte) (int, error) {
	w.wrote = true
	w.body.Write(b)
	return w.ResponseWriter.Write(b)
}

func (w *recordingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// The surface the other e2e tests touch little (the signed tenant API, audit reports in JSON
// and CSV, settings, secret rotation, preflights, refusals, the probes), driven once through a
// checked stack, so that the document is held to real answers there too. The test's own
// assertions are few: the checker is the point.
func TestOpenAPIDescribesRealAnswers(t *testing.T) {
	t.Parallel()
	s := newStack(t, true)
	id := testenv.TenantID("oas")
	tenantPath := api.TenantsPath + "/" + id

	code, body := s.do(http.MethodPost, api.TenantsPath+"/onboard", onboardBody(id, "standard"))
	require.Equal(t, http.StatusAccepted, code, body)
	secret := body["tenantSecret"].(string)
	require.NoError(t, s.wait(body))

	for _, r := range []struct{ method, path, body string }{
		{http.MethodGet, "/healthz", ""},
		{http.MethodGet, "/readyz", ""},
		{http.MethodGet, "/openapi.json", ""},
		{http.MethodGet, api.TenantsPath + "?status=active&limit=1", ""},
		{http.MethodGet, api.TenantsPath + "?limit=0", ""},
		{http.MethodGet, tenantPath + "/operations/current", ""},
		{http.MethodPut, tenantPath + "/settings/theme", `{"value":{"mode":"dark"}}`},
		{http.MethodGet, tenantPath + "/settings", ""},
		{http.MethodGet, tenantPath + "/settings/theme", ""},
		{http.MethodGet, tenantPath + "/settings/Not_A_Key", ""},
		{http.MethodDelete, tenantPath + "/settings/theme", ""},
		{http.MethodGet, tenantPath + "/audit?order=desc&limit=2", ""},
		{http.MethodGet, tenantPath + "/audit/summary", ""},
		{http.MethodGet, tenantPath + "/audit/verify", ""},
		{http.MethodGet, tenantPath + "/audit/policy", ""},
		{http.MethodPut, tenantPath + "/audit/policy", `{"retentionDays":400,"legalHold":true}`},
		{http.MethodGet, api.PlatformAuditPath + "?tenantId=" + id, ""},
		{http.MethodGet, api.PlatformAuditPath + "/summary", ""},
		{http.MethodGet, api.PlatformAuditPath + "/verify", ""},
		{http.MethodPost, tenantPath + "/suspend", `{"reason":12}`},
		{http.MethodPost, tenantPath + "/restore", ""},
		{http.MethodPost, tenantPath + "/approve", ""},
		{http.MethodGet, api.TenantsPath + "/Not_An_Id", ""},
		{http.MethodPatch, tenantPath, "{}"},
		{http.MethodGet, "/api/meta-agent/nothing", ""},
	} {
		s.do(r.method, r.path, r.body)
	}
	code, _ = s.doAs("not-a-token", http.MethodGet, tenantPath, "")
	require.Equal(t, http.StatusUnauthorized, code)
	for _, path := range []string{tenantPath + "/audit?limit=1", tenantPath + "/audit/summary?format=csv"} {
		req, err := http.NewRequest(http.MethodGet, s.url+path, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Accept", "text/csv")
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		require.Equal(t, "text/csv; charset=utf-8", res.Header.Get("Content-Type"))
	}

	signed := func(method, path, body string) (int, map[string]any) {
		t.Helper()
		req, err := http.NewRequest(method, s.url+api.TenantAPIPath+path, strings.NewReader(body))
		require.NoError(t, err)
		ts := time.Now().Unix()
		nonce := testenv.TenantID("nonce-0123456789")
		canonical := signing.Canonical(method, req.URL.EscapedPath(), req.URL.RawQuery, ts, nonce, []byte(body))
		req.Header.Set(signing.HeaderTenant, id)
		req.Header.Set(signing.HeaderTimestamp, strconv.FormatInt(ts, 10))
		req.Header.Set(signing.HeaderNonce, nonce)
		req.Header.Set(signing.HeaderSignature, signing.Header(signing.MAC([]byte(secret), canonical)))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		var out map[string]any
		_ = json.Unmarshal(raw, &out)
		return res.StatusCode, out
	}
	code, _ = signed(http.MethodGet, "/me", "")
	require.Equal(t, http.StatusOK, code)
	code, conv := signed(http.MethodPost, "/conversations", `{"title":"support"}`)
	require.Equal(t, http.StatusCreated, code, conv)
	convID, _ := conv["id"].(string)
	signed(http.MethodPost, "/conversations/"+convID+"/messages", `{"role":"user","text":"hello"}`)
	signed(http.MethodPost, "/conversations/"+convID+"/messages", `{"role":"robot","text":"hello"}`)
	signed(http.MethodGet, "/conversations/"+convID, "")
	signed(http.MethodGet, "/conversations/0123456789abcdef01234567", "")
	signed(http.MethodGet, "/conversations?limit=5", "")
	signed(http.MethodPut, "/settings/lang", `{"value":"fr"}`)
	signed(http.MethodGet, "/settings", "")
	signed(http.MethodGet, "/settings/lang", "")
	signed(http.MethodDelete, "/settings/lang", "")
	signed(http.MethodGet, "/audit", "") // a standard tenant lacks audit:read: 403

	// Refused signatures, and a preflight.
	req, err := http.NewRequest(http.MethodGet, s.url+api.TenantAPIPath+"/me", nil)
	require.NoError(t, err)
	req.Header.Set(signing.HeaderTenant, id)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	req, err = http.NewRequest(http.MethodOptions, s.url+api.TenantAPIPath+"/settings/lang", nil)
	require.NoError(t, err)
	req.Header.Set("Origin", "https://"+id+".test")
	req.Header.Set("Access-Control-Request-Method", http.MethodPut)
	res, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusNoContent, res.StatusCode)

	code, body = s.do(http.MethodPost, tenantPath+"/secret/rotate?overlap=0s", "")
	require.Equal(t, http.StatusOK, code, body)
	s.do(http.MethodPost, tenantPath+"/secret/rotate?overlap=forever", "")
	code, body = s.do(http.MethodPost, tenantPath+"/offboard", `{"reason":"done"}`)
	require.Equal(t, http.StatusAccepted, code, body)
	require.NoError(t, s.wait(body))
	s.do(http.MethodDelete, tenantPath, "")
}
