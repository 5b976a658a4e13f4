// Package audit records what happened to and by a tenant. A tenant's events live in its own
// MongoDB database (collection audit_events, removed with the tenant after offboarding's
// export); platform events (registrations, offboarding summaries, operator actions across
// tenants) live in the platform database, which outlives every tenant.
//
// Exactly once: callers give each event a deterministic id (for workflows: workflow id, run id
// and step), and a write whose id exists already is success, so a retried activity or a
// replayed workflow never records an event twice.
package audit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/mongo"

	"github.com/misybot/tenancy/internal/tenant"
	"github.com/misybot/tenancy/internal/tenantmongo"
)

// PlatformDatabase holds platform-wide events. Its name cannot collide with a tenant database
// (those all start with "tenant_").
const PlatformDatabase = "platform"

// Collection is the events collection, in tenant databases and in the platform database.
const Collection = "audit_events"

// Actor types.
const (
	ActorOperator = "operator"
	ActorTenant   = "tenant"
	ActorSystem   = "system"
)

// Outcomes.
const (
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
	OutcomeDenied  = "denied"
)

// Actor is who did it.
type Actor struct {
	Type string `bson:"type" json:"type"`
	ID   string `bson:"id" json:"id"`
}

// Event is one audit record. It never holds a secret or a plaintext field value.
type Event struct {
	ID         string            `bson:"_id" json:"id"`
	TenantID   string            `bson:"tenantId" json:"tenantId"`
	Actor      Actor             `bson:"actor" json:"actor"`
	Action     string            `bson:"action" json:"action"`
	Resource   string            `bson:"resource" json:"resource"`
	Outcome    string            `bson:"outcome" json:"outcome"`
	Reason     string            `bson:"reason,omitempty" json:"reason,omitempty"`
	RequestID  string            `bson:"requestId,omitempty" json:"requestId,omitempty"`
	WorkflowID string            `bson:"workflowId,omitempty" json:"workflowId,omitempty"`
	RunID      string            `bson:"runId,omitempty" json:"runId,omitempty"`
	Details    map[string]string `bson:"details,omitempty" json:"details,omitempty"`
	At         time.Time         `bson:"at" json:"at"`
}

// Writer writes events. One per process; safe for concurrent use.
type Writer struct {
	tenants  *tenantmongo.Store
	platform *mongo.Collection
}

// NewWriter returns a Writer over the shared MongoDB client.
func NewWriter(client *mongo.Client, tenants *tenantmongo.Store) *Writer {
	return &Writer{tenants: tenants, platform: client.Database(PlatformDatabase).Collection(Collection)}
}

// WorkflowEventID is the deterministic id of an event written by a workflow step.
func WorkflowEventID(workflowID, runID, step string) string {
	return workflowID + "/" + runID + "/" + step
}

// Tenant writes an event into the context tenant's own database. It reports false, with no
// error, when an event with that id was already written.
func (w *Writer) Tenant(ctx context.Context, e Event) (bool, error) {
	id, err := tenant.IDFrom(ctx)
	if err != nil {
		return false, err
	}
	if e.TenantID != "" && e.TenantID != id {
		return false, fmt.Errorf("audit: event for %s written in the context of %s", e.TenantID, id)
	}
	e.TenantID = id
	coll, err := w.tenants.Collection(ctx, Collection)
	if err != nil {
		return false, err
	}
	return insertOnce(ctx, coll, e)
}

// Platform writes an event into the platform audit, which outlives tenants.
func (w *Writer) Platform(ctx context.Context, e Event) (bool, error) {
	return insertOnce(ctx, w.platform, e)
}

func insertOnce(ctx context.Context, coll *mongo.Collection, e Event) (bool, error) {
	if e.ID == "" {
		return false, errors.New("audit: event needs a deterministic id")
	}
	if e.At.IsZero() {
		e.At = time.Now().UTC()
	}
	_, err := coll.InsertOne(ctx, e)
	if mongo.IsDuplicateKeyError(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("audit: write %s: %w", e.Action, err)
	}
	return true, nil
}
