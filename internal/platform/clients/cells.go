package clients

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
	"go.mongodb.org/mongo-driver/mongo/readpref"

	"github.com/misybot/tenancy/internal/domain/audit"
	"github.com/misybot/tenancy/internal/domain/cells"
	"github.com/misybot/tenancy/internal/keys/seal"
	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/stores/redisurl"
	"github.com/misybot/tenancy/internal/stores/tenantdb"
	"github.com/misybot/tenancy/internal/stores/tenantmongo"
	"github.com/misybot/tenancy/internal/stores/tenantredis"
)

// CellRouter gives each tenant path the clients of the tenant's cell: the process's own for the
// default cell, and for every other cell clients opened on first use and kept for the
// process's life (one MongoDB and one Redis client per cell, each pooling its connections).
// A tenant's cell is read from the registry once and kept: it changes only when the tenant is
// moved, which forgets it (Forget). A tenant not placed yet is looked up again each time,
// since onboarding is about to place it.
type CellRouter struct {
	registry *cells.Registry
	postgres *pgxpool.Pool
	mongo    *mongo.Client
	redis    redis.UniversalClient
	logger   *slog.Logger

	mu     sync.Mutex
	open   map[string]*cellClients
	placed sync.Map // tenant id → cell id
	health sync.Map // cell id → checked
}

// checked is a health check's answer and when it was made.
type checked struct {
	ok bool
	at time.Time
}

// healthTTL is how long a health check's answer is reused: placements come in bursts, and two
// pings per candidate cell per onboarding would cost more than the placement itself.
const healthTTL = 2 * time.Second

type cellClients struct {
	postgres *pgxpool.Pool
	mongo    *mongo.Client
	redis    redis.UniversalClient
}

// MaxCellPool bounds each cell's MongoDB connection pool in every process: with many cells,
// a process must not hold the driver's default of 100 connections to each.
const MaxCellPool = 20

// MaxCellPostgresConns bounds each cell's PostgreSQL pool in every process: a cell's server
// serves every API and worker process (max_connections is 100 by default), and idle
// connections are closed after a minute so a cell a process seldom touches costs it none.
const MaxCellPostgresConns = 8

// Cells returns the process's cell router, made on first call.
func (c *Clients) Cells(sealer *seal.Sealer, logger *slog.Logger) *CellRouter {
	if logger == nil {
		logger = slog.Default()
	}
	c.cellsOnce.Do(func() {
		c.cells = &CellRouter{registry: cells.New(c.Postgres, sealer), postgres: c.Postgres, mongo: c.Mongo, redis: c.Redis,
			logger: logger, open: map[string]*cellClients{}}
	})
	return c.cells
}

// Registry is the cell registry the router reads.
func (r *CellRouter) Registry() *cells.Registry { return r.registry }

// TenantDB is a tenantdb.Store that reaches each tenant's rows in its cell's PostgreSQL.
func (r *CellRouter) TenantDB() *tenantdb.Store {
	return tenantdb.NewRouted(r.postgres, r.Postgres)
}

// TenantMongo is a tenantmongo.Store that reaches each tenant's database on its cell.
func (r *CellRouter) TenantMongo() *tenantmongo.Store {
	return tenantmongo.NewRouted(r.mongo, r.Mongo)
}

// TenantRedis is a tenantredis.Store that reaches each tenant's keys on its cell.
func (r *CellRouter) TenantRedis() *tenantredis.Store {
	return tenantredis.NewRouted(r.redis, r.Redis)
}

// Postgres is the PostgreSQL pool of the context tenant's cell.
func (r *CellRouter) Postgres(ctx context.Context) (*pgxpool.Pool, error) {
	cc, err := r.forTenant(ctx)
	if err != nil {
		return nil, err
	}
	return cc.postgres, nil
}

// CellPostgres is a cell's PostgreSQL pool (the audit relay's way in).
func (r *CellRouter) CellPostgres(ctx context.Context, cell string) (*pgxpool.Pool, error) {
	cc, err := r.clientsOf(ctx, cell)
	if err != nil {
		return nil, err
	}
	return cc.postgres, nil
}

// RelaySources are the PostgreSQL pools of every registered cell but the default one, for the
// audit relay (audit.Relay).
func (r *CellRouter) RelaySources(ctx context.Context) ([]audit.RelaySource, error) {
	list, err := r.registry.List(ctx)
	if err != nil {
		return nil, err
	}
	var out []audit.RelaySource
	var errs []error
	for _, c := range list {
		if c.ID == cells.Default {
			continue
		}
		pool, err := r.CellPostgres(ctx, c.ID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, audit.RelaySource{Cell: c.ID, Pool: pool})
	}
	return out, errors.Join(errs...)
}

// Mongo is the MongoDB client of the context tenant's cell.
func (r *CellRouter) Mongo(ctx context.Context) (*mongo.Client, error) {
	cc, err := r.forTenant(ctx)
	if err != nil {
		return nil, err
	}
	return cc.mongo, nil
}

// Redis is the Redis client of the context tenant's cell.
func (r *CellRouter) Redis(ctx context.Context) (redis.UniversalClient, error) {
	cc, err := r.forTenant(ctx)
	if err != nil {
		return nil, err
	}
	return cc.redis, nil
}

// Forget drops what the router knows of a tenant's cell (after a move).
func (r *CellRouter) Forget(tenantID string) { r.placed.Delete(tenantID) }

// Drop closes and forgets a cell's clients (after the cell is deleted: one registered again
// under the same id may name other stores).
func (r *CellRouter) Drop(ctx context.Context, cell string) {
	r.mu.Lock()
	cc, ok := r.open[cell]
	delete(r.open, cell)
	r.mu.Unlock()
	r.health.Delete(cell)
	if ok {
		_ = cc.close(ctx)
	}
}

// CellOf is the tenant's cell, from the router's memory when it has it.
func (r *CellRouter) CellOf(ctx context.Context, tenantID string) (string, error) {
	if cell, ok := r.placed.Load(tenantID); ok {
		return cell.(string), nil
	}
	cell, placed, err := r.registry.Placement(ctx, tenantID)
	if errors.Is(err, cells.ErrNoTenant) {
		// Not in the registry: what reconciliation finds when it lists the default cell's
		// stores (an orphan), or a tenant being removed; it is looked for where it was found.
		return cells.Default, nil
	}
	if err != nil {
		return "", err
	}
	if placed {
		r.placed.Store(tenantID, cell)
	}
	return cell, nil
}

func (r *CellRouter) forTenant(ctx context.Context) (*cellClients, error) {
	id, err := tenant.IDFrom(ctx)
	if err != nil {
		return nil, err
	}
	cell, err := r.CellOf(ctx, id)
	if err != nil {
		return nil, err
	}
	return r.clientsOf(ctx, cell)
}

// clientsOf opens a cell's clients on first use. Connecting does no I/O (both drivers dial on
// the first command), so the lock is not held across the network.
func (r *CellRouter) clientsOf(ctx context.Context, cell string) (*cellClients, error) {
	if cell == cells.Default {
		return &cellClients{postgres: r.postgres, mongo: r.mongo, redis: r.redis}, nil
	}
	r.mu.Lock()
	cc, ok := r.open[cell]
	r.mu.Unlock()
	if ok {
		return cc, nil
	}
	stores, _, err := r.registry.Stores(ctx, cell)
	if err != nil {
		return nil, err
	}
	cc, err = connect(stores)
	if err != nil {
		return nil, fmt.Errorf("cell %s: %w", cell, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if have, ok := r.open[cell]; ok { // another request opened it meanwhile
		_ = cc.close(context.WithoutCancel(ctx))
		return have, nil
	}
	r.open[cell] = cc
	r.logger.Info("cell clients opened", "cell_id", cell, "cells_open", len(r.open))
	return cc, nil
}

// connect builds a cell's clients; errors never carry the URLs (they hold passwords).
func connect(s cells.Stores) (*cellClients, error) {
	pcfg, err := pgxpool.ParseConfig(s.PostgresURL)
	if err != nil {
		return nil, fmt.Errorf("postgresql pool: %w", redactURL(err))
	}
	pcfg.MaxConns = MaxCellPostgresConns
	pcfg.MaxConnIdleTime = time.Minute
	pg, err := pgxpool.NewWithConfig(context.Background(), pcfg) // dials on first use
	if err != nil {
		return nil, fmt.Errorf("postgresql pool: %w", redactURL(err))
	}
	m, err := mongo.Connect(context.Background(), options.Client().ApplyURI(s.MongoURL).SetMaxPoolSize(MaxCellPool))
	if err != nil {
		pg.Close()
		return nil, fmt.Errorf("mongodb client: %w", redactURL(err))
	}
	rc, err := redisurl.NewClient(s.RedisURL)
	if err != nil {
		pg.Close()
		_ = m.Disconnect(context.Background())
		return nil, fmt.Errorf("redis client: %w", redactURL(err))
	}
	return &cellClients{postgres: pg, mongo: m, redis: rc}, nil
}

// redactURL keeps a driver's error but not a connection string it may quote, which can hold
// a password.
func redactURL(err error) error {
	if strings.Contains(err.Error(), "://") {
		return errors.New("the connection string is not valid (its text is withheld: it may hold a password)")
	}
	return err
}

func (cc *cellClients) close(ctx context.Context) error {
	cc.postgres.Close()
	return errors.Join(cc.mongo.Disconnect(ctx), cc.redis.Close())
}

// OpenCells is how many cells other than the default one this process holds clients to.
func (r *CellRouter) OpenCells() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.open)
}

// Healthy pings a cell's PostgreSQL, MongoDB and Redis within 2 s, or reuses an answer under healthTTL
// old; placement skips a cell that fails.
func (r *CellRouter) Healthy(ctx context.Context, cell string) bool {
	if c, ok := r.health.Load(cell); ok && time.Since(c.(checked).at) < healthTTL {
		return c.(checked).ok
	}
	ok := r.ping(ctx, cell)
	r.health.Store(cell, checked{ok: ok, at: time.Now()})
	return ok
}

func (r *CellRouter) ping(ctx context.Context, cell string) bool {
	cc, err := r.clientsOf(ctx, cell)
	if err != nil {
		r.logger.Warn("cell unreachable", "cell_id", cell, "err", err)
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := cc.postgres.Ping(ctx); err != nil {
		r.logger.Warn("cell's PostgreSQL does not answer", "cell_id", cell, "err", redactURL(err))
		return false
	}
	if err := cc.mongo.Ping(ctx, readpref.Primary()); err != nil {
		r.logger.Warn("cell's MongoDB does not answer", "cell_id", cell, "err", err)
		return false
	}
	if err := cc.redis.Ping(ctx).Err(); err != nil {
		r.logger.Warn("cell's Redis does not answer", "cell_id", cell, "err", err)
		return false
	}
	return true
}

// Close disconnects every cell's clients but the default's (Clients.Close closes those).
func (r *CellRouter) Close(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for _, cc := range r.open {
		errs = append(errs, cc.close(ctx))
	}
	r.open = map[string]*cellClients{}
	return errors.Join(errs...)
}
