// Package throttle budgets failed authentication attempts per client address and per tenant
// id, in Redis so that every API process shares the count: a client that keeps presenting
// wrong bearer tokens or wrong signatures is answered 429 until its window ends, wherever its
// requests land.
//
// Fixed windows (INCR with an expiry set on the first failure): simple, one round trip to
// check and one to count, and a client can do at most twice the budget across a window edge,
// which is what a budget for failures needs.
package throttle

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Guard counts failures. Safe for concurrent use; one per process.
type Guard struct {
	client redis.UniversalClient
	// Prefix starts every key ("authfail:" by default; tests use one of their own).
	Prefix string
	// Window is how long failures are counted before the count starts again.
	Window time.Duration
	// PerAddress and PerTenant are the failures allowed in a window; past them, 429.
	PerAddress int64
	PerTenant  int64
}

// New returns a Guard with the defaults: 30 failures a minute per address, 100 per tenant id
// (a tenant's own clients may share an address behind a NAT, and one tenant id must not be
// locked out by a single noisy client any sooner than that).
func New(client redis.UniversalClient) *Guard {
	return &Guard{client: client, Prefix: "authfail:", Window: time.Minute, PerAddress: 30, PerTenant: 100}
}

func (g *Guard) keys(addr, tenantID string) []string {
	keys := []string{g.Prefix + "addr:" + addr}
	if tenantID != "" {
		keys = append(keys, g.Prefix+"tenant:"+tenantID)
	}
	return keys
}

// Blocked reports how long the client must wait when its address or the tenant id it claims
// has spent its budget (0: go on). tenantID may be empty (management API).
func (g *Guard) Blocked(ctx context.Context, addr, tenantID string) (time.Duration, error) {
	keys := g.keys(addr, tenantID)
	limits := []int64{g.PerAddress, g.PerTenant}
	pipe := g.client.Pipeline()
	gets := make([]*redis.StringCmd, len(keys))
	ttls := make([]*redis.DurationCmd, len(keys))
	for i, k := range keys {
		gets[i] = pipe.Get(ctx, k)
		ttls[i] = pipe.PTTL(ctx, k)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return 0, fmt.Errorf("throttle: %w", err)
	}
	var wait time.Duration
	for i := range keys {
		n, err := gets[i].Int64()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("throttle: %w", err)
		}
		if n >= limits[i] {
			wait = max(wait, ttls[i].Val(), time.Second)
		}
	}
	return wait, nil
}

// Fail counts one failed attempt against the address and the tenant id.
func (g *Guard) Fail(ctx context.Context, addr, tenantID string) error {
	pipe := g.client.TxPipeline()
	for _, k := range g.keys(addr, tenantID) {
		pipe.Incr(ctx, k)
		pipe.ExpireNX(ctx, k, g.Window)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("throttle: %w", err)
	}
	return nil
}
