package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/bson"

	"github.com/misybot/tenancy/api"
	"github.com/misybot/tenancy/internal/domain/audit"
	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/stores/tenantredis"
	"github.com/misybot/tenancy/internal/testkit/testenv"
	"github.com/misybot/tenancy/workflows"
)

// The whole life of a tenant through the API, next to a tenant whose id extends its id:
// onboarding provisions all three stores; suspend flips Redis at once and revokes sessions;
// offboarding exports, then leaves nothing of the tenant in any store, and the neighbour is
// untouched.
func TestLifecycleThroughTheAPI(t *testing.T) {
	t.Parallel()
	s := newStack(t, true)
	ctx := context.Background()
	a := testenv.TenantID("life")
	b := a + "2" // a's id is a prefix of b's

	secrets := map[string]string{}
	for _, id := range []string{a, b} {
		code, body := s.do(http.MethodPost, api.TenantsPath+"/onboard", onboardBody(id, "standard"))
		require.Equal(t, http.StatusAccepted, code, body)
		require.Len(t, body["tenantSecret"], 64, "a new tenant's secret comes once, with the 202")
		secrets[id] = body["tenantSecret"].(string)
		require.Equal(t, workflows.WorkflowID(id), body["workflowId"])
		require.NoError(t, s.wait(body))
		require.Equal(t, tenant.StatusActive, s.status(id))
		requireProvisioned(t, id, s.state(id))
	}

	// Tenant data in every store, for both.
	for _, id := range []string{a, b} {
		code, _ := s.do(http.MethodPut, api.TenantsPath+"/"+id+"/settings/theme", `{"value":"dark"}`)
		require.Equal(t, http.StatusOK, code)
		_, err := s.mongo.Database("tenant_"+id).Collection("conversations").InsertOne(ctx, bson.D{{Key: "title", Value: "hello"}})
		require.NoError(t, err)
		scope, err := tenantredis.New(s.redis).Scope(tenant.WithID(ctx, id))
		require.NoError(t, err)
		require.NoError(t, scope.Set(ctx, tenantredis.KindSession, "s1", "x", 0))
		require.NoError(t, scope.Set(ctx, "cache", "c1", "x", 0))
	}

	// Progress is readable through the API.
	code, op := s.do(http.MethodGet, api.TenantsPath+"/"+a+"/operations/current", "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "completed", op["status"])
	require.Equal(t, workflows.OnboardWorkflow, op["workflow"])

	// Suspend: status in PostgreSQL and Redis, sessions gone, other keys kept.
	code, body := s.do(http.MethodPost, api.TenantsPath+"/"+a+"/suspend", `{"reason":"unpaid"}`)
	require.Equal(t, http.StatusAccepted, code, body)
	require.NoError(t, s.wait(body))
	require.Equal(t, tenant.StatusSuspended, s.status(a))
	rec, err := tenantredis.New(s.redis).ReadContext(tenant.WithID(ctx, a))
	require.NoError(t, err)
	require.Equal(t, "suspended", rec.Status)
	require.Equal(t, http.StatusForbidden, s.signedGet(a, secrets[a], "/me"), "a suspended tenant's requests are refused at once")
	require.Equal(t, http.StatusOK, s.signedGet(b, secrets[b], "/me"), "its neighbour is served")
	st := s.state(a)
	require.NotContains(t, st.RedisKeys, "tenant:{"+a+"}:session:s1")
	require.Contains(t, st.RedisKeys, "tenant:{"+a+"}:cache:c1")

	// Illegal transitions start nothing.
	code, body = s.do(http.MethodPost, api.TenantsPath+"/"+a+"/suspend", "")
	require.Equal(t, http.StatusConflict, code)
	require.Equal(t, "suspended", body["currentStatus"])

	code, body = s.do(http.MethodPost, api.TenantsPath+"/"+a+"/restore", "")
	require.Equal(t, http.StatusAccepted, code, body)
	require.NoError(t, s.wait(body))
	require.Equal(t, tenant.StatusActive, s.status(a))
	require.Equal(t, http.StatusOK, s.signedGet(a, secrets[a], "/me"), "served again after restore")

	// A message, stored encrypted, for the export to hand over readable.
	conv, err := s.conversations.Create(tenant.WithID(ctx, a), "export me")
	require.NoError(t, err)
	_, err = s.conversations.AddMessage(tenant.WithID(ctx, a), conv.ID, "user", "readable in the archive")
	require.NoError(t, err)

	bBefore := s.state(b)
	code, body = s.do(http.MethodPost, api.TenantsPath+"/"+a+"/offboard", "")
	require.Equal(t, http.StatusAccepted, code, body)
	require.NoError(t, s.wait(body))

	require.Equal(t, tenant.StatusOffboarded, s.status(a))
	require.Equal(t, http.StatusUnauthorized, s.signedGet(a, secrets[a], "/me"), "an offboarded tenant is refused as one that never existed")
	after := s.state(a)
	require.Empty(t, after.Postgres, "no row of the tenant in any tenant table")
	require.False(t, after.MongoExists, "its database is dropped")
	require.Empty(t, after.RedisKeys, "no key of the tenant")
	require.Equal(t, bBefore, s.state(b), "the neighbour is untouched")

	// The deletion summary sits in the platform audit, with the archive's real checksum.
	var summary audit.Event
	err = s.platform().
		FindOne(ctx, bson.D{{Key: "tenantId", Value: a}, {Key: "action", Value: "tenant.offboard"}}).Decode(&summary)
	require.NoError(t, err)
	archive, err := os.ReadFile(summary.Details["archive"])
	require.NoError(t, err)
	sum := sha256.Sum256(archive)
	require.Equal(t, hex.EncodeToString(sum[:]), summary.Details["archiveSha256"])
	require.Contains(t, string(archiveFile(t, summary.Details["archive"], "mongodb/messages.jsonl")), "readable in the archive",
		"message text is exported decrypted: the tenant's keys are destroyed right after")

	// Encrypted at rest: no file in the export folder carries the tenant's data in plaintext.
	entries, err := os.ReadDir(s.exports)
	require.NoError(t, err)
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join(s.exports, e.Name()))
		require.NoError(t, err)
		require.NotContains(t, string(raw), "readable in the archive", e.Name())
		require.NotContains(t, string(raw), "dark", e.Name())
	}
	require.True(t, strings.HasSuffix(summary.Details["archive"], ".tar.gz.age"))

	// A platform-admin downloads it, as it is (encrypted), and the download is audited.
	name := filepath.Base(summary.Details["archive"])
	res := s.download(name, token)
	require.Equal(t, http.StatusOK, res.code)
	require.Equal(t, archive, res.body, "the encrypted archive, byte for byte")
	var dl audit.Event
	require.NoError(t, s.platform().FindOne(ctx, bson.D{{Key: "action", Value: "tenant.archive.download"}, {Key: "resource", Value: "archive/" + name}}).Decode(&dl))
	require.Equal(t, "bootstrap", dl.Actor.ID)
	require.Equal(t, http.StatusBadRequest, s.download("..%2F..%2Fetc%2Fpasswd", token).code)
	require.Equal(t, http.StatusNotFound, s.download("nobody-0000.tar.gz.age", token).code)

	// An offboarded id cannot be onboarded again.
	code, body = s.do(http.MethodPost, api.TenantsPath+"/onboard", onboardBody(a, "standard"))
	require.Equal(t, http.StatusConflict, code)
	require.Equal(t, "offboarded", body["currentStatus"])
}

// The same onboard request twice gives one run and one set of resources; a different
// operation meanwhile is refused naming the running workflow. Enterprise tenants wait for
// approval, which keeps the first run open while the second request arrives.
func TestOnboardTwiceIsOneRun(t *testing.T) {
	t.Parallel()
	s := newStack(t, true)
	id := testenv.TenantID("twice")

	code, first := s.do(http.MethodPost, api.TenantsPath+"/onboard", onboardBody(id, "enterprise"))
	require.Equal(t, http.StatusAccepted, code, first)
	code, second := s.do(http.MethodPost, api.TenantsPath+"/onboard", onboardBody(id, "enterprise"))
	require.Equal(t, http.StatusAccepted, code, second)
	require.Equal(t, first["runId"], second["runId"])
	require.Equal(t, true, second["existing"])
	require.Nil(t, second["tenantSecret"], "the secret is never shown twice")

	code, busy := s.do(http.MethodPost, api.TenantsPath+"/"+id+"/offboard", "")
	require.Equal(t, http.StatusConflict, code)
	require.Equal(t, workflows.OnboardWorkflow, busy["workflow"])
	require.Equal(t, first["runId"], busy["runId"])

	require.Eventually(t, func() bool {
		code, op := s.do(http.MethodGet, api.TenantsPath+"/"+id+"/operations/current", "")
		require.Equal(t, http.StatusOK, code)
		p, _ := op["progress"].(map[string]any)
		return p != nil && p["state"] == workflows.StateAwaitingApproval
	}, 30*time.Second, 50*time.Millisecond, "the run waits for approval")
	// Nothing provisioned before approval: no tenant data anywhere; its database holds only
	// the audit trail (its chain is open from registration on).
	pre := s.state(id)
	require.Equal(t, map[string]int64{"audit_events": 1}, pre.Mongo, "only the mark-onboarding step's event")
	require.Equal(t, map[string]int{`"public"."audit_outbox"`: 1}, pre.Postgres, "no tenant row but the outbox's")
	require.Empty(t, pre.RedisKeys)

	s.approve(id) // through the API: a raw signal is refused (operator decisions)
	require.NoError(t, s.wait(first))
	st := s.state(id)
	requireProvisioned(t, id, st)

	n, err := s.mongo.Database("tenant_"+id).Collection(audit.Collection).CountDocuments(context.Background(), bson.D{{Key: "action", Value: "tenant.onboard"}})
	require.NoError(t, err)
	require.EqualValues(t, 1, n, "one onboarding event")
}
