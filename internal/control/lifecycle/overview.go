package lifecycle

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"
	"golang.org/x/sync/errgroup"

	"github.com/misybot/tenancy/workflows"
)

// OperationTypes are the workflow types the overview counts as lifecycle operations: what an
// operator starts. ProvisionTenant is left out (it is a child of OnboardTenant, not an
// operation of its own).
var OperationTypes = []string{
	workflows.OnboardWorkflow, workflows.SuspendWorkflow, workflows.RestoreWorkflow,
	workflows.OffboardWorkflow, workflows.RotateKeyWorkflow, workflows.ProfileChangeWorkflow,
}

// Bounds of one overview: whatever the history holds, it costs the same number of calls.
const (
	// OverviewHours is the window of the operation counts, in hourly buckets.
	OverviewHours = 24
	// OverviewRecent is how many of the latest operations the overview lists.
	OverviewRecent = 20
	// OverviewRunningMax is how many running operations are asked for their progress; more
	// are reported as truncated.
	OverviewRunningMax = 100
	// overviewParallel bounds the calls to Temporal in flight for one overview.
	overviewParallel = 6
	// overviewQueryTimeout bounds one progress query (a run whose worker is gone).
	overviewQueryTimeout = 3 * time.Second
)

// OutcomeCounts are runs by outcome ("running", "completed", "failed", "canceled",
// "terminated", "timed_out", "continued_as_new"); outcomes without runs are absent.
type OutcomeCounts map[string]int64

// HourCounts are the operations started within one hour, by outcome.
type HourCounts struct {
	Start  time.Time     `json:"start"`
	Counts OutcomeCounts `json:"counts"`
}

// TypeCounts are the operations of one workflow type started in the window, by outcome.
type TypeCounts struct {
	Workflow string        `json:"workflow"`
	Counts   OutcomeCounts `json:"counts"`
}

// OperationRun is one operation of the recent list.
type OperationRun struct {
	Run
	// TenantID is read off the deterministic workflow id ("tenant-lifecycle:<id>", …).
	TenantID  string    `json:"tenantId"`
	Status    string    `json:"status"`
	StartedAt time.Time `json:"startedAt"`
	ClosedAt  time.Time `json:"closedAt,omitzero"`
}

// WaitingRun is a running operation that waits for an operator: an approval
// (awaiting_approval) or a step out of retries (awaiting_operator).
type WaitingRun struct {
	Run
	TenantID  string    `json:"tenantId"`
	Operation string    `json:"operation"`
	State     string    `json:"state"`
	StartedAt time.Time `json:"startedAt"`
	// Step is the step parked in awaiting_operator (or awaiting_approval), and LastError why.
	Step      string `json:"step,omitempty"`
	LastError string `json:"lastError,omitempty"`
	// Signals are what the run accepts now (workflows.Progress.Signals).
	Signals     []string `json:"signals"`
	RequestedBy string   `json:"requestedBy,omitempty"`
}

// OperationsOverview is the lifecycle side of the dashboard's overview: the operations of the
// last OverviewHours hours by hour and by type, the latest ones, and the runs waiting for an
// operator. Only runs on this deployment's task queue count.
type OperationsOverview struct {
	Since   time.Time      `json:"since"`
	Until   time.Time      `json:"until"`
	Totals  OutcomeCounts  `json:"totals"`
	Hours   []HourCounts   `json:"hours"`
	ByType  []TypeCounts   `json:"byType"`
	Recent  []OperationRun `json:"recent"`
	Waiting []WaitingRun   `json:"waiting"`
	// RunningChecked is how many running operations were asked for their progress;
	// RunningTruncated says more were running than OverviewRunningMax; Unanswered counts the
	// runs whose progress query failed (no worker answered), so they may wait unseen.
	RunningChecked   int  `json:"runningChecked"`
	RunningTruncated bool `json:"runningTruncated"`
	Unanswered       int  `json:"unanswered"`
}

// Overview reads the operations overview from Temporal's visibility store: exact counts with
// CountWorkflow grouped by ExecutionStatus (one call per hour and one per type), one page of
// the latest operations, and one bounded page of running ones, each asked for its progress.
// The number of calls is fixed, whatever the size of the history.
func (s *Service) Overview(ctx context.Context, now time.Time) (OperationsOverview, error) {
	now = now.UTC()
	first := now.Truncate(time.Hour).Add(-(OverviewHours - 1) * time.Hour)
	out := OperationsOverview{
		Since: first, Until: now, Totals: OutcomeCounts{},
		Hours: make([]HourCounts, OverviewHours), ByType: make([]TypeCounts, len(OperationTypes)),
	}
	end := now.Add(time.Nanosecond) // the window includes now
	scope := fmt.Sprintf("TaskQueue = %s AND WorkflowType IN (%s)", quote(s.opts.TaskQueue), quoteAll(OperationTypes))
	window := func(from, to time.Time) string {
		return fmt.Sprintf(" AND StartTime >= %s AND StartTime < %s", quote(from.Format(time.RFC3339Nano)), quote(to.Format(time.RFC3339Nano)))
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(overviewParallel)
	for i := range out.Hours {
		from := first.Add(time.Duration(i) * time.Hour)
		to := from.Add(time.Hour)
		if i == len(out.Hours)-1 {
			to = end
		}
		g.Go(func() error {
			c, err := s.countByOutcome(gctx, scope+window(from, to))
			out.Hours[i] = HourCounts{Start: from, Counts: c}
			return err
		})
	}
	for i, wf := range OperationTypes {
		g.Go(func() error {
			q := fmt.Sprintf("TaskQueue = %s AND WorkflowType = %s", quote(s.opts.TaskQueue), quote(wf)) + window(first, end)
			c, err := s.countByOutcome(gctx, q)
			out.ByType[i] = TypeCounts{Workflow: wf, Counts: c}
			return err
		})
	}
	g.Go(func() error {
		runs, _, err := s.list(gctx, scope+window(first, end), OverviewRecent)
		out.Recent = runs
		return err
	})
	g.Go(func() error {
		// ProvisionTenant too: a step of onboarding's child parks in the child, which takes
		// the signal under its own workflow id.
		q := fmt.Sprintf("TaskQueue = %s AND WorkflowType IN (%s) AND ExecutionStatus = 'Running'",
			quote(s.opts.TaskQueue), quoteAll(append([]string{workflows.ProvisionWorkflow}, OperationTypes...)))
		return s.waiting(gctx, q, &out)
	})
	if err := g.Wait(); err != nil {
		return OperationsOverview{}, err
	}
	for _, h := range out.Hours {
		for k, n := range h.Counts {
			out.Totals[k] += n
		}
	}
	return out, nil
}

// countByOutcome counts the runs of query grouped by ExecutionStatus.
func (s *Service) countByOutcome(ctx context.Context, query string) (OutcomeCounts, error) {
	resp, err := s.temporal.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Query: query + " GROUP BY ExecutionStatus"})
	if err != nil {
		return nil, fmt.Errorf("lifecycle: count workflows: %w", err)
	}
	out := OutcomeCounts{}
	for _, grp := range resp.GetGroups() {
		vals := grp.GetGroupValues()
		if len(vals) != 1 {
			continue
		}
		var status string
		if err := converter.GetDefaultDataConverter().FromPayload(vals[0], &status); err != nil {
			return nil, fmt.Errorf("lifecycle: count workflows: group value: %w", err)
		}
		out[outcomeName(status)] += grp.GetCount()
	}
	return out, nil
}

// outcomeName turns visibility's ExecutionStatus value ("Running", "TimedOut", …) into the
// names the API uses elsewhere (statusName: "running", "timed_out", …).
func outcomeName(status string) string {
	var b strings.Builder
	for i, r := range status {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// list returns up to limit runs of query (one page: the newest first) and whether more match.
func (s *Service) list(ctx context.Context, query string, limit int) ([]OperationRun, bool, error) {
	resp, err := s.temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, PageSize: int32(limit)})
	if err != nil {
		return nil, false, fmt.Errorf("lifecycle: list workflows: %w", err)
	}
	runs := make([]OperationRun, 0, len(resp.GetExecutions()))
	for _, info := range resp.GetExecutions() {
		if len(runs) == limit {
			break
		}
		r := OperationRun{
			Run:       Run{WorkflowID: info.GetExecution().GetWorkflowId(), RunID: info.GetExecution().GetRunId(), Workflow: info.GetType().GetName()},
			Status:    statusName(info.GetStatus()),
			StartedAt: info.GetStartTime().AsTime(),
		}
		if _, id, ok := strings.Cut(r.WorkflowID, ":"); ok {
			r.TenantID = id
		}
		if info.GetCloseTime() != nil {
			r.ClosedAt = info.GetCloseTime().AsTime()
		}
		runs = append(runs, r)
	}
	return runs, len(resp.GetNextPageToken()) > 0 || len(resp.GetExecutions()) > limit, nil
}

// waiting lists up to OverviewRunningMax running operations and asks each for its progress,
// keeping those that wait for an operator.
func (s *Service) waiting(ctx context.Context, query string, out *OperationsOverview) error {
	running, more, err := s.list(ctx, query, OverviewRunningMax)
	if err != nil {
		return err
	}
	out.RunningChecked, out.RunningTruncated = len(running), more
	found := make([]*WaitingRun, len(running))
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(overviewParallel)
	for i, r := range running {
		g.Go(func() error {
			qctx, cancel := context.WithTimeout(gctx, overviewQueryTimeout)
			defer cancel()
			var p workflows.Progress
			val, err := s.temporal.QueryWorkflow(qctx, r.WorkflowID, r.RunID, workflows.ProgressQuery)
			if err == nil {
				err = val.Get(&p)
			}
			if err != nil {
				// Not fatal: the rest of the overview stands; the count says some went unseen.
				s.logger.Warn("overview: progress query failed", "workflow_id", r.WorkflowID, "run_id", r.RunID, "err", err)
				mu.Lock()
				out.Unanswered++
				mu.Unlock()
				return nil
			}
			if p.State != workflows.StateAwaitingApproval && p.State != workflows.StateAwaitingOperator {
				return nil
			}
			w := &WaitingRun{
				Run: r.Run, TenantID: p.TenantID, Operation: p.Operation, State: p.State, StartedAt: r.StartedAt,
				Signals: append([]string{}, p.Signals...), RequestedBy: p.RequestedBy,
			}
			for _, st := range p.Steps {
				if st.Status == workflows.StepAwaitingOperator || st.Status == workflows.StepAwaitingApproval {
					w.Step, w.LastError = st.Name, st.LastError
				}
			}
			found[i] = w
			return nil
		})
	}
	_ = g.Wait() // the goroutines return no error
	out.Waiting = []WaitingRun{}
	for _, w := range found {
		if w != nil {
			out.Waiting = append(out.Waiting, *w)
		}
	}
	return nil
}

// quote is a visibility query string literal.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `\'`) + "'" }

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = quote(s)
	}
	return strings.Join(q, ", ")
}
