package cells

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// resealAttempts bounds how often ResealStores re-reads a cell whose sealed stores changed
// between its read and its write (another run re-sealing it at the same time).
const resealAttempts = 3

// ResealStores re-seals every cell's stores under the sealer's current master key version, so
// the cells stay reachable once the previous master key is retired (the master key rotation,
// after the tenants' secrets). It returns how many cells it re-sealed.
//
// Idempotent by construction: a value already under the current version is left as it is
// (seal.Sealer.Reseal reports it unchanged), and each write is conditional on the ciphertext
// it read (`WHERE cell_id = $1 AND stores_sealed = $2`), so a retry or a concurrent run never
// overwrites a newer value: a cell that changed since it was read is read again, and a cell
// deleted meanwhile is skipped. The default cell (no sealed stores) is never touched.
//
// A cell that cannot be opened (sealed under a version this sealer does not hold) does not
// stop the others: its error, naming the cell only, is joined to the result. No error carries
// a store address: the plaintext exists only inside Reseal.
func (r *Registry) ResealStores(ctx context.Context) (int, error) {
	type sealedCell struct {
		id     string
		sealed []byte
	}
	rows, err := r.pool.Query(ctx, `SELECT cell_id, stores_sealed FROM cells WHERE stores_sealed IS NOT NULL ORDER BY cell_id`)
	if err != nil {
		return 0, fmt.Errorf("cells: list sealed stores: %w", err)
	}
	all, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (sealedCell, error) {
		var c sealedCell
		return c, row.Scan(&c.id, &c.sealed)
	})
	if err != nil {
		return 0, fmt.Errorf("cells: list sealed stores: %w", err)
	}
	n := 0
	var errs []error
	for _, c := range all {
		changed, err := r.resealOne(ctx, c.id, c.sealed)
		if err != nil {
			errs = append(errs, fmt.Errorf("cells: re-seal stores of %s: %w", c.id, err))
			continue
		}
		if changed {
			n++
		}
	}
	return n, errors.Join(errs...)
}

// resealOne re-seals one cell's stores, read as sealed; it reports whether it wrote.
func (r *Registry) resealOne(ctx context.Context, id string, sealed []byte) (bool, error) {
	for range resealAttempts {
		out, changed, err := r.sealer.Reseal(sealID(id), storesField, sealed)
		if err != nil || !changed {
			return false, err
		}
		tag, err := r.pool.Exec(ctx, `UPDATE cells SET stores_sealed = $3 WHERE cell_id = $1 AND stores_sealed = $2`, id, sealed, out)
		if err != nil {
			return false, err
		}
		if tag.RowsAffected() == 1 {
			return true, nil
		}
		// Changed since it was read: start again from what is there now.
		err = r.pool.QueryRow(ctx, `SELECT stores_sealed FROM cells WHERE cell_id = $1`, id).Scan(&sealed)
		if errors.Is(err, pgx.ErrNoRows) {
			return false, nil // deleted meanwhile: nothing left to re-seal
		}
		if err != nil {
			return false, err
		}
		if sealed == nil {
			return false, nil
		}
	}
	return false, errors.New("its sealed stores kept changing while being re-sealed")
}
