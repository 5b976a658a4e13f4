package testenv

import (
	"bufio"
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/migrations"
)

// CellPostgres are a local cell's PostgreSQL connection strings for the test database, as its
// application role and as its owner: TEST_CELL<k>_POSTGRES_URL and
// TEST_CELL<k>_POSTGRES_OWNER_URL, or built from the password file scripts/cells.sh writes
// (.state/cells/cell-<k>/pg-password). k is 2 or 3 (cell-1 is the main stack).
type CellPostgres struct {
	AppURL   string
	OwnerURL string
	// Password is the application role's, for tests that look for it where it must not be.
	Password string
}

var (
	cellSchemaOnce [4]sync.Once
	cellSchemaErr  [4]error
)

// CellPostgresOf returns cell-k's PostgreSQL with the cell migrations applied (once per test
// binary; parallel binaries serialise on goose's lock).
func CellPostgresOf(t testing.TB, k int) CellPostgres {
	t.Helper()
	needsServers(t)
	require.True(t, k == 2 || k == 3, "local cells for tests are cell-2 and cell-3")
	c := CellPostgres{
		AppURL:   os.Getenv(fmt.Sprintf("TEST_CELL%d_POSTGRES_URL", k)),
		OwnerURL: os.Getenv(fmt.Sprintf("TEST_CELL%d_POSTGRES_OWNER_URL", k)),
	}
	if c.AppURL == "" || c.OwnerURL == "" {
		c.AppURL, c.OwnerURL = fromPasswordFile(t, k)
	}
	u, err := url.Parse(c.AppURL)
	require.NoError(t, err, "cell-%d's PostgreSQL URL", k)
	c.Password, _ = u.User.Password()
	cellSchemaOnce[k].Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cellSchemaErr[k] = migrations.UpCell(ctx, c.OwnerURL, Logger(t))
	})
	require.NoError(t, cellSchemaErr[k], "cell migrations on cell-%d; %s", k, hint)
	return c
}

// CellOwnerPool is a pool on cell-k's test database as its owner role, for looking at rows the
// application role may not see.
func CellOwnerPool(t testing.TB, k int) *pgxpool.Pool {
	t.Helper()
	return pool(t, CellPostgresOf(t, k).OwnerURL)
}

// CellAppPool is a pool on cell-k's test database as its application role.
func CellAppPool(t testing.TB, k int) *pgxpool.Pool {
	t.Helper()
	return pool(t, CellPostgresOf(t, k).AppURL)
}

func fromPasswordFile(t testing.TB, k int) (app, owner string) {
	t.Helper()
	_, here, _, _ := runtime.Caller(0)
	file := filepath.Join(filepath.Dir(here), "..", "..", "..", ".state", "cells", fmt.Sprintf("cell-%d", k), "pg-password")
	f, err := os.Open(file)
	require.NoError(t, err, "cell-%d's passwords: start the cells with `make cells` (scripts/cells.sh up), or set TEST_CELL%d_POSTGRES_URL and TEST_CELL%d_POSTGRES_OWNER_URL", k, k, k)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 5) // host:port:database:user:password
		if len(parts) != 5 {
			continue
		}
		u := url.URL{Scheme: "postgres", User: url.UserPassword(parts[3], parts[4]), Host: parts[0] + ":" + parts[1],
			Path: "/tenancy_test", RawQuery: "sslmode=disable"}
		switch parts[3] {
		case "tenancy_app":
			app = u.String()
		case "tenancy_owner":
			owner = u.String()
		}
	}
	require.NotEmpty(t, app, "%s names no tenancy_app", file)
	require.NotEmpty(t, owner, "%s names no tenancy_owner", file)
	return app, owner
}
