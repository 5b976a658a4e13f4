package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"go.temporal.io/sdk/client"

	"github.com/misybot/tenancy/internal/domain/decision"
	"github.com/misybot/tenancy/workflows"
)

// Decider is who decides, as the caller authenticated them: an operator's name and role from
// the API, or the CLI's user with decision.RoleCLI.
type Decider struct {
	Name string
	Role string
}

// ErrNoDecisions: the service was built without a decision store, so it cannot send a
// decision a run would act on.
var ErrNoDecisions = errors.New("decisions need the database: this process has no decision store")

// ErrNotWaiting: the run does not wait for this signal now.
type ErrNotWaiting struct {
	WorkflowID string
	Signal     string
	// Accepts is what the run accepts now (its progress's signals).
	Accepts []string
}

func (e *ErrNotWaiting) Error() string {
	if len(e.Accepts) == 0 {
		return fmt.Sprintf("%s waits for no signal now", e.WorkflowID)
	}
	return fmt.Sprintf("%s does not wait for %s now (it accepts %v)", e.WorkflowID, e.Signal, e.Accepts)
}

// decisionSignals are the signals a run acts on only through a recorded decision.
var decisionSignals = []string{workflows.ApproveSignal, workflows.AbortSignal, workflows.RetrySignal, workflows.CancelOffboardSignal}

// sendDecision records by's decision of kind for the run (runID "" : any run of workflowID)
// and signals the run with its id only: the run reads the decision back before it acts
// (activities.ClaimDecision), so the signal alone proves nothing and grants nothing. arg
// builds the signal's value from the id (nil: the id itself).
func sendDecision(ctx context.Context, c client.Client, store *decision.Store, workflowID, runID, kind, subject string, by Decider, arg func(id string) any) (decision.Decision, error) {
	if store == nil {
		return decision.Decision{}, ErrNoDecisions
	}
	d, err := store.Record(ctx, decision.Decision{WorkflowID: workflowID, RunID: runID, Kind: kind, By: by.Name, Role: by.Role, Subject: subject})
	if err != nil {
		return decision.Decision{}, fmt.Errorf("lifecycle: %w", err)
	}
	var v any = d.ID
	if arg != nil {
		v = arg(d.ID)
	}
	if err := c.SignalWorkflow(ctx, workflowID, runID, kind, v); err != nil {
		return d, fmt.Errorf("lifecycle: signal %s to %s: %w", kind, workflowID, err)
	}
	return d, nil
}

// Signal sends an operator's decision (retry, abort or cancel-offboard) to the tenant's run
// waiting for it: a pending profile change, else the lifecycle run. The decision is recorded
// first and the run acts only on it; a run not waiting for the signal is refused
// (ErrNotWaiting) before anything is recorded.
func (s *Service) Signal(ctx context.Context, tenantID, signal string, by Decider) (Run, error) {
	var waiting *ErrNotWaiting
	for _, id := range []string{workflows.ProfileWorkflowID(tenantID), workflows.WorkflowID(tenantID)} {
		run, p, err := s.waitingRun(ctx, id)
		if err != nil {
			return Run{}, err
		}
		if run == nil {
			continue
		}
		if !slices.Contains(p.Signals, signal) {
			if waiting == nil || len(p.Signals) > 0 {
				waiting = &ErrNotWaiting{WorkflowID: id, Signal: signal, Accepts: p.Signals}
			}
			continue
		}
		if _, err := sendDecision(ctx, s.temporal, s.opts.Decisions, run.WorkflowID, run.RunID, signal, "", by, nil); err != nil {
			return Run{}, err
		}
		return *run, nil
	}
	if waiting != nil {
		return Run{}, waiting
	}
	return Run{}, ErrNoOperation
}

// SignalWorkflow sends an operator's decision to the run of any workflow id whose progress
// offers the signal (the master key rotation's, a lifecycle run's): what `starter decide` does.
func (s *Service) SignalWorkflow(ctx context.Context, workflowID, signal string, by Decider) (Run, error) {
	if !slices.Contains(decisionSignals, signal) {
		return Run{}, fmt.Errorf("lifecycle: %q is not a decision (one of %v)", signal, decisionSignals)
	}
	run, p, err := s.waitingRun(ctx, workflowID)
	if err != nil {
		return Run{}, err
	}
	if run == nil {
		return Run{}, ErrNoOperation
	}
	if !slices.Contains(p.Signals, signal) {
		return Run{}, &ErrNotWaiting{WorkflowID: workflowID, Signal: signal, Accepts: p.Signals}
	}
	if _, err := sendDecision(ctx, s.temporal, s.opts.Decisions, run.WorkflowID, run.RunID, signal, "", by, nil); err != nil {
		return Run{}, err
	}
	return *run, nil
}

// waitingRun returns the running run of id and its progress, or a nil run when none runs.
func (s *Service) waitingRun(ctx context.Context, id string) (*Run, workflows.Progress, error) {
	var p workflows.Progress
	run, err := s.running(ctx, id, "")
	if err != nil || run == nil {
		return nil, p, err
	}
	resp, err := s.temporal.QueryWorkflow(ctx, run.WorkflowID, run.RunID, workflows.ProgressQuery)
	if err != nil {
		return nil, p, fmt.Errorf("lifecycle: query %s: %w", run.WorkflowID, err)
	}
	if err := resp.Get(&p); err != nil {
		return nil, p, fmt.Errorf("lifecycle: query %s: %w", run.WorkflowID, err)
	}
	return run, p, nil
}
