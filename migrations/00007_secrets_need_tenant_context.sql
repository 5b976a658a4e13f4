-- The functions that hand out sealed tenant secrets answer only for the tenant set in the
-- transaction (app.tenant_id, as internal/stores/rls sets it). A query that reads the registry in bulk
-- and calls them per row, without setting each tenant, now gets nothing: reading secrets takes
-- the same deliberate, per-tenant step as reading tenant data. (Code running as the
-- application role can still set the context itself; this guards against mistakes, not
-- against the application.)

-- +goose Up
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION tenant_sealed_secret(p_tenant_id text)
RETURNS TABLE (secret_ciphertext bytea, secret_key_version integer)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
    SELECT t.secret_ciphertext, t.secret_key_version FROM public.tenants t
    WHERE t.tenant_id = p_tenant_id
      AND p_tenant_id = (SELECT current_setting('app.tenant_id', true))
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION tenant_secrets(p_tenant_id text)
RETURNS TABLE (current_secret bytea, previous_secret bytea, previous_expires_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
    SELECT t.secret_ciphertext,
           CASE WHEN t.previous_secret_expires_at > now() THEN t.previous_secret_ciphertext END,
           t.previous_secret_expires_at
    FROM public.tenants t
    WHERE t.tenant_id = p_tenant_id
      AND p_tenant_id = (SELECT current_setting('app.tenant_id', true))
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION tenant_sealed_secret(p_tenant_id text)
RETURNS TABLE (secret_ciphertext bytea, secret_key_version integer)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
    SELECT t.secret_ciphertext, t.secret_key_version FROM public.tenants t WHERE t.tenant_id = p_tenant_id
$$;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION tenant_secrets(p_tenant_id text)
RETURNS TABLE (current_secret bytea, previous_secret bytea, previous_expires_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
    SELECT t.secret_ciphertext,
           CASE WHEN t.previous_secret_expires_at > now() THEN t.previous_secret_ciphertext END,
           t.previous_secret_expires_at
    FROM public.tenants t
    WHERE t.tenant_id = p_tenant_id
$$;
-- +goose StatementEnd
