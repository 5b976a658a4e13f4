package activities

import (
	"context"
	"errors"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/misybot/tenancy/internal/domain/cells"
)

// PlaceInput names the tenant to place and what the operator asked: a cell, a region, or
// neither (the placement rules choose).
type PlaceInput struct {
	TenantID string
	Cell     string `json:",omitempty"`
	Region   string `json:",omitempty"`
}

// PlaceResult is the tenant's cell.
type PlaceResult struct {
	Cell string
}

// ErrTypeNoCell is the application error type of an onboarding no cell can take.
const ErrTypeNoCell = "NoCellWithRoom"

// PlaceTenant records the tenant's cell in the registry (cells.Registry.Place), before any of
// its stores is touched. Idempotent by construction: a tenant placed once keeps its cell, so a
// retried attempt, or the same activity after a worker was killed, answers the same cell.
// No cell with room is permanent (NoCellWithRoom): nothing was placed or created. A cell that
// would do but does not answer is not: the step is retried (and parks for an operator past its
// budget), as for any store outage.
func (a *Activities) PlaceTenant(ctx context.Context, in PlaceInput) (PlaceResult, error) {
	if a.Cells == nil {
		return PlaceResult{Cell: cells.Default}, nil
	}
	t, err := a.Registry.Get(ctx, in.TenantID)
	if err != nil {
		return PlaceResult{}, err
	}
	cell, err := a.Cells.Registry().Place(ctx, in.TenantID, t.Type, cells.Want{Cell: in.Cell, Region: in.Region}, a.Cells.Healthy)
	var noRoom *cells.NoRoomError
	if errors.As(err, &noRoom) && !noRoom.Unhealthy {
		return PlaceResult{}, temporal.NewNonRetryableApplicationError(noRoom.Error(), ErrTypeNoCell, err)
	}
	if err != nil {
		return PlaceResult{}, err
	}
	activity.GetLogger(ctx).Info("tenant placed", "tenant_id", in.TenantID, "cell_id", cell)
	return PlaceResult{Cell: cell}, nil
}
