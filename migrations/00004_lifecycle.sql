-- Lifecycle support: why a tenant failed, and the tenant's key material.

-- +goose Up
-- The reason a lifecycle workflow left the tenant `failed` (or last changed its status), shown
-- to operators. Never holds a secret.
ALTER TABLE tenants ADD COLUMN status_reason text NOT NULL DEFAULT '';
GRANT SELECT (status_reason) ON tenants TO tenancy_app;

-- Per-tenant data keys, each stored wrapped (AES-256-GCM) under the tenant's key-encryption
-- key, itself derived from TENANT_MASTER_KEY and never stored. Versioned so keys can rotate:
-- new writes use the newest version, old versions still decrypt. Deleting a tenant's rows here
-- destroys its keys and makes its ciphertexts unreadable (offboarding does this first).
-- Tenant-scoped like every other tenant table: forced row-level security.
CREATE TABLE tenant_keys (
    tenant_id   text        NOT NULL REFERENCES tenants (tenant_id),
    version     integer     NOT NULL,
    wrapped_key bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tenant_keys_pkey PRIMARY KEY (tenant_id, version),
    CONSTRAINT tenant_keys_version_positive CHECK (version > 0)
);
ALTER TABLE tenant_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_keys
    USING (tenant_id = (SELECT current_setting('app.tenant_id', true)))
    WITH CHECK (tenant_id = (SELECT current_setting('app.tenant_id', true)));
GRANT SELECT, INSERT, DELETE ON tenant_keys TO tenancy_app;

-- +goose Down
DROP TABLE IF EXISTS tenant_keys;
ALTER TABLE tenants DROP COLUMN IF EXISTS status_reason;
