// Package tenantmongo is the tenant-scoped half of MongoDB: one database per tenant, named
// from the tenant id, plus the provisioning and removal of that database. The tenant comes only
// from the context (tenant.IDFrom): no function takes a tenant id to open a database, so a
// caller cannot ask for another tenant's data by passing the wrong string.
//
// The code runs on FerretDB v1 (SQLite backend) in development and on MongoDB elsewhere, so it
// uses only what both support: no TTL index, no partialFilterExpression, no collation, no
// multi-document transaction, and several indexes in one createIndexes call only where none of
// them exists yet (see createAll).
package tenantmongo

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"

	"github.com/misybot/tenancy/internal/model/tenant"
)

// DatabasePrefix starts every tenant database name; it also keeps tenant databases apart from
// any other database on the server (admin, local, config, the control plane's own).
const DatabasePrefix = "tenant_"

// MaxDatabaseNameLen is MongoDB's limit: a database name must have fewer than 64 bytes.
// FerretDB enforces the same bound (63 accepted, 64 refused with InvalidNamespace).
const MaxDatabaseNameLen = 63

// The collections every tenant database holds. Callers use these names rather than literals
// so that Provision, Deprovision's count and the code reading the data agree.
const (
	// Conversations holds one document per conversation; listed newest first.
	Conversations = "conversations"
	// Messages holds the messages of every conversation, read in order per conversation.
	Messages = "messages"
	// AuditEvents is the tenant's audit trail, a hash chain (internal/domain/audit): seq is its
	// per-tenant position, unique, so two concurrent writers cannot both take the same one and
	// fork the chain. A retried write is recognised by its deterministic _id instead.
	AuditEvents = "audit_events"
)

// ErrIndexConflict: an index with one of our names exists with other keys or options. It is
// permanent (retrying cannot fix it; someone must look), so activities should report it as a
// non-retryable error.
var ErrIndexConflict = errors.New("index exists with a different definition")

// index is one index of the layout. Names are the ones MongoDB would generate from the keys,
// so an index created by hand with the same keys is recognised rather than duplicated.
type index struct {
	name   string
	keys   bson.D
	unique bool
}

type collection struct {
	name    string
	indexes []index
}

// layout is the collections convention of a tenant database. Deliberately absent: TTL indexes
// (retention is a scheduled workflow), partial indexes and collations (FerretDB lacks them).
var layout = []collection{
	{Conversations, []index{
		{name: "updatedAt_-1", keys: bson.D{{Key: "updatedAt", Value: -1}}},
	}},
	{Messages, []index{
		{name: "conversationId_1_createdAt_1", keys: bson.D{{Key: "conversationId", Value: 1}, {Key: "createdAt", Value: 1}}},
	}},
	{AuditEvents, []index{
		{name: "seq_1", keys: bson.D{{Key: "seq", Value: 1}}, unique: true},
		{name: "at_1", keys: bson.D{{Key: "at", Value: 1}}},
		{name: "action_1_at_1", keys: bson.D{{Key: "action", Value: 1}, {Key: "at", Value: 1}}},
	}},
}

// Collections lists the collections Provision creates, in order.
func Collections() []string {
	out := make([]string, len(layout))
	for i, c := range layout {
		out[i] = c.name
	}
	return out
}

// DatabaseName returns the tenant's database name: "tenant_" + id.
//
// Why two tenants can never share a database: the id is validated first (tenant.ValidateID),
// and prefixing a fixed string is injective, so distinct ids give distinct names. The id
// alphabet is [a-z0-9-]: no '.', '/', '\', '$', space, quote or NUL (which MongoDB forbids in
// database names), no '_' (so the prefix cannot be confused with part of an id), and lowercase
// only (MongoDB refuses two databases whose names differ only in case). One id being a prefix
// of another ("acme" and "acme2") is harmless: names are compared whole, never as prefixes.
// The length is checked explicitly against MongoDB's 64-byte limit even though ids of at most
// 40 characters give at most 47 bytes, so that loosening the id rules cannot silently produce a
// name the server refuses half-way through provisioning.
func DatabaseName(tenantID string) (string, error) {
	if err := tenant.ValidateID(tenantID); err != nil {
		return "", err
	}
	name := DatabasePrefix + tenantID
	if len(name) > MaxDatabaseNameLen {
		return "", fmt.Errorf("%w: database name %q is %d bytes, MongoDB allows %d", tenant.ErrInvalidID, name, len(name), MaxDatabaseNameLen)
	}
	return name, nil
}

// Store opens tenant databases on one client per cell, shared by the whole process (the driver
// pools connections per client; a client per tenant or per call would defeat the pool).
type Store struct {
	client *mongo.Client
	// route, when set, picks the client of the context tenant's cell (NewRouted); client then
	// serves only what spans tenants (TenantDatabases, on the default cell).
	route Router
}

// Router returns the MongoDB client of the cell the context's tenant lives on.
type Router func(ctx context.Context) (*mongo.Client, error)

// New returns a Store over the process-wide client: every tenant on it.
func New(client *mongo.Client) *Store { return &Store{client: client} }

// NewRouted returns a Store whose tenant databases are on the client route picks for the
// context's tenant; fallback serves what spans tenants.
func NewRouted(fallback *mongo.Client, route Router) *Store {
	return &Store{client: fallback, route: route}
}

// clientFor is the client of the context tenant's cell.
func (s *Store) clientFor(ctx context.Context) (*mongo.Client, error) {
	if s.route == nil {
		return s.client, nil
	}
	return s.route(ctx)
}

// Database returns the context tenant's database, or tenant.ErrNoTenant when the context holds
// no valid tenant. It is the only way into a tenant database: the name is derived here, from
// the context, never passed in. It does no I/O; MongoDB creates the database on first write.
func (s *Store) Database(ctx context.Context) (*mongo.Database, error) {
	id, err := tenant.IDFrom(ctx)
	if err != nil {
		return nil, err
	}
	name, err := DatabaseName(id)
	if err != nil {
		return nil, err
	}
	client, err := s.clientFor(ctx)
	if err != nil {
		return nil, err
	}
	return client.Database(name), nil
}

// Collection returns one collection of the context tenant's database (see Database). Use the
// Conversations, Messages and AuditEvents constants for the provisioned ones.
func (s *Store) Collection(ctx context.Context, name string) (*mongo.Collection, error) {
	if name == "" {
		return nil, errors.New("tenantmongo: empty collection name")
	}
	db, err := s.Database(ctx)
	if err != nil {
		return nil, err
	}
	return db.Collection(name), nil
}

// ProvisionReport says what Provision did. Names in IndexesCreated are "collection.index".
// A second run reports nothing created and everything already present.
type ProvisionReport struct {
	Database           string   `json:"database"`
	CollectionsCreated []string `json:"collectionsCreated"`
	IndexesCreated     []string `json:"indexesCreated"`
	// AlreadyPresent counts collections and indexes that existed before this run.
	AlreadyPresent int `json:"alreadyPresent"`
}

// Server error codes, the same on MongoDB and FerretDB: "collection already exists", and an
// index that clashes with an existing one by keys or by name.
const (
	codeNamespaceExists       = 48
	codeIndexOptionsConflict  = 85
	codeIndexKeySpecsConflict = 86
)

// Provision creates the context tenant's collections and indexes (see layout).
//
// One listCollections for the database, then per collection one createCollection when it is
// absent and one createIndexes for the indexes of a collection it created (one per missing
// index of a collection that existed): a fresh onboarding costs seven commands (it took nine
// with one createIndexes per index, fifteen with a listIndexes before and a verifying one after
// every collection). The listCollections stays, though a create answering NamespaceExists
// would say the same on FerretDB: MongoDB 7.0 and later (and mongos since 4.0) answer ok to a
// create of a collection that exists with the same options, so only the list tells an
// existing collection, whose indexes must be checked, from a new one.
// Provision runs once per onboarding on a FerretDB whose every command costs CPU the Temporal
// server needs, so the command count is the price that matters here. One index per command
// for a collection that existed: FerretDB v1 mis-filters a multi-index createIndexes in which
// two or more indexes already exist (it deletes by stale positions and can panic), which a
// retry would send.
//
// Idempotent, so Temporal may retry it at will: it creates only what is missing, treats
// "collection already exists" (NamespaceExists, code 48) as success, createIndexes answers ok
// for an index that exists with the same name and keys (a concurrent attempt),
// nothing is ever dropped or rewritten, and a run that crashed half-way left whole collections
// and whole indexes that the next run finds. Indexes that existed are checked against the
// layout. One it created is proven by the answer's counts (one index more after than before;
// on FerretDB, which counts before it creates, only in the absence of a race); when the answer
// says the index appeared meanwhile, it re-reads the collection's indexes and
// checks them, because FerretDB answers ok to a createIndexes whose name and keys exist with
// other options (MongoDB would fail). An index under our name, or with our keys, and another
// definition is ErrIndexConflict.
func (s *Store) Provision(ctx context.Context) (ProvisionReport, error) {
	db, err := s.Database(ctx)
	if err != nil {
		return ProvisionReport{}, err
	}
	rep := ProvisionReport{Database: db.Name(), CollectionsCreated: []string{}, IndexesCreated: []string{}}
	fail := func(err error) (ProvisionReport, error) {
		return rep, fmt.Errorf("tenantmongo: provision %s: %w", db.Name(), err)
	}
	existing, err := db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return fail(fmt.Errorf("list collections: %w", err))
	}
	for _, c := range layout {
		missing := c.indexes
		created := false
		if slices.Contains(existing, c.name) {
			rep.AlreadyPresent++
			if missing, err = checkExisting(ctx, db, c); err != nil {
				return fail(err)
			}
			rep.AlreadyPresent += len(c.indexes) - len(missing)
		} else {
			// Explicitly, though createIndexes would create it too: FerretDB decides
			// createdCollectionAutomatically from a read made before it creates, so two
			// concurrent attempts would both report the collection as theirs.
			err := db.CreateCollection(ctx, c.name)
			var ce mongo.CommandError
			switch {
			case err == nil:
				rep.CollectionsCreated = append(rep.CollectionsCreated, c.name)
				created = true
			case errors.As(err, &ce) && ce.Code == codeNamespaceExists:
				rep.AlreadyPresent++ // created meanwhile by a concurrent attempt
			default:
				return fail(fmt.Errorf("create collection %s: %w", c.name, err))
			}
		}
		if created && len(missing) > 1 {
			if names, ok := createAll(ctx, db, c.name, missing); ok {
				rep.IndexesCreated = append(rep.IndexesCreated, names...)
				continue
			}
			// Another attempt made some of them meanwhile, or the batch failed: one by one below,
			// where an existing index is recognised and checked.
		}
		raced := false
		for _, ix := range missing {
			res, err := createIndex(ctx, db, c.name, ix)
			var ce mongo.CommandError
			if errors.As(err, &ce) && (ce.Code == codeIndexOptionsConflict || ce.Code == codeIndexKeySpecsConflict) {
				// The same keys exist under another name, or the name with other keys.
				return fail(fmt.Errorf("create index %s.%s: %w: %w", c.name, ix.name, ErrIndexConflict, err))
			}
			if err != nil {
				return fail(fmt.Errorf("create index %s.%s: %w", c.name, ix.name, err))
			}
			if res.NumIndexesAfter == res.NumIndexesBefore+1 {
				rep.IndexesCreated = append(rep.IndexesCreated, c.name+"."+ix.name)
			} else {
				raced = true // made meanwhile by a concurrent attempt
				rep.AlreadyPresent++
			}
		}
		if raced {
			if err := verify(ctx, db, c); err != nil {
				return fail(err)
			}
		}
	}
	return rep, nil
}

// checkExisting reads the indexes of an existing collection, checks those of the layout that
// are there, and returns those that are missing.
func checkExisting(ctx context.Context, db *mongo.Database, c collection) ([]index, error) {
	specs, err := db.Collection(c.name).Indexes().ListSpecifications(ctx)
	if err != nil {
		return nil, fmt.Errorf("list indexes of %s: %w", c.name, err)
	}
	var missing []index
	for _, ix := range c.indexes {
		spec := findSpec(specs, ix.name)
		if spec == nil {
			missing = append(missing, ix)
			continue
		}
		if err := ix.matches(spec); err != nil {
			return nil, fmt.Errorf("%s.%s: %w", c.name, ix.name, err)
		}
	}
	return missing, nil
}

// createIndexesResult is the part of the server's createIndexes answer Provision reads. The
// counts include the _id index.
type createIndexesResult struct {
	CreatedCollectionAutomatically bool `bson:"createdCollectionAutomatically"`
	NumIndexesBefore               int  `bson:"numIndexesBefore"`
	NumIndexesAfter                int  `bson:"numIndexesAfter"`
}

// createAll creates the indexes of a collection this attempt has just created in one
// createIndexes command (one metadata commit on FerretDB instead of one per index), and
// reports whether the answer proves they are all there: one index more after than before for
// each (on FerretDB, which counts before it creates, a concurrent attempt of ours may have made
// one in between, with the same definition). Anything else (an error, an index that appeared
// meanwhile) is left to the one-by-one path, which recognises and checks what exists: FerretDB
// v1 mis-handles a batch in which two or more indexes already exist, so a batch is only sent
// where none can exist but by a race.
func createAll(ctx context.Context, db *mongo.Database, coll string, ixs []index) ([]string, bool) {
	specs := make(bson.A, 0, len(ixs))
	names := make([]string, 0, len(ixs))
	for _, ix := range ixs {
		specs = append(specs, ix.spec())
		names = append(names, coll+"."+ix.name)
	}
	var res createIndexesResult
	err := db.RunCommand(ctx, bson.D{{Key: "createIndexes", Value: coll}, {Key: "indexes", Value: specs}}).Decode(&res)
	return names, err == nil && res.NumIndexesAfter == res.NumIndexesBefore+len(ixs)
}

// spec is the index's createIndexes specification.
func (ix index) spec() bson.D {
	spec := bson.D{{Key: "key", Value: ix.keys}, {Key: "name", Value: ix.name}}
	if ix.unique {
		spec = append(spec, bson.E{Key: "unique", Value: true})
	}
	return spec
}

// createIndex sends one createIndexes command for one index. The driver's
// Indexes().CreateOne returns only the name, and Provision needs the counts.
func createIndex(ctx context.Context, db *mongo.Database, coll string, ix index) (createIndexesResult, error) {
	var res createIndexesResult
	err := db.RunCommand(ctx, bson.D{{Key: "createIndexes", Value: coll}, {Key: "indexes", Value: bson.A{ix.spec()}}}).Decode(&res)
	return res, err
}

// verify re-reads the indexes of c and checks that each index of the layout is there with its
// keys and uniqueness.
func verify(ctx context.Context, db *mongo.Database, c collection) error {
	specs, err := db.Collection(c.name).Indexes().ListSpecifications(ctx)
	if err != nil {
		return fmt.Errorf("verify indexes of %s: %w", c.name, err)
	}
	for _, ix := range c.indexes {
		spec := findSpec(specs, ix.name)
		if spec == nil {
			return fmt.Errorf("verify %s.%s: index missing after createIndexes succeeded", c.name, ix.name)
		}
		if err := ix.matches(spec); err != nil {
			return fmt.Errorf("verify %s.%s: %w", c.name, ix.name, err)
		}
	}
	return nil
}

func findSpec(specs []*mongo.IndexSpecification, name string) *mongo.IndexSpecification {
	for _, s := range specs {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// matches compares an existing index with the layout's: same keys in the same order and
// directions, same uniqueness.
func (ix index) matches(spec *mongo.IndexSpecification) error {
	want, err := bson.Marshal(ix.keys)
	if err != nil {
		return err
	}
	if !keysEqual(want, spec.KeysDocument) {
		return fmt.Errorf("%w: keys %s, want %s", ErrIndexConflict, spec.KeysDocument, bson.Raw(want))
	}
	if unique := spec.Unique != nil && *spec.Unique; unique != ix.unique {
		return fmt.Errorf("%w: unique=%t, want %t", ErrIndexConflict, unique, ix.unique)
	}
	return nil
}

// keysEqual compares two key documents field by field; directions are compared as numbers
// because servers may answer 1 as an int32, an int64 or a double.
func keysEqual(a, b bson.Raw) bool {
	ea, errA := a.Elements()
	eb, errB := b.Elements()
	if errA != nil || errB != nil || len(ea) != len(eb) {
		return false
	}
	for i := range ea {
		if ea[i].Key() != eb[i].Key() {
			return false
		}
		va, okA := ea[i].Value().AsInt64OK()
		vb, okB := eb[i].Value().AsInt64OK()
		if !okA || !okB || va != vb {
			return false
		}
	}
	return true
}

// DeprovisionReport says what Deprovision removed, for the audit trail. On a repeated run the
// database is already gone: Dropped is false and the counts are zero (the first run's report is
// the one to keep).
type DeprovisionReport struct {
	Database    string `json:"database"`
	Dropped     bool   `json:"dropped"`
	Collections int    `json:"collections"`
	Documents   int64  `json:"documents"`
}

// Deprovision drops the context tenant's database after counting its collections and documents
// for the audit. Idempotent, so Temporal may retry it: a database that does not exist (never
// provisioned, or dropped by an earlier attempt) is success with Dropped false, and dropping is
// a single server command, so an attempt that crashed left either the whole database or none.
// The counts are taken just before the drop; nothing else writes to a tenant being offboarded.
func (s *Store) Deprovision(ctx context.Context) (DeprovisionReport, error) {
	db, err := s.Database(ctx)
	if err != nil {
		return DeprovisionReport{}, err
	}
	rep := DeprovisionReport{Database: db.Name()}
	fail := func(err error) (DeprovisionReport, error) {
		return DeprovisionReport{Database: db.Name()}, fmt.Errorf("tenantmongo: deprovision %s: %w", db.Name(), err)
	}
	exists, err := s.exists(ctx, db.Name())
	if err != nil {
		return fail(err)
	}
	if !exists {
		return rep, nil
	}
	names, err := db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return fail(fmt.Errorf("list collections: %w", err))
	}
	for _, name := range names {
		n, err := db.Collection(name).CountDocuments(ctx, bson.D{})
		if err != nil {
			return fail(fmt.Errorf("count %s: %w", name, err))
		}
		rep.Documents += n
	}
	rep.Collections = len(names)
	if err := db.Drop(ctx); err != nil {
		return fail(fmt.Errorf("drop: %w", err))
	}
	rep.Dropped = true
	return rep, nil
}

// DropCollectionsExcept drops every collection of the context tenant's database but those
// named in keep (onboarding's compensation keeps the audit trail of a tenant that stays
// registered). The report counts what was dropped; Dropped stays false, since the database
// remains. Idempotent: a collection already gone is not listed again.
func (s *Store) DropCollectionsExcept(ctx context.Context, keep ...string) (DeprovisionReport, error) {
	db, err := s.Database(ctx)
	if err != nil {
		return DeprovisionReport{}, err
	}
	rep := DeprovisionReport{Database: db.Name()}
	names, err := db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return rep, fmt.Errorf("tenantmongo: list collections of %s: %w", db.Name(), err)
	}
	for _, name := range names {
		if slices.Contains(keep, name) {
			continue
		}
		n, err := db.Collection(name).CountDocuments(ctx, bson.D{})
		if err != nil {
			return rep, fmt.Errorf("tenantmongo: count %s.%s: %w", db.Name(), name, err)
		}
		if err := db.Collection(name).Drop(ctx); err != nil {
			return rep, fmt.Errorf("tenantmongo: drop %s.%s: %w", db.Name(), name, err)
		}
		rep.Documents += n
		rep.Collections++
	}
	return rep, nil
}

// Exists reports whether the context tenant's database exists. It asks the server for the
// exact name (a filter on equality, not a prefix or a regular expression), so the database of
// a tenant whose id extends this one ("acme2" for "acme") does not count.
func (s *Store) Exists(ctx context.Context) (bool, error) {
	db, err := s.Database(ctx)
	if err != nil {
		return false, err
	}
	exists, err := s.exists(ctx, db.Name())
	if err != nil {
		return false, fmt.Errorf("tenantmongo: exists %s: %w", db.Name(), err)
	}
	return exists, nil
}

func (s *Store) exists(ctx context.Context, name string) (bool, error) {
	client, err := s.clientFor(ctx)
	if err != nil {
		return false, err
	}
	names, err := client.ListDatabaseNames(ctx, bson.D{{Key: "name", Value: name}})
	if err != nil {
		return false, fmt.Errorf("list databases: %w", err)
	}
	return slices.Contains(names, name), nil
}
