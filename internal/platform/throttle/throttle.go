// Package throttle budgets failed authentication attempts and CORS preflights, in Redis so
// that every API process shares the count.
//
// A failure is counted against the pair it came from: the credential the request claimed (a
// tenant id, or a fingerprint of the bearer token it presented) and the client's address.
// Only that pair is refused (429) once it has spent its budget, so a client that keeps
// presenting wrong credentials under a tenant's id, or wrong bearer tokens, locks out itself
// and not the tenant or the operator whose name it uses: tenant ids are not secret, and an
// address may be shared by an attacker and an operator. The same failures are also counted per
// address and per tenant id alone, against ceilings that only alert (Failure says when one
// is reached): a lock on those would be a lock-out anyone could aim.
//
// Fixed windows (INCR with an expiry set on the first failure): simple, one round trip to
// check and one to count, and a client can do at most twice the budget across a window edge,
// which is what a budget for failures needs.
package throttle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Guard counts failures and preflights. Safe for concurrent use; one per process.
type Guard struct {
	client redis.UniversalClient
	// Prefix starts every key ("authfail:" by default; tests use one of their own).
	Prefix string
	// Window is how long failures and preflights are counted before the count starts again.
	Window time.Duration
	// PerPair is the failures one claim may have from one address in a window; past them,
	// that pair is answered 429 until the window ends.
	PerPair int64
	// AlertPerAddress and AlertPerTenant are the ceilings of failures in a window from one
	// address (whatever it claims) and under one tenant id (from any address). Reaching one
	// is reported (Failure); nothing is refused for it.
	AlertPerAddress int64
	AlertPerTenant  int64
	// PreflightsPerAddress is the CORS preflights one address may send in a window, and
	// RefusedPreflightsPerAddress those of them refused for their origin; past either, the
	// address's preflights are answered 429. A preflight is unauthenticated and says whether
	// some tenant allows an origin, so guessing origins is held to the second, tighter budget.
	PreflightsPerAddress        int64
	RefusedPreflightsPerAddress int64
}

// New returns a Guard with the defaults, per minute: 30 failures per pair (a misconfigured
// client is told soon, and guessing is slow); alerts at 100 failures from one address or under
// one tenant id (a tenant's own clients may share an address behind a NAT, and some failures
// are normal: clocks drift, secrets rotate); 300 preflights per address, 30 of them refused (a
// browser preflights each URL and method once per Access-Control-Max-Age, 600 s, so even many
// users behind one NAT send far fewer, and an allowed origin is seldom refused).
func New(client redis.UniversalClient) *Guard {
	return &Guard{client: client, Prefix: "authfail:", Window: time.Minute,
		PerPair: 30, AlertPerAddress: 100, AlertPerTenant: 100,
		PreflightsPerAddress: 300, RefusedPreflightsPerAddress: 30}
}

// Claim is the credential a request claims to hold, as the budget knows it: a tenant id, or a
// fingerprint of a bearer token. The zero Claim is a request that claimed nothing usable.
type Claim struct {
	tenant string
	token  string
}

// TenantClaim is a signed request's claimed tenant id ("" when it sent none, or a malformed one).
func TenantClaim(id string) Claim { return Claim{tenant: id} }

// TokenClaim is a bearer token as the budget knows it: 8 bytes of SHA-256 over the token under
// a label of this package's own, so the Redis key neither carries the token nor matches the
// operators' stored hashes (SHA-256 of the token alone); the same in every process, so every
// process counts the same pair. An empty token is the zero Claim.
func TokenClaim(token string) Claim {
	if token == "" {
		return Claim{}
	}
	sum := sha256.Sum256([]byte("misybot/throttle/token\x00" + token))
	return Claim{token: hex.EncodeToString(sum[:8])}
}

// Tenant is the claimed tenant id ("" for bearer tokens and empty claims).
func (c Claim) Tenant() string { return c.tenant }

func (c Claim) key() string {
	switch {
	case c.tenant != "":
		return "tenant=" + c.tenant
	case c.token != "":
		return "token=" + c.token
	}
	return "none"
}

func (g *Guard) pairKey(addr string, c Claim) string {
	return g.Prefix + "pair:" + c.key() + "|" + addr
}

// Blocked reports how long the client must wait when the pair (claim, address) has spent its
// budget (0: go on). Failures under the same claim from other addresses, and from the same
// address under other claims, never block it.
func (g *Guard) Blocked(ctx context.Context, addr string, c Claim) (time.Duration, error) {
	return g.over(ctx, g.pairKey(addr, c), g.PerPair)
}

// over reports how long until key's window ends when its count has reached limit (0: not).
func (g *Guard) over(ctx context.Context, key string, limit int64) (time.Duration, error) {
	pipe := g.client.Pipeline()
	get := pipe.Get(ctx, key)
	ttl := pipe.PTTL(ctx, key)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return 0, fmt.Errorf("throttle: %w", err)
	}
	n, err := get.Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("throttle: %w", err)
	}
	if n < limit {
		return 0, nil
	}
	return max(ttl.Val(), time.Second), nil
}

// Failure says what one counted failure reached. Each field is true on the one failure that
// reached its limit, once per window, so an alert fires once rather than on every failure.
type Failure struct {
	// PairLocked: the pair has spent its budget and is refused until its window ends.
	PairLocked bool
	// AddressCeiling and TenantCeiling: the address, or the tenant id, reached its ceiling.
	AddressCeiling bool
	TenantCeiling  bool
	// Address and Tenant are the window's counts so far, for the alert.
	Address, Tenant int64
}

// Fail counts one failed attempt against the pair (claim, address) and against the address's
// and the claimed tenant id's ceilings.
func (g *Guard) Fail(ctx context.Context, addr string, c Claim) (Failure, error) {
	keys := []string{g.pairKey(addr, c), g.Prefix + "addr:" + addr}
	if c.tenant != "" {
		keys = append(keys, g.Prefix+"tenant:"+c.tenant)
	}
	counts, err := g.incr(ctx, keys...)
	if err != nil {
		return Failure{}, err
	}
	f := Failure{PairLocked: counts[0] == g.PerPair, Address: counts[1], AddressCeiling: counts[1] == g.AlertPerAddress}
	if len(counts) > 2 {
		f.Tenant, f.TenantCeiling = counts[2], counts[2] == g.AlertPerTenant
	}
	return f, nil
}

// incr adds one to each key, starting its window on the first, and returns the new counts.
func (g *Guard) incr(ctx context.Context, keys ...string) ([]int64, error) {
	pipe := g.client.TxPipeline()
	incrs := make([]*redis.IntCmd, len(keys))
	for i, k := range keys {
		incrs[i] = pipe.Incr(ctx, k)
		pipe.ExpireNX(ctx, k, g.Window)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("throttle: %w", err)
	}
	counts := make([]int64, len(keys))
	for i, cmd := range incrs {
		counts[i] = cmd.Val()
	}
	return counts, nil
}

// Preflight counts one CORS preflight from addr and reports how long the address must wait
// (0: answer it): past PreflightsPerAddress preflights, or RefusedPreflightsPerAddress refused
// ones, in the window. locked is true on the one preflight that went past the first budget,
// once per window, for an alert (PreflightRefused reports the second).
func (g *Guard) Preflight(ctx context.Context, addr string) (wait time.Duration, locked bool, err error) {
	all, refused := g.Prefix+"preflight:"+addr, g.Prefix+"preflight-refused:"+addr
	pipe := g.client.TxPipeline() // one round trip: count this one, read both budgets
	incr := pipe.Incr(ctx, all)
	pipe.ExpireNX(ctx, all, g.Window)
	allTTL := pipe.PTTL(ctx, all)
	get := pipe.Get(ctx, refused)
	refusedTTL := pipe.PTTL(ctx, refused)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return 0, false, fmt.Errorf("throttle: %w", err)
	}
	if n := incr.Val(); n > g.PreflightsPerAddress {
		wait = max(allTTL.Val(), time.Second)
		locked = n == g.PreflightsPerAddress+1
	}
	n, err := get.Int64()
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, false, fmt.Errorf("throttle: %w", err)
	}
	if err == nil && n >= g.RefusedPreflightsPerAddress {
		wait = max(wait, refusedTTL.Val(), time.Second)
	}
	return wait, locked, nil
}

// PreflightRefused counts a preflight refused for its origin; locked is true on the one that
// spent the address's budget of refused preflights.
func (g *Guard) PreflightRefused(ctx context.Context, addr string) (locked bool, err error) {
	counts, err := g.incr(ctx, g.Prefix+"preflight-refused:"+addr)
	if err != nil {
		return false, err
	}
	return counts[0] == g.RefusedPreflightsPerAddress, nil
}
