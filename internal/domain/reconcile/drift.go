// Package reconcile compares what the registry says about each tenant with what exists in
// PostgreSQL, MongoDB and Redis, finds data left behind by tenants the registry does not know
// or has offboarded, keeps a report per run, and repairs what is safe to repair. The workflow
// that drives it is workflows.ReconcileTenants; its activities (activities/reconcile.go) call
// this package, which knows nothing of Temporal.
//
// Cost: a tenant's check is a few point lookups per store (one statement of EXISTS probes in
// PostgreSQL, listCollections and one listIndexes per collection in MongoDB, one HGETALL or
// EXISTS in Redis), never a scan of a keyspace; the orphan search walks the Redis keyspace and
// lists MongoDB databases once per run.
package reconcile

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/misybot/tenancy/internal/model/tenant"
)

// Store names the store a drift was found in.
type Store string

const (
	StorePostgres Store = "postgres"
	StoreMongo    Store = "mongodb"
	StoreRedis    Store = "redis"
)

// Kind is what is wrong. Stable strings: they are the metric's label and what clients match on.
type Kind string

const (
	// DataKeyMissing: an active or suspended tenant has no data key in tenant_keys.
	DataKeyMissing Kind = "data_key_missing"
	// DatabaseMissing: an active or suspended tenant has no MongoDB database.
	DatabaseMissing Kind = "database_missing"
	// CollectionMissing: a collection of the layout is missing from the tenant's database.
	CollectionMissing Kind = "collection_missing"
	// IndexMissing: an index of the layout is missing from a collection that exists.
	IndexMissing Kind = "index_missing"
	// IndexConflict: an index exists under one of our names with another definition.
	IndexConflict Kind = "index_conflict"
	// ContextMissing: an active or suspended tenant has no Redis context record.
	ContextMissing Kind = "context_missing"
	// ContextStale: the context record disagrees with the registry (status, type,
	// permissions or origins), or cannot be read.
	ContextStale Kind = "context_stale"
	// OrphanRows: PostgreSQL rows of an offboarded tenant.
	OrphanRows Kind = "orphan_rows"
	// OrphanDatabase: a tenant_* MongoDB database of a tenant unknown or offboarded.
	OrphanDatabase Kind = "orphan_database"
	// OrphanKeys: Redis keys under the prefix of a tenant unknown or offboarded.
	OrphanKeys Kind = "orphan_keys"
)

// Kinds lists every kind, for the metric (a kind with no drift is exported as 0).
var Kinds = []Kind{DataKeyMissing, DatabaseMissing, CollectionMissing, IndexMissing, IndexConflict,
	ContextMissing, ContextStale, OrphanRows, OrphanDatabase, OrphanKeys}

// Severity says how urgent a drift is.
type Severity string

const (
	// Critical: data is unreadable or unreachable, or a suspended tenant is let in.
	Critical Severity = "critical"
	High     Severity = "high"
	Medium   Severity = "medium"
	Low      Severity = "low"
)

// Repair says how a drift may be repaired.
type Repair string

const (
	// RepairSafe recreates only what the registry says must exist (a missing index, a missing
	// or stale context record): run for the whole report once it is approved (the repair
	// signal), or at once when auto-repair is configured.
	RepairSafe Repair = "safe"
	// RepairDecision deletes data, or puts back an empty container where data may have been:
	// it runs only on a platform admin's decision naming the drift.
	RepairDecision Repair = "decision"
	// RepairManual: nothing automatic can fix it (an index with another definition, an id that
	// is not a valid tenant id); someone must look.
	RepairManual Repair = "manual"
)

// State is what became of a drift.
type State string

const (
	StateOpen     State = "open"
	StateRepaired State = "repaired"
	// StateFailed: the repair ran and failed; a decision may be sent again.
	StateFailed State = "failed"
	// StateGone: the repair's re-check found the drift no longer there.
	StateGone State = "gone"
	// StateRefused: the repair's re-check found the tenant changed (an orphan's tenant is
	// registered again, an active tenant is being offboarded): nothing was done.
	StateRefused State = "refused"
)

// Drift is one difference between the registry and a store.
type Drift struct {
	ID       string   `json:"id"`
	TenantID string   `json:"tenantId"`
	Store    Store    `json:"store"`
	Kind     Kind     `json:"kind"`
	Severity Severity `json:"severity"`
	Expected string   `json:"expected"`
	Found    string   `json:"found"`
	Repair   Repair   `json:"repair"`
	// Set by the report store.
	State      State     `json:"state"`
	ResolvedBy string    `json:"resolvedBy,omitempty"`
	ResolvedAt time.Time `json:"resolvedAt,omitzero"`
	Note       string    `json:"note,omitempty"`
	FoundAt    time.Time `json:"foundAt,omitzero"`
}

// driftID is deterministic: the same drift found again (a retried check, the tenant check and
// the orphan search both seeing an offboarded tenant's database) is the same row.
func driftID(kind Kind, ref string, object string) string {
	id := string(kind) + ":" + ref
	if object != "" {
		id += ":" + object
	}
	return id
}

// tenantRef is how a tenant id found in a store is written in a report: the id itself when it
// is a valid tenant id, otherwise a quoted, shortened form (it may hold anything a key or a
// database name can) and a hash, so the drift id stays short and printable. ok is false for an
// invalid id: nothing automatic is done with it.
func tenantRef(raw string) (ref string, display string, ok bool) {
	if tenant.ValidateID(raw) == nil {
		return raw, raw, true
	}
	sum := sha256.Sum256([]byte(raw))
	display = strconv.QuoteToASCII(raw)
	if len(display) > 80 {
		display = display[:77] + "..."
	}
	return "invalid-" + hex.EncodeToString(sum[:6]), display, false
}
