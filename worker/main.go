// Command worker runs the Temporal worker: it polls TASK_QUEUE and executes the tenant
// lifecycle workflows and their activities until interrupted.
package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"go.temporal.io/sdk/worker"

	"github.com/misybot/tenancy/activities"
	"github.com/misybot/tenancy/internal/clients"
	"github.com/misybot/tenancy/internal/config"
	"github.com/misybot/tenancy/internal/registry"
	"github.com/misybot/tenancy/internal/rls"
	"github.com/misybot/tenancy/workflows"
)

func main() {
	cfg, err := config.FromEnv()
	if err != nil {
		for line := range strings.SplitSeq(err.Error(), "\n") {
			fmt.Fprintln(os.Stderr, "config: "+line)
		}
		os.Exit(2)
	}
	logger := cfg.NewLogger(os.Stderr)

	c, err := clients.Open(context.Background(), cfg, logger)
	if err != nil {
		logger.Error("worker: open clients", "err", err)
		os.Exit(1)
	}
	defer func() { _ = c.Close(context.Background()) }()

	if err := rls.VerifyAtStart(context.Background(), c.Postgres, logger); err != nil {
		logger.Error("worker: refusing to start", "err", err)
		os.Exit(1)
	}

	w := worker.New(c.Temporal, cfg.TaskQueue, worker.Options{})
	workflows.Register(w)
	w.RegisterActivity(&activities.Activities{Registry: registry.New(c.Postgres), Logger: logger})

	logger.Info("worker starting", "task_queue", cfg.TaskQueue, "temporal", cfg.TemporalAddress, "namespace", cfg.TemporalNamespace)
	if err := w.Run(worker.InterruptCh()); err != nil {
		logger.Error("worker stopped", "err", err)
		os.Exit(1)
	}
	logger.Info("worker stopped")
}
