package main

import (
	"context"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/misybot/tenancy/workflows"
)

// The Temporal floor: workflows of the same shape as OnboardTenant (two steps, a child running
// three steps in parallel, two more steps) whose activities do nothing. On the same dev server
// and worker, their latency is what Temporal itself costs; the onboarding's extra is ours.

const (
	floorWorkflow      = "BenchFloorOnboard"
	floorChildWorkflow = "BenchFloorProvision"
	floorActivity      = "BenchNoop"
)

func registerFloor(w worker.Worker) {
	w.RegisterWorkflowWithOptions(floorOnboard, workflow.RegisterOptions{Name: floorWorkflow})
	w.RegisterWorkflowWithOptions(floorProvision, workflow.RegisterOptions{Name: floorChildWorkflow})
	w.RegisterActivityWithOptions(noop, activity.RegisterOptions{Name: floorActivity})
}

func noop(context.Context, string) error { return nil }

// floorOptions are the lifecycle steps' own activity options (timeout and retry policy): the
// attempt timeout decides when Temporal fires each activity's timeout timer, work the floor
// must do at the same moment as the workflow it mirrors.
func floorOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflows.StepActivityOptions(0, 0))
}

// floorOnboard mirrors OnboardTenant: mark onboarding, place, keys, provision (child), audit,
// mark active.
func floorOnboard(ctx workflow.Context, id string) error {
	ctx = floorOptions(ctx)
	for _, step := range []string{"mark-onboarding", "place", "keys"} {
		if err := workflow.ExecuteActivity(ctx, floorActivity, step).Get(ctx, nil); err != nil {
			return err
		}
	}
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{WorkflowID: "bench-floor-provision:" + id})
	if err := workflow.ExecuteChildWorkflow(cctx, floorChildWorkflow, id).Get(ctx, nil); err != nil {
		return err
	}
	for _, step := range []string{"audit", "mark-active"} {
		if err := workflow.ExecuteActivity(ctx, floorActivity, step).Get(ctx, nil); err != nil {
			return err
		}
	}
	return nil
}

// floorProvision mirrors ProvisionTenant: three stores in parallel.
func floorProvision(ctx workflow.Context, _ string) error {
	ctx = floorOptions(ctx)
	var futures []workflow.Future
	for _, store := range []string{"postgres", "mongodb", "redis"} {
		futures = append(futures, workflow.ExecuteActivity(ctx, floorActivity, store))
	}
	for _, f := range futures {
		if err := f.Get(ctx, nil); err != nil {
			return err
		}
	}
	return nil
}
