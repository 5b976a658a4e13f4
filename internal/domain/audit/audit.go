// Package audit records what happened to and by a tenant. A tenant's events live in its own
// MongoDB database (collection audit_events, removed with the tenant after offboarding's
// export); platform events (registrations, offboarding summaries, denied operator requests,
// lifecycle steps of tenants whose database is not open) live in the platform database, which
// outlives every tenant.
//
// Exactly once: callers give each event a deterministic id (for workflows: workflow id, run id
// and step), and a write whose id exists already is success, so a retried activity or a
// replayed workflow never records an event twice.
//
// Tamper evidence: the events of each database form a hash chain (see chain.go). Every event
// carries its position (seq 1, 2, 3…), the hash of the event before it and its own hash, an
// HMAC-SHA256 over a canonical encoding of all its fields. Verify recomputes the chain and names
// the first broken link; retention (Prune) removes old events only behind a MAC'd checkpoint, so
// what remains still verifies.
package audit

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.mongodb.org/mongo-driver/mongo"

	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/stores/tenantmongo"
)

// PlatformDatabase holds platform-wide events. Its name cannot collide with a tenant database
// (those all start with "tenant_").
const PlatformDatabase = "platform"

// Collection is the events collection, in tenant databases and in the platform database.
const Collection = "audit_events"

// CheckpointCollection holds the retention checkpoints of a chain, in the same database as its
// events: one document per cut, never deleted (see Prune).
const CheckpointCollection = "audit_checkpoints"

// KeyPurpose names the HMAC key of the chains for seal.Sealer.PurposeKey.
const KeyPurpose = "audit-chain"

// Actor types.
const (
	ActorOperator = "operator"
	ActorTenant   = "tenant"
	ActorSystem   = "system"
)

// ActorTypes lists every actor type, for validating filters.
var ActorTypes = []string{ActorOperator, ActorTenant, ActorSystem}

// Outcomes.
const (
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
	OutcomeDenied  = "denied"
)

// Outcomes lists every outcome, for validating filters.
var Outcomes = []string{OutcomeSuccess, OutcomeFailure, OutcomeDenied}

// Actor is who did it.
type Actor struct {
	Type string `bson:"type" json:"type"`
	ID   string `bson:"id" json:"id"`
}

// Event is one audit record. It never holds a secret or a plaintext field value.
//
// Seq, PrevHash and Hash are assigned by the writer (whatever the caller put there is
// replaced); they are omitted from JSON when zero so that workflow payloads, which never set
// them, are byte-for-byte what they were before the chain existed.
type Event struct {
	ID         string    `bson:"_id" json:"id"`
	TenantID   string    `bson:"tenantId" json:"tenantId"`
	Actor      Actor     `bson:"actor" json:"actor"`
	Action     string    `bson:"action" json:"action"`
	Resource   string    `bson:"resource" json:"resource"`
	Outcome    string    `bson:"outcome" json:"outcome"`
	Reason     string    `bson:"reason,omitempty" json:"reason,omitempty"`
	RequestID  string    `bson:"requestId,omitempty" json:"requestId,omitempty"`
	WorkflowID string    `bson:"workflowId,omitempty" json:"workflowId,omitempty"`
	RunID      string    `bson:"runId,omitempty" json:"runId,omitempty"`
	Details    Details   `bson:"details,omitempty" json:"details,omitempty"`
	At         time.Time `bson:"at" json:"at"`
	// Seq is the event's position in its chain: 1, 2, 3… with no gap.
	Seq int64 `bson:"seq,omitempty" json:"seq,omitempty"`
	// PrevHash is the Hash of the event at Seq-1 (or of the retention checkpoint that replaced
	// it); empty for the first event of a chain.
	PrevHash string `bson:"prevHash,omitempty" json:"prevHash,omitempty"`
	// Hash is the hex HMAC-SHA256 of the event's canonical encoding (see chain.go).
	Hash string `bson:"hash,omitempty" json:"hash,omitempty"`
	// KeyVersion is the master key version whose chain key MAC'd the event; 0 (omitted) is
	// version 1, every event written before master keys had versions.
	KeyVersion int `bson:"kv,omitempty" json:"kv,omitempty"`
}

// Writer writes and reads the audit chains. One per process; safe for concurrent use.
//
// Writes go to the outbox in PostgreSQL (outbox.go) and reach MongoDB through the Shipper
// (ship.go); reads (List, Summary, Verify) ship their chain's backlog first, so a reader sees
// every event committed before it asked.
type Writer struct {
	pool    *pgxpool.Pool
	tenants *tenantmongo.Store
	// keys are the chain MAC keys by master key version; keyVersion is the current one: new
	// events are MAC'd with it (and say so in KeyVersion), older ones verify with theirs.
	keys       map[int][]byte
	keyVersion int
	// keyID fingerprints the current key (see keyID); keyIDs maps every held key's fingerprint
	// to its version, so shippers handle exactly the events they can MAC.
	keyID    string
	keyIDs   map[string]int
	platform *Chain
	// unauthenticated holds refusals of callers who proved no identity (bad token, bad
	// signature, unknown tenant, disallowed preflight), unchained: see Unauthenticated.
	unauthenticated *Chain

	// ready remembers the databases whose seq index this process has checked, so the check
	// costs one round trip per database and process, not one per event.
	ready sync.Map // database name -> struct{}
	// readyMu serialises index creation, so concurrent first writes do not all create it.
	readyMu sync.Mutex
}

// Option adjusts a Writer.
type Option func(*writerOptions)

type writerOptions struct {
	platformDB string
	keyVersion int
	keys       map[int][]byte
}

// WithKeyring gives the writer the chain MAC keys of every master key version it holds
// (current: the version new events use); the key given to NewWriter is then ignored. Events
// record their key version, so chains verify across a master key rotation.
func WithKeyring(current int, keys map[int][]byte) Option {
	return func(o *writerOptions) { o.keyVersion, o.keys = current, keys }
}

// WithPlatformDatabase puts the platform chain in another database than PlatformDatabase
// (empty keeps the default). Every process of a deployment must use the same one. Tests use
// their own, because a chain holds events of one key only: test processes writing the shared
// platform chain under their own test keys would leave it unverifiable for everyone else.
func WithPlatformDatabase(name string) Option { return func(o *writerOptions) { o.platformDB = name } }

// ValidPlatformDatabase checks a platform database name: a MongoDB-safe name that cannot be a
// tenant's database.
func ValidPlatformDatabase(name string) error {
	if !platformDBName.MatchString(name) || strings.HasPrefix(name, tenantmongo.DatabasePrefix) {
		return fmt.Errorf("audit: platform database %q must be 1 to 63 lowercase letters, digits or '_', start with a letter, and not start with %q", name, tenantmongo.DatabasePrefix)
	}
	return nil
}

var platformDBName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// NewWriter returns a Writer over the process's PostgreSQL pool (the outbox and the chain
// heads) and its shared MongoDB client (the audit store). key is the chains' HMAC key
// (seal.Sealer.PurposeKey(KeyPurpose)): at least 32 bytes, the same in every process that
// writes or verifies. A shorter key or a bad platform database name is a wiring mistake
// (configuration is validated before) and panics at start-up.
func NewWriter(pool *pgxpool.Pool, client *mongo.Client, tenants *tenantmongo.Store, key []byte, opts ...Option) *Writer {
	if pool == nil {
		panic("audit: the writer needs a PostgreSQL pool")
	}
	if len(key) < 32 {
		panic("audit: the chain key must be at least 32 bytes")
	}
	o := writerOptions{platformDB: PlatformDatabase}
	for _, opt := range opts {
		opt(&o)
	}
	if o.platformDB == "" {
		o.platformDB = PlatformDatabase
	}
	if err := ValidPlatformDatabase(o.platformDB); err != nil {
		panic(err.Error())
	}
	if o.keys == nil {
		o.keyVersion, o.keys = 1, map[int][]byte{1: key}
	}
	w := &Writer{pool: pool, tenants: tenants, keys: map[int][]byte{}, keyVersion: o.keyVersion, keyIDs: map[string]int{}}
	for v, k := range o.keys {
		if len(k) < 32 {
			panic("audit: every chain key must be at least 32 bytes")
		}
		w.keys[v] = append([]byte(nil), k...)
		w.keyIDs[keyID(k)] = v
	}
	cur, ok := w.keys[w.keyVersion]
	if !ok {
		panic("audit: no chain key of the current version")
	}
	w.keyID = keyID(cur)
	db := client.Database(o.platformDB)
	w.platform = &Chain{w: w, name: PlatformChainName, key: o.platformDB + ":" + PlatformChainName,
		events: db.Collection(Collection), checkpoints: db.Collection(CheckpointCollection)}
	w.unauthenticated = &Chain{w: w, name: UnauthenticatedCollection, key: o.platformDB + ":" + UnauthenticatedCollection,
		events: db.Collection(UnauthenticatedCollection), unchained: true}
	return w
}

// WorkflowEventID is the deterministic id of an event written by a workflow step.
func WorkflowEventID(workflowID, runID, step string) string {
	return workflowID + "/" + runID + "/" + step
}

// PlatformDatabaseName is the database of this writer's platform chain.
func (w *Writer) PlatformDatabaseName() string { return w.platform.events.Database().Name() }

// UnauthenticatedLog is the unchained sequence of unauthenticated refusals (see
// Unauthenticated); Ship moves what waits of it to MongoDB.
func (w *Writer) UnauthenticatedLog() *Chain { return w.unauthenticated }

// PlatformChain is the chain of the platform database.
func (w *Writer) PlatformChain() *Chain { return w.platform }

// TenantChain is the chain of the context tenant's database. It does no I/O: reading a tenant
// that has no database finds nothing and creates nothing.
func (w *Writer) TenantChain(ctx context.Context) (*Chain, error) {
	id, err := tenant.IDFrom(ctx)
	if err != nil {
		return nil, err
	}
	db, err := w.tenants.Database(ctx)
	if err != nil {
		return nil, err
	}
	return &Chain{w: w, name: TenantChainName(id), key: tenantChainKey(id), tenantID: id,
		events: db.Collection(Collection), checkpoints: db.Collection(CheckpointCollection)}, nil
}

// Tenant writes an event into the context tenant's own chain, whatever the tenant's status.
// It reports false, with no error, when an event with that id was already written.
func (w *Writer) Tenant(ctx context.Context, e Event) (bool, error) {
	id, err := tenant.IDFrom(ctx)
	if err != nil {
		return false, err
	}
	if e.TenantID != "" && e.TenantID != id {
		return false, fmt.Errorf("audit: event for %s written in the context of %s", e.TenantID, id)
	}
	e.TenantID = id
	return w.enqueue(ctx, w.pool, modeTenant, e)
}

// Platform writes an event into the platform chain, which outlives tenants. It reports false,
// with no error, when an event with that id was already written.
func (w *Writer) Platform(ctx context.Context, e Event) (bool, error) {
	return w.enqueue(ctx, w.pool, modePlatform, e)
}

// UnauthenticatedCollection, in the platform database, holds refusals of unauthenticated
// callers. It is not chained, on purpose: anyone can cause these events, and writing them into
// a hash chain would let an anonymous flood contend for the chain's head and crowd out the
// events of real operators. An insert here takes no lock and cannot slow the chains.
const UnauthenticatedCollection = "audit_unauthenticated"

// ActorUnauthenticated is the actor type of a caller that proved no identity; what it claimed
// (a tenant id, a token's first characters never) goes in the details, not in TenantID.
const ActorUnauthenticated = "unauthenticated"

// Unauthenticated records a refused, unauthenticated request outside the chains. It goes
// through the outbox like every event (so MongoDB being down loses none), in a sequence of its
// own that is never hashed: the shipper moves it to UnauthenticatedCollection as it is.
func (w *Writer) Unauthenticated(ctx context.Context, e Event) error {
	if e.ID == "" {
		return errors.New("audit: event needs an id")
	}
	if e.At.IsZero() {
		e.At = time.Now().UTC()
	}
	claimed := e.TenantID
	e.TenantID = ""
	e.Actor = Actor{Type: ActorUnauthenticated, ID: "unknown"}
	if claimed != "" {
		if e.Details == nil {
			e.Details = map[string]string{}
		}
		e.Details["claimedTenantId"] = claimed
	}
	_, err := w.enqueueTo(ctx, w.pool, w.unauthenticated, e)
	return err
}

// ChainOpen reports whether a tenant in status s has a MongoDB database holding its chain that
// retention may prune. Only active and suspended tenants do for sure: before that the database
// may not exist yet, after that offboarding drops it.
func ChainOpen(s tenant.Status) bool {
	return s == tenant.StatusActive || s == tenant.StatusSuspended
}

// Record writes e where it belongs, decided in PostgreSQL from the tenant's registry status
// (read under a share lock, so a concurrent status change cannot slip between the decision and
// the insert): into the chain of tenant e.TenantID while the tenant exists and is not being
// offboarded (even before its MongoDB database exists: the event ships once it does); into the
// platform chain otherwise (no tenant, unknown tenant, offboarding or offboarded tenant). Once a
// tenant is offboarding nothing more enters its chain, so offboarding can drain it, export it
// and drop it.
//
// It reports false, with no error, when the event was already written in either chain: a retry
// whose routing differs from the first attempt's finds the event where that attempt put it.
func (w *Writer) Record(ctx context.Context, e Event) (bool, error) {
	return w.enqueue(ctx, w.pool, modeRoute, e)
}
