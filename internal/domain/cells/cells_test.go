package cells_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/internal/domain/cells"
	"github.com/misybot/tenancy/internal/keys/seal"
	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/testkit/testenv"
)

// setup returns a Registry inside a transaction rolled back when the test ends, so the cells
// it registers are never seen by other tests' onboardings (River's pattern).
func setup(t *testing.T) (*cells.Registry, pgx.Tx) {
	t.Helper()
	tx, err := testenv.AppPool(t).Begin(context.Background())
	require.NoError(t, err)
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	sealer, err := seal.New(testenv.MasterKey)
	require.NoError(t, err)
	return cells.New(tx, sealer), tx
}

func register(t *testing.T, tx pgx.Tx, typ tenant.Type) string {
	t.Helper()
	id := testenv.TenantID("cell")
	_, err := tx.Exec(context.Background(), `INSERT INTO tenants (tenant_id, site_id, tenant_name, contact_email, tenant_type, secret_ciphertext)
		VALUES ($1, 's', 'n', 'x@y.zz', $2, '\x01')`, id, string(typ))
	require.NoError(t, err)
	return id
}

func always(context.Context, string) bool { return true }

var stores = cells.Stores{PostgresURL: "postgres://u:secret-pw@127.0.0.1:5442/x", MongoURL: "mongodb://127.0.0.1:27027/", RedisURL: "redis://127.0.0.1:6389/1"}

func TestCellsRegistryKeepsStoresSealedAndRefusesDeletingAFullCell(t *testing.T) {
	reg, tx := setup(t)
	ctx := context.Background()
	region := "r" + testenv.TenantID("x")[1:8]
	c, err := reg.Create(ctx, cells.Cell{ID: "t-seal", Region: region, Kind: cells.KindPooled, Capacity: 5}, stores)
	require.NoError(t, err)
	require.Equal(t, cells.StateOpen, c.State)
	_, err = reg.Create(ctx, cells.Cell{ID: "t-seal", Region: region, Kind: cells.KindPooled, Capacity: 5}, stores)
	require.ErrorIs(t, err, cells.ErrExists)

	var raw []byte
	require.NoError(t, tx.QueryRow(ctx, `SELECT stores_sealed FROM cells WHERE cell_id = 't-seal'`).Scan(&raw))
	require.NotContains(t, string(raw), "secret-pw", "sealed at rest")
	got, ok, err := reg.Stores(ctx, "t-seal")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, stores, got)
	_, ok, err = reg.Stores(ctx, cells.Default)
	require.NoError(t, err)
	require.False(t, ok, "the default cell is the process's own stores")

	id := register(t, tx, tenant.TypeStandard)
	placed, err := reg.Place(ctx, id, tenant.TypeStandard, cells.Want{Cell: "t-seal"}, always)
	require.NoError(t, err)
	require.Equal(t, "t-seal", placed)
	require.ErrorIs(t, reg.Delete(ctx, "t-seal"), cells.ErrNotEmpty)
	require.ErrorIs(t, reg.Delete(ctx, cells.Default), cells.ErrDefault)
	require.ErrorIs(t, reg.Delete(ctx, "t-none"), cells.ErrNotFound)
	c, err = reg.SetState(ctx, "t-seal", cells.StateDraining)
	require.NoError(t, err)
	require.Equal(t, 1, c.Tenants)
}

func TestPlacementRules(t *testing.T) {
	reg, tx := setup(t)
	ctx := context.Background()
	region := "r" + testenv.TenantID("x")[1:8]
	mk := func(id, kind string, capacity int) {
		_, err := reg.Create(ctx, cells.Cell{ID: id, Region: region, Kind: kind, Capacity: capacity}, stores)
		require.NoError(t, err)
	}
	mk("t-pool-a", cells.KindPooled, 10)
	mk("t-pool-b", cells.KindPooled, 1)
	mk("t-ded", cells.KindDedicated, 1)
	want := cells.Want{Region: region}

	// Enterprise: the free dedicated cell; the next enterprise falls back to the pooled ones.
	e1 := register(t, tx, tenant.TypeEnterprise)
	got, err := reg.Place(ctx, e1, tenant.TypeEnterprise, want, always)
	require.NoError(t, err)
	require.Equal(t, "t-ded", got)
	// Idempotent: placed once, the same answer whatever is asked again.
	got, err = reg.Place(ctx, e1, tenant.TypeEnterprise, cells.Want{Cell: "t-pool-a"}, always)
	require.NoError(t, err)
	require.Equal(t, "t-ded", got)

	// Least loaded by share of capacity: a and b tie empty (a comes first), then b (0/1), then a.
	var seen []string
	for range 4 {
		got, err := reg.Place(ctx, register(t, tx, tenant.TypeStandard), tenant.TypeStandard, want, always)
		require.NoError(t, err)
		seen = append(seen, got)
	}
	require.Equal(t, []string{"t-pool-a", "t-pool-b", "t-pool-a", "t-pool-a"}, seen)

	// A cell that does not answer is skipped; asked for by name, it is refused.
	sick := func(_ context.Context, id string) bool { return id != "t-pool-a" }
	_, err = reg.Place(ctx, register(t, tx, tenant.TypeStandard), tenant.TypeStandard, want, sick)
	var noRoom *cells.NoRoomError
	require.ErrorAs(t, err, &noRoom, "b is full, a is down")
	require.Contains(t, noRoom.Error(), region)
	_, err = reg.Place(ctx, register(t, tx, tenant.TypeStandard), tenant.TypeStandard, cells.Want{Cell: "t-pool-a"}, sick)
	require.ErrorAs(t, err, &noRoom)
	require.Contains(t, noRoom.Error(), "do not answer")

	// Draining cells take nobody.
	_, err = reg.SetState(ctx, "t-pool-a", cells.StateDraining)
	require.NoError(t, err)
	_, err = reg.Place(ctx, register(t, tx, tenant.TypeStandard), tenant.TypeStandard, cells.Want{Cell: "t-pool-a"}, always)
	require.ErrorAs(t, err, &noRoom)
	require.Contains(t, noRoom.Error(), "draining")
}

// Capacity holds under concurrent placements: the lock serializes them.
func TestPlacementNeverOverfillsACell(t *testing.T) {
	pool := testenv.AppPool(t)
	sealer, err := seal.New(testenv.MasterKey)
	require.NoError(t, err)
	reg := cells.New(pool, sealer)
	ctx := context.Background()
	owner := testenv.OwnerPool(t)
	cell := "t-" + testenv.TenantID("c")[2:10]
	region := "r" + testenv.TenantID("x")[1:8]
	// Committed, so concurrent placements see it; closed at the end and emptied, so no other
	// test's onboarding can land there afterwards (they ask no region, this one is unique).
	_, err = reg.Create(ctx, cells.Cell{ID: cell, Region: region, Kind: cells.KindPooled, Capacity: 3}, stores)
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = owner.Exec(context.Background(), `UPDATE tenants SET cell_id = NULL WHERE cell_id = $1`, cell)
		_ = reg.Delete(context.Background(), cell)
	})
	var ids []string
	for range 10 {
		id := testenv.TenantID("cap")
		_, err := owner.Exec(ctx, `INSERT INTO tenants (tenant_id, site_id, tenant_name, contact_email, tenant_type, secret_ciphertext)
			VALUES ($1, 's', 'n', 'x@y.zz', 'trial', '\x01')`, id)
		require.NoError(t, err)
		ids = append(ids, id)
	}
	// Removed again: committed pending tenants would fill other tests' pages of the registry.
	t.Cleanup(func() { _, _ = owner.Exec(context.Background(), `DELETE FROM tenants WHERE tenant_id = ANY($1)`, ids) })
	var wg sync.WaitGroup
	var mu sync.Mutex
	placed := map[string]int{}
	for _, id := range ids {
		wg.Go(func() {
			got, err := reg.Place(ctx, id, tenant.TypeTrial, cells.Want{Cell: cell}, always)
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				placed[got]++
			} else {
				placed[fmt.Sprintf("%T", err)]++
			}
		})
	}
	wg.Wait()
	require.Equal(t, map[string]int{cell: 3, "*cells.NoRoomError": 7}, placed)
}

// A tombstone keeps nothing in its cell: it takes no capacity and does not keep the cell from
// being deleted; a live tenant does.
func TestOffboardedTenantsLetGoOfTheirCell(t *testing.T) {
	reg, tx := setup(t)
	ctx := context.Background()
	region := "r" + testenv.TenantID("x")[1:8]
	_, err := reg.Create(ctx, cells.Cell{ID: "t-tomb", Region: region, Kind: cells.KindPooled, Capacity: 1}, stores)
	require.NoError(t, err)
	id := register(t, tx, tenant.TypeStandard)
	_, err = reg.Place(ctx, id, tenant.TypeStandard, cells.Want{Cell: "t-tomb"}, always)
	require.NoError(t, err)
	require.ErrorIs(t, reg.Delete(ctx, "t-tomb"), cells.ErrNotEmpty)

	_, err = tx.Exec(ctx, `UPDATE tenants SET status = 'offboarded' WHERE tenant_id = $1`, id)
	require.NoError(t, err)
	c, err := reg.Get(ctx, "t-tomb")
	require.NoError(t, err)
	require.Zero(t, c.Tenants, "a tombstone takes no capacity")
	_, err = reg.Place(ctx, register(t, tx, tenant.TypeStandard), tenant.TypeStandard, cells.Want{Cell: "t-tomb"}, always)
	require.NoError(t, err, "so its slot is free")
	require.ErrorIs(t, reg.Delete(ctx, "t-tomb"), cells.ErrNotEmpty, "the new tenant is live")

	// A cell holding tombstones only is deleted; they let go of it.
	_, err = reg.Create(ctx, cells.Cell{ID: "t-tomb2", Region: region, Kind: cells.KindPooled, Capacity: 1}, stores)
	require.NoError(t, err)
	gone := register(t, tx, tenant.TypeStandard)
	_, err = reg.Place(ctx, gone, tenant.TypeStandard, cells.Want{Cell: "t-tomb2"}, always)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `UPDATE tenants SET status = 'offboarded' WHERE tenant_id = $1`, gone)
	require.NoError(t, err)
	require.NoError(t, reg.Delete(ctx, "t-tomb2"))
	_, err = reg.Get(ctx, "t-tomb2")
	require.ErrorIs(t, err, cells.ErrNotFound)
}

// A cell's count of live tenants (migration 00023's triggers) follows every change that moves a
// tenant in or out of it: placement, a tenant inserted placed, a move to another cell,
// offboarding (and back), a suspension (no change), deletion; it always equals a count of the
// rows, and placement refuses a cell the count says is full.
func TestCellsCountTheirLiveTenants(t *testing.T) {
	reg, tx := setup(t)
	ctx := context.Background()
	region := "r" + testenv.TenantID("l")[1:8]
	for _, id := range []string{"t-live-a", "t-live-b"} {
		_, err := reg.Create(ctx, cells.Cell{ID: id, Region: region, Kind: cells.KindPooled, Capacity: 3}, stores)
		require.NoError(t, err)
	}
	check := func(step string) {
		t.Helper()
		for _, id := range []string{"t-live-a", "t-live-b"} {
			c, err := reg.Get(ctx, id)
			require.NoError(t, err)
			var rows int
			require.NoError(t, tx.QueryRow(ctx, `SELECT count(*) FROM tenants WHERE cell_id = $1 AND status <> 'offboarded'`, id).Scan(&rows))
			require.Equal(t, rows, c.Tenants, "%s: %s", step, id)
		}
	}
	a, b, c := register(t, tx, tenant.TypeStandard), register(t, tx, tenant.TypeStandard), register(t, tx, tenant.TypeStandard)
	for _, id := range []string{a, b} {
		_, err := reg.Place(ctx, id, tenant.TypeStandard, cells.Want{Cell: "t-live-a"}, always)
		require.NoError(t, err)
	}
	check("placed two")
	got, err := reg.Get(ctx, "t-live-a")
	require.NoError(t, err)
	require.Equal(t, 2, got.Tenants)
	exec := func(sql string, args ...any) {
		t.Helper()
		_, err := tx.Exec(ctx, sql, args...)
		require.NoError(t, err)
	}
	exec(`UPDATE tenants SET status = 'suspended' WHERE tenant_id = $1`, a)
	check("suspended")
	exec(`UPDATE tenants SET status = 'offboarded' WHERE tenant_id = $1`, a)
	check("offboarded")
	exec(`UPDATE tenants SET status = 'active' WHERE tenant_id = $1`, a)
	check("back from offboarded")
	exec(`UPDATE tenants SET cell_id = 't-live-b' WHERE tenant_id = $1`, b)
	check("moved to b")
	exec(`INSERT INTO tenants (tenant_id, site_id, tenant_name, contact_email, tenant_type, secret_ciphertext, cell_id)
		VALUES ($1, 's', 'n', 'x@y.zz', 'trial', '\x01', 't-live-a')`, testenv.TenantID("ins"))
	check("inserted placed")
	exec(`DELETE FROM tenants WHERE tenant_id = $1`, b)
	check("deleted")
	// t-live-a holds 2 of 3: one more fits, then it is full by the count.
	_, err = reg.Place(ctx, c, tenant.TypeStandard, cells.Want{Cell: "t-live-a"}, always)
	require.NoError(t, err)
	d := register(t, tx, tenant.TypeStandard)
	_, err = reg.Place(ctx, d, tenant.TypeStandard, cells.Want{Cell: "t-live-a"}, always)
	var noRoom *cells.NoRoomError
	require.ErrorAs(t, err, &noRoom)
	require.Contains(t, noRoom.Error(), "full (3 of 3)")
	check("full")
}
