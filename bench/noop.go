package main

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/misybot/tenancy/activities"
	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/wiring"
	"github.com/misybot/tenancy/workflows"
)

// The onboarding's extra over the floor has two parts: what its activities do (PostgreSQL,
// MongoDB, Redis, the audit trail) and what the workflow itself asks of Temporal beyond the
// floor's shape (search attributes at start and on completion, a version marker, larger
// payloads). -noop-onboarding measures the second alone: OnboardTenant run with activities that
// do nothing, started as the API starts it, against the floor, both on a worker of their own
// without interceptors.

const noopQueue = "bench-noop"

// noopActivities are the onboarding's activities, doing nothing but answer like the real ones.
type noopActivities struct{}

func (*noopActivities) TransitionStatus(_ context.Context, in activities.TransitionInput) (activities.TransitionResult, error) {
	return activities.TransitionResult{Status: in.To, Changed: true}, nil
}

func (*noopActivities) PlaceTenant(context.Context, activities.PlaceInput) (activities.PlaceResult, error) {
	return activities.PlaceResult{Cell: "default"}, nil
}

func (*noopActivities) EnsureKeys(context.Context, activities.TenantRef) (activities.KeysResult, error) {
	return activities.KeysResult{Created: true}, nil
}

func (*noopActivities) ProvisionPostgres(context.Context, activities.TenantRef) (activities.PostgresReport, error) {
	return activities.PostgresReport{SettingsCreated: 3, MembersCreated: 1}, nil
}

func (*noopActivities) ProvisionMongo(_ context.Context, in activities.TenantRef) (activities.MongoReport, error) {
	return activities.MongoReport{Database: "tenant_" + in.TenantID, CollectionsCreated: []string{"conversations", "messages", "audit_events"},
		IndexesCreated: []string{"conversations.updatedAt_-1", "messages.conversationId_1_createdAt_1", "audit_events.seq_1", "audit_events.at_1", "audit_events.action_1_at_1"}}, nil
}

func (*noopActivities) ProvisionRedis(context.Context, activities.TenantRef) (activities.RedisReport, error) {
	return activities.RedisReport{}, nil
}

func (*noopActivities) RecordAudit(context.Context, activities.AuditInput) (bool, error) {
	return true, nil
}

// noopOnboarding runs rounds pairs (floor and OnboardTenant with no-op activities, in alternating
// order) of burst
// runs at concurrency 16 and prints each pair's throughput ratio and CPU per run.
func (b *bench) noopOnboarding(rounds, burst int) error {
	// The configured pollers, as on the product's worker: with the SDK's 2, most tasks wait in
	// the task queue's backlog at concurrency 16, a cost neither side has in the report.
	opts := worker.Options{}
	wiring.Pollers(b.pollers)(&opts)
	w := worker.New(b.temporal, noopQueue, opts)
	workflows.Register(w)
	w.RegisterActivity(&noopActivities{})
	registerFloor(w)
	if err := w.Start(); err != nil {
		return err
	}
	defer w.Stop()
	start := func(ctx context.Context, opts client.StartWorkflowOptions, wf string, arg any) error {
		opts.TaskQueue = noopQueue
		run, err := b.temporal.ExecuteWorkflow(ctx, opts, wf, arg)
		if err != nil {
			return err
		}
		return run.Get(ctx, nil)
	}
	floor := func(ctx context.Context) error {
		id := fmt.Sprintf("bench-floor:%s%d", b.prefix, time.Now().UnixNano())
		return start(ctx, client.StartWorkflowOptions{ID: id}, floorWorkflow, id)
	}
	onboard := func(ctx context.Context) error {
		id := fmt.Sprintf("%sn%05d", b.prefix, b.seq.Add(1))
		return start(ctx, client.StartWorkflowOptions{ID: workflows.WorkflowID(id),
			TypedSearchAttributes: workflows.StartSearchAttributes(id, "onboard", tenant.TypeStandard, tenant.StatusPending, "")},
			workflows.OnboardWorkflow, workflows.OnboardInput{TenantID: id, RequestedBy: "bench", SearchAttributesVersion: workflows.SearchAttributesVersion,
				Placement: &workflows.Placement{}})
	}
	for i := range rounds {
		// Alternating order, as the report's rounds: the dev server's cost per run drifts up
		// during a run, which would otherwise always be charged to the second phase.
		var f, n phase
		var err error
		runFloor := func() error {
			f, err = b.phase(fmt.Sprintf("floor, concurrency 16, no-op round %d", i+1), burst, 16, floor)
			return err
		}
		runOnboard := func() error {
			n, err = b.phase(fmt.Sprintf("OnboardTenant with no-op activities, concurrency 16, round %d", i+1), burst, 16, onboard)
			return err
		}
		first, second := runFloor, runOnboard
		if i%2 == 1 {
			first, second = runOnboard, runFloor
		}
		if err := first(); err != nil {
			return err
		}
		if err := second(); err != nil {
			return err
		}
		say(fmt.Sprintf("round %d: throughput %.2f of the floor's; Temporal CPU per run %.1f ms against %.1f, this process %.1f against %.1f",
			i+1, n.Throughput/f.Throughput, n.CPUPerRunMs["temporal"], f.CPUPerRunMs["temporal"], n.CPUPerRunMs["bench"], f.CPUPerRunMs["bench"]))
	}
	return nil
}
