package workflows

import (
	"cmp"
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/misybot/tenancy/activities"
	"github.com/misybot/tenancy/internal/model/tenant"
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
	// LastRefusal is the latest signal the run refused (one naming no recorded decision, or a
	// decision it may not act on), and Refusals how many it refused.
	LastRefusal string `json:"lastRefusal,omitempty"`
	Refusals    int    `json:"refusals,omitempty"`
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
	// passing is a status the run passes through, not upserted yet (see passStatus).
	passing tenant.Status
	// decisions numbers the run's claims and refusals of recorded decisions.
	decisions claims
}

// newRun starts a run of operation on tenantID. Its context, which every step receives, carries
// the step options once (attempts and timeout from the workflow's input, 0 for the defaults).
func newRun(ctx workflow.Context, operation, tenantID string, attempts int32, timeout time.Duration) (*run, error) {
	r := &run{
		ctx:      stepOptions(ctx, attempts, timeout),
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

// awaitOperator blocks a parked step until the go-ahead signal (true) or abort (false), and
// audits the decision.
func (r *run) awaitOperator(state, goSignal string, goCh workflow.ReceiveChannel) bool {
	operator, proceed := r.awaitDecision(state, goSignal, goCh, nil, decisionRule{
		step: r.parkedStep(), stepHasError: true, goRoles: retryRoles, abortRoles: decideRoles,
	})
	workflow.GetLogger(r.ctx).Info("operator decided", "tenant_id", r.progress.TenantID, "proceed", proceed, "operator", operator)
	r.auditDecision(proceed, operator)
	return proceed
}

// parkedStep is the index of the step waiting in awaiting_operator, or -1.
func (r *run) parkedStep() int {
	for i := len(r.progress.Steps) - 1; i >= 0; i-- {
		if r.progress.Steps[i].Status == StepAwaitingOperator {
			return i
		}
	}
	return -1
}

// decisionRule is what a wait accepts once decisions are verified (operatorDecisionsChange):
// the roles of a go-ahead and of an abort, and who may not give the go-ahead (the requester of
// an approval). step is the waiting step, whose LastError shows a refusal unless it holds an
// error of its own (stepHasError: a parked step's cause).
type decisionRule struct {
	step         int
	stepHasError bool
	goRoles      []string
	abortRoles   []string
	goNotBy      string
}

// awaitDecision puts the run in state, offering goSignal and abort, and blocks until one
// arrives or the workflow is cancelled. It reports who decided and whether to proceed. A
// cancellation counts as an abort: the caller's compensations then run in a disconnected
// context.
//
// Runs that verify decisions (operatorDecisionsChange) act only on a signal whose value is a
// recorded decision they can claim under rule; any other is refused (progress, audit) and the
// wait goes on. Older runs take the signal's value as the decider's name, and accept, when not
// nil, may refuse a go-ahead (it is ignored and the wait goes on).
func (r *run) awaitDecision(state, goSignal string, goCh workflow.ReceiveChannel, accept func(who string) bool, rule decisionRule) (who string, proceed bool) {
	r.flushStatus()
	verified := decisionsVerified(r.ctx)
	r.progress.State, r.progress.Signals = state, []string{goSignal, AbortSignal}
	defer func() { r.progress.State, r.progress.Signals = StateRunning, nil }()
	for {
		var value, kind string
		sel := workflow.NewSelector(r.ctx)
		sel.AddReceive(goCh, func(c workflow.ReceiveChannel, _ bool) { c.Receive(r.ctx, &value); kind = goSignal })
		sel.AddReceive(r.abort, func(c workflow.ReceiveChannel, _ bool) { c.Receive(r.ctx, &value); kind = AbortSignal })
		sel.AddReceive(r.ctx.Done(), func(workflow.ReceiveChannel, bool) { kind = "" })
		sel.Select(r.ctx)
		switch {
		case kind == "":
			return "workflow cancellation", false
		case verified:
			roles, notBy := rule.abortRoles, ""
			if kind == goSignal {
				roles, notBy = rule.goRoles, rule.goNotBy
			}
			d, refused := r.decisions.claim(r.ctx, kind, value, roles, notBy)
			if refused != "" {
				if r.ctx.Err() != nil {
					return "workflow cancellation", false
				}
				r.refuse(kind, refused, rule.step, rule.stepHasError)
				continue
			}
			return d.By, kind == goSignal
		case kind == goSignal && accept != nil && !accept(value):
			continue
		}
		return value, kind == goSignal
	}
}

// event is an audit event of this run about its tenant, for the RecordAudit activity. Its id
// (workflow id, run id, step) and time come from history, so a replay or a retry asks for the
// identical event. Callers add Details, or set another Resource.
func (r *run) event(step, action string, actor activities.AuditActor, outcome, reason string) activities.AuditEvent {
	info := workflow.GetInfo(r.ctx)
	return activities.AuditEvent{
		ID:       activities.WorkflowEventID(info.WorkflowExecution.ID, info.WorkflowExecution.RunID, step),
		TenantID: r.progress.TenantID, Actor: actor, Action: action, Resource: "tenant/" + r.progress.TenantID,
		Outcome: outcome, Reason: reason, WorkflowID: info.WorkflowExecution.ID, RunID: info.WorkflowExecution.RunID,
		At: workflow.Now(r.ctx),
	}
}

// record runs the RecordAudit activity and waits for it.
func record(ctx workflow.Context, in activities.AuditInput) error {
	return workflow.ExecuteActivity(ctx, a.RecordAudit, in).Get(ctx, nil)
}

// operator is the audit actor of an operator's request; "operator" when nobody was named.
func operator(id string) activities.AuditActor {
	return activities.AuditActor{Type: activities.ActorOperator, ID: cmp.Or(id, "operator")}
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
