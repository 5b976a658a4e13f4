package activities

import (
	"time"

	"github.com/misybot/tenancy/internal/domain/audit"
	"github.com/misybot/tenancy/internal/domain/registry"
	"github.com/misybot/tenancy/internal/keys/keyring"
	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/stores/tenantdb"
	"github.com/misybot/tenancy/internal/stores/tenantmongo"
	"github.com/misybot/tenancy/internal/stores/tenantredis"
)

// The types on this page cross the activity boundary: they are activity inputs and results,
// recorded in workflow histories as JSON. They are copies of store types on purpose, so that a
// store package can rename or add a field without changing the payload of a run in flight.
// Their JSON names are part of the recorded histories (workflows/testdata/histories): never
// rename a tag; add fields instead.

// PostgresReport counts the rows ProvisionPostgres created; zero on a repeated run.
type PostgresReport struct {
	SettingsCreated int `json:"settingsCreated"`
	MembersCreated  int `json:"membersCreated"`
}

func postgresReport(r tenantdb.ProvisionReport) PostgresReport {
	return PostgresReport{SettingsCreated: r.SettingsCreated, MembersCreated: r.MembersCreated}
}

// MongoReport says what ProvisionMongo created. Index names are "collection.index". A repeated
// run reports nothing created and everything already present.
type MongoReport struct {
	Database           string   `json:"database"`
	CollectionsCreated []string `json:"collectionsCreated"`
	IndexesCreated     []string `json:"indexesCreated"`
	AlreadyPresent     int      `json:"alreadyPresent"`
}

func mongoReport(r tenantmongo.ProvisionReport) MongoReport {
	return MongoReport{Database: r.Database, CollectionsCreated: r.CollectionsCreated, IndexesCreated: r.IndexesCreated, AlreadyPresent: r.AlreadyPresent}
}

// MongoDeprovisionReport says what DeprovisionMongo removed, for the deletion summary.
type MongoDeprovisionReport struct {
	Database    string `json:"database"`
	Dropped     bool   `json:"dropped"`
	Collections int    `json:"collections"`
	Documents   int64  `json:"documents"`
}

func mongoDeprovisionReport(r tenantmongo.DeprovisionReport) MongoDeprovisionReport {
	return MongoDeprovisionReport{Database: r.Database, Dropped: r.Dropped, Collections: r.Collections, Documents: r.Documents}
}

// PurgeProgress is how far PurgeRedis got: its SCAN cursor, the keys deleted so far, and
// whether the walk is complete.
type PurgeProgress struct {
	Cursor  uint64 `json:"cursor"`
	Deleted int64  `json:"deleted"`
	Done    bool   `json:"done"`
}

func purgeProgress(p tenantredis.PurgeProgress) PurgeProgress {
	return PurgeProgress{Cursor: p.Cursor, Deleted: p.Deleted, Done: p.Done}
}

// AuditActor is who did what an AuditEvent records.
type AuditActor struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// Actor types and outcomes of AuditEvent, the audit package's own.
const (
	ActorOperator  = audit.ActorOperator
	ActorSystem    = audit.ActorSystem
	OutcomeSuccess = audit.OutcomeSuccess
	OutcomeFailure = audit.OutcomeFailure
	OutcomeDenied  = audit.OutcomeDenied
)

// AuditEvent is an event a workflow asks RecordAudit to write. It has no chain fields
// (sequence, hashes, key version): those are given when the event is shipped, never by a
// workflow. At comes from workflow time and the id from WorkflowEventID, so a replay or a retry
// asks for the identical event.
type AuditEvent struct {
	ID         string            `json:"id"`
	TenantID   string            `json:"tenantId"`
	Actor      AuditActor        `json:"actor"`
	Action     string            `json:"action"`
	Resource   string            `json:"resource"`
	Outcome    string            `json:"outcome"`
	Reason     string            `json:"reason,omitempty"`
	WorkflowID string            `json:"workflowId,omitempty"`
	RunID      string            `json:"runId,omitempty"`
	Details    map[string]string `json:"details,omitempty"`
	At         time.Time         `json:"at"`
}

// WorkflowEventID is the deterministic id of the event a workflow records at step.
func WorkflowEventID(workflowID, runID, step string) string {
	return audit.WorkflowEventID(workflowID, runID, step)
}

func (e AuditEvent) record() audit.Event {
	return audit.Event{
		ID: e.ID, TenantID: e.TenantID, Actor: audit.Actor{Type: e.Actor.Type, ID: e.Actor.ID},
		Action: e.Action, Resource: e.Resource, Outcome: e.Outcome, Reason: e.Reason,
		WorkflowID: e.WorkflowID, RunID: e.RunID, Details: e.Details, At: e.At,
	}
}

// KeyCacheTTL is how long a process may keep using a tenant's data key after it changed: the
// key rotation waits this long before it re-encrypts.
const KeyCacheTTL = keyring.CacheTTL

// RetentionTarget is a tenant whose audit chain retention may cut, with its policy.
type RetentionTarget struct {
	TenantID      string
	Status        tenant.Status
	RetentionDays int  `json:"retentionDays"`
	LegalHold     bool `json:"legalHold"`
}

func retentionTargets(ts []registry.RetentionTarget) []RetentionTarget {
	out := make([]RetentionTarget, len(ts))
	for i, t := range ts {
		out[i] = RetentionTarget{TenantID: t.TenantID, Status: t.Status, RetentionDays: t.RetentionDays, LegalHold: t.LegalHold}
	}
	return out
}

// AuditBreak is the first broken link of an audit chain: its position, the event's id, and
// what is wrong (one of the audit package's Problem values).
type AuditBreak struct {
	Seq     int64  `json:"seq"`
	ID      string `json:"id,omitempty"`
	Problem string `json:"problem"`
	Detail  string `json:"detail"`
}

func auditBreak(b *audit.Break) *AuditBreak {
	if b == nil {
		return nil
	}
	return &AuditBreak{Seq: b.Seq, ID: b.ID, Problem: b.Problem, Detail: b.Detail}
}
