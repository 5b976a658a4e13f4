// Command worker runs the Temporal worker: it polls TASK_QUEUE and executes the tenant
// lifecycle workflows and their activities until interrupted.
package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"go.temporal.io/sdk/worker"

	"github.com/misybot/tenancy/internal/clients"
	"github.com/misybot/tenancy/internal/config"
	"github.com/misybot/tenancy/internal/rls"
	"github.com/misybot/tenancy/internal/seal"
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
	if cfg.UsesDevMasterKey() {
		logger.Warn("using the public development master key: set TENANT_MASTER_KEY for anything but local development")
	}
	sealer, err := seal.New(cfg.MasterKey)
	if err != nil {
		logger.Error("worker: master key", "err", err)
		os.Exit(2)
	}

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
	w.RegisterActivity(c.Activities(sealer, cfg.ExportDir, logger))

	logger.Info("worker starting", "task_queue", cfg.TaskQueue, "temporal", cfg.TemporalAddress, "namespace", cfg.TemporalNamespace, "export_dir", cfg.ExportDir)
	if err := w.Run(worker.InterruptCh()); err != nil {
		logger.Error("worker stopped", "err", err)
		os.Exit(1)
	}
	logger.Info("worker stopped")
}
