package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"

	"github.com/misybot/tenancy/internal/control/lifecycle"
	"github.com/misybot/tenancy/internal/domain/decision"
	"github.com/misybot/tenancy/internal/domain/reconcile"
	"github.com/misybot/tenancy/internal/platform/clients"
	"github.com/misybot/tenancy/internal/platform/config"
)

const reconcileUsage = `usage:
  starter reconcile [run] [--prefix <idPrefix>] [--auto-repair]   start a run; prints its id
  starter reconcile show [runId]                                  print a report (default: the latest)
  starter reconcile repair <runId>                                approve the run's safe repairs
  starter reconcile decide <runId> <driftId>                      repair one drift that deletes or re-creates data
  starter reconcile close <runId>                                 stop waiting for approval and decisions`

// reconcileCommand starts reconciliation runs and sends them approvals and decisions from a
// shell: the same workflow and signals as the API's /api/meta-agent/reconciliation.
func reconcileCommand(ctx context.Context, cfg config.Config, logger *slog.Logger, args []string) error {
	usage := func() {
		fmt.Fprintln(os.Stderr, reconcileUsage)
		os.Exit(2)
	}
	cmd := "run"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	c, err := clients.Open(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer func() { _ = c.Close(context.Background()) }()
	rec := lifecycle.NewReconciler(c.Temporal, cfg.TaskQueue, decision.New(c.Postgres))
	reports := reconcile.NewReports(c.Postgres)
	operator := lifecycle.Decider{Name: "cli:" + os.Getenv("USER"), Role: decision.RoleCLI}

	var out any
	switch cmd {
	case "run":
		opts := lifecycle.ReconcileOptions{RequestedBy: operator.Name}
		for i := 0; i < len(args); i++ {
			switch {
			case args[i] == "--auto-repair":
				opts.AutoRepair = true
			case args[i] == "--prefix" && i+1 < len(args):
				opts.IDPrefix = args[i+1]
				i++
			default:
				usage()
			}
		}
		run, err := rec.Start(ctx, opts)
		if err != nil {
			return err
		}
		out = map[string]string{"runId": run.WorkflowID, "temporalRunId": run.RunID}
	case "show":
		var run reconcile.Run
		if len(args) > 0 {
			run, err = reports.Get(ctx, args[0])
		} else {
			run, err = reports.Latest(ctx)
		}
		if err != nil {
			return err
		}
		drifts, _, err := reports.Drifts(ctx, run.ID, "", 1000)
		if err != nil {
			return err
		}
		out = map[string]any{"run": run, "drifts": drifts}
	case "repair", "close":
		if len(args) != 1 {
			usage()
		}
		if cmd == "repair" {
			err = rec.Approve(ctx, args[0], operator)
		} else {
			err = rec.Close(ctx, args[0], operator)
		}
		if err != nil {
			return err
		}
		out = map[string]string{"runId": args[0], "signal": cmd}
	case "decide":
		if len(args) != 2 {
			usage()
		}
		d, err := reports.Drift(ctx, args[0], args[1])
		if err != nil {
			return err
		}
		if d.Repair != reconcile.RepairDecision {
			return fmt.Errorf("drift %s is repaired %s, not by a decision", d.ID, d.Repair)
		}
		if err := rec.Decide(ctx, args[0], d.ID, operator); err != nil {
			return err
		}
		out = map[string]string{"runId": args[0], "signal": "decide", "driftId": d.ID}
	default:
		usage()
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
