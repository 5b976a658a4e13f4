-- Tenant security: secret rotation with an overlap, operator tokens with roles, and the index
-- that answers CORS preflights.

-- +goose Up
-- During a rotation's overlap the previous secret still verifies signatures, until
-- previous_secret_expires_at. Like the current secret, the application role cannot SELECT it:
-- it reads both through tenant_secrets(), one tenant at a time.
ALTER TABLE tenants ADD COLUMN previous_secret_ciphertext bytea;
ALTER TABLE tenants ADD COLUMN previous_secret_expires_at timestamptz;
GRANT SELECT (previous_secret_expires_at) ON tenants TO tenancy_app;

-- +goose StatementBegin
CREATE FUNCTION tenant_secrets(p_tenant_id text)
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
REVOKE ALL ON FUNCTION tenant_secrets(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenant_secrets(text) TO tenancy_app;

-- Rotation moves the current sealed secret to "previous" inside the database, so the
-- application role never needs to read it. Refused for offboarding and offboarded tenants.
-- +goose StatementBegin
CREATE FUNCTION rotate_tenant_secret(p_tenant_id text, p_new_secret bytea, p_overlap interval)
RETURNS timestamptz
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
    UPDATE public.tenants
    SET previous_secret_ciphertext = secret_ciphertext,
        previous_secret_expires_at = now() + p_overlap,
        secret_ciphertext = p_new_secret,
        updated_at = now()
    WHERE tenant_id = p_tenant_id AND status NOT IN ('offboarding', 'offboarded')
    RETURNING previous_secret_expires_at
$$;
-- +goose StatementEnd
REVOKE ALL ON FUNCTION rotate_tenant_secret(text, bytea, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION rotate_tenant_secret(text, bytea, interval) TO tenancy_app;

-- Operators authenticate with bearer tokens; only their SHA-256 is stored (the tokens are 32
-- random bytes, so a fast hash is enough: there is nothing to brute-force).
CREATE TABLE operator_tokens (
    token_hash bytea       NOT NULL,
    name       text        NOT NULL,
    role       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz,
    CONSTRAINT operator_tokens_pkey PRIMARY KEY (token_hash),
    CONSTRAINT operator_tokens_name_key UNIQUE (name),
    CONSTRAINT operator_tokens_role_known CHECK (role IN ('platform-admin', 'operator', 'auditor'))
);
GRANT SELECT, INSERT, UPDATE ON operator_tokens TO tenancy_app;

-- CORS preflights carry no tenant header: they are answered for origins some tenant allows.
CREATE INDEX tenants_allowed_origins_idx ON tenants USING gin (allowed_origins);

-- +goose Down
DROP INDEX IF EXISTS tenants_allowed_origins_idx;
DROP TABLE IF EXISTS operator_tokens;
DROP FUNCTION IF EXISTS rotate_tenant_secret(text, bytea, interval);
DROP FUNCTION IF EXISTS tenant_secrets(text);
ALTER TABLE tenants DROP COLUMN IF EXISTS previous_secret_expires_at;
ALTER TABLE tenants DROP COLUMN IF EXISTS previous_secret_ciphertext;
