package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

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
		if stores.PostgresMigrateURL == "" {
			logger.Warn("migrate: cell registered without its owner role's URL; apply the cell migrations to it by hand if it is behind",
				"cell_id", c.ID, "cell_migrations", migrations.CellVersion())
			continue
		}
		if err := migrateCell(ctx, owner, c.ID, stores.PostgresMigrateURL, logger); err != nil {
			logger.Error("migrate: cell failed", "cell_id", c.ID, "err", err)
			errs = append(errs, fmt.Errorf("cell %s: %w", c.ID, err))
		}
	}
	return errors.Join(errs...)
}

// migrateCell applies the cell migrations to one cell, then moves its tenants' old rows in.
func migrateCell(ctx context.Context, control *pgxpool.Pool, cell, ownerURL string, logger *slog.Logger) error {
	if err := migrations.UpCell(ctx, ownerURL, logger.With("cell_id", cell)); err != nil {
		return err
	}
	cellDB, err := pgxpool.New(ctx, ownerURL)
	if err != nil {
		return fmt.Errorf("the cell's PostgreSQL: %w", err)
	}
	defer cellDB.Close()
	moved, err := cellmove.Move(ctx, control, cellDB, cell)
	if len(moved) > 0 {
		logger.Info("migrate: moved the cell's tenant rows out of the control plane's database", "cell_id", cell, "rows", moved)
	}
	return err
}
