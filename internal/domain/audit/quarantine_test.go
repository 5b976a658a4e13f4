package audit_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo/options"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/workflow"

	"github.com/misybot/tenancy/activities"
	"github.com/misybot/tenancy/internal/domain/audit"
	"github.com/misybot/tenancy/internal/domain/reconcile"
	"github.com/misybot/tenancy/internal/testkit/testenv"
)

// platformEvents reads the platform chain by seq, straight from MongoDB (no shipping first:
// what a background shipper has moved so far).
func (b bundle) platformEvents(t *testing.T) []audit.Event {
	t.Helper()
	cur, err := b.platform.Collection(audit.Collection).Find(context.Background(), bson.D{},
		options.Find().SetSort(bson.D{{Key: "seq", Value: 1}}))
	require.NoError(t, err)
	var out []audit.Event
	require.NoError(t, cur.All(context.Background(), &out))
	return out
}

// reconcileEvent is the event of issue 32: the reconciliation step's audit event of a run that
// found drifts, whose details have a key per drift kind ("kind.context_missing").
func reconcileEvent(id string) audit.Event {
	sum := activities.ReconcileSummary{Total: 2, SafeOpen: 2, ByKind: map[string]int{}}
	for _, k := range reconcile.Kinds {
		sum.ByKind[string(k)] = 1
	}
	return audit.Event{ID: id, Actor: audit.Actor{Type: audit.ActorSystem, ID: "reconcile"},
		Action: "workflow.step.ReconcileFinish", Resource: "reconciliation/" + id, Outcome: audit.OutcomeSuccess,
		Details: sum.AuditDetails(), At: time.Now()}
}

func operatorAction(i int) audit.Event {
	return audit.Event{ID: fmt.Sprintf("op-%02d", i), Actor: audit.Actor{Type: audit.ActorOperator, ID: "ops"},
		Action: "tenant.suspend.request", Resource: "tenant/t" + fmt.Sprint(i), Outcome: audit.OutcomeSuccess,
		Details: audit.Details{"status": "committed", "method": "POST", "route": "/api/meta-agent/tenants/:id/suspend"}, At: time.Now()}
}

// waitForChain waits (up to 30 s) until the platform chain in MongoDB holds want events and
// returns them; it asserts on the contents, the time is only reported.
func (b bundle) waitForChain(t *testing.T, want int) ([]audit.Event, time.Duration) {
	t.Helper()
	start := time.Now()
	var got []audit.Event
	for time.Since(start) < 30*time.Second {
		if got = b.platformEvents(t); len(got) >= want {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return got, time.Since(start)
}

func byID(events []audit.Event) map[string]audit.Event {
	m := map[string]audit.Event{}
	for _, e := range events {
		m[e.ID] = e
	}
	return m
}

// One event of every event type the code writes, with the details its constructor gives (the
// reconciliation's drift kinds among them), ships to the real store and verifies.
func TestEveryEventTypeShipsToTheStore(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	events := []audit.Event{
		reconcileEvent("reconcile-finish"),
		activities.StepEvent(testActivityInfo("ReconcileFinish"), "", nil, activities.ReconcileSummary{Total: 1, ByKind: map[string]int{"context_missing": 1}}.AuditDetails()),
		{ID: "api", Action: "tenant.register", Details: audit.Details{"method": "POST", "route": "/api/meta-agent/tenants", "status": "committed", "authenticated": "false", "suppressedBefore": "3"}},
		{ID: "drift", Action: "reconcile.repair", Details: audit.Details{"reconciliationRun": "r", "drift": "d", "kind": "context_missing", "store": "redis"}},
		{ID: "offboard", Action: "tenant.offboard", Details: audit.Details{"archive": "/x/a.tar.gz.age", "archiveSha256": "ab", "archiveBytes": "1", "keysDestroyed": "1", "mongoDatabase": "tenant_x", "mongoDocuments": "1", "redisKeys": "1", "requestedBy": "ops", "postgresRows": "3"}},
		{ID: "signal", Action: "workflow.signal.retry", Details: audit.Details{"signal": "retry", "step": "s", "workflowType": "Onboard"}},
		{ID: "rotate", Action: "tenant.rotate-keys", Details: audit.Details{"version": "2", "reencrypted": "3", "tenants": "4"}},
		{ID: "onboard", Action: "tenant.onboard", Details: audit.Details{"requestedBy": "ops", "postgresSettings": "1", "mongoDatabase": "tenant_x"}},
		{ID: "profile", Action: "tenant.profile", Details: audit.Details{"requestedBy": "ops", "raises": "a, b", "type": "premium"}},
		{ID: "archive", Action: "archive.delete", Details: audit.Details{"bytes": "1", "writtenAt": "2026-01-01T00:00:00Z", "keptFor": "720h0m0s"}},
		// Keys no constructor writes today, that a future one could: each is stored escaped.
		{ID: "future", Action: "future.event", Details: audit.Details{"$set": "1", "a.b.c": "2", "": "3", "100%": "4", "nul\x00": "5", `"public"."settings"`: "6"}},
	}
	for _, e := range events {
		e.Actor = audit.Actor{Type: audit.ActorSystem, ID: "test"}
		e.Resource, e.Outcome = "x", audit.OutcomeSuccess
		_, err := b.w.Platform(ctx, e)
		require.NoError(t, err, e.ID)
	}
	rep, err := b.w.PlatformChain().Verify(ctx) // ships first
	require.NoError(t, err)
	require.True(t, rep.OK, "%+v", rep.FirstBroken)
	require.EqualValues(t, len(events), rep.Checked, "every event in the chain, none set aside")
	got := byID(b.platformEvents(t))
	for _, e := range events {
		require.Equal(t, e.Details, got[e.ID].Details, "%s reads back as written", e.ID)
	}
	q, err := b.w.Quarantine(ctx, 10)
	require.NoError(t, err)
	for _, e := range q.Latest {
		require.NotEqual(t, b.w.PlatformChain().Name(), e.Chain, "nothing of this chain quarantined: %+v", e)
	}
}

// Issue 32: the reconciliation event, then 20 operator actions, all in the platform chain, in
// order, shipped by the background shipper.
func TestReconciliationEventThenOperatorActionsAllShip(t *testing.T) {
	t.Parallel()
	b := setup(t).ownKey(t, 32)
	s := b.w.NewShipper(testenv.Logger(t))
	s.Interval, s.Quiet, s.MaxDelay = 50*time.Millisecond, 100*time.Millisecond, time.Second
	runShipper(t, s)
	ctx := context.Background()
	_, err := b.w.Platform(ctx, reconcileEvent("reconcile-32"))
	require.NoError(t, err)
	for i := range 20 {
		_, err := b.w.Platform(ctx, operatorAction(i))
		require.NoError(t, err)
	}
	got, took := b.waitForChain(t, 21)
	t.Logf("21 events in the platform chain %s after the last enqueue", took.Round(time.Millisecond))
	require.Len(t, got, 21)
	ids := byID(got)
	require.Equal(t, reconcileEvent("x").Details, ids["reconcile-32"].Details, "the reconciliation event itself, intact")
	for i := range 20 {
		require.Contains(t, ids, fmt.Sprintf("op-%02d", i))
	}
	rep, err := b.w.PlatformChain().Verify(ctx)
	require.NoError(t, err)
	require.True(t, rep.OK, "%+v", rep.FirstBroken)
	require.EqualValues(t, 21, rep.Checked)
}

// An event the store refuses for good (here larger than a document may be) is set aside: the
// 20 operator actions after it ship, a notice names it in the chain, the chain verifies; the
// event waits in the quarantine (counted), is refused again when re-shipped as it is, and goes
// into the chain once redacted, both decisions audited; an edit is still detected.
func TestRefusedEventIsQuarantinedAndTheChainGoesOn(t *testing.T) {
	t.Parallel()
	b := setup(t).ownKey(t, 33)
	s := b.w.NewShipper(testenv.Logger(t))
	s.Interval, s.Quiet, s.MaxDelay = 50*time.Millisecond, 100*time.Millisecond, time.Second
	runShipper(t, s)
	ctx := context.Background()
	chain := b.w.PlatformChain()

	_, err := b.w.Platform(ctx, operatorAction(100))
	require.NoError(t, err)
	poison := reconcileEvent("poison-" + strings.ReplaceAll(b.platform.Name(), "_", "-"))
	poison.Details["blob"] = strings.Repeat("x", 17<<20)
	_, err = b.w.Platform(ctx, poison)
	require.NoError(t, err)
	for i := range 20 {
		_, err := b.w.Platform(ctx, operatorAction(i))
		require.NoError(t, err)
	}
	got, took := b.waitForChain(t, 22) // the first action, 20 actions, the notice
	t.Logf("20 actions behind the refused event in the platform chain %s after the last enqueue", took.Round(time.Millisecond))
	require.Len(t, got, 22)
	ids := byID(got)
	require.NotContains(t, ids, poison.ID)
	for i := range 20 {
		require.Contains(t, ids, fmt.Sprintf("op-%02d", i))
	}
	var notice audit.Event
	for _, e := range got {
		if e.Action == audit.ActionQuarantined {
			notice = e
		}
	}
	require.Equal(t, poison.ID, notice.Details["eventId"], "the chain names what was set aside")
	require.Contains(t, notice.Reason, "too large")
	rep, err := chain.Verify(ctx)
	require.NoError(t, err)
	require.True(t, rep.OK, "%+v", rep.FirstBroken)
	require.EqualValues(t, 22, rep.Checked)

	q := quarantined(t, b, poison.ID)
	require.Equal(t, poison.Action, q.Action)
	backlog, err := b.w.Backlog(ctx)
	require.NoError(t, err)
	require.Positive(t, backlog.Quarantined)

	// Re-shipped as it is: refused again, quarantined again, and the chain still goes on.
	_, err = b.w.Repair(ctx, audit.Repair{EventID: poison.ID, Chain: q.Chain, Operator: "ops"})
	require.NoError(t, err)
	_, err = b.w.Repair(ctx, audit.Repair{EventID: poison.ID, Chain: q.Chain, Operator: "ops"})
	require.ErrorIs(t, err, audit.ErrNotQuarantined, "a repaired event is no longer quarantined")
	got, _ = b.waitForChain(t, 24) // the reship decision, a second notice
	require.Len(t, got, 24)
	q = quarantined(t, b, poison.ID)

	// Redacted: it ships, the chain verifies, the decision is in the chain.
	_, err = b.w.Repair(ctx, audit.Repair{EventID: poison.ID, Chain: q.Chain, Redact: true, Operator: "ops", Reason: "larger than a document may be"})
	require.NoError(t, err)
	got, _ = b.waitForChain(t, 26)
	require.Len(t, got, 26)
	ids = byID(got)
	require.Equal(t, "true", ids[poison.ID].Details["redacted"])
	require.Equal(t, poison.At.UTC().Truncate(time.Millisecond), ids[poison.ID].At, "keeps its time")
	var decisions []string
	for _, e := range got {
		if strings.HasPrefix(e.Action, "audit.quarantine.") {
			decisions = append(decisions, e.Action)
			require.Equal(t, "ops", e.Actor.ID)
		}
	}
	require.Equal(t, []string{audit.ActionQuarantineReship, audit.ActionQuarantineRedact}, decisions)
	rep, err = chain.Verify(ctx)
	require.NoError(t, err)
	require.True(t, rep.OK, "%+v", rep.FirstBroken)
	require.EqualValues(t, 26, rep.Checked)
	for _, e := range (func() []audit.Quarantined { s, _ := b.w.Quarantine(ctx, 1000); return s.Latest })() {
		require.NotEqual(t, poison.ID, e.EventID, "repaired")
	}

	// Tampering is still named: the redacted event's details edited in MongoDB.
	_, err = b.platform.Collection(audit.Collection).UpdateOne(ctx, bson.D{{Key: "_id", Value: poison.ID}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "details.redactedBy", Value: "someone else"}}}})
	require.NoError(t, err)
	rep, err = chain.Verify(ctx)
	require.NoError(t, err)
	require.False(t, rep.OK)
	require.Equal(t, audit.ProblemEdited, rep.FirstBroken.Problem)
	require.Equal(t, poison.ID, rep.FirstBroken.ID)
}

func quarantined(t *testing.T, b bundle, id string) audit.Quarantined {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		s, err := b.w.Quarantine(context.Background(), 1000)
		require.NoError(t, err)
		for _, q := range s.Latest {
			if q.EventID == id {
				return q
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	require.Fail(t, "not quarantined", id)
	return audit.Quarantined{}
}

func testActivityInfo(activityType string) activity.Info {
	return activity.Info{ActivityType: activity.Type{Name: activityType}, ActivityID: "7", Attempt: 1,
		WorkflowType: &workflow.Type{Name: "ReconcileTenants"}, WorkflowExecution: workflow.Execution{ID: "reconcile:1", RunID: "r1"}}
}

// A tenant chain's quarantined event outlives the chain: removing the chain (offboarding)
// moves it to the platform outbox, still quarantined, and it is repaired into the platform
// chain.
func TestQuarantinedTenantEventOutlivesItsChain(t *testing.T) {
	t.Parallel()
	b := setup(t).ownKey(t, 34)
	ctx, id := b.tenantCtx(t, "quar")
	poison := operatorAction(1)
	poison.ID = "poison-" + id
	poison.Details["blob"] = strings.Repeat("x", 17<<20)
	_, err := b.w.Tenant(ctx, poison)
	require.NoError(t, err)
	_, err = b.w.Tenant(ctx, operatorAction(2))
	require.NoError(t, err)
	c, err := b.w.TenantChain(ctx)
	require.NoError(t, err)
	rep, err := c.Verify(ctx) // ships: quarantines the poison, ships the action and the notice
	require.NoError(t, err)
	require.True(t, rep.OK, "%+v", rep.FirstBroken)
	require.EqualValues(t, 2, rep.Checked)
	require.Equal(t, "tenant_"+id+":tenant/"+id, quarantined(t, b, poison.ID).Chain)

	require.NoError(t, b.w.ForgetTenantChain(context.Background(), id))
	q := quarantined(t, b, poison.ID)
	require.Equal(t, b.platform.Name()+":platform", q.Chain, "moved, not lost")
	_, err = b.w.Repair(context.Background(), audit.Repair{EventID: poison.ID, Chain: q.Chain, Redact: true, Operator: "ops", Reason: "too large"})
	require.NoError(t, err)
	rep, err = b.w.PlatformChain().Verify(context.Background())
	require.NoError(t, err)
	require.True(t, rep.OK, "%+v", rep.FirstBroken)
	ids := byID(b.platformEvents(t))
	require.Equal(t, id, ids[poison.ID].TenantID)
	require.Equal(t, "true", ids[poison.ID].Details["redacted"])
	require.Contains(t, ids, audit.ActionQuarantineRedact+"/"+q.Chain+"/"+poison.ID+"/"+fmt.Sprint(q.At.UnixMilli()))
}
