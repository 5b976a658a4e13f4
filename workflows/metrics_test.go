package workflows_test

import (
	"errors"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"

	"github.com/misybot/tenancy/internal/platform/opsmetrics"
	"github.com/misybot/tenancy/workflows"
)

// counter returns the value of the Prometheus counter name{workflow_type=typ} (0 when absent).
func counter(t *testing.T, m *opsmetrics.Worker, name, typ string) float64 {
	t.Helper()
	families, err := m.Registry().Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, s := range f.GetMetric() {
			if label(s, "workflow_type") == typ {
				return s.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// metricsEnv is lifecycleEnv with the worker's real metrics pipeline (the SDK's OpenTelemetry
// handler into a Prometheus registry) and the operation counting interceptor.
func metricsEnv(t *testing.T, fail map[string]error) (*testsuite.TestWorkflowEnvironment, *opsmetrics.Worker) {
	t.Helper()
	m, err := opsmetrics.NewWorker()
	require.NoError(t, err)
	var s testsuite.WorkflowTestSuite
	s.SetMetricsHandler(m.TemporalHandler())
	env, _ := lifecycleEnvOf(t, &s, fail)
	env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{workflows.NewMetricsInterceptor()}})
	return env, m
}

// A run that parks, is retried by an operator and completes counts as started, parked once and
// completed, never as failed.
func TestMetricsCountAParkedRunThatCompletes(t *testing.T) {
	t.Parallel()
	env, m := metricsEnv(t, map[string]error{"EnsureKeys": failFirst{n: 2, err: errors.New("db down")}})
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(workflows.RetrySignal, decided("alice")) }, time.Hour)
	env.ExecuteWorkflow(workflows.OnboardTenant, workflows.OnboardInput{TenantID: "acme", StepAttempts: 2})
	require.NoError(t, env.GetWorkflowError())

	require.Equal(t, 1.0, counter(t, m, workflows.OperationsStartedMetric+"_total", workflows.OnboardWorkflow))
	require.Equal(t, 1.0, counter(t, m, workflows.OperationsParkedMetric+"_total", workflows.OnboardWorkflow))
	require.Equal(t, 1.0, counter(t, m, workflows.OperationsCompletedMetric+"_total", workflows.OnboardWorkflow))
	require.Zero(t, counter(t, m, workflows.OperationsFailedMetric+"_total", workflows.OnboardWorkflow))
}

// A run an operator aborts counts as failed, not completed.
func TestMetricsCountAnAbortedRunAsFailed(t *testing.T) {
	t.Parallel()
	env, m := metricsEnv(t, map[string]error{"ProvisionRedis": errors.New("redis down")})
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(workflows.AbortSignal, decided("alice")) }, time.Hour)
	env.ExecuteWorkflow(workflows.OnboardTenant, workflows.OnboardInput{TenantID: "acme", StepAttempts: 2})
	require.Error(t, env.GetWorkflowError())

	require.Equal(t, 1.0, counter(t, m, workflows.OperationsStartedMetric+"_total", workflows.OnboardWorkflow))
	require.Equal(t, 1.0, counter(t, m, workflows.OperationsFailedMetric+"_total", workflows.OnboardWorkflow))
	require.Zero(t, counter(t, m, workflows.OperationsCompletedMetric+"_total", workflows.OnboardWorkflow))
}
