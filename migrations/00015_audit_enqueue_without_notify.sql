-- 00015: audit_enqueue no longer sends NOTIFY.
--
-- Every enqueue used to end with pg_notify('audit_outbox', <chain>), to wake the shipper at
-- once. Since the shipper ships a chain only once it has been quiet for a second (a workflow's
-- events go in one batch), the wake-up shipped nothing earlier than its one-second poll does,
-- and it cost at every commit: NOTIFY takes a cluster-wide lock from before the commit's WAL
-- flush to its end, so concurrent enqueuing transactions committed one at a time, and each
-- event woke the listening shipper. Readers still ship what waits before they read.
--
-- The body is 00009's without the two pg_notify calls; the Down section puts them back.

-- +goose Up
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION audit_enqueue(p_mode text, p_tenant_id text, p_event_id text,
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
        RETURN p_tenant_chain;
    END IF;
    INSERT INTO platform_audit_outbox (chain, event_id, payload, key_id) VALUES (p_platform_chain, p_event_id, p_payload, p_key_id)
    ON CONFLICT DO NOTHING RETURNING pos INTO v_pos;
    IF v_pos IS NULL THEN RETURN NULL; END IF;
    INSERT INTO audit_backlog (chain, pos, key_id) VALUES (p_platform_chain, v_pos, p_key_id);
    RETURN p_platform_chain;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION audit_enqueue(p_mode text, p_tenant_id text, p_event_id text,
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
