// Package migrations holds the schema as numbered SQL files, embedded in the binaries and
// applied with goose (github.com/pressly/goose/v3). There are two sets:
//
//   - the control plane's (*.sql here), applied to the deployment's database by `starter
//     migrate`: the registry, cells, operators, approvals, reconciliation, audit; and, for the
//     `default` cell, which is the deployment's own stores, the tenant-scoped tables too;
//   - a cell's (cell/*.sql), applied to each other cell's PostgreSQL when the cell is registered
//     and by `starter migrate`: the tenant-scoped tables only. Its versions are kept in a table
//     of their own (CellVersionTable), so the two sets never mistake one another's.
//
// Why goose: plain SQL files with up and down sections, an embed.FS source, a Provider API
// without global state, and a PostgreSQL advisory-lock session locker, so two processes
// migrating at once (two `starter migrate`, or parallel test packages) serialise instead of
// racing. Migrations run as the owner role (MIGRATE_DATABASE_URL, or a cell's owner URL),
// never as the application role.
//
// Never edit a migration that has landed: add a new file.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx" for goose
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed *.sql
var controlFiles embed.FS

//go:embed cell/*.sql
var cellFiles embed.FS

// CellVersionTable is where a cell's PostgreSQL records the cell migrations applied.
const CellVersionTable = "cell_schema_version"

// Up applies every pending control-plane migration to the database at ownerURL and logs each
// one applied.
func Up(ctx context.Context, ownerURL string, logger *slog.Logger) error {
	return up(ctx, ownerURL, controlFiles, "migrations", logger)
}

// UpCell applies every pending cell migration to a cell's PostgreSQL at ownerURL (its owner
// role). Idempotent: a cell already current is left alone. Errors never quote ownerURL.
func UpCell(ctx context.Context, ownerURL string, logger *slog.Logger) error {
	sub, err := fs.Sub(cellFiles, "cell")
	if err != nil {
		return fmt.Errorf("cell migrations: %w", err)
	}
	return up(ctx, ownerURL, sub, "cell migrations", logger, goose.WithTableName(CellVersionTable))
}

// CellVersion is the newest cell migration: a cell whose PostgreSQL reports less
// (CellSchemaVersion) lacks tables the tenant paths use.
func CellVersion() int64 {
	entries, _ := fs.Glob(cellFiles, "cell/*.sql")
	var newest int64
	for _, e := range entries {
		var v int64
		if _, err := fmt.Sscanf(e[len("cell/"):], "%d_", &v); err == nil && v > newest {
			newest = v
		}
	}
	return newest
}

// CellSchemaVersion reads the newest cell migration applied to the database q is connected
// to: 0 when none is (no version table yet), and ErrControlPlane when it is the control
// plane's own database, which must never be registered as a cell (it is the default cell).
func CellSchemaVersion(ctx context.Context, q interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}) (int64, error) {
	var control, cell bool
	err := q.QueryRow(ctx, `SELECT to_regclass('public.cells') IS NOT NULL, to_regclass('public.`+CellVersionTable+`') IS NOT NULL`).Scan(&control, &cell)
	if err != nil {
		return 0, fmt.Errorf("cell schema: %w", err)
	}
	if control {
		return 0, ErrControlPlane
	}
	if !cell {
		return 0, nil
	}
	var v int64
	err = q.QueryRow(ctx, `SELECT coalesce(max(version_id), 0) FROM `+CellVersionTable+` WHERE is_applied`).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("cell schema: %w", err)
	}
	return v, nil
}

// ErrControlPlane: the database is the control plane's own.
var ErrControlPlane = errors.New("this is the control plane's database (the default cell's); a cell needs a PostgreSQL database of its own")

func up(ctx context.Context, ownerURL string, files fs.FS, what string, logger *slog.Logger, opts ...goose.ProviderOption) error {
	db, err := sql.Open("pgx", ownerURL)
	if err != nil {
		return fmt.Errorf("%s: open: %w", what, err)
	}
	defer db.Close()

	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return fmt.Errorf("%s: locker: %w", what, err)
	}
	provider, err := goose.NewProvider(goose.DialectPostgres, db, files, append(opts, goose.WithSessionLocker(locker))...)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	results, err := provider.Up(ctx)
	for _, r := range results {
		logger.Info(what+": applied", "version", r.Source.Version, "file", r.Source.Path, "duration", r.Duration)
	}
	if err != nil {
		return fmt.Errorf("%s: up: %w", what, err)
	}
	if len(results) == 0 {
		logger.Info(what + ": schema already up to date")
	}
	return nil
}
