package audit

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/stores/rls"
	"github.com/misybot/tenancy/internal/stores/tenantmongo"
)

// Shipping moves outbox rows to MongoDB, one chain at a time, under the chain's head row lock
// (SELECT … FOR UPDATE on audit_heads): the lock orders the shippers of one chain, whichever
// process they run in, and is held by shippers and readers only, never by writers.
//
// One batch, in two PostgreSQL transactions, each under the head lock (a background shipper
// skips a chain another holds: SKIP LOCKED):
//  1. sequence: read up to a batch of unsequenced rows in insertion order, give each its seq
//     (head+1…), prevHash and hash (the event's MAC), move the head; commit (one lock and one
//     head update per batch, however many events);
//  2. ship: read up to a batch of sequenced, unshipped rows in seq order, insert them into
//     MongoDB (an ordered bulk insert), mark them shipped, delete their backlog entries, record
//     shipped_seq; commit.
//
// Crash-safe: a shipper that dies before (2) commits leaves its rows sequenced and unshipped;
// the next one inserts the same events at the same seqs, and finds by _id those the dead one
// had written. A MongoDB failure part-way commits what was written and leaves the rest for the
// next try. Nothing is lost and nothing is written twice.

// shipBatch bounds the events of one batch (one sequencing, one bulk write).
const shipBatch = 200

// keepShipped is how long shipped rows stay in the outbox: they let a retried write find its
// event (exactly once across retries) after the event reached MongoDB. Temporal retries a step
// within its budget (minutes); an operator's retry runs a new activity with a new event id.
const keepShipped = 7 * 24 * time.Hour

// keyID fingerprints a chain MAC key without revealing it.
func keyID(key []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("misybot-audit-key-id/v1"))
	return hex.EncodeToString(m.Sum(nil))[:16]
}

// heldKeyIDs lists the fingerprints of every chain key this writer holds.
func (w *Writer) heldKeyIDs() []string {
	out := make([]string, 0, len(w.keyIDs))
	for id := range w.keyIDs {
		out = append(out, id)
	}
	return out
}

// outboxRow is one event waiting to ship.
type outboxRow struct {
	pos     int64
	eventID string
	keyID   string
	payload []byte
	seq     *int64
	prev    *string
	hash    *string
}

// table says where a chain's rows live: the table, the column naming the chain there, and its
// value for this chain. Statements select the chain with "<column> = $1".
func (c *Chain) table() (table, column, arg string) {
	if c.tenantID != "" {
		return "audit_outbox", "tenant_id", c.tenantID
	}
	return "platform_audit_outbox", "chain", c.key
}

// tx runs fn in a transaction that may read the chain's rows: scoped to the tenant (row-level
// security) for a tenant chain.
func (c *Chain) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	if c.tenantID != "" {
		return rls.Tx(tenant.WithID(ctx, c.tenantID), c.w.pool, fn)
	}
	return pgx.BeginFunc(ctx, c.w.pool, fn)
}

// Ship moves every waiting event of the chain to MongoDB, waiting for a shipper of another
// process that holds the chain. It returns how many events it moved. Readers call it first, so
// they see every event committed before they asked.
func (c *Chain) Ship(ctx context.Context) (int, error) {
	pending, err := c.hasBacklog(ctx)
	if err != nil || !pending {
		return 0, err
	}
	return c.ship(ctx, true)
}

// ship runs batches until none is left (or, with wait false, until another shipper holds the
// chain).
func (c *Chain) ship(ctx context.Context, wait bool) (int, error) {
	total := 0
	for {
		n, more, err := c.shipBatch(ctx, wait)
		total += n
		if err != nil || !more {
			return total, err
		}
	}
}

// Pending counts the chain's events waiting to ship (of every key) and the age of the oldest.
// One index range on audit_backlog.
func (c *Chain) Pending(ctx context.Context) (int64, time.Duration, error) {
	var n int64
	var oldest *time.Time
	err := c.w.pool.QueryRow(ctx, `SELECT count(*), min(created_at) FROM audit_backlog WHERE chain = $1`, c.key).Scan(&n, &oldest)
	if err != nil {
		return 0, 0, fmt.Errorf("audit: pending events of %s: %w", c.name, err)
	}
	var age time.Duration
	if oldest != nil {
		age = max(time.Since(*oldest), 0)
	}
	return n, age, nil
}

// hasBacklog reports whether any of this key's events of the chain wait: one index probe, so a
// reader of a chain with nothing waiting pays one round trip.
func (c *Chain) hasBacklog(ctx context.Context) (bool, error) {
	var yes bool
	err := c.w.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM audit_backlog WHERE chain = $1 AND key_id = ANY($2))`, c.key, c.w.heldKeyIDs()).Scan(&yes)
	if err != nil {
		return false, fmt.Errorf("audit: backlog of %s: %w", c.name, err)
	}
	return yes, nil
}

// shipIfPending ships the chain when it has a backlog (the read path).
func (c *Chain) shipIfPending(ctx context.Context) error {
	_, err := c.Ship(ctx)
	return err
}

// shipBatch sequences and ships one batch; more reports that a full batch went and more may
// wait.
//
// Sequencing commits on its own, before anything is written to MongoDB: a shipper that dies
// after its insert and before marking the rows shipped leaves them sequenced, and the next one
// inserts the same events at the same seqs (found by _id), whatever rows committed meanwhile.
// (Sequencing again from scratch could give a row that committed late, with a smaller position,
// a seq MongoDB already holds for another event.)
func (c *Chain) shipBatch(ctx context.Context, wait bool) (shipped int, more bool, err error) {
	sequenced := 0
	if !c.unchained {
		if sequenced, err = c.sequenceWaiting(ctx, wait); err != nil {
			return 0, false, fmt.Errorf("audit: sequence %s: %w", c.name, err)
		}
	}
	shipped, more, err = c.shipSequenced(ctx, wait)
	return shipped, more || sequenced == shipBatch, err
}

// lockAndRead locks the chain's head row and reads up to a batch of its unshipped rows of held
// keys matching extra (a condition on the row), in order: one round trip, since both statements
// travel in one pipelined batch and the read runs once the lock is granted. A miss (a new
// chain, or a head another shipper holds) takes one more batch that creates the head if absent
// before locking and reading again. ok is false when another shipper holds the head and wait
// is false.
func (c *Chain) lockAndRead(ctx context.Context, tx pgx.Tx, wait bool, extra, order string) (head link, batch []outboxRow, ok bool, err error) {
	readSQL, args := c.readSQL(extra, order)
	for _, create := range []bool{false, true} {
		b := &pgx.Batch{}
		if create {
			b.Queue(`INSERT INTO audit_heads (chain, seq, hash, key_version) VALUES ($1, 0, '', $2) ON CONFLICT (chain) DO NOTHING`, c.key, c.w.keyVersion)
		}
		b.Queue(c.lockSQL(wait), c.key).QueryRow(func(r pgx.Row) error {
			err := r.Scan(&head.Seq, &head.Hash)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil // missing, or held by another shipper: ok stays false
			}
			ok = err == nil
			return err
		})
		b.Queue(readSQL, args...).Query(func(rows pgx.Rows) error {
			batch, err = collectOutbox(rows)
			return err
		})
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return head, nil, false, fmt.Errorf("lock head and read outbox: %w", err)
		}
		if ok {
			return head, batch, true, nil
		}
		// The read ran without the lock: not to be used.
	}
	return head, nil, false, nil
}

func (c *Chain) lockSQL(wait bool) string {
	lock := `SELECT seq, hash FROM audit_heads WHERE chain = $1 FOR UPDATE`
	if !wait {
		lock += ` SKIP LOCKED`
	}
	return lock
}

// readSQL is the query that reads up to a batch of the chain's unshipped rows of held keys
// matching extra (a condition on the row), in order, with its arguments.
func (c *Chain) readSQL(extra, order string) (string, []any) {
	table, column, arg := c.table()
	return `SELECT pos, event_id, key_id, payload, seq, prev_hash, hash FROM ` + table + `
		WHERE ` + column + ` = $1 AND shipped_at IS NULL AND quarantined_at IS NULL AND key_id = ANY($2) AND ` + extra + `
		ORDER BY ` + order + ` LIMIT $3`, []any{arg, c.w.heldKeyIDs(), shipBatch}
}

func collectOutbox(rows pgx.Rows) ([]outboxRow, error) {
	batch, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (outboxRow, error) {
		var o outboxRow
		return o, r.Scan(&o.pos, &o.eventID, &o.keyID, &o.payload, &o.seq, &o.prev, &o.hash)
	})
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	return batch, nil
}

// sequenceWaiting gives up to a batch of unsequenced rows their place in the chain, in
// insertion order, and commits it. It returns how many it sequenced (0 when another shipper
// holds the chain).
func (c *Chain) sequenceWaiting(ctx context.Context, wait bool) (int, error) {
	n := 0
	err := c.tx(ctx, func(tx pgx.Tx) error {
		head, batch, ok, err := c.lockAndRead(ctx, tx, wait, "seq IS NULL", "pos")
		if err != nil || !ok || len(batch) == 0 {
			return err
		}
		n = len(batch)
		_, err = c.sequence(ctx, tx, &head, batch)
		return err
	})
	return n, err
}

// shipSequenced writes up to a batch of sequenced, unshipped rows to MongoDB in seq order (an
// unchained log: in insertion order) and marks what was written.
func (c *Chain) shipSequenced(ctx context.Context, wait bool) (shipped int, more bool, err error) {
	table, column, arg := c.table()
	cond := column + " = $1"
	var resync, quarantined bool
	err = c.tx(ctx, func(tx pgx.Tx) error {
		extra, order := "seq IS NOT NULL", "seq"
		if c.unchained {
			extra, order = "true", "pos"
		}
		head, batch, ok, err := c.lockAndRead(ctx, tx, wait, extra, order)
		if err != nil || !ok {
			return err
		}
		if len(batch) == 0 {
			// Nothing sequenced waits: entries whose rows are gone (a purge) would be waited on
			// for ever, unless rows wait for sequencing.
			_, err := tx.Exec(ctx, `DELETE FROM audit_backlog b WHERE b.chain = $1 AND b.key_id = ANY($2)
				AND NOT EXISTS (SELECT 1 FROM `+table+` o WHERE o.`+column+` = $3 AND o.pos = b.pos AND o.shipped_at IS NULL)`,
				c.key, c.w.heldKeyIDs(), arg)
			return err
		}
		more = len(batch) == shipBatch
		events, err := c.sequence(ctx, tx, &head, batch) // decodes; every row has its seq already
		if err != nil {
			return err
		}
		n, werr := c.upsert(ctx, events)
		if n > 0 {
			if err := c.markShipped(ctx, tx, batch[:n], events[n-1].Seq); err != nil {
				return errors.Join(err, werr)
			}
		}
		shipped = n
		if werr == nil {
			return nil
		}
		if refused := (*refusal)(nil); errors.As(werr, &refused) {
			// The store will never take events[n]: set it aside and go on (quarantine.go).
			quarantined = true
			return c.quarantine(ctx, tx, batch[n], events[n], refused)
		}
		if mongo.IsDuplicateKeyError(werr) && !c.unchained {
			// Another event holds a seq this batch took: MongoDB's chain is ahead of the head
			// kept here (events written before the outbox existed, whose head was not anchored).
			resync = true
			return c.resync(ctx, tx, table, cond, arg, events[n].Seq)
		}
		more = false
		return werr
	})
	if err != nil {
		return shipped, false, fmt.Errorf("audit: ship %s: %w", c.name, err)
	}
	return shipped, more || resync || quarantined, nil
}

// sequence gives the batch's new events their place after head, records it on the rows and
// moves the head; it returns the batch as chain events, in seq order.
func (c *Chain) sequence(ctx context.Context, tx pgx.Tx, head *link, batch []outboxRow) ([]Event, error) {
	table, column, arg := c.table()
	events := make([]Event, len(batch))
	var pos, seqs []int64
	var prevs, hashes []string
	for i, r := range batch {
		var e Event
		if err := json.Unmarshal(r.payload, &e); err != nil {
			return nil, fmt.Errorf("decode outbox event %s: %w", r.eventID, err)
		}
		switch {
		case c.unchained:
			// Shipped as written: no place in a chain.
		case r.seq != nil:
			e.KeyVersion = versionField(c.w.keyIDs[r.keyID])
			e.Seq, e.PrevHash, e.Hash = *r.seq, deref(r.prev), deref(r.hash)
		default:
			// MAC'd with the key of the process that wrote it (a peer of another master key
			// version during a rolling rotation), which this writer holds too.
			e.KeyVersion = versionField(c.w.keyIDs[r.keyID])
			e.Seq, e.PrevHash = head.Seq+1, head.Hash
			e.Hash = c.w.eventHash(c.name, e)
			head.Seq, head.Hash = e.Seq, e.Hash
			pos, seqs, prevs, hashes = append(pos, r.pos), append(seqs, e.Seq), append(prevs, e.PrevHash), append(hashes, e.Hash)
		}
		events[i] = e
	}
	if len(pos) == 0 {
		return events, nil
	}
	b := &pgx.Batch{}
	b.Queue(`UPDATE `+table+` o SET seq = u.seq, prev_hash = u.prev, hash = u.hash
		FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::text[]) AS u(pos, seq, prev, hash)
		WHERE o.`+column+` = $1 AND o.pos = u.pos AND o.shipped_at IS NULL`, arg, pos, seqs, prevs, hashes)
	b.Queue(`UPDATE audit_heads SET seq = $2, hash = $3, key_version = $4, updated_at = now() WHERE chain = $1`,
		c.key, head.Seq, head.Hash, c.w.keyVersion)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("sequence: %w", err)
	}
	return events, nil
}

// upsert writes events to MongoDB, in order, and returns how many are there: all of them, or
// those before the first failure.
//
// Inserts, not upserts by _id: on FerretDB an update with an _id filter (ReplaceOne with upsert,
// CountDocuments too) reads the whole collection, measured 52 ms per event at 50,000 events
// against 0.4 ms for an insert, whatever the size. A duplicate key is then looked up by _id
// (FindOne on _id is pushed down, flat): the event itself, written by a shipper that died
// before its commit, counts as written; another event holding the seq is a conflict. A
// document the store refuses for good ends the write with a *refusal (see quarantine.go).
func (c *Chain) upsert(ctx context.Context, events []Event) (int, error) {
	if !c.unchained {
		if err := c.w.ensureSeqIndex(ctx, c.events); err != nil {
			return 0, err
		}
	}
	done, one := 0, false
	for done < len(events) {
		end := len(events)
		if one {
			end = done + 1 // finding which document the driver refuses
		}
		docs := make([]any, 0, end-done)
		for i := done; i < end; i++ {
			docs = append(docs, events[i])
		}
		_, err := c.events.InsertMany(ctx, docs, options.InsertMany().SetOrdered(true))
		if err == nil {
			done = end
			continue
		}
		var bwe mongo.BulkWriteException
		if !errors.As(err, &bwe) || len(bwe.WriteErrors) == 0 {
			// A refusal naming no document (the driver's, before sending; or the command's):
			// one document at a time finds which.
			code := 0
			var ce mongo.CommandError
			if errors.As(err, &ce) {
				code = int(ce.Code)
			}
			r, refused := refusedCode(err, code)
			if !refused {
				return done, err
			}
			if end-done > 1 {
				one = true
				continue
			}
			return done, r
		}
		failed := done + bwe.WriteErrors[0].Index
		if !mongo.IsDuplicateKeyError(err) {
			if r, ok := refusedCode(err, bwe.WriteErrors[0].Code); ok {
				return failed, r
			}
			return failed, err
		}
		var stored link
		ferr := c.events.FindOne(ctx, bson.D{{Key: "_id", Value: events[failed].ID}}, options.FindOne().SetProjection(bson.D{{Key: "seq", Value: 1}, {Key: "hash", Value: 1}})).Decode(&stored)
		if ferr != nil || stored.Seq != events[failed].Seq || stored.Hash != events[failed].Hash {
			return failed, err // another event holds the seq (or the lookup failed): the caller decides
		}
		done = failed + 1
	}
	return done, nil
}

// markShipped records that rows reached MongoDB, up to seq, and drops shipped rows older than
// keepShipped.
func (c *Chain) markShipped(ctx context.Context, tx pgx.Tx, rows []outboxRow, seq int64) error {
	table, column, arg := c.table()
	cond := column + " = $1"
	pos := make([]int64, len(rows))
	for i, r := range rows {
		pos[i] = r.pos
	}
	b := &pgx.Batch{}
	// The one commit that need not wait for its WAL flush: losing it in a crash only ships
	// these events again, and the insert finds each of them by _id (upsert).
	b.Queue(`SET LOCAL synchronous_commit = off`)
	b.Queue(`UPDATE `+table+` SET shipped_at = now() WHERE `+cond+` AND pos = ANY($2) AND shipped_at IS NULL`, arg, pos)
	b.Queue(`DELETE FROM audit_backlog WHERE chain = $1 AND pos = ANY($2)`, c.key, pos)
	b.Queue(`UPDATE audit_heads SET shipped_seq = greatest(shipped_seq, $2) WHERE chain = $1`, c.key, seq)
	// The outer shipped_at bound keeps both scans on the shipped index (without it the outer
	// DELETE reads every row of the chain).
	b.Queue(`DELETE FROM `+table+` WHERE `+cond+` AND shipped_at < $2 AND pos IN (
		SELECT pos FROM `+table+` WHERE `+cond+` AND shipped_at < $2 LIMIT 1000)`, arg, time.Now().Add(-keepShipped))
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("mark shipped: %w", err)
	}
	return nil
}

// resync moves the head to MongoDB's newest event and unsequences the rows still waiting, so the
// next batch appends after what MongoDB holds. It reads MongoDB's head with a sorted query (a
// scan on FerretDB): this happens once per chain whose head was not anchored, never per event.
// conflict is the seq another event held in MongoDB.
func (c *Chain) resync(ctx context.Context, tx pgx.Tx, table, cond, arg string, conflict int64) error {
	h, err := c.head(ctx)
	if err != nil {
		return err
	}
	if h.Seq < conflict {
		return fmt.Errorf("seq %d is held in MongoDB by another event, but MongoDB's head (%d) is before it: the chain was altered; events stay in the outbox", conflict, h.Seq)
	}
	b := &pgx.Batch{}
	b.Queue(`UPDATE audit_heads SET seq = $2, hash = $3, shipped_seq = $2, updated_at = now() WHERE chain = $1`, c.key, h.Seq, h.Hash)
	b.Queue(`UPDATE `+table+` SET seq = NULL, prev_hash = NULL, hash = NULL WHERE `+cond+` AND shipped_at IS NULL`, arg)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("resync: %w", err)
	}
	slog.Default().Warn("audit chain head re-read from MongoDB: it was ahead of PostgreSQL's (events written before the outbox); waiting events append after it",
		"chain", c.name, "mongo_seq", h.Seq, "conflicting_seq", conflict)
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// chainByKey returns the chain an audit_backlog key names, if this writer ships it: a tenant
// chain, or this writer's own platform chain (other platform databases belong to other
// deployments or tests).
func (w *Writer) chainByKey(key string) (*Chain, bool) {
	switch key {
	case w.platform.key:
		return w.platform, true
	case w.unauthenticated.key:
		return w.unauthenticated, true
	}
	db, name, ok := strings.Cut(key, ":")
	id, isTenant := strings.CutPrefix(name, "tenant/")
	if !ok || !isTenant || tenant.ValidateID(id) != nil || db != tenantmongo.DatabasePrefix+id {
		return nil, false
	}
	c, err := w.TenantChain(tenant.WithID(context.Background(), id))
	return c, err == nil
}

// Backlog is what waits to ship, for metrics and readiness.
type Backlog struct {
	Events int64
	// Oldest is the age of the oldest waiting event (0 when none waits).
	Oldest time.Duration
	// Quarantined counts the events the audit store refused for good, set aside until an
	// operator repairs them (see quarantine.go); not part of Events.
	Quarantined int64
	// QuarantinedOldest is how long the oldest has been set aside (0 when none is).
	QuarantinedOldest time.Duration
}

// Backlog reads the whole outbox backlog and the quarantine: one aggregate over each of
// audit_backlog and audit_quarantine, which hold only waiting and quarantined events.
func (w *Writer) Backlog(ctx context.Context) (Backlog, error) {
	var b Backlog
	var oldest, qOldest *time.Time
	err := w.pool.QueryRow(ctx, `SELECT b.n, b.oldest, q.n, q.oldest
		FROM (SELECT count(*) AS n, min(created_at) AS oldest FROM audit_backlog) b,
		     (SELECT count(*) AS n, min(quarantined_at) AS oldest FROM audit_quarantine) q`).Scan(&b.Events, &oldest, &b.Quarantined, &qOldest)
	if err != nil {
		return b, fmt.Errorf("audit: backlog: %w", err)
	}
	if oldest != nil {
		b.Oldest = max(time.Since(*oldest), 0)
	}
	if qOldest != nil {
		b.QuarantinedOldest = max(time.Since(*qOldest), 0)
	}
	return b, nil
}

// Shipper moves the outbox to MongoDB in the background. Run one in every worker process:
// shippers of several processes share the work chain by chain (a chain held by one is skipped
// by the others), and one killed mid-batch leaves its batch to the next.
type Shipper struct {
	w      *Writer
	logger *slog.Logger
	// Interval is how often the backlog is polled. No notification wakes the shipper: a chain
	// waits Quiet anyway, and NOTIFY serialised every enqueuing commit (migration 00015).
	Interval time.Duration
	// Parallel chains shipped at once.
	Parallel int
	// Quiet is how long a chain must have had no new event before a background round ships
	// it, so that a workflow's steps, written over a second or two, ship in one batch (one
	// sequencing, one bulk insert) instead of one per round. A chain written without pause
	// ships anyway once its oldest waiting event is MaxDelay old. Readers (Chain.Ship) and
	// ShipAll never wait: they ship every chain at once. Zero in either ships at once too.
	Quiet, MaxDelay time.Duration
	// OnRound (may be nil) is told after each round of Run how many events it shipped and the
	// round's error: the worker's metrics of shipping progress.
	OnRound func(events int, err error)
}

// NewShipper returns a shipper for w's chains.
func (w *Writer) NewShipper(logger *slog.Logger) *Shipper {
	return &Shipper{w: w, logger: logger, Interval: time.Second, Parallel: 4,
		Quiet: time.Second, MaxDelay: 10 * time.Second}
}

// Run ships until ctx ends. Errors (MongoDB down) are logged and retried at the next tick; the
// backlog waits in PostgreSQL meanwhile.
func (s *Shipper) Run(ctx context.Context) {
	t := time.NewTicker(s.Interval)
	defer t.Stop()
	failing := false
	for {
		n, err := s.shipRound(ctx, s.Quiet, s.MaxDelay)
		if s.OnRound != nil && ctx.Err() == nil {
			s.OnRound(n, err)
		}
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			s.logger.Warn("audit shipping failed; events wait in the outbox and ship when it recovers", "err", err)
			failing = true
		case err == nil && failing:
			s.logger.Info("audit shipping recovered")
			failing = false
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ShipAll ships every chain that has events of this writer's key waiting, oldest first,
// Parallel chains at a time, and returns the errors joined.
func (s *Shipper) ShipAll(ctx context.Context) error {
	_, err := s.shipAll(ctx)
	return err
}

// shipAll is ShipAll, also returning how many events it shipped.
func (s *Shipper) shipAll(ctx context.Context) (int, error) {
	return s.shipRound(ctx, 0, 0)
}

// shipRound ships the chains that have events of this writer's key waiting and have been
// quiet for quiet (or whose oldest event is maxDelay old), oldest first, Parallel chains at a
// time, and returns how many events it shipped and the errors joined. quiet 0 ships every
// chain. One aggregate over audit_backlog, which holds only what waits.
func (s *Shipper) shipRound(ctx context.Context, quiet, maxDelay time.Duration) (int, error) {
	rows, err := s.w.pool.Query(ctx, `SELECT chain FROM audit_backlog WHERE key_id = ANY($1)
		GROUP BY chain
		HAVING $2::float8 = 0 OR max(created_at) <= now() - make_interval(secs => $2) OR min(created_at) <= now() - make_interval(secs => $3)
		ORDER BY min(created_at) LIMIT 10000`, s.w.heldKeyIDs(), quiet.Seconds(), maxDelay.Seconds())
	if err != nil {
		return 0, fmt.Errorf("audit: list backlog: %w", err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, fmt.Errorf("audit: list backlog: %w", err)
	}
	sem := make(chan struct{}, max(s.Parallel, 1))
	var mu sync.Mutex
	var errs []error
	shipped := 0
	var wg sync.WaitGroup
	for _, key := range keys {
		c, ok := s.w.chainByKey(key)
		if !ok {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			n, err := c.ship(ctx, false)
			mu.Lock()
			shipped += n
			if err != nil {
				errs = append(errs, err)
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return shipped, errors.Join(errs...)
}
