package workflows_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/misybot/tenancy/activities"
	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/workflows"
)

var act *activities.Activities

// recorder keeps the order in which activities ran, to check compensations and their order.
type recorder struct {
	mu    sync.Mutex
	calls []string
}

func (r *recorder) add(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, name)
}

func (r *recorder) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// failFirst fails the first n calls with err, then lets the activity succeed.
type failFirst struct {
	n   int
	err error
}

func (f failFirst) Error() string { return f.err.Error() }

func permanent(msg string) error {
	return temporal.NewNonRetryableApplicationError(msg, "Boom", nil)
}

// lifecycleEnv registers the workflows and mocks every activity with success, except those
// named in fail, which return the given error (a transition is named "TransitionStatus:<to>").
func lifecycleEnv(t *testing.T, fail map[string]error) (*testsuite.TestWorkflowEnvironment, *recorder) {
	t.Helper()
	return lifecycleEnvOf(t, &testsuite.WorkflowTestSuite{}, fail)
}

// lifecycleEnvOf is lifecycleEnv in a suite of the caller's (a metrics handler set on it).
func lifecycleEnvOf(t *testing.T, s *testsuite.WorkflowTestSuite, fail map[string]error) (*testsuite.TestWorkflowEnvironment, *recorder) {
	t.Helper()
	env := s.NewTestWorkflowEnvironment()
	workflows.Register(env)
	env.RegisterActivity(act)
	mockClaims(env)
	rec := &recorder{}
	seen := map[string]int{}
	result := func(name string) error {
		rec.add(name)
		rec.mu.Lock()
		seen[name]++
		n := seen[name]
		rec.mu.Unlock()
		err, ok := fail[name]
		if !ok {
			return nil
		}
		if ff := (failFirst{}); errors.As(err, &ff) {
			if n <= ff.n {
				return ff.err
			}
			return nil
		}
		return err
	}
	env.OnActivity(act.TransitionStatus, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.TransitionInput) (activities.TransitionResult, error) {
			err := result("TransitionStatus:" + string(in.To))
			return activities.TransitionResult{Status: in.To, Changed: true}, err
		})
	env.OnActivity(act.GetStatus, mock.Anything, mock.Anything).Return(
		func(_ context.Context, _ activities.TenantRef) (activities.CurrentStatus, error) {
			return activities.CurrentStatus{Status: tenant.StatusSuspended}, result("GetStatus")
		})
	simple := map[string]any{
		"EnsureKeys": func(_ context.Context, _ activities.TenantRef) (activities.KeysResult, error) {
			return activities.KeysResult{Created: true}, result("EnsureKeys")
		},
		"DestroyKeys": func(_ context.Context, _ activities.TenantRef) (activities.DestroyKeysResult, error) {
			return activities.DestroyKeysResult{Destroyed: 1}, result("DestroyKeys")
		},
		"ProvisionPostgres": func(_ context.Context, _ activities.TenantRef) (activities.PostgresReport, error) {
			return activities.PostgresReport{SettingsCreated: 3, MembersCreated: 1}, result("ProvisionPostgres")
		},
		"DeprovisionPostgres": func(_ context.Context, _ activities.TenantRef) (map[string]int64, error) {
			return map[string]int64{"t": 3}, result("DeprovisionPostgres")
		},
		"ProvisionMongo": func(_ context.Context, _ activities.TenantRef) (activities.MongoReport, error) {
			return activities.MongoReport{Database: "tenant_acme"}, result("ProvisionMongo")
		},
		"DeprovisionMongo": func(_ context.Context, _ activities.DeprovisionInput) (activities.MongoDeprovisionReport, error) {
			return activities.MongoDeprovisionReport{Database: "tenant_acme", Dropped: true}, result("DeprovisionMongo")
		},
		"ProvisionRedis": func(_ context.Context, _ activities.TenantRef) (activities.RedisReport, error) {
			return activities.RedisReport{ContextKey: "k"}, result("ProvisionRedis")
		},
		"PurgeRedis": func(_ context.Context, _ activities.TenantRef) (activities.PurgeProgress, error) {
			return activities.PurgeProgress{Deleted: 2, Done: true}, result("PurgeRedis")
		},
		"RevokeSessions": func(_ context.Context, _ activities.TenantRef) (activities.RevokeSessionsResult, error) {
			return activities.RevokeSessionsResult{Revoked: 4}, result("RevokeSessions")
		},
		"ExportTenant": func(_ context.Context, in activities.ExportInput) (activities.ExportResult, error) {
			return activities.ExportResult{Path: in.Archive, SHA256: "abc"}, result("ExportTenant")
		},
		"Tombstone": func(_ context.Context, _ activities.TombstoneInput) (tenant.Status, error) {
			return tenant.StatusOffboarded, result("Tombstone")
		},
		"KeyVersions": func(_ context.Context, _ activities.TenantRef) (activities.KeyVersionsResult, error) {
			return activities.KeyVersionsResult{Versions: []int{1, 2}}, result("KeyVersions")
		},
		"EnsureKeyVersion": func(_ context.Context, in activities.KeyVersionInput) (bool, error) {
			return true, result(fmt.Sprintf("EnsureKeyVersion:%d", in.Version))
		},
		"ReencryptMessages": func(_ context.Context, _ activities.ReencryptInput) (activities.ReencryptProgress, error) {
			return activities.ReencryptProgress{Reencrypted: 7, Done: true}, result("ReencryptMessages")
		},
		"RecordAudit": func(_ context.Context, in activities.AuditInput) (bool, error) {
			return true, result("RecordAudit:" + in.Event.Action)
		},
		"ApplyProfileChange": func(_ context.Context, in activities.ProfileChange) error {
			return result("ApplyProfileChange:" + string(in.Type))
		},
		"PlaceTenant": func(_ context.Context, in activities.PlaceInput) (activities.PlaceResult, error) {
			return activities.PlaceResult{Cell: "eu-1"}, result("PlaceTenant:" + in.Cell + "/" + in.Region)
		},
	}
	for name, fn := range simple {
		env.OnActivity(name, mock.Anything, mock.Anything).Return(fn)
	}
	return env, rec
}

func progress(t *testing.T, env *testsuite.TestWorkflowEnvironment) workflows.Progress {
	t.Helper()
	v, err := env.QueryWorkflow(workflows.ProgressQuery)
	require.NoError(t, err)
	var p workflows.Progress
	require.NoError(t, v.Get(&p))
	return p
}

func stepNames(p workflows.Progress) []string {
	var out []string
	for _, s := range p.Steps {
		out = append(out, s.Name+"="+s.Status)
	}
	return out
}

func TestOnboardHappyPath(t *testing.T) {
	t.Parallel()
	env, rec := lifecycleEnv(t, nil)
	env.ExecuteWorkflow(workflows.OnboardTenant, workflows.OnboardInput{TenantID: "acme", RequestedBy: "ops"})
	require.NoError(t, env.GetWorkflowError())
	var res workflows.OnboardResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, tenant.StatusActive, res.Status)
	require.Equal(t, 3, res.Provisioned.Postgres.SettingsCreated)
	require.Equal(t, "tenant_acme", res.Provisioned.Mongo.Database)

	calls := rec.list()
	require.Equal(t, "TransitionStatus:onboarding", calls[0])
	require.Equal(t, "EnsureKeys", calls[1])
	require.ElementsMatch(t, []string{"ProvisionPostgres", "ProvisionMongo", "ProvisionRedis"}, calls[2:5], "the three stores, in parallel")
	require.Equal(t, []string{"RecordAudit:tenant.onboard", "TransitionStatus:active"}, calls[5:])

	p := progress(t, env)
	require.Equal(t, workflows.StateCompleted, p.State)
	require.Equal(t, []string{"mark-onboarding=completed", "generate-keys=completed", "provision=completed", "audit=completed", "mark-active=completed"}, stepNames(p))
	for _, s := range p.Steps {
		require.Equal(t, 1, s.Attempts)
		require.False(t, s.StartedAt.IsZero())
		require.False(t, s.EndedAt.IsZero())
	}
}

// An onboarding whose input asks for a placement places the tenant before anything else touches
// a store; one started before cells (no placement in its input) places nothing.
func TestOnboardPlacesTheTenantFirst(t *testing.T) {
	t.Parallel()
	env, rec := lifecycleEnv(t, nil)
	env.ExecuteWorkflow(workflows.OnboardTenant, workflows.OnboardInput{TenantID: "acme", RequestedBy: "ops", Placement: &workflows.Placement{Region: "eu"}})
	require.NoError(t, env.GetWorkflowError())
	var res workflows.OnboardResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, "eu-1", res.Cell)
	calls := rec.list()
	require.Equal(t, []string{"TransitionStatus:onboarding", "PlaceTenant:/eu", "EnsureKeys"}, calls[:3])
	require.Equal(t, "place=completed", stepNames(progress(t, env))[1])

	old, oldRec := lifecycleEnv(t, nil)
	old.ExecuteWorkflow(workflows.OnboardTenant, workflows.OnboardInput{TenantID: "acme", RequestedBy: "ops"})
	require.NoError(t, old.GetWorkflowError())
	require.NotContains(t, strings.Join(oldRec.list(), " "), "PlaceTenant")

	// No cell with room fails the run before any key or store exists, and marks it failed.
	full, fullRec := lifecycleEnv(t, map[string]error{"PlaceTenant:/eu": temporal.NewNonRetryableApplicationError("no cell in region eu", activities.ErrTypeNoCell, nil)})
	full.ExecuteWorkflow(workflows.OnboardTenant, workflows.OnboardInput{TenantID: "acme", RequestedBy: "ops", Placement: &workflows.Placement{Region: "eu"}})
	require.Error(t, full.GetWorkflowError())
	calls = fullRec.list()
	require.NotContains(t, calls, "EnsureKeys")
	require.NotContains(t, calls, "ProvisionMongo")
	require.Contains(t, calls, "TransitionStatus:failed")
}

// Each step failing permanently runs the compensations of the steps before it, newest first,
// and marks the tenant failed with the reason.
func TestOnboardPermanentFailureCompensates(t *testing.T) {
	t.Parallel()
	cases := map[string][]string{
		"TransitionStatus:onboarding": nil,
		"EnsureKeys":                  {"DestroyKeys"},
		"ProvisionMongo":              {"deprovision", "DestroyKeys"},
		"RecordAudit:tenant.onboard":  {"deprovision", "DestroyKeys"},
		"TransitionStatus:active":     {"deprovision", "DestroyKeys"},
	}
	for failing, wantComp := range cases {
		t.Run(failing, func(t *testing.T) {
			t.Parallel()
			env, rec := lifecycleEnv(t, map[string]error{failing: permanent("boom in " + failing)})
			env.ExecuteWorkflow(workflows.OnboardTenant, workflows.OnboardInput{TenantID: "acme"})
			err := env.GetWorkflowError()
			require.Error(t, err)
			require.True(t, workflows.Permanent(err), "%v", err)

			calls := rec.list()
			at := slices.Index(calls, failing)
			require.GreaterOrEqual(t, at, 0)
			after := calls[at+1:]
			// Collapse the three parallel deprovision activities into one marker.
			var got []string
			for _, c := range after {
				switch c {
				case "DeprovisionPostgres", "DeprovisionMongo", "PurgeRedis":
					if !slices.Contains(got, "deprovision") {
						got = append(got, "deprovision")
					}
				case "TransitionStatus:failed", "RecordAudit:tenant.onboard", "ProvisionPostgres", "ProvisionRedis":
				default:
					got = append(got, c)
				}
			}
			require.Equal(t, wantComp, got, "compensations after %s: %v", failing, after)
			require.Equal(t, "TransitionStatus:failed", calls[len(calls)-2], "the tenant is marked failed")
			require.Equal(t, "RecordAudit:tenant.onboard", calls[len(calls)-1], "and the failure audited")
			require.NotContains(t, after, "TransitionStatus:active")

			p := progress(t, env)
			require.Equal(t, workflows.StateFailed, p.State)
			for _, s := range p.Steps {
				if s.Status == workflows.StepFailed {
					require.Contains(t, s.LastError, "boom in "+failing)
				}
			}
		})
	}
}

// A step that keeps failing past its budget parks in awaiting_operator; retry runs it again.
func TestOnboardRetriesExhaustedThenRetrySignal(t *testing.T) {
	t.Parallel()
	// EnsureKeys fails (retryably) for its whole first budget of 2 attempts, then succeeds.
	env, rec := lifecycleEnv(t, map[string]error{"EnsureKeys": failFirst{n: 2, err: errors.New("db down")}})

	var parked workflows.Progress
	env.RegisterDelayedCallback(func() {
		parked = progress(t, env)
		env.SignalWorkflow(workflows.RetrySignal, decided("alice"))
	}, time.Hour)
	env.ExecuteWorkflow(workflows.OnboardTenant, workflows.OnboardInput{TenantID: "acme", StepAttempts: 2})
	require.NoError(t, env.GetWorkflowError())

	require.Equal(t, workflows.StateAwaitingOperator, parked.State)
	require.Equal(t, []string{workflows.RetrySignal, workflows.AbortSignal}, parked.Signals)
	require.Equal(t, workflows.StepAwaitingOperator, parked.Steps[1].Status)
	require.Contains(t, parked.Steps[1].LastError, "db down")

	p := progress(t, env)
	require.Equal(t, workflows.StateCompleted, p.State)
	require.Equal(t, 2, p.Steps[1].Attempts, "generate-keys ran twice: once parked, once after retry")
	require.NotContains(t, rec.list(), "DestroyKeys")
}

func TestOnboardRetriesExhaustedThenAbortSignal(t *testing.T) {
	t.Parallel()
	env, rec := lifecycleEnv(t, map[string]error{"ProvisionRedis": errors.New("redis down")})
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(workflows.AbortSignal, decided("alice")) }, time.Hour)
	env.ExecuteWorkflow(workflows.OnboardTenant, workflows.OnboardInput{TenantID: "acme", StepAttempts: 2})
	err := env.GetWorkflowError()
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "%v", err)
	require.Equal(t, workflows.ErrTypeAborted, appErr.Type())
	calls := rec.list()
	require.Contains(t, calls, "DeprovisionMongo", "abort runs the compensations")
	require.Contains(t, calls, "DestroyKeys")
	require.Contains(t, calls, "TransitionStatus:failed")
	require.NotContains(t, calls, "TransitionStatus:active")
}

func TestOnboardWaitsForApproval(t *testing.T) {
	t.Parallel()
	env, rec := lifecycleEnv(t, nil)
	var waiting workflows.Progress
	var callsWhileWaiting []string
	env.RegisterDelayedCallback(func() {
		waiting = progress(t, env)
		callsWhileWaiting = rec.list()
		env.SignalWorkflow(workflows.ApproveSignal, decided("bob"))
	}, 24*time.Hour)
	env.ExecuteWorkflow(workflows.OnboardTenant, workflows.OnboardInput{TenantID: "acme", NeedsApproval: true})
	require.NoError(t, env.GetWorkflowError())
	var res workflows.OnboardResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, "bob", res.ApprovedBy)

	require.Equal(t, workflows.StateAwaitingApproval, waiting.State)
	require.Equal(t, []string{"TransitionStatus:onboarding"}, callsWhileWaiting, "nothing is provisioned before approval")
	require.Contains(t, rec.list(), "RecordAudit:tenant.onboard.approve")
	require.Contains(t, rec.list(), "TransitionStatus:active")
}

// Four eyes inside the workflow too (a signal may come straight from Temporal): an approval
// from the requester is ignored, and the run waits for someone else's.
func TestApprovalFromTheRequesterIsIgnored(t *testing.T) {
	t.Parallel()
	env, rec := lifecycleEnv(t, nil)
	var afterSelf workflows.Progress
	var callsAfterSelf []string
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(workflows.ApproveSignal, decided("alice")) }, time.Hour)
	env.RegisterDelayedCallback(func() {
		afterSelf, callsAfterSelf = progress(t, env), rec.list()
		env.SignalWorkflow(workflows.ApproveSignal, decided("bob"))
	}, 2*time.Hour)
	env.ExecuteWorkflow(workflows.OnboardTenant, workflows.OnboardInput{TenantID: "acme", NeedsApproval: true, RequestedBy: "alice"})
	require.NoError(t, env.GetWorkflowError())
	var res workflows.OnboardResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, "bob", res.ApprovedBy)
	require.Equal(t, workflows.StateAwaitingApproval, afterSelf.State, "still waiting after the requester's own approval")
	require.Equal(t, "alice", afterSelf.RequestedBy)
	require.NotContains(t, callsAfterSelf, "EnsureKeys")
}

// A profile change that raises a ceiling is applied only once approved, and audited either way.
func TestProfileChangeWaitsForApproval(t *testing.T) {
	t.Parallel()
	for _, approve := range []bool{true, false} {
		env, rec := lifecycleEnv(t, nil)
		env.RegisterDelayedCallback(func() {
			if approve {
				env.SignalWorkflow(workflows.ApproveSignal, decided("bob"))
			} else {
				env.SignalWorkflow(workflows.AbortSignal, decided("bob"))
			}
		}, time.Hour)
		env.ExecuteWorkflow(workflows.ChangeTenantProfile, workflows.ProfileChangeInput{
			Change: activities.ProfileChange{TenantID: "acme", Type: tenant.TypeEnterprise}, RequestedBy: "alice", Raises: []string{"type standard to enterprise"},
		})
		if approve {
			require.NoError(t, env.GetWorkflowError())
			require.Equal(t, []string{"ApplyProfileChange:enterprise", "RecordAudit:tenant.profile.change"}, rec.list())
		} else {
			require.ErrorContains(t, env.GetWorkflowError(), "rejected by bob")
			require.Equal(t, []string{"RecordAudit:tenant.profile.change"}, rec.list(), "nothing applied")
		}
	}
}

func TestOnboardRejectedDuringApproval(t *testing.T) {
	t.Parallel()
	env, rec := lifecycleEnv(t, nil)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(workflows.AbortSignal, decided("bob")) }, time.Hour)
	env.ExecuteWorkflow(workflows.OnboardTenant, workflows.OnboardInput{TenantID: "acme", NeedsApproval: true})
	require.Error(t, env.GetWorkflowError())
	calls := rec.list()
	require.NotContains(t, calls, "EnsureKeys")
	require.NotContains(t, calls, "ProvisionPostgres")
	require.Contains(t, calls, "TransitionStatus:failed")
}

func TestSuspendRevokesSessionsAndAudits(t *testing.T) {
	t.Parallel()
	env, rec := lifecycleEnv(t, nil)
	env.ExecuteWorkflow(workflows.SuspendTenant, workflows.StatusChangeInput{TenantID: "acme", RequestedBy: "ops"})
	require.NoError(t, env.GetWorkflowError())
	var res workflows.StatusChangeResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, int64(4), res.SessionsRevoked)
	require.Equal(t, []string{"TransitionStatus:suspended", "RevokeSessions", "RecordAudit:tenant.suspend"}, rec.list())
}

func TestOffboardPurgesEverythingInOrder(t *testing.T) {
	t.Parallel()
	env, rec := lifecycleEnv(t, nil)
	env.ExecuteWorkflow(workflows.OffboardTenant, workflows.OffboardInput{TenantID: "acme", RequestedBy: "ops"})
	require.NoError(t, env.GetWorkflowError())
	var res workflows.OffboardResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, tenant.StatusOffboarded, res.Status)
	require.Equal(t, "abc", res.Archive.SHA256)
	require.Equal(t, []string{"GetStatus", "TransitionStatus:offboarding", "ExportTenant", "DestroyKeys",
		"DeprovisionPostgres", "DeprovisionMongo", "PurgeRedis", "Tombstone", "RecordAudit:tenant.offboard"}, rec.list())
}

// cancel-offboard during the grace period restores the previous status and purges nothing.
func TestCancelOffboardDuringGrace(t *testing.T) {
	t.Parallel()
	env, rec := lifecycleEnv(t, nil)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(workflows.CancelOffboardSignal, decided("carol")) }, time.Hour)
	env.ExecuteWorkflow(workflows.OffboardTenant, workflows.OffboardInput{TenantID: "acme", GracePeriod: 72 * time.Hour})
	require.NoError(t, env.GetWorkflowError())
	var res workflows.OffboardResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.True(t, res.Cancelled)
	require.Equal(t, "carol", res.CancelledBy)
	require.Equal(t, tenant.StatusSuspended, res.Status, "GetStatus said suspended before offboarding")
	calls := rec.list()
	require.Equal(t, []string{"GetStatus", "TransitionStatus:offboarding", "ExportTenant", "TransitionStatus:suspended", "RecordAudit:tenant.offboard.cancel"}, calls)
	require.Equal(t, workflows.StateCancelled, progress(t, env).State)
}

// Without a cancel, the durable timer runs out and the purge follows.
func TestOffboardGraceExpires(t *testing.T) {
	t.Parallel()
	env, rec := lifecycleEnv(t, nil)
	env.ExecuteWorkflow(workflows.OffboardTenant, workflows.OffboardInput{TenantID: "acme", GracePeriod: 72 * time.Hour})
	require.NoError(t, env.GetWorkflowError())
	require.Contains(t, rec.list(), "Tombstone")
}

// An illegal transition is permanent: the workflow fails at once, audits nothing, and the
// progress names the failure.
func TestRestoreIllegalTransitionFailsWithoutRetry(t *testing.T) {
	t.Parallel()
	illegal := temporal.NewNonRetryableApplicationError("tenant acme is pending", activities.ErrTypeIllegalTransition, nil)
	env, rec := lifecycleEnv(t, map[string]error{"TransitionStatus:active": illegal})
	env.ExecuteWorkflow(workflows.RestoreTenant, workflows.StatusChangeInput{TenantID: "acme"})
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(env.GetWorkflowError(), &appErr))
	require.Equal(t, activities.ErrTypeIllegalTransition, appErr.Type())
	require.Equal(t, []string{"TransitionStatus:active"}, rec.list(), "one attempt, no audit")
	p := progress(t, env)
	require.Equal(t, workflows.StateFailed, p.State)
	require.Contains(t, p.Steps[0].LastError, "pending")
}

// Rotation picks the next version once, waits for caches, re-encrypts, audits; an operator's
// retry of a parked step reuses the same version (no second new key).
func TestRotateTenantKey(t *testing.T) {
	t.Parallel()
	env, rec := lifecycleEnv(t, map[string]error{"EnsureKeyVersion:3": failFirst{n: 2, err: errors.New("db down")}})
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(workflows.RetrySignal, decided("ops")) }, time.Hour)
	env.ExecuteWorkflow(workflows.RotateTenantKey, workflows.RotateKeyInput{TenantID: "acme", StepAttempts: 2})
	require.NoError(t, env.GetWorkflowError())
	var res workflows.RotateKeyResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, workflows.RotateKeyResult{Version: 3, Reencrypted: 7}, res)
	require.Equal(t, []string{"KeyVersions", "EnsureKeyVersion:3", "EnsureKeyVersion:3", "RecordAudit:workflow.signal.retry", "EnsureKeyVersion:3",
		"ReencryptMessages", "RecordAudit:tenant.keys.rotate"}, rec.list(), "versions read once, version 3 ensured until it took; the operator's retry audited")
	require.Equal(t, []string{"new-key-version=completed", "settle-caches=completed", "reencrypt=completed", "audit=completed"}, stepNames(progress(t, env)))
}

// Cancelling a run parked for an operator compensates like an abort.
func TestCancelWhileParkedCompensates(t *testing.T) {
	t.Parallel()
	env, rec := lifecycleEnv(t, map[string]error{"ProvisionRedis": errors.New("redis down")})
	env.RegisterDelayedCallback(env.CancelWorkflow, time.Hour)
	env.ExecuteWorkflow(workflows.OnboardTenant, workflows.OnboardInput{TenantID: "acme", StepAttempts: 2})
	require.Error(t, env.GetWorkflowError())
	calls := rec.list()
	require.Contains(t, calls, "DeprovisionMongo", "compensations ran despite the cancellation")
	require.Contains(t, calls, "DestroyKeys")
	require.Contains(t, calls, "TransitionStatus:failed")
}
