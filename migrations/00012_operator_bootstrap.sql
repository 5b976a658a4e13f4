-- The bootstrap operator token (OPERATOR_TOKEN) administers a fresh installation. Once named
-- platform-admins exist, `starter operator disable-bootstrap` turns it off for every process,
-- whatever their environment says: one row, written once.

-- +goose Up
CREATE TABLE operator_bootstrap (
    singleton   boolean     NOT NULL DEFAULT true,
    disabled_at timestamptz NOT NULL DEFAULT now(),
    disabled_by text        NOT NULL,
    CONSTRAINT operator_bootstrap_pkey PRIMARY KEY (singleton),
    CONSTRAINT operator_bootstrap_one_row CHECK (singleton)
);
GRANT SELECT, INSERT ON operator_bootstrap TO tenancy_app;

-- +goose Down
DROP TABLE IF EXISTS operator_bootstrap;
