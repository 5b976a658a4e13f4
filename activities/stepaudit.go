package activities

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"time"
	"unicode/utf8"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"

	"github.com/misybot/tenancy/internal/domain/audit"
	"github.com/misybot/tenancy/internal/model/tenant"
)

// StepActionPrefix starts the action of every workflow step event: "workflow.step.<activity>".
const StepActionPrefix = "workflow.step."

// unauditedSteps are activities that change nothing (reads) or are the audit themselves: their
// steps leave no event, so the trail is not drowned in lookups. ClaimDecision is audited by
// the workflow that claims: the decision it acts on, or the refusal.
var unauditedSteps = map[string]bool{
	"RecordAudit": true, "GetStatus": true, "KeyVersions": true, "ListRetentionTargets": true, "ClaimDecision": true,
}

// AuditDetailer is implemented by activity results that add details (counts, never data) to
// their step's audit event.
type AuditDetailer interface {
	AuditDetails() map[string]string
}

// NewAuditInterceptor returns the worker interceptor that writes one audit event per workflow
// step: every activity a workflow runs (except unauditedSteps), when it succeeds, or when it
// fails for good (a non-retryable error). Register it on every worker that runs these
// activities: worker.Options{Interceptors: []interceptor.WorkerInterceptor{NewAuditInterceptor(a)}}.
// A function, not a method: every exported method of Activities is registered as an activity.
//
// Why an interceptor rather than an audit activity after each step: it covers every workflow,
// present and future, without touching workflow code (so no history changes and no versioning),
// and the event is written inside the same activity attempt as the step's work.
//
// An activity that commits its step's event in its own transaction (a status transition, the
// data key, the default rows: recordStepTx, withStepEvent) says so with stepCommitted, and the
// interceptor does not send it again.
//
// Exactly once: the event id is the workflow id, run id and activity id, which Temporal keeps
// across retries of the same step, so a retry (after a worker was killed, or a completion was
// lost) finds the event written by the attempt before it. An attempt that fails with a
// retryable error writes nothing: the next attempt will. If the event cannot be written the
// attempt fails (retryably) even though its work is done: every activity is idempotent, so the
// retry repeats nothing and writes the event. Limit: a step whose last attempt fails with a
// retryable error (its budget spent) writes no event; the workflow parks it and the operator's
// retry or abort signal is audited instead.
//
// Only this package's activities are steps: another activity registered on the same worker (the
// bench's no-op floor) is not audited.
func NewAuditInterceptor(a *Activities) interceptor.WorkerInterceptor {
	audited := map[string]bool{}
	t := reflect.TypeOf(a)
	for i := range t.NumMethod() {
		if name := t.Method(i).Name; !unauditedSteps[name] {
			audited[name] = true
		}
	}
	return &stepAuditor{a: a, audited: audited}
}

type stepAuditor struct {
	interceptor.WorkerInterceptorBase
	a       *Activities
	audited map[string]bool // activity type names whose steps leave an event
}

func (s *stepAuditor) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	i := &stepAuditInbound{a: s.a, audited: s.audited}
	i.Next = next
	return i
}

type stepAuditInbound struct {
	interceptor.ActivityInboundInterceptorBase
	a       *Activities
	audited map[string]bool
}

func (i *stepAuditInbound) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	rec := &stepRecord{}
	res, err := i.Next.ExecuteActivity(context.WithValue(ctx, stepRecordKey{}, rec), in)
	info := activity.GetInfo(ctx)
	if !i.audited[info.ActivityType.Name] || info.WorkflowExecution.ID == "" {
		return res, err
	}
	if err == nil && rec.committed {
		return res, nil // the step committed its event with its change (stepCommitted)
	}
	if err != nil && !finalError(err) {
		return res, err
	}
	var details map[string]string
	if d, ok := res.(AuditDetailer); ok && err == nil {
		details = d.AuditDetails()
	}
	// Not the activity's context: a cancelled step is still recorded.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if _, aerr := i.a.recordRouted(wctx, StepEvent(info, tenantOf(in.Args), err, details)); aerr != nil {
		activity.GetLogger(ctx).Error("audit of workflow step failed", "activity", info.ActivityType.Name, "err", aerr)
		if err != nil {
			return res, err // the step's own failure is what the workflow must see
		}
		return nil, fmt.Errorf("audit of step %s: %w", info.ActivityType.Name, aerr)
	}
	return res, err
}

// stepRecord is told by the running activity that its step's event committed with its change,
// so the interceptor does not write it again (a second enqueue would find the event and
// insert nothing, one round trip wasted per step).
type stepRecord struct{ committed bool }

type stepRecordKey struct{}

// stepCommitted tells the step audit that the running step's event (recordStepTx) is committed:
// call it only after the transaction that wrote it committed.
func stepCommitted(ctx context.Context) {
	if rec, ok := ctx.Value(stepRecordKey{}).(*stepRecord); ok {
		rec.committed = true
	}
}

// finalError reports whether Temporal will not retry err: a non-retryable application error,
// or a cancellation.
func finalError(err error) bool {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.NonRetryable() {
		return true
	}
	return errors.Is(err, context.Canceled)
}

// StepEvent builds the audit event of one workflow step; stepErr is the step's final error
// (nil on success).
func StepEvent(info activity.Info, tenantID string, stepErr error, details map[string]string) audit.Event {
	wfType := ""
	if info.WorkflowType != nil {
		wfType = info.WorkflowType.Name
	}
	d := map[string]string{"activity": info.ActivityType.Name, "attempt": strconv.Itoa(int(info.Attempt)), "workflowType": wfType}
	for k, v := range details {
		d[k] = v
	}
	e := audit.Event{
		ID:         audit.WorkflowEventID(info.WorkflowExecution.ID, info.WorkflowExecution.RunID, "activity/"+info.ActivityID),
		TenantID:   tenantID,
		Actor:      audit.Actor{Type: audit.ActorSystem, ID: wfType},
		Action:     StepActionPrefix + info.ActivityType.Name,
		Resource:   "platform",
		Outcome:    audit.OutcomeSuccess,
		WorkflowID: info.WorkflowExecution.ID,
		RunID:      info.WorkflowExecution.RunID,
		Details:    d,
		At:         time.Now().UTC(),
	}
	if tenantID != "" {
		e.Resource = "tenant/" + tenantID
	}
	if stepErr != nil {
		e.Outcome, e.Reason = audit.OutcomeFailure, truncate(stepErr.Error(), 500)
		// The stable type, for readers who must not see the raw text (tenants: api/audit.go).
		var appErr *temporal.ApplicationError
		if errors.As(stepErr, &appErr) && appErr.Type() != "" {
			d["errorType"] = appErr.Type()
		} else if errors.Is(stepErr, context.Canceled) {
			d["errorType"] = "Canceled"
		}
	}
	return e
}

// recordRouted writes e into its tenant's chain unless the tenant is unknown or being
// offboarded, the platform chain otherwise (audit.Writer.Record, decided in PostgreSQL).
func (a *Activities) recordRouted(ctx context.Context, e audit.Event) (bool, error) {
	return a.Audit.Record(ctx, e)
}

// tenantOf finds the tenant an activity works on: the TenantID field of its first argument
// (every activity input of this package names its tenant that way), or "" for none.
func tenantOf(args []any) string {
	if len(args) == 0 {
		return ""
	}
	v := reflect.ValueOf(args[0])
	if v.Kind() == reflect.Pointer && !v.IsNil() {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return ""
	}
	f := v.FieldByName("TenantID")
	if !f.IsValid() || f.Kind() != reflect.String || tenant.ValidateID(f.String()) != nil {
		return ""
	}
	return f.String()
}

// truncate shortens s to at most n bytes without splitting a character.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
