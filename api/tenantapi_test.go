package api_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/bson"

	"github.com/misybot/tenancy/api"
	"github.com/misybot/tenancy/internal/keys/signing"
	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/stores/tenantredis"
	"github.com/misybot/tenancy/internal/testkit/testenv"
)

// signedTenant is a registered, provisioned, active tenant and its secret.
type signedTenant struct {
	id     string
	secret string
}

// provision registers a tenant through the management API and provisions what the tenant API
// needs (as onboarding would): active status, Redis context record, data key, MongoDB database.
func (b bundle) provision(t testing.TB, prefix string, perms []string, origins []string) signedTenant {
	t.Helper()
	id := testenv.TenantID(prefix)
	r := b.do(t, http.MethodPost, api.TenantsPath, registerBody(id, "tenantType", "enterprise", "permissions", perms, "allowedOrigins", origins))
	require.Equal(t, http.StatusCreated, r.Code, r.Raw)
	ctx := tenant.WithID(context.Background(), id)
	_, err := b.owner.Exec(ctx, `UPDATE tenants SET status = 'active' WHERE tenant_id = $1`, id)
	require.NoError(t, err)
	require.NoError(t, b.redis.WriteContext(ctx, tenantredis.ContextRecord{Status: "active", Type: "enterprise", Permissions: perms, AllowedOrigins: origins, UpdatedAt: time.Now()}))
	_, err = b.keys.Ensure(ctx)
	require.NoError(t, err)
	_, err = b.mongo.Provision(ctx)
	require.NoError(t, err)
	return signedTenant{id: id, secret: r.Body["tenantSecret"].(string)}
}

var allPerms = []string{"settings:read", "settings:write", "conversations:read", "conversations:write", "audit:read"}

func nonce() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// signedReq is one tenant API request, signed unless a field below is overridden.
type signedReq struct {
	method, path, query, body string
	tenantID, secret          string
	ts                        int64
	nonce                     string
	origin                    string
	// tamper changes the request after signing.
	tamper func(*http.Request)
}

func (b bundle) send(t testing.TB, r signedReq) response {
	t.Helper()
	rec := httptest.NewRecorder()
	b.e.ServeHTTP(rec, r.build())
	out := response{Code: rec.Code, Header: rec.Header(), Raw: rec.Body.String()}
	if rec.Body.Len() > 0 {
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &out.Body), rec.Body.String())
	}
	return out
}

// build makes the signed HTTP request.
func (r signedReq) build() *http.Request {
	if r.ts == 0 {
		r.ts = time.Now().Unix()
	}
	if r.nonce == "" {
		r.nonce = nonce()
	}
	target := api.TenantAPIPath + r.path
	if r.query != "" {
		target += "?" + r.query
	}
	req := httptest.NewRequest(r.method, target, strings.NewReader(r.body))
	if r.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	canonical := signing.Canonical(r.method, req.URL.EscapedPath(), req.URL.RawQuery, r.ts, r.nonce, []byte(r.body))
	req.Header.Set(signing.HeaderTenant, r.tenantID)
	req.Header.Set(signing.HeaderTimestamp, strconv.FormatInt(r.ts, 10))
	req.Header.Set(signing.HeaderNonce, r.nonce)
	req.Header.Set(signing.HeaderSignature, signing.Header(signing.MAC([]byte(r.secret), canonical)))
	if r.origin != "" {
		req.Header.Set("Origin", r.origin)
	}
	if r.tamper != nil {
		r.tamper(req)
	}
	return req
}

func (st signedTenant) req(method, path, body string) signedReq {
	return signedReq{method: method, path: path, body: body, tenantID: st.id, secret: st.secret}
}

func TestSignedRequestsReachOwnData(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := b.provision(t, "sig", allPerms, []string{"https://a.test"})

	me := b.send(t, a.req("GET", "/me", ""))
	require.Equal(t, http.StatusOK, me.Code, me.Raw)
	require.Equal(t, a.id, me.Body["tenantId"])
	require.NotContains(t, me.Raw, a.secret)
	require.NotContains(t, me.Raw, "tenantSecret")

	put := b.send(t, a.req("PUT", "/settings/theme", `{"value":"dark"}`))
	require.Equal(t, http.StatusOK, put.Code, put.Raw)
	get := b.send(t, a.req("GET", "/settings/theme", ""))
	require.Equal(t, "dark", get.Body["value"])

	conv := b.send(t, a.req("POST", "/conversations", `{"title":"refund for order 7731"}`))
	require.Equal(t, http.StatusCreated, conv.Code, conv.Raw)
	cid := conv.Body["id"].(string)
	msg := b.send(t, a.req("POST", "/conversations/"+cid+"/messages", `{"role":"user","text":"my card is 4111"}`))
	require.Equal(t, http.StatusCreated, msg.Code, msg.Raw)

	for range 2 { // the second read comes from the Redis cache
		got := b.send(t, a.req("GET", "/conversations/"+cid, ""))
		require.Equal(t, http.StatusOK, got.Code, got.Raw)
		require.Contains(t, got.Raw, "my card is 4111")
		require.Contains(t, got.Raw, "refund for order 7731")
	}
	list := b.send(t, a.req("GET", "/conversations", ""))
	require.Contains(t, list.Raw, "refund for order 7731")

	// At rest the text is ciphertext, in MongoDB and in the Redis cache.
	db, err := b.mongo.Database(tenant.WithID(context.Background(), a.id))
	require.NoError(t, err)
	var stored bson.M
	require.NoError(t, db.Collection("messages").FindOne(context.Background(), bson.M{"conversationId": cid}).Decode(&stored))
	raw, _ := bson.MarshalExtJSON(stored, false, false)
	require.NotContains(t, string(raw), "4111")
	var storedConv bson.M
	require.NoError(t, db.Collection("conversations").FindOne(context.Background(), bson.M{"_id": cid}).Decode(&storedConv))
	raw, _ = bson.MarshalExtJSON(storedConv, false, false)
	require.NotContains(t, string(raw), "7731", "the title is ciphertext too")
	scope, err := b.redis.Scope(tenant.WithID(context.Background(), a.id))
	require.NoError(t, err)
	cachedRead, err := scope.Get(context.Background(), "conversation_cache", cid)
	require.NoError(t, err)
	require.NotContains(t, cachedRead, "4111")
	require.NotContains(t, cachedRead, "7731")
}

// Every way to break a signature is refused with 401 and changes nothing.
func TestSignatureRefusals(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := b.provision(t, "sigref", allPerms, nil)
	other := b.provision(t, "sigoth", allPerms, nil)
	now := time.Now().Unix()

	cases := map[string]signedReq{
		"tampered body": {method: "PUT", path: "/settings/theme", body: `{"value":"dark"}`, tamper: func(r *http.Request) {
			r.Body = ioNop(`{"value":"evil"}`)
		}},
		"tampered path":  {method: "GET", path: "/settings/theme", tamper: func(r *http.Request) { r.URL.Path = api.TenantAPIPath + "/settings/other" }},
		"tampered query": {method: "GET", path: "/conversations", query: "limit=1", tamper: func(r *http.Request) { r.URL.RawQuery = "limit=2" }},
		// A few seconds past the window: the test's clock reading may be a second behind the server's.
		"stale timestamp":  {method: "GET", path: "/me", ts: now - 305},
		"future timestamp": {method: "GET", path: "/me", ts: now + 305},
		"other's secret":   {method: "GET", path: "/me", secret: other.secret},
		"no signature":     {method: "GET", path: "/me", tamper: func(r *http.Request) { r.Header.Del(signing.HeaderSignature) }},
		"bad header":       {method: "GET", path: "/me", tamper: func(r *http.Request) { r.Header.Set(signing.HeaderSignature, "sha1=abc") }},
		"tenant swapped":   {method: "GET", path: "/me", tamper: func(r *http.Request) { r.Header.Set(signing.HeaderTenant, other.id) }},
	}
	for name, rq := range cases {
		t.Run(name, func(t *testing.T) {
			rq.tenantID = a.id
			if rq.secret == "" {
				rq.secret = a.secret
			}
			r := b.send(t, rq)
			require.Equal(t, http.StatusUnauthorized, r.Code, r.Raw)
			requireProblem(t, r, http.StatusUnauthorized)
			require.NotContains(t, r.Raw, a.secret)
		})
	}
	got := b.send(t, a.req("GET", "/settings/theme", ""))
	require.Equal(t, http.StatusNotFound, got.Code, "no refused PUT wrote the setting")

	// Timestamps just inside the window pass (the clock read again: the cases above took time).
	now = time.Now().Unix()
	for _, ts := range []int64{now - 298, now + 298} {
		r := a.req("GET", "/me", "")
		r.ts = ts
		require.Equal(t, http.StatusOK, b.send(t, r).Code)
	}
}

func TestReplayedNonceIsRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := b.provision(t, "replay", allPerms, nil)
	r := a.req("PUT", "/settings/counter", `{"value":1}`)
	r.nonce, r.ts = nonce(), time.Now().Unix()
	require.Equal(t, http.StatusOK, b.send(t, r).Code)
	again := b.send(t, r)
	requireProblem(t, again, http.StatusUnauthorized)
	require.Contains(t, again.Body["detail"], "nonce")
}

func TestSuspendedOffboardingAndOffboardedTenantsAreRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, status := range []string{"suspended", "offboarding"} {
		a := b.provision(t, "st", allPerms, nil)
		_, err := b.redis.SetStatus(tenant.WithID(context.Background(), a.id), status, time.Now().UnixNano())
		require.NoError(t, err)
		r := b.send(t, a.req("GET", "/me", ""))
		requireProblem(t, r, http.StatusForbidden)
		require.Contains(t, r.Body["detail"], status)
	}
	// Offboarded: the context record is gone with the tenant's keys, and the tenant is answered
	// as one that never existed.
	gone := b.provision(t, "gone", allPerms, nil)
	_, err := b.redis.Purge(tenant.WithID(context.Background(), gone.id), tenantredis.PurgeProgress{}, 100, nil)
	require.NoError(t, err)
	requireProblem(t, b.send(t, gone.req("GET", "/me", "")), http.StatusUnauthorized)

}

// A tenant id that does not exist is answered exactly as a real tenant's wrong signature (same
// status, same problem document), so the answer does not tell which tenant ids exist.
func TestUnknownTenantIsIndistinguishableFromABadSignature(t *testing.T) {
	t.Parallel()
	b := setup(t)
	real := b.provision(t, "enum", allPerms, nil)
	wrong := signedTenant{id: real.id, secret: strings.Repeat("0", 64)}
	unknown := signedTenant{id: testenv.TenantID("nobody"), secret: strings.Repeat("0", 64)}
	a, u := b.send(t, wrong.req("GET", "/me", "")), b.send(t, unknown.req("GET", "/me", ""))
	requireProblem(t, a, http.StatusUnauthorized)
	requireProblem(t, u, http.StatusUnauthorized)
	for _, field := range []string{"type", "title", "status", "detail"} {
		require.Equal(t, a.Body[field], u.Body[field], field)
	}
}

// After a rotation both secrets work during the overlap; after it, only the new one.
func TestRotatedSecretExpiresAfterOverlap(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := b.provision(t, "rot", allPerms, nil)
	r := b.do(t, http.MethodPost, api.TenantsPath+"/"+a.id+"/secret/rotate", "")
	require.Equal(t, http.StatusOK, r.Code, r.Raw)
	fresh := signedTenant{id: a.id, secret: r.Body["tenantSecret"].(string)}
	require.NotEqual(t, a.secret, fresh.secret)

	require.Equal(t, http.StatusOK, b.send(t, fresh.req("GET", "/me", "")).Code)
	require.Equal(t, http.StatusOK, b.send(t, a.req("GET", "/me", "")).Code, "the old secret works during the overlap")

	// End the overlap (as time would) and drop the process cache by using a new server.
	_, err := b.owner.Exec(context.Background(), `UPDATE tenants SET previous_secret_expires_at = now() - interval '1 second' WHERE tenant_id = $1`, a.id)
	require.NoError(t, err)
	b2 := setup(t)
	requireProblem(t, b2.send(t, a.req("GET", "/me", "")), http.StatusUnauthorized)
	require.Equal(t, http.StatusOK, b2.send(t, fresh.req("GET", "/me", "")).Code)
	// (A server that cached the pair keeps the expiry it read, which is the same instant unless
	// an administrator shortens the overlap by hand; its cache lives 30 s.)
}

// A rotation with overlap 0 revokes the previous secret at once in every API process, not only
// in the one that rotated: another process that cached it refuses it on the next request.
func TestImmediateRevocationReachesEveryProcess(t *testing.T) {
	t.Parallel()
	b := setup(t)
	other := setup(t) // a second API process on the same stores
	a := b.provision(t, "revoke", allPerms, nil)
	require.Equal(t, http.StatusOK, other.send(t, a.req("GET", "/me", "")).Code, "the other process caches the secret")

	requireProblem(t, b.do(t, http.MethodPost, api.TenantsPath+"/"+a.id+"/secret/rotate?overlap=forever", ""), http.StatusBadRequest)
	r := b.do(t, http.MethodPost, api.TenantsPath+"/"+a.id+"/secret/rotate?overlap=0s", "")
	require.Equal(t, http.StatusOK, r.Code, r.Raw)
	fresh := signedTenant{id: a.id, secret: r.Body["tenantSecret"].(string)}

	requireProblem(t, other.send(t, a.req("GET", "/me", "")), http.StatusUnauthorized)
	requireProblem(t, b.send(t, a.req("GET", "/me", "")), http.StatusUnauthorized)
	require.Equal(t, http.StatusOK, other.send(t, fresh.req("GET", "/me", "")).Code)
}

func TestPermissionsGateEndpoints(t *testing.T) {
	t.Parallel()
	b := setup(t)
	reader := b.provision(t, "perm", []string{"settings:read", "conversations:read"}, nil)
	for _, rq := range []signedReq{
		reader.req("PUT", "/settings/x", `{"value":1}`),
		reader.req("DELETE", "/settings/x", ""),
		reader.req("POST", "/conversations", `{"title":"t"}`),
		reader.req("POST", "/conversations/0123456789abcdef01234567/messages", `{"role":"user","text":"x"}`),
	} {
		r := b.send(t, rq)
		requireProblem(t, r, http.StatusForbidden)
		require.Contains(t, r.Body["detail"], "permission")
	}
	require.Equal(t, http.StatusOK, b.send(t, reader.req("GET", "/settings", "")).Code)

	// An operator's PUT that lowers the ceiling reaches request checks at once, on the next
	// request (the Redis context record is updated); raising one waits for an approval (e2e).
	require.Equal(t, http.StatusOK, b.send(t, reader.req("GET", "/conversations", "")).Code)
	revoke := b.do(t, http.MethodPut, api.TenantsPath+"/"+reader.id, `{"tenantName":"T","contactEmail":"a@b.co","tenantType":"standard","permissions":["settings:read"]}`)
	require.Equal(t, http.StatusOK, revoke.Code, revoke.Raw)
	requireProblem(t, b.send(t, reader.req("GET", "/conversations", "")), http.StatusForbidden)
	require.Equal(t, http.StatusOK, b.send(t, reader.req("GET", "/settings", "")).Code)
}

// Tenant A naming B's conversation or setting gets nothing of B.
func TestTenantCannotReachAnotherTenantsIDs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := b.provision(t, "ida", allPerms, nil)
	other := b.provision(t, "idb", allPerms, nil)
	conv := b.send(t, other.req("POST", "/conversations", `{"title":"secret plans"}`))
	require.Equal(t, http.StatusCreated, conv.Code)
	cid := conv.Body["id"].(string)
	require.Equal(t, http.StatusOK, b.send(t, other.req("PUT", "/settings/plan", `{"value":"B only"}`)).Code)

	requireProblem(t, b.send(t, a.req("GET", "/conversations/"+cid, "")), http.StatusNotFound)
	requireProblem(t, b.send(t, a.req("POST", "/conversations/"+cid+"/messages", `{"role":"user","text":"hi"}`)), http.StatusNotFound)
	requireProblem(t, b.send(t, a.req("GET", "/settings/plan", "")), http.StatusNotFound)
	requireProblem(t, b.send(t, a.req("DELETE", "/settings/plan", "")), http.StatusNotFound)
	list := b.send(t, a.req("GET", "/conversations", ""))
	require.NotContains(t, list.Raw, cid)
	// A query or body naming B changes nothing either.
	requireProblem(t, b.send(t, a.req("PUT", "/settings/plan", `{"value":"x","tenantId":"`+other.id+`"}`)), http.StatusBadRequest)
	got := b.send(t, other.req("GET", "/settings/plan", ""))
	require.Equal(t, "B only", got.Body["value"])
}

func TestCORSPerTenant(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := b.provision(t, "cors", allPerms, []string{"https://shop.a.test"})

	ok := a.req("GET", "/me", "")
	ok.origin = "https://shop.a.test"
	r := b.send(t, ok)
	require.Equal(t, http.StatusOK, r.Code, r.Raw)
	require.Equal(t, "https://shop.a.test", r.Header.Get("Access-Control-Allow-Origin"))
	require.Contains(t, r.Header.Values("Vary"), "Origin")
	require.Empty(t, r.Header.Get("Access-Control-Allow-Credentials"))

	bad := a.req("GET", "/me", "")
	bad.origin = "https://evil.test"
	r = b.send(t, bad)
	requireProblem(t, r, http.StatusForbidden)
	require.Empty(t, r.Header.Get("Access-Control-Allow-Origin"))

	preflight := func(origin string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodOptions, api.TenantAPIPath+"/settings/x", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "PUT")
		rec := httptest.NewRecorder()
		b.e.ServeHTTP(rec, req)
		return rec
	}
	pf := preflight("https://shop.a.test")
	require.Equal(t, http.StatusNoContent, pf.Code)
	require.Equal(t, "https://shop.a.test", pf.Header().Get("Access-Control-Allow-Origin"))
	require.Contains(t, pf.Header().Get("Access-Control-Allow-Headers"), "X-Signature")
	require.NotEqual(t, "*", pf.Header().Get("Access-Control-Allow-Origin"))
	pf = preflight("https://evil.test")
	require.Equal(t, http.StatusForbidden, pf.Code)
	require.Empty(t, pf.Header().Get("Access-Control-Allow-Origin"))
}

// Operators' roles gate the management API.
func TestOperatorRoles(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ops := operatorsStore(t)
	auditorTok, err := ops.Create(context.Background(), "auditor-"+nonce(), "auditor")
	require.NoError(t, err)
	operatorTok, err := ops.Create(context.Background(), "operator-"+nonce(), "operator")
	require.NoError(t, err)
	id := testenv.TenantID("roles")

	as := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }
	requireProblem(t, b.do(t, http.MethodPost, api.TenantsPath, registerBody(id), as(auditorTok)...), http.StatusForbidden)
	require.Equal(t, http.StatusCreated, b.do(t, http.MethodPost, api.TenantsPath, registerBody(id), as(operatorTok)...).Code)
	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, api.TenantsPath+"/"+id, "", as(auditorTok)...).Code)
	requireProblem(t, b.do(t, http.MethodDelete, api.TenantsPath+"/"+id, "", as(operatorTok)...), http.StatusForbidden)
	// Whoever rotates a tenant's secret learns it: platform-admins only.
	requireProblem(t, b.do(t, http.MethodPost, api.TenantsPath+"/"+id+"/secret/rotate", "", as(operatorTok)...), http.StatusForbidden)
	require.Equal(t, http.StatusOK, b.do(t, http.MethodPost, api.TenantsPath+"/"+id+"/secret/rotate", "").Code, "the admin may")
	require.Equal(t, http.StatusNoContent, b.do(t, http.MethodDelete, api.TenantsPath+"/"+id, "").Code, "the admin may")

	_, err = ops.Revoke(context.Background(), mustName(t, ops, auditorTok))
	require.NoError(t, err)
	requireProblem(t, b.do(t, http.MethodGet, api.TenantsPath, "", as(auditorTok)...), http.StatusUnauthorized)
}
