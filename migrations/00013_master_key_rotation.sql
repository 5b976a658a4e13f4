-- Master key rotation re-wraps, under the new master key version, what the old one sealed: each
-- tenant's data keys (tenant_keys.wrapped_key; the data keys themselves do not change, so no
-- data is re-encrypted) and its sealed secrets. The application role may update a wrapped key;
-- it replaces a tenant's sealed secrets only through rewrap_tenant_secret, inside that tenant's
-- own context, and only if they are still what it read (a rotation racing a secret rotation
-- loses and retries).

-- +goose Up
GRANT UPDATE (wrapped_key) ON tenant_keys TO tenancy_app;

-- +goose StatementBegin
CREATE FUNCTION rewrap_tenant_secret(p_tenant_id text, p_old bytea, p_new bytea, p_old_prev bytea, p_new_prev bytea, p_version integer)
RETURNS boolean
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
    UPDATE public.tenants t
    SET secret_ciphertext = p_new,
        secret_key_version = p_version,
        previous_secret_ciphertext = CASE
            WHEN p_old_prev IS NOT NULL AND t.previous_secret_ciphertext = p_old_prev THEN p_new_prev
            WHEN t.previous_secret_expires_at IS NULL OR t.previous_secret_expires_at <= now() THEN NULL
            ELSE t.previous_secret_ciphertext END
    WHERE t.tenant_id = p_tenant_id
      AND p_tenant_id = (SELECT current_setting('app.tenant_id', true))
      AND t.secret_ciphertext = p_old
    RETURNING true
$$;
-- +goose StatementEnd
REVOKE ALL ON FUNCTION rewrap_tenant_secret(text, bytea, bytea, bytea, bytea, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION rewrap_tenant_secret(text, bytea, bytea, bytea, bytea, integer) TO tenancy_app;

-- +goose Down
DROP FUNCTION IF EXISTS rewrap_tenant_secret(text, bytea, bytea, bytea, bytea, integer);
REVOKE UPDATE (wrapped_key) ON tenant_keys FROM tenancy_app;
