package tenantredis

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/misybot/tenancy/internal/model/tenant"
)

// ContextExists reports whether the context tenant has a context record: one EXISTS on its key.
func (s *Store) ContextExists(ctx context.Context) (bool, error) {
	client, p, err := s.scoped(ctx)
	if err != nil {
		return false, err
	}
	n, err := client.Exists(ctx, recordKey(p)).Result()
	if err != nil {
		return false, fmt.Errorf("tenantredis: context exists: %w", err)
	}
	return n == 1, nil
}

// repairContext writes the registry's fields unless the record holds a status of a later
// version (as setStatus), creating the record when it is missing, and keeps the fields it does
// not own (secretRotatedAt).
var repairContext = redis.NewScript(`
local cur = tonumber(redis.call('HGET', KEYS[1], 'statusVersion') or '0') or 0
if tonumber(ARGV[6]) < cur then return 2 end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'type', ARGV[2], 'permissions', ARGV[3],
  'allowedOrigins', ARGV[4], 'updatedAt', ARGV[5], 'statusVersion', ARGV[6])
return 1`)

// RepairContext writes the registry's view of the context tenant into its context record
// (status, type, permissions, origins, updatedAt, statusVersion) atomically, creating the
// record when it is missing, and reports whether it wrote. Unlike WriteContext it does not
// delete the record first, so the fields it does not own survive (secretRotatedAt: an API
// process must still drop a secret it cached before the last rotation). Like SetStatus it does
// not write over a status of a later version: rec.StatusVersion must be the registry row's
// time (UnixNano), so a repair that read the registry before a transition cannot undo it.
// Idempotent: the same registry row writes the same fields.
func (s *Store) RepairContext(ctx context.Context, rec ContextRecord) (bool, error) {
	client, p, err := s.scoped(ctx)
	if err != nil {
		return false, err
	}
	if !tenant.Status(rec.Status).Valid() {
		return false, fmt.Errorf("tenantredis: repair context: unknown status %q", rec.Status)
	}
	if !tenant.Type(rec.Type).Valid() {
		return false, fmt.Errorf("tenantredis: repair context: unknown type %q", rec.Type)
	}
	if rec.UpdatedAt.IsZero() {
		rec.UpdatedAt = time.Now()
	}
	perms, err := json.Marshal(nonNil(rec.Permissions))
	if err != nil {
		return false, err
	}
	origins, err := json.Marshal(nonNil(rec.AllowedOrigins))
	if err != nil {
		return false, err
	}
	n, err := repairContext.Run(ctx, client, []string{recordKey(p)}, rec.Status, rec.Type, string(perms), string(origins),
		rec.UpdatedAt.UTC().Format(time.RFC3339Nano), strconv.FormatInt(rec.StatusVersion, 10)).Int()
	if err != nil {
		return false, fmt.Errorf("tenantredis: repair context: %w", err)
	}
	return n == 1, nil
}

// ScanTenantPrefixes walks one SCAN step (COUNT count) over the keys of tenants whose id
// starts with idPrefix (MATCH "tenant:{<idPrefix>*") and returns the distinct tenant ids seen
// in this step, sorted, and the cursor to continue from (0: the walk is over). Ids are taken
// between the first '{' and the first '}' of each key, as the hash tag is; they need not be
// valid ids (a key written by something else under "tenant:{" is what reconciliation looks
// for). idPrefix must hold only [a-z0-9-], which are not glob characters.
//
// The cost is the walk of the whole keyspace, once, in steps of about count keys: call it once
// per reconciliation run, never per tenant.
func (s *Store) ScanTenantPrefixes(ctx context.Context, idPrefix string, cursor uint64, count int64) ([]string, uint64, error) {
	if strings.Trim(idPrefix, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
		return nil, 0, fmt.Errorf("tenantredis: scan prefixes: prefix %q: only [a-z0-9-]", idPrefix)
	}
	if count <= 0 {
		count = DefaultBatch
	}
	keys, next, err := s.client.Scan(ctx, cursor, "tenant:{"+idPrefix+"*", count).Result()
	if err != nil {
		return nil, cursor, fmt.Errorf("tenantredis: scan prefixes: %w", err)
	}
	seen := map[string]bool{}
	for _, k := range keys {
		rest, ok := strings.CutPrefix(k, "tenant:{")
		if !ok {
			continue
		}
		id, _, ok := strings.Cut(rest, "}")
		if !ok {
			continue
		}
		seen[id] = true
	}
	ids := make([]string, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, next, nil
}
