// Package seed fills a platform with many tenants, so that benchmarks can run at 1,000 and
// 10,000 tenants: each is onboarded through the API and the real workflows, at a chosen
// concurrency, then given settings, conversations (with messages) and Redis keys of its own.
//
// Seeding is idempotent and resumable: tenant ids are deterministic (<prefix>-00001, …), a
// tenant already active is not onboarded again, one whose run is still going (an earlier seed
// was interrupted) is waited for, and filling is skipped once the tenant carries the seed's
// marker setting, which is written last. Every fill write is itself an upsert or topped up to a
// count, so an interrupted fill finishes without duplicates.
package seed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/misybot/tenancy/internal/domain/conversations"
	"github.com/misybot/tenancy/internal/domain/registry"
	"github.com/misybot/tenancy/internal/keys/keyring"
	"github.com/misybot/tenancy/internal/keys/seal"
	"github.com/misybot/tenancy/internal/model/limits"
	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/platform/clients"
	"github.com/misybot/tenancy/internal/stores/tenantdb"
	"github.com/misybot/tenancy/internal/stores/tenantredis"
)

// MarkerKey is the setting whose presence says a tenant is fully seeded.
const MarkerKey = "seed.filled"

// Options say how many tenants and how much data each.
type Options struct {
	Tenants     int
	Concurrency int
	// Prefix starts every tenant id (<prefix>-00001); ids must stay valid tenant ids.
	Prefix string
	// Per tenant: settings, conversations, messages per conversation, Redis keys.
	Settings, Conversations, Messages, RedisKeys int
}

// Deps are what seeding talks to: the API (onboarding goes through it, as an operator's would),
// Temporal (to wait for each run) and the stores (to read statuses and fill).
type Deps struct {
	APIURL        string
	Token         string
	HTTP          *http.Client
	Temporal      client.Client
	Registry      *registry.Registry
	Settings      *tenantdb.Store
	Conversations *conversations.Store
	Redis         *tenantredis.Store
	// Progress receives a line every few seconds (nil: none).
	Progress io.Writer
}

// DepsOver builds Deps over a process's shared clients: the API at apiURL (operator token
// token), Temporal, and the stores, with progress lines on progress (nil: none).
func DepsOver(c *clients.Clients, sealer *seal.Sealer, apiURL, token string, progress io.Writer) Deps {
	cells := c.Cells(sealer, nil)
	redis := cells.TenantRedis()
	return Deps{
		APIURL: apiURL, Token: token, HTTP: &http.Client{Timeout: time.Minute}, Temporal: c.Temporal,
		Registry: registry.New(c.Postgres), Settings: cells.TenantDB(),
		Conversations: conversations.New(cells.TenantMongo(), keyring.New(c.Postgres, sealer), redis, cells.TenantDB(), limits.Default()),
		Redis:         redis, Progress: progress,
	}
}

// Stats count what a seed did.
type Stats struct {
	Onboarded, AlreadyActive, Filled, AlreadyFilled int64
	Elapsed                                         time.Duration
}

// ID is the id of the i-th seeded tenant (from 1).
func ID(prefix string, i int) string { return fmt.Sprintf("%s-%05d", prefix, i) }

// Run seeds opts.Tenants tenants, opts.Concurrency at a time, and stops at the first error.
func Run(ctx context.Context, d Deps, opts Options) (Stats, error) {
	start := time.Now()
	var st Stats
	var next, done atomic.Int64
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := progress(d.Progress, opts.Tenants, &done)
	var wg sync.WaitGroup
	for range max(opts.Concurrency, 1) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1))
				if i > opts.Tenants {
					return
				}
				if err := one(ctx, d, opts, ID(opts.Prefix, i), &st); err != nil {
					cancel(err)
					return
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	stop()
	st.Elapsed = time.Since(start)
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return st, err
	}
	return st, ctx.Err()
}

func one(ctx context.Context, d Deps, opts Options, id string, st *Stats) error {
	t, err := d.Registry.Get(ctx, id)
	switch {
	case err == nil && t.Status == tenant.StatusActive:
		atomic.AddInt64(&st.AlreadyActive, 1)
	case err == nil || errors.Is(err, registry.ErrNotFound):
		if err := onboard(ctx, d, id); err != nil {
			return fmt.Errorf("seed: onboard %s: %w", id, err)
		}
		atomic.AddInt64(&st.Onboarded, 1)
	default:
		return fmt.Errorf("seed: read %s: %w", id, err)
	}
	filled, err := fill(tenant.WithID(ctx, id), d, opts)
	if err != nil {
		return fmt.Errorf("seed: fill %s: %w", id, err)
	}
	if filled {
		atomic.AddInt64(&st.Filled, 1)
	} else {
		atomic.AddInt64(&st.AlreadyFilled, 1)
	}
	return nil
}

// onboard registers (when new) and onboards the tenant through the API, then waits for the
// run. A run already going (an interrupted seed) is answered with that run, which is waited
// for; a tenant that failed is onboarded again.
func onboard(ctx context.Context, d Deps, id string) error {
	body := `{"tenantId":"` + id + `","tenantName":"Seed ` + id + `","contactEmail":"ops@` + id + `.test","tenantType":"standard","allowedOrigins":["https://` + id + `.test"]}`
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.APIURL+"/api/meta-agent/tenants/onboard", strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+d.Token)
	req.Header.Set("Content-Type", "application/json")
	res, err := d.HTTP.Do(req)
	if err != nil {
		return err
	}
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusAccepted {
		return fmt.Errorf("%d %s", res.StatusCode, raw)
	}
	var run struct{ WorkflowID, RunID string }
	if err := json.Unmarshal(raw, &run); err != nil {
		return err
	}
	return d.Temporal.GetWorkflow(ctx, run.WorkflowID, run.RunID).Get(ctx, nil)
}

// fill gives the context tenant its data unless the marker says it has it; it reports whether
// it wrote anything.
func fill(ctx context.Context, d Deps, opts Options) (bool, error) {
	if _, err := d.Settings.Setting(ctx, MarkerKey); err == nil {
		return false, nil
	} else if !errors.Is(err, tenantdb.ErrNotFound) {
		return false, err
	}
	for j := 1; j <= opts.Settings; j++ {
		v, _ := json.Marshal(map[string]any{"n": j, "label": "seeded setting " + strconv.Itoa(j)})
		if _, err := d.Settings.PutSetting(ctx, fmt.Sprintf("seed.s%03d", j), v, limits.Default()); err != nil {
			return false, err
		}
	}
	have, _, err := d.Conversations.List(ctx, nil, int64(opts.Conversations))
	if err != nil {
		return false, err
	}
	for j := len(have); j < opts.Conversations; j++ {
		c, err := d.Conversations.Create(ctx, fmt.Sprintf("seeded conversation %d", j+1))
		if err != nil {
			return false, err
		}
		for k := range opts.Messages {
			role := "user"
			if k%2 == 1 {
				role = "assistant"
			}
			if _, err := d.Conversations.AddMessage(ctx, c.ID, role, fmt.Sprintf("seeded message %d of conversation %d", k+1, j+1)); err != nil {
				return false, err
			}
		}
	}
	scope, err := d.Redis.Scope(ctx)
	if err != nil {
		return false, err
	}
	for j := 1; j <= opts.RedisKeys; j++ {
		if err := scope.Set(ctx, "seed", "k"+strconv.Itoa(j), "seeded value "+strconv.Itoa(j), 0); err != nil {
			return false, err
		}
	}
	_, err = d.Settings.PutSetting(ctx, MarkerKey, json.RawMessage(`true`), limits.Default())
	return err == nil, err
}

// progress writes done/n every five seconds until stopped.
func progress(w io.Writer, n int, done *atomic.Int64) func() {
	if w == nil {
		return func() {}
	}
	stop, finished := make(chan struct{}), make(chan struct{})
	start := time.Now()
	go func() {
		defer close(finished)
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				d := done.Load()
				fmt.Fprintf(w, "seed: %d/%d tenants (%.1f/s)\n", d, n, float64(d)/time.Since(start).Seconds())
			}
		}
	}()
	return func() { close(stop); <-finished }
}
