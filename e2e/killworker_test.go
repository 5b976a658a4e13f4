package e2e

import (
	"context"
	"encoding/base64"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/misybot/tenancy/api"
	"github.com/misybot/tenancy/internal/control/schedule"
	"github.com/misybot/tenancy/internal/domain/audit"
	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/testkit/testenv"
	"github.com/misybot/tenancy/workflows"
)

// buildWorker compiles the real worker binary once per test.
func buildWorker(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "worker")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/misybot/tenancy/worker").CombinedOutput()
	require.NoError(t, err, string(out))
	return bin
}

// startWorkerProcess runs the worker binary on the stack's task queue, logging to a file that
// is printed if the test fails. Its metrics listener takes any free port unless env (extra
// NAME=value settings, which win) says otherwise.
func (s *stack) startWorkerProcess(bin, name string, env ...string) *exec.Cmd {
	s.t.Helper()
	logPath := filepath.Join(s.exports, name+".log")
	logFile, err := os.Create(logPath)
	require.NoError(s.t, err)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"APP_ENV=dev", "LOG_LEVEL=info",
		"DATABASE_URL="+testenv.AppDatabaseURL, "MONGODB_URI="+testenv.MongoURI, "REDIS_URL="+testenv.RedisURL,
		"TEMPORAL_ADDRESS="+testenv.TemporalAddress, "TASK_QUEUE="+s.queue,
		"TENANT_MASTER_KEY="+base64.StdEncoding.EncodeToString(masterKey), "EXPORT_DIR="+s.exports,
		"AUDIT_PLATFORM_DATABASE="+s.platformDB, "EXPORT_RECIPIENT="+exportIdentity.Recipient().String(),
		"WORKER_METRICS_ADDR=127.0.0.1:0",
	)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	require.NoError(s.t, cmd.Start())
	// The worker creates its task queue's retention schedule at start; this queue dies with the
	// test, so its schedule must too.
	s.t.Cleanup(func() {
		_ = s.temporal.ScheduleClient().GetHandle(context.Background(), schedule.AuditRetentionID(s.queue)).Delete(context.Background())
	})
	s.t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
		logFile.Close()
		if s.t.Failed() {
			b, _ := os.ReadFile(logPath)
			s.t.Logf("%s log:\n%s", name, b)
		}
	})
	return cmd
}

// A worker killed with SIGKILL in the middle of provisioning: a new worker finishes the run,
// and nothing is duplicated. To catch the worker mid-step, the test holds a lock on the row
// ProvisionPostgres is about to insert, so that activity blocks, started, on the first worker.
func TestWorkerKilledMidProvisioning(t *testing.T) {
	t.Parallel()
	s := newStack(t, false)
	bin := buildWorker(t)
	ctx := context.Background()
	id := testenv.TenantID("kill")

	code, body := s.do(http.MethodPost, api.TenantsPath, onboardBody(id, "standard"))
	require.Equal(t, http.StatusCreated, code, body)

	// Hold the (tenant, 'locale') key in an open transaction: the activity's INSERT … ON
	// CONFLICT DO NOTHING waits for it.
	blocker, err := s.owner.Begin(ctx)
	require.NoError(t, err)
	defer blocker.Rollback(ctx) //nolint:errcheck
	_, err = blocker.Exec(ctx, `SELECT set_config('app.tenant_id', $1, true)`, id)
	require.NoError(t, err)
	_, err = blocker.Exec(ctx, `INSERT INTO tenant_settings (tenant_id, key, value) VALUES ($1, 'locale', '"held"')`, id)
	require.NoError(t, err)

	first := s.startWorkerProcess(bin, "worker-1")
	code, run := s.do(http.MethodPost, api.TenantsPath+"/onboard", onboardBody(id, "standard"))
	require.Equal(t, http.StatusAccepted, code, run)

	// Wait until ProvisionPostgres is running on the first worker.
	s.waitActivityStarted(workflows.ProvisionWorkflowID(id), "ProvisionPostgres")

	require.NoError(t, first.Process.Signal(syscall.SIGKILL))
	_, _ = first.Process.Wait()
	require.NoError(t, blocker.Rollback(ctx))

	s.startWorkerProcess(bin, "worker-2")
	require.NoError(t, s.wait(run), "the run completes on the new worker")
	require.Equal(t, tenant.StatusActive, s.status(id))

	st := s.state(id)
	requireProvisioned(t, id, st)
	// One event per step, none twice: mark-onboarding, PlaceTenant, EnsureKeys, the three provisioning steps,
	// the onboarding event and mark-active.
	require.Equal(t, map[string]int64{"conversations": 0, "messages": 0, "audit_events": 8}, st.Mongo, "one event per step, nothing else")
	require.Len(t, st.RedisKeys, 1, "only the context record")

	var locale string
	require.NoError(t, pgx.BeginFunc(ctx, s.owner, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT set_config('app.tenant_id', $1, true)`, id); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT value #>> '{}' FROM tenant_settings WHERE key = 'locale'`).Scan(&locale)
	}))
	require.Equal(t, "en", locale, "the default, written once by the retried activity")

	n, err := s.platform().CountDocuments(ctx, bson.D{{Key: "tenantId", Value: id}, {Key: "outcome", Value: bson.D{{Key: "$ne", Value: audit.OutcomeSuccess}}}})
	require.NoError(t, err)
	require.Zero(t, n, "no failure recorded")

	// Every request and every step left exactly one event, though the first worker died in the
	// middle of a step and another ran it again: the platform chain has the requests, the
	// tenant's own chain every step (its chain is open from registration on).
	actions := func(coll *mongo.Collection) []string {
		cur, err := coll.Find(ctx, bson.D{{Key: "tenantId", Value: id}})
		require.NoError(t, err)
		var events []audit.Event
		require.NoError(t, cur.All(ctx, &events))
		var out []string
		for _, e := range events {
			out = append(out, e.Action)
		}
		slices.Sort(out)
		return out
	}
	require.Equal(t, []string{"tenant.onboard.request", "tenant.register"}, actions(s.platform()))
	require.Equal(t, []string{"tenant.onboard",
		"workflow.step.EnsureKeys", "workflow.step.PlaceTenant", "workflow.step.ProvisionMongo", "workflow.step.ProvisionPostgres", "workflow.step.ProvisionRedis",
		"workflow.step.TransitionStatus", "workflow.step.TransitionStatus"}, actions(s.mongo.Database("tenant_"+id).Collection(audit.Collection)))
	for _, c := range []*audit.Chain{s.audit().PlatformChain(), s.tenantChain(id)} {
		rep, err := c.Verify(ctx)
		require.NoError(t, err)
		require.True(t, rep.OK, "%s: %+v", c.Name(), rep.FirstBroken)
	}
}

// waitActivityStarted waits until the run of workflowID has activity running on a worker.
func (s *stack) waitActivityStarted(workflowID, activity string) {
	s.t.Helper()
	require.Eventually(s.t, func() bool {
		desc, err := s.temporal.DescribeWorkflow(context.Background(), workflowID, "")
		if err != nil {
			return false
		}
		for _, pa := range desc.RawResponse.GetPendingActivities() {
			if pa.GetActivityType().GetName() == activity && pa.GetState() == enumspb.PENDING_ACTIVITY_STATE_STARTED {
				return true
			}
		}
		return false
	}, time.Minute, 50*time.Millisecond, "%s never started", activity)
}
