package audit

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
)

// PlatformChainName names the platform chain in every hash and MAC.
const PlatformChainName = "platform"

// TenantChainName names a tenant's chain in every hash and MAC: "tenant/<id>".
func TenantChainName(tenantID string) string { return "tenant/" + tenantID }

// Chain is one hash chain: the events collection of one database (a tenant's or the
// platform's) and its retention checkpoints.
//
// # Why HMAC and not a plain hash
//
// A plain SHA-256 chain detects an edit only from someone who cannot, or does not bother to,
// recompute every hash after the edited event; anyone with write access to the database can.
// The hash here is HMAC-SHA256 under a key derived from TENANT_MASTER_KEY (which never reaches
// the database), so rewriting the chain consistently, forging an event, or forging a retention
// checkpoint (to hide a deleted prefix) needs the master key, not just database access. The
// price is that verification needs the key too: it is done by the control plane (API, worker),
// and rotating the master key needs a chain key version (not implemented: there is one key).
//
// # Canonical encoding (version 1)
//
// The MAC input is a sequence of fields, each written as its length (8 bytes, big-endian)
// followed by its bytes, in this fixed order:
//
//	"misybot-audit-event/v1", chain name ("platform" or "tenant/<id>"), seq (decimal),
//	prevHash, id, tenantId, actor.type, actor.id, action, resource, outcome, reason,
//	requestId, workflowId, runId, at (RFC 3339 with nanoseconds, UTC; the writer truncates
//	times to milliseconds first, MongoDB's precision), the number of details (decimal), then
//	each detail's key and value, keys in byte order.
//
// Length prefixes make the encoding injective (no two events encode alike, whatever their
// strings contain); the fixed order makes it independent of BSON or JSON field order; the
// chain name binds an event to its chain, so an event copied into another tenant's chain does
// not verify there.
type Chain struct {
	w    *Writer
	name string
	// key names the chain in PostgreSQL (audit_heads, audit_backlog): its database and its name,
	// since two deployments (or test processes) may keep platform chains of the same name in
	// different databases.
	key      string
	tenantID string
	// unchained marks a sequence that is shipped as it is, never hashed (Unauthenticated).
	unchained   bool
	events      *mongo.Collection
	checkpoints *mongo.Collection
}

// Name is the chain's name as hashed: "platform" or "tenant/<id>".
func (c *Chain) Name() string { return c.name }

// canon writes length-prefixed fields into a MAC.
type canon struct{ h hash.Hash }

func (c canon) str(s string) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(s)))
	c.h.Write(n[:])
	c.h.Write([]byte(s))
}

func (c canon) int(v int64) { c.str(strconv.FormatInt(v, 10)) }

func (c canon) time(t time.Time) { c.str(t.UTC().Format(time.RFC3339Nano)) }

// eventHash is the hex HMAC of e's canonical encoding in chain (see Chain). It uses e.Seq and
// e.PrevHash as given and ignores e.Hash.
func (w *Writer) eventHash(chain string, e Event) string {
	key, ok := w.keyOf(e.KeyVersion)
	if !ok {
		return "" // a key this process does not hold: nothing verifies
	}
	m := hmac.New(sha256.New, key)
	c := canon{m}
	c.str("misybot-audit-event/v1")
	c.str(chain)
	c.int(e.Seq)
	c.str(e.PrevHash)
	for _, s := range []string{e.ID, e.TenantID, e.Actor.Type, e.Actor.ID, e.Action, e.Resource, e.Outcome, e.Reason, e.RequestID, e.WorkflowID, e.RunID} {
		c.str(s)
	}
	c.time(e.At)
	keys := sortedKeys(e.Details)
	c.int(int64(len(keys)))
	for _, k := range keys {
		c.str(k)
		c.str(e.Details[k])
	}
	return hex.EncodeToString(m.Sum(nil))
}

// keyOf returns the chain key of a master key version (0 is version 1).
func (w *Writer) keyOf(version int) ([]byte, bool) {
	if version == 0 {
		version = 1
	}
	k, ok := w.keys[version]
	return k, ok
}

// versionField is what an event of version v stores in KeyVersion: 0 for version 1, so the
// events of version 1 are byte for byte what they were before versions existed.
func versionField(v int) int {
	if v == 1 {
		return 0
	}
	return v
}

// link is a chain position: a seq and the hash stored there.
type link struct {
	Seq  int64  `bson:"seq"`
	Hash string `bson:"hash"`
}

// head is the chain's last position in MongoDB: its newest event, or, when retention removed
// every event (it never does, but a chain must survive it), its newest checkpoint; zero for an
// empty chain. A sorted query, a scan on FerretDB: never on a hot path (see resync).
func (c *Chain) head(ctx context.Context) (link, error) {
	var h link
	err := c.events.FindOne(ctx, bson.D{{Key: "seq", Value: bson.D{{Key: "$gte", Value: 1}}}},
		options.FindOne().SetSort(bson.D{{Key: "seq", Value: -1}}).SetProjection(bson.D{{Key: "seq", Value: 1}, {Key: "hash", Value: 1}})).Decode(&h)
	if err == nil {
		return h, nil
	}
	if !errors.Is(err, mongo.ErrNoDocuments) {
		return link{}, fmt.Errorf("audit: read head of %s: %w", c.name, err)
	}
	cp, ok, err := c.latestCheckpoint(ctx)
	if err != nil || !ok {
		return link{}, err
	}
	return link{Seq: cp.Seq, Hash: cp.Hash}, nil
}

// Indexes of an events collection. seq_1 (unique) is what keeps the chain from forking; the
// others serve reports and retention. Tenant databases get them all from
// tenantmongo.Provision; the writer makes sure of seq_1 in every database it writes (a tenant
// database written before provisioning, or the platform database) and of all of them in the
// platform database. Names match tenantmongo's layout, so either side recognises the other's.
var (
	seqIndex      = index{"seq_1", bson.D{{Key: "seq", Value: 1}}, true}
	platformIndex = []index{
		seqIndex,
		{"at_1", bson.D{{Key: "at", Value: 1}}, false},
		{"action_1_at_1", bson.D{{Key: "action", Value: 1}, {Key: "at", Value: 1}}, false},
		{"tenantId_1_seq_1", bson.D{{Key: "tenantId", Value: 1}, {Key: "seq", Value: 1}}, false},
	}
)

type index struct {
	name   string
	keys   bson.D
	unique bool
}

// EnsurePlatformIndexes creates the platform chain's indexes, each in its own call (FerretDB
// fails a whole batch on one unsupported index), and checks that seq_1 is unique: FerretDB
// answers ok to a createIndexes whose name exists with other options, so the answer alone
// proves nothing. Idempotent; the worker calls it at start, and the first platform write of
// every process makes sure of seq_1 anyway.
func (w *Writer) EnsurePlatformIndexes(ctx context.Context) error {
	for _, ix := range platformIndex {
		if err := createIndex(ctx, w.platform.events, ix); err != nil {
			return err
		}
	}
	return checkUnique(ctx, w.platform.events)
}

// SeqIndexChecked records that the events collection of database db has its unique seq index,
// as the caller has just checked (tenantmongo.Provision checks every index of a tenant
// database, seq_1 with its uniqueness), so this process's first shipment to db skips its own
// check: two commands fewer per onboarding.
func (w *Writer) SeqIndexChecked(db string) { w.ready.Store(db, struct{}{}) }

// ensureSeqIndex makes sure coll has the unique seq index, once per database and process.
func (w *Writer) ensureSeqIndex(ctx context.Context, coll *mongo.Collection) error {
	db := coll.Database().Name()
	if _, ok := w.ready.Load(db); ok {
		return nil
	}
	w.readyMu.Lock()
	defer w.readyMu.Unlock()
	if _, ok := w.ready.Load(db); ok {
		return nil
	}
	if err := createIndex(ctx, coll, seqIndex); err != nil {
		return err
	}
	if err := checkUnique(ctx, coll); err != nil {
		return err
	}
	w.ready.Store(db, struct{}{})
	return nil
}

func createIndex(ctx context.Context, coll *mongo.Collection, ix index) error {
	opts := options.Index().SetName(ix.name)
	if ix.unique {
		opts.SetUnique(true)
	}
	got, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: ix.keys, Options: opts})
	if err != nil {
		return fmt.Errorf("audit: create index %s.%s.%s: %w", coll.Database().Name(), coll.Name(), ix.name, err)
	}
	if got != ix.name {
		return fmt.Errorf("audit: create index %s.%s.%s: server created %q", coll.Database().Name(), coll.Name(), ix.name, got)
	}
	return nil
}

// checkUnique re-reads the indexes and refuses a seq_1 that is not unique: without it two
// writers could both take the same seq and fork the chain.
func checkUnique(ctx context.Context, coll *mongo.Collection) error {
	specs, err := coll.Indexes().ListSpecifications(ctx)
	if err != nil {
		return fmt.Errorf("audit: list indexes of %s.%s: %w", coll.Database().Name(), coll.Name(), err)
	}
	for _, s := range specs {
		if s.Name == seqIndex.name {
			if s.Unique == nil || !*s.Unique {
				return fmt.Errorf("audit: index %s.%s.seq_1 exists but is not unique: the chain could fork; drop it and let the writer re-create it", coll.Database().Name(), coll.Name())
			}
			return nil
		}
	}
	return fmt.Errorf("audit: index %s.%s.seq_1 missing after createIndexes succeeded", coll.Database().Name(), coll.Name())
}
