package audit

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
)

// Checkpoint records one retention cut: the chain's events up to Seq were removed, and Hash
// is the hash of the event at Seq, which the first remaining event's prevHash points to.
// Verification starts from the newest checkpoint instead of from seq 1.
//
// A checkpoint is signed (MAC, HMAC-SHA256 under the chain key over "misybot-audit-
// checkpoint/v1", chain name, seq, hash, from, cutoff and at, encoded like events): without
// it anyone able to delete a prefix of the chain could add a checkpoint that makes the rest
// verify. Checkpoints are never deleted; they are small, and they are the record of what
// retention removed and when.
type Checkpoint struct {
	// Seq is the last seq removed; also the document id, so one cut is one checkpoint however
	// often it is retried, and the newest is the one with the highest id.
	Seq  int64  `bson:"_id" json:"seq"`
	Hash string `bson:"hash" json:"hash"`
	// From is the first seq this cut removed (the previous checkpoint's Seq + 1).
	From int64 `bson:"from" json:"from"`
	// Cutoff is the retention cutoff of the cut: every removed event was older.
	Cutoff time.Time `bson:"cutoff" json:"cutoff"`
	// At is when the cut was made (the retention workflow's time, so retries agree).
	At  time.Time `bson:"at" json:"at"`
	MAC string    `bson:"mac" json:"mac"`
	// KeyVersion is the master key version of the MAC key (0: version 1).
	KeyVersion int `bson:"kv,omitempty" json:"kv,omitempty"`
}

func (w *Writer) checkpointMAC(chain string, cp Checkpoint) string {
	key, ok := w.keyOf(cp.KeyVersion)
	if !ok {
		return ""
	}
	m := hmac.New(sha256.New, key)
	c := canon{m}
	c.str("misybot-audit-checkpoint/v1")
	c.str(chain)
	c.int(cp.Seq)
	c.str(cp.Hash)
	c.int(cp.From)
	c.time(cp.Cutoff)
	c.time(cp.At)
	return hex.EncodeToString(m.Sum(nil))
}

func (w *Writer) checkpointValid(chain string, cp Checkpoint) bool {
	mac := w.checkpointMAC(chain, cp)
	return mac != "" && hmac.Equal([]byte(mac), []byte(cp.MAC))
}

// latestCheckpoint reads the newest checkpoint of the chain, if any.
func (c *Chain) latestCheckpoint(ctx context.Context) (Checkpoint, bool, error) {
	var cp Checkpoint
	err := c.checkpoints.FindOne(ctx, bson.D{}, options.FindOne().SetSort(bson.D{{Key: "_id", Value: -1}})).Decode(&cp)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return Checkpoint{}, false, nil
	}
	if err != nil {
		return Checkpoint{}, false, fmt.Errorf("audit: read checkpoint of %s: %w", c.name, err)
	}
	return cp, true, nil
}

// PruneResult says what Prune did.
type PruneResult struct {
	// Removed counts the events this call deleted (a retry after a crash counts only what was
	// left to delete).
	Removed int64 `json:"removed"`
	// Checkpoint is the chain's newest checkpoint after the call (nil when it has none).
	Checkpoint *Checkpoint `json:"checkpoint,omitempty"`
	// Broken is set when the events to remove did not verify: nothing was deleted, so the
	// evidence stays for someone to look at.
	Broken *Break `json:"broken,omitempty"`
}

// Prune removes the chain's events older than cutoff, behind a checkpoint. at is recorded in
// the checkpoint as the time of the cut.
//
// What is removed is the longest run of events from the start of the chain (by seq) that are
// all older than cutoff: the chain can only be cut at one point, so an old event written after
// a newer one (a step retried late) is kept with it. The newest event is always kept, so that
// new events keep linking to a stored one. Nothing inside the period is ever removed.
//
// Order, so that a crash at any point leaves a chain that verifies and a retry that finishes:
// verify the part to remove (a part that does not verify is left alone and reported in Broken:
// retention must not destroy evidence of tampering); write the checkpoint (idempotent: its id
// is the last seq removed); delete the events up to it. A crash between the last two steps
// leaves a checkpoint ahead of the deletion, which Verify tolerates and the next Prune
// finishes. Safe to run while writers append: it never removes the head they link to.
func (c *Chain) Prune(ctx context.Context, cutoff, at time.Time) (PruneResult, error) {
	cutoff, at = cutoff.UTC().Truncate(time.Millisecond), at.UTC().Truncate(time.Millisecond)
	var res PruneResult
	if err := c.shipIfPending(ctx); err != nil {
		return res, err
	}
	start := link{}
	cp, ok, err := c.latestCheckpoint(ctx)
	if err != nil {
		return res, err
	}
	if ok {
		if !c.w.checkpointValid(c.name, cp) {
			res.Broken = &Break{Seq: cp.Seq, Problem: ProblemCheckpoint, Detail: "the retention checkpoint's MAC does not verify"}
			return res, nil
		}
		res.Checkpoint = &cp
		start = link{Seq: cp.Seq, Hash: cp.Hash}
		// Finish a cut that died between its checkpoint and its deletion.
		n, err := c.deleteThrough(ctx, cp.Seq)
		if err != nil {
			return res, err
		}
		res.Removed += n
	}

	var head link
	err = c.events.FindOne(ctx, bson.D{{Key: "seq", Value: bson.D{{Key: "$gt", Value: start.Seq}}}},
		options.FindOne().SetSort(bson.D{{Key: "seq", Value: -1}}).SetProjection(bson.D{{Key: "seq", Value: 1}, {Key: "hash", Value: 1}})).Decode(&head)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("audit: prune %s: read head: %w", c.name, err)
	}
	// keep is the first seq that stays: the first event inside the period, or the head.
	keep := head.Seq
	var first link
	err = c.events.FindOne(ctx, bson.D{
		{Key: "seq", Value: bson.D{{Key: "$gt", Value: start.Seq}}},
		{Key: "at", Value: bson.D{{Key: "$gte", Value: cutoff}}},
	}, options.FindOne().SetSort(bson.D{{Key: "seq", Value: 1}}).SetProjection(bson.D{{Key: "seq", Value: 1}})).Decode(&first)
	switch {
	case err == nil:
		keep = min(keep, first.Seq)
	case !errors.Is(err, mongo.ErrNoDocuments):
		return res, fmt.Errorf("audit: prune %s: find the first event to keep: %w", c.name, err)
	}
	last := keep - 1
	if last <= start.Seq {
		return res, nil
	}

	// The part to remove, and the link from it to the first event kept, must verify.
	w, err := c.walk(ctx, start, keep)
	if err != nil {
		return res, err
	}
	if w.broken != nil {
		res.Broken = w.broken
		return res, nil
	}
	removedLast, found, err := c.eventAt(ctx, last)
	if err != nil {
		return res, err
	}
	if !found { // deleted between the walk and now: only another Prune does that
		return res, fmt.Errorf("audit: prune %s: seq %d vanished during the cut", c.name, last)
	}

	next := Checkpoint{Seq: last, Hash: removedLast.Hash, From: start.Seq + 1, Cutoff: cutoff, At: at, KeyVersion: versionField(c.w.keyVersion)}
	next.MAC = c.w.checkpointMAC(c.name, next)
	if _, err := c.checkpoints.InsertOne(ctx, next); err != nil && !mongo.IsDuplicateKeyError(err) {
		return res, fmt.Errorf("audit: prune %s: write checkpoint: %w", c.name, err)
	}
	// On a duplicate, a retry of this cut wrote it first: read the stored one back, which is
	// the one Verify will use.
	stored, _, err := c.latestCheckpoint(ctx)
	if err != nil {
		return res, err
	}
	res.Checkpoint = &stored
	n, err := c.deleteThrough(ctx, stored.Seq)
	if err != nil {
		return res, err
	}
	res.Removed += n
	return res, nil
}

func (c *Chain) deleteThrough(ctx context.Context, seq int64) (int64, error) {
	r, err := c.events.DeleteMany(ctx, bson.D{{Key: "seq", Value: bson.D{{Key: "$gte", Value: 1}, {Key: "$lte", Value: seq}}}})
	if err != nil {
		return 0, fmt.Errorf("audit: prune %s: delete through seq %d: %w", c.name, seq, err)
	}
	return r.DeletedCount, nil
}
