// Package cells is the control plane's registry of cells and of where each tenant lives. A
// cell is a complete set of stores (PostgreSQL, MongoDB, Redis) with a region, a kind (pooled
// or dedicated), a capacity and a state; each tenant is placed on exactly one. The `default`
// cell is the stores the deployment is configured with, so a deployment with no cells
// configured runs as one cell and an older installation moves into it with no data moved.
//
// Store addresses carry passwords: they are kept sealed under the master key and come out
// only through Stores, for the process that connects; answers carry Redacted forms.
package cells

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/misybot/tenancy/internal/keys/seal"
)

// Default is the cell of the deployment's own stores.
const Default = "default"

// Kinds and states.
const (
	KindPooled    = "pooled"
	KindDedicated = "dedicated"

	StateOpen     = "open"
	StateDraining = "draining"
	StateClosed   = "closed"
)

var (
	// ErrNotFound: no such cell.
	ErrNotFound = errors.New("no such cell")
	// ErrExists: a cell with that id is registered already.
	ErrExists = errors.New("a cell with this id exists")
	// ErrNotEmpty: the cell still holds tenants.
	ErrNotEmpty = errors.New("the cell still holds tenants")
	// ErrDefault: the default cell is the deployment's own stores and cannot be removed.
	ErrDefault = errors.New("the default cell cannot be deleted")
	// ErrNoTenant: no such tenant in the registry.
	ErrNoTenant = errors.New("no such tenant")
)

var idFormat = regexp.MustCompile(`^[a-z][a-z0-9-]{0,30}[a-z0-9]$`)

// ValidID reports whether s is a well-formed cell or region id (as the schema checks).
func ValidID(s string) bool { return idFormat.MatchString(s) }

// Cell is one cell as operators see it: never its stores' secrets.
type Cell struct {
	ID        string    `json:"cellId"`
	Region    string    `json:"region"`
	Kind      string    `json:"kind"`
	Capacity  int       `json:"capacity"`
	State     string    `json:"state"`
	TaskQueue string    `json:"taskQueue,omitempty"`
	Tenants   int       `json:"tenants"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// Stores are a cell's connection strings; each may hold a password. PostgresURL connects as
// the cell's application role (subject to row-level security), for the tenant paths;
// PostgresMigrateURL as its owner role, only to apply the cell migrations (at registration and
// by `starter migrate`); it is empty for a cell registered with its schema applied already.
type Stores struct {
	PostgresURL        string `json:"postgresUrl"`
	PostgresMigrateURL string `json:"postgresMigrateUrl,omitempty"`
	MongoURL           string `json:"mongoUrl"`
	RedisURL           string `json:"redisUrl"`
}

// storesField names the sealed stores in the encryption's associated data.
const storesField = "cells.stores"

// sealID keys a cell's sealed stores; it cannot collide with a tenant id (no ':' in those).
func sealID(cellID string) string { return "cell:" + cellID }

// Registry reads and writes cells and placements. Safe for concurrent use.
type Registry struct {
	pool   DB
	sealer *seal.Sealer
}

// DB is the control-plane database: a pool, or (in tests) a transaction rolled back after.
type DB interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Begin(ctx context.Context) (pgx.Tx, error)
}

// New returns a Registry over the control-plane database.
func New(db DB, sealer *seal.Sealer) *Registry {
	return &Registry{pool: db, sealer: sealer}
}

// selectCells reads cells with their live tenants, a count the tenants table's triggers keep
// (migration 00023), so that placement reads the cells alone.
const selectCells = `
	SELECT c.cell_id, c.region, c.kind, c.capacity, c.state, c.task_queue, c.created_at, c.updated_at,
	       c.live_tenants
	FROM cells c`

func scanCell(row pgx.Row) (Cell, error) {
	var c Cell
	err := row.Scan(&c.ID, &c.Region, &c.Kind, &c.Capacity, &c.State, &c.TaskQueue, &c.CreatedAt, &c.UpdatedAt, &c.Tenants)
	return c, err
}

// List returns every cell with its tenant count, by id. The count is an index range per cell
// (tenants_cell_idx); there are few cells.
func (r *Registry) List(ctx context.Context) ([]Cell, error) {
	rows, err := r.pool.Query(ctx, selectCells+` ORDER BY c.cell_id`)
	if err != nil {
		return nil, fmt.Errorf("cells: list: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Cell, error) { return scanCell(row) })
	if err != nil {
		return nil, fmt.Errorf("cells: list: %w", err)
	}
	return out, nil
}

// Get returns one cell; ErrNotFound when there is none.
func (r *Registry) Get(ctx context.Context, id string) (Cell, error) {
	c, err := scanCell(r.pool.QueryRow(ctx, selectCells+` WHERE c.cell_id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Cell{}, ErrNotFound
	}
	if err != nil {
		return Cell{}, fmt.Errorf("cells: get %s: %w", id, err)
	}
	return c, nil
}

// Create registers a cell, open, with its stores sealed. ErrExists when the id is taken.
func (r *Registry) Create(ctx context.Context, c Cell, stores Stores) (Cell, error) {
	raw, err := json.Marshal(stores)
	if err != nil {
		return Cell{}, err
	}
	sealed, err := r.sealer.Seal(sealID(c.ID), storesField, raw)
	clear(raw)
	if err != nil {
		return Cell{}, fmt.Errorf("cells: seal stores: %w", err)
	}
	// In a transaction of its own (a savepoint inside a caller's), so a duplicate id leaves the
	// caller's transaction usable.
	err = pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO cells (cell_id, region, kind, capacity, state, task_queue, stores_sealed)
			VALUES ($1, $2, $3, $4, 'open', $5, $6)`, c.ID, c.Region, c.Kind, c.Capacity, c.TaskQueue, sealed)
		return err
	})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return Cell{}, ErrExists
	}
	if err != nil {
		return Cell{}, fmt.Errorf("cells: create %s: %w", c.ID, err)
	}
	return r.Get(ctx, c.ID)
}

// Stores opens a cell's connection strings, for the process that connects to them. The
// default cell has none (ok false): its stores are the process's own.
func (r *Registry) Stores(ctx context.Context, id string) (stores Stores, ok bool, err error) {
	var sealed []byte
	err = r.pool.QueryRow(ctx, `SELECT stores_sealed FROM cells WHERE cell_id = $1`, id).Scan(&sealed)
	if errors.Is(err, pgx.ErrNoRows) {
		return Stores{}, false, ErrNotFound
	}
	if err != nil {
		return Stores{}, false, fmt.Errorf("cells: stores of %s: %w", id, err)
	}
	if sealed == nil {
		return Stores{}, false, nil
	}
	raw, err := r.sealer.Open(sealID(id), storesField, sealed)
	if err != nil {
		return Stores{}, false, fmt.Errorf("cells: open stores of %s: %w", id, err)
	}
	defer clear(raw)
	if err := json.Unmarshal(raw, &stores); err != nil {
		return Stores{}, false, fmt.Errorf("cells: stores of %s: %w", id, err)
	}
	return stores, true, nil
}

// SetState moves a cell to open, draining (no new tenants, the ones it has stay) or closed.
func (r *Registry) SetState(ctx context.Context, id, state string) (Cell, error) {
	tag, err := r.pool.Exec(ctx, `UPDATE cells SET state = $2, updated_at = now() WHERE cell_id = $1`, id, state)
	if err != nil {
		return Cell{}, fmt.Errorf("cells: set state of %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return Cell{}, ErrNotFound
	}
	return r.Get(ctx, id)
}

// Delete removes an empty cell: ErrNotEmpty while a tenant that is not offboarded is placed
// on it, ErrDefault for the default cell. Offboarded tenants (tombstones, with nothing left in
// the cell) let go of it.
func (r *Registry) Delete(ctx context.Context, id string) error {
	if id == Default {
		return ErrDefault
	}
	var deleted int64
	err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE tenants SET cell_id = NULL WHERE cell_id = $1 AND status = 'offboarded'
			AND NOT EXISTS (SELECT 1 FROM tenants o WHERE o.cell_id = $1 AND o.status <> 'offboarded')`, id); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM cells c WHERE c.cell_id = $1
			AND NOT EXISTS (SELECT 1 FROM tenants t WHERE t.cell_id = c.cell_id)`, id)
		deleted = tag.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("cells: delete %s: %w", id, err)
	}
	if deleted == 1 {
		return nil
	}
	if _, err := r.Get(ctx, id); err != nil {
		return err
	}
	return ErrNotEmpty
}

// Placement returns the cell a tenant is placed on; a tenant not placed (registered before
// cells, or not onboarded yet) lives on the default cell, and placed is false.
func (r *Registry) Placement(ctx context.Context, tenantID string) (cell string, placed bool, err error) {
	var id *string
	err = r.pool.QueryRow(ctx, `SELECT cell_id FROM tenants WHERE tenant_id = $1`, tenantID).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, fmt.Errorf("cells: tenant %s: %w", tenantID, ErrNoTenant)
	}
	if err != nil {
		return "", false, fmt.Errorf("cells: cell of %s: %w", tenantID, err)
	}
	if id == nil {
		return Default, false, nil
	}
	return *id, true, nil
}
