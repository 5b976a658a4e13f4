package decision_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/internal/domain/decision"
	"github.com/misybot/tenancy/internal/testkit/testenv"
)

// A recorded decision is claimed only by the run, signal and role it names, never for its
// requester, and once: a second consumer is refused while a retried claim (the same consumer)
// gets the same answer. Against the real PostgreSQL, as the application role.
func TestClaimActsOnlyOnTheRecordedDecision(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := decision.New(testenv.AppPool(t))
	wid := "tenant-profile:" + testenv.TenantID("dec")
	d, err := store.Record(ctx, decision.Decision{WorkflowID: wid, RunID: "run-1", Kind: "approve", By: "bob", Role: "platform-admin"})
	require.NoError(t, err)
	require.Len(t, d.ID, 32)
	require.False(t, d.At.IsZero())

	want := decision.Want{WorkflowID: wid, RunID: "run-1", Kind: "approve", Roles: []string{"platform-admin"}, NotBy: "alice", Consumer: wid + "/run-1/1"}
	for name, tc := range map[string]struct {
		id   string
		edit func(*decision.Want)
		why  string
	}{
		"unrecorded":       {"anyone", nil, "no decision was recorded"},
		"well formed":      {"0123456789abcdef0123456789abcdef", nil, "no decision was recorded"},
		"another workflow": {d.ID, func(w *decision.Want) { w.WorkflowID = "tenant-profile:other" }, "for another run"},
		"another run":      {d.ID, func(w *decision.Want) { w.RunID = "run-2" }, "for another run"},
		"another signal":   {d.ID, func(w *decision.Want) { w.Kind = "abort" }, "not abort"},
		"a role it lacks":  {d.ID, func(w *decision.Want) { w.Roles = []string{"cli"} }, "needs one of [cli]"},
		"by the requester": {d.ID, func(w *decision.Want) { w.NotBy = "bob" }, "who requested the change"},
	} {
		w := want
		if tc.edit != nil {
			tc.edit(&w)
		}
		_, refused, err := store.Claim(ctx, tc.id, w)
		require.NoError(t, err, name)
		require.Contains(t, refused, tc.why, name)
	}
	got, err := store.Get(ctx, d.ID)
	require.NoError(t, err)
	require.Empty(t, got.ConsumedBy, "no refusal claims it")

	claimed, refused, err := store.Claim(ctx, d.ID, want)
	require.NoError(t, err)
	require.Empty(t, refused)
	require.Equal(t, "bob", claimed.By)
	require.Equal(t, "platform-admin", claimed.Role)

	again, refused, err := store.Claim(ctx, d.ID, want)
	require.NoError(t, err)
	require.Empty(t, refused, "a retried claim answers the same")
	require.Equal(t, claimed.ID, again.ID)

	other := want
	other.Consumer = wid + "/run-1/2"
	_, refused, err = store.Claim(ctx, d.ID, other)
	require.NoError(t, err)
	require.Contains(t, refused, "already acted on", "an id copied out of a history cannot be used twice")
}

// The application role may claim a decision but not rewrite who made it: the grant covers
// the consumed columns only (migration 00016).
func TestTheAppRoleCannotRewriteADecision(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.AppPool(t)
	d, err := decision.New(pool).Record(ctx, decision.Decision{WorkflowID: "tenant-lifecycle:" + testenv.TenantID("dec"), Kind: "retry", By: "carl", Role: "operator"})
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `UPDATE operator_decisions SET role = 'platform-admin' WHERE decision_id = $1`, d.ID)
	require.ErrorContains(t, err, "permission denied")
	_, err = pool.Exec(ctx, `INSERT INTO operator_decisions (decision_id, workflow_id, kind, decided_by, role) VALUES ('anyone', 'w', 'approve', 'x', 'platform-admin')`)
	require.ErrorContains(t, err, "operator_decisions_id_shape")
}

// Reconciliation decisions name no run (a run waiting for decisions continues as new), and
// carry their drift as the subject.
func TestADecisionForAnyRunCarriesItsSubject(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := decision.New(testenv.AppPool(t))
	wid := "reconcile:" + testenv.TenantID("dec")
	d, err := store.Record(ctx, decision.Decision{WorkflowID: wid, Kind: "decide", By: "cli:root", Role: decision.RoleCLI, Subject: "orphan_database:gone-1"})
	require.NoError(t, err)
	got, refused, err := store.Claim(ctx, d.ID, decision.Want{WorkflowID: wid, RunID: "after-continue-as-new", Kind: "decide",
		Roles: []string{"platform-admin", decision.RoleCLI}, Consumer: wid + "/x/1"})
	require.NoError(t, err)
	require.Empty(t, refused)
	require.Equal(t, "orphan_database:gone-1", got.Subject)
}
