-- The master key's check value: a MAC of a fixed label under a key derived from
-- TENANT_MASTER_KEY, one row per key version, written by the first process that starts with
-- that version. A process started with another key finds a different MAC and refuses to start
-- (internal/keys/keycheck), instead of answering every tenant request with "cannot open value".
-- The MAC reveals nothing of the key. Control-plane data: no tenant_id.

-- +goose Up
CREATE TABLE master_key_checks (
    version    integer     NOT NULL,
    mac        text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT master_key_checks_pkey PRIMARY KEY (version),
    CONSTRAINT master_key_checks_version_positive CHECK (version > 0)
);
GRANT SELECT, INSERT ON master_key_checks TO tenancy_app;

-- +goose Down
DROP TABLE IF EXISTS master_key_checks;
