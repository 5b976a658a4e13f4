// Package tenantredis is the tenant-scoped half of Redis: every key of a tenant lives under
// the prefix "tenant:{<id>}:", the tenant comes only from the context (tenant.IDFrom), and
// tenant code reaches keys through a Scope that adds the prefix itself, so no caller can forget
// it or write another tenant's. It also holds the tenant context record that request checks
// read, session revocation for suspension, and a resumable purge for offboarding.
//
// Key layout: tenant:{<id>}:<kind>:<name>
//
//   - The braces make <id> the Redis Cluster hash tag: all of a tenant's keys hash to one slot,
//     so multi-key commands (UNLINK of a batch, MSET) stay legal in a cluster and a tenant's
//     purge touches one node. Only the first '{' and the first '}' after it count, and both
//     belong to the prefix (ids have no braces), so a brace in a name cannot move a key.
//   - <id> passed tenant.ValidateID: [a-z0-9-], so it holds no glob character ('*', '?',
//     '[', ']', backslash) and a MATCH pattern built from it matches exactly this tenant.
//     '{' and '}' are not glob characters in Redis MATCH (they match themselves; see the
//     tests), and the closing '}' ends the id, so the pattern for "acme" does not match the
//     keys of "acme2".
//   - <kind> names what the key is ("session", "cache", ...): a lowercase word, [a-z][a-z0-9_]*,
//     at most 32 bytes. No ':' (a kind cannot alias another kind plus part of a name, e.g.
//     "session:x"), no braces, no glob characters. The kind "context" is reserved for the
//     context record, which only Store.WriteContext and Store.SetStatus write.
//   - <name> is free-form: any bytes, 1 to 512 of them, ':' '}' '*' included. It comes last, after
//     a fixed prefix, so it can neither change the tenant nor the kind, and it never enters a
//     MATCH pattern.
//   - tenant:{<id>}:_keys is the tenant's key index (see Purge): a sorted set of the keys written
//     through a Scope. No Scope key can be it: a kind starts with a letter, never '_'.
//
// Finding a tenant's keys does not walk the keyspace: every Scope write adds its key to the
// index in the same MULTI/EXEC, and Purge and RevokeSessions walk the index (ZSCAN), whose
// size is the tenant's, not the database's. Only tenants whose record predates the index (no
// keysIndexed field, see WriteContext) are still found with SCAN.
package tenantredis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/misybot/tenancy/internal/model/tenant"
)

// Kinds with a meaning to this package.
const (
	// KindSession holds a tenant's sessions; RevokeSessions deletes all of them. Use a hash of
	// the session token as the name, never the token: names show up in Scope.Key and in SCAN.
	KindSession = "session"
	// kindContext holds the context record; reserved, Scope refuses it.
	kindContext = "context"
	recordName  = "record"
	// indexName is the last part of the index key, tenant:{<id>}:_keys. At the kind's position
	// it cannot collide with a Scope key: kinds match kindPattern, which starts with a letter.
	indexName = "_keys"
)

// indexGrace is added to the expiry a key's index entry carries (its score) and pruned after:
// an entry must outlive its key, and the score comes from the writer's clock while Redis
// expires the key by its own, so the margin covers any clock skew below it. It bounds the
// stale entries of expired keys to those of the last ttl+indexGrace.
const indexGrace = 5 * time.Minute

// Limits on the parts of a key (see the package comment).
const (
	// MaxKindLen keeps kinds short words: they are repeated in every key of the kind.
	MaxKindLen = 32
	// MaxNameLen bounds a name so that a caller passing user input cannot make huge keys;
	// longer identifiers should be hashed.
	MaxNameLen = 512
)

// DefaultBatch is the SCAN COUNT used when a caller passes none. With 1000, one SCAN plus one
// UNLINK keeps Redis busy for about a millisecond (BenchmarkPurge: another tenant's p99 GET
// latency stays near 1 ms during a purge), while a purge among 1M keys needs about a thousand
// round trips.
const DefaultBatch = 1000

var (
	// ErrNotFound: no such key for this tenant (whether it exists for another is not told).
	ErrNotFound = errors.New("not found")
	// ErrInvalidKey: a kind or name outside the rules of the package comment.
	ErrInvalidKey = errors.New("invalid key")
)

var kindPattern = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// Key formats tenant:{<tenantID>}:<kind>[:<rest joined by ':'>]. It does not validate: it is a
// formatter for ids that already passed tenant.ValidateID (in workflow code, logs, tests), not
// a way into Redis. Nothing in this package accepts a key built by it: tenant code gets a
// Scope from the context instead, and Prefix is the validating way to get the prefix.
func Key(tenantID, kind string, rest ...string) string {
	k := "tenant:{" + tenantID + "}:" + kind
	if len(rest) > 0 {
		k += ":" + strings.Join(rest, ":")
	}
	return k
}

// Prefix returns "tenant:{<tenantID>}:", the start of every key of the tenant, after checking
// the id (tenant.ValidateID), so that the prefix, and a MATCH pattern made from it, cannot
// contain glob characters or a second hash tag.
func Prefix(tenantID string) (string, error) {
	if err := tenant.ValidateID(tenantID); err != nil {
		return "", err
	}
	return "tenant:{" + tenantID + "}:", nil
}

// Store reaches tenant keys through one client shared by the whole process: a single server's
// (*redis.Client) or a Redis Cluster's (*redis.ClusterClient). Every key of a tenant hashes to
// one slot, so every command of this package, scripts and multi-key UNLINKs included, is legal
// in a cluster, and a purge scans the one master that owns the slot.
type Store struct {
	client redis.UniversalClient
	// route, when set, picks the client of the context tenant's cell (NewRouted); client then
	// serves only what spans tenants (ScanTenantPrefixes, on the default cell).
	route Router
}

// Router returns the Redis client of the cell the context's tenant lives on.
type Router func(ctx context.Context) (redis.UniversalClient, error)

// NewRouted returns a Store whose tenant operations go to the client route picks for the
// context's tenant; fallback serves what spans tenants.
func NewRouted(fallback redis.UniversalClient, route Router) *Store {
	return &Store{client: fallback, route: route}
}

// clientFor is the client of the context tenant's cell.
func (s *Store) clientFor(ctx context.Context) (redis.UniversalClient, error) {
	if s.route == nil {
		return s.client, nil
	}
	return s.route(ctx)
}

// scoped is the context tenant's key prefix and the client of its cell.
func (s *Store) scoped(ctx context.Context) (redis.UniversalClient, string, error) {
	p, err := prefixFrom(ctx)
	if err != nil {
		return nil, "", err
	}
	client, err := s.clientFor(ctx)
	return client, p, err
}

// New returns a Store over the process-wide client.
func New(client redis.UniversalClient) *Store { return &Store{client: client} }

// prefixFrom returns the context tenant's key prefix, or tenant.ErrNoTenant.
func prefixFrom(ctx context.Context) (string, error) {
	id, err := tenant.IDFrom(ctx)
	if err != nil {
		return "", err
	}
	return Prefix(id)
}

// Scope is one tenant's view of Redis: every method builds its key from the prefix fixed when
// the Scope was made, so a Scope cannot touch any other tenant's key whatever kind or name it
// is given.
type Scope struct {
	client redis.UniversalClient
	prefix string
}

// Scope returns the context tenant's Scope, or tenant.ErrNoTenant when the context holds no
// valid tenant. The tenant is fixed here: the contexts later passed to the Scope's methods
// serve for cancellation only.
func (s *Store) Scope(ctx context.Context) (*Scope, error) {
	client, p, err := s.scoped(ctx)
	if err != nil {
		return nil, err
	}
	return &Scope{client: client, prefix: p}, nil
}

// Key returns the full key for kind and name, for the caller's logs and tests. It does not
// validate; the methods that touch Redis do.
func (sc *Scope) Key(kind, name string) string { return sc.prefix + kind + ":" + name }

// key validates kind and name and returns the full key.
func (sc *Scope) key(kind, name string) (string, error) {
	switch {
	case len(kind) > MaxKindLen || !kindPattern.MatchString(kind):
		return "", fmt.Errorf("%w: kind %q: use %d at most lowercase letters, digits and '_', starting with a letter", ErrInvalidKey, kind, MaxKindLen)
	case kind == kindContext:
		return "", fmt.Errorf("%w: kind %q is reserved for the tenant context record", ErrInvalidKey, kind)
	case name == "" || len(name) > MaxNameLen:
		// The name itself is not echoed: it may be derived from a secret.
		return "", fmt.Errorf("%w: name of kind %q must be 1 to %d bytes", ErrInvalidKey, kind, MaxNameLen)
	}
	return sc.Key(kind, name), nil
}

// Get returns the value of kind/name, or ErrNotFound. Errors name the kind, never the name.
func (sc *Scope) Get(ctx context.Context, kind, name string) (string, error) {
	k, err := sc.key(kind, name)
	if err != nil {
		return "", err
	}
	v, err := sc.client.Get(ctx, k).Result()
	if errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("tenantredis: %s: %w", kind, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("tenantredis: get %s: %w", kind, err)
	}
	return v, nil
}

// indexKey is the key of the tenant's index, a sorted set of the tenant's keys written through a
// Scope. A member is the key without the tenant prefix (<kind>:<name>: the prefix is the
// index's own); its score is when the key's entry may be dropped: the key's expiry plus
// indexGrace in Unix milliseconds, +inf for a key without TTL. Every write prunes entries
// whose time has passed, so the index holds the live keys plus the keys expired in the last
// indexGrace, and keys deleted behind the store's back (an UNLINK of those is harmless). The
// index itself never expires; Redis deletes it when its last entry goes.
func indexKey(prefix string) string { return prefix + indexName }

// indexScore is the score of a key written now with ttl (0: never expires).
func indexScore(ttl time.Duration) float64 {
	if ttl == 0 {
		return math.Inf(1)
	}
	return float64(time.Now().Add(ttl + indexGrace).UnixMilli())
}

// index queues, in the caller's MULTI, the index entry of the key kind:name written with ttl
// and the pruning of entries past their time. raiseOnly (ZADD GT) is for a write that may not
// have happened (SET NX): it never moves an entry's time earlier than the key's expiry.
func (sc *Scope) index(ctx context.Context, pipe redis.Pipeliner, kind, name string, ttl time.Duration, raiseOnly bool) {
	idx := indexKey(sc.prefix)
	z := redis.Z{Score: indexScore(ttl), Member: kind + ":" + name}
	if raiseOnly {
		pipe.ZAddGT(ctx, idx, z)
	} else {
		pipe.ZAdd(ctx, idx, z)
	}
	pipe.ZRemRangeByScore(ctx, idx, "-inf", "("+strconv.FormatInt(time.Now().UnixMilli(), 10))
}

// Set stores value at kind/name, expiring after ttl (0: never), and records the key in the
// tenant's index in the same MULTI/EXEC (one round trip; all keys share the tenant's slot, so
// the transaction is legal in a cluster). The index has no TTL: the key's expiry is its
// entry's score. A negative ttl is refused rather than passed on, because go-redis reads -1 as
// "keep the current TTL".
func (sc *Scope) Set(ctx context.Context, kind, name, value string, ttl time.Duration) error {
	k, err := sc.key(kind, name)
	if err != nil {
		return err
	}
	if ttl < 0 {
		return fmt.Errorf("tenantredis: set %s: negative ttl %s", kind, ttl)
	}
	_, err = sc.client.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		pipe.Set(ctx, k, value, ttl)
		sc.index(ctx, pipe, kind, name, ttl, false)
		return nil
	})
	if err != nil {
		return fmt.Errorf("tenantredis: set %s: %w", kind, err)
	}
	return nil
}

// SetNX stores value at kind/name only if the key is absent, and reports whether it did: the
// building block for "first writer wins" (locks, deduplication of retried requests). The key
// enters the index in the same MULTI/EXEC, written or not; when it was not written, its entry
// only ever moves later (ZADD GT), so it still outlives the key.
func (sc *Scope) SetNX(ctx context.Context, kind, name, value string, ttl time.Duration) (bool, error) {
	k, err := sc.key(kind, name)
	if err != nil {
		return false, err
	}
	if ttl < 0 {
		return false, fmt.Errorf("tenantredis: setnx %s: negative ttl %s", kind, ttl)
	}
	var set *redis.BoolCmd
	_, err = sc.client.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		set = pipe.SetNX(ctx, k, value, ttl)
		sc.index(ctx, pipe, kind, name, ttl, true)
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("tenantredis: setnx %s: %w", kind, err)
	}
	return set.Val(), nil
}

// Del removes kind/name and its index entry in one MULTI/EXEC. A missing key is success, so
// repeating a Del is harmless.
func (sc *Scope) Del(ctx context.Context, kind, name string) error {
	k, err := sc.key(kind, name)
	if err != nil {
		return err
	}
	_, err = sc.client.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		pipe.Unlink(ctx, k)
		pipe.ZRem(ctx, indexKey(sc.prefix), kind+":"+name)
		return nil
	})
	if err != nil {
		return fmt.Errorf("tenantredis: del %s: %w", kind, err)
	}
	return nil
}

// ContextRecord is what a request check needs to know about a tenant without asking
// PostgreSQL: its status, type, permissions and allowed origins. The registry is the source of
// truth; lifecycle workflows copy it here.
type ContextRecord struct {
	Status         string    `json:"status"`
	Type           string    `json:"type"`
	Permissions    []string  `json:"permissions"`
	AllowedOrigins []string  `json:"allowedOrigins"`
	UpdatedAt      time.Time `json:"updatedAt"`
	// StatusVersion orders status writes: the registry's time of the change (UnixNano). A write
	// older than the one stored loses (SetStatus), so a stale writer cannot revive a tenant.
	StatusVersion int64 `json:"statusVersion,omitempty"`
	// SecretRotatedAt is when the tenant's secret last rotated: every API process drops a secret
	// it cached before then, so a revocation holds at once everywhere.
	SecretRotatedAt time.Time `json:"secretRotatedAt,omitzero"`
}

// The record is a hash at tenant:{<id>}:context:record with these fields; list fields are JSON
// arrays, updatedAt is RFC 3339 with nanoseconds. A hash (rather than one JSON string) lets
// SetStatus change one field atomically and lets a check read only the fields it needs.
const (
	fieldStatus         = "status"
	fieldType           = "type"
	fieldPermissions    = "permissions"
	fieldAllowedOrigins = "allowedOrigins"
	fieldUpdatedAt      = "updatedAt"
	fieldStatusVersion  = "statusVersion"
	fieldSecretRotated  = "secretRotatedAt"
	// fieldKeysIndexed ("1") says that every key of the tenant since its first record was
	// written through a Scope, hence is in the index (see WriteContext).
	fieldKeysIndexed = "keysIndexed"
)

func recordKey(prefix string) string { return prefix + kindContext + ":" + recordName }

// writeContext replaces the record (KEYS[1]) with the fields in ARGV. The keysIndexed mark is
// set when there was no record (the tenant's first provisioning) and kept when the old record
// had it; a record without it stays without it.
var writeContext = redis.NewScript(`
local indexed = redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], 'keysIndexed') == 1
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV))
if indexed then redis.call('HSET', KEYS[1], 'keysIndexed', '1') end
return 1`)

// WriteContext replaces the context tenant's record with rec; a zero UpdatedAt is stamped with
// the current time. Idempotent, so Temporal may retry it: it is an overwrite (DEL then HSET of
// every field in one script), so repeating it leaves the same record, and a reader never sees
// a mix of the old and new record. Status and Type must be known values (tenant.Status,
// tenant.Type): an unknown status would make request checks guess.
//
// When no record existed (provisioning), it marks the record keysIndexed: the tenant is new,
// so every key it will have is written through a Scope and lands in the index, and Purge and
// RevokeSessions may walk the index instead of the keyspace. The mark survives later writes of
// the record. A record written before the index existed has no mark, and is never given one
// (RepairContext, which recreates a lost record, does not mark), so a tenant whose keys may
// predate the index is always found with SCAN.
func (s *Store) WriteContext(ctx context.Context, rec ContextRecord) error {
	client, p, err := s.scoped(ctx)
	if err != nil {
		return err
	}
	if !tenant.Status(rec.Status).Valid() {
		return fmt.Errorf("tenantredis: write context: unknown status %q", rec.Status)
	}
	if !tenant.Type(rec.Type).Valid() {
		return fmt.Errorf("tenantredis: write context: unknown type %q", rec.Type)
	}
	if rec.UpdatedAt.IsZero() {
		rec.UpdatedAt = time.Now()
	}
	perms, err := json.Marshal(nonNil(rec.Permissions))
	if err != nil {
		return err
	}
	origins, err := json.Marshal(nonNil(rec.AllowedOrigins))
	if err != nil {
		return err
	}
	err = writeContext.Run(ctx, client, []string{recordKey(p)},
		fieldStatus, rec.Status,
		fieldType, rec.Type,
		fieldPermissions, string(perms),
		fieldAllowedOrigins, string(origins),
		fieldUpdatedAt, rec.UpdatedAt.UTC().Format(time.RFC3339Nano),
		fieldStatusVersion, strconv.FormatInt(rec.StatusVersion, 10)).Err()
	if err != nil {
		return fmt.Errorf("tenantredis: write context: %w", err)
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// ReadContext returns the context tenant's record, or ErrNotFound when none was written.
func (s *Store) ReadContext(ctx context.Context) (ContextRecord, error) {
	client, p, err := s.scoped(ctx)
	if err != nil {
		return ContextRecord{}, err
	}
	h, err := client.HGetAll(ctx, recordKey(p)).Result()
	if err != nil {
		return ContextRecord{}, fmt.Errorf("tenantredis: read context: %w", err)
	}
	if len(h) == 0 {
		return ContextRecord{}, fmt.Errorf("tenantredis: context record: %w", ErrNotFound)
	}
	rec := ContextRecord{Status: h[fieldStatus], Type: h[fieldType]}
	if rec.Status == "" {
		return ContextRecord{}, errors.New("tenantredis: read context: record has no status")
	}
	if err := json.Unmarshal([]byte(h[fieldPermissions]), &rec.Permissions); err != nil {
		return ContextRecord{}, fmt.Errorf("tenantredis: read context: permissions: %w", err)
	}
	if err := json.Unmarshal([]byte(h[fieldAllowedOrigins]), &rec.AllowedOrigins); err != nil {
		return ContextRecord{}, fmt.Errorf("tenantredis: read context: allowed origins: %w", err)
	}
	if rec.UpdatedAt, err = time.Parse(time.RFC3339Nano, h[fieldUpdatedAt]); err != nil {
		return ContextRecord{}, fmt.Errorf("tenantredis: read context: updatedAt: %w", err)
	}
	if v := h[fieldStatusVersion]; v != "" {
		if rec.StatusVersion, err = strconv.ParseInt(v, 10, 64); err != nil {
			return ContextRecord{}, fmt.Errorf("tenantredis: read context: statusVersion: %w", err)
		}
	}
	if v := h[fieldSecretRotated]; v != "" {
		if rec.SecretRotatedAt, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return ContextRecord{}, fmt.Errorf("tenantredis: read context: secretRotatedAt: %w", err)
		}
	}
	return rec, nil
}

// setStatus changes status and updatedAt only when the record exists, atomically: a separate
// EXISTS then HSET could recreate, as a half record, a record deleted in between.
var setStatus = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local cur = tonumber(redis.call('HGET', KEYS[1], 'statusVersion') or '0') or 0
if tonumber(ARGV[3]) < cur then return 2 end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'updatedAt', ARGV[2], 'statusVersion', ARGV[3])
return 1`)

// SetStatus flips the context tenant's status at once (request checks see it on their next
// read) and stamps updatedAt, unless the record holds a status of a later version: version is
// the registry's time of the change, so a writer that read the registry before a newer
// transition (a retried activity) cannot undo it. It reports whether it wrote. When there is no
// record it returns ErrNotFound and writes nothing: a record holding only a status would lack
// the permissions and origins checks need. Idempotent, so Temporal may retry it.
func (s *Store) SetStatus(ctx context.Context, status string, version int64) (bool, error) {
	client, p, err := s.scoped(ctx)
	if err != nil {
		return false, err
	}
	if !tenant.Status(status).Valid() {
		return false, fmt.Errorf("tenantredis: set status: unknown status %q", status)
	}
	n, err := setStatus.Run(ctx, client, []string{recordKey(p)}, status, time.Now().UTC().Format(time.RFC3339Nano), version).Int()
	if err != nil {
		return false, fmt.Errorf("tenantredis: set status: %w", err)
	}
	if n == 0 {
		return false, fmt.Errorf("tenantredis: set status: context record: %w", ErrNotFound)
	}
	return n == 1, nil
}

var updateProfile = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'type', ARGV[1], 'permissions', ARGV[2], 'allowedOrigins', ARGV[3], 'updatedAt', ARGV[4])
return 1`)

// UpdateProfile replaces the record's type, permissions and origins, and never its status: a
// profile change read from the registry before a suspension landed cannot revive the tenant in
// the record request checks read. A tenant without a record (not provisioned) is left alone:
// it reports false.
func (s *Store) UpdateProfile(ctx context.Context, typ string, permissions, origins []string) (bool, error) {
	client, p, err := s.scoped(ctx)
	if err != nil {
		return false, err
	}
	if !tenant.Type(typ).Valid() {
		return false, fmt.Errorf("tenantredis: update profile: unknown type %q", typ)
	}
	perms, err := json.Marshal(nonNil(permissions))
	if err != nil {
		return false, err
	}
	orig, err := json.Marshal(nonNil(origins))
	if err != nil {
		return false, err
	}
	n, err := updateProfile.Run(ctx, client, []string{recordKey(p)}, typ, string(perms), string(orig), time.Now().UTC().Format(time.RFC3339Nano)).Int()
	if err != nil {
		return false, fmt.Errorf("tenantredis: update profile: %w", err)
	}
	return n == 1, nil
}

var markSecretRotated = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'secretRotatedAt', ARGV[1])
return 1`)

// MarkSecretRotated records in the context record that the tenant's secret rotated at at, so
// that every API process drops a secret it cached before (it reads the record on every
// request). A tenant without a record has no cached secret anywhere.
func (s *Store) MarkSecretRotated(ctx context.Context, at time.Time) error {
	client, p, err := s.scoped(ctx)
	if err != nil {
		return err
	}
	if err := markSecretRotated.Run(ctx, client, []string{recordKey(p)}, at.UTC().Format(time.RFC3339Nano)).Err(); err != nil {
		return fmt.Errorf("tenantredis: mark secret rotated: %w", err)
	}
	return nil
}
