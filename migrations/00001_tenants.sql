-- The tenant registry: one row per tenant, the control plane's own table (not tenant-scoped:
-- no row-level security here; the application role reaches it only through the registry
-- package). Field names follow the seed's tenant entity.

-- +goose Up
CREATE TABLE tenants (
    tenant_id          text        NOT NULL,
    site_id            text        NOT NULL,
    tenant_name        text        NOT NULL,
    contact_email      text        NOT NULL,
    website_url        text        NOT NULL DEFAULT '',
    business_industry  text        NOT NULL DEFAULT '',
    allowed_origins    text[]      NOT NULL DEFAULT '{}',
    permissions        text[]      NOT NULL DEFAULT '{}',
    -- AES-256-GCM ciphertext of the tenant secret (internal/keys/seal); the plain secret is never
    -- stored. secret_key_version says which key sealed it, so keys can rotate later.
    secret_ciphertext  bytea       NOT NULL,
    secret_key_version integer     NOT NULL DEFAULT 1,
    status             text        NOT NULL DEFAULT 'pending',
    tenant_type        text        NOT NULL,
    -- Derived, so it can never disagree with status.
    is_active          boolean     GENERATED ALWAYS AS (status = 'active') STORED,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT tenants_pkey PRIMARY KEY (tenant_id),
    -- Defence in depth: the API validates the same rules first and answers 400.
    CONSTRAINT tenants_tenant_id_format CHECK (tenant_id ~ '^[a-z][a-z0-9-]{1,38}[a-z0-9]$'),
    CONSTRAINT tenants_status_known CHECK (status IN
        ('pending', 'onboarding', 'active', 'suspended', 'offboarding', 'offboarded', 'failed')),
    CONSTRAINT tenants_type_known CHECK (tenant_type IN ('owner', 'enterprise', 'standard', 'trial'))
);

-- The primary key is the unique index on tenant_id; site ids are looked up from embedded bots.
CREATE INDEX tenants_site_id_idx ON tenants (site_id);
-- Listing filters by status and type, ordered by tenant_id for keyset pagination.
CREATE INDEX tenants_status_tenant_id_idx ON tenants (status, tenant_id);

GRANT SELECT, INSERT, UPDATE, DELETE ON tenants TO tenancy_app;

-- +goose Down
DROP TABLE IF EXISTS tenants;
