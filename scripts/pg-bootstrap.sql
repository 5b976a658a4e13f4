-- One-time PostgreSQL set-up, run as a superuser (scripts/services.sh runs it with psql as the
-- postgres OS user; docker-compose mounts it into /docker-entrypoint-initdb.d). Idempotent.
--
-- Two roles, on purpose:
--   tenancy_owner  owns the schema and runs the migrations (`starter migrate`).
--   tenancy_app    what the API and worker connect as: owns nothing, is not superuser, has no
--                  BYPASSRLS, and only holds the grants the migrations give it. Row-level
--                  security is enforced on it because it is not the table owner.
-- The passwords are development defaults; production sets its own and passes them through
-- DATABASE_URL and MIGRATE_DATABASE_URL.

SELECT 'CREATE ROLE tenancy_owner LOGIN PASSWORD ''tenancy_owner'''
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tenancy_owner')
\gexec

SELECT 'CREATE ROLE tenancy_app LOGIN PASSWORD ''tenancy_app'' NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE'
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tenancy_app')
\gexec

-- The application database and the one `make test` uses, both owned by the owner role.
SELECT 'CREATE DATABASE tenancy OWNER tenancy_owner'
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'tenancy')
\gexec

SELECT 'CREATE DATABASE tenancy_test OWNER tenancy_owner'
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'tenancy_test')
\gexec

-- The one `make bench` empties and fills (thousands of tenants), apart from dev data.
SELECT 'CREATE DATABASE tenancy_bench OWNER tenancy_owner'
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'tenancy_bench')
\gexec

-- The app role must be able to connect, nothing more at this level.
GRANT CONNECT ON DATABASE tenancy TO tenancy_app;
GRANT CONNECT ON DATABASE tenancy_test TO tenancy_app;
GRANT CONNECT ON DATABASE tenancy_bench TO tenancy_app;
