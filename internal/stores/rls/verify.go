package rls

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ExemptMarker starts the table comment of a table that has a tenant_id column but is not
// tenant data (the registry). Exemptions are explicit and visible in the schema, never implied.
const ExemptMarker = "rls:exempt"

// Querier is a pool, a connection or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Verify is the isolation self-check run at start-up of the API and the worker and by
// `starter verify-isolation`: CheckTables, then CheckRole for the connected role. The error
// names every offending table or role attribute.
func Verify(ctx context.Context, q Querier) error {
	return errors.Join(CheckTables(ctx, q), CheckRole(ctx, q), CheckDefinerFunctions(ctx, q))
}

// CheckDefinerFunctions fails for every SECURITY DEFINER function in a user schema whose
// search_path is not fixed or does not end with pg_temp. Such a function runs with its owner's
// rights; PostgreSQL looks in pg_temp first unless pg_temp is named, so without it a caller's
// temporary object of the same name would be used with those rights.
func CheckDefinerFunctions(ctx context.Context, q Querier) error {
	rows, err := q.Query(ctx, `
		SELECT p.oid::regprocedure::text,
		       coalesce((SELECT substr(c, 13) FROM unnest(p.proconfig) AS c WHERE c LIKE 'search_path=%'), '')
		FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
		WHERE p.prosecdef AND n.nspname NOT IN ('pg_catalog', 'information_schema')
		ORDER BY 1`)
	if err != nil {
		return fmt.Errorf("rls: read functions: %w", err)
	}
	var errs []error
	var name, path string
	_, err = pgx.ForEachRow(rows, []any{&name, &path}, func() error {
		parts := strings.Split(path, ",")
		if path == "" || strings.TrimSpace(parts[len(parts)-1]) != "pg_temp" {
			errs = append(errs, fmt.Errorf("SECURITY DEFINER function %s has search_path %q: it must be fixed and end with pg_temp", name, path))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("rls: read functions: %w", err)
	}
	return errors.Join(errs...)
}

// CheckTables finds, from the catalog, every table in a user schema with a tenant_id column, and
// fails for each that lacks ENABLE or FORCE ROW LEVEL SECURITY or a policy for all commands on
// app.tenant_id, or that has any other permissive policy (which would widen access). Tables marked with ExemptMarker are skipped. A table added later by someone
// who never heard of RLS is caught here, because the list comes from the catalog.
func CheckTables(ctx context.Context, q Querier) error {
	rows, err := q.Query(ctx, `
		SELECT format('%I.%I', n.nspname, c.relname),
		       c.relrowsecurity,
		       c.relforcerowsecurity,
		       coalesce((SELECT array_agg(concat_ws(chr(31), p.polname, p.polcmd::text, coalesce(pg_get_expr(p.polqual, p.polrelid), ''), coalesce(pg_get_expr(p.polwithcheck, p.polrelid), '')))
		                 FROM pg_policy p WHERE p.polrelid = c.oid AND p.polpermissive), '{}')
		FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
		WHERE c.relkind IN ('r', 'p')
		  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
		  AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'
		  AND coalesce(obj_description(c.oid, 'pg_class'), '') NOT LIKE $1 || '%'
		ORDER BY 1`, ExemptMarker)
	if err != nil {
		return fmt.Errorf("rls: read catalog: %w", err)
	}
	var errs []error
	var name string
	var enabled, forced bool
	var policies []string
	_, err = pgx.ForEachRow(rows, []any{&name, &enabled, &forced, &policies}, func() error {
		if !enabled {
			errs = append(errs, fmt.Errorf("table %s has tenant_id but row level security is not enabled", name))
		}
		if !forced {
			errs = append(errs, fmt.Errorf("table %s has tenant_id but row level security is not forced", name))
		}
		isolated := false
		for _, p := range policies {
			parts := strings.SplitN(p, "\x1f", 4) // unit separator: cannot occur in names or expressions
			policy, cmd, qual, check := parts[0], parts[1], parts[2], parts[3]
			if !isTenantExpr(qual) || (check != "" && !isTenantExpr(check)) {
				// Permissive policies are OR-ed: one that is not the tenant condition widens
				// access to every tenant's rows, whatever the other policies say.
				errs = append(errs, fmt.Errorf("table %s has a permissive policy %s that is not the tenant condition on %s: it widens access", name, policy, Setting))
				continue
			}
			if cmd == "*" {
				isolated = true
			}
		}
		if !isolated {
			errs = append(errs, fmt.Errorf("table %s has tenant_id but no policy for all commands on %s", name, Setting))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("rls: read catalog: %w", err)
	}
	return errors.Join(errs...)
}

// tenantExpr is the policy condition every tenant table uses, as PostgreSQL prints it back,
// without spaces: tenant_id = (SELECT current_setting('app.tenant_id', true)).
const tenantExpr = "(tenant_id=(SELECTcurrent_setting('app.tenant_id'::text,true)))"

// isTenantExpr compares a policy expression with tenantExpr, ignoring spacing and the column
// alias some PostgreSQL versions print ("AS current_setting").
func isTenantExpr(expr string) bool {
	e := strings.Join(strings.Fields(expr), "")
	e = strings.ReplaceAll(e, "AScurrent_setting", "")
	return e == tenantExpr
}

// CheckRole fails when the connected role could step around row-level security: it is a
// superuser, has BYPASSRLS, or owns (or is a member of the owner of) any table in a user schema.
func CheckRole(ctx context.Context, q Querier) error {
	var role string
	var super, bypass bool
	err := q.QueryRow(ctx, `SELECT current_user, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user`).
		Scan(&role, &super, &bypass)
	if err != nil {
		return fmt.Errorf("rls: read role: %w", err)
	}
	var errs []error
	if super {
		errs = append(errs, fmt.Errorf("role %s is a superuser: it bypasses row level security", role))
	}
	if bypass {
		errs = append(errs, fmt.Errorf("role %s has BYPASSRLS", role))
	}
	rows, err := q.Query(ctx, `
		SELECT format('%I.%I', n.nspname, c.relname)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
		  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
		  AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'
		  AND pg_has_role(current_user, c.relowner, 'MEMBER')
		ORDER BY 1`)
	if err != nil {
		return fmt.Errorf("rls: read ownership: %w", err)
	}
	var table string
	_, err = pgx.ForEachRow(rows, []any{&table}, func() error {
		errs = append(errs, fmt.Errorf("role %s owns table %s: owners can disable row level security", role, table))
		return nil
	})
	if err != nil {
		return fmt.Errorf("rls: read ownership: %w", err)
	}
	return errors.Join(errs...)
}

// VerifyAtStart runs Verify for a process about to serve tenants, retrying briefly while
// PostgreSQL is still coming up. A process that cannot prove isolation does not start.
func VerifyAtStart(ctx context.Context, q Querier, logger *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		err := Verify(ctx, q)
		if err == nil {
			logger.Info("isolation self-check passed")
			return nil
		}
		if !isConnError(err) || ctx.Err() != nil {
			return fmt.Errorf("isolation self-check failed: %w", err)
		}
		logger.Warn("isolation self-check: database not reachable yet, retrying", "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("isolation self-check failed: %w", err)
		case <-time.After(time.Second):
		}
	}
}

// isConnError tells a database that is not reachable (worth a retry) from a check that ran
// and found a problem (not worth one).
func isConnError(err error) bool {
	var connErr *pgconn.ConnectError
	return errors.As(err, &connErr)
}
