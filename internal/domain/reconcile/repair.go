package reconcile

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/misybot/tenancy/internal/domain/registry"
	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/stores/tenantredis"
)

// Action is one step of a decided repair. The workflow runs each through the activity that
// does the same thing in the lifecycle (offboarding's purge steps, provisioning's steps), so a
// decided deletion is exactly an offboarding's, audited as one.
type Action string

const (
	ActionDestroyKeys    Action = "destroy-keys"
	ActionPurgePostgres  Action = "purge-postgres"
	ActionDropMongo      Action = "drop-mongodb"
	ActionPurgeRedis     Action = "purge-redis"
	ActionEnsureKeys     Action = "ensure-keys"
	ActionProvisionMongo Action = "provision-mongo"
)

// Outcome is what a repair, or its re-check, did.
type Outcome struct {
	State State
	Note  string
}

// ErrNotDecidable: the drift is not one a decision repairs (safe or manual), or it is closed.
var ErrNotDecidable = errors.New("drift cannot be repaired by a decision")

// Plan re-checks a drift a platform admin decided to repair and returns the actions that
// repair it. When the re-check finds nothing to do, it returns no action and the outcome to
// record: gone (the drift is no longer there) or refused (the tenant changed: an orphan's
// tenant is registered and open again, an open tenant is no longer open). Read-only.
func (c *Checker) Plan(ctx context.Context, d Drift) ([]Action, Outcome, error) {
	if d.Repair != RepairDecision || (d.State != StateOpen && d.State != StateFailed) {
		return nil, Outcome{}, fmt.Errorf("%w: %s is %s and %s", ErrNotDecidable, d.ID, d.Repair, d.State)
	}
	status, known, err := c.status(ctx, d.TenantID)
	if err != nil {
		return nil, Outcome{}, err
	}
	tctx := tenant.WithID(ctx, d.TenantID)
	switch d.Kind {
	case OrphanRows, OrphanDatabase, OrphanKeys:
		if known && !mustBeEmpty(status) {
			return nil, Outcome{StateRefused, "tenant is " + string(status) + " now: its data is no longer orphaned"}, nil
		}
	case DataKeyMissing, DatabaseMissing, CollectionMissing:
		if !known || !expectsData(status) {
			return nil, Outcome{StateRefused, "tenant is " + nonEmptyStatus(status, known) + " now: nothing to put back"}, nil
		}
	default:
		return nil, Outcome{}, fmt.Errorf("%w: kind %s", ErrNotDecidable, d.Kind)
	}

	switch d.Kind {
	case OrphanRows:
		tables, err := c.Tenants.PurgedTables(ctx)
		if err != nil {
			return nil, Outcome{}, err
		}
		with, err := c.Tenants.TablesWithRows(tctx, tables)
		if err != nil {
			return nil, Outcome{}, err
		}
		if len(with) == 0 {
			return nil, Outcome{StateGone, "no rows left"}, nil
		}
		return []Action{ActionDestroyKeys, ActionPurgePostgres}, Outcome{}, nil
	case OrphanDatabase:
		in, err := c.Mongo.Inspect(tctx)
		if err != nil {
			return nil, Outcome{}, err
		}
		if !in.Exists {
			return nil, Outcome{StateGone, "database already gone"}, nil
		}
		return []Action{ActionDropMongo}, Outcome{}, nil
	case OrphanKeys:
		// Finding out would walk the keyspace; the purge walks it once and deletes what it finds.
		return []Action{ActionPurgeRedis}, Outcome{}, nil
	case DataKeyMissing:
		tables, err := c.Tenants.PurgedTables(ctx)
		if err != nil {
			return nil, Outcome{}, err
		}
		var keys []string
		for i, t := range tables {
			if t.Sanitize() == keysTable {
				if keys, err = c.Tenants.TablesWithRows(tctx, tables[i:i+1]); err != nil {
					return nil, Outcome{}, err
				}
			}
		}
		if len(keys) > 0 {
			return nil, Outcome{StateGone, "the tenant has a data key"}, nil
		}
		return []Action{ActionEnsureKeys}, Outcome{}, nil
	default: // DatabaseMissing, CollectionMissing
		in, err := c.Mongo.Inspect(tctx)
		if err != nil {
			return nil, Outcome{}, err
		}
		if in.Exists && (d.Kind == DatabaseMissing || !slices.Contains(in.MissingCollections, objectOf(d))) {
			return nil, Outcome{StateGone, "present again"}, nil
		}
		return []Action{ActionProvisionMongo}, Outcome{}, nil
	}
}

// RepairSafe repairs a safe drift after checking it again against the registry and the store:
// a missing index is created (tenantmongo.Store.EnsureIndexes, which creates no collection), a
// missing or stale context record is written from the registry (tenantredis.Store.RepairContext,
// which never writes over a newer status). Idempotent: a drift already repaired is found gone.
func (c *Checker) RepairSafe(ctx context.Context, d Drift) (Outcome, error) {
	if d.Repair != RepairSafe {
		return Outcome{}, fmt.Errorf("reconcile: %s is not a safe repair", d.ID)
	}
	t, err := c.Registry.Get(ctx, d.TenantID)
	if errors.Is(err, registry.ErrNotFound) {
		return Outcome{StateRefused, "tenant unknown now"}, nil
	}
	if err != nil {
		return Outcome{}, err
	}
	if !expectsData(t.Status) {
		return Outcome{StateRefused, "tenant is " + string(t.Status) + " now"}, nil
	}
	tctx := tenant.WithID(ctx, t.ID)
	switch d.Kind {
	case IndexMissing:
		in, err := c.Mongo.Inspect(tctx)
		if err != nil {
			return Outcome{}, err
		}
		if !slices.Contains(in.MissingIndexes, objectOf(d)) {
			return Outcome{StateGone, "index present"}, nil
		}
		created, err := c.Mongo.EnsureIndexes(tctx)
		if err != nil {
			return Outcome{}, err
		}
		if !slices.Contains(created, objectOf(d)) {
			return Outcome{StateFailed, "index not created (its collection is missing?)"}, nil
		}
		return Outcome{StateRepaired, "created index " + objectOf(d)}, nil
	case ContextMissing, ContextStale:
		// Written from the row read last: should a lifecycle workflow change the row between
		// the read and the write, the row is read again and written again.
		for range 3 {
			rec, err := c.Redis.ReadContext(tctx)
			if err == nil {
				if want, _, _ := compareContext(t, rec); want == "" {
					return Outcome{StateGone, "record agrees with the registry"}, nil
				}
			} else if !errors.Is(err, tenantredis.ErrNotFound) {
				exists, xerr := c.Redis.ContextExists(tctx)
				if xerr != nil || !exists {
					return Outcome{}, err
				}
			}
			perms := make([]string, len(t.Permissions))
			for i, p := range t.Permissions {
				perms[i] = string(p)
			}
			wrote, err := c.Redis.RepairContext(tctx, tenantredis.ContextRecord{
				Status: string(t.Status), Type: string(t.Type), Permissions: perms, AllowedOrigins: t.AllowedOrigins,
				UpdatedAt: time.Now().UTC(), StatusVersion: t.UpdatedAt.UnixNano(),
			})
			if err != nil {
				return Outcome{}, err
			}
			if !wrote {
				return Outcome{StateRefused, "the record holds a newer status than the registry row read"}, nil
			}
			again, err := c.Registry.Get(ctx, t.ID)
			if err != nil {
				return Outcome{}, err
			}
			if again.UpdatedAt.Equal(t.UpdatedAt) {
				return Outcome{StateRepaired, "record written from the registry: " + describeTenant(t)}, nil
			}
			t = again
			if !expectsData(t.Status) {
				return Outcome{StateRefused, "tenant is " + string(t.Status) + " now"}, nil
			}
		}
		return Outcome{StateFailed, "the registry row kept changing; the next run checks again"}, nil
	}
	return Outcome{}, fmt.Errorf("reconcile: no safe repair for kind %s", d.Kind)
}

// status reads a tenant's registry status; known is false for an id the registry lacks.
func (c *Checker) status(ctx context.Context, id string) (tenant.Status, bool, error) {
	if tenant.ValidateID(id) != nil {
		return "", false, fmt.Errorf("%w: %q is not a tenant id", ErrNotDecidable, id)
	}
	t, err := c.Registry.Get(ctx, id)
	if errors.Is(err, registry.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return t.Status, true, nil
}

func nonEmptyStatus(s tenant.Status, known bool) string {
	if !known {
		return "unknown"
	}
	return string(s)
}

// objectOf is the object part of a drift id (the index or collection), "" for none.
func objectOf(d Drift) string {
	_, rest, _ := strings.Cut(d.ID, ":")
	_, obj, _ := strings.Cut(rest, ":")
	return obj
}
