// Package activities holds the worker's side effects: every call a workflow makes to
// PostgreSQL, MongoDB or Redis. Each activity is idempotent by construction, and its doc comment
// says how, because Temporal retries activities and a worker may die half-way through one.
package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/misybot/tenancy/internal/registry"
	"github.com/misybot/tenancy/internal/tenant"
)

// Error types of non-retryable failures; stable strings that workflows and the API match on.
const (
	ErrTypeTenantNotFound    = "TenantNotFound"
	ErrTypeIllegalTransition = "IllegalTransition"
)

// Activities holds the process-wide clients the activities use. Registered once per worker.
type Activities struct {
	Registry *registry.Registry
	Logger   *slog.Logger
}

// TransitionInput asks to move a tenant to To from one of From.
type TransitionInput struct {
	TenantID string
	To       tenant.Status
	From     []tenant.Status
}

// TransitionResult says what the tenant's status was found to be and whether this call moved it.
type TransitionResult struct {
	Status  tenant.Status
	Changed bool
}

// TransitionStatus moves a tenant's status in the registry with a single conditional UPDATE.
// Idempotent: a tenant already in To is success with Changed=false, so a retry after a lost
// answer, or a duplicate run, changes nothing. Any other status is a permanent
// IllegalTransition failure, never retried.
func (a *Activities) TransitionStatus(ctx context.Context, in TransitionInput) (TransitionResult, error) {
	t, changed, err := a.Registry.SetStatus(ctx, in.TenantID, in.To, in.From...)
	if errors.Is(err, registry.ErrNotFound) {
		return TransitionResult{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeTenantNotFound, err)
	}
	if err != nil {
		return TransitionResult{}, fmt.Errorf("transition %s to %s: %w", in.TenantID, in.To, err)
	}
	if !changed && t.Status != in.To {
		msg := fmt.Sprintf("tenant %s is %s; cannot move to %s (allowed from %v)", in.TenantID, t.Status, in.To, in.From)
		return TransitionResult{Status: t.Status}, temporal.NewNonRetryableApplicationError(msg, ErrTypeIllegalTransition, nil, string(t.Status))
	}
	if changed {
		activity.GetLogger(ctx).Info("tenant status changed", "tenant_id", in.TenantID, "status", in.To)
	}
	return TransitionResult{Status: t.Status, Changed: changed}, nil
}
