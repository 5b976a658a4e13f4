// Package tenantdb is the tenant-scoped half of PostgreSQL: settings, members and API keys,
// plus provisioning and purge of a tenant's rows. Every function takes the tenant from the
// context and runs inside rls.Tx, so row-level security decides what it can see, and a query
// that forgot its WHERE still cannot reach another tenant.
package tenantdb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/misybot/tenancy/internal/model/limits"
	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/stores/rls"
)

// ErrNotFound: no such setting for this tenant (whether it exists for another is not told).
var ErrNotFound = errors.New("not found")

// Store reaches tenant-scoped tables through a pool connected as the application role: one
// pool, or with cells, the pool of the context tenant's cell.
type Store struct {
	pool     *pgxpool.Pool
	route    func(context.Context) (*pgxpool.Pool, error)
	catalogs sync.Map // a cell's *pgxpool.Pool → catalog
}

// New returns a Store over pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// NewRouted returns a Store that reaches each tenant's rows in the pool route gives for the
// context tenant (its cell's); pool serves what has no tenant (the catalog read of
// PurgedTables).
func NewRouted(pool *pgxpool.Pool, route func(context.Context) (*pgxpool.Pool, error)) *Store {
	return &Store{pool: pool, route: route}
}

// poolFor is the context tenant's pool.
func (s *Store) poolFor(ctx context.Context) (*pgxpool.Pool, error) {
	if s.route == nil {
		return s.pool, nil
	}
	if _, err := tenant.IDFrom(ctx); err != nil {
		return nil, err
	}
	pool, err := s.route(ctx)
	if err != nil {
		return nil, fmt.Errorf("tenantdb: the tenant's cell: %w", err)
	}
	return pool, nil
}

// tx is rls.Tx on the context tenant's pool.
func (s *Store) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	pool, err := s.poolFor(ctx)
	if err != nil {
		return err
	}
	return rls.Tx(ctx, pool, fn)
}

// readRow is rls.ReadRow on the context tenant's pool.
func (s *Store) readRow(ctx context.Context, sql string, args []any, dest ...any) error {
	pool, err := s.poolFor(ctx)
	if err != nil {
		return err
	}
	return rls.ReadRow(ctx, pool, sql, args, dest...)
}

// Setting is one key of a tenant's configuration or branding.
type Setting struct {
	Key       string          `json:"key"`
	Value     json.RawMessage `json:"value"`
	UpdatedAt time.Time       `json:"updatedAt"`
}

// Settings lists one page of the context tenant's settings by key: at most limit of them with
// a key after `after` ("" starts at the first), and the key to continue after ("" at the end).
func (s *Store) Settings(ctx context.Context, after string, limit int) ([]Setting, string, error) {
	out := []Setting{}
	err := s.tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT key, value, updated_at FROM tenant_settings WHERE key > $1 ORDER BY key LIMIT $2`, after, limit+1)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, pgx.RowToStructByPos[Setting])
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("tenantdb: settings: %w", err)
	}
	next := ""
	if len(out) > limit {
		out, next = out[:limit], out[limit-1].Key
	}
	return out, next, nil
}

// Setting returns one of the context tenant's settings.
func (s *Store) Setting(ctx context.Context, key string) (Setting, error) {
	var out Setting
	// The tenant API's hottest read: one round trip (rls.ReadRow).
	err := s.readRow(ctx, `SELECT key, value, updated_at FROM tenant_settings WHERE key = $1`, []any{key},
		&out.Key, &out.Value, &out.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Setting{}, fmt.Errorf("setting %q: %w", key, ErrNotFound)
	}
	if err != nil {
		return Setting{}, fmt.Errorf("tenantdb: setting: %w", err)
	}
	return out, nil
}

// PutSetting creates or replaces one setting of the context tenant (an upsert: repeating it
// changes nothing but updated_at), within the tenant's bounds: a value over
// MaxSettingBytes, a key past MaxSettings or a total past MaxSettingsBytes is a
// *limits.Exceeded and nothing is written. The tenant's writes take a transaction-scoped lock
// of their own, so two of them cannot both take the last slot; other tenants never wait on it.
func (s *Store) PutSetting(ctx context.Context, key string, value json.RawMessage, bounds limits.Tenant) (Setting, error) {
	id, err := tenant.IDFrom(ctx)
	if err != nil {
		return Setting{}, err
	}
	if len(value) > bounds.MaxSettingBytes {
		return Setting{}, &limits.Exceeded{Bound: limits.BoundSettingBytes, Limit: int64(bounds.MaxSettingBytes), TooLarge: true}
	}
	var out Setting
	err = s.tx(ctx, func(tx pgx.Tx) error {
		var size, count int
		var total int64
		err := tx.QueryRow(ctx, `
			WITH locked AS (SELECT pg_advisory_xact_lock(hashtextextended('tenant_settings:' || $1, 0)))
			INSERT INTO tenant_settings (tenant_id, key, value) SELECT $1, $2, $3 FROM locked
			ON CONFLICT (tenant_id, key) DO UPDATE SET value = excluded.value, updated_at = now()
			RETURNING key, value, updated_at, value_bytes`, id, key, value).Scan(&out.Key, &out.Value, &out.UpdatedAt, &size)
		if err != nil {
			return err
		}
		if size > bounds.MaxSettingBytes { // jsonb's text form can be longer than what was sent
			return &limits.Exceeded{Bound: limits.BoundSettingBytes, Limit: int64(bounds.MaxSettingBytes), TooLarge: true}
		}
		if err := tx.QueryRow(ctx, `SELECT count(*), coalesce(sum(value_bytes), 0) FROM tenant_settings`).Scan(&count, &total); err != nil {
			return err
		}
		switch {
		case count > bounds.MaxSettings:
			return &limits.Exceeded{Bound: limits.BoundSettings, Limit: int64(bounds.MaxSettings)}
		case total > bounds.MaxSettingsBytes:
			return &limits.Exceeded{Bound: limits.BoundSettingsBytes, Limit: bounds.MaxSettingsBytes}
		}
		return nil
	})
	if errors.Is(err, limits.ErrExceeded) {
		return Setting{}, err
	}
	if err != nil {
		return Setting{}, fmt.Errorf("tenantdb: put setting: %w", err)
	}
	return out, nil
}

// DeleteSetting removes one setting of the context tenant; ErrNotFound when it has none.
func (s *Store) DeleteSetting(ctx context.Context, key string) error {
	var n int64
	err := s.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM tenant_settings WHERE key = $1`, key)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("tenantdb: delete setting: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("setting %q: %w", key, ErrNotFound)
	}
	return nil
}

// ProvisionInput is what a new tenant's default rows are made from.
type ProvisionInput struct {
	DisplayName string
	// OwnerUserID becomes the tenant's first member, with role owner.
	OwnerUserID string
}

// ProvisionReport counts the rows Provision created; zero on a repeated run.
type ProvisionReport struct {
	SettingsCreated int `json:"settingsCreated"`
	MembersCreated  int `json:"membersCreated"`
}

// Provision creates the context tenant's default settings and owner member. Idempotent by
// construction: every insert is ON CONFLICT DO NOTHING on the primary key, in one transaction,
// so a second run, or a run after a crash, creates nothing twice and never overwrites a
// setting the tenant has since changed.
func (s *Store) Provision(ctx context.Context, in ProvisionInput) (ProvisionReport, error) {
	id, err := tenant.IDFrom(ctx)
	if err != nil {
		return ProvisionReport{}, err
	}
	name, err := json.Marshal(in.DisplayName)
	if err != nil {
		return ProvisionReport{}, err
	}
	keys := []string{"branding.display_name", "branding.primary_color", "locale"}
	values := [][]byte{name, []byte(`"#1f6feb"`), []byte(`"en"`)}
	var rep ProvisionReport
	// Both inserts in one round trip (a batch): provisioning runs once per onboarding, where
	// every round trip is CPU the whole platform shares.
	err = s.tx(ctx, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(`INSERT INTO tenant_settings (tenant_id, key, value)
			SELECT $1, k, v FROM unnest($2::text[], $3::jsonb[]) AS d(k, v)
			ON CONFLICT (tenant_id, key) DO NOTHING`, id, keys, values).Exec(func(tag pgconn.CommandTag) error {
			rep.SettingsCreated = int(tag.RowsAffected())
			return nil
		})
		b.Queue(`INSERT INTO tenant_members (tenant_id, user_id, role) VALUES ($1, $2, 'owner')
			ON CONFLICT (tenant_id, user_id) DO NOTHING`, id, in.OwnerUserID).Exec(func(tag pgconn.CommandTag) error {
			rep.MembersCreated = int(tag.RowsAffected())
			return nil
		})
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return ProvisionReport{}, fmt.Errorf("tenantdb: provision %s: %w", id, err)
	}
	return rep, nil
}

// Deprovision deletes every row of the context tenant in every tenant-scoped table. The tables
// come from the catalog (those with a tenant_id column under enabled and forced row-level
// security), not from a hand-kept list, so a table added later is purged too. The audit
// outbox is the one exception (RetainedTables): audit events outlive the purge of a failed
// onboarding, and offboarding removes them with the chain once they are shipped and exported. Each DELETE has
// an explicit WHERE tenant_id besides the policy: two independent guards. Idempotent: a second
// run deletes nothing and succeeds. It returns rows deleted per table.
func (s *Store) Deprovision(ctx context.Context) (map[string]int64, error) {
	id, err := tenant.IDFrom(ctx)
	if err != nil {
		return nil, err
	}
	deleted := map[string]int64{}
	err = s.tx(ctx, func(tx pgx.Tx) error {
		tables, err := TenantTables(ctx, tx)
		if err != nil {
			return err
		}
		for _, t := range tables {
			if RetainedTables[t.Sanitize()] {
				continue
			}
			tag, err := tx.Exec(ctx, `DELETE FROM `+t.Sanitize()+` WHERE tenant_id = $1`, id)
			if err != nil {
				return fmt.Errorf("purge %s: %w", t.Sanitize(), err)
			}
			deleted[t.Sanitize()] = tag.RowsAffected()
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("tenantdb: deprovision %s: %w", id, err)
	}
	return deleted, nil
}

// RetainedTables are tenant tables Deprovision leaves alone: the audit outbox, whose rows are
// audit events (see audit.Writer.ForgetTenantChain).
var RetainedTables = map[string]bool{`"public"."audit_outbox"`: true}

// TenantTables lists the tables under row-level security that carry a tenant_id column,
// as identifiers safe to splice into SQL.
func TenantTables(ctx context.Context, q rls.Querier) ([]pgx.Identifier, error) {
	rows, err := q.Query(ctx, `
		SELECT n.nspname, c.relname
		FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
		WHERE c.relkind IN ('r', 'p') AND c.relrowsecurity AND c.relforcerowsecurity
		  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
		ORDER BY 1, 2`)
	if err != nil {
		return nil, fmt.Errorf("list tenant tables: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (pgx.Identifier, error) {
		var schema, table string
		err := row.Scan(&schema, &table)
		return pgx.Identifier{schema, table}, err
	})
}

// ExportRows streams every row of the context tenant, table by table, as JSON text (one
// row_to_json per row) to fn, within one transaction so the export is a consistent snapshot.
func (s *Store) ExportRows(ctx context.Context, fn func(table string, rows pgx.Rows) error) error {
	id, err := tenant.IDFrom(ctx)
	if err != nil {
		return err
	}
	return s.tx(ctx, func(tx pgx.Tx) error {
		tables, err := TenantTables(ctx, tx)
		if err != nil {
			return err
		}
		for _, t := range tables {
			rows, err := tx.Query(ctx, `SELECT row_to_json(x)::text FROM `+t.Sanitize()+` x WHERE tenant_id = $1`, id)
			if err != nil {
				return fmt.Errorf("export %s: %w", t.Sanitize(), err)
			}
			if err := fn(t.Sanitize(), rows); err != nil {
				rows.Close()
				return err
			}
			rows.Close()
		}
		return nil
	})
}

// ReserveDocuments counts conversations and bytes the context tenant is about to keep in
// MongoDB against its bounds, before they are written there: one UPDATE whose WHERE clause
// checks the bound, so concurrent writers cannot both take the last slot (FerretDB's own
// updates could lose increments). Over a bound: a *limits.Exceeded and nothing counted. A write
// that then fails gives its reservation back with ReleaseDocuments.
func (s *Store) ReserveDocuments(ctx context.Context, conversations int, bytes int64, bounds limits.Tenant) error {
	id, err := tenant.IDFrom(ctx)
	if err != nil {
		return err
	}
	over := func(convs int, total int64) error {
		if convs > bounds.MaxConversations {
			return &limits.Exceeded{Bound: limits.BoundConversations, Limit: int64(bounds.MaxConversations)}
		}
		if total > bounds.MaxDocumentBytes {
			return &limits.Exceeded{Bound: limits.BoundDocumentBytes, Limit: bounds.MaxDocumentBytes}
		}
		return nil
	}
	if err := over(conversations, bytes); err != nil {
		return err
	}
	return s.tx(ctx, func(tx pgx.Tx) error {
		var convs int
		var total int64
		err := tx.QueryRow(ctx, `
			INSERT INTO tenant_usage AS u (tenant_id, conversations, document_bytes) VALUES ($1, $2, $3)
			ON CONFLICT (tenant_id) DO UPDATE SET conversations = u.conversations + excluded.conversations,
				document_bytes = u.document_bytes + excluded.document_bytes, updated_at = now()
			WHERE u.conversations + excluded.conversations <= $4 AND u.document_bytes + excluded.document_bytes <= $5
			RETURNING conversations, document_bytes`, id, conversations, bytes, bounds.MaxConversations, bounds.MaxDocumentBytes).Scan(&convs, &total)
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT conversations, document_bytes FROM tenant_usage`).Scan(&convs, &total); err != nil {
			return err
		}
		if err := over(convs+conversations, total+bytes); err != nil {
			return err
		}
		return fmt.Errorf("tenantdb: usage of %s refused a reservation within its bounds", id)
	})
}

// ReleaseDocuments gives back what ReserveDocuments counted for a write that did not happen
// (never below zero).
func (s *Store) ReleaseDocuments(ctx context.Context, conversations int, bytes int64) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE tenant_usage SET conversations = greatest(conversations - $1, 0),
			document_bytes = greatest(document_bytes - $2, 0), updated_at = now()`, conversations, bytes)
		return err
	})
}

// Usage is what the context tenant keeps in MongoDB, as ReserveDocuments counted it.
func (s *Store) Usage(ctx context.Context) (conversations int, bytes int64, err error) {
	err = s.tx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT conversations, document_bytes FROM tenant_usage`).Scan(&conversations, &bytes)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return err
	})
	return conversations, bytes, err
}
