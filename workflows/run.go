package workflows

import (
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// Step states in Progress.
const (
	StepPending          = "pending"
	StepRunning          = "running"
	StepCompleted        = "completed"
	StepFailed           = "failed"
	StepAwaitingOperator = "awaiting_operator"
	StepAwaitingApproval = "awaiting_approval"
	StepCompensated      = "compensated"
	StepSkipped          = "skipped"
)

// Workflow states in Progress.
const (
	StateRunning          = "running"
	StateAwaitingOperator = "awaiting_operator"
	StateAwaitingApproval = "awaiting_approval"
	StateCompensating     = "compensating"
	StateCompleted        = "completed"
	StateFailed           = "failed"
	StateCancelled        = "cancelled"
)

// ErrTypeAborted marks a workflow an operator aborted.
const ErrTypeAborted = "AbortedByOperator"

// Step is one unit of a lifecycle workflow, as reported by ProgressQuery.
type Step struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	// Attempts counts how many times the workflow ran the step (1, plus one per operator
	// retry); each run is itself retried by Temporal up to the step's budget.
	Attempts  int       `json:"attempts"`
	StartedAt time.Time `json:"startedAt,omitzero"`
	EndedAt   time.Time `json:"endedAt,omitzero"`
	LastError string    `json:"lastError,omitempty"`
}

// Progress is the answer to ProgressQuery.
type Progress struct {
	Operation string `json:"operation"`
	TenantID  string `json:"tenantId"`
	State     string `json:"state"`
	Steps     []Step `json:"steps"`
	// Signals lists what an operator may send now.
	Signals []string `json:"signals,omitempty"`
	// RequestedBy is who asked for the operation: an approval must come from someone else.
	RequestedBy string `json:"requestedBy,omitempty"`
}

// compensation undoes one completed (or partly completed) step.
type compensation struct {
	name string
	fn   func(workflow.Context) error
}

// run drives a workflow's steps: progress for the query, operator signals, and the saga's
// compensations.
type run struct {
	ctx      workflow.Context
	progress Progress
	comps    []compensation
	retry    workflow.ReceiveChannel
	abort    workflow.ReceiveChannel
}

func newRun(ctx workflow.Context, operation, tenantID string) (*run, error) {
	r := &run{
		ctx:      ctx,
		progress: Progress{Operation: operation, TenantID: tenantID, State: StateRunning},
		retry:    workflow.GetSignalChannel(ctx, RetrySignal),
		abort:    workflow.GetSignalChannel(ctx, AbortSignal),
	}
	err := workflow.SetQueryHandler(ctx, ProgressQuery, func() (Progress, error) {
		p := r.progress
		p.Steps = append([]Step(nil), r.progress.Steps...)
		return p, nil
	})
	return r, err
}

func (r *run) add(name string) int {
	r.progress.Steps = append(r.progress.Steps, Step{Name: name, Status: StepPending})
	return len(r.progress.Steps) - 1
}

// Permanent reports whether err must not be retried: a non-retryable application error
// anywhere in its chain (from an activity or a child workflow), or a cancellation.
func Permanent(err error) bool {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.NonRetryable() {
		return true
	}
	var canceled *temporal.CanceledError
	return errors.As(err, &canceled)
}

// step runs fn as a named step. A permanent error fails the step at once. Any other error means
// the step's retry budget is spent: the step parks in awaiting_operator until an operator
// sends retry (run it again) or abort (fail it as permanent, so compensations run).
func (r *run) step(name string, fn func(workflow.Context) error) error {
	i := r.add(name)
	for {
		s := &r.progress.Steps[i]
		s.Attempts++
		s.Status, s.StartedAt, s.EndedAt = StepRunning, workflow.Now(r.ctx), time.Time{}
		err := fn(r.ctx)
		s = &r.progress.Steps[i]
		s.EndedAt = workflow.Now(r.ctx)
		if err == nil {
			s.Status, s.LastError = StepCompleted, ""
			return nil
		}
		s.LastError = err.Error()
		if Permanent(err) {
			s.Status = StepFailed
			return err
		}
		s.Status = StepAwaitingOperator
		countParked(r.ctx)
		workflow.GetLogger(r.ctx).Warn("step out of retries; waiting for an operator",
			"step", name, "tenant_id", r.progress.TenantID, "err", err)
		if r.awaitOperator(StateAwaitingOperator, RetrySignal, r.retry) {
			continue
		}
		r.progress.Steps[i].Status = StepFailed
		return temporal.NewNonRetryableApplicationError("step "+name+" aborted by operator", ErrTypeAborted, err)
	}
}

// awaitOperator blocks until the go-ahead signal (true) or abort (false).
func (r *run) awaitOperator(state, goSignal string, goCh workflow.ReceiveChannel) bool {
	r.progress.State, r.progress.Signals = state, []string{goSignal, AbortSignal}
	defer func() { r.progress.State, r.progress.Signals = StateRunning, nil }()
	var operator string
	proceed := false
	sel := workflow.NewSelector(r.ctx)
	sel.AddReceive(goCh, func(c workflow.ReceiveChannel, _ bool) { c.Receive(r.ctx, &operator); proceed = true })
	sel.AddReceive(r.abort, func(c workflow.ReceiveChannel, _ bool) { c.Receive(r.ctx, &operator) })
	// A cancellation of the workflow counts as an abort: the caller's compensations then run in
	// a disconnected context.
	sel.AddReceive(r.ctx.Done(), func(workflow.ReceiveChannel, bool) { operator = "workflow cancellation" })
	sel.Select(r.ctx)
	workflow.GetLogger(r.ctx).Info("operator decided", "tenant_id", r.progress.TenantID, "proceed", proceed, "operator", operator)
	r.auditDecision(proceed, operator)
	return proceed
}

// compensate registers how to undo the step about to run. Registered before the step, because
// a step that fails may still have done part of its work.
func (r *run) compensate(name string, fn func(workflow.Context) error) {
	r.comps = append(r.comps, compensation{name: name, fn: fn})
}

// rollback runs the registered compensations in reverse order, in a disconnected context so a
// cancellation of the workflow cannot skip them, and joins every error.
func (r *run) rollback() error {
	r.progress.State = StateCompensating
	ctx, _ := workflow.NewDisconnectedContext(r.ctx)
	var errs []error
	for i := len(r.comps) - 1; i >= 0; i-- {
		c := r.comps[i]
		idx := r.add("compensate:" + c.name)
		s := &r.progress.Steps[idx]
		s.Attempts, s.Status, s.StartedAt = 1, StepRunning, workflow.Now(ctx)
		err := c.fn(ctx)
		s = &r.progress.Steps[idx]
		s.EndedAt = workflow.Now(ctx)
		if err != nil {
			s.Status, s.LastError = StepFailed, err.Error()
			errs = append(errs, err)
			continue
		}
		s.Status = StepCompensated
	}
	return errors.Join(errs...)
}
