package api

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/misybot/tenancy/internal/control/lifecycle"
	"github.com/misybot/tenancy/internal/domain/audit"
	"github.com/misybot/tenancy/internal/domain/reconcile"
	"github.com/misybot/tenancy/internal/domain/registry"
	"github.com/misybot/tenancy/internal/keys/seal"
	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/platform/clients"
	"github.com/misybot/tenancy/internal/stores/tenantmongo"
)

// undocumented are the routes the OpenAPI document leaves out on purpose: the dashboard's
// static files (HTML, CSS, JavaScript for browsers, not an API).
var undocumented = []string{"GET /dashboard", "HEAD /dashboard", "GET /dashboard/*", "HEAD /dashboard/*"}

// fullServer builds the server with every optional group of routes mounted (audit,
// reconciliation with its runs, cells). Needs no server: pools and clients connect lazily, and
// nothing is served.
func fullServer(t *testing.T) (*Server, App) {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), "postgres://nobody@127.0.0.1:1/none")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	mc, err := mongo.Connect(context.Background(), options.Client().ApplyURI("mongodb://127.0.0.1:1/"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = mc.Disconnect(context.Background()) })
	w := audit.NewWriter(pool, mc, tenantmongo.New(mc), bytes.Repeat([]byte{1}, 32))
	sealer, err := seal.New(bytes.Repeat([]byte{1}, 32))
	require.NoError(t, err)
	rc := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = rc.Close() })
	logger := slog.New(slog.DiscardHandler)
	return newServer(Config{
		Registry: registry.New(pool), Audit: w, Logger: logger,
		Reconciliation: &Reconciliation{Reports: reconcile.NewReports(pool), Reconciler: lifecycle.NewReconciler(nil, "q", nil)},
		Cells:          (&clients.Clients{Postgres: pool, Mongo: mc, Redis: rc}).Cells(sealer, logger),
	})
}

func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openAPIJSON)
	require.NoError(t, err)
	return doc
}

// echoParam turns Echo's ":name" path segments into OpenAPI's "{name}".
var echoParam = regexp.MustCompile(`:([A-Za-z0-9_]+)`)

// Every route of the public app is described (method and path), and every described operation
// is a route: a route added without its description, or a description left behind by a
// removed route, fails here. A wildcard route ("OPTIONS /api/tenant/v1/*", the CORS preflight)
// is described by that method on each described path under its prefix.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	t.Parallel()
	_, app := fullServer(t)
	doc := loadOpenAPI(t)

	described := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			described[method+" "+path] = true
		}
	}
	routes := map[string]bool{}
	var wildcards []string
	for _, r := range app.Public.Routes() {
		key := r.Method + " " + echoParam.ReplaceAllString(r.Path, "{$1}")
		if slices.Contains(undocumented, r.Method+" "+r.Path) {
			continue
		}
		if strings.HasSuffix(key, "/*") {
			wildcards = append(wildcards, strings.TrimSuffix(key, "*"))
			continue
		}
		routes[key] = true
		require.True(t, described[key], "route %s is not described in api/openapi.yaml", key)
	}
	require.Greater(t, len(routes), 40, "the routes were found")
	for _, prefix := range wildcards { // "OPTIONS /api/tenant/v1/"
		method, path, _ := strings.Cut(prefix, " ")
		n := 0
		for p, item := range doc.Paths.Map() {
			if strings.HasPrefix(p, path) {
				require.NotNil(t, item.GetOperation(method), "route %s* answers %s %s, which is not described", prefix, method, p)
				n++
			}
		}
		require.Positive(t, n, "wildcard route %s* describes no path", prefix)
	}
	for key := range described {
		covered := routes[key]
		for _, prefix := range wildcards {
			covered = covered || strings.HasPrefix(key, prefix)
		}
		require.True(t, covered, "%s is described in api/openapi.yaml but is not a route", key)
	}
}

// The document is OpenAPI 3.1 and valid (kin-openapi: structure, references, schemas, and the
// examples against their schemas).
func TestOpenAPIDocumentValidates(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	require.True(t, doc.IsOpenAPI31OrLater(), doc.OpenAPI)
	require.NoError(t, doc.Validate(context.Background(), openapi3.EnableExamplesValidation()))
}

// GET /openapi.json serves the document as JSON, without authentication.
func TestOpenAPIServed(t *testing.T) {
	t.Parallel()
	_, app := fullServer(t)
	rec := httptest.NewRecorder()
	app.Public.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, OpenAPIPath, nil))
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	require.JSONEq(t, string(openAPIJSON), rec.Body.String())
	require.NotContains(t, rec.Body.String(), "x-yaml-anchors")
}

// Security as the routes have it: management operations take the operator's bearer token
// (the document's default), tenant API operations the four signature headers, and the probes,
// this document and CORS preflights nothing. Every audited write route names its audit action
// in its description, so the document says what each write leaves in the trail.
func TestOpenAPISecurityAndAuditActions(t *testing.T) {
	t.Parallel()
	s, _ := fullServer(t)
	doc := loadOpenAPI(t)
	require.Equal(t, openapi3.SecurityRequirements{{"operatorBearer": {}}}, doc.Security)
	signed := openapi3.SecurityRequirements{{"tenantIdHeader": {}, "tenantTimestamp": {}, "tenantNonce": {}, "tenantSignature": {}}}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			key := method + " " + path
			switch {
			case method == http.MethodOptions || !strings.HasPrefix(path, "/api/"):
				require.NotNil(t, op.Security, key)
				require.Empty(t, *op.Security, "%s needs no authentication", key)
			case strings.HasPrefix(path, TenantAPIPath):
				require.NotNil(t, op.Security, key)
				require.Equal(t, signed, *op.Security, key)
				for _, h := range []string{"X-Tenant-Id", "X-Timestamp", "X-Nonce", "X-Signature"} {
					p := op.Parameters.GetByInAndName("header", h)
					require.NotNil(t, p, "%s: header %s", key, h)
					require.True(t, p.Required, "%s: header %s", key, h)
				}
			default:
				require.Nil(t, op.Security, "%s takes the default, the operator token", key)
			}
		}
	}
	require.NotEmpty(t, s.actions)
	for route, action := range s.actions {
		method, path, _ := strings.Cut(route, " ")
		op := doc.Paths.Find(echoParam.ReplaceAllString(path, "{$1}")).GetOperation(method)
		require.NotNil(t, op, route)
		require.Contains(t, op.Description, "`"+action+"`", "%s: its description names its audit action", route)
	}
}

// The patterns of the document are the ones the handlers apply: checked against the code's
// own regular expressions, and the tenant id pattern against tenant.ValidateID.
func TestOpenAPIPatternsMatchTheCode(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	param := func(name string) string { return doc.Components.Parameters[name].Value.Schema.Value.Pattern }
	require.Equal(t, settingKey.String(), param("SettingKey"))
	require.Equal(t, conversationID.String(), param("ConversationId"))
	archive := doc.Paths.Find(ArchivesPath+"/{name}").Get.Parameters.GetByInAndName("path", "name")
	require.Equal(t, archiveName.String(), archive.Schema.Value.Pattern)

	id := doc.Components.Schemas["TenantId"].Value
	pattern := regexp.MustCompile(id.Pattern)
	for _, s := range []string{"acme", "a-b", "abc", "acme2", "x" + strings.Repeat("1", 39), "", "ab", "Acme", "1acme",
		"acme-", "-acme", "ac_me", "ac.me", "ac me", "acmé", strings.Repeat("a", 41), "a--b", "a-1"} {
		inDoc := pattern.MatchString(s) && uint64(len(s)) >= id.MinLength && uint64(len(s)) <= *id.MaxLength
		require.Equal(t, tenant.ValidateID(s) == nil, inDoc, "%q", s)
	}
}
