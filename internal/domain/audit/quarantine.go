package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/x/mongo/driver"

	"github.com/misybot/tenancy/internal/model/tenant"
)

// Quarantine: an event the audit store refuses for good is set aside, and its chain goes on.
//
// The shipper ships a chain in order, so one event MongoDB (or FerretDB) will never accept used
// to hold every later event of its chain back, retried each second for ever (issue 32). Now a
// refusal of the document itself (see refusedCode) quarantines the event, in the transaction
// that holds the chain's head:
//   - its outbox row stays (never lost), marked quarantined_at and left out of sequencing and
//     shipping; it leaves audit_backlog (the shipping lag) for audit_quarantine (counted by
//     metrics, readiness and the overview, and listed by `starter audit-quarantine list`);
//   - the events after it, sequenced but never written (the insert is ordered and stopped at
//     the refused one), lose their seqs and the head moves back to the event before, so the
//     next batch gives them the refused event's place: MongoDB's chain has no gap and every
//     event in it is an ordinary, MAC'd event; Verify is unchanged and still names any edit;
//   - a notice, audit.event.quarantined, is appended to the same chain (for the unchained log
//     of unauthenticated refusals, to the platform chain), naming the event and the refusal:
//     whoever reads or verifies the chain sees that an event was set aside.
//
// An operator repairs it (Writer.Repair, both audited in the platform chain): re-ship, once the
// cause is fixed (a deployment that encodes it differently), or ship it redacted (details and
// reason replaced by a SHA-256 of the original). Either way it goes back to the backlog and is
// appended to its chain at the next seq, as a new event would be, keeping its id and time.

// ActionQuarantined is the notice the shipper appends to a chain when it sets one of the
// chain's events aside.
const ActionQuarantined = "audit.event.quarantined"

// Actions of the operator's repairs of a quarantined event, in the platform chain.
const (
	ActionQuarantineReship = "audit.quarantine.reship"
	ActionQuarantineRedact = "audit.quarantine.redact"
)

// refusedCodes are the server error codes that refuse a document for what it is, so that
// sending it again can never succeed: BadValue (FerretDB's "key must not contain '.' sign"),
// FailedToParse, TypeMismatch, InvalidBSON, DollarPrefixedFieldName, InvalidDBRef,
// EmptyFieldName, DottedFieldName, DocumentValidationFailure, BSONObjectTooLarge, KeyTooLong.
// Everything else (network, timeouts, not primary, disk full, duplicate keys, which the
// shipper resolves itself) is retried.
var refusedCodes = map[int]bool{2: true, 9: true, 14: true, 22: true, 52: true, 55: true, 56: true,
	57: true, 121: true, 10334: true, 17280: true}

// refusal is the store's permanent refusal of one event.
type refusal struct {
	code int
	msg  string
	err  error
}

func (r *refusal) Error() string { return r.err.Error() }
func (r *refusal) Unwrap() error { return r.err }

// refusedCode classifies a failed insert of one document: ok when the document itself is
// refused for good (a server code of refusedCodes, or the driver's own refusal before sending:
// too large, or not encodable).
func refusedCode(err error, code int) (*refusal, bool) {
	var me mongo.MarshalError
	switch {
	case code != 0 && refusedCodes[code]:
	case errors.Is(err, driver.ErrDocumentTooLarge), errors.As(err, &me):
	default:
		return nil, false
	}
	msg := err.Error()
	if len(msg) > 500 {
		msg = msg[:500] + "…"
	}
	return &refusal{code: code, msg: msg, err: err}, true
}

// quarantine sets the refused event e (row r) aside, inside the shipping transaction tx that
// holds the chain's head, as described above.
func (c *Chain) quarantine(ctx context.Context, tx pgx.Tx, r outboxRow, e Event, why *refusal) error {
	table, column, arg := c.table()
	var tenantID *string
	if c.tenantID != "" {
		tenantID = &c.tenantID
	}
	b := &pgx.Batch{}
	b.Queue(`UPDATE `+table+` SET quarantined_at = now(), seq = NULL, prev_hash = NULL, hash = NULL
		WHERE `+column+` = $1 AND pos = $2 AND shipped_at IS NULL`, arg, r.pos)
	b.Queue(`DELETE FROM audit_backlog WHERE chain = $1 AND pos = $2`, c.key, r.pos)
	b.Queue(`INSERT INTO audit_quarantine (chain, pos, event_id, tenant_id, action, code, reason) VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (chain, pos) DO UPDATE SET code = EXCLUDED.code, reason = EXCLUDED.reason, quarantined_at = now()`,
		c.key, r.pos, r.eventID, tenantID, e.Action, why.code, why.msg)
	if !c.unchained {
		// The events after it were sequenced but never written (the insert is ordered): they
		// take its place, from the event before it.
		b.Queue(`UPDATE `+table+` SET seq = NULL, prev_hash = NULL, hash = NULL
			WHERE `+column+` = $1 AND shipped_at IS NULL AND seq IS NOT NULL`, arg)
		b.Queue(`UPDATE audit_heads SET seq = $2, hash = $3, updated_at = now() WHERE chain = $1`, c.key, e.Seq-1, e.PrevHash)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("quarantine %s: %w", r.eventID, err)
	}
	at := time.Now().UTC()
	notice := Event{
		// One notice per quarantine: the transaction that writes it commits once, and a
		// rolled-back attempt left nothing behind.
		ID:       r.eventID + "/quarantined/" + strconv.FormatInt(at.UnixMilli(), 10),
		TenantID: e.TenantID, Actor: Actor{Type: ActorSystem, ID: "audit-shipper"},
		Action: ActionQuarantined, Resource: "audit/" + c.name, Outcome: OutcomeFailure, Reason: why.msg,
		Details: Details{"eventId": r.eventID, "eventAction": e.Action, "code": strconv.Itoa(why.code)},
		At:      at,
	}
	mode, into := modePlatform, c.w.platform
	switch {
	case c.tenantID != "":
		mode = modeTenant
	case !c.unchained:
		into = c
	}
	if mode == modePlatform && (c.unchained || tenant.ValidateID(notice.TenantID) != nil) {
		notice.TenantID = ""
	}
	if _, err := c.w.enqueueMode(ctx, tx, mode, into, notice, false); err != nil {
		return fmt.Errorf("quarantine %s: notice: %w", r.eventID, err)
	}
	slog.Default().Error("audit event quarantined: the audit store refused it for good; the chain goes on without it, an operator re-ships or redacts it (starter audit-quarantine)",
		"chain", c.name, "event_id", r.eventID, "action", e.Action, "code", why.code, "refusal", why.msg)
	return nil
}

// Quarantined is an event the audit store refused for good, set aside (see quarantine).
type Quarantined struct {
	// Chain is the chain's key ("<database>:platform", "tenant_<id>:tenant/<id>"), as
	// `starter audit-quarantine` takes it.
	Chain    string    `json:"chain"`
	EventID  string    `json:"eventId"`
	TenantID string    `json:"tenantId,omitempty"`
	Action   string    `json:"action"`
	Code     int       `json:"code"`
	Reason   string    `json:"reason"`
	At       time.Time `json:"quarantinedAt"`
}

// QuarantineSummary counts quarantined events, for metrics, readiness and the overview.
type QuarantineSummary struct {
	Events int64 `json:"events"`
	// Oldest is when the oldest was set aside (nil when none is).
	Oldest *time.Time `json:"oldest,omitempty"`
	// Latest are the newest few, newest first.
	Latest []Quarantined `json:"latest"`
}

// Quarantine lists the quarantined events, newest first, up to limit (1 to 1000), with their
// count: one aggregate and one index range over audit_quarantine, which holds only them.
func (w *Writer) Quarantine(ctx context.Context, limit int) (QuarantineSummary, error) {
	limit = min(max(limit, 1), 1000)
	s := QuarantineSummary{Latest: []Quarantined{}}
	if err := w.pool.QueryRow(ctx, `SELECT count(*), min(quarantined_at) FROM audit_quarantine`).Scan(&s.Events, &s.Oldest); err != nil {
		return s, fmt.Errorf("audit: quarantine: %w", err)
	}
	rows, err := w.pool.Query(ctx, `SELECT chain, event_id, coalesce(tenant_id, ''), action, code, reason, quarantined_at
		FROM audit_quarantine ORDER BY quarantined_at DESC, chain, pos LIMIT $1`, limit)
	if err != nil {
		return s, fmt.Errorf("audit: quarantine: %w", err)
	}
	s.Latest, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Quarantined, error) {
		var q Quarantined
		return q, r.Scan(&q.Chain, &q.EventID, &q.TenantID, &q.Action, &q.Code, &q.Reason, &q.At)
	})
	if err != nil {
		return s, fmt.Errorf("audit: quarantine: %w", err)
	}
	return s, nil
}

// Repair is an operator's decision about a quarantined event.
type Repair struct {
	// EventID names the event; Chain (optional) its chain's key, needed only when two chains
	// hold a quarantined event of that id.
	EventID, Chain string
	// Redact ships the event with its reason and details replaced (by the redaction's author,
	// its reason and the SHA-256 of the original event): for an event that cannot be stored as
	// it is. Without it the event is re-shipped as it is, re-encoded by this process.
	Redact bool
	// Operator is who decides (recorded as the actor); Reason why (required with Redact).
	Operator, Reason string
}

// ErrNotQuarantined: no quarantined event has that id (in that chain).
var ErrNotQuarantined = errors.New("audit: no quarantined event has that id")

// Repair puts a quarantined event back in its chain's backlog, as it is or redacted, and
// records the decision in the platform chain (actions audit.quarantine.reship and
// audit.quarantine.redact), in one transaction. The event is then appended to its chain by the
// shipper, at the chain's next seq. If the store refuses it again it is quarantined again.
//
// Idempotent: the decision's audit event has a deterministic id (the event, its chain and when
// it was quarantined), and repairing an event no longer quarantined is ErrNotQuarantined.
func (w *Writer) Repair(ctx context.Context, r Repair) (Quarantined, error) {
	if r.EventID == "" || r.Operator == "" {
		return Quarantined{}, errors.New("audit: a repair names the event and the operator")
	}
	if r.Redact && r.Reason == "" {
		return Quarantined{}, errors.New("audit: a redaction needs a reason")
	}
	rows, err := w.pool.Query(ctx, `SELECT chain, event_id, coalesce(tenant_id, ''), action, code, reason, quarantined_at
		FROM audit_quarantine WHERE event_id = $1 AND ($2 = '' OR chain = $2) LIMIT 2`, r.EventID, r.Chain)
	if err != nil {
		return Quarantined{}, fmt.Errorf("audit: repair %s: %w", r.EventID, err)
	}
	found, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Quarantined, error) {
		var q Quarantined
		return q, row.Scan(&q.Chain, &q.EventID, &q.TenantID, &q.Action, &q.Code, &q.Reason, &q.At)
	})
	switch {
	case err != nil:
		return Quarantined{}, fmt.Errorf("audit: repair %s: %w", r.EventID, err)
	case len(found) == 0:
		return Quarantined{}, ErrNotQuarantined
	case len(found) > 1:
		return Quarantined{}, fmt.Errorf("audit: two chains hold a quarantined event %s: name the chain", r.EventID)
	}
	q := found[0]
	c, ok := w.repairChain(q)
	if !ok {
		return q, fmt.Errorf("audit: repair %s: chain %s is not one this process ships", r.EventID, q.Chain)
	}
	table, column, arg := c.table()
	err = c.tx(ctx, func(tx pgx.Tx) error {
		var pos int64
		var keyID string
		var payload []byte
		err := tx.QueryRow(ctx, `SELECT pos, key_id, payload FROM `+table+`
			WHERE `+column+` = $1 AND event_id = $2 AND quarantined_at IS NOT NULL AND shipped_at IS NULL FOR UPDATE`,
			arg, r.EventID).Scan(&pos, &keyID, &payload)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotQuarantined
		}
		if err != nil {
			return err
		}
		decision := Event{
			ID:       ActionQuarantineReship + "/" + q.Chain + "/" + q.EventID + "/" + strconv.FormatInt(q.At.UnixMilli(), 10),
			TenantID: q.TenantID, Actor: Actor{Type: ActorOperator, ID: r.Operator},
			Action: ActionQuarantineReship, Resource: "audit/" + c.name + "/" + q.EventID, Outcome: OutcomeSuccess,
			Reason:  r.Reason,
			Details: Details{"eventId": q.EventID, "eventAction": q.Action, "chain": c.name, "refusal": q.Reason, "code": strconv.Itoa(q.Code)},
		}
		if r.Redact {
			redacted, sum, err := redact(payload, r)
			if err != nil {
				return err
			}
			payload = redacted
			decision.ID = ActionQuarantineRedact + decision.ID[len(ActionQuarantineReship):]
			decision.Action = ActionQuarantineRedact
			decision.Details["originalSha256"] = sum
		}
		b := &pgx.Batch{}
		b.Queue(`UPDATE `+table+` SET quarantined_at = NULL, payload = $3, seq = NULL, prev_hash = NULL, hash = NULL
			WHERE `+column+` = $1 AND pos = $2`, arg, pos, payload)
		b.Queue(`INSERT INTO audit_backlog (chain, pos, key_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, c.key, pos, keyID)
		b.Queue(`DELETE FROM audit_quarantine WHERE chain = $1 AND pos = $2`, c.key, pos)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		if tenant.ValidateID(decision.TenantID) != nil {
			decision.TenantID = ""
		}
		_, err = w.enqueueMode(ctx, tx, modePlatform, w.platform, decision, false)
		return err
	})
	if err != nil {
		if errors.Is(err, ErrNotQuarantined) {
			return q, err
		}
		return q, fmt.Errorf("audit: repair %s: %w", r.EventID, err)
	}
	return q, nil
}

// repairChain is the chain a quarantined row belongs to.
func (w *Writer) repairChain(q Quarantined) (*Chain, bool) {
	return w.chainByKey(q.Chain)
}

// redact replaces an outbox payload's reason and details: what stays says who did what to
// what, when, and with which outcome; what was refused is kept only as its SHA-256.
func redact(payload []byte, r Repair) ([]byte, string, error) {
	var e Event
	if err := json.Unmarshal(payload, &e); err != nil {
		return nil, "", fmt.Errorf("decode quarantined event: %w", err)
	}
	sum := sha256.Sum256(payload)
	digest := hex.EncodeToString(sum[:])
	e.Reason = ""
	e.Details = Details{"redacted": "true", "redactedBy": r.Operator, "redactionReason": r.Reason, "originalSha256": digest}
	out, err := json.Marshal(e)
	if err != nil {
		return nil, "", fmt.Errorf("encode redacted event: %w", err)
	}
	return out, digest, nil
}

// moveQuarantineToPlatform keeps a tenant chain's quarantined events when the chain is
// removed (ForgetTenantChain): they move, still quarantined, to the platform outbox, which
// outlives tenants, and are repaired there (into the platform chain).
func (w *Writer) moveQuarantineToPlatform(ctx context.Context, tx pgx.Tx, tenantID string) error {
	_, err := tx.Exec(ctx, `WITH moved AS (
			INSERT INTO platform_audit_outbox (chain, event_id, payload, key_id, quarantined_at)
			SELECT $2, o.event_id, o.payload, o.key_id, o.quarantined_at FROM audit_outbox o
			WHERE o.tenant_id = $1 AND o.quarantined_at IS NOT NULL AND o.shipped_at IS NULL
			ON CONFLICT DO NOTHING RETURNING pos, event_id),
		gone AS (DELETE FROM audit_quarantine q WHERE q.chain = $3 RETURNING q.*)
		INSERT INTO audit_quarantine (chain, pos, event_id, tenant_id, action, code, reason, quarantined_at)
		SELECT $2, m.pos, m.event_id, NULL, g.action, g.code, g.reason || ' (moved from the chain of tenant ' || $1 || ', removed by offboarding)', g.quarantined_at
		FROM moved m JOIN gone g ON g.event_id = m.event_id
		ON CONFLICT DO NOTHING`, tenantID, w.platform.key, tenantChainKey(tenantID))
	if err != nil {
		return fmt.Errorf("move quarantined events to the platform: %w", err)
	}
	return nil
}
