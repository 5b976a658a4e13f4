// Command prune drops the MongoDB databases that tests left behind on the development servers:
// tenant databases whose tenant is registered neither in the development database nor in the
// bench's, and the platform audit databases of test stacks. FerretDB keeps every database open
// as its own SQLite file, so leftovers that pile up run by run would, after a few dozen runs,
// exhaust its open files and stop it. `make test` runs it first; it never touches a tenant of
// `make dev` or `make bench`.
//
// Usage: go run ./internal/testkit/testenv/prune
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
)

// keepers are the registries whose tenants' databases stay.
var keepers = []string{
	"postgres://tenancy_owner:tenancy_owner@127.0.0.1:5432/tenancy?sslmode=disable",
	"postgres://tenancy_owner:tenancy_owner@127.0.0.1:5432/tenancy_bench?sslmode=disable",
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "prune:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	keep := map[string]bool{}
	for _, url := range keepers {
		ids, err := registered(ctx, url)
		if err != nil {
			return err
		}
		for _, id := range ids {
			keep["tenant_"+id] = true
		}
	}
	uri := os.Getenv("TEST_MONGODB_URI")
	if uri == "" {
		uri = "mongodb://127.0.0.1:27017/"
	}
	client, err := mongo.Connect(ctx, options.Client().ApplyURI(uri))
	if err != nil {
		return err
	}
	defer func() { _ = client.Disconnect(context.Background()) }()
	names, err := client.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		return fmt.Errorf("list databases: %w", err)
	}
	dropped := 0
	for _, name := range names {
		test := strings.HasPrefix(name, "platform_e2e_") || strings.HasPrefix(name, "platform_chaos_")
		if (strings.HasPrefix(name, "tenant_") && !keep[name]) || test {
			if err := client.Database(name).Drop(ctx); err != nil {
				return fmt.Errorf("drop %s: %w", name, err)
			}
			dropped++
		}
	}
	fmt.Fprintf(os.Stderr, "prune: dropped %d databases left by tests, kept %d\n", dropped, len(names)-dropped)
	return nil
}

// registered lists the tenant ids of one registry; a database that does not exist (yet) has
// none.
func registered(ctx context.Context, url string) ([]string, error) {
	conn, err := pgx.Connect(ctx, url)
	if pgCode(err) == "3D000" { // invalid_catalog_name: no such database
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer func() { _ = conn.Close(context.Background()) }()
	rows, err := conn.Query(ctx, `SELECT tenant_id FROM tenants`)
	if pgCode(err) == "42P01" { // undefined_table: not migrated yet
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if pgCode(err) == "42P01" {
		return nil, nil
	}
	return ids, err
}

func pgCode(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}
