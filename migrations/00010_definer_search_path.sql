-- SECURITY DEFINER functions run with the owner's rights; their search_path must not let a
-- caller's objects stand in for the ones they name. pg_catalog and public were fixed, but
-- PostgreSQL searches pg_temp first unless it is named: a caller could create a temporary
-- table or function of the same name and have it used with the owner's rights. Naming pg_temp
-- last closes that (PostgreSQL documentation, "Writing SECURITY DEFINER Functions Safely").
-- internal/stores/rls.CheckDefinerFunctions refuses any such function without it at start-up.

-- +goose Up
ALTER FUNCTION tenant_sealed_secret(text) SET search_path = pg_catalog, public, pg_temp;
ALTER FUNCTION rotate_tenant_secret(text, bytea, interval) SET search_path = pg_catalog, public, pg_temp;
ALTER FUNCTION tenant_secrets(text) SET search_path = pg_catalog, public, pg_temp;

-- +goose Down
ALTER FUNCTION tenant_sealed_secret(text) SET search_path = pg_catalog, public;
ALTER FUNCTION rotate_tenant_secret(text, bytea, interval) SET search_path = pg_catalog, public;
ALTER FUNCTION tenant_secrets(text) SET search_path = pg_catalog, public;
