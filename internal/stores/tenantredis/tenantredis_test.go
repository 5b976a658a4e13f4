package tenantredis_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/stores/tenantredis"
	"github.com/misybot/tenancy/internal/testkit/testenv"
)

// setup returns a store over a fresh client and a tenant id A with its sibling B = A+"2"
// (A's id is a prefix of B's, the case a careless pattern gets wrong). Their keys are purged
// when the test ends.
func setup(t *testing.T, prefix string) (*tenantredis.Store, *redis.Client, string, string) {
	t.Helper()
	rc := testenv.RedisClient(t)
	store := tenantredis.New(rc)
	a := testenv.TenantID(prefix)
	b := a + "2"
	t.Cleanup(func() {
		for _, id := range []string{a, b} {
			keys, _ := scanAll(rc, "tenant:{"+id+"}:*")
			for chunk := range slices.Chunk(keys, 1000) {
				rc.Unlink(context.Background(), chunk...)
			}
		}
	})
	return store, rc, a, b
}

func ctxOf(id string) context.Context { return tenant.WithID(context.Background(), id) }

func scope(t *testing.T, store *tenantredis.Store, id string) *tenantredis.Scope {
	t.Helper()
	sc, err := store.Scope(ctxOf(id))
	require.NoError(t, err)
	return sc
}

// scanAll lists keys matching a pattern with a plain SCAN, independent of the code under test.
func scanAll(rc *redis.Client, match string) ([]string, error) {
	var out []string
	iter := rc.Scan(context.Background(), 0, match, 1000).Iterator()
	for iter.Next(context.Background()) {
		out = append(out, iter.Val())
	}
	slices.Sort(out)
	// SCAN may return a key twice (when the table is resized during the walk).
	return slices.Compact(out), iter.Err()
}

func keysOf(t *testing.T, rc *redis.Client, id string) []string {
	t.Helper()
	keys, err := scanAll(rc, "tenant:{"+id+"}:*")
	require.NoError(t, err)
	return keys
}

// fill writes n keys tenant:{id}:item:<i> = id with pipelined MSETs of 10,000 keys each.
func fill(tb testing.TB, rc *redis.Client, id string, from, n int) {
	tb.Helper()
	const chunk = 10_000
	ctx := context.Background()
	for start := from; start < from+n; start += chunk * 10 {
		_, err := rc.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			for c := start; c < min(start+chunk*10, from+n); c += chunk {
				pairs := make([]any, 0, 2*chunk)
				for i := c; i < min(c+chunk, from+n); i++ {
					pairs = append(pairs, tenantredis.Key(id, "item", fmt.Sprint(i)), id)
				}
				pipe.MSet(ctx, pairs...)
			}
			return nil
		})
		require.NoError(tb, err)
	}
}

func TestKeyAndPrefix(t *testing.T) {
	t.Parallel()
	require.Equal(t, "tenant:{acme}:session:a:b", tenantredis.Key("acme", "session", "a", "b"))
	require.Equal(t, "tenant:{acme}:session", tenantredis.Key("acme", "session"))
	p, err := tenantredis.Prefix("acme")
	require.NoError(t, err)
	require.Equal(t, "tenant:{acme}:", p)
	require.True(t, strings.HasPrefix(tenantredis.Key("acme", "x", "y"), p))

	for _, bad := range []string{"", "ab", "Acme", "acme*", "acme?", "acme[a]", "ac{me", "ac}me", `ac\me`, "acme:x", "acme-"} {
		_, err := tenantredis.Prefix(bad)
		require.ErrorIs(t, err, tenant.ErrInvalidID, "%q", bad)
	}
}

// '{' and '}' are not glob characters in Redis MATCH: the pattern tenant:{acme}:* matches keys
// with literal braces around exactly acme, not tenant:acme:… (which brace alternation would
// give) nor tenant:{acme2}:…
func TestMatchTreatsBracesLiterally(t *testing.T) {
	t.Parallel()
	store, rc, a, b := setup(t, "brace")
	ctx := context.Background()
	literal := "tenant:{" + a + "}:k:1"
	unbraced := "tenant:" + a + ":k:1"
	sibling := "tenant:{" + b + "}:k:1"
	t.Cleanup(func() { rc.Del(context.Background(), unbraced) })
	for _, k := range []string{literal, unbraced, sibling} {
		require.NoError(t, rc.Set(ctx, k, "v", time.Hour).Err())
	}
	p, err := tenantredis.Prefix(a)
	require.NoError(t, err)
	got, err := scanAll(rc, p+"*")
	require.NoError(t, err)
	require.Equal(t, []string{literal}, got)

	// And the purge, which uses that pattern, deletes exactly that key.
	prog, err := store.Purge(ctxOf(a), tenantredis.PurgeProgress{}, 0, nil)
	require.NoError(t, err)
	require.EqualValues(t, 1, prog.Deleted)
	n, err := rc.Exists(ctx, literal, unbraced, sibling).Result()
	require.NoError(t, err)
	require.EqualValues(t, 2, n)
}

func TestScopeReadsAndWritesItsOwnKeys(t *testing.T) {
	t.Parallel()
	store, rc, a, _ := setup(t, "scope")
	ctx := context.Background()
	sc := scope(t, store, a)

	_, err := sc.Get(ctx, "cache", "x")
	require.ErrorIs(t, err, tenantredis.ErrNotFound)
	require.NoError(t, sc.Set(ctx, "cache", "x", "1", time.Minute))
	v, err := sc.Get(ctx, "cache", "x")
	require.NoError(t, err)
	require.Equal(t, "1", v)
	ttl, err := rc.TTL(ctx, "tenant:{"+a+"}:cache:x").Result()
	require.NoError(t, err)
	require.Greater(t, ttl, 50*time.Second)
	require.Equal(t, "tenant:{"+a+"}:cache:x", sc.Key("cache", "x"))

	ok, err := sc.SetNX(ctx, "lock", "job", "first", time.Minute)
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = sc.SetNX(ctx, "lock", "job", "second", time.Minute)
	require.NoError(t, err)
	require.False(t, ok)
	v, err = sc.Get(ctx, "lock", "job")
	require.NoError(t, err)
	require.Equal(t, "first", v)

	require.NoError(t, sc.Del(ctx, "cache", "x"))
	require.NoError(t, sc.Del(ctx, "cache", "x")) // already gone: still success
	_, err = sc.Get(ctx, "cache", "x")
	require.ErrorIs(t, err, tenantredis.ErrNotFound)

	require.Error(t, sc.Set(ctx, "cache", "x", "1", -time.Second))
	_, err = sc.Get(ctx, "cache", "x")
	require.ErrorIs(t, err, tenantredis.ErrNotFound)
}

// A's Scope cannot read, overwrite or delete a key of B, whatever kind and name it is given,
// B's id extending A's. Kinds that could alias (':'), carry a hash tag or a glob, or hit the
// reserved context record are refused; names are free-form and stay inside A's namespace.
func TestScopeCannotReachAnotherTenant(t *testing.T) {
	t.Parallel()
	store, rc, a, b := setup(t, "reach")
	ctx := context.Background()
	scA, scB := scope(t, store, a), scope(t, store, b)

	names := []string{
		"x", "*", "?", "[x]", "}", "{", "}:cache:x", "2}:cache:x", "{" + b + "}:cache:x",
		"x:y", `\x`, "../x", "tenant:{" + b + "}:cache:x", "x\x00y", "\n",
	}
	for _, n := range names {
		require.NoError(t, scB.Set(ctx, "cache", n, "secret-of-b", 0))
	}
	require.NoError(t, store.WriteContext(ctxOf(b), tenantredis.ContextRecord{Status: "active", Type: "trial"}))
	bKeys := keysOf(t, rc, b)
	require.Len(t, bKeys, len(names)+2, "the keys, the record and the index")

	for _, n := range names {
		_, err := scA.Get(ctx, "cache", n)
		require.ErrorIs(t, err, tenantredis.ErrNotFound, "name %q", n)
		require.NoError(t, scA.Del(ctx, "cache", n))
		require.NoError(t, scA.Set(ctx, "cache", n, "written-by-a", 0))
		require.True(t, strings.HasPrefix(scA.Key("cache", n), "tenant:{"+a+"}:cache:"))
	}
	for _, kind := range []string{"", "Cache", "ca:che", "cache}", "{cache", "ca*", "ca?", "ca[", "ca]", `ca\`, "ca-che", "context", strings.Repeat("k", tenantredis.MaxKindLen+1)} {
		_, err := scA.Get(ctx, kind, "x")
		require.ErrorIs(t, err, tenantredis.ErrInvalidKey, "kind %q", kind)
		require.ErrorIs(t, scA.Set(ctx, kind, "x", "v", 0), tenantredis.ErrInvalidKey, "kind %q", kind)
		_, err = scA.SetNX(ctx, kind, "x", "v", 0)
		require.ErrorIs(t, err, tenantredis.ErrInvalidKey, "kind %q", kind)
		require.ErrorIs(t, scA.Del(ctx, kind, "x"), tenantredis.ErrInvalidKey, "kind %q", kind)
	}
	for _, name := range []string{"", strings.Repeat("n", tenantredis.MaxNameLen+1)} {
		require.ErrorIs(t, scA.Set(ctx, "cache", name, "v", 0), tenantredis.ErrInvalidKey)
	}

	// B is untouched: the same keys, every value still B's.
	require.Equal(t, bKeys, keysOf(t, rc, b))
	for _, n := range names {
		v, err := scB.Get(ctx, "cache", n)
		require.NoError(t, err)
		require.Equal(t, "secret-of-b", v, "name %q", n)
	}
	require.Len(t, keysOf(t, rc, a), len(names)+1, "the keys and the index")
}

func TestContextRecord(t *testing.T) {
	t.Parallel()
	store, rc, a, b := setup(t, "ctxrec")
	ctx, key := ctxOf(a), "tenant:{"+a+"}:context:record"

	_, err := store.ReadContext(ctx)
	require.ErrorIs(t, err, tenantredis.ErrNotFound)
	// No record: SetStatus refuses and writes nothing (no half record).
	_, err = store.SetStatus(ctx, "suspended", 1)
	require.ErrorIs(t, err, tenantredis.ErrNotFound)
	n, err := rc.Exists(ctx, key).Result()
	require.NoError(t, err)
	require.Zero(t, n)

	rec := tenantredis.ContextRecord{
		Status: "active", Type: "standard",
		Permissions:    []string{"settings:read", "conversations:write"},
		AllowedOrigins: []string{"https://acme.test"},
		UpdatedAt:      time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC),
	}
	require.NoError(t, store.WriteContext(ctx, rec))
	require.NoError(t, store.WriteContext(ctx, rec)) // retried: same record
	got, err := store.ReadContext(ctx)
	require.NoError(t, err)
	require.Equal(t, rec, got)

	// Overwrite replaces the whole record.
	rec2 := tenantredis.ContextRecord{Status: "onboarding", Type: "trial", Permissions: []string{}, AllowedOrigins: []string{}, UpdatedAt: rec.UpdatedAt.Add(time.Hour)}
	require.NoError(t, store.WriteContext(ctx, rec2))
	got, err = store.ReadContext(ctx)
	require.NoError(t, err)
	require.Equal(t, rec2, got)

	// SetStatus flips the status, keeps the rest, moves updatedAt.
	wrote, err := store.SetStatus(ctx, "suspended", 20)
	require.NoError(t, err)
	require.True(t, wrote)
	got, err = store.ReadContext(ctx)
	require.NoError(t, err)
	require.Equal(t, "suspended", got.Status)
	require.EqualValues(t, 20, got.StatusVersion)
	require.Equal(t, rec2.Type, got.Type)
	require.Equal(t, rec2.Permissions, got.Permissions)
	require.True(t, got.UpdatedAt.After(rec2.UpdatedAt))

	// A stale status (an older version) loses; the same version is a retry and writes.
	wrote, err = store.SetStatus(ctx, "active", 19)
	require.NoError(t, err)
	require.False(t, wrote)
	got, err = store.ReadContext(ctx)
	require.NoError(t, err)
	require.Equal(t, "suspended", got.Status, "a stale writer cannot revive the tenant")
	wrote, err = store.SetStatus(ctx, "suspended", 20)
	require.NoError(t, err)
	require.True(t, wrote)

	// A profile update changes type, permissions and origins, never the status.
	ok, err := store.UpdateProfile(ctx, "enterprise", []string{"audit:read"}, []string{"https://b.test"})
	require.NoError(t, err)
	require.True(t, ok)
	got, err = store.ReadContext(ctx)
	require.NoError(t, err)
	require.Equal(t, "suspended", got.Status)
	require.Equal(t, "enterprise", got.Type)
	require.Equal(t, []string{"audit:read"}, got.Permissions)
	require.Equal(t, []string{"https://b.test"}, got.AllowedOrigins)
	ok, err = store.UpdateProfile(ctxOf(b), "trial", nil, nil)
	require.NoError(t, err)
	require.False(t, ok, "no record, nothing written")
	n, err = rc.Exists(ctx, "tenant:{"+b+"}:context:record").Result()
	require.NoError(t, err)
	require.Zero(t, n)

	// Unknown values are refused and change nothing.
	_, err = store.SetStatus(ctx, "bogus", 30)
	require.Error(t, err)
	require.Error(t, store.WriteContext(ctx, tenantredis.ContextRecord{Status: "bogus", Type: "trial"}))
	require.Error(t, store.WriteContext(ctx, tenantredis.ContextRecord{Status: "active", Type: "bogus"}))
	again, err := store.ReadContext(ctx)
	require.NoError(t, err)
	require.Equal(t, got, again)

	// B (whose id extends A's) has no record.
	_, err = store.ReadContext(ctxOf(b))
	require.ErrorIs(t, err, tenantredis.ErrNotFound)
}

func TestRevokeSessionsDeletesOnlyThatTenantsSessions(t *testing.T) {
	t.Parallel()
	for _, indexed := range []bool{true, false} {
		t.Run(fmt.Sprint("indexed=", indexed), func(t *testing.T) {
			t.Parallel()
			store, rc, a, b := setup(t, "revoke")
			ctx := context.Background()
			rec := &scanCursors{}
			rc.AddHook(rec)
			scA, scB := scope(t, store, a), scope(t, store, b)
			require.NoError(t, store.WriteContext(ctxOf(a), tenantredis.ContextRecord{Status: "active", Type: "trial"}))
			for i := range 3 {
				require.NoError(t, scA.Set(ctx, tenantredis.KindSession, fmt.Sprint("h", i), "u", time.Hour))
			}
			require.NoError(t, scA.Set(ctx, "sessions", "not-a-session", "v", time.Hour))
			require.NoError(t, scA.Set(ctx, "cache", "x", "v", time.Hour))
			for i := range 2 {
				require.NoError(t, scB.Set(ctx, tenantredis.KindSession, fmt.Sprint("h", i), "u", time.Hour))
			}
			if !indexed {
				unindex(t, rc, a)
				// A session written before the index existed: only SCAN finds it.
				require.NoError(t, rc.Set(ctx, tenantredis.Key(a, tenantredis.KindSession, "old"), "u", time.Hour).Err())
			}
			rec.take()

			n, err := store.RevokeSessions(ctxOf(a), nil)
			require.NoError(t, err)
			require.EqualValues(t, 3+map[bool]int{true: 0, false: 1}[indexed], n)
			want := []string{"tenant:{" + a + "}:cache:x", "tenant:{" + a + "}:context:record", "tenant:{" + a + "}:sessions:not-a-session"}
			if indexed {
				require.Empty(t, rec.take(), "an indexed tenant's sessions are found without SCAN")
				want = append([]string{"tenant:{" + a + "}:_keys"}, want...)
				entries, err := rc.ZRange(ctx, "tenant:{"+a+"}:_keys", 0, -1).Result()
				require.NoError(t, err)
				slices.Sort(entries)
				require.Equal(t, []string{"cache:x", "sessions:not-a-session"}, entries, "the sessions' entries went with them")
			}
			require.Equal(t, want, keysOf(t, rc, a))
			require.Len(t, keysOf(t, rc, b), 3, "b's sessions and index")

			n, err = store.RevokeSessions(ctxOf(a), nil)
			require.NoError(t, err)
			require.Zero(t, n)
		})
	}
}

// unindex makes id a tenant from before the index: its record loses the keysIndexed mark and
// its index is gone, so only SCAN finds its keys.
func unindex(t *testing.T, rc *redis.Client, id string) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, rc.HDel(ctx, tenantredis.Key(id, "context", "record"), "keysIndexed").Err())
	require.NoError(t, rc.Del(ctx, tenantredis.Key(id, "_keys")).Err())
}

// indexScore is the score of kind:name in id's index (ok false when absent).
func indexScore(t *testing.T, rc *redis.Client, id, member string) (float64, bool) {
	t.Helper()
	v, err := rc.ZScore(context.Background(), tenantredis.Key(id, "_keys"), member).Result()
	if errors.Is(err, redis.Nil) {
		return 0, false
	}
	require.NoError(t, err)
	return v, true
}

// Scope writes keep the index: every key written is an entry (its score the key's expiry plus
// a margin, +inf without TTL), Del removes it, a SET NX that did not write never moves an entry
// earlier, and entries whose time has passed are pruned by the next write.
func TestScopeWritesKeepTheIndex(t *testing.T) {
	t.Parallel()
	store, rc, a, _ := setup(t, "index")
	ctx := context.Background()
	sc := scope(t, store, a)

	require.NoError(t, sc.Set(ctx, "cache", "forever", "v", 0))
	require.NoError(t, sc.Set(ctx, "cache", "brief", "v", time.Minute))
	score, ok := indexScore(t, rc, a, "cache:forever")
	require.True(t, ok)
	require.True(t, math.IsInf(score, 1))
	score, ok = indexScore(t, rc, a, "cache:brief")
	require.True(t, ok)
	require.InDelta(t, float64(time.Now().Add(6*time.Minute).UnixMilli()), score, float64(10*time.Second/time.Millisecond))
	ttl, err := rc.PTTL(ctx, "tenant:{"+a+"}:_keys").Result()
	require.NoError(t, err)
	require.Equal(t, time.Duration(-1), ttl, "the index has no TTL")

	ok, err = sc.SetNX(ctx, "cache", "forever", "w", time.Minute) // not written: stays +inf
	require.NoError(t, err)
	require.False(t, ok)
	score, _ = indexScore(t, rc, a, "cache:forever")
	require.True(t, math.IsInf(score, 1))
	ok, err = sc.SetNX(ctx, "lock", "l", "1", time.Minute)
	require.NoError(t, err)
	require.True(t, ok)
	_, ok = indexScore(t, rc, a, "lock:l")
	require.True(t, ok)

	require.NoError(t, sc.Del(ctx, "cache", "brief"))
	_, ok = indexScore(t, rc, a, "cache:brief")
	require.False(t, ok)

	// An entry past its time (a key long expired) goes with the next write.
	require.NoError(t, rc.ZAdd(ctx, "tenant:{"+a+"}:_keys", redis.Z{Score: float64(time.Now().Add(-time.Second).UnixMilli()), Member: "cache:expired"}).Err())
	require.NoError(t, sc.Set(ctx, "cache", "other", "v", 0))
	_, ok = indexScore(t, rc, a, "cache:expired")
	require.False(t, ok)
}

// The keysIndexed mark is set by the first record write only: a tenant whose record predates
// the index keeps no mark whatever is written later, so its keys are still found by SCAN.
func TestWriteContextMarksOnlyNewTenants(t *testing.T) {
	t.Parallel()
	store, rc, a, b := setup(t, "mark")
	ctx := context.Background()
	marked := func(id string) bool {
		ok, err := rc.HExists(ctx, tenantredis.Key(id, "context", "record"), "keysIndexed").Result()
		require.NoError(t, err)
		return ok
	}
	rec := tenantredis.ContextRecord{Status: "active", Type: "trial"}
	require.NoError(t, store.WriteContext(ctxOf(a), rec))
	require.True(t, marked(a))
	require.NoError(t, store.WriteContext(ctxOf(a), rec))
	_, err := store.SetStatus(ctxOf(a), "suspended", 1)
	require.NoError(t, err)
	require.True(t, marked(a), "kept by later writes")

	require.NoError(t, rc.HSet(ctx, tenantredis.Key(b, "context", "record"), "status", "active").Err()) // an old record
	require.NoError(t, store.WriteContext(ctxOf(b), rec))
	require.False(t, marked(b))
	_, err = store.RepairContext(ctxOf(b), rec)
	require.NoError(t, err)
	require.False(t, marked(b))
}

// An indexed tenant's purge deletes every key written through the store (with and without
// TTL, SET NX included), the record and the index, without a single SCAN, and leaves the
// sibling tenant (whose id extends the victim's) alone.
func TestPurgeOfAnIndexedTenantWalksTheIndex(t *testing.T) {
	t.Parallel()
	store, rc, a, b := setup(t, "ipurge")
	ctx := context.Background()
	rec := &scanCursors{}
	rc.AddHook(rec)
	for _, id := range []string{a, b} {
		require.NoError(t, store.WriteContext(ctxOf(id), tenantredis.ContextRecord{Status: "active", Type: "trial"}))
		sc := scope(t, store, id)
		for i := range 300 {
			require.NoError(t, sc.Set(ctx, "item", fmt.Sprint(i), id, time.Duration(i%2)*time.Hour))
		}
		_, err := sc.SetNX(ctx, "nonce", "n", "1", time.Minute)
		require.NoError(t, err)
		require.NoError(t, sc.Set(ctx, tenantredis.KindSession, "s", "u", time.Hour))
		require.Len(t, keysOf(t, rc, id), 300+2+2)
	}
	rec.take()

	var batches int
	prog, err := store.Purge(ctxOf(a), tenantredis.PurgeProgress{}, 50, func(tenantredis.PurgeProgress) error { batches++; return nil })
	require.NoError(t, err)
	require.Empty(t, rec.take(), "no SCAN")
	// The index is not counted: Redis drops it when the walk removes its last entry.
	require.Equal(t, tenantredis.PurgeProgress{Deleted: 300 + 2 + 1, Done: true}, prog, "the keys and the record")
	require.Greater(t, batches, 1, "the purge went in batches")
	require.Empty(t, keysOf(t, rc, a))
	require.Len(t, keysOf(t, rc, b), 300+2+2)

	// Done, then nothing left (no mark any more: the SCAN fallback finds nothing).
	again, err := store.Purge(ctxOf(a), tenantredis.PurgeProgress{}, 0, nil)
	require.NoError(t, err)
	require.Equal(t, tenantredis.PurgeProgress{Done: true}, again)
}

// A tenant from before the index (an old record without the mark, keys written raw) that
// also got keys through the store since: the SCAN fallback deletes all of them.
func TestPurgeOfATenantFromBeforeTheIndexScans(t *testing.T) {
	t.Parallel()
	store, rc, a, b := setup(t, "legacy")
	ctx := context.Background()
	require.NoError(t, rc.HSet(ctx, tenantredis.Key(a, "context", "record"), "status", "active").Err())
	require.NoError(t, store.WriteContext(ctxOf(a), tenantredis.ContextRecord{Status: "active", Type: "trial"}))
	fill(t, rc, a, 0, 3000)
	sc := scope(t, store, a)
	for i := range 10 {
		require.NoError(t, sc.Set(ctx, "cache", fmt.Sprint(i), "v", 0))
	}
	fill(t, rc, b, 0, 100)
	rec := &scanCursors{}
	rc.AddHook(rec)

	prog, err := store.Purge(ctxOf(a), tenantredis.PurgeProgress{}, 1000, nil)
	require.NoError(t, err)
	require.NotEmpty(t, rec.take(), "found with SCAN")
	require.Equal(t, tenantredis.PurgeProgress{Deleted: 3000 + 10 + 2, Done: true}, prog)
	require.Empty(t, keysOf(t, rc, a))
	require.Len(t, keysOf(t, rc, b), 100)
}

// An indexed tenant's purge stopped half-way resumes from the saved ZSCAN cursor, makes its
// second pass, and ends with nothing left, every key counted once.
func TestPurgeOfAnIndexedTenantResumes(t *testing.T) {
	t.Parallel()
	store, rc, a, b := setup(t, "iresume")
	ctx := context.Background()
	const n = 3000 // above the listpack limit: the index is a hash table, its cursor not 0
	for _, id := range []string{a, b} {
		require.NoError(t, store.WriteContext(ctxOf(id), tenantredis.ContextRecord{Status: "active", Type: "trial"}))
	}
	sc := scope(t, store, a)
	for i := range n {
		require.NoError(t, sc.Set(ctx, "item", fmt.Sprint(i), a, 0))
	}
	require.NoError(t, scope(t, store, b).Set(ctx, "item", "0", b, 0))

	stopped, err := store.Purge(ctxOf(a), tenantredis.PurgeProgress{}, 200, func(p tenantredis.PurgeProgress) error {
		if p.Deleted >= n/2 {
			return errStop
		}
		return nil
	})
	require.ErrorIs(t, err, errStop)
	require.NotZero(t, stopped.Cursor)
	require.False(t, stopped.Done)
	require.Len(t, keysOf(t, rc, a), n+2-int(stopped.Deleted))

	zscans := &zscanCursors{}
	rc.AddHook(zscans)
	var sawPassBoundary bool
	done, err := store.Purge(ctxOf(a), stopped, 200, func(p tenantredis.PurgeProgress) error {
		if p.Cursor == 0 && !p.Done {
			sawPassBoundary = true
		}
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, stopped.Cursor, zscans.take()[0], "the resumed run starts at the saved cursor")
	require.True(t, sawPassBoundary, "and makes a second full pass")
	require.Equal(t, tenantredis.PurgeProgress{Deleted: n + 1, Done: true}, done)
	require.Empty(t, keysOf(t, rc, a))
	require.Len(t, keysOf(t, rc, b), 3)
}

// zscanCursors records the cursor of every ZSCAN the client sends.
type zscanCursors struct{ scanCursors }

func (s *zscanCursors) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "zscan" {
			s.mu.Lock()
			s.cursors = append(s.cursors, cmd.Args()[2].(uint64))
			s.mu.Unlock()
		}
		return next(ctx, cmd)
	}
}

// Every tenant-scoped accessor fails closed without a valid tenant in the context.
func TestAccessorsRefuseAContextWithoutATenant(t *testing.T) {
	t.Parallel()
	store := tenantredis.New(testenv.RedisClient(t))
	for _, ctx := range []context.Context{
		context.Background(),
		tenant.WithID(context.Background(), ""),
		tenant.WithID(context.Background(), "Acme"),
		tenant.WithID(context.Background(), "acme*"),
		tenant.WithID(context.Background(), "ac}me"),
	} {
		_, err := store.Scope(ctx)
		require.ErrorIs(t, err, tenant.ErrNoTenant)
		require.ErrorIs(t, store.WriteContext(ctx, tenantredis.ContextRecord{Status: "active", Type: "trial"}), tenant.ErrNoTenant)
		_, err = store.ReadContext(ctx)
		require.ErrorIs(t, err, tenant.ErrNoTenant)
		_, err = store.SetStatus(ctx, "active", 1)
		require.ErrorIs(t, err, tenant.ErrNoTenant)
		_, err = store.RevokeSessions(ctx, nil)
		require.ErrorIs(t, err, tenant.ErrNoTenant)
		_, err = store.Purge(ctx, tenantredis.PurgeProgress{}, 0, nil)
		require.ErrorIs(t, err, tenant.ErrNoTenant)
	}
}

// scanCursors records the cursor of every SCAN the client sends.
type scanCursors struct {
	mu      sync.Mutex
	cursors []uint64
}

func (s *scanCursors) DialHook(next redis.DialHook) redis.DialHook { return next }
func (s *scanCursors) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (s *scanCursors) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "scan" {
			s.mu.Lock()
			s.cursors = append(s.cursors, cmd.Args()[1].(uint64))
			s.mu.Unlock()
		}
		return next(ctx, cmd)
	}
}

func (s *scanCursors) take() []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.cursors
	s.cursors = nil
	return out
}

var errStop = errors.New("stopped by the test")

// A purge of 100k keys stopped half-way (as a worker crash would, after a heartbeat) resumes
// from the saved cursor, deletes everything that is left, counts every key exactly once, and
// leaves the sibling tenant's keys alone.
func TestPurgeResumesFromASavedCursor(t *testing.T) {
	t.Parallel()
	store, rc, a, b := setup(t, "purge")
	const keys = 100_000
	fill(t, rc, a, 0, keys)
	fill(t, rc, b, 0, 1000)
	rec := &scanCursors{}
	rc.AddHook(rec)

	var heartbeats []tenantredis.PurgeProgress
	stopped, err := store.Purge(ctxOf(a), tenantredis.PurgeProgress{}, 1000, func(p tenantredis.PurgeProgress) error {
		heartbeats = append(heartbeats, p)
		if p.Deleted >= keys/2 {
			return errStop
		}
		return nil
	})
	require.ErrorIs(t, err, errStop)
	require.Equal(t, heartbeats[len(heartbeats)-1], stopped)
	require.NotZero(t, stopped.Cursor)
	require.False(t, stopped.Done)
	require.GreaterOrEqual(t, stopped.Deleted, int64(keys/2))
	require.Len(t, keysOf(t, rc, a), keys-int(stopped.Deleted), "Deleted counts exactly the keys gone")
	for i := 1; i < len(heartbeats); i++ {
		require.GreaterOrEqual(t, heartbeats[i].Deleted, heartbeats[i-1].Deleted)
	}
	rec.take()

	done, err := store.Purge(ctxOf(a), stopped, 1000, nil)
	require.NoError(t, err)
	cursors := rec.take()
	require.Equal(t, stopped.Cursor, cursors[0], "the resumed run starts at the saved cursor")
	require.Equal(t, tenantredis.PurgeProgress{Cursor: 0, Deleted: keys, Done: true}, done)
	require.Empty(t, keysOf(t, rc, a))

	bKeys := keysOf(t, rc, b)
	require.Len(t, bKeys, 1000)
	vals, err := rc.MGet(context.Background(), bKeys...).Result()
	require.NoError(t, err)
	for _, v := range vals {
		require.Equal(t, b, v)
	}

	// Done is final, and a purge with nothing left is success.
	again, err := store.Purge(ctxOf(a), done, 1000, nil)
	require.NoError(t, err)
	require.Equal(t, done, again)
	fresh, err := store.Purge(ctxOf(a), tenantredis.PurgeProgress{}, 0, nil)
	require.NoError(t, err)
	require.Equal(t, tenantredis.PurgeProgress{Done: true}, fresh)
}

// A saved cursor can point past keys that were not deleted: written by a straggler after the
// stop, or moved by a Redis restart (the hash seed changes, so the cursor means something else).
// The resumed run's second full pass finds them. Without it, about half of the late keys (those
// hashed behind the cursor) would survive.
func TestPurgeResumedRunFindsKeysBehindTheCursor(t *testing.T) {
	t.Parallel()
	store, rc, a, _ := setup(t, "behind")
	fill(t, rc, a, 0, 20_000)
	stopped, err := store.Purge(ctxOf(a), tenantredis.PurgeProgress{}, 1000, func(p tenantredis.PurgeProgress) error {
		if p.Deleted >= 10_000 {
			return errStop
		}
		return nil
	})
	require.ErrorIs(t, err, errStop)
	fill(t, rc, a, 20_000, 2000)

	var (
		sawPassBoundary bool
		last            tenantredis.PurgeProgress
	)
	done, err := store.Purge(ctxOf(a), stopped, 1000, func(p tenantredis.PurgeProgress) error {
		if p.Cursor == 0 && !p.Done {
			sawPassBoundary = true
		}
		last = p
		return nil
	})
	require.NoError(t, err)
	require.True(t, sawPassBoundary, "a resumed purge reports the boundary between its two passes")
	require.Equal(t, done, last, "the last heartbeat is the final progress")
	require.Empty(t, keysOf(t, rc, a))
	require.Equal(t, tenantredis.PurgeProgress{Deleted: 22_000, Done: true}, done)
}
