-- The audit outbox: every audit event is first a row in PostgreSQL, committed in the same
-- transaction as the change it records where there is one, and moved to MongoDB (the audit
-- store for reports, verify, retention and export) by the shipper (internal/domain/audit/ship.go).
-- Lifecycle changes never wait on MongoDB, and giving an event its place in a chain reads one
-- row here instead of a sorted query over the whole MongoDB collection.
--
--   audit_outbox           events of tenant chains; tenant data, so under forced row-level
--                          security like every tenant table (checked by internal/stores/rls).
--   platform_audit_outbox  events of platform chains (one per platform database); no tenant_id.
--   audit_backlog          what is waiting to ship: (chain, pos) of every unshipped event. No
--                          tenant data (a chain name and a number), no RLS, so one process can
--                          find every chain with work without reading tenant rows.
--   audit_heads            (from 00008) becomes the authority for sequencing: the chain's last
--                          seq and hash, the MAC key version, and shipped_seq, the last seq
--                          known to be in MongoDB (Verify reports a chain that ends before it
--                          as truncated).
--
-- Sequencing happens when events ship, per chain, under the head row's lock (one lock per
-- batch, not per event): writers only insert, so no writer ever queues on a chain head.

-- +goose Up
ALTER TABLE audit_heads DROP CONSTRAINT audit_heads_seq_positive;
ALTER TABLE audit_heads ADD CONSTRAINT audit_heads_seq_nonnegative CHECK (seq >= 0);
ALTER TABLE audit_heads ADD COLUMN key_version integer NOT NULL DEFAULT 1;
ALTER TABLE audit_heads ADD COLUMN shipped_seq bigint NOT NULL DEFAULT 0;
-- Every head anchored so far was anchored after its event was in MongoDB.
UPDATE audit_heads SET shipped_seq = seq;

CREATE TABLE audit_outbox (
    tenant_id  text        NOT NULL,
    event_id   text        NOT NULL,
    -- Insertion order; events of one chain are sequenced in this order.
    pos        bigint      GENERATED ALWAYS AS IDENTITY,
    -- The event as JSON (audit.Event), without its chain fields.
    payload    bytea       NOT NULL,
    -- Fingerprint of the chain MAC key of the process that wrote it: a shipper ships only
    -- events it can MAC the same way (processes with another key leave them to their peers).
    key_id     text        NOT NULL,
    -- Chain fields, set when the event is sequenced (NULL before).
    seq        bigint,
    prev_hash  text,
    hash       text,
    created_at timestamptz NOT NULL DEFAULT now(),
    shipped_at timestamptz,
    CONSTRAINT audit_outbox_pkey PRIMARY KEY (tenant_id, event_id),
    CONSTRAINT audit_outbox_seq_key UNIQUE (tenant_id, seq)
);
CREATE INDEX audit_outbox_pending_idx ON audit_outbox (tenant_id, pos) WHERE shipped_at IS NULL;
CREATE INDEX audit_outbox_shipped_idx ON audit_outbox (tenant_id, shipped_at) WHERE shipped_at IS NOT NULL;

ALTER TABLE audit_outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_outbox FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_outbox
    USING (tenant_id = (SELECT current_setting('app.tenant_id', true)))
    WITH CHECK (tenant_id = (SELECT current_setting('app.tenant_id', true)));

CREATE TABLE platform_audit_outbox (
    -- The chain's key in audit_heads ("<database>:platform").
    chain      text        NOT NULL,
    event_id   text        NOT NULL,
    pos        bigint      GENERATED ALWAYS AS IDENTITY,
    payload    bytea       NOT NULL,
    key_id     text        NOT NULL,
    seq        bigint,
    prev_hash  text,
    hash       text,
    created_at timestamptz NOT NULL DEFAULT now(),
    shipped_at timestamptz,
    CONSTRAINT platform_audit_outbox_pkey PRIMARY KEY (chain, event_id),
    CONSTRAINT platform_audit_outbox_seq_key UNIQUE (chain, seq)
);
CREATE INDEX platform_audit_outbox_pending_idx ON platform_audit_outbox (chain, pos) WHERE shipped_at IS NULL;
CREATE INDEX platform_audit_outbox_shipped_idx ON platform_audit_outbox (chain, shipped_at) WHERE shipped_at IS NOT NULL;

CREATE TABLE audit_backlog (
    chain      text        NOT NULL,
    pos        bigint      NOT NULL,
    key_id     text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT audit_backlog_pkey PRIMARY KEY (chain, pos)
);
CREATE INDEX audit_backlog_created_at_idx ON audit_backlog (created_at);

GRANT SELECT, INSERT, UPDATE, DELETE ON audit_outbox, platform_audit_outbox, audit_backlog TO tenancy_app;

-- audit_enqueue writes one event into the outbox in one round trip, and says where it went
-- (the chain key) or NULL when the event was there already.
--
-- p_mode 'route' picks the chain from the tenant's status, read under FOR SHARE so that a
-- concurrent status change waits for this insert (and this insert for it): the tenant's own
-- chain while the tenant exists and is not being offboarded, the platform chain otherwise. Once
-- a tenant is offboarding, nothing more can enter its chain, which offboarding drains and then
-- drops. 'tenant' and 'platform' force the chain.
--
-- Exactly once: the event id is looked up in both tables first, so a retry whose routing
-- differs from the first attempt's (the tenant's status changed in between) finds the event
-- where the first attempt put it. Shipped rows are kept for a while for this (see the shipper).
--
-- SECURITY INVOKER (the default): it runs as the application role, under row-level security.
-- It sets the transaction's tenant to the event's tenant, and refuses a transaction already
-- scoped to another tenant.
-- +goose StatementBegin
CREATE FUNCTION audit_enqueue(p_mode text, p_tenant_id text, p_event_id text,
                              p_tenant_chain text, p_platform_chain text, p_payload bytea, p_key_id text)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_status text;
    v_current text := nullif(current_setting('app.tenant_id', true), '');
    v_tenant boolean := p_mode = 'tenant';
    v_pos bigint;
BEGIN
    IF p_mode NOT IN ('route', 'tenant', 'platform') THEN
        RAISE EXCEPTION 'audit_enqueue: unknown mode %', p_mode USING ERRCODE = '22023';
    END IF;
    IF p_tenant_id IS NOT NULL THEN
        IF v_current IS NOT NULL AND v_current <> p_tenant_id THEN
            RAISE EXCEPTION 'audit_enqueue: event of tenant % in a transaction of tenant %', p_tenant_id, v_current
                USING ERRCODE = '42501';
        END IF;
        PERFORM set_config('app.tenant_id', p_tenant_id, true);
        IF p_mode = 'route' THEN
            SELECT t.status INTO v_status FROM tenants t WHERE t.tenant_id = p_tenant_id FOR SHARE;
            v_tenant := v_status IS NOT NULL AND v_status NOT IN ('offboarding', 'offboarded');
        END IF;
        IF EXISTS (SELECT 1 FROM audit_outbox o WHERE o.tenant_id = p_tenant_id AND o.event_id = p_event_id) THEN
            RETURN NULL;
        END IF;
    ELSIF v_tenant THEN
        RAISE EXCEPTION 'audit_enqueue: a tenant chain event needs a tenant' USING ERRCODE = '22023';
    END IF;
    IF EXISTS (SELECT 1 FROM platform_audit_outbox o WHERE o.chain = p_platform_chain AND o.event_id = p_event_id) THEN
        RETURN NULL;
    END IF;

    IF v_tenant THEN
        INSERT INTO audit_outbox (tenant_id, event_id, payload, key_id) VALUES (p_tenant_id, p_event_id, p_payload, p_key_id)
        ON CONFLICT DO NOTHING RETURNING pos INTO v_pos;
        IF v_pos IS NULL THEN RETURN NULL; END IF;
        INSERT INTO audit_backlog (chain, pos, key_id) VALUES (p_tenant_chain, v_pos, p_key_id);
        PERFORM pg_notify('audit_outbox', p_tenant_chain);
        RETURN p_tenant_chain;
    END IF;
    INSERT INTO platform_audit_outbox (chain, event_id, payload, key_id) VALUES (p_platform_chain, p_event_id, p_payload, p_key_id)
    ON CONFLICT DO NOTHING RETURNING pos INTO v_pos;
    IF v_pos IS NULL THEN RETURN NULL; END IF;
    INSERT INTO audit_backlog (chain, pos, key_id) VALUES (p_platform_chain, v_pos, p_key_id);
    PERFORM pg_notify('audit_outbox', p_platform_chain);
    RETURN p_platform_chain;
END
$$;
-- +goose StatementEnd
REVOKE ALL ON FUNCTION audit_enqueue(text, text, text, text, text, bytea, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_enqueue(text, text, text, text, text, bytea, text) TO tenancy_app;

-- +goose Down
DROP FUNCTION IF EXISTS audit_enqueue(text, text, text, text, text, bytea, text);
DROP TABLE IF EXISTS audit_backlog;
DROP TABLE IF EXISTS platform_audit_outbox;
DROP TABLE IF EXISTS audit_outbox;
ALTER TABLE audit_heads DROP COLUMN IF EXISTS shipped_seq;
ALTER TABLE audit_heads DROP COLUMN IF EXISTS key_version;
ALTER TABLE audit_heads DROP CONSTRAINT IF EXISTS audit_heads_seq_nonnegative;
DELETE FROM audit_heads WHERE seq = 0;
ALTER TABLE audit_heads ADD CONSTRAINT audit_heads_seq_positive CHECK (seq > 0);
