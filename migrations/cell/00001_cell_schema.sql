-- Cell migration 00001: what a cell's own PostgreSQL keeps. A cell is a complete set of stores
-- (internal/domain/cells); its PostgreSQL keeps the tenant-scoped tables of the tenants placed
-- on it, under the same rules as the control plane's migrations 00002 and 00018 (tenant_id
-- first in every key, row-level security enabled and forced, one tenant_isolation policy),
-- which internal/stores/rls.Verify checks when the cell is registered and at every start.
--
-- The `default` cell never runs these: its PostgreSQL is the control plane's database, which has
-- had these tables since 00002. Registering a cell applies them (as the cell's owner role).
--
-- Two differences with the control plane's tables, both because the registry lives elsewhere:
--   * no foreign key to tenants: that table is in the control plane's database; the registry's
--     placement (tenants.cell_id) says which cell holds a tenant's rows;
--   * the audit outbox is the control plane's (the hash chains are kept there), so a change and
--     its audit event cannot commit in one transaction across the two databases. Instead the
--     cell has its own audit_enqueue with the control plane's signature, which keeps the event
--     in audit_relay in the same transaction as the change; the worker's relay
--     (internal/domain/audit.Relay) hands each event to the control plane's audit_enqueue, which
--     ignores an event id it has already, then deletes it here. Nothing recorded is lost, and
--     nothing is recorded twice.

-- +goose Up
CREATE TABLE tenant_settings (
    tenant_id   text        NOT NULL,
    key         text        NOT NULL,
    value       jsonb       NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    value_bytes integer     GENERATED ALWAYS AS (octet_length(value::text)) STORED,
    CONSTRAINT tenant_settings_pkey PRIMARY KEY (tenant_id, key),
    CONSTRAINT tenant_settings_key_format CHECK (key ~ '^[a-z][a-z0-9_.-]{0,63}$')
);

CREATE TABLE tenant_members (
    tenant_id  text        NOT NULL,
    user_id    text        NOT NULL,
    role       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tenant_members_pkey PRIMARY KEY (tenant_id, user_id),
    CONSTRAINT tenant_members_role_known CHECK (role IN ('owner', 'admin', 'member', 'viewer'))
);

CREATE TABLE tenant_api_keys (
    tenant_id   text        NOT NULL,
    key_id      text        NOT NULL,
    -- SHA-256 of the key; the key itself is shown once and never stored.
    key_hash    bytea       NOT NULL,
    permissions text[]      NOT NULL DEFAULT '{}',
    expires_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tenant_api_keys_pkey PRIMARY KEY (tenant_id, key_id)
);
CREATE UNIQUE INDEX tenant_api_keys_hash_idx ON tenant_api_keys (tenant_id, key_hash);

CREATE TABLE tenant_usage (
    tenant_id      text        NOT NULL,
    conversations  integer     NOT NULL DEFAULT 0,
    document_bytes bigint      NOT NULL DEFAULT 0,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tenant_usage_pkey PRIMARY KEY (tenant_id),
    CONSTRAINT tenant_usage_not_negative CHECK (conversations >= 0 AND document_bytes >= 0)
);

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

ALTER TABLE tenant_usage ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_usage FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_usage
    USING (tenant_id = (SELECT current_setting('app.tenant_id', true)))
    WITH CHECK (tenant_id = (SELECT current_setting('app.tenant_id', true)));

GRANT SELECT, INSERT, UPDATE, DELETE ON tenant_settings, tenant_members, tenant_api_keys, tenant_usage TO tenancy_app;
-- Registration reads, as the application role, which cell migrations the database has.
GRANT SELECT ON cell_schema_version TO tenancy_app;

-- Audit events waiting for the relay, in the order they committed (pos). The arguments of the
-- control plane's audit_enqueue, kept as given. Not tenant-scoped: the relay reads every
-- tenant's events, as the control plane's shipper does; no tenant path reads it.
CREATE TABLE audit_relay (
    pos            bigint      GENERATED ALWAYS AS IDENTITY,
    mode           text        NOT NULL,
    event_tenant   text,
    event_id       text        NOT NULL,
    tenant_chain   text,
    platform_chain text        NOT NULL,
    payload        bytea       NOT NULL,
    key_id         text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT audit_relay_pkey PRIMARY KEY (pos),
    CONSTRAINT audit_relay_event_once UNIQUE NULLS NOT DISTINCT (event_tenant, platform_chain, event_id)
);
COMMENT ON TABLE audit_relay IS 'rls:exempt audit events on their way to the control plane''s outbox; reached only through internal/domain/audit';
GRANT SELECT, INSERT, DELETE ON audit_relay TO tenancy_app;

-- audit_enqueue as the control plane's (migration 00015) is called, so the same Go code records
-- an event in either database: here it only keeps the call for the relay. It returns the chain
-- the event is for (NULL when this event id waits here already), as the control plane's does;
-- whether it goes to the tenant's chain or the platform's is decided there, when relayed.
-- +goose StatementBegin
CREATE FUNCTION audit_enqueue(p_mode text, p_tenant_id text, p_event_id text,
                              p_tenant_chain text, p_platform_chain text, p_payload bytea, p_key_id text)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_current text := nullif(current_setting('app.tenant_id', true), '');
    v_pos bigint;
BEGIN
    IF p_mode NOT IN ('route', 'tenant', 'platform') THEN
        RAISE EXCEPTION 'audit_enqueue: unknown mode %', p_mode USING ERRCODE = '22023';
    END IF;
    IF p_tenant_id IS NOT NULL AND v_current IS NOT NULL AND v_current <> p_tenant_id THEN
        RAISE EXCEPTION 'audit_enqueue: event of tenant % in a transaction of tenant %', p_tenant_id, v_current
            USING ERRCODE = '42501';
    END IF;
    IF p_mode = 'tenant' AND p_tenant_id IS NULL THEN
        RAISE EXCEPTION 'audit_enqueue: a tenant chain event needs a tenant' USING ERRCODE = '22023';
    END IF;
    INSERT INTO audit_relay (mode, event_tenant, event_id, tenant_chain, platform_chain, payload, key_id)
    VALUES (p_mode, p_tenant_id, p_event_id, p_tenant_chain, p_platform_chain, p_payload, p_key_id)
    ON CONFLICT DO NOTHING RETURNING pos INTO v_pos;
    IF v_pos IS NULL THEN RETURN NULL; END IF;
    RETURN coalesce(p_tenant_chain, p_platform_chain);
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION IF EXISTS audit_enqueue(text, text, text, text, text, bytea, text);
DROP TABLE IF EXISTS audit_relay;
DROP TABLE IF EXISTS tenant_usage;
DROP TABLE IF EXISTS tenant_api_keys;
DROP TABLE IF EXISTS tenant_members;
DROP TABLE IF EXISTS tenant_settings;
