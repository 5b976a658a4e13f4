package tenantredis_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/stores/tenantredis"
	"github.com/misybot/tenancy/internal/testkit/testenv"
)

// These tests run against the local three-master Redis Cluster (scripts/redis-cluster.sh, which
// `make test` starts), not a mock: slots, MOVED redirections and per-node SCAN are the real
// thing.

// scansByNode counts the SCAN commands each node of a cluster client receives.
type scansByNode struct {
	mu    sync.Mutex
	count map[string]int
}

func (s *scansByNode) hook(addr string) redis.Hook { return scanHook{s: s, addr: addr} }

func (s *scansByNode) snapshot() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.count)
}

type scanHook struct {
	s    *scansByNode
	addr string
}

func (scanHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (scanHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h scanHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "scan" {
			h.s.mu.Lock()
			h.s.count[h.addr]++
			h.s.mu.Unlock()
		}
		return next(ctx, cmd)
	}
}

// clusterSetup returns a new cluster client whose nodes count the SCANs they receive, and
// removes the given tenants' keys when the test ends.
func clusterSetup(t *testing.T) (*redis.ClusterClient, *scansByNode, func(ids ...string)) {
	t.Helper()
	opts := *testenv.RedisClusterClient(t).Options()
	rc := redis.NewClusterClient(&opts)
	t.Cleanup(func() { _ = rc.Close() })
	scans := &scansByNode{count: map[string]int{}}
	// Before any command, so that every node client gets the hook.
	rc.OnNewNode(func(node *redis.Client) { node.AddHook(scans.hook(node.Options().Addr)) })
	var ids []string
	t.Cleanup(func() {
		for _, id := range ids {
			for _, k := range clusterKeysOf(t, rc, id) {
				rc.Unlink(context.Background(), k)
			}
		}
	})
	return rc, scans, func(more ...string) { ids = append(ids, more...) }
}

// owner is the address of the master that holds the tenant's slot.
func owner(t *testing.T, rc *redis.ClusterClient, id string) string {
	t.Helper()
	node, err := rc.MasterForKey(context.Background(), tenantredis.Key(id, "x"))
	require.NoError(t, err)
	return node.Options().Addr
}

// clusterKeysOf lists the tenant's keys on every master with a plain SCAN, independent of the
// code under test.
func clusterKeysOf(t *testing.T, rc *redis.ClusterClient, id string) []string {
	t.Helper()
	var mu sync.Mutex
	var out []string
	err := rc.ForEachMaster(context.Background(), func(ctx context.Context, node *redis.Client) error {
		iter := node.Scan(ctx, 0, "tenant:{"+id+"}:*", 1000).Iterator()
		for iter.Next(ctx) {
			mu.Lock()
			out = append(out, iter.Val())
			mu.Unlock()
		}
		return iter.Err()
	})
	require.NoError(t, err)
	slices.Sort(out)
	return out
}

// tenantsOn returns a tenant id whose slot is on the master at addr (want true) or not.
func tenantOn(t *testing.T, rc *redis.ClusterClient, prefix, addr string, want bool) string {
	t.Helper()
	for range 1000 {
		id := testenv.TenantID(prefix)
		if (owner(t, rc, id) == addr) == want {
			return id
		}
	}
	t.Fatalf("no tenant id found on (or off) %s", addr)
	return ""
}

// Purge in a cluster of a tenant from before the index deletes every key of the tenant and
// nothing else, and SCANs only the master that owns the tenant's slot, in batches, however many
// other tenants share that master.
func TestClusterPurgeScansOnlyTheSlotOwner(t *testing.T) {
	t.Parallel()
	rc, scans, cleanup := clusterSetup(t)
	ctx := context.Background()
	store := tenantredis.New(rc)

	victim := testenv.TenantID("cl-victim")
	home := owner(t, rc, victim)
	neighbour := tenantOn(t, rc, "cl-neigh", home, true) // same master as the victim
	elsewhere := tenantOn(t, rc, "cl-far", home, false)  // another master
	sibling := victim + "2"                              // its id starts with the victim's
	cleanup(victim, neighbour, elsewhere, sibling)

	const n = 250
	for _, id := range []string{victim, neighbour, elsewhere, sibling} {
		sc := scope(t, store, id)
		for i := range n {
			require.NoError(t, sc.Set(ctx, "item", fmt.Sprint(i), id, 0))
		}
		require.NoError(t, store.WriteContext(ctxOf(id), tenantredis.ContextRecord{Status: "active", Type: "standard"}))
		require.Len(t, clusterKeysOf(t, rc, id), n+2)
	}
	// The victim predates the index: no mark, no index, so its keys are found with SCAN.
	require.NoError(t, rc.HDel(ctx, tenantredis.Key(victim, "context", "record"), "keysIndexed").Err())
	require.NoError(t, rc.Del(ctx, tenantredis.Key(victim, "_keys")).Err())

	before := scans.snapshot()
	var batches int
	prog, err := store.Purge(ctxOf(victim), tenantredis.PurgeProgress{}, 50, func(tenantredis.PurgeProgress) error { batches++; return nil })
	require.NoError(t, err)
	require.Equal(t, tenantredis.PurgeProgress{Deleted: n + 1, Done: true}, prog)
	require.Greater(t, batches, 1, "the purge went in batches")
	after := scans.snapshot() // before the checks below, which SCAN every master

	require.Empty(t, clusterKeysOf(t, rc, victim), "every key of the victim is gone")
	for _, id := range []string{neighbour, elsewhere, sibling} {
		require.Len(t, clusterKeysOf(t, rc, id), n+2, "tenant %s keeps every key", id)
		rec, err := store.ReadContext(ctxOf(id))
		require.NoError(t, err)
		require.Equal(t, "active", rec.Status)
	}

	scanned := map[string]int{}
	for addr, c := range after {
		if d := c - before[addr]; d > 0 {
			scanned[addr] = d
		}
	}
	require.Equal(t, []string{home}, keys(scanned), "SCAN ran on the slot's owner only: %v", scanned)
	require.Equal(t, batches, scanned[home], "one SCAN per batch")
}

// Purge in a cluster of an indexed tenant walks its index (in its slot, like its keys): it
// deletes every key written through the store, the record and the index, sends no SCAN to any
// node, and leaves the tenants on the same master and elsewhere alone.
func TestClusterPurgeWalksTheIndex(t *testing.T) {
	t.Parallel()
	rc, scans, cleanup := clusterSetup(t)
	ctx := context.Background()
	store := tenantredis.New(rc)
	victim := testenv.TenantID("cl-ivictim")
	neighbour := tenantOn(t, rc, "cl-ineigh", owner(t, rc, victim), true)
	elsewhere := tenantOn(t, rc, "cl-ifar", owner(t, rc, victim), false)
	cleanup(victim, neighbour, elsewhere)

	const n = 300
	for _, id := range []string{victim, neighbour, elsewhere} {
		require.NoError(t, store.WriteContext(ctxOf(id), tenantredis.ContextRecord{Status: "active", Type: "standard"}))
		sc := scope(t, store, id)
		for i := range n {
			require.NoError(t, sc.Set(ctx, "item", fmt.Sprint(i), id, time.Duration(i%2)*time.Hour))
		}
		_, err := sc.SetNX(ctx, tenantredis.KindSession, "s", "u", time.Hour)
		require.NoError(t, err)
		require.Len(t, clusterKeysOf(t, rc, id), n+3)
	}

	before := scans.snapshot()
	prog, err := store.Purge(ctxOf(victim), tenantredis.PurgeProgress{}, 50, nil)
	require.NoError(t, err)
	require.Equal(t, before, scans.snapshot(), "no SCAN on any node")
	require.Equal(t, tenantredis.PurgeProgress{Deleted: n + 2, Done: true}, prog, "the keys and the record (the emptied index went by itself)")
	require.Empty(t, clusterKeysOf(t, rc, victim))
	for _, id := range []string{neighbour, elsewhere} {
		require.Len(t, clusterKeysOf(t, rc, id), n+3, "tenant %s keeps every key", id)
	}
}

func keys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// In a cluster, as on one server, a tenant's Scope cannot read, change or delete another
// tenant's keys, wherever the two tenants' slots live; the context record's scripts work
// (their one key is in the tenant's slot); revoking one tenant's sessions leaves the other's.
func TestClusterIsolation(t *testing.T) {
	t.Parallel()
	rc, _, cleanup := clusterSetup(t)
	ctx := context.Background()
	store := tenantredis.New(rc)
	a := testenv.TenantID("cl-iso")
	for _, b := range []string{tenantOn(t, rc, "cl-iso-same", owner(t, rc, a), true), tenantOn(t, rc, "cl-iso-far", owner(t, rc, a), false)} {
		cleanup(a, b)
		scA, scB := scope(t, store, a), scope(t, store, b)
		names := []string{"x", "}:cache:x", "{" + a + "}:cache:x", "tenant:{" + a + "}:cache:x"}
		for _, name := range names {
			require.NoError(t, scA.Set(ctx, "cache", name, "secret-of-a", 0))
			_, err := scB.Get(ctx, "cache", name)
			require.ErrorIs(t, err, tenantredis.ErrNotFound, "name %q", name)
			require.NoError(t, scB.Del(ctx, "cache", name))
			require.NoError(t, scB.Set(ctx, "cache", name, "written-by-b", 0))
			v, err := scA.Get(ctx, "cache", name)
			require.NoError(t, err)
			require.Equal(t, "secret-of-a", v, "name %q", name)
		}

		require.NoError(t, store.WriteContext(ctxOf(a), tenantredis.ContextRecord{Status: "active", Type: "standard", UpdatedAt: time.Now()}))
		_, err := store.ReadContext(ctxOf(b))
		require.ErrorIs(t, err, tenantredis.ErrNotFound, "b has no record of its own, and cannot see a's")
		wrote, err := store.SetStatus(ctxOf(a), string(tenant.StatusSuspended), time.Now().UnixNano())
		require.NoError(t, err)
		require.True(t, wrote)
		rec, err := store.ReadContext(ctxOf(a))
		require.NoError(t, err)
		require.Equal(t, string(tenant.StatusSuspended), rec.Status)

		for _, sc := range []*tenantredis.Scope{scA, scB} {
			require.NoError(t, sc.Set(ctx, tenantredis.KindSession, "s1", "1", time.Hour))
		}
		n, err := store.RevokeSessions(ctxOf(b), nil)
		require.NoError(t, err)
		require.EqualValues(t, 1, n)
		_, err = scA.Get(ctx, tenantredis.KindSession, "s1")
		require.NoError(t, err, "a's session survives b's revocation")
	}
}
