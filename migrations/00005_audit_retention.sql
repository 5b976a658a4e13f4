-- Audit retention per tenant: how long a tenant's audit events are kept, and a legal hold that
-- stops the retention workflow (ApplyAuditRetention) from deleting any of them. Both live in
-- the registry, next to the tenant's status, because the retention workflow lists tenants from
-- it and an operator sets them through PUT /api/meta-agent/tenants/{tenantId}/audit/policy.

-- +goose Up
ALTER TABLE tenants
    ADD COLUMN audit_retention_days integer NOT NULL DEFAULT 365,
    ADD COLUMN audit_legal_hold     boolean NOT NULL DEFAULT false,
    -- A retention of zero or less would delete every event at the next run; the API refuses it
    -- first (400), this is defence in depth.
    ADD CONSTRAINT tenants_audit_retention_positive CHECK (audit_retention_days > 0);

-- The application role reads them with the rest of the registry and updates them through the
-- policy endpoint (it already holds UPDATE on the whole table since 00001; repeated here so the
-- grant this feature needs is stated where the feature is).
GRANT SELECT (audit_retention_days, audit_legal_hold) ON tenants TO tenancy_app;
GRANT UPDATE (audit_retention_days, audit_legal_hold) ON tenants TO tenancy_app;

-- +goose Down
ALTER TABLE tenants
    DROP CONSTRAINT IF EXISTS tenants_audit_retention_positive,
    DROP COLUMN IF EXISTS audit_legal_hold,
    DROP COLUMN IF EXISTS audit_retention_days;
