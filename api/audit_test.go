package api_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/misybot/tenancy/api"
	"github.com/misybot/tenancy/internal/domain/audit"
	"github.com/misybot/tenancy/internal/domain/conversations"
	"github.com/misybot/tenancy/internal/domain/registry"
	"github.com/misybot/tenancy/internal/model/limits"
	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/platform/operators"
	"github.com/misybot/tenancy/internal/stores/tenantdb"
	"github.com/misybot/tenancy/internal/stores/tenantmongo"
	"github.com/misybot/tenancy/internal/testkit/testenv"
)

// auditBundle is the API with its audit trail, on a platform chain of its own.
type auditBundle struct {
	bundle
	w        *audit.Writer
	client   *mongo.Client
	platform *mongo.Collection
}

func auditSetup(t *testing.T, opts ...func(*api.Config)) auditBundle {
	t.Helper()
	b := setup(t)
	client := testenv.MongoClient(t)
	db := strings.ReplaceAll(testenv.TenantID("platform_api"), "-", "_")
	t.Cleanup(func() { _ = client.Database(db).Drop(context.Background()) })
	w := audit.NewWriter(b.app, client, tenantmongo.New(client), b.sealer.PurposeKey(audit.KeyPurpose), audit.WithPlatformDatabase(db))
	cfg := api.Config{
		Registry:      registry.New(b.app),
		Settings:      tenantdb.New(b.app),
		Sealer:        b.sealer,
		Operators:     operators.New(b.app, token),
		Redis:         b.redis,
		Conversations: conversations.New(b.mongo, b.keys, b.redis, tenantdb.New(b.app), limits.Default()),
		SecretOverlap: time.Hour,
		Audit:         w,
		Logger:        testenv.Logger(t),
	}
	for _, o := range opts {
		o(&cfg)
	}
	b.e = api.New(cfg)
	return auditBundle{bundle: b, w: w, client: client, platform: client.Database(db).Collection(audit.Collection)}
}

// events reads stored events matching filter from a tenant's chain, or the platform chain for
// tenantID "", in seq order.
func (b auditBundle) events(t *testing.T, tenantID string, filter bson.D) []audit.Event {
	t.Helper()
	coll := b.platform
	chain := b.w.PlatformChain()
	if tenantID != "" {
		coll = b.client.Database("tenant_" + tenantID).Collection(audit.Collection)
		var err error
		chain, err = b.w.TenantChain(tenant.WithID(context.Background(), tenantID))
		require.NoError(t, err)
	}
	// What the worker's shipper would have done by now.
	_, err := chain.Ship(context.Background())
	require.NoError(t, err)
	cur, err := coll.Find(context.Background(), filter, options.Find().SetSort(bson.D{{Key: "seq", Value: 1}}))
	require.NoError(t, err)
	out := []audit.Event{}
	require.NoError(t, cur.All(context.Background(), &out))
	return out
}

// unauthenticated reads the refusals of callers who proved no identity, kept outside the chains.
func (b auditBundle) unauthenticated(t *testing.T, claimedTenant string) []audit.Event {
	t.Helper()
	_, err := b.w.UnauthenticatedLog().Ship(context.Background()) // as the worker's shipper would
	require.NoError(t, err)
	coll := b.platform.Database().Collection(audit.UnauthenticatedCollection)
	cur, err := coll.Find(context.Background(), bson.D{{Key: "details.claimedTenantId", Value: claimedTenant}}, options.Find().SetSort(bson.D{{Key: "at", Value: 1}}))
	require.NoError(t, err)
	out := []audit.Event{}
	require.NoError(t, cur.All(context.Background(), &out))
	return out
}

// raw sends an operator request and returns the recorder, whatever the body's format.
func (b auditBundle) raw(t *testing.T, method, target string, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	b.e.ServeHTTP(rec, req)
	return rec
}

// active registers a tenant, marks it active and creates its database, as onboarding would.
func (b auditBundle) active(t *testing.T, prefix string) string {
	t.Helper()
	id := testenv.TenantID(prefix)
	require.Equal(t, http.StatusCreated, b.do(t, http.MethodPost, api.TenantsPath, registerBody(id)).Code)
	_, err := b.owner.Exec(context.Background(), `UPDATE tenants SET status = 'active' WHERE tenant_id = $1`, id)
	require.NoError(t, err)
	_, err = b.mongo.Provision(tenant.WithID(context.Background(), id))
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.client.Database("tenant_" + id).Drop(context.Background()) })
	return id
}

// Each management write leaves exactly one event, in the platform chain while the tenant has
// no open chain and in its own chain once it has; reads leave none; a client's repeated
// X-Request-Id does not merge two requests; no body value is stored.
func TestManagementWritesAreAuditedOnce(t *testing.T) {
	t.Parallel()
	b := auditSetup(t)
	id := testenv.TenantID("aud")

	r := b.do(t, http.MethodPost, api.TenantsPath, registerBody(id), "X-Request-Id", "same-id")
	require.Equal(t, http.StatusCreated, r.Code, r.Raw)
	requireProblem(t, b.do(t, http.MethodPost, api.TenantsPath, registerBody(id), "X-Request-Id", "same-id"), http.StatusConflict)
	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, api.TenantsPath+"/"+id, "").Code)

	reg := b.events(t, "", bson.D{{Key: "tenantId", Value: id}})
	require.Len(t, reg, 2, "two registration attempts, two events; the read none")
	require.Equal(t, "tenant.register", reg[0].Action)
	require.Equal(t, audit.OutcomeSuccess, reg[0].Outcome)
	require.Equal(t, audit.Actor{Type: audit.ActorOperator, ID: "bootstrap"}, reg[0].Actor)
	require.Equal(t, "same-id", reg[0].RequestID)
	require.Equal(t, api.TenantsPath, reg[0].Resource)
	require.Equal(t, "committed", reg[0].Details["status"], "recorded in the transaction that registered the tenant")
	require.Equal(t, audit.OutcomeFailure, reg[1].Outcome)
	require.Contains(t, reg[1].Reason, "already registered")
	require.NotEqual(t, reg[0].ID, reg[1].ID)
	require.NotContains(t, reg[0].ID, "same-id", "the client's request id does not make the event id")

	// Once active with a database, the tenant's own chain takes its events.
	_, err := b.owner.Exec(context.Background(), `UPDATE tenants SET status = 'active' WHERE tenant_id = $1`, id)
	require.NoError(t, err)
	_, err = b.mongo.Provision(tenant.WithID(context.Background(), id))
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.client.Database("tenant_" + id).Drop(context.Background()) })
	require.Equal(t, http.StatusOK, b.do(t, http.MethodPut, api.TenantsPath+"/"+id+"/settings/motto", `{"value":"plaintext-motto-42"}`).Code)
	requireProblem(t, b.do(t, http.MethodPut, api.TenantsPath+"/"+id+"/settings/motto", `{"value":"plaintext-motto-42","extra":"plaintext-extra-43"}`), http.StatusBadRequest)
	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, api.TenantsPath+"/"+id+"/settings/motto", "").Code)

	own := b.events(t, id, bson.D{})
	require.Len(t, own, 2)
	require.Equal(t, "tenant.setting.put", own[0].Action)
	require.Equal(t, api.TenantsPath+"/"+id+"/settings/motto", own[0].Resource)
	require.Equal(t, audit.OutcomeFailure, own[1].Outcome)
	require.Equal(t, "Invalid request (fields: extra)", own[1].Reason, "field names, never values")
	raw, err := json.Marshal(own)
	require.NoError(t, err)
	require.NotContains(t, string(raw), "plaintext-", "no body value in any event")
	require.Len(t, b.events(t, "", bson.D{{Key: "tenantId", Value: id}}), 2, "nothing more in the platform chain")
}

// Refused requests are audited: a bad operator token (platform chain, unauthenticated), a role
// that may not write (the tenant's chain), and on the tenant API a bad signature (platform
// chain, the claimed tenant noted) and a missing permission (the tenant's chain).
func TestDeniedRequestsAreAudited(t *testing.T) {
	t.Parallel()
	b := auditSetup(t)
	id := b.active(t, "deny")

	requireProblem(t, b.do(t, http.MethodPost, api.TenantsPath+"/"+id+"/suspend", "", "Authorization", "Bearer wrong-token-0123456789"), http.StatusUnauthorized)
	requireProblem(t, b.do(t, http.MethodGet, api.TenantsPath+"/"+id, "", "Authorization", ""), http.StatusUnauthorized)
	// Unauthenticated refusals are kept outside the chains, so an anonymous flood cannot contend
	// for a chain's head; what the caller claimed is a detail, never the event's tenant.
	denied := b.unauthenticated(t, id)
	require.Len(t, denied, 2, "a refused read is audited too")
	require.Equal(t, "tenant.suspend.request", denied[0].Action)
	require.Equal(t, audit.Actor{Type: audit.ActorUnauthenticated, ID: "unknown"}, denied[0].Actor)
	require.Empty(t, denied[0].TenantID)
	require.Equal(t, audit.OutcomeDenied, denied[0].Outcome)
	require.Contains(t, denied[0].Reason, "not valid")
	require.Empty(t, b.events(t, "", bson.D{{Key: "tenantId", Value: id}, {Key: "outcome", Value: audit.OutcomeDenied}}), "nothing anonymous in the platform chain")

	auditorTok, err := operatorsStore(t).Create(context.Background(), "auditor-"+nonce(), operators.RoleAuditor)
	require.NoError(t, err)
	requireProblem(t, b.do(t, http.MethodPut, api.TenantsPath+"/"+id+"/settings/x", `{"value":1}`, "Authorization", "Bearer "+auditorTok), http.StatusForbidden)
	own := b.events(t, id, bson.D{{Key: "outcome", Value: audit.OutcomeDenied}})
	require.Len(t, own, 1, "an authenticated operator's refusal is in the tenant's chain")
	require.Equal(t, audit.ActorOperator, own[0].Actor.Type)
	require.Contains(t, own[0].Actor.ID, "auditor-")

	st := b.provision(t, "denyapi", []string{"settings:read"}, nil)
	t.Cleanup(func() { _ = b.client.Database("tenant_" + st.id).Drop(context.Background()) })
	forged := st
	forged.secret = strings.Repeat("0", 64)
	requireProblem(t, b.send(t, forged.req("GET", "/me", "")), http.StatusUnauthorized)
	requireProblem(t, b.send(t, st.req("PUT", "/settings/x", `{"value":"plaintext-99"}`)), http.StatusForbidden)

	sig := b.unauthenticated(t, st.id)
	require.Len(t, sig, 1)
	require.Equal(t, audit.ActorUnauthenticated, sig[0].Actor.Type, "a forged signature proves no tenant")
	require.Equal(t, st.id, sig[0].Details["claimedTenantId"])
	perm := b.events(t, st.id, bson.D{{Key: "outcome", Value: audit.OutcomeDenied}})
	require.Len(t, perm, 1)
	require.Equal(t, "tenant-api.setting.put", perm[0].Action)
	require.Contains(t, perm[0].Reason, "settings:write")
	require.Empty(t, perm[0].Details["authenticated"])
}

// Tenant API writes are audited in the tenant's chain, one event each.
func TestTenantAPIWritesAreAudited(t *testing.T) {
	t.Parallel()
	b := auditSetup(t)
	st := b.provision(t, "tapi", allPerms, nil)
	t.Cleanup(func() { _ = b.client.Database("tenant_" + st.id).Drop(context.Background()) })
	require.Equal(t, http.StatusOK, b.send(t, st.req("PUT", "/settings/theme", `{"value":"dark"}`)).Code)
	require.Equal(t, http.StatusCreated, b.send(t, st.req("POST", "/conversations", `{"title":"plaintext-title"}`)).Code)
	require.Equal(t, http.StatusOK, b.send(t, st.req("GET", "/settings", "")).Code)
	got := b.events(t, st.id, bson.D{})
	require.Len(t, got, 2)
	require.Equal(t, []string{"tenant-api.setting.put", "tenant-api.conversation.create"}, []string{got[0].Action, got[1].Action})
	require.Equal(t, audit.Actor{Type: audit.ActorTenant, ID: st.id}, got[1].Actor)
	raw, _ := json.Marshal(got)
	require.NotContains(t, string(raw), "plaintext-title")
}

// seed writes known events into a tenant's chain.
func (b auditBundle) seed(t *testing.T, id string, t0 time.Time) {
	t.Helper()
	ctx := tenant.WithID(context.Background(), id)
	for _, e := range []audit.Event{
		{ID: "s1", Action: "tenant.update", Actor: audit.Actor{Type: audit.ActorOperator, ID: "ops"}, Outcome: audit.OutcomeSuccess, At: t0},
		{ID: "s2", Action: "tenant.suspend", Actor: audit.Actor{Type: audit.ActorOperator, ID: "alice"}, Outcome: audit.OutcomeFailure, At: t0.Add(time.Hour), Reason: "=HYPERLINK(\"http://evil\")"},
		{ID: "s3", Action: "tenant.update", Actor: audit.Actor{Type: audit.ActorSystem, ID: "OnboardTenant"}, Outcome: audit.OutcomeSuccess, At: t0.Add(24 * time.Hour)},
		{ID: "s4", Action: "tenant.update", Actor: audit.Actor{Type: audit.ActorOperator, ID: "ops"}, Outcome: audit.OutcomeDenied, At: t0.Add(25 * time.Hour), Resource: "-1+2"},
		{ID: "s5", Action: "tenant.update", Actor: audit.Actor{Type: audit.ActorOperator, ID: "ops"}, Outcome: audit.OutcomeSuccess, At: t0.Add(48 * time.Hour)},
	} {
		_, err := b.w.Tenant(ctx, e)
		require.NoError(t, err)
	}
}

func itemIDs(t *testing.T, r response) []string {
	t.Helper()
	out := []string{}
	items, _ := r.Body["items"].([]any)
	for _, it := range items {
		out = append(out, it.(map[string]any)["id"].(string))
	}
	return out
}

// The operator's report filters, pages with a cursor in both orders, answers CSV, refuses bad
// parameters with a 400 naming them, and never shows another tenant's events.
func TestAuditReport(t *testing.T) {
	t.Parallel()
	b := auditSetup(t)
	a, other := b.active(t, "rep"), b.active(t, "rep")
	t0 := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -3)
	d0, d1, d2 := t0.Format(time.DateOnly), t0.AddDate(0, 0, 1).Format(time.DateOnly), t0.AddDate(0, 0, 2).Format(time.DateOnly)
	at := func(days int) string { return t0.AddDate(0, 0, days).Format(time.RFC3339) }
	b.seed(t, a, t0)
	b.seed(t, other, t0)
	base := api.TenantsPath + "/" + a + "/audit"
	list := func(query string) response {
		t.Helper()
		r := b.do(t, http.MethodGet, base+"?"+query, "")
		require.Equal(t, http.StatusOK, r.Code, r.Raw)
		return r
	}

	for query, want := range map[string][]string{
		"":                               {"s1", "s2", "s3", "s4", "s5"},
		"action=tenant.update":           {"s1", "s3", "s4", "s5"},
		"actorType=system":               {"s3"},
		"actorId=alice":                  {"s2"},
		"outcome=denied":                 {"s4"},
		"from=" + at(1) + "&to=" + at(2): {"s3", "s4"},
		"order=desc":                     {"s5", "s4", "s3", "s2", "s1"},
		"action=tenant.delete":           {},
	} {
		r := list(query)
		require.Equal(t, want, itemIDs(t, r), query)
		require.Nil(t, r.Body["nextCursor"], query)
	}
	// Every event shows its place in the chain.
	first := list("limit=1").Body["items"].([]any)[0].(map[string]any)
	require.EqualValues(t, 1, first["seq"])
	require.Len(t, first["hash"], 64)

	for _, order := range []string{"asc", "desc"} {
		var seen []string
		q := "limit=2&action=tenant.update&order=" + order
		for range 5 {
			r := list(q)
			seen = append(seen, itemIDs(t, r)...)
			next, _ := r.Body["nextCursor"].(string)
			if next == "" {
				break
			}
			q = "limit=2&action=tenant.update&order=" + order + "&cursor=" + url.QueryEscape(next)
		}
		want := []string{"s1", "s3", "s4", "s5"}
		if order == "desc" {
			want = []string{"s5", "s4", "s3", "s1"}
		}
		require.Equal(t, want, seen, order)
	}

	for _, target := range []string{base + "?format=csv&limit=4", base + "?limit=4"} {
		rec := b.raw(t, http.MethodGet, target, "Accept", "text/csv")
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		require.Equal(t, "text/csv; charset=utf-8", rec.Header().Get("Content-Type"))
		require.Contains(t, rec.Header().Get("Content-Disposition"), "attachment")
		require.NotEmpty(t, rec.Header().Get("X-Next-Cursor"), "a fifth event follows")
		rows, err := csv.NewReader(rec.Body).ReadAll()
		require.NoError(t, err)
		require.Len(t, rows, 5, "header and four events")
		require.Equal(t, []string{"seq", "id", "at", "tenantId", "actorType", "actorId", "action", "resource", "outcome", "reason", "requestId", "workflowId", "runId", "details", "prevHash", "hash"}, rows[0])
		require.Equal(t, "s2", rows[2][1])
		require.Equal(t, `'=HYPERLINK("http://evil")`, rows[2][9], "formula neutralised")
		require.Equal(t, "'-1+2", rows[4][7])
	}
	require.Equal(t, "application/json", strings.Split(b.raw(t, http.MethodGet, base+"?format=json", "Accept", "text/csv").Header().Get("Content-Type"), ";")[0], "format wins over Accept")

	for _, query := range []string{
		"from=yesterday", "to=2026-13-01T00:00:00Z", "from=" + at(1) + "&to=" + at(0),
		"actorType=robot", "outcome=maybe", "limit=0", "limit=501", "limit=ten", "order=up", "cursor=bm9wZQ",
		"cursor=%%%", "format=xml", "tenantId=" + other, "sort=seq", "action=" + strings.Repeat("a", 201), "limit=1&limit=2",
	} {
		requireProblem(t, b.do(t, http.MethodGet, base+"?"+query, ""), http.StatusBadRequest)
	}
	requireProblem(t, b.do(t, http.MethodGet, api.TenantsPath+"/no-such-tenant/audit", ""), http.StatusNotFound)
	requireProblem(t, b.do(t, http.MethodGet, api.TenantsPath+"/BAD/audit", ""), http.StatusBadRequest)

	sum := b.do(t, http.MethodGet, base+"/summary?from="+at(0), "")
	require.Equal(t, http.StatusOK, sum.Code, sum.Raw)
	require.EqualValues(t, 5, sum.Body["total"])
	require.Equal(t, []any{
		map[string]any{"day": d0, "action": "tenant.suspend", "outcome": "failure", "count": float64(1)},
		map[string]any{"day": d0, "action": "tenant.update", "outcome": "success", "count": float64(1)},
		map[string]any{"day": d1, "action": "tenant.update", "outcome": "denied", "count": float64(1)},
		map[string]any{"day": d1, "action": "tenant.update", "outcome": "success", "count": float64(1)},
		map[string]any{"day": d2, "action": "tenant.update", "outcome": "success", "count": float64(1)},
	}, sum.Body["items"])
	rec := b.raw(t, http.MethodGet, base+"/summary?format=csv&outcome=success")
	rows, err := csv.NewReader(rec.Body).ReadAll()
	require.NoError(t, err)
	require.Equal(t, [][]string{{"day", "action", "outcome", "count"}, {d0, "tenant.update", "success", "1"},
		{d1, "tenant.update", "success", "1"}, {d2, "tenant.update", "success", "1"}}, rows)
	requireProblem(t, b.do(t, http.MethodGet, base+"/summary?cursor=x", ""), http.StatusBadRequest)
}

// Verify through the API reports an intact chain, then the first broken link after an edit
// made directly in MongoDB.
func TestAuditVerifyEndpoint(t *testing.T) {
	t.Parallel()
	b := auditSetup(t)
	id := b.active(t, "ver")
	b.seed(t, id, time.Now().Add(-time.Hour))
	path := api.TenantsPath + "/" + id + "/audit/verify"
	r := b.do(t, http.MethodGet, path, "")
	require.Equal(t, http.StatusOK, r.Code, r.Raw)
	require.Equal(t, true, r.Body["ok"])
	require.EqualValues(t, 5, r.Body["checked"])

	_, err := b.client.Database("tenant_"+id).Collection(audit.Collection).UpdateOne(context.Background(),
		bson.D{{Key: "_id", Value: "s3"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "outcome", Value: "failure"}}}})
	require.NoError(t, err)
	r = b.do(t, http.MethodGet, path, "")
	require.Equal(t, false, r.Body["ok"])
	require.Equal(t, map[string]any{"seq": float64(3), "id": "s3", "problem": "edited", "detail": "the event's fields do not match its hash"}, r.Body["firstBroken"])
	requireProblem(t, b.do(t, http.MethodGet, path+"?deep=1", ""), http.StatusBadRequest)

	p := b.do(t, http.MethodGet, api.PlatformAuditPath+"/verify", "")
	require.Equal(t, http.StatusOK, p.Code, p.Raw)
	require.Equal(t, true, p.Body["ok"], p.Raw)
	require.Equal(t, audit.PlatformChainName, p.Body["chain"])
}

func TestAuditPolicyEndpoint(t *testing.T) {
	t.Parallel()
	b := auditSetup(t)
	id := b.active(t, "pol")
	path := api.TenantsPath + "/" + id + "/audit/policy"
	r := b.do(t, http.MethodGet, path, "")
	require.Equal(t, http.StatusOK, r.Code)
	require.Equal(t, map[string]any{"retentionDays": float64(365), "legalHold": false}, r.Body)

	r = b.do(t, http.MethodPut, path, `{"retentionDays":30,"legalHold":true}`)
	require.Equal(t, http.StatusOK, r.Code, r.Raw)
	require.Equal(t, map[string]any{"retentionDays": float64(30), "legalHold": true}, r.Body)
	for _, body := range []string{`{"retentionDays":30}`, `{"legalHold":true}`, `{"retentionDays":0,"legalHold":false}`,
		`{"retentionDays":36501,"legalHold":false}`, `{"retentionDays":"30","legalHold":false}`, `{"retentionDays":30,"legalHold":false,"x":1}`, `{`} {
		requireProblem(t, b.do(t, http.MethodPut, path, body), http.StatusBadRequest)
	}
	opTok, err := operatorsStore(t).Create(context.Background(), "operator-"+nonce(), operators.RoleOperator)
	require.NoError(t, err)
	requireProblem(t, b.do(t, http.MethodPut, path, `{"retentionDays":1,"legalHold":false}`, "Authorization", "Bearer "+opTok), http.StatusForbidden)
	require.Equal(t, map[string]any{"retentionDays": float64(30), "legalHold": true}, b.do(t, http.MethodGet, path, "").Body, "refused changes changed nothing")
	requireProblem(t, b.do(t, http.MethodPut, api.TenantsPath+"/no-such-tenant/audit/policy", `{"retentionDays":1,"legalHold":false}`), http.StatusNotFound)

	changes := b.events(t, id, bson.D{{Key: "action", Value: "tenant.audit.policy.put"}})
	require.Len(t, changes, 9, "every attempt to change the policy is audited")
	require.Equal(t, audit.OutcomeSuccess, changes[0].Outcome)
	require.Equal(t, audit.OutcomeDenied, changes[8].Outcome)
}

// A tenant reads its own audit trail through the signed tenant API, with the same filters,
// and nothing of another tenant's; without audit:read it is refused (and that is audited).
func TestTenantReadsOwnAudit(t *testing.T) {
	t.Parallel()
	b := auditSetup(t)
	a := b.provision(t, "own", allPerms, nil)
	other := b.provision(t, "own", allPerms, nil)
	noAudit := b.provision(t, "own", []string{"settings:read"}, nil)
	for _, id := range []string{a.id, other.id, noAudit.id} {
		t.Cleanup(func() { _ = b.client.Database("tenant_" + id).Drop(context.Background()) })
	}
	b.seed(t, a.id, time.Now().UTC().Add(-72*time.Hour))
	require.Equal(t, http.StatusOK, b.send(t, other.req("PUT", "/settings/b-only", `{"value":1}`)).Code)

	r := b.send(t, signedReq{method: "GET", path: "/audit", query: "outcome=denied", tenantID: a.id, secret: a.secret})
	require.Equal(t, http.StatusOK, r.Code, r.Raw)
	require.Equal(t, []string{"s4"}, itemIDs(t, r))
	r = b.send(t, signedReq{method: "GET", path: "/audit", query: "limit=500", tenantID: a.id, secret: a.secret})
	require.Equal(t, []string{"s1", "s2", "s3", "s4", "s5"}, itemIDs(t, r))
	require.NotContains(t, r.Raw, other.id)

	requireProblem(t, b.send(t, signedReq{method: "GET", path: "/audit", query: "tenantId=" + other.id, tenantID: a.id, secret: a.secret}), http.StatusBadRequest)
	requireProblem(t, b.send(t, signedReq{method: "GET", path: "/audit", query: "limit=0", tenantID: a.id, secret: a.secret}), http.StatusBadRequest)
	requireProblem(t, b.send(t, noAudit.req("GET", "/audit", "")), http.StatusForbidden)
	refused := b.events(t, noAudit.id, bson.D{{Key: "outcome", Value: audit.OutcomeDenied}})
	require.Len(t, refused, 1)
	require.Contains(t, refused[0].Reason, "audit:read")

	// The operator's view of B shows B's own write and nothing of A's seeded events.
	ob := b.do(t, http.MethodGet, api.TenantsPath+"/"+other.id+"/audit", "")
	require.Equal(t, http.StatusOK, ob.Code)
	ids := itemIDs(t, ob)
	require.Len(t, ids, 1)
	require.NotContains(t, ids, "s1")
}

// The platform report lists platform events and filters them by tenant.
func TestPlatformAuditReport(t *testing.T) {
	t.Parallel()
	b := auditSetup(t)
	id := testenv.TenantID("plat")
	require.Equal(t, http.StatusCreated, b.do(t, http.MethodPost, api.TenantsPath, registerBody(id)).Code)
	require.Equal(t, http.StatusNoContent, b.do(t, http.MethodDelete, api.TenantsPath+"/"+id, "").Code)
	r := b.do(t, http.MethodGet, api.PlatformAuditPath+"?tenantId="+id, "")
	require.Equal(t, http.StatusOK, r.Code, r.Raw)
	var actions []string
	for _, it := range r.Body["items"].([]any) {
		actions = append(actions, it.(map[string]any)["action"].(string))
	}
	require.Equal(t, []string{"tenant.register", "tenant.delete"}, actions, "created and deleted: both in the platform chain")
	s := b.do(t, http.MethodGet, api.PlatformAuditPath+"/summary?tenantId="+id, "")
	require.EqualValues(t, 2, s.Body["total"])
	requireProblem(t, b.do(t, http.MethodGet, api.PlatformAuditPath+"?tenantId=BAD", ""), http.StatusBadRequest)
}

// A browser request from an origin the tenant does not allow is refused and audited in the
// tenant's chain (the signature proved the tenant), with the reason.
func TestWrongOriginIsAudited(t *testing.T) {
	t.Parallel()
	b := auditSetup(t)
	st := b.provision(t, "origin", allPerms, []string{"https://shop.test"})
	t.Cleanup(func() { _ = b.client.Database("tenant_" + st.id).Drop(context.Background()) })
	rq := st.req("PUT", "/settings/theme", `{"value":"dark"}`)
	rq.origin = "https://evil.test"
	requireProblem(t, b.send(t, rq), http.StatusForbidden)
	denied := b.events(t, st.id, bson.D{{Key: "outcome", Value: audit.OutcomeDenied}})
	require.Len(t, denied, 1)
	require.Contains(t, denied[0].Reason, "origin https://evil.test is not allowed")
	require.Equal(t, audit.Actor{Type: audit.ActorTenant, ID: st.id}, denied[0].Actor)
}

// The refusal budget is per client address, and the address is the connection's peer unless
// the peer is a configured proxy: a client that makes up X-Forwarded-For values shares one
// budget; behind a trusted proxy each forwarded client has its own.
func TestClientAddressTrustsOnlyConfiguredProxies(t *testing.T) {
	t.Parallel()
	_, proxyNet, err := net.ParseCIDR("192.0.2.0/24") // httptest's peer address
	require.NoError(t, err)
	for _, tc := range []struct {
		name    string
		trusted []*net.IPNet
		spoofed bool // whether each made-up address gets its own budget
	}{{"no proxies", nil, false}, {"behind a trusted proxy", []*net.IPNet{proxyNet}, true}} {
		b := auditSetup(t, func(c *api.Config) { c.TrustedProxies = tc.trusted })
		claimed := testenv.TenantID("xff")
		const n = 130
		start := time.Now()
		for i := range n {
			req := httptest.NewRequest(http.MethodGet, api.TenantsPath+"/"+claimed, nil)
			req.Header.Set("Authorization", "Bearer wrong-token-0123456789")
			req.Header.Set("X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i))
			rec := httptest.NewRecorder()
			b.e.ServeHTTP(rec, req)
			require.Equal(t, http.StatusUnauthorized, rec.Code)
		}
		elapsed := time.Since(start)
		recorded := len(b.unauthenticated(t, claimed))
		if tc.spoofed {
			require.Equal(t, n, recorded, "%s: every forwarded client has its own budget", tc.name)
		} else {
			// One budget: a burst of 100, refilled at 20 a second while the loop ran.
			limit := 100 + int(20*elapsed.Seconds()) + 1
			require.LessOrEqual(t, recorded, limit, "%s: made-up X-Forwarded-For values share the peer's budget", tc.name)
		}
	}
}

// A failed step's raw error (store internals) is shown to operators as it is and to the tenant
// only as "step failed" with the error's type.
func TestTenantReadsNoRawStepErrors(t *testing.T) {
	t.Parallel()
	b := auditSetup(t)
	a := b.provision(t, "raw", allPerms, nil)
	t.Cleanup(func() { _ = b.client.Database("tenant_" + a.id).Drop(context.Background()) })
	raw := `ERROR: relation "tenant_settings" violates check (SQLSTATE 23514) on db-internal-7.prod:5432`
	_, err := b.w.Tenant(tenant.WithID(context.Background(), a.id), audit.Event{
		ID: "step-failed", Actor: audit.Actor{Type: audit.ActorSystem, ID: "OnboardTenant"}, Action: "workflow.step.ProvisionPostgres",
		Outcome: audit.OutcomeFailure, Reason: raw, Details: map[string]string{"errorType": "InvalidInput"},
	})
	require.NoError(t, err)

	r := b.send(t, signedReq{method: "GET", path: "/audit", query: "outcome=failure", tenantID: a.id, secret: a.secret})
	require.Equal(t, http.StatusOK, r.Code, r.Raw)
	require.NotContains(t, r.Raw, "SQLSTATE")
	require.NotContains(t, r.Raw, "db-internal-7")
	require.Contains(t, r.Raw, "step failed (InvalidInput)")

	op := b.do(t, http.MethodGet, api.TenantsPath+"/"+a.id+"/audit?outcome=failure", "")
	require.Equal(t, http.StatusOK, op.Code)
	require.Contains(t, op.Raw, "db-internal-7", "operators see the error as it was")
}
