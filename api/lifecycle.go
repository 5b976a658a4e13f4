package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"
	"go.temporal.io/api/serviceerror"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/misybot/tenancy/internal/control/lifecycle"
	"github.com/misybot/tenancy/internal/domain/cells"
	"github.com/misybot/tenancy/internal/domain/registry"
	"github.com/misybot/tenancy/workflows"
)

// operationResponse is the 202 answer of every lifecycle endpoint.
type operationResponse struct {
	lifecycle.Run
	Operation lifecycle.Operation `json:"operation"`
	TenantID  string              `json:"tenantId"`
	// Progress is where the run's progress can be read.
	Progress string `json:"progress"`
	// Secret is set only when onboarding registered the tenant in the same request.
	Secret     string `json:"tenantSecret,omitempty"`
	Registered bool   `json:"registered,omitempty"`
}

type operationRequest struct {
	Reason string `json:"reason" validate:"max=500"`
}

// lifecycleError maps refusals of the lifecycle service to problems.
func lifecycleError(err error) error {
	var illegal *lifecycle.IllegalTransitionError
	var busy *lifecycle.BusyError
	var noRoom *cells.NoRoomError
	switch {
	case errors.As(err, &illegal):
		p := conflict(illegal.Error())
		p.CurrentStatus = string(illegal.Current)
		return p
	case errors.As(err, &busy):
		p := conflict(busy.Error())
		p.WorkflowID, p.RunID, p.Workflow = busy.WorkflowID, busy.RunID, busy.Workflow
		return p
	case errors.Is(err, lifecycle.ErrNoOperation):
		return notFound(err.Error())
	case errors.As(err, &noRoom) && noRoom.Unhealthy:
		return newProblem(http.StatusServiceUnavailable, ProblemUnavailable, "Service unavailable", noRoom.Error()+"; nothing was started, try again")
	case errors.As(err, &noRoom):
		if noRoom.Unknown && noRoom.Want.Cell != "" {
			return notFound(noRoom.Error())
		}
		if noRoom.Unknown {
			return validationProblem(FieldError{Field: "region", Message: noRoom.Error()})
		}
		return conflict(noRoom.Error() + "; nothing was started")
	case errors.Is(err, lifecycle.ErrNoDecisions):
		return newProblem(http.StatusServiceUnavailable, ProblemUnavailable, "Service unavailable", err.Error())
	case unreachable(err):
		return newProblem(http.StatusServiceUnavailable, ProblemUnavailable, "Service unavailable", "the workflow service is not reachable; try again")
	}
	return err
}

// unreachable reports whether err says the workflow service did not answer: a deadline, or
// gRPC's Unavailable (connection refused, reset, no server), as typed errors rather than text.
func unreachable(err error) bool {
	var unavailable *serviceerror.Unavailable
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &unavailable) || status.Code(err) == codes.Unavailable
}

func (s *Server) accepted(c echo.Context, op lifecycle.Operation, tenantID string, run lifecycle.Run) operationResponse {
	return operationResponse{Run: run, Operation: op, TenantID: tenantID, Progress: TenantsPath + "/" + tenantID + "/operations/current"}
}

// onboardRequest is a registration (used when the tenant is new) and, optionally, where to
// place it: a cell by id, or a region (cells.Registry.Place has the rules).
type onboardRequest struct {
	registerRequest
	CellID string `json:"cellId,omitempty" validate:"omitempty,cellid"`
	Region string `json:"region,omitempty" validate:"omitempty,cellid"`
}

// onboardTenant registers the tenant if it is new (answering with its secret, exactly once)
// and starts its onboarding.
func (s *Server) onboardTenant(c echo.Context) error {
	var req onboardRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := s.validate(&req); err != nil {
		return err
	}
	if err := req.checkPermissions(); err != nil {
		return err
	}
	ctx := c.Request().Context()
	auditTenant(c, req.ID)
	t, err := s.registry.Get(ctx, req.ID)
	var secret string
	registered := false
	want := workflows.Placement{Cell: req.CellID, Region: req.Region}
	if errors.Is(err, registry.ErrNotFound) {
		// Before registering: a tenant no cell can take is refused with nothing created.
		if err := s.lifecycle.CheckPlacement(ctx, req.ID, req.Type, want); err != nil {
			return lifecycleError(err)
		}
		t, secret, err = s.register(ctx, req.registerRequest)
		registered = err == nil
		if errors.Is(err, registry.ErrExists) { // a concurrent request registered it first
			t, err = s.registry.Get(ctx, req.ID)
		}
	}
	if err != nil {
		return err
	}
	run, err := s.lifecycle.Onboard(ctx, t, operatorOf(c).Name, want)
	if err != nil {
		if registered {
			// The tenant exists now even though onboarding did not start: hand over the secret,
			// or nobody could ever use it. The problem says so.
			s.logger.Warn("tenant registered but onboarding did not start", "tenant_id", t.ID, "err", err)
			detail := "onboarding did not start; send the same request again to start it"
			if p := (*Problem)(nil); errors.As(lifecycleError(err), &p) {
				detail = "onboarding did not start (" + p.Detail + "); send the same request again to start it"
			}
			return c.JSON(http.StatusCreated, struct {
				registerResponse
				OnboardingError string `json:"onboardingError"`
			}{registerResponse{Tenant: t, Secret: secret}, detail})
		}
		return lifecycleError(err)
	}
	s.logger.Info("onboarding started", "tenant_id", t.ID, "workflow_id", run.WorkflowID, "run_id", run.RunID, "existing", run.Existing, "registered", registered)
	out := s.accepted(c, lifecycle.Onboard, t.ID, run)
	out.Secret, out.Registered = secret, registered
	return c.JSON(http.StatusAccepted, out)
}

// startOperation is the handler of suspend, restore and offboard.
func (s *Server) startOperation(op lifecycle.Operation) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := pathTenantID(c)
		if err != nil {
			return err
		}
		var req operationRequest
		if c.Request().ContentLength != 0 {
			if err := decodeJSON(c, &req); err != nil {
				return err
			}
			if err := s.validate(&req); err != nil {
				return err
			}
		}
		ctx := c.Request().Context()
		t, err := s.registry.Get(ctx, id)
		if err != nil {
			return registryError(err)
		}
		run, err := s.lifecycle.Start(ctx, op, t, operatorOf(c).Name, req.Reason)
		if err != nil {
			return lifecycleError(err)
		}
		s.logger.Info(fmt.Sprintf("%s started", op), "tenant_id", id, "workflow_id", run.WorkflowID, "run_id", run.RunID, "existing", run.Existing)
		return c.JSON(http.StatusAccepted, s.accepted(c, op, id, run))
	}
}

// currentOperation answers with the tenant's latest lifecycle run and its progress.
func (s *Server) currentOperation(c echo.Context) error {
	id, err := pathTenantID(c)
	if err != nil {
		return err
	}
	if _, err := s.registry.Get(c.Request().Context(), id); err != nil {
		return registryError(err)
	}
	op, err := s.lifecycle.Current(c.Request().Context(), id)
	if err != nil {
		return lifecycleError(err)
	}
	return c.JSON(http.StatusOK, op)
}
