// Package testenv connects tests to the real servers `make test` starts (PostgreSQL, Redis,
// FerretDB, Temporal dev server). Nothing is faked: a server that is not reachable fails the
// test with a line saying how to start it, rather than skipping it silently.
package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
	"go.mongodb.org/mongo-driver/mongo/readpref"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/misybot/tenancy/internal/stores/redisurl"
	"github.com/misybot/tenancy/migrations"
)

// Defaults point at the servers `make test` starts and at the test database `tenancy_test`
// that scripts/pg-bootstrap.sql creates, so tests never touch the dev database.
var (
	AppDatabaseURL   = env("TEST_DATABASE_URL", "postgres://tenancy_app:tenancy_app@127.0.0.1:5432/tenancy_test?sslmode=disable")
	OwnerDatabaseURL = env("TEST_MIGRATE_DATABASE_URL", "postgres://tenancy_owner:tenancy_owner@127.0.0.1:5432/tenancy_test?sslmode=disable")
	MongoURI         = env("TEST_MONGODB_URI", "mongodb://127.0.0.1:27017/")
	// Database 1: the dev stack uses 0 and `make bench` 2, so tests never touch their keys.
	RedisURL        = env("TEST_REDIS_URL", "redis://127.0.0.1:6379/1")
	TemporalAddress = env("TEST_TEMPORAL_ADDRESS", "127.0.0.1:7233")
	// Cell2MongoURI and Cell2RedisURL are the MongoDB and Redis of cell-2, a cell of its own
	// that scripts/cells.sh starts (make test); Cell3… those of cell-3.
	Cell2MongoURI = env("TEST_CELL2_MONGODB_URI", "mongodb://127.0.0.1:27027/")
	Cell2RedisURL = env("TEST_CELL2_REDIS_URL", "redis://127.0.0.1:6389/1")
	Cell3MongoURI = env("TEST_CELL3_MONGODB_URI", "mongodb://127.0.0.1:27037/")
	Cell3RedisURL = env("TEST_CELL3_REDIS_URL", "redis://127.0.0.1:6399/1")
	// RedisClusterURL names the three-master cluster scripts/redis-cluster.sh starts (make test).
	RedisClusterURL = env("TEST_REDIS_CLUSTER_URL", "redis+cluster://127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003")
)

// MasterKey is the TENANT_MASTER_KEY of every test that starts a worker or API process: such
// a process records the key's check value in the test database on its first start and refuses
// any other key afterwards (internal/keys/keycheck), so the e2e and chaos suites, which share the
// database, must share the key.
var MasterKey = bytes.Repeat([]byte{5}, 32)

const hint = "start the servers with `make test` (or `make services`), or point TEST_* variables at yours"

// needsServers skips an integration test under -short: `go test -short ./...` (make
// test-short) runs, in seconds, only what needs no server; `make test` runs everything.
func needsServers(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs the real servers (run `make test`)")
	}
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

var (
	migrateOnce sync.Once
	migrateErr  error
)

// Migrate applies the migrations to the test database once per test binary. Parallel test
// binaries serialise on goose's advisory lock.
func Migrate(t testing.TB) {
	t.Helper()
	needsServers(t)
	migrateOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		migrateErr = migrations.Up(ctx, OwnerDatabaseURL, Logger(t))
	})
	require.NoError(t, migrateErr, "migrate test database; %s", hint)
}

// AppPool returns a pool connected as the application role to the migrated test database.
func AppPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	Migrate(t)
	return pool(t, AppDatabaseURL)
}

// OwnerPool returns a pool connected as the owner role, for setting up and inspecting state
// the application role may not touch.
func OwnerPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	Migrate(t)
	return pool(t, OwnerDatabaseURL)
}

// TracedAppPool is AppPool with a tracer that sees every statement and batch it sends (tests
// that count round trips).
func TracedAppPool(t testing.TB, tracer pgx.QueryTracer) *pgxpool.Pool {
	t.Helper()
	Migrate(t)
	cfg, err := pgxpool.ParseConfig(AppDatabaseURL)
	require.NoError(t, err)
	cfg.ConnConfig.Tracer = tracer
	return poolOf(t, AppDatabaseURL, cfg)
}

func pool(t testing.TB, url string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	require.NoError(t, err)
	return poolOf(t, url, cfg)
}

func poolOf(t testing.TB, url string, cfg *pgxpool.Config) *pgxpool.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	require.NoError(t, p.Ping(ctx), "PostgreSQL at %s; %s", url, hint)
	t.Cleanup(p.Close)
	return p
}

// TenantID returns a valid tenant id unique to this run, so tests sharing a database never
// collide: prefix + 8 random hex digits.
func TenantID(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// Logger discards output unless the test runs with -v, where it writes to stderr.
func Logger(t testing.TB) *slog.Logger {
	w := io.Discard
	if testing.Verbose() {
		w = os.Stderr
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// TemporalClient dials the Temporal dev server, failing the test when it does not answer.
func TemporalClient(t testing.TB) client.Client {
	t.Helper()
	needsServers(t)
	c, err := client.Dial(client.Options{HostPort: TemporalAddress, Namespace: "default", Logger: tlog.NewStructuredLogger(Logger(t))})
	require.NoError(t, err, "Temporal at %s; %s", TemporalAddress, hint)
	t.Cleanup(c.Close)
	return c
}

// MongoClient connects to the MongoDB-protocol server (FerretDB under `make test`), failing the
// test when it does not answer; the message names the variable, not the URI, which may carry a
// password. The client is disconnected in t.Cleanup. Tests share the server and stay apart by
// tenant id (a database per tenant), so nothing here drops anything.
func MongoClient(t testing.TB) *mongo.Client { return MongoClientAt(t, MongoURI) }

// MongoClientAt is MongoClient for the server at uri (another cell's, for instance).
func MongoClientAt(t testing.TB, uri string) *mongo.Client {
	t.Helper()
	needsServers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := mongo.Connect(ctx, options.Client().ApplyURI(uri).SetServerSelectionTimeout(5*time.Second))
	require.NoError(t, err, "MongoDB (TEST_MONGODB_URI); %s", hint)
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	require.NoError(t, c.Ping(ctx, readpref.Primary()), "MongoDB (TEST_MONGODB_URI); %s", hint)
	return c
}

// RedisClient connects to Redis at RedisURL (database 1 by default), failing the test when it
// does not answer, and closes the client in t.Cleanup. Tests share the database and stay apart
// by tenant id (every key carries it), so nothing here flushes it.
func RedisClient(t testing.TB) *redis.Client {
	t.Helper()
	needsServers(t)
	opts, err := redis.ParseURL(RedisURL)
	require.NoError(t, err, "TEST_REDIS_URL")
	c := redis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, c.Ping(ctx).Err(), "Redis at %s; %s", opts.Addr, hint)
	return c
}

// RedisClusterClient connects to the Redis Cluster at RedisClusterURL, failing the test when it
// does not answer or is not healthy, and closes the client in t.Cleanup. Tests share the
// cluster and stay apart by tenant id, so nothing here flushes it.
func RedisClusterClient(t testing.TB) *redis.ClusterClient {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs the local Redis Cluster (run `make test`, which starts it with scripts/redis-cluster.sh)")
	}
	u, err := redisurl.NewClient(RedisClusterURL)
	require.NoError(t, err, "TEST_REDIS_CLUSTER_URL")
	c, ok := u.(*redis.ClusterClient)
	require.True(t, ok, "TEST_REDIS_CLUSTER_URL must name a cluster (redis+cluster://host:port,…)")
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const clusterHint = "start it with `scripts/redis-cluster.sh up` (make test does), or point TEST_REDIS_CLUSTER_URL at yours"
	require.NoError(t, c.Ping(ctx).Err(), "Redis Cluster (TEST_REDIS_CLUSTER_URL); %s", clusterHint)
	info, err := c.ClusterInfo(ctx).Result()
	require.NoError(t, err, "Redis Cluster (TEST_REDIS_CLUSTER_URL); %s", clusterHint)
	require.Contains(t, info, "cluster_state:ok", "Redis Cluster not healthy; %s", clusterHint)
	return c
}
