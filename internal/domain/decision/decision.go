// Package decision records operator decisions and claims them for the workflow run that acts
// on them (table operator_decisions, migration 00016).
//
// A signal from Temporal's frontend proves nothing about who sent it: anyone who reaches the
// frontend can send `approve` naming anybody. So the API (and the operator CLI) records each
// decision that grants or destroys, after its own role checks, and signals the run with the
// decision's id only. The workflow acts on a signal only once an activity has read the
// decision back and claimed it (Claim): a made-up value names no decision and changes nothing.
package decision

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// RoleCLI is the role recorded for decisions made with the operator CLI (`starter …`), which
// runs with the database's credentials and authenticates nobody further.
const RoleCLI = "cli"

// Decision is one recorded decision.
type Decision struct {
	ID         string
	WorkflowID string
	// RunID is the run it is for; "" : any run of WorkflowID (reconciliation continues as new).
	RunID string
	// Kind is the signal it authorises (workflows.ApproveSignal, …).
	Kind string
	By   string
	Role string
	At   time.Time
	// Subject is what the decision is about beyond the run (a drift id), or "".
	Subject    string
	ConsumedBy string
}

// Store reads and writes decisions through the application role's pool.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a Store over pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Record stores d with a fresh random id (128 bits: no signal can name a decision it was not
// told of) and returns it with its id and time. ID, At and ConsumedBy of d are ignored.
func (s *Store) Record(ctx context.Context, d Decision) (Decision, error) {
	if d.WorkflowID == "" || d.Kind == "" || d.By == "" || d.Role == "" {
		return Decision{}, errors.New("decision: workflow, kind, decider and role are required")
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms (Go 1.24+)
	d.ID, d.ConsumedBy = hex.EncodeToString(b), ""
	err := s.pool.QueryRow(ctx, `
		INSERT INTO operator_decisions (decision_id, workflow_id, run_id, kind, decided_by, role, subject)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		RETURNING decided_at`, d.ID, d.WorkflowID, d.RunID, d.Kind, d.By, d.Role, d.Subject).Scan(&d.At)
	if err != nil {
		return Decision{}, fmt.Errorf("decision: record: %w", err)
	}
	return d, nil
}

// ErrNotFound: no decision has this id.
var ErrNotFound = errors.New("decision: not found")

// Get reads one decision.
func (s *Store) Get(ctx context.Context, id string) (Decision, error) {
	var d Decision
	var consumed *string
	err := s.pool.QueryRow(ctx, `
		SELECT decision_id, workflow_id, run_id, kind, decided_by, role, decided_at, subject, consumed_by
		FROM operator_decisions WHERE decision_id = $1`, id).
		Scan(&d.ID, &d.WorkflowID, &d.RunID, &d.Kind, &d.By, &d.Role, &d.At, &d.Subject, &consumed)
	if errors.Is(err, pgx.ErrNoRows) {
		return Decision{}, ErrNotFound
	}
	if err != nil {
		return Decision{}, fmt.Errorf("decision: get: %w", err)
	}
	if consumed != nil {
		d.ConsumedBy = *consumed
	}
	return d, nil
}

// Want is what a waiting run accepts: a decision for this workflow and run, of this kind, by
// one of these roles, and (for an approval) not by the requester. Consumer names the run's
// use of it ("<workflowId>/<runId>/<n>", fixed by the run's history).
type Want struct {
	WorkflowID string
	RunID      string
	Kind       string
	Roles      []string
	NotBy      string
	Consumer   string
}

// Claim returns the decision id names if it satisfies w, marking it used by w.Consumer; or why
// not (refused non-empty), changing nothing. A decision already claimed by w.Consumer is
// returned again, so a retried claim gives the same answer; one claimed by any other consumer
// is refused, so each decision is acted on once.
func (s *Store) Claim(ctx context.Context, id string, w Want) (d Decision, refused string, err error) {
	if w.Consumer == "" {
		return Decision{}, "", errors.New("decision: claim needs a consumer")
	}
	d, err = s.Get(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Decision{}, "no decision was recorded with this id (send decisions through the API or `starter decide`)", nil
	}
	if err != nil {
		return Decision{}, "", err
	}
	if why := w.refuses(d); why != "" {
		return d, why, nil
	}
	if d.ConsumedBy == w.Consumer {
		return d, "", nil
	}
	// The claim itself is conditional: of two consumers racing, one wins.
	tag, err := s.pool.Exec(ctx, `
		UPDATE operator_decisions SET consumed_by = $2, consumed_at = now()
		WHERE decision_id = $1 AND consumed_by IS NULL`, id, w.Consumer)
	if err != nil {
		return Decision{}, "", fmt.Errorf("decision: claim: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return s.Claim(ctx, id, w) // claimed meanwhile: by us (a lost answer) or by another
	}
	d.ConsumedBy = w.Consumer
	return d, "", nil
}

// refuses says why d does not satisfy w, or "".
func (w Want) refuses(d Decision) string {
	switch {
	case d.WorkflowID != w.WorkflowID || (d.RunID != "" && d.RunID != w.RunID):
		return fmt.Sprintf("decision %s is for another run (%s %s)", d.ID, d.WorkflowID, d.RunID)
	case d.Kind != w.Kind:
		return fmt.Sprintf("decision %s is a %s decision, not %s", d.ID, d.Kind, w.Kind)
	case !slices.Contains(w.Roles, d.Role):
		return fmt.Sprintf("decision %s was made by %s as %s; this needs one of %v", d.ID, d.By, d.Role, w.Roles)
	case w.NotBy != "" && d.By == w.NotBy:
		return fmt.Sprintf("decision %s was made by %s, who requested the change: another platform-admin must decide", d.ID, d.By)
	case d.ConsumedBy != "" && d.ConsumedBy != w.Consumer:
		return fmt.Sprintf("decision %s was already acted on (%s)", d.ID, d.ConsumedBy)
	}
	return ""
}
