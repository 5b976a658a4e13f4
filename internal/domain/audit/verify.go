package audit

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
)

// Problems Verify reports, in Break.Problem.
const (
	// ProblemEdited: the event's fields no longer hash to its stored hash, and no other
	// position would make them (a field was changed, added or removed).
	ProblemEdited = "edited"
	// ProblemMissing: no event holds this seq (deleted, or its seq was changed).
	ProblemMissing = "missing"
	// ProblemReordered: the event is intact but sits at another seq than the one it was
	// written at (seqs were swapped or renumbered); Detail names the original seq.
	ProblemReordered = "reordered"
	// ProblemLink: the event is intact but its prevHash is not the hash before it (the chain
	// forked, or an event was replaced by one written for another position).
	ProblemLink = "link"
	// ProblemCheckpoint: the newest retention checkpoint's MAC does not verify.
	ProblemCheckpoint = "checkpoint"
)

// reorderWindow bounds how far from its position Verify looks for the seq an intact event was
// written at, to tell "reordered" from "edited". 1024 tries cost about a millisecond.
const reorderWindow = 1024

// Break is the first broken link of a chain.
type Break struct {
	Seq     int64  `json:"seq"`
	ID      string `json:"id,omitempty"`
	Problem string `json:"problem"`
	Detail  string `json:"detail"`
}

// Report is the result of Verify.
type Report struct {
	Chain string `json:"chain"`
	OK    bool   `json:"ok"`
	// Checked counts the events verified before the first break (all of them when OK).
	Checked int64 `json:"checked"`
	// From is the first seq verified: 1, or the one after the newest checkpoint.
	From int64 `json:"from"`
	// Checkpoint is the newest retention checkpoint, where verification starts.
	Checkpoint *Checkpoint `json:"checkpoint,omitempty"`
	// HeadSeq and HeadHash are the last position verified.
	HeadSeq     int64  `json:"headSeq"`
	HeadHash    string `json:"headHash,omitempty"`
	FirstBroken *Break `json:"firstBroken,omitempty"`
}

// knownFields are the fields an event document may hold. Any other field is reported as an
// edit: it is not covered by the hash, so it was not written by the writer.
var knownFields = map[string]bool{
	"_id": true, "tenantId": true, "actor": true, "action": true, "resource": true, "outcome": true,
	"reason": true, "requestId": true, "workflowId": true, "runId": true, "details": true, "at": true,
	"seq": true, "prevHash": true, "hash": true, "kv": true,
}

// Verify walks the chain by seq from its newest checkpoint (or from seq 1), recomputing each
// event's hash and checking that seqs follow one another and that each prevHash is the hash
// before it. It stops at the first broken link. Events at or before the checkpoint are
// ignored: retention writes the checkpoint before deleting, so a run that died in between
// leaves them behind, and the next run deletes them.
//
// Events removed from the end of the chain leave a shorter chain that still links up; with a
// the head kept in PostgreSQL Verify reports that as "truncated". Documents without a numeric seq are not chain events
// and are ignored (the events of the seq they should hold are reported missing).
func (c *Chain) Verify(ctx context.Context) (Report, error) {
	rep := Report{Chain: c.name, From: 1}
	if err := c.shipIfPending(ctx); err != nil {
		return rep, err
	}
	cp, ok, err := c.latestCheckpoint(ctx)
	if err != nil {
		return rep, err
	}
	start := link{}
	if ok {
		rep.Checkpoint = &cp
		if !c.w.checkpointValid(c.name, cp) {
			rep.FirstBroken = &Break{Seq: cp.Seq, Problem: ProblemCheckpoint, Detail: "the retention checkpoint's MAC does not verify"}
			return rep, nil
		}
		start = link{Seq: cp.Seq, Hash: cp.Hash}
		rep.From = cp.Seq + 1
	}
	rep.HeadSeq, rep.HeadHash = start.Seq, start.Hash
	res, err := c.walk(ctx, start, 0)
	if err != nil {
		return rep, err
	}
	rep.Checked, rep.FirstBroken = res.checked, res.broken
	rep.HeadSeq, rep.HeadHash = res.last.Seq, res.last.Hash
	if rep.FirstBroken == nil {
		shipped, ok, err := c.shippedHead(ctx)
		if err != nil {
			return rep, err
		}
		if ok && shipped > rep.HeadSeq {
			rep.FirstBroken = &Break{Seq: rep.HeadSeq + 1, Problem: ProblemTruncated,
				Detail: fmt.Sprintf("the chain ends at seq %d but events up to seq %d were shipped to it (head kept in PostgreSQL)", rep.HeadSeq, shipped)}
		}
	}
	rep.OK = rep.FirstBroken == nil
	return rep, nil
}

type walkResult struct {
	checked int64
	// last is the last position verified (start when none).
	last   link
	broken *Break
}

// walk verifies the events after start, up to and including seq until (0: to the head).
func (c *Chain) walk(ctx context.Context, start link, until int64) (walkResult, error) {
	res := walkResult{last: start}
	seqFilter := bson.D{{Key: "$gt", Value: start.Seq}}
	if until > 0 {
		seqFilter = append(seqFilter, bson.E{Key: "$lte", Value: until})
	}
	cur, err := c.events.Find(ctx, bson.D{{Key: "seq", Value: seqFilter}},
		options.Find().SetSort(bson.D{{Key: "seq", Value: 1}}).SetBatchSize(500))
	if err != nil {
		return res, fmt.Errorf("audit: verify %s: %w", c.name, err)
	}
	defer cur.Close(ctx)
	expected := start.Seq + 1
	for cur.Next(ctx) {
		if b := c.check(cur.Current, expected, res.last.Hash); b != nil {
			res.broken = b
			return res, nil
		}
		var l link
		_ = bson.Unmarshal(cur.Current, &l) // check decoded the same fields already
		res.last = l
		res.checked++
		expected++
	}
	if err := cur.Err(); err != nil {
		return res, fmt.Errorf("audit: verify %s: %w", c.name, err)
	}
	if until > 0 && res.last.Seq < until {
		res.broken = &Break{Seq: expected, Problem: ProblemMissing, Detail: fmt.Sprintf("seq %d to %d are absent", expected, until)}
	}
	return res, nil
}

// check verifies one stored event that should sit at seq expected after prevHash.
func (c *Chain) check(raw bson.Raw, expected int64, prevHash string) *Break {
	var e Event
	if err := bson.Unmarshal(raw, &e); err != nil {
		id, _ := raw.Lookup("_id").StringValueOK()
		return &Break{Seq: expected, ID: id, Problem: ProblemEdited, Detail: "the stored document no longer has the event's shape: " + err.Error()}
	}
	if e.Seq > expected {
		detail := fmt.Sprintf("no event holds seq %d", expected)
		if e.Seq > expected+1 {
			detail = fmt.Sprintf("no event holds seq %d to %d", expected, e.Seq-1)
		}
		return &Break{Seq: expected, Problem: ProblemMissing, Detail: detail}
	}
	if e.Seq < expected {
		// Two documents with one seq: possible only without the unique index.
		return &Break{Seq: e.Seq, ID: e.ID, Problem: ProblemLink, Detail: fmt.Sprintf("a second event holds seq %d: the chain forked", e.Seq)}
	}
	elems, _ := raw.Elements()
	for _, el := range elems {
		if !knownFields[el.Key()] {
			return &Break{Seq: e.Seq, ID: e.ID, Problem: ProblemEdited, Detail: fmt.Sprintf("field %q is not part of an event", el.Key())}
		}
	}
	if c.tenantID != "" && e.TenantID != c.tenantID {
		return &Break{Seq: e.Seq, ID: e.ID, Problem: ProblemEdited, Detail: "the event names another tenant"}
	}
	if _, ok := c.w.keyOf(e.KeyVersion); !ok {
		return &Break{Seq: e.Seq, ID: e.ID, Problem: ProblemEdited, Detail: fmt.Sprintf("the event names MAC key version %d, which this process does not hold", e.KeyVersion)}
	}
	if c.w.eventHash(c.name, e) != e.Hash {
		if orig := c.originalSeq(e); orig != 0 {
			return &Break{Seq: e.Seq, ID: e.ID, Problem: ProblemReordered, Detail: fmt.Sprintf("the event is intact but was written at seq %d", orig)}
		}
		return &Break{Seq: e.Seq, ID: e.ID, Problem: ProblemEdited, Detail: "the event's fields do not match its hash"}
	}
	if e.PrevHash != prevHash {
		return &Break{Seq: e.Seq, ID: e.ID, Problem: ProblemLink, Detail: "prevHash is not the hash of the event before"}
	}
	return nil
}

// originalSeq looks for the seq, near e.Seq, at which e's stored fields hash to its stored
// hash: an event that verifies at another position was moved, not edited. 0 when none does.
func (c *Chain) originalSeq(e Event) int64 {
	at := e.Seq
	for d := int64(1); d <= reorderWindow; d++ {
		for _, s := range []int64{at - d, at + d} {
			if s < 1 {
				continue
			}
			e.Seq = s
			if c.w.eventHash(c.name, e) == e.Hash {
				return s
			}
		}
	}
	return 0
}

// eventAt reads the event at seq, if any.
func (c *Chain) eventAt(ctx context.Context, seq int64) (Event, bool, error) {
	var e Event
	err := c.events.FindOne(ctx, bson.D{{Key: "seq", Value: seq}}).Decode(&e)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return Event{}, false, nil
	}
	if err != nil {
		return Event{}, false, fmt.Errorf("audit: read seq %d of %s: %w", seq, c.name, err)
	}
	return e, true, nil
}
