package workflows

import (
	"errors"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/workflow"
)

// Counters of lifecycle operations, recorded through the SDK's workflow metrics handler
// (workflow.GetMetricsHandler), which the worker exports on its /metrics page. That handler
// records nothing while a workflow replays, so a run counts once however often a worker
// replays it, and recording is no command: histories, and so replays, do not change. The
// series carry workflow_type (the operation), and in the worker task_queue and namespace.
// Exported with the suffix _total (Prometheus counters).
const (
	OperationsStartedMetric   = "tenancy_lifecycle_operations_started"
	OperationsCompletedMetric = "tenancy_lifecycle_operations_completed"
	OperationsFailedMetric    = "tenancy_lifecycle_operations_failed"
	// OperationsParkedMetric counts each time a step ran out of retries and parked the run in
	// awaiting_operator.
	OperationsParkedMetric = "tenancy_lifecycle_operations_parked"
)

// NewMetricsInterceptor returns the worker interceptor that counts every workflow run started,
// completed and failed (an error, a cancellation or an operator's abort), by workflow type; a
// run that continues as new is neither, and its continuation is not counted as started again.
// Register it on every worker: worker.Options{Interceptors: …}. An interceptor rather than a
// call in each workflow: it covers every workflow, present and future, without adding code to
// any.
func NewMetricsInterceptor() interceptor.WorkerInterceptor { return &metricsInterceptor{} }

type metricsInterceptor struct {
	interceptor.WorkerInterceptorBase
}

func (*metricsInterceptor) InterceptWorkflow(_ workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	i := &metricsInbound{}
	i.Next = next
	return i
}

type metricsInbound struct {
	interceptor.WorkflowInboundInterceptorBase
}

func (i *metricsInbound) ExecuteWorkflow(ctx workflow.Context, in *interceptor.ExecuteWorkflowInput) (any, error) {
	h := operationMetrics(ctx)
	// A run continued as new is the same operation going on: counted when it first started.
	if workflow.GetInfo(ctx).ContinuedExecutionRunID == "" {
		h.Counter(OperationsStartedMetric).Inc(1)
	}
	res, err := i.Next.ExecuteWorkflow(ctx, in)
	var continued *workflow.ContinueAsNewError
	switch {
	case errors.As(err, &continued):
	case err != nil:
		h.Counter(OperationsFailedMetric).Inc(1)
	default:
		h.Counter(OperationsCompletedMetric).Inc(1)
	}
	return res, err
}

// countParked records that a step of this run parked for an operator.
func countParked(ctx workflow.Context) {
	operationMetrics(ctx).Counter(OperationsParkedMetric).Inc(1)
}

// operationMetrics is the run's metrics handler tagged with its workflow type. The worker's
// handler has that tag already; set here too so the counters never depend on it (the test
// environment's handler has none).
func operationMetrics(ctx workflow.Context) client.MetricsHandler {
	return workflow.GetMetricsHandler(ctx).WithTags(map[string]string{"workflow_type": workflow.GetInfo(ctx).WorkflowType.Name})
}
