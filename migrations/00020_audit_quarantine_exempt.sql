-- 00020: the audit quarantine (00017) is control-plane data, exempt from row-level security.
--
-- It names the tenant whose chain an event was set aside from, but holds no payload (the event
-- stays in its outbox, under row-level security), and operators count and list it across
-- tenants. Without the marker the isolation self-check (internal/stores/rls) refused to start
-- the API and the worker: a table with tenant_id must be under forced row-level security or
-- say why not.

-- +goose Up
COMMENT ON TABLE audit_quarantine IS 'rls:exempt control-plane index of quarantined audit events (no payload); reached only through internal/domain/audit';

-- +goose Down
COMMENT ON TABLE audit_quarantine IS NULL;
