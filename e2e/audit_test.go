package e2e

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/bson"

	"github.com/misybot/tenancy/api"
	"github.com/misybot/tenancy/internal/domain/audit"
	"github.com/misybot/tenancy/internal/testkit/testenv"
)

// archiveFile returns one file of an offboarding archive (a tar.gz encrypted with age to the
// stack's export identity).
func archiveFile(t *testing.T, path, name string) []byte {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	plain, err := age.Decrypt(f, exportIdentity)
	require.NoError(t, err, "the archive decrypts with the operators' identity")
	gz, err := gzip.NewReader(plain)
	require.NoError(t, err)
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		require.NoError(t, err, "no %s in the archive", name)
		if h.Name == name {
			b, err := io.ReadAll(tr)
			require.NoError(t, err)
			return b
		}
	}
}

func actionsOf(items []any) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.(map[string]any)["action"].(string))
	}
	return out
}

// A tenant's life through the API, as its audit trail tells it: every request and every
// workflow step once, in a chain that verifies; an edit made in the database is named by the
// verify endpoint; the offboarding archive carries the chain; the platform chain keeps what
// outlives the tenant.
func TestAuditTrailEndToEnd(t *testing.T) {
	t.Parallel()
	s := newStack(t, true)
	ctx := context.Background()
	id := testenv.TenantID("trail")
	base := api.TenantsPath + "/" + id

	code, body := s.do(http.MethodPost, api.TenantsPath+"/onboard", onboardBody(id, "standard"))
	require.Equal(t, http.StatusAccepted, code, body)
	require.NoError(t, s.wait(body))
	code, _ = s.do(http.MethodPut, base+"/settings/theme", `{"value":"plaintext-dark"}`)
	require.Equal(t, http.StatusOK, code)
	for _, op := range []string{"suspend", "restore"} {
		code, body = s.do(http.MethodPost, base+"/"+op, "")
		require.Equal(t, http.StatusAccepted, code, body)
		require.NoError(t, s.wait(body))
	}

	code, page := s.do(http.MethodGet, base+"/audit?limit=500", "")
	require.Equal(t, http.StatusOK, code, page)
	// Exactly these events, each once. Their order is not asserted: the API writes its request
	// event after answering, so the workflow's first step can be recorded before it.
	require.ElementsMatch(t, []string{
		// Every onboarding step is in the tenant's own chain, from the first (its chain is open
		// from registration on, before its MongoDB database exists).
		"workflow.step.TransitionStatus", "workflow.step.PlaceTenant", "workflow.step.EnsureKeys", "workflow.step.ProvisionPostgres",
		"workflow.step.ProvisionMongo", "workflow.step.ProvisionRedis", "tenant.onboard", "workflow.step.TransitionStatus",
		"tenant.setting.put",
		"tenant.suspend.request", "workflow.step.TransitionStatus", "workflow.step.RevokeSessions", "tenant.suspend",
		"tenant.restore.request", "workflow.step.TransitionStatus", "tenant.restore",
	}, actionsOf(page["items"].([]any)))
	code, rep := s.do(http.MethodGet, base+"/audit/verify", "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, true, rep["ok"], rep)
	require.EqualValues(t, 16, rep["checked"])
	code, sum := s.do(http.MethodGet, base+"/audit/summary", "")
	require.Equal(t, http.StatusOK, code)
	require.EqualValues(t, 16, sum["total"])

	// An edit in the database is named; undoing it heals the chain.
	events := s.mongo.Database("tenant_" + id).Collection(audit.Collection)
	var orig bson.M
	require.NoError(t, events.FindOne(ctx, bson.D{{Key: "seq", Value: 4}}).Decode(&orig))
	_, err := events.UpdateOne(ctx, bson.D{{Key: "seq", Value: 4}}, bson.D{{Key: "$set", Value: bson.D{{Key: "actor.id", Value: "someone-else"}}}})
	require.NoError(t, err)
	_, rep = s.do(http.MethodGet, base+"/audit/verify", "")
	require.Equal(t, false, rep["ok"])
	broken := rep["firstBroken"].(map[string]any)
	require.EqualValues(t, 4, broken["seq"])
	require.Equal(t, audit.ProblemEdited, broken["problem"])
	_, err = events.ReplaceOne(ctx, bson.D{{Key: "_id", Value: orig["_id"]}}, orig)
	require.NoError(t, err)
	_, rep = s.do(http.MethodGet, base+"/audit/verify", "")
	require.Equal(t, true, rep["ok"], rep)

	// A refused request is never in the tenant's chain.
	req, err := http.NewRequest(http.MethodPost, s.url+base+"/suspend", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer not-the-token-0123456789")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	// Unauthenticated refusals are recorded outside the chains (anyone can cause them).
	var refused []audit.Event
	_, err = s.audit().UnauthenticatedLog().Ship(ctx)
	require.NoError(t, err)
	cur, err := s.mongo.Database(s.platformDB).Collection(audit.UnauthenticatedCollection).
		Find(context.Background(), bson.D{{Key: "details.claimedTenantId", Value: id}})
	require.NoError(t, err)
	require.NoError(t, cur.All(context.Background(), &refused))
	require.Len(t, refused, 1)
	require.Equal(t, "tenant.suspend.request", refused[0].Action)
	require.Equal(t, audit.OutcomeDenied, refused[0].Outcome)

	code, body = s.do(http.MethodPost, base+"/offboard", "")
	require.Equal(t, http.StatusAccepted, code, body)
	require.NoError(t, s.wait(body))

	// The archive carries the tenant's chain as it was at export: the fifteen events above (the
	// export ships what waited), each with its seq and hash, and no setting value.
	var summary audit.Event
	require.NoError(t, s.platform().FindOne(ctx, bson.D{{Key: "tenantId", Value: id}, {Key: "action", Value: "tenant.offboard"}}).Decode(&summary))
	lines := strings.Split(strings.TrimSpace(string(archiveFile(t, summary.Details["archive"], "mongodb/audit_events.jsonl"))), "\n")
	require.Len(t, lines, 16)
	// (Which of the restore's events is last depends on the API's and the worker's timing.)
	var exported []string
	for _, l := range lines {
		var ev map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &ev))
		exported = append(exported, ev["action"].(string))
	}
	require.Contains(t, exported, "tenant.restore")
	require.Contains(t, exported, "tenant.restore.request")
	require.Contains(t, lines[0], `"hash"`)
	for _, l := range lines {
		require.NotContains(t, l, "plaintext-dark")
	}

	// What outlives the tenant: the platform chain has its registration, the offboarding steps
	// taken after its chain closed, and the deletion summary; and it verifies.
	code, plat := s.do(http.MethodGet, api.PlatformAuditPath+"?limit=500&tenantId="+id, "")
	require.Equal(t, http.StatusOK, code)
	got := actionsOf(plat["items"].([]any))
	for _, want := range []string{"tenant.onboard.request", "tenant.offboard.request", "workflow.step.ExportTenant", "workflow.step.DeprovisionMongo", "workflow.step.Tombstone", "tenant.offboard"} {
		require.Contains(t, got, want)
	}
	counts := map[string]int{}
	for _, a := range got {
		counts[a]++
	}
	require.Equal(t, 1, counts["workflow.step.ExportTenant"], "one event per step")
	require.False(t, slices.Contains(got, "tenant.onboard"), "the tenant's own events stay in its chain")
	code, prep := s.do(http.MethodGet, api.PlatformAuditPath+"/verify", "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, true, prep["ok"], prep)
	exists, err := s.mongo.ListDatabaseNames(ctx, bson.D{{Key: "name", Value: "tenant_" + id}})
	require.NoError(t, err)
	require.Empty(t, exists, "no audit write re-created the dropped database")
}
