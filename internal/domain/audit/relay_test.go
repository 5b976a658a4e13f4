package audit_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/internal/domain/audit"
	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/stores/rls"
	"github.com/misybot/tenancy/internal/testkit/testenv"
)

// A change in a cell's PostgreSQL commits with its audit event in the cell (audit_relay); the
// relay brings the event to the control plane's chain, in commit order. A rolled-back change
// leaves no event; a relay that dies after handing an event over and before deleting it hands
// it over again, and the chain still has it once. A cell that does not answer is an error
// naming the cell, and nothing is lost.
func TestRelayBringsCellEventsToTheChainOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx, id := b.tenantCtx(t, "relay")
	registerTenant(t, id, tenant.StatusActive)
	cell := testenv.CellAppPool(t, 2)
	src := audit.RelaySource{Cell: "cell-2", Pool: cell}
	relay := b.w.NewRelay(func(context.Context) ([]audit.RelaySource, error) { return []audit.RelaySource{src}, nil }, testenv.Logger(t))
	t.Cleanup(func() {
		_, _ = testenv.CellOwnerPool(t, 2).Exec(context.Background(), `DELETE FROM audit_relay WHERE event_tenant = $1`, id)
	})

	write := func(eventID, key string, fail bool) {
		err := rls.Tx(ctx, cell, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `INSERT INTO tenant_settings (tenant_id, key, value) VALUES ($1, $2, '1')`, id, key); err != nil {
				return err
			}
			e := event(eventID, "tenant.settings.put", time.Now())
			e.TenantID = id
			ok, err := b.w.RecordTx(ctx, tx, e)
			if err != nil {
				return err
			}
			require.True(t, ok)
			if fail {
				return errors.New("the change fails after its event was recorded")
			}
			return nil
		})
		if fail {
			require.Error(t, err)
		} else {
			require.NoError(t, err)
		}
	}
	write("r1", "a", false)
	write("r2", "b", true) // rolled back: no change, no event
	write("r3", "c", false)
	_, err := relay.Drain(ctx, src)
	require.NoError(t, err)

	// A relay that died between handing r1 over and deleting it: r1 waits in the cell again
	// (recorded again with its id), and is handed over a second time.
	write("r1", "a2", false)
	write("r4", "d", false)
	_, err = relay.Drain(ctx, src)
	require.NoError(t, err)

	got := b.stored(t, id)
	var ids []string
	for _, e := range got {
		ids = append(ids, e.ID)
	}
	require.Equal(t, []string{"r1", "r3", "r4"}, ids, "each committed event once, in commit order; none for the rolled-back change")
	rep := b.verify(t, ctx)
	require.True(t, rep.OK, "%+v", rep.FirstBroken)
	var waiting int
	require.NoError(t, testenv.CellOwnerPool(t, 2).QueryRow(ctx, `SELECT count(*) FROM audit_relay WHERE event_tenant = $1`, id).Scan(&waiting))
	require.Zero(t, waiting, "nothing left in the cell")

	// A cell that does not answer: an error naming it.
	down, err := pgxpool.New(ctx, "postgres://tenancy_app:x@127.0.0.1:1/tenancy_test?sslmode=disable&connect_timeout=1")
	require.NoError(t, err)
	t.Cleanup(down.Close)
	_, err = relay.Drain(ctx, audit.RelaySource{Cell: "cell-down", Pool: down})
	require.ErrorContains(t, err, "cell-down")
}
