-- 00022: the tenant list's search by id prefix (GET /api/meta-agent/tenants?idPrefix=acme,
-- the dashboard's search box) is `tenant_id LIKE 'acme%'`. The primary key's index orders by the
-- database's collation, which cannot serve a LIKE prefix unless the collation is C; this one
-- compares bytes (text_pattern_ops), so the search is an index range whatever the collation,
-- and its cost follows the matches, not the registry's size. Built concurrently, as 00021.

-- +goose NO TRANSACTION
-- +goose Up
CREATE INDEX CONCURRENTLY IF NOT EXISTS tenants_id_prefix_idx ON tenants (tenant_id text_pattern_ops);

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS tenants_id_prefix_idx;
