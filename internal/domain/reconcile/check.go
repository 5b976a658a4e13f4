package reconcile

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/misybot/tenancy/internal/domain/registry"
	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/stores/tenantdb"
	"github.com/misybot/tenancy/internal/stores/tenantmongo"
	"github.com/misybot/tenancy/internal/stores/tenantredis"
)

// keysTable is the table of data keys (internal/keys/keyring), as tenantdb names tables.
const keysTable = `"public"."tenant_keys"`

// Checker compares the registry with the stores. It holds the process-wide stores; one per
// process is enough.
type Checker struct {
	Registry *registry.Registry
	Tenants  *tenantdb.Store
	Mongo    *tenantmongo.Store
	Redis    *tenantredis.Store
}

// expectsData reports whether a tenant in status s must have its data (keys, database,
// context record), and mustBeEmpty whether it must have none. Tenants in other statuses
// (pending, onboarding, offboarding, failed) are in the middle of a lifecycle workflow or
// waiting for one; nothing is expected of them.
func expectsData(s tenant.Status) bool {
	return s == tenant.StatusActive || s == tenant.StatusSuspended
}
func mustBeEmpty(s tenant.Status) bool { return s == tenant.StatusOffboarded }

// PageResult is what checking one page of the registry found.
type PageResult struct {
	Drifts []Drift
	// Checked counts the tenants of the page; Skipped those whose registry row changed while
	// they were checked (their findings are dropped: the next run checks them again).
	Checked int
	Skipped int
	// Last is the last tenant id of the page, where the next page starts; More says whether
	// one follows.
	Last string
	More bool
}

// CheckPage checks up to limit tenants of the registry after after (ids starting with prefix),
// parallel at a time, calling progress (may be nil) after each tenant with how many are done.
func (c *Checker) CheckPage(ctx context.Context, prefix, after string, limit, parallel int, progress func(done int)) (PageResult, error) {
	ts, more, err := c.Registry.ListPrefix(ctx, prefix, after, limit)
	if err != nil {
		return PageResult{}, err
	}
	res := PageResult{More: more, Checked: len(ts)}
	if len(ts) == 0 {
		return res, nil
	}
	res.Last = ts[len(ts)-1].ID
	tables, err := c.Tenants.PurgedTables(ctx)
	if err != nil {
		return PageResult{}, err
	}
	parallel = max(1, min(parallel, len(ts)))
	type outcome struct {
		drifts  []Drift
		skipped bool
		err     error
	}
	outs := make([]outcome, len(ts))
	next := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := 0
	for range parallel {
		wg.Go(func() {
			for i := range next {
				d, skipped, err := c.CheckTenant(ctx, ts[i], tables)
				outs[i] = outcome{d, skipped, err}
				mu.Lock() // progress (an activity heartbeat) is called by one goroutine at a time
				done++
				if progress != nil {
					progress(done)
				}
				mu.Unlock()
			}
		})
	}
	for i := range ts {
		next <- i
	}
	close(next)
	wg.Wait()
	var errs []error
	for i, o := range outs {
		if o.err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ts[i].ID, o.err))
			continue
		}
		if o.skipped {
			res.Skipped++
		}
		res.Drifts = append(res.Drifts, o.drifts...)
	}
	if err := errors.Join(errs...); err != nil {
		return PageResult{}, fmt.Errorf("reconcile: check page after %q: %w", after, err)
	}
	return res, nil
}

// CheckTenant compares one tenant's registry row with the stores. tables are the tenant tables
// (tenantdb.Store.PurgedTables). When it finds something it reads the registry row again: a
// tenant whose row changed meanwhile (a lifecycle workflow moved it) is reported as skipped
// with no drift, since what was found may be that workflow's work in progress.
func (c *Checker) CheckTenant(ctx context.Context, t tenant.Tenant, tables []pgx.Identifier) ([]Drift, bool, error) {
	var drifts []Drift
	var err error
	switch {
	case expectsData(t.Status):
		drifts, err = c.checkOpen(ctx, t, tables)
	case mustBeEmpty(t.Status):
		drifts, err = c.checkOffboarded(ctx, t, tables)
	default:
		return nil, false, nil
	}
	if err != nil || len(drifts) == 0 {
		return nil, false, err
	}
	now, err := c.Registry.Get(ctx, t.ID)
	if errors.Is(err, registry.ErrNotFound) {
		return nil, true, nil
	}
	if err != nil {
		return nil, false, err
	}
	if now.Status != t.Status || !now.UpdatedAt.Equal(t.UpdatedAt) {
		return nil, true, nil
	}
	return drifts, false, nil
}

// checkOpen: an active or suspended tenant has a data key, its database with every collection
// and index, and a context record equal to the registry.
func (c *Checker) checkOpen(ctx context.Context, t tenant.Tenant, tables []pgx.Identifier) ([]Drift, error) {
	tctx := tenant.WithID(ctx, t.ID)
	var out []Drift
	add := func(store Store, kind Kind, sev Severity, object, expected, found string, repair Repair) {
		out = append(out, Drift{ID: driftID(kind, t.ID, object), TenantID: t.ID, Store: store, Kind: kind, Severity: sev,
			Expected: expected, Found: found, Repair: repair, State: StateOpen})
	}

	var keyTables []pgx.Identifier
	for _, tb := range tables {
		if tb.Sanitize() == keysTable {
			keyTables = append(keyTables, tb)
		}
	}
	if len(keyTables) > 0 {
		with, err := c.Tenants.TablesWithRows(tctx, keyTables)
		if err != nil {
			return nil, err
		}
		if len(with) == 0 {
			// Putting a new key in place does not bring back what the lost one encrypted: an
			// operator must decide (restore from backup first, or accept the loss).
			add(StorePostgres, DataKeyMissing, Critical, "", "at least one data key in tenant_keys ("+string(t.Status)+" tenant)", "no data key", RepairDecision)
		}
	}

	in, err := c.Mongo.Inspect(tctx)
	if err != nil {
		return nil, err
	}
	db, _ := tenantmongo.DatabaseName(t.ID)
	switch {
	case !in.Exists:
		add(StoreMongo, DatabaseMissing, Critical, "", "database "+db+" with collections "+strings.Join(tenantmongo.Collections(), ", "), "no database", RepairDecision)
	default:
		for _, coll := range in.MissingCollections {
			add(StoreMongo, CollectionMissing, High, coll, "collection "+db+"."+coll, "no collection "+coll, RepairDecision)
		}
		for _, ix := range in.MissingIndexes {
			add(StoreMongo, IndexMissing, Medium, ix, "index "+ix, "no index "+ix, RepairSafe)
		}
		for _, ix := range in.ConflictingIndexes {
			add(StoreMongo, IndexConflict, High, ix, "index "+ix+" as the layout defines it", "index "+ix+" with other keys or options", RepairManual)
		}
	}

	rec, err := c.Redis.ReadContext(tctx)
	switch {
	case errors.Is(err, tenantredis.ErrNotFound):
		add(StoreRedis, ContextMissing, High, "", "context record "+describeTenant(t), "no context record", RepairSafe)
	case err != nil:
		// Either Redis failed, or the record is there and does not parse (a field missing or
		// garbled): an EXISTS tells which. A garbled record is rewritten from the registry.
		exists, xerr := c.Redis.ContextExists(tctx)
		if xerr != nil || !exists {
			return nil, err
		}
		add(StoreRedis, ContextStale, High, "", "context record "+describeTenant(t), "unreadable record", RepairSafe)
	default:
		if want, got, sev := compareContext(t, rec); want != "" {
			add(StoreRedis, ContextStale, sev, "", want, got, RepairSafe)
		}
	}
	return out, nil
}

// checkOffboarded: an offboarded tenant has no rows, no database and no context record. Its
// other Redis keys are found by the orphan search (RedisOrphans), which reports them under the
// same drift id.
func (c *Checker) checkOffboarded(ctx context.Context, t tenant.Tenant, tables []pgx.Identifier) ([]Drift, error) {
	tctx := tenant.WithID(ctx, t.ID)
	var out []Drift
	with, err := c.Tenants.TablesWithRows(tctx, tables)
	if err != nil {
		return nil, err
	}
	if len(with) > 0 {
		out = append(out, orphan(OrphanRows, t.ID, "rows in "+strings.Join(with, ", "), "offboarded"))
	}
	in, err := c.Mongo.Inspect(tctx)
	if err != nil {
		return nil, err
	}
	if in.Exists {
		db, _ := tenantmongo.DatabaseName(t.ID)
		out = append(out, orphan(OrphanDatabase, t.ID, "database "+db+" with collections "+strings.Join(in.Collections, ", "), "offboarded"))
	}
	exists, err := c.Redis.ContextExists(tctx)
	if err != nil {
		return nil, err
	}
	if exists {
		out = append(out, orphan(OrphanKeys, t.ID, "keys under "+tenantredis.Key(t.ID, "")+"* (the context record at least)", "offboarded"))
	}
	return out, nil
}

// orphan builds the drift of data left behind by a tenant that is unknown or offboarded.
func orphan(kind Kind, rawID, found, why string) Drift {
	ref, display, ok := tenantRef(rawID)
	repair := RepairDecision
	if !ok {
		repair = RepairManual // not a tenant id: the purge activities cannot name it
	}
	store, sev := StorePostgres, High
	switch kind {
	case OrphanDatabase:
		store = StoreMongo
	case OrphanKeys:
		store, sev = StoreRedis, Medium
	}
	return Drift{ID: driftID(kind, ref, ""), TenantID: display, Store: store, Kind: kind, Severity: sev,
		Expected: "nothing (tenant " + why + ")", Found: found, Repair: repair, State: StateOpen}
}

// describeTenant is the part of the registry row the context record mirrors.
func describeTenant(t tenant.Tenant) string {
	return fmt.Sprintf("status=%s type=%s permissions=%v origins=%v", t.Status, t.Type, sortedPerms(t.Permissions), sorted(t.AllowedOrigins))
}

// compareContext returns what differs between the registry row and the record ("" when they
// agree), and the severity: critical when the record's status lets in a tenant the registry
// has suspended (or the reverse: a tenant locked out).
func compareContext(t tenant.Tenant, rec tenantredis.ContextRecord) (want, got string, sev Severity) {
	var w, g []string
	sev = High
	if rec.Status != string(t.Status) {
		w, g = append(w, "status="+string(t.Status)), append(g, "status="+rec.Status)
		sev = Critical
	}
	if rec.Type != string(t.Type) {
		w, g = append(w, "type="+string(t.Type)), append(g, "type="+rec.Type)
	}
	if p := sortedPerms(t.Permissions); !slices.Equal(p, sorted(rec.Permissions)) {
		w, g = append(w, fmt.Sprintf("permissions=%v", p)), append(g, fmt.Sprintf("permissions=%v", sorted(rec.Permissions)))
	}
	if o := sorted(t.AllowedOrigins); !slices.Equal(o, sorted(rec.AllowedOrigins)) {
		w, g = append(w, fmt.Sprintf("origins=%v", o)), append(g, fmt.Sprintf("origins=%v", sorted(rec.AllowedOrigins)))
	}
	if len(w) == 0 {
		return "", "", ""
	}
	return strings.Join(w, " "), strings.Join(g, " "), sev
}

func sorted(s []string) []string {
	out := append([]string{}, s...)
	slices.Sort(out)
	return out
}

func sortedPerms(ps []tenant.Permission) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = string(p)
	}
	slices.Sort(out)
	return out
}

// MongoOrphans lists the tenant_* databases (ids starting with prefix) whose tenant the
// registry does not know or has offboarded. One listDatabases and one registry query.
func (c *Checker) MongoOrphans(ctx context.Context, prefix string) ([]Drift, error) {
	ids, err := c.Mongo.TenantDatabases(ctx, prefix)
	if err != nil {
		return nil, err
	}
	return c.orphans(ctx, ids, OrphanDatabase, func(id string) string {
		return "database " + tenantmongo.DatabasePrefix + id + " exists"
	})
}

// RedisOrphans runs one step of the walk of the Redis keyspace (tenantredis.ScanTenantPrefixes)
// and returns the prefixes of tenants unknown or offboarded seen in it, and the cursor to go on
// from (0: done). known caches registry answers across the steps of one walk (may be nil).
func (c *Checker) RedisOrphans(ctx context.Context, prefix string, cursor uint64, count int64, known map[string]bool) ([]Drift, uint64, error) {
	ids, next, err := c.Redis.ScanTenantPrefixes(ctx, prefix, cursor, count)
	if err != nil {
		return nil, cursor, err
	}
	if known != nil {
		fresh := ids[:0:0]
		for _, id := range ids {
			if !known[id] {
				fresh = append(fresh, id)
				known[id] = true
			}
		}
		ids = fresh
	}
	drifts, err := c.orphans(ctx, ids, OrphanKeys, func(id string) string {
		return "keys under tenant:{" + id + "}:"
	})
	return drifts, next, err
}

// orphans keeps the ids whose tenant is unknown or offboarded.
func (c *Checker) orphans(ctx context.Context, ids []string, kind Kind, found func(string) string) ([]Drift, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	statuses, err := c.Registry.StatusesOf(ctx, ids)
	if err != nil {
		return nil, err
	}
	var out []Drift
	for _, id := range ids {
		s, ok := statuses[id]
		switch {
		case !ok:
			out = append(out, orphan(kind, id, found(id), "unknown to the registry"))
		case mustBeEmpty(s):
			out = append(out, orphan(kind, id, found(id), "offboarded"))
		}
	}
	return out, nil
}
