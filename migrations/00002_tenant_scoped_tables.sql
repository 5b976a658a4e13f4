-- Tenant-scoped tables. Rules every such table follows (internal/stores/rls.Verify enforces them at
-- start-up of the API and the worker):
--   * tenant_id text NOT NULL, first column of the primary key and of every main index, so each
--     lookup is an index range on one tenant (and the schema can be distributed by tenant_id);
--   * ROW LEVEL SECURITY enabled AND forced (the owner is subject to it too);
--   * one policy for all commands, USING and WITH CHECK on the transaction's tenant. The
--     sub-select makes PostgreSQL evaluate current_setting once per statement (an InitPlan),
--     not once per row, and lets the planner use it as an index condition. With no tenant set,
--     current_setting(..., true) is NULL or '', which matches no row: reads see nothing and
--     writes fail.

-- +goose Up
CREATE TABLE tenant_settings (
    tenant_id  text        NOT NULL REFERENCES tenants (tenant_id),
    key        text        NOT NULL,
    value      jsonb       NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tenant_settings_pkey PRIMARY KEY (tenant_id, key),
    CONSTRAINT tenant_settings_key_format CHECK (key ~ '^[a-z][a-z0-9_.-]{0,63}$')
);

CREATE TABLE tenant_members (
    tenant_id  text        NOT NULL REFERENCES tenants (tenant_id),
    user_id    text        NOT NULL,
    role       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tenant_members_pkey PRIMARY KEY (tenant_id, user_id),
    CONSTRAINT tenant_members_role_known CHECK (role IN ('owner', 'admin', 'member', 'viewer'))
);

CREATE TABLE tenant_api_keys (
    tenant_id   text        NOT NULL REFERENCES tenants (tenant_id),
    key_id      text        NOT NULL,
    -- SHA-256 of the key; the key itself is shown once and never stored.
    key_hash    bytea       NOT NULL,
    permissions text[]      NOT NULL DEFAULT '{}',
    expires_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tenant_api_keys_pkey PRIMARY KEY (tenant_id, key_id)
);
CREATE UNIQUE INDEX tenant_api_keys_hash_idx ON tenant_api_keys (tenant_id, key_hash);

ALTER TABLE tenant_settings ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_settings FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_settings
    USING (tenant_id = (SELECT current_setting('app.tenant_id', true)))
    WITH CHECK (tenant_id = (SELECT current_setting('app.tenant_id', true)));

ALTER TABLE tenant_members ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_members FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_members
    USING (tenant_id = (SELECT current_setting('app.tenant_id', true)))
    WITH CHECK (tenant_id = (SELECT current_setting('app.tenant_id', true)));

ALTER TABLE tenant_api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_api_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_api_keys
    USING (tenant_id = (SELECT current_setting('app.tenant_id', true)))
    WITH CHECK (tenant_id = (SELECT current_setting('app.tenant_id', true)));

GRANT SELECT, INSERT, UPDATE, DELETE ON tenant_settings, tenant_members, tenant_api_keys TO tenancy_app;

-- +goose Down
DROP TABLE IF EXISTS tenant_api_keys;
DROP TABLE IF EXISTS tenant_members;
DROP TABLE IF EXISTS tenant_settings;
