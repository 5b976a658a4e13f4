-- 00019: cells. A cell is a complete set of stores (PostgreSQL, MongoDB, Redis); each tenant is
-- placed on one. The control plane keeps the cells and each tenant's placement here.
--
-- The stores' addresses are sealed (stores_sealed, under the master key, like tenant secrets),
-- since DSNs carry passwords; the `default` cell has none: it is the stores this deployment is
-- configured with, so an installation that had no cells moves into one with no data moved.
-- Every tenant already provisioned is placed on it; a pending one is placed at onboarding.

-- +goose Up
CREATE TABLE cells (
    cell_id       text        NOT NULL,
    region        text        NOT NULL DEFAULT 'local',
    kind          text        NOT NULL DEFAULT 'pooled',
    capacity      integer     NOT NULL,
    state         text        NOT NULL DEFAULT 'open',
    task_queue    text        NOT NULL DEFAULT '',
    stores_sealed bytea,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT cells_pkey PRIMARY KEY (cell_id),
    CONSTRAINT cells_id_format CHECK (cell_id ~ '^[a-z][a-z0-9-]{0,30}[a-z0-9]$'),
    CONSTRAINT cells_region_format CHECK (region ~ '^[a-z][a-z0-9-]{0,30}[a-z0-9]$'),
    CONSTRAINT cells_kind_known CHECK (kind IN ('pooled', 'dedicated')),
    CONSTRAINT cells_state_known CHECK (state IN ('open', 'draining', 'closed')),
    CONSTRAINT cells_capacity_positive CHECK (capacity > 0),
    CONSTRAINT cells_default_has_no_stores CHECK ((cell_id = 'default') = (stores_sealed IS NULL))
);
COMMENT ON TABLE cells IS 'rls:exempt control-plane cell registry; reached only through internal/domain/cells';

-- FerretDB on SQLite keeps about 4.4 descriptors per tenant database open under a hard limit of
-- 20,000 here (STACK.md): 3,500 tenants leave a fifth of them free.
INSERT INTO cells (cell_id, region, kind, capacity, state) VALUES ('default', 'local', 'pooled', 3500, 'open');

ALTER TABLE tenants ADD COLUMN cell_id text REFERENCES cells (cell_id);
UPDATE tenants SET cell_id = 'default' WHERE status <> 'pending';
CREATE INDEX tenants_cell_idx ON tenants (cell_id);

GRANT SELECT, INSERT, UPDATE, DELETE ON cells TO tenancy_app;
GRANT SELECT (cell_id), UPDATE (cell_id) ON tenants TO tenancy_app;

-- +goose Down
REVOKE SELECT (cell_id), UPDATE (cell_id) ON tenants FROM tenancy_app;
DROP INDEX IF EXISTS tenants_cell_idx;
ALTER TABLE tenants DROP COLUMN IF EXISTS cell_id;
DROP TABLE IF EXISTS cells;
