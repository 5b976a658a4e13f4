// Package operators authenticates the people who run the control plane: bearer tokens of 32
// random bytes, stored as SHA-256 hashes, each with a role that the management API checks on
// every endpoint.
package operators

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Role is what an operator may do.
type Role string

const (
	// RoleAdmin may do everything, including destructive operations (offboard, delete, key
	// rotation, audit policy).
	RoleAdmin Role = "platform-admin"
	// RoleOperator runs tenants day to day: register, onboard, update, suspend, restore,
	// settings, secret rotation.
	RoleOperator Role = "operator"
	// RoleAuditor reads: tenants, operations, audit trails.
	RoleAuditor Role = "auditor"
)

// Roles lists every role.
var Roles = []Role{RoleAdmin, RoleOperator, RoleAuditor}

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return slices.Contains(Roles, r) }

// Operator is an authenticated operator.
type Operator struct {
	Name string `json:"name"`
	Role Role   `json:"role"`
}

var (
	// ErrUnknownToken: no active operator has this token.
	ErrUnknownToken = errors.New("unknown or revoked operator token")
	// ErrNameTaken: an operator with this name exists.
	ErrNameTaken = errors.New("operator name already taken")
)

// Store keeps operator tokens in PostgreSQL. A bootstrap token from the environment
// (OPERATOR_TOKEN) is accepted as a platform-admin named "bootstrap", so a fresh installation
// can be administered before any token exists.
type Store struct {
	pool      DB
	bootstrap [32]byte
	hasBoot   bool
}

// DB is a pool or a transaction.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// New returns a Store; bootstrapToken may be empty.
func New(pool *pgxpool.Pool, bootstrapToken string) *Store {
	if pool == nil {
		return NewOn(nil, bootstrapToken)
	}
	return NewOn(pool, bootstrapToken)
}

// NewOn is New over any DB (tests run it in a transaction they roll back).
func NewOn(db DB, bootstrapToken string) *Store {
	s := &Store{pool: db}
	if bootstrapToken != "" {
		s.bootstrap, s.hasBoot = sha256.Sum256([]byte(bootstrapToken)), true
	}
	return s
}

// Authenticate returns the operator a token belongs to. The token is hashed before any
// comparison or lookup, so neither timing nor the database sees it.
func (s *Store) Authenticate(ctx context.Context, token string) (Operator, error) {
	sum := sha256.Sum256([]byte(token))
	if s.hasBoot && subtle.ConstantTimeCompare(sum[:], s.bootstrap[:]) == 1 {
		// Rarely used once named tokens exist, so asking PostgreSQL each time costs nothing
		// that matters, and a disable-bootstrap holds at once in every process.
		off, err := s.BootstrapDisabled(ctx)
		if err != nil {
			return Operator{}, err
		}
		if off {
			return Operator{}, ErrUnknownToken
		}
		return Operator{Name: "bootstrap", Role: RoleAdmin}, nil
	}
	if s.pool == nil {
		return Operator{}, ErrUnknownToken
	}
	var op Operator
	err := s.pool.QueryRow(ctx, `SELECT name, role FROM operator_tokens WHERE token_hash = $1 AND revoked_at IS NULL`, sum[:]).
		Scan(&op.Name, &op.Role)
	if errors.Is(err, pgx.ErrNoRows) {
		return Operator{}, ErrUnknownToken
	}
	if err != nil {
		return Operator{}, fmt.Errorf("operators: authenticate: %w", err)
	}
	return op, nil
}

// ErrNoNamedAdmin: disabling the bootstrap token would leave nobody able to administer.
var ErrNoNamedAdmin = errors.New("no named platform-admin token exists: create one first (starter operator create <name> platform-admin), or nobody could administer the platform")

// BootstrapDisabled reports whether the bootstrap token was turned off (DisableBootstrap).
func (s *Store) BootstrapDisabled(ctx context.Context) (bool, error) {
	if s.pool == nil {
		return false, nil
	}
	var off bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM operator_bootstrap)`).Scan(&off); err != nil {
		return false, fmt.Errorf("operators: bootstrap state: %w", err)
	}
	return off, nil
}

// DisableBootstrap turns the bootstrap token (OPERATOR_TOKEN) off for every process, for good,
// once a named, unrevoked platform-admin exists. Idempotent: a second call keeps the first.
func (s *Store) DisableBootstrap(ctx context.Context, by string) error {
	tag, err := s.pool.Exec(ctx, `
		INSERT INTO operator_bootstrap (disabled_by)
		SELECT $1 WHERE EXISTS (SELECT 1 FROM operator_tokens WHERE role = 'platform-admin' AND revoked_at IS NULL)
		ON CONFLICT (singleton) DO NOTHING`, by)
	if err != nil {
		return fmt.Errorf("operators: disable bootstrap: %w", err)
	}
	if tag.RowsAffected() == 0 {
		off, err := s.BootstrapDisabled(ctx)
		if err != nil || off {
			return err
		}
		return ErrNoNamedAdmin
	}
	return nil
}

// Create issues a token for a new operator and returns it; it is shown once and stored only
// as its hash.
func (s *Store) Create(ctx context.Context, name string, role Role) (string, error) {
	if !role.Valid() {
		return "", fmt.Errorf("operators: unknown role %q (one of %v)", role, Roles)
	}
	if name == "" || len(name) > 100 {
		return "", errors.New("operators: name must be 1 to 100 characters")
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	token := "mbt_" + hex.EncodeToString(raw)
	sum := sha256.Sum256([]byte(token))
	_, err := s.pool.Exec(ctx, `INSERT INTO operator_tokens (token_hash, name, role) VALUES ($1, $2, $3)`, sum[:], name, string(role))
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return "", fmt.Errorf("%w: %s", ErrNameTaken, name)
	}
	if err != nil {
		return "", fmt.Errorf("operators: create: %w", err)
	}
	return token, nil
}

// Revoke disables an operator's token. Idempotent: revoking twice keeps the first time.
func (s *Store) Revoke(ctx context.Context, name string) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE operator_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE name = $1`, name)
	if err != nil {
		return false, fmt.Errorf("operators: revoke: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// Listed is an operator as listed (never with its token).
type Listed struct {
	Operator
	CreatedAt time.Time  `json:"createdAt"`
	RevokedAt *time.Time `json:"revokedAt,omitempty"`
}

// List returns every operator.
func (s *Store) List(ctx context.Context) ([]Listed, error) {
	rows, err := s.pool.Query(ctx, `SELECT name, role, created_at, revoked_at FROM operator_tokens ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("operators: list: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Listed, error) {
		var l Listed
		err := r.Scan(&l.Name, &l.Role, &l.CreatedAt, &l.RevokedAt)
		return l, err
	})
}
