package e2e

import (
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/api"
	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/testkit/testenv"
	"github.com/misybot/tenancy/workflows"
)

// freeAddr returns a loopback address with a port nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// scrape reads a Prometheus text page into its metric families by name.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	res, err := http.Get(url)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(res.Body)
	require.NoError(t, err)
	return families
}

// sample returns the series of family name whose labels include every pair of want, or nil.
func sample(families map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	f := families[name]
	if f == nil {
		return nil
	}
next:
	for _, m := range f.GetMetric() {
		for k, v := range want {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		return m
	}
	return nil
}

// The worker binary, wired as in production, exports on WORKER_METRICS_ADDR the Temporal SDK's
// metrics, the lifecycle operation counters and the audit shipper's state; an onboarding
// moves the counters of its two workflows.
func TestWorkerExportsMetrics(t *testing.T) {
	t.Parallel()
	s := newStack(t, false)
	bin := buildWorker(t)
	addr := freeAddr(t)
	s.startWorkerProcess(bin, "worker-metrics", "WORKER_METRICS_ADDR="+addr)
	url := "http://" + addr + "/metrics"
	require.Eventually(t, func() bool {
		res, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	}, time.Minute, 50*time.Millisecond, "the worker's operators' listener never answered")

	queue := map[string]string{"task_queue": s.queue}
	onboard := map[string]string{"task_queue": s.queue, "workflow_type": workflows.OnboardWorkflow}
	provision := map[string]string{"task_queue": s.queue, "workflow_type": workflows.ProvisionWorkflow}
	before := scrape(t, url)
	require.Nil(t, sample(before, workflows.OperationsStartedMetric+"_total", onboard), "nothing started yet on this queue")

	id := testenv.TenantID("metrics")
	code, body := s.do(http.MethodPost, api.TenantsPath, onboardBody(id, "standard"))
	require.Equal(t, http.StatusCreated, code, body)
	code, run := s.do(http.MethodPost, api.TenantsPath+"/onboard", onboardBody(id, "standard"))
	require.Equal(t, http.StatusAccepted, code, run)
	require.NoError(t, s.wait(run))
	require.Equal(t, tenant.StatusActive, s.status(id))

	// The SDK counts a completed workflow after the server has taken the completion, so a
	// client waiting for the run can see it end first: scrape until the count is there.
	var after map[string]*dto.MetricFamily
	require.Eventually(t, func() bool {
		after = scrape(t, url)
		return sample(after, "temporal_workflow_completed_total", onboard) != nil
	}, 30*time.Second, 50*time.Millisecond, "the SDK's completion count of the onboarding")
	value := func(name string, labels map[string]string) float64 {
		m := sample(after, name, labels)
		require.NotNil(t, m, "series %s%v is exported", name, labels)
		if m.GetCounter() != nil {
			return m.GetCounter().GetValue()
		}
		if m.GetHistogram() != nil {
			return float64(m.GetHistogram().GetSampleCount())
		}
		return m.GetGauge().GetValue()
	}
	// Our own: one onboarding and its provisioning child, started and completed, none failed.
	for _, labels := range []map[string]string{onboard, provision} {
		require.Equal(t, 1.0, value(workflows.OperationsStartedMetric+"_total", labels))
		require.Equal(t, 1.0, value(workflows.OperationsCompletedMetric+"_total", labels))
		require.Nil(t, sample(after, workflows.OperationsFailedMetric+"_total", labels))
	}
	// The SDK's: task latencies, completions, the sticky cache, requests to the frontend.
	require.Positive(t, value("temporal_workflow_task_schedule_to_start_latency_seconds", queue))
	require.Positive(t, value("temporal_workflow_task_execution_latency_seconds", onboard))
	require.Positive(t, value("temporal_activity_execution_latency_seconds", map[string]string{"task_queue": s.queue, "activity_type": "ProvisionPostgres"}))
	require.Positive(t, value("temporal_workflow_completed_total", onboard))
	require.Positive(t, value("temporal_request_total", map[string]string{"operation": "RespondWorkflowTaskCompleted"}))
	value("temporal_sticky_cache_size", nil)
	// The audit shipper's: rounds have run and the backlog is readable.
	require.Equal(t, 1.0, value("tenancy_audit_outbox_read_ok", nil))
	value("tenancy_audit_outbox_waiting_events", nil)
	value("tenancy_audit_outbox_oldest_age_seconds", nil)
	value("tenancy_audit_shipped_events_total", nil)
	// A round gathers a burst for a second before it ships: wait for the first one to end.
	var last float64
	require.Eventually(t, func() bool {
		m := sample(scrape(t, url), "tenancy_audit_ship_last_success_timestamp_seconds", nil)
		last = m.GetGauge().GetValue()
		return last > 0
	}, time.Minute, 200*time.Millisecond, "a shipping round has succeeded")
	require.LessOrEqual(t, last, float64(time.Now().Unix()+1), "a Unix time, got "+strconv.FormatFloat(last, 'f', 0, 64))
}
