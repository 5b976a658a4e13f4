// Command bench measures the product end to end on real servers and writes a report. `make
// bench` runs it on a database of its own (tenancy_bench), which it empties first: the "empty
// platform" figures need one.
//
// Every figure is a ratio against a baseline measured in the same run on the same machine:
//   - onboarding at concurrency 1 on an empty platform, against the floor workflow (same shape,
//     no-op activities, same dev server and worker);
//   - a signed tenant API read against a bare Echo handler, same load generator;
//   - suspend and restore against floor workflows of their shapes;
//   - onboarding at concurrency 16, throughput and p50, against the floor at concurrency 16, in
//     rounds, again in rounds with the stores on a core of their own (-apart-rounds), and
//     sustained for -sustain (the floor's half before and half after);
//   - this process's memory and the management API's list and GET latency at 1,000 tenants and
//     at -scale tenants;
//   - onboarding at concurrency 1 again after -tenants onboardings, against the empty platform;
//   - the package benchmarks (-gobench, written by `make bench` first), as their own pairs.
//
// Usage: go run ./bench [-tenants 2000] [-scale 10000] [-samples 30] [-out .bench]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.mongodb.org/mongo-driver/bson"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/misybot/tenancy/activities"
	"github.com/misybot/tenancy/internal/domain/cells"
	"github.com/misybot/tenancy/internal/keys/seal"
	"github.com/misybot/tenancy/internal/platform/clients"
	"github.com/misybot/tenancy/internal/platform/config"
	"github.com/misybot/tenancy/internal/stores/tenantmongo"
	"github.com/misybot/tenancy/internal/testkit/seed"
	"github.com/misybot/tenancy/migrations"
	"github.com/misybot/tenancy/wiring"
)

func main() {
	tenants := flag.Int("tenants", 2000, "onboardings before the second concurrency-1 measurement")
	samples := flag.Int("samples", 30, "onboardings per concurrency-1 measurement")
	burst := flag.Int("burst", 100, "onboardings per concurrency-16 measurement")
	rounds := flag.Int("rounds", 6, "floor/onboarding pairs at concurrency 16, in alternating order; the report takes the median of their ratios (six: one round swings by ±0.06 on this 2-core host)")
	out := flag.String("out", ".bench", "report folder")
	cpuProfile := flag.String("cpuprofile", "", "write this process's CPU profile (API, worker, shipper) to the file")
	scale := flag.Int("scale", 10000, "the larger size of the memory and list/GET figures (the smaller is 1,000, or a tenth below 10,000); 0 skips them")
	sustain := flag.Duration("sustain", time.Minute, "how long the sustained concurrency-16 throughput runs (each of floor and onboarding); 0 skips it")
	apiLoad := flag.Duration("apiload", 10*time.Second, "how long each tenant API load run lasts; 0 skips it")
	goBenchFile := flag.String("gobench", "", "output of go test -bench to fold into the report")
	noopRounds := flag.Int("noop-onboarding", 0, "instead of the report: this many rounds at concurrency 16 of the floor against OnboardTenant itself with no-op activities, on a worker without interceptors (what the workflow's own Temporal work costs: search attributes, version marker, payloads)")
	apartRounds := flag.Int("apart-rounds", 4, "floor/onboarding pairs at concurrency 16 with PostgreSQL, FerretDB and Redis confined to one core and Temporal and the bench to the others, as when the stores run on machines of their own (0 skips them; skipped on one core, or when the stores are not on this machine)")
	pollerRounds := flag.Int("poller-rounds", 2, "pairs at concurrency 16 of onboarding on a worker with the SDK's default pollers against one with WORKER_POLLERS (0 skips them)")
	cellSamples := flag.Int("cell-samples", 30, "onboardings of each side of the cells figure: placed among 3 cells (the local cells cell-2 and cell-3 registered beside the default one) against named onto the default cell, interleaved at concurrency 1 (0 skips it; skipped when the local cells are not running)")
	ownTemporal := flag.Bool("own-temporal", true, "run on a dev server of the bench's own, restarted on a fresh file before each concurrency-1 pair (false: TEMPORAL_ADDRESS's)")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	opts := options{tenants: *tenants, samples: *samples, burst: *burst, rounds: max(*rounds, 1), scale: *scale,
		sustain: *sustain, apiLoad: *apiLoad, goBench: *goBenchFile, out: *out, ownTemporal: *ownTemporal, noopRounds: *noopRounds, pollerRounds: *pollerRounds, apartRounds: *apartRounds, cellSamples: *cellSamples}
	if err := run(opts); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type bench struct {
	cfg      config.Config
	c        *clients.Clients
	url      string
	token    string
	temporal client.Client
	queue    string
	prefix   string
	seq      atomic.Int64
	// seeded counts the tenants the scale seed added (internal/testkit/seed), filled with data.
	seeded   atomic.Int64
	seedDeps seed.Deps
	logger   *slog.Logger
	// dev is the bench's own Temporal dev server (nil: TEMPORAL_ADDRESS's); worker runs on it,
	// started again by startWorker after a restart.
	dev         *devServer
	worker      worker.Worker
	startWorker func() error
	// pollers is the worker's pollers of each kind (WORKER_POLLERS; 0: the SDK's default).
	pollers int
	// cells is the cell registry (the cells figure registers the local cells there).
	cells *cells.Registry
}

// freshTemporal restarts the bench's own dev server on an empty file (see devServer) with a
// new worker, and warms both up; without a server of its own it does nothing.
func (b *bench) freshTemporal() error {
	if b.dev == nil {
		return nil
	}
	say("restarting the bench's dev server on a fresh file")
	b.worker.Stop()
	if err := b.dev.restart(); err != nil {
		return err
	}
	if err := b.startWorker(); err != nil {
		return err
	}
	if _, err := b.measure(4, 2, b.floor); err != nil {
		return fmt.Errorf("warm-up after the restart: %w", err)
	}
	_, err := b.measure(4, 2, b.onboard)
	return err
}

type options struct {
	tenants, samples, burst, rounds, scale, noopRounds, pollerRounds, apartRounds, cellSamples int
	sustain, apiLoad                                                                           time.Duration
	goBench, out                                                                               string
	ownTemporal                                                                                bool
}

func run(o options) error {
	tenants, samples, burst, rounds, outDir := o.tenants, o.samples, o.burst, o.rounds, o.out
	cfg, err := config.FromEnv()
	if err != nil {
		return err
	}
	if !strings.Contains(cfg.DatabaseURL, "tenancy_bench") {
		return errors.New("DATABASE_URL must name the tenancy_bench database (the bench empties it): run `make bench`")
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx := context.Background()
	say("migrating and emptying the bench database")
	if err := migrations.Up(ctx, cfg.MigrateDatabaseURL, logger); err != nil {
		return err
	}
	var dev *devServer
	if o.ownTemporal {
		say("starting a Temporal dev server of the bench's own")
		if dev, err = startDevServer(); err != nil {
			return err
		}
		defer dev.close()
		cfg.TemporalAddress = dev.addr
	}
	c, err := clients.Open(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer func() { _ = c.Close(context.Background()) }()
	if err := reset(ctx, cfg, c); err != nil {
		return err
	}
	// At the end, drop the tenant databases again: FerretDB keeps each open as a file, and
	// thousands of them left behind would slow every listDatabases of the tests and of make dev
	// (the PostgreSQL rows stay for inspection; the next bench empties them).
	defer func() {
		if err := dropTenantDatabases(context.Background(), cfg, c); err != nil {
			say("could not drop the bench's tenant databases: " + err.Error())
		}
	}()

	sealer, err := seal.NewKeyring(cfg.MasterKeys())
	if err != nil {
		return err
	}
	if cfg.OperatorToken == "" {
		cfg.OperatorToken = fmt.Sprintf("bench-operator-token-%d", time.Now().UnixNano())
	}
	b := &bench{cfg: cfg, c: c, temporal: c.Temporal, queue: cfg.TaskQueue, logger: logger, pollers: cfg.WorkerPollers,
		prefix: fmt.Sprintf("b%d-", time.Now().Unix()%100000), token: cfg.OperatorToken}
	acts := activities.New(activities.Deps{Clients: c, Sealer: sealer, ExportDir: filepath.Join(os.TempDir(), "tenancy-bench-exports"), Logger: logger})
	b.startWorker = func() error {
		b.worker = wiring.Worker(c, acts, cfg.TaskQueue, wiring.Pollers(b.pollers))
		registerFloor(b.worker)
		registerStatusFloor(b.worker)
		return b.worker.Start()
	}
	if err := b.startWorker(); err != nil {
		return err
	}
	defer func() { b.worker.Stop() }()
	b.dev = dev
	b.cells = acts.Cells.Registry()
	shipCtx, stopShipper := context.WithCancel(ctx)
	defer stopShipper()
	go wiring.Shipper(acts, logger).Run(shipCtx)
	go wiring.Relay(acts, logger).Run(shipCtx)
	srv := httptest.NewServer(wiring.API(cfg, c, sealer, logger).Public)
	defer srv.Close()
	b.url = srv.URL
	b.seedDeps = seed.DepsOver(c, sealer, srv.URL, b.token, os.Stderr)

	r := report{Started: time.Now().UTC(), Machine: machine(), Tenants: tenants}
	say("warm-up")
	if _, err := b.measure(4, 2, b.floor); err != nil {
		return err
	}
	if _, err := b.measure(4, 2, b.onboard); err != nil {
		return err
	}
	if o.noopRounds > 0 {
		return b.noopOnboarding(o.noopRounds, burst)
	}

	b.settle(ctx)
	floor1, empty1, err := b.interleaved(samples, "floor, concurrency 1", b.floor, "onboarding, concurrency 1, empty platform", b.onboard)
	if err != nil {
		return err
	}
	var extra []row
	if o.apiLoad > 0 {
		signed, bare, err := b.tenantAPIRead(ctx, 16, o.apiLoad)
		if err != nil {
			return err
		}
		r.Loads = []loadResult{signed, bare}
		extra = append(extra,
			row{"Signed tenant API read (requests/s), concurrency 16, vs a bare Echo handler", signed.Throughput, bare.Throughput, ratio(signed.Throughput, bare.Throughput), "≥ 0.5"},
			row{"Signed tenant API read p50 (ms) vs the bare handler", signed.P50, bare.P50, ratio(signed.P50, bare.P50), ""})
	}
	suspend, restore, floorSuspend, floorRestore, err := b.suspendRestore(ctx, samples)
	if err != nil {
		return err
	}
	extra = append(extra,
		row{"Suspend p50 (ms), concurrency 1, vs its floor (3 no-op steps)", suspend.P50, floorSuspend.P50, ratio(suspend.P50, floorSuspend.P50), ""},
		row{"Restore p50 (ms), concurrency 1, vs its floor (2 no-op steps)", restore.P50, floorRestore.P50, ratio(restore.P50, floorRestore.P50), ""})
	pairs, err := b.roundPairs("", rounds, burst)
	if err != nil {
		return err
	}
	floor16, onb16, medianRatio := medianRound(pairs)
	var apartPairs []pair
	if o.apartRounds > 0 {
		err := storesApart(func() (err error) {
			apartPairs, err = b.roundPairs(", stores apart", o.apartRounds, burst)
			return err
		})
		switch {
		case errors.Is(err, errApartUnavailable):
			say("no stores-apart figure: " + err.Error())
			apartPairs = nil
		case err != nil:
			return err
		default:
			f, n, ratio := medianRound(apartPairs)
			extra = append(extra, row{fmt.Sprintf("Onboarding throughput (runs/s), concurrency 16 vs floor, PostgreSQL, FerretDB and Redis on a core of their own, Temporal and this process on the others (median of %d rounds' ratios; %s)",
				o.apartRounds, roundsRange(apartPairs)), n.Throughput, f.Throughput, ratio, ""})
		}
	}
	var pollerPhases []phase
	if o.pollerRounds > 0 {
		tuned, sdk, phases, err := b.pollerPairs(o.pollerRounds, burst)
		if err != nil {
			return err
		}
		pollerPhases = phases
		extra = append(extra, row{fmt.Sprintf("Onboarding throughput (runs/s), concurrency 16, WORKER_POLLERS=%d vs the SDK's default 2 (mean of %d rounds)", b.pollers, o.pollerRounds),
			tuned.Throughput, sdk.Throughput, ratio(tuned.Throughput, sdk.Throughput), ""},
			row{fmt.Sprintf("Onboarding p50 (ms), concurrency 16, WORKER_POLLERS=%d vs the SDK's default 2", b.pollers), tuned.P50, sdk.P50, ratio(tuned.P50, sdk.P50), ""})
	}
	var sustainedPhases []phase
	if o.sustain > 0 {
		sf, so, err := b.sustainedPair(16, o.sustain)
		if err != nil {
			return err
		}
		sustainedPhases = []phase{sf, so}
		extra = append(extra, row{fmt.Sprintf("Onboarding throughput (runs/s) sustained for %s, concurrency 16, vs floor (%s before it and %[2]s after)", o.sustain, o.sustain/2), so.Throughput, sf.Throughput, ratio(so.Throughput, sf.Throughput), "≥ 0.8"})
	}
	var cellPhases []phase
	if o.cellSamples > 0 {
		one, three, err := b.cellsPair(ctx, o.cellSamples)
		switch {
		case errors.Is(err, errNoLocalCells):
			say("no cells figure: " + err.Error())
		case err != nil:
			return err
		default:
			cellPhases = []phase{one, three}
			extra = append(extra,
				row{"Onboarding p50 (ms), concurrency 1, placed among 3 cells (landing on cell-2 and cell-3) vs named onto the default cell", three.P50, one.P50, ratio(three.P50, one.P50), "≤ 1.05"},
				row{"Onboarding p99 (ms), concurrency 1, placed among 3 cells vs named onto the default cell", three.P99, one.P99, ratio(three.P99, one.P99), ""})
		}
	}
	// 1,500 reads at each size (50 per concurrency-1 sample), about a second of each: 150 took
	// 50 ms. More samples steady the p50 against a burst, not against the host's drift: at one
	// size (1,300 tenants), four measurements 30 s apart read a list p50 of 1.1, 0.9, 1.9 and
	// 1.5 ms.
	scaleSamples := samples * 50
	// The smaller size of the scale figures: 1,000 for -scale 10000, a tenth of -scale below.
	smallScale := min(1000, o.scale/10)
	if o.scale > smallScale {
		if err := b.fillTo(smallScale); err != nil {
			return err
		}
		b.settle(ctx)
		p, err := b.measureScale(ctx, scaleSamples)
		if err != nil {
			return err
		}
		r.Scale = append(r.Scale, p)
	}
	if err := b.fillTo(tenants); err != nil {
		return err
	}
	if err := b.freshTemporal(); err != nil {
		return err
	}
	b.settle(ctx)
	floorAfter, full1, err := b.interleaved(samples, "floor, concurrency 1, again", b.floor, fmt.Sprintf("onboarding, concurrency 1, after %d tenants", b.tenants()), b.onboard)
	if err != nil {
		return err
	}

	if o.scale > smallScale {
		if err := b.fillTo(o.scale); err != nil {
			return err
		}
		b.settle(ctx)
		p, err := b.measureScale(ctx, scaleSamples)
		if err != nil {
			return err
		}
		r.Scale = append(r.Scale, p)
		small, large := r.Scale[0], r.Scale[1]
		extra = append(extra,
			row{fmt.Sprintf("Process RSS (MiB: API, worker, shipper), %d vs %d tenants", large.Tenants, small.Tenants), large.RSSMiB, small.RSSMiB, ratio(large.RSSMiB, small.RSSMiB), "< 1.5"},
			row{fmt.Sprintf("Go heap in use (MiB), %d vs %d tenants", large.Tenants, small.Tenants), large.HeapMiB, small.HeapMiB, ratio(large.HeapMiB, small.HeapMiB), ""},
			row{fmt.Sprintf("List tenants p50 (ms), %d vs %d tenants", large.Tenants, small.Tenants), large.ListP50, small.ListP50, ratio(large.ListP50, small.ListP50), "< 1.2"},
			row{fmt.Sprintf("Get one tenant p50 (ms), %d vs %d tenants", large.Tenants, small.Tenants), large.GetP50, small.GetP50, ratio(large.GetP50, small.GetP50), "< 1.2"})
	}

	throughput16 := row{fmt.Sprintf("Onboarding throughput (runs/s), concurrency 16 vs floor (median of %d rounds' ratios; %s)", rounds, roundsRange(pairs)),
		onb16.Throughput, floor16.Throughput, medianRatio, "≥ 0.8"}
	r.Rows = []row{
		{"Onboarding p50, concurrency 1, empty platform vs floor", empty1.P50, floor1.P50, ratio(empty1.P50, floor1.P50), "≤ 1.5"},
		{"Onboarding p99, concurrency 1, empty platform vs floor", empty1.P99, floor1.P99, ratio(empty1.P99, floor1.P99), ""},
		{"Onboarding p50, concurrency 16 vs floor", onb16.P50, floor16.P50, ratio(onb16.P50, floor16.P50), "≤ 1.5"},
		{"Onboarding p99, concurrency 16 vs floor", onb16.P99, floor16.P99, ratio(onb16.P99, floor16.P99), ""},
		throughput16,
		{fmt.Sprintf("Onboarding p50, concurrency 1, after %d tenants vs empty (raw: includes the host's own change, next row)", full1.Tenants), full1.P50, empty1.P50, ratio(full1.P50, empty1.P50), ""},
		{"Floor p50, concurrency 1, at the end vs at the start (the host's and dev server's own change)", floorAfter.P50, floor1.P50, ratio(floorAfter.P50, floor1.P50), ""},
		// The after-N figure judged against its target: onboarding over the floor interleaved
		// with it, after N tenants against the same on the empty platform. The floor touches no
		// tenant data, so what remains is what the platform's data costs an onboarding.
		{fmt.Sprintf("Onboarding over floor p50, concurrency 1, after %d tenants vs empty (the host's own change removed)", full1.Tenants),
			ratio(full1.P50, floorAfter.P50), ratio(empty1.P50, floor1.P50), ratio(ratio(full1.P50, floorAfter.P50), ratio(empty1.P50, floor1.P50)), "≤ 1.2"},
	}
	// The CPU split goes right after the throughput row it explains.
	r.Rows = slices.Insert(r.Rows, slices.Index(r.Rows, throughput16)+1, cpuRows(pairs)...)
	r.Rows = append(r.Rows, extra...)
	r.Rows = append(r.Rows, goBenchRows(readGoBench(o.goBench))...)
	r.Phases = []phase{floor1, empty1, suspend, restore, floorSuspend, floorRestore}
	for _, p := range slices.Concat(pairs, apartPairs) {
		r.Phases = append(r.Phases, p.floor, p.onb)
	}
	r.Phases = append(r.Phases, pollerPhases...)
	r.Phases = append(r.Phases, sustainedPhases...)
	r.Phases = append(r.Phases, cellPhases...)
	r.Phases = append(r.Phases, full1, floorAfter)
	if err := writeHistogram(filepath.Join(outDir, "latency.svg"), []phase{floor1, empty1, floor16, onb16, floorAfter, full1}); err != nil {
		return err
	}
	r.Finished = time.Now().UTC()
	return r.write(outDir)
}

// reset empties the bench database, the bench tenants' MongoDB databases and the Redis
// database, so the first measurements run on an empty platform.
func reset(ctx context.Context, cfg config.Config, c *clients.Clients) error {
	owner, err := pgxpool.New(ctx, cfg.MigrateDatabaseURL)
	if err != nil {
		return err
	}
	defer owner.Close()
	rows, err := owner.Query(ctx, `SELECT format('%I.%I', schemaname, tablename) FROM pg_tables
		WHERE schemaname = 'public' AND tablename NOT LIKE 'goose%' AND tablename <> 'cells'`)
	if err != nil {
		return err
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	if _, err := owner.Exec(ctx, `TRUNCATE `+strings.Join(tables, ", ")+` RESTART IDENTITY CASCADE`); err != nil {
		return fmt.Errorf("empty the bench database: %w", err)
	}
	// The cells but the default one (migration 00019's row, which the bench keeps).
	if _, err := owner.Exec(ctx, `DELETE FROM cells WHERE cell_id <> 'default'`); err != nil {
		return fmt.Errorf("empty the bench database: %w", err)
	}
	if err := dropTenantDatabases(ctx, cfg, c); err != nil {
		return err
	}
	return c.Redis.FlushDB(ctx).Err()
}

// dropTenantDatabases drops the bench's MongoDB databases: its tenants' (ids start with "b")
// and its platform audit database.
func dropTenantDatabases(ctx context.Context, cfg config.Config, c *clients.Clients) error {
	names, err := c.Mongo.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		return err
	}
	for _, n := range names {
		if strings.HasPrefix(n, tenantmongo.DatabasePrefix+"b") || n == cfg.AuditPlatformDatabase {
			if err := c.Mongo.Database(n).Drop(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

// phase is one measurement: n runs at a concurrency.
type phase struct {
	Name        string        `json:"name"`
	Runs        int           `json:"runs"`
	Concurrency int           `json:"concurrency"`
	Tenants     int64         `json:"tenantsAfter"`
	P50         float64       `json:"p50Ms"`
	P99         float64       `json:"p99Ms"`
	Max         float64       `json:"maxMs"`
	Throughput  float64       `json:"runsPerSecond"`
	Elapsed     time.Duration `json:"elapsedNs"`
	Latencies   []float64     `json:"latenciesMs"`
	// CPUPerRunMs is the CPU each server process used per run while the phase ran.
	CPUPerRunMs map[string]float64 `json:"cpuPerRunMs,omitempty"`
}

func (b *bench) phase(name string, n, conc int, op func(context.Context) error) (phase, error) {
	say(fmt.Sprintf("%s: %d runs", name, n))
	before, tBefore := sampleCPU(), b.temporalWork()
	p, err := b.measure(n, conc, op)
	p.CPUPerRunMs = perRunMs(before, sampleCPU(), n)
	if tAfter := b.temporalWork(); tBefore != nil && tAfter != nil {
		say("  Temporal, per run: " + tAfter.summary(tBefore, n))
	}
	p.Name, p.Tenants = name, b.tenants()
	if err == nil {
		say(fmt.Sprintf("  p50 %.1f ms, p99 %.1f ms, max %.1f ms, %.2f runs/s", p.P50, p.P99, p.Max, p.Throughput))
	}
	return p, err
}

// measure runs op n times, conc at a time, printing progress, and returns the latencies.
func (b *bench) measure(n, conc int, op func(context.Context) error) (phase, error) {
	lat := make([]float64, n)
	var next, done atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	stopProgress := progress(n, &done)
	for range conc {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
				t0 := time.Now()
				err := op(ctx)
				lat[i] = float64(time.Since(t0).Microseconds()) / 1000
				cancel()
				done.Add(1)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	stopProgress()
	elapsed := time.Since(start)
	sorted := slices.Clone(lat)
	slices.Sort(sorted)
	return phase{Runs: n, Concurrency: conc, P50: quantile(sorted, 0.5), P99: quantile(sorted, 0.99), Max: sorted[len(sorted)-1],
		Throughput: float64(n) / elapsed.Seconds(), Elapsed: elapsed, Latencies: lat}, firstErr
}

// onboard registers and onboards a new tenant through the API and waits for its run to end.
func (b *bench) onboard(ctx context.Context) error {
	_, _, err := b.onboardWithSecret(ctx)
	return err
}

// onboardWithSecret is onboard, returning the tenant's id and the secret the answer carried.
func (b *bench) onboardWithSecret(ctx context.Context) (id, secret string, err error) {
	id = fmt.Sprintf("%st%05d", b.prefix, b.seq.Add(1))
	body := `{"tenantId":"` + id + `","tenantName":"Bench ` + id + `","contactEmail":"ops@` + id + `.test","tenantType":"standard","allowedOrigins":["https://` + id + `.test"]}`
	var started struct {
		WorkflowID, RunID string
		Secret            string `json:"tenantSecret"`
	}
	if err := b.operatorDo(ctx, http.MethodPost, "/api/meta-agent/tenants/onboard", body, http.StatusAccepted, &started); err != nil {
		return "", "", err
	}
	return id, started.Secret, b.temporal.GetWorkflow(ctx, started.WorkflowID, started.RunID).Get(ctx, nil)
}

// operatorDo sends a management API request with the operator token and decodes the answer
// into out (may be nil); an answer other than want is an error.
func (b *bench) operatorDo(ctx context.Context, method, path, body string, want int, out any) error {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, b.url+path, r)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+b.token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	raw, _ := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if res.StatusCode != want {
		return fmt.Errorf("%s %s: %d %s", method, path, res.StatusCode, raw)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(raw, out)
}

// floor starts the floor workflow and waits for it.
func (b *bench) floor(ctx context.Context) error {
	id := fmt.Sprintf("bench-floor:%s%d", b.prefix, time.Now().UnixNano())
	run, err := b.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: b.queue}, floorWorkflow, id)
	if err != nil {
		return err
	}
	return run.Get(ctx, nil)
}

// measureFor runs op at concurrency conc until d has passed (runs started by then finish), and
// returns the latencies. Its throughput is the runs that ended within d, over d: a run now and
// then ends a minute late on the dev server (seen on the floor as on onboarding), and dividing
// by the time until the last run ended let one such run halve a phase's figure.
func (b *bench) measureFor(d time.Duration, conc int, op func(context.Context) error) (phase, error) {
	var (
		mu       sync.Mutex
		lat      []float64
		firstErr error
		wg       sync.WaitGroup
		done     atomic.Int64
		inWindow atomic.Int64
	)
	start := time.Now()
	deadline := start.Add(d)
	stopProgress := progress(-1, &done)
	for range conc {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
				t0 := time.Now()
				err := op(ctx)
				l := float64(time.Since(t0).Microseconds()) / 1000
				cancel()
				done.Add(1)
				if !time.Now().After(deadline) {
					inWindow.Add(1)
				}
				mu.Lock()
				lat = append(lat, l)
				if err != nil && firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	stopProgress()
	elapsed := time.Since(start)
	p := phase{Concurrency: conc, Latencies: lat, Elapsed: elapsed, Throughput: float64(inWindow.Load()) / d.Seconds()}
	p.summarize()
	return p, firstErr
}

func sortFloats(s []float64) { slices.Sort(s) }

func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted)-1) + 0.5)
	return sorted[i]
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// progress prints done/n every two seconds until stopped.
func progress(n int, done *atomic.Int64) func() {
	stop := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if n < 0 {
					fmt.Fprintf(os.Stderr, "  … %d\n", done.Load())
				} else {
					fmt.Fprintf(os.Stderr, "  … %d/%d\n", done.Load(), n)
				}
			}
		}
	}()
	return func() { close(stop); <-finished }
}

func say(s string) { fmt.Fprintln(os.Stderr, "bench: "+s) }
