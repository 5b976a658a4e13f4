package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/misybot/tenancy/internal/domain/audit"
	"github.com/misybot/tenancy/internal/domain/registry"
	"github.com/misybot/tenancy/internal/domain/tenantservice"
	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/stores/tenantdb"
	"github.com/misybot/tenancy/internal/stores/tenantmongo"
	"github.com/misybot/tenancy/internal/stores/tenantredis"
)

// KeysResult says whether EnsureKeys created the key (false: it existed already).
type KeysResult struct {
	Created bool
}

// EnsureKeys creates the tenant's first data key, wrapped, in PostgreSQL. Idempotent:
// create-if-absent on (tenant_id, version); the key never leaves the activity.
func (a *Activities) EnsureKeys(ctx context.Context, in TenantRef) (KeysResult, error) {
	tctx, err := scoped(ctx, in.TenantID)
	if err != nil {
		return KeysResult{}, err
	}
	// The step's audit event commits in the transaction that adds the key.
	sctx, stepDone := a.withStepEvent(tctx, in.TenantID)
	created, err := a.Keys.Ensure(sctx)
	if err == nil {
		stepDone()
	}
	return KeysResult{Created: created}, err
}

// DestroyKeysResult counts the key versions destroyed.
type DestroyKeysResult struct {
	Destroyed int64
}

// DestroyKeys deletes every data key of the tenant: its ciphertexts become unreadable.
// Idempotent: with nothing left it deletes nothing and succeeds.
func (a *Activities) DestroyKeys(ctx context.Context, in TenantRef) (DestroyKeysResult, error) {
	tctx, err := scoped(ctx, in.TenantID)
	if err != nil {
		return DestroyKeysResult{}, err
	}
	// The step's audit event commits in the transaction that destroys the keys.
	sctx, stepDone := a.withStepEvent(tctx, in.TenantID)
	n, err := a.Keys.Destroy(sctx)
	if err == nil {
		stepDone()
	}
	return DestroyKeysResult{Destroyed: n}, err
}

// ProvisionPostgres creates the tenant's default rows (settings, owner member). Idempotent:
// inserts are ON CONFLICT DO NOTHING on primary keys (tenantdb.Provision).
func (a *Activities) ProvisionPostgres(ctx context.Context, in TenantRef) (PostgresReport, error) {
	tctx, err := scoped(ctx, in.TenantID)
	if err != nil {
		return PostgresReport{}, err
	}
	t, err := a.Registry.Get(ctx, in.TenantID)
	if errors.Is(err, registry.ErrNotFound) {
		return PostgresReport{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeTenantNotFound, err)
	}
	if err != nil {
		return PostgresReport{}, err
	}
	// The step's audit event commits in the transaction that adds the rows.
	sctx, stepDone := a.withStepEvent(tctx, in.TenantID)
	rep, err := a.Tenants.Provision(sctx, tenantdb.ProvisionInput{DisplayName: t.Name, OwnerUserID: t.ContactEmail})
	if err == nil {
		stepDone()
	}
	return postgresReport(rep), permanentOnBadData(err)
}

// DeprovisionPostgres deletes the tenant's rows from every tenant-scoped table found in the
// catalog. Idempotent: a second run deletes nothing and succeeds.
func (a *Activities) DeprovisionPostgres(ctx context.Context, in TenantRef) (map[string]int64, error) {
	tctx, err := scoped(ctx, in.TenantID)
	if err != nil {
		return nil, err
	}
	return a.Tenants.Deprovision(tctx)
}

// ProvisionMongo creates the tenant's database, collections and indexes. Idempotent: each
// collection and index is created if absent, and "already exists" is success.
func (a *Activities) ProvisionMongo(ctx context.Context, in TenantRef) (MongoReport, error) {
	tctx, err := scoped(ctx, in.TenantID)
	if err != nil {
		return MongoReport{}, err
	}
	rep, err := a.Mongo.Provision(tctx)
	if errors.Is(err, tenantmongo.ErrIndexConflict) {
		// An index with our name but another definition: retrying cannot fix it.
		return mongoReport(rep), temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeInvalidInput, err)
	}
	if err == nil && a.Audit != nil {
		a.Audit.SeqIndexChecked(rep.Database) // Provision checked audit_events.seq_1
	}
	return mongoReport(rep), err
}

// DeprovisionInput names the tenant whose MongoDB data goes.
type DeprovisionInput struct {
	TenantID string
	// KeepAudit keeps the tenant's audit collections (onboarding's compensation: the tenant
	// stays registered, failed, and its trail says why). Offboarding drops everything, after
	// exporting it.
	KeepAudit bool
}

// DeprovisionMongo drops the tenant's database, or, with KeepAudit, every collection but the
// audit trail's. Idempotent: a database or collection that does not exist is success.
//
// Before a full drop it ships the tenant's waiting audit events (so none is lost, and no
// shipper re-creates the database afterwards: an offboarding tenant takes no new events in its
// chain), and after it forgets the chain's head, or verify would report the chain truncated.
func (a *Activities) DeprovisionMongo(ctx context.Context, in DeprovisionInput) (MongoDeprovisionReport, error) {
	tctx, err := scoped(ctx, in.TenantID)
	if err != nil {
		return MongoDeprovisionReport{}, err
	}
	if in.KeepAudit {
		rep, err := a.Mongo.DropCollectionsExcept(tctx, audit.Collection, audit.CheckpointCollection)
		return mongoDeprovisionReport(rep), err
	}
	if err := a.shipTenantChain(tctx); err != nil {
		return MongoDeprovisionReport{}, err
	}
	rep, err := a.Mongo.Deprovision(tctx)
	if err != nil {
		return mongoDeprovisionReport(rep), err
	}
	return mongoDeprovisionReport(rep), a.Audit.ForgetTenantChain(ctx, in.TenantID)
}

// shipTenantChain moves the context tenant's waiting audit events to MongoDB.
func (a *Activities) shipTenantChain(tctx context.Context) error {
	chain, err := a.Audit.TenantChain(tctx)
	if err != nil {
		return err
	}
	if _, err := chain.Ship(tctx); err != nil {
		return fmt.Errorf("ship the tenant's audit events first: %w", err)
	}
	return nil
}

// RedisReport says what ProvisionRedis wrote.
type RedisReport struct {
	ContextKey string `json:"contextKey"`
}

// ProvisionRedis writes the tenant's context record (status, type, permissions, origins) used
// for fast request checks. Idempotent: the record is overwritten whole from the registry.
func (a *Activities) ProvisionRedis(ctx context.Context, in TenantRef) (RedisReport, error) {
	tctx, err := scoped(ctx, in.TenantID)
	if err != nil {
		return RedisReport{}, err
	}
	t, err := a.Registry.Get(ctx, in.TenantID)
	if errors.Is(err, registry.ErrNotFound) {
		return RedisReport{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeTenantNotFound, err)
	}
	if err != nil {
		return RedisReport{}, err
	}
	if err := a.Redis.WriteContext(tctx, tenantservice.ContextRecord(t, time.Now())); err != nil {
		return RedisReport{}, fmt.Errorf("write context record: %w", err)
	}
	scope, err := a.Redis.Scope(tctx)
	if err != nil {
		return RedisReport{}, err
	}
	return RedisReport{ContextKey: scope.Key("context", "record")}, nil
}

// RevokeSessionsResult counts the sessions revoked.
type RevokeSessionsResult struct {
	Revoked int64
}

// RevokeSessions deletes the tenant's session keys in Redis (on suspend), heartbeating as it
// walks them (the tenant's key index; a keyspace SCAN for a tenant from before the index). Idempotent: with no sessions left it deletes nothing and succeeds; a retry simply
// scans again.
func (a *Activities) RevokeSessions(ctx context.Context, in TenantRef) (RevokeSessionsResult, error) {
	tctx, err := scoped(ctx, in.TenantID)
	if err != nil {
		return RevokeSessionsResult{}, err
	}
	// SCAN walks the whole keyspace: heartbeat after each step so a long walk is not mistaken
	// for a dead worker.
	n, err := a.Redis.RevokeSessions(tctx, func(p tenantredis.PurgeProgress) error {
		activity.RecordHeartbeat(ctx, p.Deleted)
		return ctx.Err()
	})
	return RevokeSessionsResult{Revoked: n}, err
}

// PurgeRedis removes every key of the tenant, batch by batch, heartbeating its progress after
// each. A tenant the registry has as offboarded, or does not know, is reconciliation's orphan
// repair: its keys were found by a walk of the keyspace and may be outside the tenant's key
// index, so they go by such a walk (tenantredis.PurgeByScan); any other (an offboarding, a
// failed onboarding's undo) walks its index (tenantredis.Purge). Idempotent and resumable: a
// retried attempt starts from the last heartbeat's cursor (tenantredis.Purge explains why that
// loses nothing), and "nothing left" is success.
func (a *Activities) PurgeRedis(ctx context.Context, in TenantRef) (PurgeProgress, error) {
	tctx, err := scoped(ctx, in.TenantID)
	if err != nil {
		return PurgeProgress{}, err
	}
	purge := a.Redis.Purge
	switch t, err := a.Registry.Get(ctx, in.TenantID); {
	case errors.Is(err, registry.ErrNotFound), err == nil && t.Status == tenant.StatusOffboarded:
		purge = a.Redis.PurgeByScan
	case err != nil:
		return PurgeProgress{}, err
	}
	var from PurgeProgress // heartbeat details, kept by Temporal between attempts
	if activity.HasHeartbeatDetails(ctx) {
		if err := activity.GetHeartbeatDetails(ctx, &from); err != nil {
			from = PurgeProgress{}
		}
		activity.GetLogger(ctx).Info("resuming redis purge", "tenant_id", in.TenantID, "cursor", from.Cursor, "deleted", from.Deleted)
	}
	start := tenantredis.PurgeProgress{Cursor: from.Cursor, Deleted: from.Deleted, Done: from.Done}
	p, err := purge(tctx, start, 1000, func(p tenantredis.PurgeProgress) error {
		activity.RecordHeartbeat(ctx, purgeProgress(p))
		return ctx.Err()
	})
	return purgeProgress(p), err
}
