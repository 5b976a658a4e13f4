-- 00018: what the per-tenant bounds count (internal/model/limits).
--
-- tenant_settings.value_bytes is the stored size of a value as the API answers it (jsonb's text
-- form, which can be longer than what was sent: 1e5 comes back as 100000), kept by PostgreSQL
-- itself so that a write can check the tenant's total without converting every value again.
--
-- tenant_usage counts what a tenant keeps in MongoDB, where FerretDB's read-modify-write
-- updates would lose concurrent increments: a row per tenant, changed only by single UPDATE
-- statements that check the bound in their WHERE clause, so two writers can never both take
-- the last slot. A tenant-scoped table like the others (first column tenant_id, row-level
-- security forced), so Deprovision purges it and no tenant reads another's.

-- +goose Up
ALTER TABLE tenant_settings
    ADD COLUMN value_bytes integer GENERATED ALWAYS AS (octet_length(value::text)) STORED;

CREATE TABLE tenant_usage (
    tenant_id      text        NOT NULL REFERENCES tenants (tenant_id),
    conversations  integer     NOT NULL DEFAULT 0,
    document_bytes bigint      NOT NULL DEFAULT 0,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tenant_usage_pkey PRIMARY KEY (tenant_id),
    CONSTRAINT tenant_usage_not_negative CHECK (conversations >= 0 AND document_bytes >= 0)
);

ALTER TABLE tenant_usage ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_usage FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_usage
    USING (tenant_id = (SELECT current_setting('app.tenant_id', true)))
    WITH CHECK (tenant_id = (SELECT current_setting('app.tenant_id', true)));

GRANT SELECT, INSERT, UPDATE, DELETE ON tenant_usage TO tenancy_app;

-- +goose Down
DROP TABLE IF EXISTS tenant_usage;
ALTER TABLE tenant_settings DROP COLUMN IF EXISTS value_bytes;
