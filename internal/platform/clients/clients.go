// Package clients opens the process-wide clients of the API and the worker: one pgx pool, one
// MongoDB client, one Redis client and one Temporal client, each created once per process and
// shared (never per request or per activity).
package clients

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
	"go.mongodb.org/mongo-driver/mongo/readpref"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/misybot/tenancy/internal/platform/config"
	"github.com/misybot/tenancy/internal/stores/redisurl"
)

// Clients are the shared connections. All are lazy: a dependency that is down at start makes
// /readyz report it instead of stopping the process.
type Clients struct {
	Postgres *pgxpool.Pool
	Mongo    *mongo.Client
	// Redis is a *redis.Client, or a *redis.ClusterClient when REDIS_URL names a cluster
	// (redisurl.NewClient).
	Redis    redis.UniversalClient
	Temporal client.Client
	// AuditPlatformDatabase is where the platform audit chain lives (config
	// AUDIT_PLATFORM_DATABASE; empty: audit.PlatformDatabase).
	AuditPlatformDatabase string

	cellsOnce sync.Once
	cells     *CellRouter
}

// Option adjusts how Open builds the clients.
type Option func(*client.Options)

// WithTemporalMetrics makes the Temporal client (and every worker built on it) report the SDK's
// metrics, and what workflows record with workflow.GetMetricsHandler, to h.
func WithTemporalMetrics(h client.MetricsHandler) Option {
	return func(o *client.Options) { o.MetricsHandler = h }
}

// Open builds every client from cfg. Only malformed configuration fails here.
func Open(ctx context.Context, cfg config.Config, logger *slog.Logger, opts ...Option) (*Clients, error) {
	pgCfg, err := pgxpool.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, pgCfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}

	mongoClient, err := mongo.Connect(ctx, options.Client().ApplyURI(cfg.MongoURI))
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("MONGODB_URI: %w", err)
	}

	redisClient, err := redisurl.NewClient(cfg.RedisURL)
	if err != nil {
		pool.Close()
		_ = mongoClient.Disconnect(ctx)
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}

	temporalTLS, err := cfg.TemporalTLSConfig()
	if err != nil {
		pool.Close()
		_ = mongoClient.Disconnect(ctx)
		_ = redisClient.Close()
		return nil, err
	}
	temporalOpts := client.Options{
		HostPort:  cfg.TemporalAddress,
		Namespace: cfg.TemporalNamespace,
		Logger:    tlog.NewStructuredLogger(logger),
		// nil: plaintext (the dev server); otherwise TLS, with a client certificate for mTLS.
		ConnectionOptions: client.ConnectionOptions{TLS: temporalTLS},
	}
	if cfg.TemporalAPIKey != "" {
		// Temporal Cloud: the key goes as a bearer token on every call, over TLS.
		temporalOpts.Credentials = client.NewAPIKeyStaticCredentials(cfg.TemporalAPIKey)
	}
	for _, o := range opts {
		o(&temporalOpts)
	}
	temporalClient, err := client.NewLazyClient(temporalOpts)
	if err != nil {
		pool.Close()
		_ = mongoClient.Disconnect(ctx)
		_ = redisClient.Close()
		return nil, fmt.Errorf("temporal: %w", err)
	}
	return &Clients{Postgres: pool, Mongo: mongoClient, Redis: redisClient, Temporal: temporalClient, AuditPlatformDatabase: cfg.AuditPlatformDatabase}, nil
}

// PingPostgres, PingMongo, PingRedis and PingTemporal are readiness probes.
func (c *Clients) PingPostgres(ctx context.Context) error { return c.Postgres.Ping(ctx) }

// PingMongo asks the primary (FerretDB here) to answer.
func (c *Clients) PingMongo(ctx context.Context) error { return c.Mongo.Ping(ctx, readpref.Primary()) }

// PingRedis sends PING.
func (c *Clients) PingRedis(ctx context.Context) error { return c.Redis.Ping(ctx).Err() }

// PingTemporal calls the frontend's health check.
func (c *Clients) PingTemporal(ctx context.Context) error {
	_, err := c.Temporal.CheckHealth(ctx, &client.CheckHealthRequest{})
	return err
}

// Close releases every client; errors are joined, none is skipped.
func (c *Clients) Close(ctx context.Context) error {
	var cellsErr error
	if c.cells != nil {
		cellsErr = c.cells.Close(ctx)
	}
	if c.Temporal != nil {
		c.Temporal.Close()
	}
	c.Postgres.Close()
	return errors.Join(cellsErr, c.Mongo.Disconnect(ctx), c.Redis.Close())
}
