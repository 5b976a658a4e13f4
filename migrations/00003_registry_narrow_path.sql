-- The registry (`tenants`) is control-plane data: not tenant-scoped, so no row-level security.
-- It is marked exempt from the isolation self-check by the comment below (internal/stores/rls), and
-- the application role's access to it is narrowed instead:
--   * it may read every column except secret_ciphertext;
--   * it reads one tenant's sealed secret at a time, by id, through tenant_sealed_secret(),
--     a SECURITY DEFINER function owned by the owner role (00007 also requires the tenant's
--     own context, so a query cannot read them in bulk by mistake);
--   * it may still write the sealed secret (registration, rotation), never read it back directly.

-- +goose Up
COMMENT ON TABLE tenants IS 'rls:exempt control-plane registry; reached only through internal/domain/registry';

REVOKE SELECT ON tenants FROM tenancy_app;
GRANT SELECT (tenant_id, site_id, tenant_name, contact_email, website_url, business_industry,
              allowed_origins, permissions, secret_key_version, status, tenant_type, is_active,
              created_at, updated_at)
    ON tenants TO tenancy_app;

-- +goose StatementBegin
CREATE FUNCTION tenant_sealed_secret(p_tenant_id text)
RETURNS TABLE (secret_ciphertext bytea, secret_key_version integer)
LANGUAGE sql STABLE SECURITY DEFINER
-- A fixed search_path: a SECURITY DEFINER function must not resolve names through the caller's.
SET search_path = pg_catalog, public
AS $$
    SELECT t.secret_ciphertext, t.secret_key_version FROM public.tenants t WHERE t.tenant_id = p_tenant_id
$$;
-- +goose StatementEnd
REVOKE ALL ON FUNCTION tenant_sealed_secret(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenant_sealed_secret(text) TO tenancy_app;

-- +goose Down
DROP FUNCTION IF EXISTS tenant_sealed_secret(text);
GRANT SELECT ON tenants TO tenancy_app;
COMMENT ON TABLE tenants IS NULL;
