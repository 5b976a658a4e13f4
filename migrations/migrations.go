// Package migrations holds the schema as numbered SQL files, embedded in the binaries and
// applied with goose (github.com/pressly/goose/v3).
//
// Why goose: plain SQL files with up and down sections, an embed.FS source, a Provider API
// without global state, and a PostgreSQL advisory-lock session locker, so two processes
// migrating at once (two `starter migrate`, or parallel test packages) serialise instead of
// racing. Migrations run as the owner role (MIGRATE_DATABASE_URL), never as the application role.
//
// Never edit a migration that has landed: add a new file.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"log/slog"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx" for goose
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed *.sql
var files embed.FS

// Up applies every pending migration to the database at ownerURL and logs each one applied.
func Up(ctx context.Context, ownerURL string, logger *slog.Logger) error {
	db, err := sql.Open("pgx", ownerURL)
	if err != nil {
		return fmt.Errorf("migrations: open: %w", err)
	}
	defer db.Close()

	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return fmt.Errorf("migrations: locker: %w", err)
	}
	provider, err := goose.NewProvider(goose.DialectPostgres, db, files, goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	results, err := provider.Up(ctx)
	for _, r := range results {
		logger.Info("migration applied", "version", r.Source.Version, "file", r.Source.Path, "duration", r.Duration)
	}
	if err != nil {
		return fmt.Errorf("migrations: up: %w", err)
	}
	if len(results) == 0 {
		logger.Info("migrations: schema already up to date")
	}
	return nil
}
