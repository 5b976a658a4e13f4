package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/misybot/tenancy/internal/control/lifecycle"
	"github.com/misybot/tenancy/internal/domain/decision"
	"github.com/misybot/tenancy/internal/platform/clients"
	"github.com/misybot/tenancy/internal/platform/config"
	"github.com/misybot/tenancy/workflows"
)

const decideUsage = `usage:
  starter decide <retry|abort|cancel-offboard> <tenantId>     the tenant's run waiting for it (a profile change, else its lifecycle run)
  starter decide <retry|abort> --workflow <workflowId>         any run waiting for it (master-key-rotation)`

// decideCommand is the operator CLI's way to steer a waiting run, replacing a raw
// `temporal workflow signal … --name retry|abort|cancel-offboard`, which the runs now refuse:
// it records the decision (decided by "cli:$USER" with the role decision.RoleCLI) and signals
// the run with its id. Approvals are not taken here: they need a platform-admin through the
// API, who is authenticated (POST …/{tenantId}/approve).
func decideCommand(ctx context.Context, cfg config.Config, logger *slog.Logger, args []string) error {
	usage := func() {
		fmt.Fprintln(os.Stderr, decideUsage)
		os.Exit(2)
	}
	if len(args) < 2 {
		usage()
	}
	signal := args[0]
	switch signal {
	case workflows.RetrySignal, workflows.AbortSignal, workflows.CancelOffboardSignal:
	default:
		usage()
	}
	c, err := clients.Open(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer func() { _ = c.Close(context.Background()) }()
	svc := lifecycle.New(c.Temporal, lifecycle.Options{TaskQueue: cfg.TaskQueue, Decisions: decision.New(c.Postgres), Logger: logger})
	by := lifecycle.Decider{Name: "cli:" + os.Getenv("USER"), Role: decision.RoleCLI}
	var run lifecycle.Run
	switch {
	case args[1] == "--workflow" && len(args) == 3:
		run, err = svc.SignalWorkflow(ctx, args[2], signal, by)
	case len(args) == 2 && !strings.HasPrefix(args[1], "-"):
		run, err = svc.Signal(ctx, args[1], signal, by)
	default:
		usage()
	}
	if err != nil {
		return err
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(map[string]string{"workflowId": run.WorkflowID, "runId": run.RunID, "signal": signal, "decidedBy": by.Name})
}
