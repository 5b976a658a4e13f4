package api_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/api"
	"github.com/misybot/tenancy/internal/domain/conversations"
	"github.com/misybot/tenancy/internal/domain/registry"
	"github.com/misybot/tenancy/internal/keys/keyring"
	"github.com/misybot/tenancy/internal/keys/seal"
	"github.com/misybot/tenancy/internal/model/limits"
	"github.com/misybot/tenancy/internal/platform/operators"
	"github.com/misybot/tenancy/internal/stores/tenantdb"
	"github.com/misybot/tenancy/internal/stores/tenantmongo"
	"github.com/misybot/tenancy/internal/stores/tenantredis"
	"github.com/misybot/tenancy/internal/testkit/testenv"
)

const token = "test-operator-token-0123456789"

type bundle struct {
	e *echo.Echo
	// ops is the operators' listener (/metrics, detailed /readyz).
	ops    *echo.Echo
	owner  *pgxpool.Pool
	app    *pgxpool.Pool
	sealer *seal.Sealer
	keys   *keyring.Keyring
	mongo  *tenantmongo.Store
	redis  *tenantredis.Store
}

func setup(t testing.TB, opts ...func(*api.Config)) bundle {
	t.Helper()
	sealer, err := seal.New(bytes.Repeat([]byte{7}, 32))
	require.NoError(t, err)
	app := testenv.AppPool(t)
	b := bundle{owner: testenv.OwnerPool(t), app: app, sealer: sealer, keys: keyring.New(app, sealer),
		mongo: tenantmongo.New(testenv.MongoClient(t)), redis: tenantredis.New(testenv.RedisClient(t))}
	cfg := api.Config{
		Registry:      registry.New(app),
		Settings:      tenantdb.New(app),
		Sealer:        sealer,
		Operators:     operators.New(app, token),
		Redis:         b.redis,
		Conversations: conversations.New(b.mongo, b.keys, b.redis, tenantdb.New(app), limits.Default()),
		SecretOverlap: time.Hour,
		Logger:        testenv.Logger(t),
	}
	for _, o := range opts {
		o(&cfg)
	}
	surfaces := api.NewApp(cfg)
	b.e, b.ops = surfaces.Public, surfaces.Ops
	return b
}

type response struct {
	Code   int
	Header http.Header
	Body   map[string]any
	Raw    string
}

func (b bundle) do(t testing.TB, method, path, body string, headers ...string) response {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	rec := httptest.NewRecorder()
	b.e.ServeHTTP(rec, req)
	out := response{Code: rec.Code, Header: rec.Header(), Raw: rec.Body.String()}
	if rec.Body.Len() > 0 {
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &out.Body), "body: %s", rec.Body.String())
	}
	return out
}

// requireProblem checks the one error shape: RFC 9457 fields and the problem content type.
func requireProblem(t testing.TB, r response, status int) {
	t.Helper()
	require.Equal(t, status, r.Code, r.Raw)
	require.Equal(t, "application/problem+json", r.Header.Get("Content-Type"))
	require.Equal(t, float64(status), r.Body["status"])
	require.NotEmpty(t, r.Body["type"])
	require.NotEmpty(t, r.Body["title"])
	require.NotEmpty(t, r.Body["instance"])
}

// registerBody is a valid registration for id, with fields replaced or added by overrides
// (a nil value removes the field).
func registerBody(id string, overrides ...any) string {
	m := map[string]any{
		"tenantId": id, "tenantName": "Acme", "contactEmail": "ops@acme.test",
		"websiteUrl": "https://acme.test", "businessIndustry": "retail",
		"allowedOrigins": []string{"https://acme.test", "http://localhost:3000"}, "tenantType": "standard",
	}
	for i := 0; i+1 < len(overrides); i += 2 {
		if overrides[i+1] == nil {
			delete(m, overrides[i].(string))
		} else {
			m[overrides[i].(string)] = overrides[i+1]
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// rowSnapshot is the whole stored row as text, to prove a refused request changed nothing.
func (b bundle) rowSnapshot(t *testing.T, id string) string {
	t.Helper()
	var s string
	err := b.owner.QueryRow(context.Background(), `SELECT coalesce((SELECT row_to_json(t)::text FROM tenants t WHERE tenant_id = $1), '')`, id).Scan(&s)
	require.NoError(t, err)
	return s
}

func TestTenantCRUD(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := testenv.TenantID("crud")
	path := api.TenantsPath + "/" + id

	created := b.do(t, http.MethodPost, api.TenantsPath, registerBody(id))
	require.Equal(t, http.StatusCreated, created.Code, created.Raw)
	require.Equal(t, path, created.Header.Get("Location"))
	require.Equal(t, id, created.Body["tenantId"])
	require.Equal(t, "pending", created.Body["status"])
	require.Equal(t, false, created.Body["isActive"])
	require.Equal(t, []any{"settings:read", "settings:write", "conversations:read", "conversations:write"}, created.Body["permissions"])
	secret, _ := created.Body["tenantSecret"].(string)
	raw, err := hex.DecodeString(secret)
	require.NoError(t, err)
	require.Len(t, raw, 32, "the secret is 32 random bytes")

	// The secret is stored sealed: not in plain text, and it opens to the value returned.
	var sealed []byte
	require.NoError(t, b.owner.QueryRow(context.Background(), `SELECT secret_ciphertext FROM tenants WHERE tenant_id = $1`, id).Scan(&sealed))
	require.NotContains(t, string(sealed), secret)
	require.NotContains(t, hex.EncodeToString(sealed), secret)
	plain, err := b.sealer.Open(id, api.SecretField, sealed)
	require.NoError(t, err)
	require.Equal(t, secret, string(plain))

	// Shown exactly once: no later answer carries it.
	got := b.do(t, http.MethodGet, path, "")
	require.Equal(t, http.StatusOK, got.Code)
	require.NotContains(t, got.Raw, secret)
	require.NotContains(t, got.Raw, "tenantSecret")
	require.Equal(t, created.Body["siteId"], got.Body["siteId"])

	list := b.do(t, http.MethodGet, api.TenantsPath+"?status=pending&tenantType=standard&limit=100", "")
	require.Equal(t, http.StatusOK, list.Code)
	require.NotContains(t, list.Raw, secret)
	require.Contains(t, list.Raw, `"tenantId":"`+id+`"`)

	// Without permissions, PUT keeps them; a type whose ceiling they exceed is refused.
	requireProblem(t, b.do(t, http.MethodPut, path, `{"tenantName":"Acme Inc","contactEmail":"new@acme.test","tenantType":"trial"}`), http.StatusBadRequest)
	kept := b.do(t, http.MethodPut, path, `{"tenantName":"Acme","contactEmail":"ops@acme.test","tenantType":"standard"}`)
	require.Equal(t, http.StatusOK, kept.Code, kept.Raw)
	require.Equal(t, created.Body["permissions"], kept.Body["permissions"], "kept as they were")

	updated := b.do(t, http.MethodPut, path, `{"tenantName":"Acme Inc","contactEmail":"new@acme.test","tenantType":"trial","allowedOrigins":["https://app.acme.test"],
		"permissions":["settings:read","conversations:read","conversations:write"]}`)
	require.Equal(t, http.StatusOK, updated.Code, updated.Raw)
	require.Equal(t, "Acme Inc", updated.Body["tenantName"])
	require.Equal(t, "new@acme.test", updated.Body["contactEmail"])
	require.Equal(t, []any{"https://app.acme.test"}, updated.Body["allowedOrigins"])
	require.Equal(t, []any{"settings:read", "conversations:read", "conversations:write"}, updated.Body["permissions"], "as sent")
	require.Equal(t, created.Body["siteId"], updated.Body["siteId"], "an omitted siteId is kept")

	dup := b.do(t, http.MethodPost, api.TenantsPath, registerBody(id))
	requireProblem(t, dup, http.StatusConflict)

	del := b.do(t, http.MethodDelete, path, "")
	require.Equal(t, http.StatusNoContent, del.Code, del.Raw)
	requireProblem(t, b.do(t, http.MethodGet, path, ""), http.StatusNotFound)
	requireProblem(t, b.do(t, http.MethodDelete, path, ""), http.StatusNotFound)
}

func TestDeleteRefusesProvisionedTenant(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := testenv.TenantID("prov")
	require.Equal(t, http.StatusCreated, b.do(t, http.MethodPost, api.TenantsPath, registerBody(id)).Code)
	_, err := b.owner.Exec(context.Background(), `UPDATE tenants SET status = 'active' WHERE tenant_id = $1`, id)
	require.NoError(t, err)
	before := b.rowSnapshot(t, id)

	r := b.do(t, http.MethodDelete, api.TenantsPath+"/"+id, "")
	requireProblem(t, r, http.StatusConflict)
	require.Equal(t, "active", r.Body["currentStatus"])
	require.Contains(t, r.Body["detail"], "offboard")
	require.Equal(t, before, b.rowSnapshot(t, id))

	// An offboarded tenant's record is frozen.
	_, err = b.owner.Exec(context.Background(), `UPDATE tenants SET status = 'offboarded' WHERE tenant_id = $1`, id)
	require.NoError(t, err)
	before = b.rowSnapshot(t, id)
	r = b.do(t, http.MethodPut, api.TenantsPath+"/"+id, `{"tenantName":"X","contactEmail":"x@y.zz","tenantType":"trial"}`)
	requireProblem(t, r, http.StatusConflict)
	require.Equal(t, "offboarded", r.Body["currentStatus"])
	require.Equal(t, before, b.rowSnapshot(t, id))
}

func TestListPaginatesWithCursor(t *testing.T) {
	t.Parallel()
	b := setup(t)
	prefix := testenv.TenantID("page")
	ids := []string{prefix + "-a", prefix + "-b", prefix + "-c"}
	for _, id := range ids {
		body := registerBody(id, "tenantType", "enterprise")
		require.Equal(t, http.StatusCreated, b.do(t, http.MethodPost, api.TenantsPath, body).Code)
	}
	// Walk every enterprise tenant two at a time; ours must come out in order, each once.
	var seen []string
	cursor := ""
	for range 1000 {
		r := b.do(t, http.MethodGet, api.TenantsPath+"?tenantType=enterprise&limit=2&cursor="+cursor, "")
		require.Equal(t, http.StatusOK, r.Code, r.Raw)
		items := r.Body["items"].([]any)
		require.LessOrEqual(t, len(items), 2)
		for _, it := range items {
			m := it.(map[string]any)
			require.Equal(t, "enterprise", m["tenantType"])
			if strings.HasPrefix(m["tenantId"].(string), prefix) {
				seen = append(seen, m["tenantId"].(string))
			}
		}
		next, _ := r.Body["nextCursor"].(string)
		if next == "" {
			break
		}
		cursor = next
	}
	require.Equal(t, ids, seen)
}

func TestOperatorTokenRequired(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := testenv.TenantID("auth")
	for _, auth := range []string{"", "Bearer wrong-token-0123456789", "Basic " + token, "Bearer"} {
		r := b.do(t, http.MethodPost, api.TenantsPath, registerBody(id), "Authorization", auth)
		requireProblem(t, r, http.StatusUnauthorized)
		require.NotEmpty(t, r.Header.Get("WWW-Authenticate"))
		requireProblem(t, b.do(t, http.MethodGet, api.TenantsPath, "", "Authorization", auth), http.StatusUnauthorized)
	}
	require.Empty(t, b.rowSnapshot(t, id), "an unauthenticated request created nothing")
}

// Every endpoint answers bad input with a 4xx problem document and leaves the stored tenant
// exactly as it was.
func TestBadInputIsRefusedAndChangesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := testenv.TenantID("bad")
	require.Equal(t, http.StatusCreated, b.do(t, http.MethodPost, api.TenantsPath, registerBody(id)).Code)
	_, err := b.owner.Exec(context.Background(), `UPDATE tenants SET status = 'active' WHERE tenant_id = $1`, id)
	require.NoError(t, err)
	before := b.rowSnapshot(t, id)
	path := api.TenantsPath + "/" + id

	cases := []struct {
		name, method, path, body string
		status                   int
		field                    string
		headers                  []string
	}{
		{"empty body", "POST", api.TenantsPath, "", 400, "", nil},
		{"truncated JSON", "POST", api.TenantsPath, `{"tenantId":`, 400, "", nil},
		{"syntax error", "POST", api.TenantsPath, `{"tenantId" "x"}`, 400, "", nil},
		{"array body", "POST", api.TenantsPath, `[]`, 400, "", nil},
		{"two objects", "POST", api.TenantsPath, registerBody(id+"x") + `{}`, 400, "", nil},
		{"unknown field", "POST", api.TenantsPath, `{"tenantId":"zzz","isAdmin":true}`, 400, "isAdmin", nil},
		{"wrong type", "POST", api.TenantsPath, `{"tenantId":42}`, 400, "tenantId", nil},
		{"form content type", "POST", api.TenantsPath, registerBody(id + "x"), 415, "", []string{"Content-Type", "application/x-www-form-urlencoded"}},
		{"uppercase id", "POST", api.TenantsPath, registerBody("ACME"), 400, "tenantId", nil},
		{"id too long", "POST", api.TenantsPath, registerBody(strings.Repeat("a", 41)), 400, "tenantId", nil},
		{"id with glob", "POST", api.TenantsPath, registerBody("acme*"), 400, "tenantId", nil},
		{"bad email", "POST", api.TenantsPath, registerBody(id+"x", "contactEmail", "not-an-email"), 400, "contactEmail", nil},
		{"bad url", "POST", api.TenantsPath, registerBody(id+"x", "websiteUrl", "ftp://acme.test"), 400, "websiteUrl", nil},
		{"origin with path", "POST", api.TenantsPath, registerBody(id+"x", "allowedOrigins", []string{"https://acme.test/app"}), 400, "allowedOrigins[0]", nil},
		{"wildcard origin", "POST", api.TenantsPath, registerBody(id+"x", "allowedOrigins", []string{"*"}), 400, "allowedOrigins[0]", nil},
		{"missing email", "POST", api.TenantsPath, registerBody(id+"x", "contactEmail", nil), 400, "contactEmail", nil},
		{"duplicate origins", "POST", api.TenantsPath, registerBody(id+"x", "allowedOrigins", []string{"https://a.test", "https://a.test"}), 400, "allowedOrigins", nil},
		{"unknown type", "POST", api.TenantsPath, registerBody(id+"x", "tenantType", "gold"), 400, "tenantType", nil},
		{"unknown permission", "POST", api.TenantsPath, registerBody(id+"x", "permissions", []string{"root"}), 400, "permissions[0]", nil},
		{"permission above type", "POST", api.TenantsPath, registerBody(id+"x", "permissions", []string{"audit:read"}), 400, "permissions[0]", nil},
		{"NUL in name", "POST", api.TenantsPath, registerBody(id+"x", "tenantName", "a\x00b"), 400, "tenantName", nil},
		{"NUL in origin", "POST", api.TenantsPath, registerBody(id+"x", "allowedOrigins", []string{"https://a\x00.test"}), 400, "allowedOrigins[0]", nil},
		{"blank name", "POST", api.TenantsPath, registerBody(id+"x", "tenantName", "   "), 400, "tenantName", nil},
		{"origin port out of range", "POST", api.TenantsPath, registerBody(id+"x", "allowedOrigins", []string{"https://a.test:99999"}), 400, "allowedOrigins[0]", nil},
		{"put NUL", "PUT", path, `{"tenantName":"X\u0000","contactEmail":"x@y.zz","tenantType":"trial"}`, 400, "tenantName", nil},
		{"onboard NUL", "POST", api.TenantsPath + "/onboard", registerBody(id+"x", "businessIndustry", "\x00"), 400, "businessIndustry", nil},
		{"suspend NUL reason", "POST", path + "/suspend", `{"reason":"a\u0000b"}`, 400, "reason", nil},
		{"suspend unknown field", "POST", path + "/suspend", `{"why":"x"}`, 400, "why", nil},
		{"offboard bad id", "POST", api.TenantsPath + "/BAD/offboard", "", 400, "tenantId", nil},
		{"operation unknown tenant", "GET", api.TenantsPath + "/no-such-tenant/operations/current", "", 404, "", nil},
		{"rotate unknown tenant", "POST", api.TenantsPath + "/no-such-tenant/secret/rotate", "", 404, "", nil},
		{"setting NUL value", "PUT", path + "/settings/k", `{"value":{"a":["\u0000"]}}`, 400, "value[0]", nil},
		{"duplicate id", "POST", api.TenantsPath, registerBody(id), 409, "", nil},
		{"get bad id", "GET", api.TenantsPath + "/Bad_Id", "", 400, "tenantId", nil},
		{"get unknown", "GET", api.TenantsPath + "/no-such-tenant", "", 404, "", nil},
		{"list bad status", "GET", api.TenantsPath + "?status=gone", "", 400, "status", nil},
		{"list bad type", "GET", api.TenantsPath + "?tenantType=gold", "", 400, "tenantType", nil},
		{"list bad limit", "GET", api.TenantsPath + "?limit=1000", "", 400, "limit", nil},
		{"list bad cursor", "GET", api.TenantsPath + "?cursor=!!!", "", 400, "cursor", nil},
		{"list unknown param", "GET", api.TenantsPath + "?stauts=active", "", 400, "stauts", nil},
		{"put id mismatch", "PUT", path, `{"tenantId":"other","tenantName":"X","contactEmail":"x@y.zz","tenantType":"trial"}`, 400, "tenantId", nil},
		{"put missing name", "PUT", path, `{"contactEmail":"x@y.zz","tenantType":"trial"}`, 400, "tenantName", nil},
		{"put status", "PUT", path, `{"tenantName":"X","contactEmail":"x@y.zz","tenantType":"trial","status":"active"}`, 400, "status", nil},
		{"put bad permission", "PUT", path, `{"tenantName":"X","contactEmail":"x@y.zz","tenantType":"trial","permissions":["audit:read"]}`, 400, "permissions[0]", nil},
		{"put unknown tenant", "PUT", api.TenantsPath + "/no-such-tenant", `{"tenantName":"X","contactEmail":"x@y.zz","tenantType":"trial"}`, 404, "", nil},
		{"put malformed", "PUT", path, `{`, 400, "", nil},
		{"delete bad id", "DELETE", api.TenantsPath + "/-x-", "", 400, "tenantId", nil},
		{"method not allowed", "PATCH", path, `{}`, 405, "", nil},
		{"unknown route", "GET", "/api/meta-agent/nothing", "", 404, "", nil},
		{"body too large", "POST", api.TenantsPath, `{"tenantName":"` + strings.Repeat("a", 2<<20) + `"}`, 413, "", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := b.do(t, tc.method, tc.path, tc.body, tc.headers...)
			requireProblem(t, r, tc.status)
			if tc.field != "" {
				require.Contains(t, r.Raw, `"field":"`+tc.field+`"`)
			}
			require.Equal(t, before, b.rowSnapshot(t, id), "refused request changed the tenant")
		})
	}
	require.Empty(t, b.rowSnapshot(t, id+"x"), "no refused registration created a tenant")
}

// The list searches by id prefix and by cell, pages through the matches, and refuses a prefix
// that is not the beginning of an id (a LIKE wildcard, an upper-case letter) with 400.
func TestListSearchesByIDPrefixAndCell(t *testing.T) {
	t.Parallel()
	b := setup(t)
	prefix := testenv.TenantID("find")
	ids := []string{prefix + "-a", prefix + "-b", prefix + "-c"}
	for _, id := range append(slices.Clone(ids), prefix+"x") {
		require.Equal(t, http.StatusCreated, b.do(t, http.MethodPost, api.TenantsPath, registerBody(id)).Code)
	}
	t.Cleanup(func() {
		_, _ = b.owner.Exec(context.Background(), `DELETE FROM tenants WHERE tenant_id LIKE $1 || '%'`, prefix)
	})
	_, err := b.owner.Exec(context.Background(), `UPDATE tenants SET cell_id = 'default' WHERE tenant_id = $1`, ids[1])
	require.NoError(t, err)
	list := func(query string) []string {
		t.Helper()
		var out []string
		cursor := ""
		for range 10 {
			r := b.do(t, http.MethodGet, api.TenantsPath+"?limit=1&"+query+"&cursor="+cursor, "")
			require.Equal(t, http.StatusOK, r.Code, r.Raw)
			for _, it := range r.Body["items"].([]any) {
				out = append(out, it.(map[string]any)["tenantId"].(string))
			}
			next, _ := r.Body["nextCursor"].(string)
			if next == "" {
				return out
			}
			cursor = next
		}
		t.Fatal("more pages than tenants")
		return nil
	}
	require.Equal(t, ids, list("idPrefix="+prefix+"-"))
	require.Equal(t, append(slices.Clone(ids), prefix+"x"), list("idPrefix="+prefix))
	require.Equal(t, []string{ids[2]}, list("idPrefix="+ids[2]))
	require.Equal(t, []string{ids[1]}, list("idPrefix="+prefix+"&cellId=default"))
	require.Empty(t, list("idPrefix="+prefix+"-zz"))
	for _, bad := range []string{"idPrefix=a%25", "idPrefix=a_", "idPrefix=Acme", "idPrefix=", "cellId=Bad_Cell"} {
		r := b.do(t, http.MethodGet, api.TenantsPath+"?"+bad, "")
		requireProblem(t, r, http.StatusBadRequest)
	}
}
