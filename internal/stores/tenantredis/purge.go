package tenantredis

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Finding and removing a tenant's keys: RevokeSessions and Purge walk the tenant's key index
// (see Scope.Set), PurgeByScan and tenants from before the index walk the keyspace.

// RevokeSessions deletes every session key of the context tenant (kind KindSession) and returns
// how many it deleted, calling onBatch (may be nil) after each step. Used by suspension: call
// it after SetStatus, so that no new session is created behind the walk. Idempotent, so
// Temporal may retry it: a repeated run finds nothing and returns 0.
//
// For an indexed tenant (see WriteContext) it walks the index's session entries (ZSCAN MATCH
// "session:*"), so its cost is the tenant's number of keys, whatever the database holds, and
// it drops those entries, stale ones (of expired sessions) included. Otherwise it walks the
// whole keyspace with SCAN (never KEYS, which would block Redis), as Purge does.
func (s *Store) RevokeSessions(ctx context.Context, onBatch func(PurgeProgress) error) (int64, error) {
	client, p, err := s.scoped(ctx)
	if err != nil {
		return 0, err
	}
	indexed, err := client.HExists(ctx, recordKey(p), fieldKeysIndexed).Result()
	if err != nil {
		return 0, fmt.Errorf("tenantredis: revoke sessions: %w", err)
	}
	var prog PurgeProgress
	if indexed {
		prog, err = indexUnlink(ctx, client, p, KindSession+":*", PurgeProgress{}, DefaultBatch, false, onBatch)
	} else {
		prog, err = s.scanUnlink(ctx, p+KindSession+":*", PurgeProgress{}, DefaultBatch, onBatch)
	}
	if err != nil {
		return prog.Deleted, fmt.Errorf("tenantredis: revoke sessions: %w", err)
	}
	return prog.Deleted, nil
}

// PurgeProgress is where a purge stands: the cursor to continue from (of the walk of the index,
// or of SCAN for a tenant without one), the keys deleted so far (by this and earlier attempts)
// and whether it is finished. It is what the offboarding activity heartbeats, and what a later
// attempt passes back as from.
type PurgeProgress struct {
	Cursor  uint64 `json:"cursor"`
	Deleted int64  `json:"deleted"`
	Done    bool   `json:"done"`
}

// Purge deletes every key of the context tenant (tenant:{<id>}:*), in batches of about batch
// keys (DefaultBatch when batch <= 0), each deleted with one UNLINK (UNLINK frees memory off
// the main thread; all keys share one slot, so the multi-key command is legal in a cluster
// too). After each batch it calls onBatch (may be nil) with the progress; an error from onBatch
// stops the purge and is returned with the progress reached, from which a later call resumes.
// A tenant with no keys left is success.
//
// How it finds the keys:
//   - An indexed tenant (its record has keysIndexed, see WriteContext): ZSCAN of the index,
//     then for each batch one MULTI of UNLINK of the keys and ZREM of their entries, and at the
//     end one UNLINK of the record and the index. The cost is the tenant's number of keys (plus
//     its entries of keys expired in the last indexGrace), not the database's: a tenant among
//     a million other keys is purged as fast as alone (BenchmarkPurgeIndexed). The same holds
//     in a Redis Cluster, where the index lives in the tenant's slot like its keys. (CLUSTER
//     GETKEYSINSLOT on the slot's owner would also list only that slot, shared with the other
//     tenants that hash there; the index needs neither the slot nor the cluster.)
//   - Any other tenant: SCAN MATCH tenant:{<id>}:* with COUNT batch, one UNLINK per step.
//     Never KEYS, which would block Redis for the whole walk. SCAN visits other tenants' keys
//     too, so its cost grows with the size of the database (in a cluster, of the master that
//     owns the tenant's slot, see scanner), not with the tenant's share of it.
//
// Idempotent and resumable, so Temporal may retry it from the last heartbeat:
//   - SCAN and ZSCAN guarantee that a key (an entry) present for the whole walk is returned at
//     least once, and nothing writes to a tenant being purged, so what a saved cursor has
//     passed was deleted by an earlier attempt (progress is reported only after the UNLINK, and
//     an entry is removed only with or after its key's UNLINK, never before); a repeated UNLINK
//     of a key already gone is harmless and not counted twice.
//   - A cursor is only meaningful to the Redis process, and the walk, that issued it: a hash
//     table is seeded at random on start, so after a restart or a failover the same cursor
//     points elsewhere, and a key written by a straggler during the pause may sit behind it;
//     a cursor of one walk (SCAN) passed to the other (ZSCAN) means nothing either. So when a
//     run starts from a non-zero cursor, after its walk reaches 0 it makes one more full pass
//     from 0 before reporting Done. A run that starts from 0 needs no second pass. The
//     progress between the two passes has Cursor 0 and Done false, so an attempt stopped there
//     resumes with exactly the one full pass still owed.
//   - The record, and with it the keysIndexed mark, is deleted last, with the index: an
//     attempt that stops before sees the index again, and one that stops after sees no mark
//     and makes a full SCAN pass, which finds whatever is left.
func (s *Store) Purge(ctx context.Context, from PurgeProgress, batch int64, onBatch func(PurgeProgress) error) (PurgeProgress, error) {
	client, p, err := s.scoped(ctx)
	if err != nil {
		return from, err
	}
	if from.Done {
		return from, nil
	}
	if batch <= 0 {
		batch = DefaultBatch
	}
	indexed, err := client.HExists(ctx, recordKey(p), fieldKeysIndexed).Result()
	if err != nil {
		return from, fmt.Errorf("tenantredis: purge: %w", err)
	}
	var prog PurgeProgress
	if indexed {
		prog, err = indexUnlink(ctx, client, p, "", from, batch, true, onBatch)
	} else {
		prog, err = s.scanUnlink(ctx, p+"*", from, batch, onBatch)
	}
	if err != nil {
		return prog, fmt.Errorf("tenantredis: purge: %w", err)
	}
	return prog, nil
}

// PurgeByScan is Purge by a walk of the keyspace whatever the index says: for keys that may be
// outside the index, such as those reconciliation finds by SCAN under the prefix of a tenant
// offboarded or unknown to the registry (a writer that bypassed the store, a process of a
// version before the index). Its cost grows with the keyspace, as Purge's did before the index;
// idempotent and resumable as Purge.
func (s *Store) PurgeByScan(ctx context.Context, from PurgeProgress, batch int64, onBatch func(PurgeProgress) error) (PurgeProgress, error) {
	p, err := prefixFrom(ctx)
	if err != nil {
		return from, err
	}
	if from.Done {
		return from, nil
	}
	if batch <= 0 {
		batch = DefaultBatch
	}
	prog, err := s.scanUnlink(ctx, p+"*", from, batch, onBatch)
	if err != nil {
		return prog, fmt.Errorf("tenantredis: purge by scan: %w", err)
	}
	return prog, nil
}

// indexUnlink is the loop of Purge and RevokeSessions over the index of the tenant with prefix
// (see Purge for why it is sound): ZSCAN with match (every entry when empty) and COUNT batch,
// then one MULTI of UNLINK of the batch's keys and ZREM of their entries. With final (Purge),
// the walk ends with one UNLINK of the record and the index. Deleted counts the tenant's keys
// and the record; the index is usually gone by then (Redis deletes a sorted set with its last
// entry) and is counted only when something was left in it.
func indexUnlink(ctx context.Context, client redis.UniversalClient, prefix, match string, from PurgeProgress, batch int64, final bool, onBatch func(PurgeProgress) error) (PurgeProgress, error) {
	idx := indexKey(prefix)
	prog := from
	secondPass := from.Cursor != 0 // resumed: one full pass is owed after this one
	for {
		// ZSCAN answers member, score, member, score, ...
		res, next, err := client.ZScan(ctx, idx, prog.Cursor, match, batch).Result()
		if err != nil {
			return prog, fmt.Errorf("zscan index: %w", err)
		}
		if len(res) > 0 {
			members := make([]any, 0, len(res)/2)
			keys := make([]string, 0, len(res)/2)
			for i := 0; i < len(res); i += 2 {
				members = append(members, res[i])
				keys = append(keys, prefix+res[i])
			}
			var unlinked *redis.IntCmd
			_, err := client.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
				unlinked = pipe.Unlink(ctx, keys...)
				pipe.ZRem(ctx, idx, members...)
				return nil
			})
			if err != nil {
				return prog, fmt.Errorf("unlink: %w", err)
			}
			prog.Deleted += unlinked.Val()
		}
		prog.Cursor = next
		if next == 0 {
			if secondPass {
				secondPass = false
			} else {
				if final {
					n, err := client.Unlink(ctx, recordKey(prefix), idx).Result()
					if err != nil {
						return prog, fmt.Errorf("unlink record and index: %w", err)
					}
					prog.Deleted += n
				}
				prog.Done = true
			}
		}
		if onBatch != nil {
			if err := onBatch(prog); err != nil {
				return prog, fmt.Errorf("stopped at cursor %d after %d keys: %w", prog.Cursor, prog.Deleted, err)
			}
		}
		if prog.Done {
			return prog, nil
		}
	}
}

// scanner is what SCAN runs on: the server, or in a cluster the master that owns the slot of
// the keys matching prefix. All of this tenant's keys live on that master, so its keyspace is
// the only one to walk; a walk of every master would visit every other tenant's keys. SCAN is
// a keyless command: a cluster client sends it to the master it picks for keyless commands,
// unless, as go-redis v9.23 does, it routes a MATCH pattern with a hash tag by that tag; the
// owner is named here rather than left to that rule. It is looked up at each call: after a
// failover or a resharding the next attempt scans the new owner (the second pass of a resumed
// purge covers a cursor the new owner never issued).
func (s *Store) scanner(ctx context.Context, prefix string) (redis.Cmdable, error) {
	client, err := s.clientFor(ctx)
	if err != nil {
		return nil, err
	}
	cluster, ok := client.(*redis.ClusterClient)
	if !ok {
		return client, nil
	}
	node, err := cluster.MasterForKey(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("owner of the tenant's slot: %w", err)
	}
	return node, nil
}

// scanUnlink is the loop of Purge and RevokeSessions (see Purge for why it is sound). match
// starts with the tenant's prefix, which carries its hash tag.
func (s *Store) scanUnlink(ctx context.Context, match string, from PurgeProgress, batch int64, onBatch func(PurgeProgress) error) (PurgeProgress, error) {
	client, err := s.clientFor(ctx)
	if err != nil {
		return from, err
	}
	prog := from
	secondPass := from.Cursor != 0 // resumed: one full pass is owed after this one
	node, err := s.scanner(ctx, match)
	if err != nil {
		return prog, err
	}
	for {
		keys, next, err := node.Scan(ctx, prog.Cursor, match, batch).Result()
		if err != nil {
			return prog, fmt.Errorf("scan: %w", err)
		}
		if len(keys) > 0 {
			n, err := client.Unlink(ctx, keys...).Result()
			if err != nil {
				return prog, fmt.Errorf("unlink: %w", err)
			}
			prog.Deleted += n
		}
		prog.Cursor = next
		if next == 0 {
			if secondPass {
				secondPass = false
			} else {
				prog.Done = true
			}
		}
		if onBatch != nil {
			if err := onBatch(prog); err != nil {
				return prog, fmt.Errorf("stopped at cursor %d after %d keys: %w", prog.Cursor, prog.Deleted, err)
			}
		}
		if prog.Done {
			return prog, nil
		}
	}
}
