-- Reconciliation reports (workflows.ReconcileTenants, internal/domain/reconcile): what each run found
-- when it compared the registry with PostgreSQL, MongoDB and Redis, and what was repaired.
--
--   reconciliation_runs    one row per run (the id is the run's Temporal workflow id, stable
--                          across continue-as-new), with its scope, times, counts and approval.
--   reconciliation_drifts  one row per drift of a run: tenant, store, kind, severity, what was
--                          expected and what was found, how it may be repaired and what
--                          happened to it. The id is deterministic (kind, tenant, object), so a
--                          retried check rewrites the same row instead of adding one.
--
-- Platform-level data, not tenant data: a report is about many tenants (and about tenants the
-- registry does not know), is read only by platform admins and auditors through the API (the
-- role check is in api/reconciliation.go), and must outlive the purge of the tenants it names.
-- So no row-level security: the tenant_id column is marked exempt (rls:exempt, checked by
-- internal/stores/rls.CheckTables), as the registry is. Nothing here holds a secret: the expected and
-- found texts name statuses, types, permissions, origins, collections, indexes, tables and
-- key prefixes, never a value of tenant data or key material.

-- +goose Up
CREATE TABLE reconciliation_runs (
    run_id          text        NOT NULL,
    requested_by    text        NOT NULL DEFAULT '',
    -- Only tenants whose id starts with this were checked ('' : all).
    id_prefix       text        NOT NULL DEFAULT '',
    auto_repair     boolean     NOT NULL DEFAULT false,
    -- running: checking; reported: checks done, repairs and decisions accepted; closed: done.
    status          text        NOT NULL DEFAULT 'running',
    started_at      timestamptz NOT NULL,
    reported_at     timestamptz,
    closed_at       timestamptz,
    tenants_checked integer     NOT NULL DEFAULT 0,
    -- Tenants whose status changed while they were checked (checked again by the next run).
    tenants_skipped integer     NOT NULL DEFAULT 0,
    approved_by     text,
    approved_at     timestamptz,
    CONSTRAINT reconciliation_runs_pkey PRIMARY KEY (run_id),
    CONSTRAINT reconciliation_runs_status_known CHECK (status IN ('running', 'reported', 'closed'))
);
-- The latest run: the API's GET without an id, and the metric.
CREATE INDEX reconciliation_runs_started_at_idx ON reconciliation_runs (started_at DESC);
COMMENT ON TABLE reconciliation_runs IS 'rls:exempt platform-level reconciliation reports, read by platform admins and auditors only';

CREATE TABLE reconciliation_drifts (
    run_id      text        NOT NULL REFERENCES reconciliation_runs (run_id) ON DELETE CASCADE,
    drift_id    text        NOT NULL,
    -- The tenant the drift is about, as found (an orphan's id may be one the registry never had).
    tenant_id   text        NOT NULL,
    store       text        NOT NULL,
    kind        text        NOT NULL,
    severity    text        NOT NULL,
    expected    text        NOT NULL,
    found       text        NOT NULL,
    -- safe: repaired on approval (or automatically); decision: needs a platform admin's
    -- decision naming this drift; manual: nothing automatic can fix it.
    repair      text        NOT NULL,
    -- open; repaired; failed (the repair was tried and failed: may be decided again); gone (no
    -- longer there when the repair re-checked it); refused (re-check found the tenant changed).
    state       text        NOT NULL DEFAULT 'open',
    resolved_by text,
    resolved_at timestamptz,
    note        text        NOT NULL DEFAULT '',
    found_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT reconciliation_drifts_pkey PRIMARY KEY (run_id, drift_id),
    CONSTRAINT reconciliation_drifts_store_known CHECK (store IN ('postgres', 'mongodb', 'redis')),
    CONSTRAINT reconciliation_drifts_severity_known CHECK (severity IN ('critical', 'high', 'medium', 'low')),
    CONSTRAINT reconciliation_drifts_repair_known CHECK (repair IN ('safe', 'decision', 'manual')),
    CONSTRAINT reconciliation_drifts_state_known CHECK (state IN ('open', 'repaired', 'failed', 'gone', 'refused'))
);
-- Repairs page through a run's open drifts of one repair class.
CREATE INDEX reconciliation_drifts_open_idx ON reconciliation_drifts (run_id, repair, drift_id) WHERE state = 'open';
COMMENT ON TABLE reconciliation_drifts IS 'rls:exempt platform-level reconciliation reports, read by platform admins and auditors only';

GRANT SELECT, INSERT, UPDATE ON reconciliation_runs, reconciliation_drifts TO tenancy_app;

-- +goose Down
DROP TABLE IF EXISTS reconciliation_drifts;
DROP TABLE IF EXISTS reconciliation_runs;
