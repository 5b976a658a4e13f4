// Package registry stores the tenant registry (the `tenants` table) in PostgreSQL.
//
// It is the only code that touches `tenants`. The table is control-plane data, not tenant
// data, so it has no row-level security; this package is the narrow path to it: every query is
// keyed by tenant id, and the sealed secret is read only by SealedSecret.
package registry

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/stores/rls"
)

var (
	// ErrNotFound: no tenant with that id.
	ErrNotFound = errors.New("tenant not found")
	// ErrExists: a tenant with that id is already registered.
	ErrExists = errors.New("tenant already exists")
	// ErrNotDeletable: the tenant has been provisioned; it must be offboarded instead.
	ErrNotDeletable = errors.New("tenant is provisioned and cannot be deleted")
	// ErrNotOffboarding: a tombstone was asked for a tenant that is not being offboarded.
	ErrNotOffboarding = errors.New("tenant is not offboarding")
	// ErrFrozen: the tenant is being offboarded or was offboarded; its record no longer changes.
	ErrFrozen = errors.New("tenant is offboarding or offboarded and cannot be changed")
)

// StatusError is a refusal caused by the tenant's current status, which it carries so the
// API can name it.
type StatusError struct {
	Err    error
	Status tenant.Status
}

func (e *StatusError) Error() string { return fmt.Sprintf("%v (status is %s)", e.Err, e.Status) }
func (e *StatusError) Unwrap() error { return e.Err }

// Registry reads and writes tenants through a pool connected as the application role.
type Registry struct {
	pool *pgxpool.Pool
	// db runs the statements: the pool, or a transaction (InTx).
	db dbtx
}

type dbtx interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// New returns a Registry over pool.
func New(pool *pgxpool.Pool) *Registry { return &Registry{pool: pool, db: pool} }

// Tx runs fn with a Registry whose statements run in one transaction, so a change and what
// records it (an audit event in the outbox) commit together. fn's error rolls it back.
func (r *Registry) Tx(ctx context.Context, fn func(tx pgx.Tx, reg *Registry) error) error {
	return pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		if err := fn(tx, &Registry{pool: r.pool, db: tx}); err != nil {
			return err
		}
		return rls.RunCommitHook(ctx, tx)
	})
}

// write runs fn with a Registry whose statements commit together with the context's commit
// hook (rls.WithCommitHook: an API request's audit event). Without a hook, or inside a
// transaction already, fn runs as it is.
func (r *Registry) write(ctx context.Context, fn func(reg *Registry) error) error {
	if _, inTx := r.db.(pgx.Tx); inTx || !rls.HasCommitHook(ctx) {
		return fn(r)
	}
	return r.Tx(ctx, func(_ pgx.Tx, reg *Registry) error { return fn(reg) })
}

// NewTenant is what registration stores: the tenant's fields and its already-sealed secret.
type NewTenant struct {
	Tenant           tenant.Tenant
	SealedSecret     []byte
	SecretKeyVersion int
}

const columns = `tenant_id, site_id, tenant_name, contact_email, website_url, business_industry,
	allowed_origins, permissions, tenant_type, status, status_reason, is_active, created_at, updated_at,
	coalesce(cell_id, '')`

func scan(row pgx.Row) (tenant.Tenant, error) {
	var t tenant.Tenant
	var perms []string
	err := row.Scan(&t.ID, &t.SiteID, &t.Name, &t.ContactEmail, &t.WebsiteURL, &t.BusinessIndustry,
		&t.AllowedOrigins, &perms, &t.Type, &t.Status, &t.StatusReason, &t.IsActive, &t.CreatedAt, &t.UpdatedAt, &t.CellID)
	if err != nil {
		return tenant.Tenant{}, err
	}
	t.Permissions = make([]tenant.Permission, len(perms))
	for i, p := range perms {
		t.Permissions[i] = tenant.Permission(p)
	}
	if t.AllowedOrigins == nil {
		t.AllowedOrigins = []string{}
	}
	return t, nil
}

func permStrings(perms []tenant.Permission) []string {
	out := make([]string, len(perms))
	for i, p := range perms {
		out[i] = string(p)
	}
	return out
}

// Create inserts a new tenant in status pending. A duplicate id is ErrExists, and changes nothing.
func (r *Registry) Create(ctx context.Context, n NewTenant) (out tenant.Tenant, err error) {
	err = r.write(ctx, func(reg *Registry) error {
		out, err = reg.create(ctx, n)
		return err
	})
	return out, err
}

func (r *Registry) create(ctx context.Context, n NewTenant) (tenant.Tenant, error) {
	t := n.Tenant
	row := r.db.QueryRow(ctx, `
		INSERT INTO tenants (tenant_id, site_id, tenant_name, contact_email, website_url,
			business_industry, allowed_origins, permissions, tenant_type, status,
			secret_ciphertext, secret_key_version)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', $10, $11)
		RETURNING `+columns,
		t.ID, t.SiteID, t.Name, t.ContactEmail, t.WebsiteURL, t.BusinessIndustry,
		nonNil(t.AllowedOrigins), permStrings(t.Permissions), t.Type, n.SealedSecret, n.SecretKeyVersion)
	created, err := scan(row)
	if isUniqueViolation(err) {
		return tenant.Tenant{}, fmt.Errorf("%w: %s", ErrExists, t.ID)
	}
	if err != nil {
		return tenant.Tenant{}, fmt.Errorf("registry: create %s: %w", t.ID, err)
	}
	return created, nil
}

// Get returns one tenant.
func (r *Registry) Get(ctx context.Context, id string) (tenant.Tenant, error) {
	t, err := scan(r.db.QueryRow(ctx, `SELECT `+columns+` FROM tenants WHERE tenant_id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return tenant.Tenant{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return tenant.Tenant{}, fmt.Errorf("registry: get %s: %w", id, err)
	}
	return t, nil
}

// Filter selects a page of tenants. Empty fields do not filter. After is the last tenant id of
// the previous page (keyset pagination: stable under concurrent inserts, no OFFSET scans).
// IDPrefix keeps the ids that start with it (it must be a valid id's beginning: lowercase
// letters, digits, hyphens; no LIKE wildcard can be in it); CellID the tenants placed there.
type Filter struct {
	Status   tenant.Status
	Type     tenant.Type
	IDPrefix string
	CellID   string
	After    string
	Limit    int
}

// List returns up to f.Limit tenants ordered by id, and whether more follow. Only the filters
// set enter the statement, so each query plan uses the index of what it filters by (00022's for
// a prefix, tenants_cell_idx for a cell).
func (r *Registry) List(ctx context.Context, f Filter) ([]tenant.Tenant, bool, error) {
	where := []string{"tenant_id > $1"}
	args := []any{f.After}
	add := func(clause string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(clause, len(args)))
	}
	if f.Status != "" {
		add("status = $%d", string(f.Status))
	}
	if f.Type != "" {
		add("tenant_type = $%d", string(f.Type))
	}
	if f.IDPrefix != "" {
		add("tenant_id LIKE $%d || '%%'", f.IDPrefix)
	}
	if f.CellID != "" {
		add("cell_id = $%d", f.CellID)
	}
	args = append(args, f.Limit+1)
	rows, err := r.db.Query(ctx, `SELECT `+columns+` FROM tenants WHERE `+strings.Join(where, " AND ")+
		fmt.Sprintf(` ORDER BY tenant_id LIMIT $%d`, len(args)), args...)
	if err != nil {
		return nil, false, fmt.Errorf("registry: list: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (tenant.Tenant, error) { return scan(row) })
	if err != nil {
		return nil, false, fmt.Errorf("registry: list: %w", err)
	}
	more := len(out) > f.Limit
	if more {
		out = out[:f.Limit]
	}
	return out, more, nil
}

// Update is the set of fields an operator may change directly; status moves only through
// lifecycle workflows.
type Update struct {
	SiteID           string
	Name             string
	ContactEmail     string
	WebsiteURL       string
	BusinessIndustry string
	AllowedOrigins   []string
	Permissions      []tenant.Permission
	Type             tenant.Type
}

// Update replaces the mutable fields of a tenant. An offboarding or offboarded tenant is
// ErrFrozen and is left untouched.
func (r *Registry) Update(ctx context.Context, id string, u Update) (out tenant.Tenant, err error) {
	err = r.write(ctx, func(reg *Registry) error {
		out, err = reg.update(ctx, id, u)
		return err
	})
	return out, err
}

func (r *Registry) update(ctx context.Context, id string, u Update) (tenant.Tenant, error) {
	t, err := scan(r.db.QueryRow(ctx, `
		UPDATE tenants SET site_id = $2, tenant_name = $3, contact_email = $4, website_url = $5,
			business_industry = $6, allowed_origins = $7, permissions = $8, tenant_type = $9,
			updated_at = now()
		WHERE tenant_id = $1 AND status NOT IN ('offboarding', 'offboarded')
		RETURNING `+columns,
		id, u.SiteID, u.Name, u.ContactEmail, u.WebsiteURL, u.BusinessIndustry,
		nonNil(u.AllowedOrigins), permStrings(u.Permissions), u.Type))
	if errors.Is(err, pgx.ErrNoRows) {
		current, getErr := r.Get(ctx, id)
		if getErr != nil {
			return tenant.Tenant{}, getErr
		}
		return tenant.Tenant{}, &StatusError{Err: ErrFrozen, Status: current.Status}
	}
	if err != nil {
		return tenant.Tenant{}, fmt.Errorf("registry: update %s: %w", id, err)
	}
	return t, nil
}

// SetStatus moves a tenant to status `to`, recording reason, only if its current status is one
// of `from`, in one statement, so two concurrent transitions cannot both win. updated_at is the
// clock at the update (not the transaction's start), so it orders transitions: it versions the
// status mirrored into Redis. It returns the
// tenant as it is afterwards and whether this call changed it; a tenant already in `to` is not
// an error (the caller decides whether that is idempotent success).
func (r *Registry) SetStatus(ctx context.Context, id string, to tenant.Status, reason string, from ...tenant.Status) (tenant.Tenant, bool, error) {
	fromStrings := make([]string, len(from))
	for i, s := range from {
		fromStrings[i] = string(s)
	}
	t, err := scan(r.db.QueryRow(ctx, `
		UPDATE tenants SET status = $2, status_reason = $3, updated_at = clock_timestamp()
		WHERE tenant_id = $1 AND status = ANY($4)
		RETURNING `+columns, id, string(to), reason, fromStrings))
	if err == nil {
		return t, true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return tenant.Tenant{}, false, fmt.Errorf("registry: set status %s: %w", id, err)
	}
	current, err := r.Get(ctx, id)
	return current, false, err
}

// Tombstone turns an offboarding tenant into its tombstone: status offboarded, sealed secret
// wiped, the row kept so the id is never reused and the history stays explainable.
// Idempotent: an already offboarded tenant is left as it is.
func (r *Registry) Tombstone(ctx context.Context, id, reason string) (tenant.Tenant, error) {
	t, err := scan(r.db.QueryRow(ctx, `
		UPDATE tenants SET status = 'offboarded', status_reason = $2, secret_ciphertext = '\x'::bytea,
			previous_secret_ciphertext = NULL, previous_secret_expires_at = NULL, updated_at = now()
		WHERE tenant_id = $1 AND status IN ('offboarding', 'offboarded')
		RETURNING `+columns, id, reason))
	if errors.Is(err, pgx.ErrNoRows) {
		current, getErr := r.Get(ctx, id)
		if getErr != nil {
			return tenant.Tenant{}, getErr
		}
		return tenant.Tenant{}, &StatusError{Err: ErrNotOffboarding, Status: current.Status}
	}
	if err != nil {
		return tenant.Tenant{}, fmt.Errorf("registry: tombstone %s: %w", id, err)
	}
	return t, nil
}

// Delete removes a tenant that was never provisioned (status pending). A provisioned tenant is
// ErrNotDeletable and is left untouched.
func (r *Registry) Delete(ctx context.Context, id string) error {
	return r.write(ctx, func(reg *Registry) error { return reg.delete(ctx, id) })
}

func (r *Registry) delete(ctx context.Context, id string) error {
	tag, err := r.db.Exec(ctx, `DELETE FROM tenants WHERE tenant_id = $1 AND status = 'pending'`, id)
	if err != nil {
		return fmt.Errorf("registry: delete %s: %w", id, err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	t, err := r.Get(ctx, id)
	if err != nil {
		return err
	}
	return &StatusError{Err: ErrNotDeletable, Status: t.Status}
}

// SealedSecret returns one tenant's sealed secret and its key version. The application role
// cannot SELECT the column; it goes through the tenant_sealed_secret function, which answers
// only inside that tenant's context (migrations 00003, 00007).
func (r *Registry) SealedSecret(ctx context.Context, id string) ([]byte, int, error) {
	var sealed []byte
	var version int
	err := rls.Tx(tenant.WithID(ctx, id), r.pool, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT secret_ciphertext, secret_key_version FROM tenant_sealed_secret($1)`, id).Scan(&sealed, &version)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, 0, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("registry: secret %s: %w", id, err)
	}
	return sealed, version, nil
}

// Secrets are a tenant's sealed signing secrets: the current one and, during a rotation's
// overlap, the previous one (nil once expired).
type Secrets struct {
	Current          []byte
	Previous         []byte
	PreviousExpiries time.Time
}

// Secrets reads one tenant's sealed secrets through the tenant_secrets function, inside that
// tenant's context (the application role cannot SELECT the columns).
func (r *Registry) Secrets(ctx context.Context, id string) (Secrets, error) {
	var out Secrets
	var expires *time.Time
	err := rls.Tx(tenant.WithID(ctx, id), r.pool, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT current_secret, previous_secret, previous_expires_at FROM tenant_secrets($1)`, id).
			Scan(&out.Current, &out.Previous, &expires)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return Secrets{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return Secrets{}, fmt.Errorf("registry: secrets %s: %w", id, err)
	}
	if expires != nil {
		out.PreviousExpiries = *expires
	}
	return out, nil
}

// SecretField names the tenant secret in sealing's associated data (seal.Sealer): a value
// sealed for it opens for no other field.
const SecretField = "tenants.secret"

// TenantIDs lists, by id after `after`, up to limit tenants that still hold keys or secrets
// (every status but offboarded), and whether more follow. Keyset pagination on the primary key.
func (r *Registry) TenantIDs(ctx context.Context, after string, limit int) ([]string, bool, error) {
	rows, err := r.db.Query(ctx, `SELECT tenant_id FROM tenants WHERE tenant_id > $1 AND status <> 'offboarded' ORDER BY tenant_id LIMIT $2`, after, limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("registry: tenant ids: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, false, fmt.Errorf("registry: tenant ids: %w", err)
	}
	more := len(ids) > limit
	if more {
		ids = ids[:limit]
	}
	return ids, more, nil
}

// ErrSecretChanged: the tenant's sealed secret changed between read and re-wrap (a secret
// rotation ran meanwhile); retry.
var ErrSecretChanged = errors.New("registry: the sealed secret changed while it was re-wrapped; retry")

// RewrapSecret re-seals the tenant's secret (and its previous one while it is still valid)
// with reseal (seal.Sealer.Reseal under the current master key version), recording version.
// It reports whether it wrote; a secret already under the current version is left as it is.
func (r *Registry) RewrapSecret(ctx context.Context, id string, version int, reseal func(sealed []byte) ([]byte, bool, error)) (bool, error) {
	sec, err := r.Secrets(ctx, id)
	if err != nil {
		return false, err
	}
	cur, changedCur, err := reseal(sec.Current)
	if err != nil {
		return false, fmt.Errorf("registry: re-wrap secret of %s: %w", id, err)
	}
	var prev []byte
	changedPrev := false
	if sec.Previous != nil {
		if prev, changedPrev, err = reseal(sec.Previous); err != nil {
			return false, fmt.Errorf("registry: re-wrap previous secret of %s: %w", id, err)
		}
	}
	if !changedCur && !changedPrev {
		return false, nil
	}
	var ok *bool
	err = rls.Tx(tenant.WithID(ctx, id), r.pool, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT rewrap_tenant_secret($1, $2, $3, $4, $5, $6)`, id, sec.Current, cur, sec.Previous, prev, version).Scan(&ok)
	})
	if err != nil {
		return false, fmt.Errorf("registry: re-wrap secret of %s: %w", id, err)
	}
	if ok == nil {
		return false, ErrSecretChanged
	}
	return true, nil
}

// RotateSecret stores a new sealed secret; the old one keeps verifying for overlap. Refused
// (StatusError ErrFrozen) for offboarding and offboarded tenants.
func (r *Registry) RotateSecret(ctx context.Context, id string, sealed []byte, overlap time.Duration) (out time.Time, err error) {
	err = r.write(ctx, func(reg *Registry) error {
		out, err = reg.rotateSecret(ctx, id, sealed, overlap)
		return err
	})
	return out, err
}

func (r *Registry) rotateSecret(ctx context.Context, id string, sealed []byte, overlap time.Duration) (time.Time, error) {
	var expires *time.Time
	err := r.db.QueryRow(ctx, `SELECT rotate_tenant_secret($1, $2, make_interval(secs => $3))`, id, sealed, overlap.Seconds()).Scan(&expires)
	if err != nil {
		return time.Time{}, fmt.Errorf("registry: rotate secret %s: %w", id, err)
	}
	if expires == nil {
		t, err := r.Get(ctx, id)
		if err != nil {
			return time.Time{}, err
		}
		return time.Time{}, &StatusError{Err: ErrFrozen, Status: t.Status}
	}
	return *expires, nil
}

// OriginAllowed reports whether any active tenant lists origin in its allowed origins; CORS
// preflights, which carry no tenant, are answered from it.
func (r *Registry) OriginAllowed(ctx context.Context, origin string) (bool, error) {
	var ok bool
	err := r.db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM tenants WHERE allowed_origins @> ARRAY[$1::text] AND status = 'active')`, origin).Scan(&ok)
	return ok, err
}

// Ping checks that PostgreSQL answers, for readiness.
func (r *Registry) Ping(ctx context.Context) error { return r.pool.Ping(ctx) }

func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
