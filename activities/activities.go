// Package activities holds the worker's side effects: every call a workflow makes to
// PostgreSQL, MongoDB or Redis. Each activity is idempotent by construction, and its doc comment
// says how, because Temporal retries activities and a worker may die half-way through one.
// No activity takes or returns a secret or a key: key material is created and destroyed here,
// never carried through workflow history.
package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"

	"filippo.io/age"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/misybot/tenancy/internal/domain/audit"
	"github.com/misybot/tenancy/internal/domain/conversations"
	"github.com/misybot/tenancy/internal/domain/decision"
	"github.com/misybot/tenancy/internal/domain/reconcile"
	"github.com/misybot/tenancy/internal/domain/registry"
	"github.com/misybot/tenancy/internal/domain/tenantservice"
	"github.com/misybot/tenancy/internal/keys/keyring"
	"github.com/misybot/tenancy/internal/keys/seal"
	"github.com/misybot/tenancy/internal/model/limits"
	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/platform/clients"
	"github.com/misybot/tenancy/internal/stores/rls"
	"github.com/misybot/tenancy/internal/stores/tenantdb"
	"github.com/misybot/tenancy/internal/stores/tenantmongo"
	"github.com/misybot/tenancy/internal/stores/tenantredis"
)

// Error types of non-retryable failures; stable strings that workflows and the API match on.
const (
	ErrTypeTenantNotFound    = "TenantNotFound"
	ErrTypeIllegalTransition = "IllegalTransition"
	ErrTypeInvalidInput      = "InvalidInput"
)

// Activities holds the process-wide clients the activities use. Registered once per worker.
type Activities struct {
	Registry *registry.Registry
	Tenants  *tenantdb.Store
	Keys     *keyring.Keyring
	Mongo    *tenantmongo.Store
	Redis    *tenantredis.Store
	Audit    *audit.Writer
	// Sealer holds the master key versions: master key rotation re-seals under its current one.
	Sealer *seal.Sealer
	// Conversations re-encrypts message text when a tenant's key rotates.
	Conversations *conversations.Store
	// ExportDir is where offboarding writes tenant archives.
	ExportDir string
	// ExportRecipients are the age recipients archives are encrypted to (EXPORT_RECIPIENT);
	// without one, the export step fails rather than write plaintext.
	ExportRecipients []age.Recipient
	// Reports keeps reconciliation reports (activities/reconcile.go); ReconcileAutoRepair runs
	// a run's safe repairs without waiting for approval (RECONCILE_AUTO_REPAIR).
	Reports             *reconcile.Reports
	ReconcileAutoRepair bool
	// Decisions holds the operator decisions that waiting runs claim (ClaimDecision).
	Decisions *decision.Store
	// Cells places tenants on cells and routes their stores (PlaceTenant); nil in tests that
	// build Activities by hand: every tenant is then on the default cell.
	Cells  *clients.CellRouter
	Logger *slog.Logger
}

// TenantRef names the tenant an activity works on.
type TenantRef struct {
	TenantID string
}

// scoped returns ctx carrying the tenant, the only way the stores learn it; an invalid id is a
// permanent failure.
func scoped(ctx context.Context, tenantID string) (context.Context, error) {
	if err := tenant.ValidateID(tenantID); err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeInvalidInput, err)
	}
	return tenant.WithID(ctx, tenantID), nil
}

// permanentOnBadData turns PostgreSQL data exceptions (SQLSTATE class 22: a value a column
// cannot hold) and integrity violations (class 23) into non-retryable failures: a retry sends
// the same value and fails the same way, so retrying would only park the workflow.
func permanentOnBadData(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (strings.HasPrefix(pgErr.Code, "22") || strings.HasPrefix(pgErr.Code, "23")) {
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeInvalidInput, err)
	}
	return err
}

// TransitionInput asks to move a tenant to To from one of From.
type TransitionInput struct {
	TenantID string
	To       tenant.Status
	From     []tenant.Status
	// Reason is recorded with the status (why onboarding failed, who suspended).
	Reason string
}

// TransitionResult says what the tenant's status is now and whether this call moved it.
type TransitionResult struct {
	Status  tenant.Status
	Changed bool
}

// TransitionStatus moves a tenant's status in the registry with a single conditional UPDATE,
// committed together with the step's audit event (the outbox, in the same transaction: a
// status change is never without its record, nor a record without its change), then mirrors it
// into the tenant's Redis context record so request checks see it at once. It touches no
// MongoDB: a suspension goes through while the audit store is down.
// Idempotent: a tenant already in To is success with Changed=false (the Redis write is an
// overwrite, repeated harmlessly), so a retry after a lost answer, or a duplicate run, changes
// nothing. Any other status is a permanent IllegalTransition failure, never retried.
func (a *Activities) TransitionStatus(ctx context.Context, in TransitionInput) (TransitionResult, error) {
	tctx, err := scoped(ctx, in.TenantID)
	if err != nil {
		return TransitionResult{}, err
	}
	var t tenant.Tenant
	var changed bool
	err = a.Registry.Tx(ctx, func(tx pgx.Tx, reg *registry.Registry) error {
		var err error
		t, changed, err = reg.SetStatus(ctx, in.TenantID, in.To, in.Reason, in.From...)
		if err != nil || (!changed && t.Status != in.To) {
			return err
		}
		return a.recordStepTx(ctx, tx, in.TenantID)
	})
	if errors.Is(err, registry.ErrNotFound) {
		return TransitionResult{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeTenantNotFound, err)
	}
	if err != nil {
		return TransitionResult{}, permanentOnBadData(fmt.Errorf("transition %s to %s: %w", in.TenantID, in.To, err))
	}
	if !changed && t.Status != in.To {
		msg := fmt.Sprintf("tenant %s is %s; cannot move to %s (allowed from %v)", in.TenantID, t.Status, in.To, in.From)
		return TransitionResult{Status: t.Status}, temporal.NewNonRetryableApplicationError(msg, ErrTypeIllegalTransition, nil, string(t.Status))
	}
	stepCommitted(ctx) // the transaction above wrote the step's event
	// A tenant without a context record (not provisioned yet) has nothing to flip.
	// Versioned by the registry's time of the change: a stale retry cannot undo a newer status.
	if _, err := a.Redis.SetStatus(tctx, string(t.Status), t.UpdatedAt.UnixNano()); err != nil && !errors.Is(err, tenantredis.ErrNotFound) {
		return TransitionResult{}, fmt.Errorf("mirror status of %s to redis: %w", in.TenantID, err)
	}
	if changed {
		activity.GetLogger(ctx).Info("tenant status changed", "tenant_id", in.TenantID, "status", in.To)
	}
	return TransitionResult{Status: t.Status, Changed: changed}, nil
}

// recordStepTx writes the running step's audit event in tx, with the id and fields the step
// audit interceptor gives it, so the interceptor's own write after the step finds it there.
func (a *Activities) recordStepTx(ctx context.Context, tx pgx.Tx, tenantID string) error {
	if !activity.IsActivity(ctx) {
		return nil // called as a plain function (tests, tools): no step to record
	}
	info := activity.GetInfo(ctx)
	if info.WorkflowExecution.ID == "" {
		return nil
	}
	_, err := a.Audit.RecordTx(ctx, tx, StepEvent(info, tenantID, nil, nil))
	return err
}

// withStepEvent returns ctx whose writing transactions (rls.Tx) commit the running step's audit
// event with their change (rls.CommitHook). Once the work done under it has succeeded, call
// done: if a transaction wrote the event, it tells the step audit (stepCommitted), which then
// sends no second copy; if none did (nothing to change), the step audit writes the event.
func (a *Activities) withStepEvent(ctx context.Context, tenantID string) (hooked context.Context, done func()) {
	var wrote atomic.Bool
	hooked = rls.WithCommitHook(ctx, func(ctx context.Context, tx pgx.Tx) error {
		if err := a.recordStepTx(ctx, tx, tenantID); err != nil {
			return err
		}
		wrote.Store(true)
		return nil
	})
	return hooked, func() {
		if wrote.Load() {
			stepCommitted(ctx)
		}
	}
}

// CurrentStatus is a tenant's status as the registry has it.
type CurrentStatus struct {
	Status tenant.Status
}

// GetStatus reads a tenant's status. Read-only, so trivially safe to retry.
func (a *Activities) GetStatus(ctx context.Context, in TenantRef) (CurrentStatus, error) {
	t, err := a.Registry.Get(ctx, in.TenantID)
	if errors.Is(err, registry.ErrNotFound) {
		return CurrentStatus{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeTenantNotFound, err)
	}
	if err != nil {
		return CurrentStatus{}, err
	}
	return CurrentStatus{Status: t.Status}, nil
}

// TombstoneInput finishes an offboarding.
type TombstoneInput struct {
	TenantID string
	Reason   string
}

// Tombstone marks an offboarding tenant offboarded and wipes its sealed secret, keeping the
// registry row as a tombstone, in one transaction with the step's audit event. Idempotent: an
// offboarded tenant is left as it is.
func (a *Activities) Tombstone(ctx context.Context, in TombstoneInput) (tenant.Status, error) {
	var t tenant.Tenant
	err := a.Registry.Tx(ctx, func(tx pgx.Tx, reg *registry.Registry) error {
		var err error
		if t, err = reg.Tombstone(ctx, in.TenantID, in.Reason); err != nil {
			return err
		}
		return a.recordStepTx(ctx, tx, in.TenantID)
	})
	var se *registry.StatusError
	if errors.As(err, &se) || errors.Is(err, registry.ErrNotFound) {
		return "", temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeIllegalTransition, err)
	}
	if err != nil {
		return "", permanentOnBadData(err)
	}
	return t.Status, nil
}

// AuditInput is one event a workflow step records. At comes from workflow time, so a replay
// or a retry writes the identical event.
type AuditInput struct {
	Event AuditEvent
	// Platform writes to the platform audit instead of the tenant's own.
	Platform bool
	// Route lets the activity choose: the tenant's own chain while it is open (tenant active or
	// suspended, database present), the platform chain otherwise (audit.Writer.Record). For
	// events that may happen at any point of a tenant's life, such as operator signals.
	Route bool
}

// RecordAudit writes an audit event. Idempotent: the event id is deterministic (workflow id,
// run id, step) and an id already present is success, so retries never duplicate it.
func (a *Activities) RecordAudit(ctx context.Context, in AuditInput) (bool, error) {
	ev := in.Event.record()
	if in.Platform {
		return a.Audit.Platform(ctx, ev)
	}
	if in.Route {
		return a.recordRouted(ctx, ev)
	}
	tctx, err := scoped(ctx, ev.TenantID)
	if err != nil {
		return false, err
	}
	return a.Audit.Tenant(tctx, ev)
}

// ProfileChange is a change of a tenant's profile waiting for approval: every mutable field,
// as the PUT asked for it. It holds nothing secret.
type ProfileChange struct {
	TenantID         string
	SiteID           string
	Name             string
	ContactEmail     string
	WebsiteURL       string
	BusinessIndustry string
	AllowedOrigins   []string
	Permissions      []tenant.Permission
	Type             tenant.Type
}

// ApplyProfileChange writes an approved profile change to the registry and the tenant's Redis
// context record (type, permissions, origins; never the status), committed with the step's
// audit event. Idempotent: both writes are overwrites with the same values. A tenant being
// offboarded (or gone) is a permanent failure: its profile is frozen.
func (a *Activities) ApplyProfileChange(ctx context.Context, in ProfileChange) error {
	if _, err := scoped(ctx, in.TenantID); err != nil { // a valid tenant id, or a permanent failure
		return err
	}
	sctx, stepDone := a.withStepEvent(ctx, in.TenantID)
	t, err := a.Registry.Update(sctx, in.TenantID, registry.Update{
		SiteID: in.SiteID, Name: in.Name, ContactEmail: in.ContactEmail, WebsiteURL: in.WebsiteURL,
		BusinessIndustry: in.BusinessIndustry, AllowedOrigins: in.AllowedOrigins, Permissions: in.Permissions, Type: in.Type,
	})
	var se *registry.StatusError
	if errors.As(err, &se) || errors.Is(err, registry.ErrNotFound) {
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeIllegalTransition, err)
	}
	if err != nil {
		return permanentOnBadData(err)
	}
	stepDone()
	return tenantservice.RefreshProfile(ctx, a.Redis, t)
}

// Deps are what New wires the activities over: the process's shared clients (connections
// only), the master key versions, where archives go, and the logger.
type Deps struct {
	Clients   *clients.Clients
	Sealer    *seal.Sealer
	ExportDir string
	Logger    *slog.Logger
}

// New builds the worker's activities over the shared clients; the worker and the integration
// tests call it, so both wire the same stores. ExportRecipients are the caller's to set.
func New(d Deps) *Activities {
	c := d.Clients
	cells := c.Cells(d.Sealer, d.Logger)
	mongoStore := cells.TenantMongo()
	keys := keyring.New(c.Postgres, d.Sealer)
	redisStore := cells.TenantRedis()
	return &Activities{
		Registry:      registry.New(c.Postgres),
		Tenants:       cells.TenantDB(),
		Keys:          keys,
		Mongo:         mongoStore,
		Redis:         redisStore,
		Conversations: conversations.New(mongoStore, keys, redisStore, cells.TenantDB(), limits.Default()),
		Audit:         c.AuditWriter(d.Sealer),
		Sealer:        d.Sealer,
		ExportDir:     d.ExportDir,
		Reports:       reconcile.NewReports(c.Postgres),
		Decisions:     decision.New(c.Postgres),
		Cells:         cells,
		Logger:        d.Logger,
	}
}
