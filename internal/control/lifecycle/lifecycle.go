// Package lifecycle starts and inspects the tenant lifecycle workflows for the API and the
// operator CLI: it checks the tenant's status first (an illegal transition starts nothing),
// starts at most one operation per tenant, and turns a retried request into the run already
// started instead of a second one.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/misybot/tenancy/internal/domain/cells"
	"github.com/misybot/tenancy/internal/domain/decision"
	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/workflows"
)

// Operation is a lifecycle operation an operator can start.
type Operation string

const (
	Onboard  Operation = "onboard"
	Suspend  Operation = "suspend"
	Restore  Operation = "restore"
	Offboard Operation = "offboard"
	// RotateKeys adds a data key version and re-encrypts the tenant's data under it.
	RotateKeys Operation = "rotate-keys"
)

// spec says which workflow an operation runs and from which statuses.
type spec struct {
	workflow string
	from     []tenant.Status
}

var specs = map[Operation]spec{
	Onboard:    {workflows.OnboardWorkflow, workflows.OnboardFrom},
	Suspend:    {workflows.SuspendWorkflow, workflows.SuspendFrom},
	Restore:    {workflows.RestoreWorkflow, workflows.RestoreFrom},
	Offboard:   {workflows.OffboardWorkflow, workflows.OffboardFrom},
	RotateKeys: {workflows.RotateKeyWorkflow, []tenant.Status{tenant.StatusActive, tenant.StatusSuspended}},
}

// IllegalTransitionError: the tenant's status does not allow the operation. Nothing started.
type IllegalTransitionError struct {
	Operation Operation
	Current   tenant.Status
	Allowed   []tenant.Status
}

func (e *IllegalTransitionError) Error() string {
	return fmt.Sprintf("cannot %s a tenant that is %s (allowed from: %v)", e.Operation, e.Current, e.Allowed)
}

// BusyError: another lifecycle operation is running for the tenant. Nothing started.
type BusyError struct {
	WorkflowID string
	RunID      string
	Workflow   string
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("%s is already running for this tenant (workflow %s, run %s)", e.Workflow, e.WorkflowID, e.RunID)
}

// ErrNoOperation: no lifecycle workflow has ever run for the tenant.
var ErrNoOperation = errors.New("no lifecycle operation has run for this tenant")

// Run identifies a started (or found) workflow run.
type Run struct {
	WorkflowID string `json:"workflowId"`
	RunID      string `json:"runId"`
	Workflow   string `json:"workflow"`
	// Existing is true when the request found the same operation already running.
	Existing bool `json:"existing"`
}

// Options are the knobs of the operations, from configuration.
type Options struct {
	TaskQueue     string
	OffboardGrace time.Duration
	// StepAttempts and StepTimeout override workflows.DefaultStepAttempts and
	// DefaultStepTimeout (0 keeps them).
	StepAttempts int32
	StepTimeout  time.Duration
	// Logger receives what callers are not told (query failures).
	Logger *slog.Logger
	// KeySettleDelay overrides the wait between a new key version and re-encryption (tests).
	KeySettleDelay time.Duration
	// Decisions records the operator decisions sent to waiting runs (approve, reject, retry,
	// abort, cancel-offboard); without it those are refused with ErrNoDecisions.
	Decisions *decision.Store
	// Cells, when set, is asked before an onboarding starts whether a cell can take the tenant
	// (a *cells.NoRoomError otherwise, and nothing starts); Healthy says which cells answer.
	Cells   *cells.Registry
	Healthy cells.Healthy
}

// Service starts and inspects lifecycle workflows.
type Service struct {
	temporal client.Client
	opts     Options
	logger   *slog.Logger
}

// New returns a Service over a Temporal client.
func New(c client.Client, opts Options) *Service {
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	return &Service{temporal: c, opts: opts, logger: logger}
}

// Start checks t's status against op, then starts op's workflow for t. requestedBy names the
// operator for the audit; reason is optional.
func (s *Service) Start(ctx context.Context, op Operation, t tenant.Tenant, requestedBy, reason string) (Run, error) {
	return s.start(ctx, op, t, requestedBy, reason, workflows.Placement{})
}

// Onboard starts an onboarding that places the tenant as want asks (see cells.Registry.Place):
// refused at once with a *cells.NoRoomError when no cell can take it now.
func (s *Service) Onboard(ctx context.Context, t tenant.Tenant, requestedBy string, want workflows.Placement) (Run, error) {
	return s.start(ctx, Onboard, t, requestedBy, "", want)
}

// CheckPlacement answers whether an onboarding of the tenant (registered or not yet) would
// find a cell now: nil, or a *cells.NoRoomError. Nothing is written.
func (s *Service) CheckPlacement(ctx context.Context, tenantID string, typ tenant.Type, want workflows.Placement) error {
	if s.opts.Cells == nil {
		return nil
	}
	healthy := s.opts.Healthy
	if healthy == nil {
		healthy = func(context.Context, string) bool { return true }
	}
	return s.opts.Cells.Check(ctx, tenantID, typ, cells.Want{Cell: want.Cell, Region: want.Region}, healthy)
}

func (s *Service) start(ctx context.Context, op Operation, t tenant.Tenant, requestedBy, reason string, place workflows.Placement) (Run, error) {
	sp, ok := specs[op]
	if !ok {
		return Run{}, fmt.Errorf("lifecycle: unknown operation %q", op)
	}
	// A running operation answers first: the same one is found again (a retried request), any
	// other is refused naming it, whatever the status says. When the status allows the
	// operation, the start itself finds a running one (the tenant's workflow id is taken), so
	// only a status that refuses it costs a look-up first.
	id := workflows.WorkflowID(t.ID)
	if !slices.Contains(sp.from, t.Status) {
		if run, err := s.running(ctx, id, ""); err != nil {
			return Run{}, err
		} else if run != nil {
			return sameOrBusy(*run, sp.workflow)
		}
		return Run{}, &IllegalTransitionError{Operation: op, Current: t.Status, Allowed: sp.from}
	}
	var input any
	switch op {
	case Onboard:
		if err := s.CheckPlacement(ctx, t.ID, t.Type, place); err != nil {
			return Run{}, err
		}
		input = workflows.OnboardInput{TenantID: t.ID, NeedsApproval: t.Type.NeedsApproval(), RequestedBy: requestedBy, StepAttempts: s.opts.StepAttempts, StepTimeout: s.opts.StepTimeout, SearchAttributesVersion: workflows.SearchAttributesVersion,
			Placement: &place}
	case Suspend, Restore:
		input = workflows.StatusChangeInput{TenantID: t.ID, RequestedBy: requestedBy, Reason: reason, StepAttempts: s.opts.StepAttempts, StepTimeout: s.opts.StepTimeout, SearchAttributesVersion: workflows.SearchAttributesVersion}
	case RotateKeys:
		input = workflows.RotateKeyInput{TenantID: t.ID, RequestedBy: requestedBy, SettleDelay: s.opts.KeySettleDelay, StepAttempts: s.opts.StepAttempts, StepTimeout: s.opts.StepTimeout}
	case Offboard:
		input = workflows.OffboardInput{TenantID: t.ID, RequestedBy: requestedBy, GracePeriod: s.opts.OffboardGrace, StepAttempts: s.opts.StepAttempts, StepTimeout: s.opts.StepTimeout, SearchAttributesVersion: workflows.SearchAttributesVersion}
	}
	wr, err := s.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:        id,
		TaskQueue: s.opts.TaskQueue,
		// One operation at a time per tenant: a start while one runs fails, and we report which.
		WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		// Findable by tenant from the start: temporal workflow list --query 'TenantId="…"'.
		TypedSearchAttributes: workflows.StartSearchAttributes(t.ID, string(op), t.Type, t.Status, t.CellID),
	}, sp.workflow, input)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) { // lost a race with another request
		run, derr := s.running(ctx, id, started.RunId)
		if derr != nil {
			return Run{}, derr
		}
		if run == nil {
			run = &Run{WorkflowID: id, RunID: started.RunId}
		}
		return sameOrBusy(*run, sp.workflow)
	}
	if err != nil {
		return Run{}, fmt.Errorf("lifecycle: start %s: %w", sp.workflow, err)
	}
	return Run{WorkflowID: id, RunID: wr.GetRunID(), Workflow: sp.workflow}, nil
}

// running returns the tenant's running lifecycle run, or nil when none runs.
func (s *Service) running(ctx context.Context, id, runID string) (*Run, error) {
	desc, err := s.temporal.DescribeWorkflow(ctx, id, runID)
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("lifecycle: describe %s: %w", id, err)
	}
	info := desc.RawResponse.GetWorkflowExecutionInfo()
	if info.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		return nil, nil
	}
	return &Run{WorkflowID: id, RunID: info.GetExecution().GetRunId(), Workflow: info.GetType().GetName()}, nil
}

func sameOrBusy(run Run, wanted string) (Run, error) {
	if run.Workflow == wanted {
		run.Existing = true
		return run, nil
	}
	return Run{}, &BusyError{WorkflowID: run.WorkflowID, RunID: run.RunID, Workflow: run.Workflow}
}

// PendingActivity is an activity in flight, with Temporal's own attempt count and last failure.
type PendingActivity struct {
	ActivityType string `json:"activityType"`
	State        string `json:"state"`
	Attempt      int32  `json:"attempt"`
	LastFailure  string `json:"lastFailure,omitempty"`
	// Heartbeat is the activity's last heartbeat, its own progress (a purge's cursor and count,
	// a re-encryption's position and count).
	Heartbeat   any       `json:"heartbeat,omitempty"`
	LastStarted time.Time `json:"lastStartedAt,omitzero"`
}

// Operation is the latest lifecycle run of a tenant, with its progress.
type OperationStatus struct {
	Run
	Status            string              `json:"status"`
	StartedAt         time.Time           `json:"startedAt"`
	ClosedAt          time.Time           `json:"closedAt,omitzero"`
	Progress          *workflows.Progress `json:"progress,omitempty"`
	ProgressError     string              `json:"progressError,omitempty"`
	PendingActivities []PendingActivity   `json:"pendingActivities,omitempty"`
}

// Current describes the tenant's latest lifecycle run (running or not) and asks it for its
// progress.
func (s *Service) Current(ctx context.Context, tenantID string) (OperationStatus, error) {
	id := workflows.WorkflowID(tenantID)
	desc, err := s.temporal.DescribeWorkflow(ctx, id, "")
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return OperationStatus{}, ErrNoOperation
	}
	if err != nil {
		return OperationStatus{}, fmt.Errorf("lifecycle: describe %s: %w", id, err)
	}
	info := desc.RawResponse.GetWorkflowExecutionInfo()
	out := OperationStatus{
		Run:       Run{WorkflowID: id, RunID: info.GetExecution().GetRunId(), Workflow: info.GetType().GetName()},
		Status:    statusName(info.GetStatus()),
		StartedAt: info.GetStartTime().AsTime(),
	}
	if info.GetCloseTime() != nil {
		out.ClosedAt = info.GetCloseTime().AsTime()
	}
	for _, pa := range desc.RawResponse.GetPendingActivities() {
		p := PendingActivity{
			ActivityType: pa.GetActivityType().GetName(), State: pa.GetState().String(), Attempt: pa.GetAttempt(),
			LastFailure: pa.GetLastFailure().GetMessage(),
		}
		if hb := pa.GetHeartbeatDetails().GetPayloads(); len(hb) > 0 {
			var v any
			if converter.GetDefaultDataConverter().FromPayload(hb[0], &v) == nil {
				p.Heartbeat = v
			}
		}
		if pa.GetLastStartedTime() != nil {
			p.LastStarted = pa.GetLastStartedTime().AsTime()
		}
		out.PendingActivities = append(out.PendingActivities, p)
	}
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	val, err := s.temporal.QueryWorkflow(qctx, id, out.RunID, workflows.ProgressQuery)
	if err != nil {
		// Details stay in the server's log; the caller learns only that the query failed.
		s.logger.Warn("progress query failed", "workflow_id", id, "run_id", out.RunID, "err", err)
		out.ProgressError = "progress unavailable: no worker answered the query (is the worker running?)"
		return out, nil
	}
	var p workflows.Progress
	if err := val.Get(&p); err != nil {
		s.logger.Warn("progress unreadable", "workflow_id", id, "run_id", out.RunID, "err", err)
		out.ProgressError = "progress unreadable"
		return out, nil
	}
	out.Progress = &p
	return out, nil
}

func statusName(s enumspb.WorkflowExecutionStatus) string {
	switch s {
	case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
		return "running"
	case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		return "completed"
	case enumspb.WORKFLOW_EXECUTION_STATUS_FAILED:
		return "failed"
	case enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED:
		return "canceled"
	case enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED:
		return "terminated"
	case enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT:
		return "timed_out"
	case enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW:
		return "continued_as_new"
	}
	return "unknown"
}
