package cells_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/internal/domain/cells"
	"github.com/misybot/tenancy/internal/keys/seal"
	"github.com/misybot/tenancy/internal/testkit/testenv"
)

// A master key rotation re-seals a cell's stores under the new version: afterwards a sealer
// holding only the new key opens them, and a second run writes nothing.
//
// Inside a transaction rolled back at the end (setup), not committed: ResealStores re-seals
// every cell, and the cells other tests and the local cells commit are sealed under the shared
// testenv.MasterKey, which must stay their key. That key is version 1 of the test's keyring, so
// those cells open too and the re-seal succeeds whatever else is registered.
func TestResealStoresMovesEveryCellToTheCurrentVersion(t *testing.T) {
	old, tx := setup(t)
	ctx := context.Background()
	k2 := bytes.Repeat([]byte{42}, 32)
	both, err := seal.NewKeyring(2, map[int][]byte{1: testenv.MasterKey, 2: k2})
	require.NoError(t, err)
	onlyNew, err := seal.NewKeyring(2, map[int][]byte{2: k2})
	require.NoError(t, err)

	id := testenv.TenantID("t-rs")
	region := "r" + testenv.TenantID("x")[1:8]
	_, err = old.Create(ctx, cells.Cell{ID: id, Region: region, Kind: cells.KindPooled, Capacity: 1}, stores)
	require.NoError(t, err)
	_, err = old.SetState(ctx, id, cells.StateClosed)
	require.NoError(t, err)
	before := sealedStores(t, tx, id)
	v, _ := seal.SealedVersion(before)
	require.Equal(t, 1, v)

	// A sealer without version 1 cannot re-seal it, and says so without the addresses.
	_, err = cells.New(tx, onlyNew).ResealStores(ctx)
	require.ErrorIs(t, err, seal.ErrOpen)
	require.Contains(t, err.Error(), id)
	for _, secret := range []string{"secret-pw", stores.PostgresURL, stores.MongoURL, stores.RedisURL} {
		require.NotContains(t, err.Error(), secret)
	}
	require.Equal(t, before, sealedStores(t, tx, id), "nothing written")

	n, err := cells.New(tx, both).ResealStores(ctx)
	require.NoError(t, err)
	require.GreaterOrEqual(t, n, 1, "this cell, and any other cell under version 1")
	after := sealedStores(t, tx, id)
	v, _ = seal.SealedVersion(after)
	require.Equal(t, 2, v, "re-sealed under the current version")
	require.NotContains(t, string(after), "secret-pw")
	got, ok, err := cells.New(tx, onlyNew).Stores(ctx, id)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, stores, got, "the new key alone opens them")
	_, _, err = old.Stores(ctx, id)
	require.ErrorIs(t, err, seal.ErrOpen, "the old key alone no longer does")
	_, ok, err = cells.New(tx, onlyNew).Stores(ctx, cells.Default)
	require.NoError(t, err)
	require.False(t, ok, "the default cell has nothing sealed, and is left so")

	// Again: this cell is under the current version already and is not written.
	_, err = cells.New(tx, both).ResealStores(ctx)
	require.NoError(t, err)
	require.Equal(t, after, sealedStores(t, tx, id), "the second run re-sealed nothing of this cell")
}

// A write that lands between ResealStores' read and its write wins: the conditional UPDATE
// finds another ciphertext, writes nothing, and the cell, read again, is under the current
// version already. Here the other writer is a concurrent run, played by the DB wrapper just
// before ResealStores' own UPDATE.
func TestResealStoresNeverOverwritesAConcurrentWrite(t *testing.T) {
	old, tx := setup(t)
	ctx := context.Background()
	both, err := seal.NewKeyring(2, map[int][]byte{1: testenv.MasterKey, 2: bytes.Repeat([]byte{43}, 32)})
	require.NoError(t, err)
	id := testenv.TenantID("t-rc")
	_, err = old.Create(ctx, cells.Cell{ID: id, Region: "r" + testenv.TenantID("x")[1:8], Kind: cells.KindPooled, Capacity: 1}, stores)
	require.NoError(t, err)
	_, err = old.SetState(ctx, id, cells.StateClosed)
	require.NoError(t, err)

	theirs, changed, err := both.Reseal("cell:"+id, "cells.stores", sealedStores(t, tx, id))
	require.NoError(t, err)
	require.True(t, changed)
	db := &racingDB{Tx: tx, target: id, theirs: theirs}
	_, err = cells.New(db, both).ResealStores(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, db.raced, "the race was played")
	require.Equal(t, theirs, sealedStores(t, tx, id), "the concurrent write is kept")
	got, _, err := cells.New(tx, both).Stores(ctx, id)
	require.NoError(t, err)
	require.Equal(t, stores, got)
}

// racingDB writes theirs into the target cell just before the first conditional re-seal
// UPDATE of that cell reaches the database, as a concurrent run would.
type racingDB struct {
	pgx.Tx
	target string
	theirs []byte
	raced  int
}

func (d *racingDB) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if d.raced == 0 && strings.HasPrefix(sql, "UPDATE cells SET stores_sealed") && len(args) == 3 && args[0] == d.target {
		d.raced++
		if _, err := d.Tx.Exec(ctx, `UPDATE cells SET stores_sealed = $2 WHERE cell_id = $1`, d.target, d.theirs); err != nil {
			return pgconn.CommandTag{}, err
		}
	}
	return d.Tx.Exec(ctx, sql, args...)
}

func sealedStores(t *testing.T, tx pgx.Tx, id string) []byte {
	t.Helper()
	var raw []byte
	require.NoError(t, tx.QueryRow(context.Background(), `SELECT stores_sealed FROM cells WHERE cell_id = $1`, id).Scan(&raw))
	return raw
}
