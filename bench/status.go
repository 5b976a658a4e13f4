package main

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// Suspend and restore through the API (request to the run's end) against floor workflows of
// the same shapes: SuspendTenant runs three steps (set the status, revoke sessions, audit),
// RestoreTenant two (set the status, audit).

const floorStatusWorkflow = "BenchFloorStatusChange"

func registerStatusFloor(w worker.Worker) {
	w.RegisterWorkflowWithOptions(floorStatusChange, workflow.RegisterOptions{Name: floorStatusWorkflow})
}

// floorStatusChange runs steps no-op activities one after the other.
func floorStatusChange(ctx workflow.Context, steps int) error {
	ctx = floorOptions(ctx)
	for i := range steps {
		if err := workflow.ExecuteActivity(ctx, floorActivity, fmt.Sprint("step-", i)).Get(ctx, nil); err != nil {
			return err
		}
	}
	return nil
}

// statusChange suspends (or restores) the tenant through the API and waits for the run.
func (b *bench) statusChange(ctx context.Context, id, op string) error {
	var started struct{ WorkflowID, RunID string }
	if err := b.operatorDo(ctx, http.MethodPost, "/api/meta-agent/tenants/"+id+"/"+op, "", http.StatusAccepted, &started); err != nil {
		return err
	}
	return b.temporal.GetWorkflow(ctx, started.WorkflowID, started.RunID).Get(ctx, nil)
}

// floorStatus runs the floor workflow of a status change of steps steps and waits for it.
func (b *bench) floorStatus(steps int) func(context.Context) error {
	return func(ctx context.Context) error {
		id := fmt.Sprintf("bench-floor-status:%s%d", b.prefix, time.Now().UnixNano())
		run, err := b.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: b.queue}, floorStatusWorkflow, steps)
		if err != nil {
			return err
		}
		return run.Get(ctx, nil)
	}
}

// suspendRestore measures n suspensions and n restorations of one tenant, alternating, and the
// floors of both shapes, at concurrency 1.
func (b *bench) suspendRestore(ctx context.Context, n int) (suspend, restore, floorSuspend, floorRestore phase, err error) {
	id, _, err := b.onboardWithSecret(ctx)
	if err != nil {
		return
	}
	// Alternating calls on one tenant: measure each pair, then split the latencies.
	suspended := false
	op := func(ctx context.Context) error {
		if suspended {
			suspended = false
			return b.statusChange(ctx, id, "restore")
		}
		suspended = true
		return b.statusChange(ctx, id, "suspend")
	}
	both, err := b.phase("suspend and restore, alternating, concurrency 1", 2*n, 1, op)
	if err != nil {
		return
	}
	suspend, restore = split(both, "suspend, concurrency 1"), split(both, "restore, concurrency 1")
	for i, l := range both.Latencies {
		if i%2 == 0 {
			suspend.Latencies = append(suspend.Latencies, l)
		} else {
			restore.Latencies = append(restore.Latencies, l)
		}
	}
	suspend.summarize()
	restore.summarize()
	if floorSuspend, err = b.phase("floor of suspend (3 steps), concurrency 1", n, 1, b.floorStatus(3)); err != nil {
		return
	}
	floorRestore, err = b.phase("floor of restore (2 steps), concurrency 1", n, 1, b.floorStatus(2))
	return
}

func split(p phase, name string) phase {
	return phase{Name: name, Concurrency: 1, Tenants: p.Tenants}
}

// summarize fills the counts and quantiles from Latencies.
func (p *phase) summarize() {
	s := append([]float64(nil), p.Latencies...)
	sortFloats(s)
	p.Runs = len(s)
	if len(s) > 0 {
		p.P50, p.P99, p.Max = quantile(s, 0.5), quantile(s, 0.99), s[len(s)-1]
	}
}
