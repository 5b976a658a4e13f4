package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/misybot/tenancy/internal/domain/cells"
	"github.com/misybot/tenancy/internal/keys/seal"
	"github.com/misybot/tenancy/internal/platform/config"
	"github.com/misybot/tenancy/internal/stores/cellmove"
	"github.com/misybot/tenancy/migrations"
)

// migrate applies the control plane's migrations, then the cell migrations to every registered
// cell that was registered with its owner role's URL, and brings into each cell the PostgreSQL
// rows its tenants still have in the control plane's database (cellmove: tenants placed before
// cells had PostgreSQL of their own). A cell that fails is named and the others still migrate;
// the command then fails, so a deploy script stops there.
func migrate(ctx context.Context, cfg config.Config, logger *slog.Logger) error {
	if err := migrations.Up(ctx, cfg.MigrateDatabaseURL, logger); err != nil {
		return err
	}
	sealer, err := seal.NewKeyring(cfg.MasterKeys())
	if err != nil {
		return err
	}
	pool, err := pgxpool.New(ctx, cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("migrate: the control plane's database: %w", err)
	}
	defer pool.Close()
	owner, err := pgxpool.New(ctx, cfg.MigrateDatabaseURL)
	if err != nil {
		return fmt.Errorf("migrate: the control plane's database: %w", err)
	}
	defer owner.Close()
	reg := cells.New(pool, sealer)
	list, err := reg.List(ctx)
	if err != nil {
		return fmt.Errorf("migrate: list the cells: %w", err)
	}
	var errs []error
	for _, c := range list {
		if c.ID == cells.Default {
			continue // the control plane's own database: migrated above
		}
		stores, _, err := reg.Stores(ctx, c.ID)
		if err != nil {
			errs = append(errs, fmt.Errorf("cell %s: %w", c.ID, err))
			continue
		}
		cellURL := stores.PostgresMigrateURL
		if cellURL == "" {
			// Registered without its owner's URL: its schema must be current already (migrate-cell
			// applies it); the application role can still move its tenants' rows in.
			cellURL = stores.PostgresURL
		}
		if err := migrateCell(ctx, owner, c.ID, cellURL, stores.PostgresMigrateURL != "", logger); err != nil {
			logger.Error("migrate: cell failed", "cell_id", c.ID, "err", err)
			errs = append(errs, fmt.Errorf("cell %s: %w", c.ID, err))
		}
	}
	return errors.Join(errs...)
}

// migrateCell applies the cell migrations to one cell (with its owner's URL), or checks they are
// there (with its application role's), then moves its tenants' old rows in.
func migrateCell(ctx context.Context, control *pgxpool.Pool, cell, url string, asOwner bool, logger *slog.Logger) error {
	if asOwner {
		if err := migrations.UpCell(ctx, url, logger.With("cell_id", cell)); err != nil {
			return err
		}
	}
	cellDB, err := pgxpool.New(ctx, url)
	if err != nil {
		return fmt.Errorf("the cell's PostgreSQL: %w", err)
	}
	defer cellDB.Close()
	if !asOwner {
		v, err := migrations.CellSchemaVersion(ctx, cellDB)
		if err != nil {
			return err
		}
		if v < migrations.CellVersion() {
			return fmt.Errorf("its PostgreSQL has cell migrations up to %d of %d and the cell was registered without its owner's URL: "+
				"run CELL_MIGRATE_DATABASE_URL=<its owner's URL> starter migrate-cell %s", v, migrations.CellVersion(), cell)
		}
	}
	moved, err := cellmove.Move(ctx, control, cellDB, cell)
	if len(moved) > 0 {
		logger.Info("migrate: moved the cell's tenant rows out of the control plane's database", "cell_id", cell, "rows", moved)
	}
	return err
}

// migrateCellCommand is `starter migrate-cell <cellId>`: the cell migrations and the move of
// old rows for one cell registered without its owner's URL, given in CELL_MIGRATE_DATABASE_URL
// (an environment variable, not an argument: a command line is visible to every user of the
// host). The URL is used once and not stored.
func migrateCellCommand(ctx context.Context, cfg config.Config, logger *slog.Logger, args []string) error {
	if len(args) != 1 || !cells.ValidID(args[0]) {
		return errors.New("usage: CELL_MIGRATE_DATABASE_URL=<the cell's PostgreSQL as its owner> starter migrate-cell <cellId>")
	}
	url := os.Getenv("CELL_MIGRATE_DATABASE_URL")
	if url == "" {
		return errors.New("CELL_MIGRATE_DATABASE_URL is not set: the cell's PostgreSQL as its owner role")
	}
	sealer, err := seal.NewKeyring(cfg.MasterKeys())
	if err != nil {
		return err
	}
	pool, err := pgxpool.New(ctx, cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("migrate-cell: the control plane's database: %w", err)
	}
	defer pool.Close()
	if _, err := cells.New(pool, sealer).Get(ctx, args[0]); err != nil {
		return fmt.Errorf("migrate-cell %s: %w", args[0], err)
	}
	owner, err := pgxpool.New(ctx, cfg.MigrateDatabaseURL)
	if err != nil {
		return fmt.Errorf("migrate-cell: the control plane's database: %w", err)
	}
	defer owner.Close()
	return migrateCell(ctx, owner, args[0], url, true, logger)
}
