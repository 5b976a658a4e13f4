package e2e

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/misybot/tenancy/api"
	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/testkit/testenv"
	"github.com/misybot/tenancy/workflows"
)

// A worker sent SIGTERM in the middle of a step stops polling but lets the step it runs finish
// and report (WORKER_STOP_TIMEOUT), then exits 0; a second worker runs the rest of the
// onboarding. The step ran once, on the first worker, and nothing is lost or repeated. As in
// the SIGKILL test, a lock held on the row ProvisionPostgres inserts keeps that activity
// running on the first worker until the test lets it go, after the worker has begun stopping.
func TestWorkerSIGTERMFinishesItsStep(t *testing.T) {
	t.Parallel()
	s := newStack(t, false)
	bin := buildWorker(t)
	ctx := context.Background()
	id := testenv.TenantID("term")

	code, body := s.do(http.MethodPost, api.TenantsPath, onboardBody(id, "standard"))
	require.Equal(t, http.StatusCreated, code, body)

	blocker, err := s.owner.Begin(ctx)
	require.NoError(t, err)
	defer blocker.Rollback(ctx) //nolint:errcheck
	_, err = blocker.Exec(ctx, `SELECT set_config('app.tenant_id', $1, true)`, id)
	require.NoError(t, err)
	_, err = blocker.Exec(ctx, `INSERT INTO tenant_settings (tenant_id, key, value) VALUES ($1, 'locale', '"held"')`, id)
	require.NoError(t, err)

	first := s.startWorkerProcess(bin, "worker-1", "WORKER_STOP_TIMEOUT=2m")
	code, run := s.do(http.MethodPost, api.TenantsPath+"/onboard", onboardBody(id, "standard"))
	require.Equal(t, http.StatusAccepted, code, run)

	childID := workflows.ProvisionWorkflowID(id)
	s.waitActivityStarted(childID, "ProvisionPostgres")

	require.NoError(t, first.Process.Signal(syscall.SIGTERM))
	logPath := filepath.Join(s.exports, "worker-1.log")
	require.Eventually(t, func() bool {
		b, _ := os.ReadFile(logPath)
		return strings.Contains(string(b), `"worker: stopping"`)
	}, time.Minute, 20*time.Millisecond, "the worker never began to stop")
	// The worker is stopping and the step still blocked: now let it finish.
	require.NoError(t, blocker.Rollback(ctx))
	require.NoError(t, first.Wait(), "the worker exits 0 once its step is done")

	// A new worker takes the rest of the run.
	s.startWorkerProcess(bin, "worker-2")
	require.NoError(t, s.wait(run), "the run completes on the new worker")
	require.Equal(t, tenant.StatusActive, s.status(id))
	st := s.state(id)
	requireProvisioned(t, id, st)
	require.Equal(t, map[string]int64{"conversations": 0, "messages": 0, "audit_events": 8}, st.Mongo, "one event per step, none twice")

	// The step completed on the first worker, at its first attempt: nothing was cut off. (Read
	// once the run is over: the server holds back an activity's events while a workflow task
	// of the run is in flight, as one the stopping worker had taken may be.)
	hist := s.temporal.GetWorkflowHistory(ctx, childID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	scheduled := map[int64]string{}
	var started, completed, failed int
	for hist.HasNext() {
		ev, err := hist.Next()
		require.NoError(t, err)
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			scheduled[ev.GetEventId()] = ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName()
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			a := ev.GetActivityTaskStartedEventAttributes()
			if scheduled[a.GetScheduledEventId()] == "ProvisionPostgres" {
				started++
				require.EqualValues(t, 1, a.GetAttempt())
				require.True(t, strings.HasPrefix(a.GetIdentity(), strconv.Itoa(first.Process.Pid)+"@"), "ran on the first worker: %s", a.GetIdentity())
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			if scheduled[ev.GetActivityTaskCompletedEventAttributes().GetScheduledEventId()] == "ProvisionPostgres" {
				completed++
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED, enumspb.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
			failed++
		}
	}
	require.Equal(t, 1, started)
	require.Equal(t, 1, completed)
	require.Zero(t, failed, "no attempt failed or timed out")
}
