package workflows_test

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/misybot/tenancy/activities"
	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/workflows"
)

// In these unit tests a recorded decision is a decision id that spells its decider and role:
// decided("bob") is bob's as a platform-admin, decidedAs("carl", "operator") carl's as an
// operator. mockClaims answers ClaimDecision for such ids as the real store would (role and
// four eyes checked, subject the drift), and refuses every other id as unrecorded. The store's
// own checks (run, kind, single use) are tested against PostgreSQL in internal/domain/decision.

const decisionMagic = "d:"

func decided(by string) string { return decidedAs(by, "platform-admin") }

func decidedAs(by, role string) string { return decidedAbout(by, role, "") }

// decidedAbout is a decision with a subject (a reconciliation decision's drift).
func decidedAbout(by, role, subject string) string {
	code := map[string]string{"platform-admin": "a", "operator": "o", "cli": "c", "auditor": "u"}[role]
	s := decisionMagic + code + by
	if subject != "" {
		s += "|" + subject
	}
	if len(s) > 16 {
		panic("decision too long for a test id: " + s)
	}
	return hex.EncodeToString([]byte(fmt.Sprintf("%-16s", s)))
}

// forgedID is well formed but was never recorded.
const forgedID = "0123456789abcdef0123456789abcdef"

// mockClaims answers ClaimDecision on env (see decided); claims counts the claims asked for.
func mockClaims(env *testsuite.TestWorkflowEnvironment) {
	roles := map[string]string{"a": "platform-admin", "o": "operator", "c": "cli", "u": "auditor"}
	env.OnActivity(act.ClaimDecision, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ClaimDecisionInput) (activities.ClaimDecisionResult, error) {
			raw, _ := hex.DecodeString(in.DecisionID) // not hex: no prefix, refused below
			s := strings.TrimRight(string(raw), " ")
			if !strings.HasPrefix(s, decisionMagic) || len(s) < len(decisionMagic)+2 {
				return activities.ClaimDecisionResult{Refused: "no decision was recorded with this id"}, nil
			}
			s = s[len(decisionMagic):]
			role, rest := roles[s[:1]], s[1:]
			by, subject, _ := strings.Cut(rest, "|")
			switch {
			case !slices.Contains(in.Roles, role):
				return activities.ClaimDecisionResult{Refused: fmt.Sprintf("made by %s as %s; this needs one of %v", by, role, in.Roles)}, nil
			case in.NotBy != "" && by == in.NotBy:
				return activities.ClaimDecisionResult{Refused: "made by " + by + ", who requested the change"}, nil
			}
			return activities.ClaimDecisionResult{Accepted: true, By: by, Role: role, Subject: subject}, nil
		})
}

// refusals are the refused-signal audit events a run asked for.
func refusals(calls []string) int {
	n := 0
	for _, c := range calls {
		if c == "RecordAudit:workflow.signal.refused" {
			n++
		}
	}
	return n
}

// The finding of issue 32: `temporal workflow signal --name approve --input '"anyone"'`
// approved a type raise. Now a signal whose value is no recorded decision, a recorded one by a
// role that may not approve, or the requester's own, changes nothing: the run keeps waiting,
// the progress shows the refusal, and each refusal is audited. Only a platform-admin's
// recorded decision lets it go on.
func TestForgedApprovalsAreRefused(t *testing.T) {
	t.Parallel()
	for name, start := range map[string]func(env *testsuite.TestWorkflowEnvironment){
		"profile change": func(env *testsuite.TestWorkflowEnvironment) {
			env.ExecuteWorkflow(workflows.ChangeTenantProfile, workflows.ProfileChangeInput{
				Change: activities.ProfileChange{TenantID: "acme", Type: tenant.TypeOwner}, RequestedBy: "alice", Raises: []string{"type standard to owner"},
			})
		},
		"onboarding": func(env *testsuite.TestWorkflowEnvironment) {
			env.ExecuteWorkflow(workflows.OnboardTenant, workflows.OnboardInput{TenantID: "acme", NeedsApproval: true, RequestedBy: "alice"})
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			env, rec := lifecycleEnv(t, nil)
			forged := []struct{ signal, value, want string }{
				{workflows.ApproveSignal, "anyone", `carried "anyone", which is not a recorded decision`},
				{workflows.ApproveSignal, forgedID, "no decision was recorded"},
				{workflows.ApproveSignal, decidedAs("carl", "operator"), "needs one of [platform-admin]"},
				{workflows.ApproveSignal, decided("alice"), "who requested the change"},
				{workflows.AbortSignal, "mallory", `carried "mallory"`},
				{workflows.AbortSignal, decidedAs("dave", "auditor"), "as auditor"},
			}
			var after []workflows.Progress
			var callsBefore []string
			for i, f := range forged {
				env.RegisterDelayedCallback(func() { env.SignalWorkflow(f.signal, f.value) }, time.Duration(i+1)*time.Hour)
				env.RegisterDelayedCallback(func() { after = append(after, progress(t, env)) }, time.Duration(i+1)*time.Hour+time.Minute)
			}
			env.RegisterDelayedCallback(func() {
				callsBefore = rec.list()
				env.SignalWorkflow(workflows.ApproveSignal, decided("bob"))
			}, 24*time.Hour)
			start(env)
			require.NoError(t, env.GetWorkflowError())

			require.Len(t, after, len(forged))
			for i, p := range after {
				require.Equal(t, workflows.StateAwaitingApproval, p.State, "still waiting after %s %q", forged[i].signal, forged[i].value)
				require.Equal(t, i+1, p.Refusals)
				require.Contains(t, p.LastRefusal, forged[i].signal+" signal refused")
				require.Contains(t, p.LastRefusal, forged[i].want)
				waiting := p.Steps[len(p.Steps)-1]
				require.Equal(t, "await-approval", waiting.Name)
				require.Equal(t, p.LastRefusal, waiting.LastError, "the waiting step shows it too")
			}
			require.Equal(t, len(forged), refusals(callsBefore), "every refusal audited")
			require.NotContains(t, callsBefore, "ApplyProfileChange:owner")
			require.NotContains(t, callsBefore, "EnsureKeys")
			require.NotContains(t, callsBefore, "TransitionStatus:failed", "a forged abort rejects nothing")
			if name == "profile change" {
				require.Contains(t, rec.list(), "ApplyProfileChange:owner")
			} else {
				require.Contains(t, rec.list(), "TransitionStatus:active")
			}
		})
	}
}

// The audit event of a refusal: denied, by no one who proved anything, naming the signal,
// routed (the tenant may be in any state), one id per refusal.
func TestARefusedSignalIsAuditedAsDenied(t *testing.T) {
	t.Parallel()
	env, audits := suspendParked(t, func(env *testsuite.TestWorkflowEnvironment) {
		// One at a time: of two signals waiting, the run's selector takes the go-ahead first.
		env.SignalWorkflow(workflows.RetrySignal, "anyone")
		env.RegisterDelayedCallback(func() { env.SignalWorkflow(workflows.AbortSignal, "anyone") }, time.Minute)
		env.RegisterDelayedCallback(func() { env.SignalWorkflow(workflows.RetrySignal, decided("alice")) }, 2*time.Minute)
	})
	require.NoError(t, env.GetWorkflowError())
	var refused []activities.AuditInput
	for _, in := range audits {
		if in.Event.Action == "workflow.signal.refused" {
			refused = append(refused, in)
		}
	}
	require.Len(t, refused, 2)
	for i, in := range refused {
		require.True(t, in.Route)
		require.Equal(t, activities.OutcomeDenied, in.Event.Outcome)
		require.Equal(t, activities.AuditActor{Type: activities.ActorSystem, ID: "unverified signal"}, in.Event.Actor)
		require.Equal(t, "acme", in.Event.TenantID)
		require.Contains(t, in.Event.Reason, `"anyone"`)
		require.Equal(t, []string{workflows.RetrySignal, workflows.AbortSignal}[i], in.Event.Details["signal"])
	}
	require.NotEqual(t, refused[0].Event.ID, refused[1].Event.ID)
	retried := signalEvents(audits)
	require.Equal(t, "workflow.signal.retry", retried[len(retried)-1].Action)
	require.Equal(t, activities.AuditActor{Type: activities.ActorOperator, ID: "alice"}, retried[len(retried)-1].Actor, "the decider read back")
}

// A parked step (here a key rotation's, and a master key rotation's page) neither retries nor
// aborts on a forged signal: it stays parked, with its own error kept and the refusal beside
// it. A recorded retry by an operator runs it again; an operator may not abort.
func TestForgedRetryAndAbortOfAParkedStepAreRefused(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		fail  map[string]error
		start func(env *testsuite.TestWorkflowEnvironment)
	}{
		"data key rotation": {map[string]error{"EnsureKeyVersion:3": failFirst{n: 2, err: errors.New("db down")}}, func(env *testsuite.TestWorkflowEnvironment) {
			env.ExecuteWorkflow(workflows.RotateTenantKey, workflows.RotateKeyInput{TenantID: "acme", StepAttempts: 2})
		}},
		"onboarding": {map[string]error{"EnsureKeys": failFirst{n: 2, err: errors.New("db down")}}, func(env *testsuite.TestWorkflowEnvironment) {
			env.ExecuteWorkflow(workflows.OnboardTenant, workflows.OnboardInput{TenantID: "acme", StepAttempts: 2})
		}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			env, rec := lifecycleEnv(t, tc.fail)
			var after workflows.Progress
			var callsBefore []string
			env.RegisterDelayedCallback(func() {
				env.SignalWorkflow(workflows.RetrySignal, "anyone")
				env.SignalWorkflow(workflows.AbortSignal, "anyone")
				env.SignalWorkflow(workflows.AbortSignal, decidedAs("carl", "operator"))
			}, time.Hour)
			env.RegisterDelayedCallback(func() {
				after, callsBefore = progress(t, env), rec.list()
				env.SignalWorkflow(workflows.RetrySignal, decidedAs("carl", "operator"))
			}, 2*time.Hour)
			tc.start(env)
			require.NoError(t, env.GetWorkflowError())
			require.Equal(t, workflows.StateAwaitingOperator, after.State, "still parked")
			require.Equal(t, 3, after.Refusals)
			require.Contains(t, after.LastRefusal, "abort signal refused")
			require.Contains(t, after.LastRefusal, "as operator")
			parked := after.Steps[len(after.Steps)-1]
			require.Equal(t, workflows.StepAwaitingOperator, parked.Status)
			require.Contains(t, parked.LastError, "db down", "the step's own error stays")
			require.Equal(t, 3, refusals(callsBefore))
			require.NotContains(t, callsBefore, "RecordAudit:workflow.signal.retry")
			require.NotContains(t, callsBefore, "RecordAudit:workflow.signal.abort")
			require.Contains(t, rec.list(), "RecordAudit:workflow.signal.retry", "the recorded retry is acted on")
		})
	}
}

// An offboarding's grace period is not ended by a forged cancel-offboard: the timer runs out and
// the purge follows. A recorded one restores the tenant.
func TestForgedCancelOffboardIsRefused(t *testing.T) {
	t.Parallel()
	env, rec := lifecycleEnv(t, nil)
	var during workflows.Progress
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(workflows.CancelOffboardSignal, "anyone")
		env.SignalWorkflow(workflows.CancelOffboardSignal, decidedAs("carl", "operator"))
	}, time.Hour)
	env.RegisterDelayedCallback(func() { during = progress(t, env) }, 2*time.Hour)
	env.ExecuteWorkflow(workflows.OffboardTenant, workflows.OffboardInput{TenantID: "acme", GracePeriod: 72 * time.Hour})
	require.NoError(t, env.GetWorkflowError())
	var res workflows.OffboardResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.False(t, res.Cancelled)
	require.Equal(t, tenant.StatusOffboarded, res.Status, "the grace period ran out and the purge followed")
	require.Equal(t, 2, during.Refusals)
	require.Contains(t, during.LastRefusal, "cancel-offboard signal refused")
	require.Equal(t, "grace-period", during.Steps[len(during.Steps)-1].Name)
	require.Equal(t, during.LastRefusal, during.Steps[len(during.Steps)-1].LastError)
	require.Equal(t, []string{workflows.CancelOffboardSignal}, during.Signals, "still accepting a real one")
	require.Equal(t, 2, refusals(rec.list()))
	require.Contains(t, rec.list(), "Tombstone")
}

// A run that reached its wait before operator decisions (no marker on replay) keeps taking a
// signal's value as the decider's name, as it did when it started.
func TestARunFromBeforeDecisionsTakesTheSignalsName(t *testing.T) {
	t.Parallel()
	env, rec := lifecycleEnv(t, nil)
	env.OnGetVersion("operator-decisions", workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(workflows.ApproveSignal, "bob") }, time.Hour)
	env.ExecuteWorkflow(workflows.ChangeTenantProfile, workflows.ProfileChangeInput{
		Change: activities.ProfileChange{TenantID: "acme", Type: tenant.TypeOwner}, RequestedBy: "alice",
	})
	require.NoError(t, env.GetWorkflowError())
	var res workflows.ProfileChangeResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, "bob", res.ApprovedBy)
	require.Zero(t, refusals(rec.list()))
}

// A reconciliation run repairs nothing on a forged repair or decide (or a decision whose
// subject is the drift, made by an operator), and a forged close does not end its wait: each
// is refused, counted in the progress and audited in the platform chain. Recorded ones act,
// the drift taken from the decision, not from the signal.
func TestForgedReconciliationSignalsAreRefused(t *testing.T) {
	t.Parallel()
	env, m := reconcileEnv(t, []string{"a"}, activities.ReconcileSummary{SafeOpen: 2, DecisionsOpen: 1})
	var audits []activities.AuditInput
	env.OnActivity(act.RecordAudit, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.AuditInput) (bool, error) {
			m.mu.Lock()
			defer m.mu.Unlock()
			audits = append(audits, in)
			return true, nil
		})
	var after workflows.ReconcileProgress
	var repairsBefore, decisionsBefore int
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(workflows.RepairSignal, "anyone")
		env.SignalWorkflow(workflows.DecideSignal, workflows.DecisionSignal{DriftID: "orphan_database:gone-1", By: "anyone"})
		env.SignalWorkflow(workflows.DecideSignal, workflows.DecisionSignal{Decision: decidedAbout("carl", "operator", "d1")})
		env.SignalWorkflow(workflows.CloseSignal, "anyone")
	}, time.Hour)
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(workflows.ProgressQuery)
		require.NoError(t, err)
		require.NoError(t, v.Get(&after))
		m.mu.Lock()
		repairsBefore, decisionsBefore = len(m.repairs), len(m.decisions)
		m.mu.Unlock()
		env.SignalWorkflow(workflows.RepairSignal, decidedAs("alice", "cli"))
		env.SignalWorkflow(workflows.DecideSignal, workflows.DecisionSignal{Decision: decidedAbout("bob", "platform-admin", "d1")})
	}, 2*time.Hour)
	env.ExecuteWorkflow(workflows.ReconcileTenants, workflows.ReconcileInput{RunID: "r1"})
	require.NoError(t, env.GetWorkflowError())

	require.Equal(t, workflows.PhaseAwaiting, after.Phase, "a forged close ends nothing")
	require.Equal(t, 4, after.Refusals)
	require.Contains(t, after.LastRefusal, "close signal refused")
	require.Zero(t, repairsBefore, "no repair on a forged signal")
	require.Zero(t, decisionsBefore)
	m.mu.Lock()
	defer m.mu.Unlock()
	require.Len(t, m.repairs, 1)
	require.Equal(t, "alice", m.repairs[0].ApprovedBy, "the decider read back")
	require.Len(t, m.decisions, 1)
	require.Equal(t, "d1", m.decisions[0].DriftID, "the drift is the decision's subject")
	require.Equal(t, "bob", m.decisions[0].By)
	denied := 0
	for _, in := range audits {
		if in.Event.Action == "workflow.signal.refused" {
			denied++
			require.True(t, in.Platform)
			require.Equal(t, "reconciliation/r1", in.Event.Resource)
		}
	}
	require.Equal(t, 4, denied)
}
