// Command seed onboards many tenants through the real workflows and fills them with data, so
// that benchmarks run at 1,000 and 10,000 tenants (package internal/testkit/seed). It runs the API and
// a worker in-process, like `make bench`, on the stores the environment names; unlike the
// bench it empties nothing, and running it again skips what is already there.
//
// Usage: go run ./bench/seed [-tenants 1000] [-concurrency 16] [-prefix seed]
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/misybot/tenancy/activities"
	"github.com/misybot/tenancy/internal/keys/seal"
	"github.com/misybot/tenancy/internal/platform/clients"
	"github.com/misybot/tenancy/internal/platform/config"
	"github.com/misybot/tenancy/internal/testkit/seed"
	"github.com/misybot/tenancy/migrations"
	"github.com/misybot/tenancy/wiring"
)

func main() {
	var opts seed.Options
	flag.IntVar(&opts.Tenants, "tenants", 1000, "tenants to have (ids <prefix>-00001 …)")
	flag.IntVar(&opts.Concurrency, "concurrency", 16, "onboardings at once")
	flag.StringVar(&opts.Prefix, "prefix", "seed", "tenant id prefix (lowercase letters, digits, '-')")
	flag.IntVar(&opts.Settings, "settings", 10, "settings per tenant")
	flag.IntVar(&opts.Conversations, "conversations", 5, "conversations per tenant")
	flag.IntVar(&opts.Messages, "messages", 4, "messages per conversation")
	flag.IntVar(&opts.RedisKeys, "redis-keys", 10, "Redis keys per tenant (besides the context record)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, opts); err != nil {
		fmt.Fprintln(os.Stderr, "seed:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, opts seed.Options) error {
	cfg, err := config.FromEnv()
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := migrations.Up(ctx, cfg.MigrateDatabaseURL, logger); err != nil {
		return err
	}
	c, err := clients.Open(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer func() { _ = c.Close(context.Background()) }()
	sealer, err := seal.NewKeyring(cfg.MasterKeys())
	if err != nil {
		return err
	}
	if cfg.OperatorToken == "" {
		cfg.OperatorToken = fmt.Sprintf("seed-operator-token-%d", time.Now().UnixNano())
	}

	acts := activities.New(activities.Deps{Clients: c, Sealer: sealer, ExportDir: filepath.Join(os.TempDir(), "tenancy-seed-exports"), Logger: logger})
	w := wiring.Worker(c, acts, cfg.TaskQueue, wiring.Pollers(cfg.WorkerPollers))
	if err := w.Start(); err != nil {
		return err
	}
	defer w.Stop()
	shipCtx, stopShipper := context.WithCancel(ctx)
	defer stopShipper()
	go wiring.Shipper(acts, logger).Run(shipCtx)
	go wiring.Relay(acts, logger).Run(shipCtx)
	srv := httptest.NewServer(wiring.API(cfg, c, sealer, logger).Public)
	defer srv.Close()

	fmt.Fprintf(os.Stderr, "seed: %d tenants (%s-00001 …), concurrency %d; each with %d settings, %d conversations of %d messages, %d Redis keys\n",
		opts.Tenants, opts.Prefix, opts.Concurrency, opts.Settings, opts.Conversations, opts.Messages, opts.RedisKeys)
	st, err := seed.Run(ctx, seed.DepsOver(c, sealer, srv.URL, cfg.OperatorToken, os.Stderr), opts)
	fmt.Fprintf(os.Stderr, "seed: %d onboarded, %d already active; %d filled, %d already filled; %s (%.1f tenants/s)\n",
		st.Onboarded, st.AlreadyActive, st.Filled, st.AlreadyFilled, st.Elapsed.Round(time.Millisecond), float64(opts.Tenants)/st.Elapsed.Seconds())
	return err
}
