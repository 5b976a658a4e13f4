package workflows

import (
	"cmp"
	"fmt"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/misybot/tenancy/activities"
	"github.com/misybot/tenancy/internal/model/tenant"
)

// OffboardInput starts an offboarding.
type OffboardInput struct {
	TenantID    string
	RequestedBy string
	// GracePeriod is how long the exported tenant waits, refusing requests, before its data is
	// purged; cancel-offboard during it restores the previous status. Zero purges at once.
	GracePeriod  time.Duration
	StepAttempts int32
	// StepTimeout bounds each activity attempt (0: DefaultStepTimeout).
	StepTimeout time.Duration
	// SearchAttributesVersion is the search-attribute behaviour of the run (the starter sets
	// SearchAttributesVersion; 0, in runs started before, leaves it to a GetVersion marker).
	SearchAttributesVersion int
}

// OffboardResult is the deletion summary, also written to the platform audit.
type OffboardResult struct {
	TenantID      string
	Cancelled     bool   `json:",omitempty"`
	CancelledBy   string `json:",omitempty"`
	Status        tenant.Status
	Archive       activities.ExportResult
	KeysDestroyed int64
	PostgresRows  map[string]int64
	Mongo         activities.MongoDeprovisionReport
	RedisKeys     int64
}

// OffboardTenant retires a tenant: mark offboarding (requests are refused from then on),
// export its data to an archive with a SHA-256, wait out the grace period (cancel-offboard
// restores the previous status), then destroy its keys, purge PostgreSQL, drop its MongoDB
// database, unlink its Redis keys, and leave a tombstone and a deletion summary in the platform
// audit. Nothing is compensated after the purge starts: a step out of retries parks for an
// operator instead.
func OffboardTenant(ctx workflow.Context, in OffboardInput) (OffboardResult, error) {
	ctx = withSearchAttributesVersion(ctx, in.SearchAttributesVersion)
	r, err := newRun(ctx, "offboard", in.TenantID, in.StepAttempts, in.StepTimeout)
	if err != nil {
		return OffboardResult{}, err
	}
	res := OffboardResult{TenantID: in.TenantID}
	info := workflow.GetInfo(ctx)
	ref := activities.TenantRef{TenantID: in.TenantID}
	by := cmp.Or(in.RequestedBy, "operator")
	fail := func(err error) (OffboardResult, error) {
		r.progress.State = StateFailed
		return res, err
	}

	// The status before offboarding, restored if the offboarding is cancelled. An offboarding
	// started again on a tenant left offboarding by a failed run does not know it, and restores
	// to suspended: never re-activate a tenant whose state is unknown.
	var previous tenant.Status
	if err := r.step("mark-offboarding", func(ctx workflow.Context) error {
		var cur activities.CurrentStatus
		if err := workflow.ExecuteActivity(ctx, a.GetStatus, ref).Get(ctx, &cur); err != nil {
			return err
		}
		if previous == "" {
			previous = cur.Status
			if cur.Status == tenant.StatusOffboarding {
				previous = tenant.StatusSuspended
			}
		}
		return workflow.ExecuteActivity(ctx, a.TransitionStatus, activities.TransitionInput{
			TenantID: in.TenantID, To: tenant.StatusOffboarding, From: OffboardFrom,
			Reason: fmt.Sprintf("offboarding requested by %s (was %s)", by, previous),
		}).Get(ctx, nil)
	}); err != nil {
		return fail(err)
	}
	setTenantSearchAttributes(ctx, tenant.StatusOffboarding, "")

	if err := r.step("export", func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(longStep(ctx), a.ExportTenant, activities.ExportInput{
			TenantID: in.TenantID, Archive: in.TenantID + "-" + info.WorkflowExecution.RunID + ".tar.gz",
		}).Get(ctx, &res.Archive)
	}); err != nil {
		return fail(err)
	}

	// Grace period on a durable timer; cancel-offboard ends it early by restoring the tenant.
	if in.GracePeriod > 0 {
		i := r.add("grace-period")
		r.progress.Steps[i].Status, r.progress.Steps[i].Attempts, r.progress.Steps[i].StartedAt = StepRunning, 1, workflow.Now(ctx)
		r.progress.Signals = []string{CancelOffboardSignal}
		tctx, cancelTimer := workflow.WithCancel(ctx)
		timer := workflow.NewTimer(tctx, in.GracePeriod)
		var canceller string
		cancelled := false
		cancelCh := workflow.GetSignalChannel(ctx, CancelOffboardSignal)
		if decisionsVerified(ctx) {
			canceller, cancelled = r.awaitCancelOffboard(timer, cancelCh, i)
		} else {
			sel := workflow.NewSelector(ctx)
			sel.AddFuture(timer, func(workflow.Future) {})
			sel.AddReceive(cancelCh, func(c workflow.ReceiveChannel, _ bool) {
				c.Receive(ctx, &canceller)
				cancelled = true
			})
			sel.Select(ctx)
		}
		cancelTimer()
		r.progress.Signals = nil
		r.progress.Steps[i].EndedAt = workflow.Now(ctx)
		r.progress.Steps[i].Status = StepCompleted
		if cancelled {
			res.Cancelled, res.CancelledBy = true, cmp.Or(canceller, "operator")
			return r.cancelOffboard(in, previous, res)
		}
	}

	if err := r.step("destroy-keys", func(ctx workflow.Context) error {
		var d activities.DestroyKeysResult
		err := workflow.ExecuteActivity(ctx, a.DestroyKeys, ref).Get(ctx, &d)
		res.KeysDestroyed += d.Destroyed
		return err
	}); err != nil {
		return fail(err)
	}
	if err := r.step("purge-postgres", func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, a.DeprovisionPostgres, ref).Get(ctx, &res.PostgresRows)
	}); err != nil {
		return fail(err)
	}
	if err := r.step("drop-mongodb", func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, a.DeprovisionMongo, activities.DeprovisionInput{TenantID: in.TenantID}).Get(ctx, &res.Mongo)
	}); err != nil {
		return fail(err)
	}
	if err := r.step("purge-redis", func(ctx workflow.Context) error {
		var p activities.PurgeProgress
		err := workflow.ExecuteActivity(longStep(ctx), a.PurgeRedis, ref).Get(ctx, &p)
		res.RedisKeys = p.Deleted
		return err
	}); err != nil {
		return fail(err)
	}
	if err := r.step("tombstone", func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, a.Tombstone, activities.TombstoneInput{
			TenantID: in.TenantID, Reason: "offboarded by " + by + "; archive sha256 " + res.Archive.SHA256,
		}).Get(ctx, &res.Status)
	}); err != nil {
		return fail(err)
	}
	setTenantSearchAttributes(ctx, res.Status, "")
	if err := r.step("deletion-summary", func(ctx workflow.Context) error {
		details := map[string]string{
			"archive": res.Archive.Path, "archiveSha256": res.Archive.SHA256, "archiveBytes": fmt.Sprint(res.Archive.Bytes),
			"keysDestroyed": fmt.Sprint(res.KeysDestroyed), "mongoDatabase": res.Mongo.Database,
			"mongoDocuments": fmt.Sprint(res.Mongo.Documents), "redisKeys": fmt.Sprint(res.RedisKeys),
			"requestedBy": by,
		}
		var rows int64
		for _, n := range res.PostgresRows {
			rows += n
		}
		details["postgresRows"] = fmt.Sprint(rows)
		ev := r.event("offboarded", "tenant.offboard", operator(by), activities.OutcomeSuccess, "")
		ev.Details = details
		return record(ctx, activities.AuditInput{Event: ev, Platform: true})
	}); err != nil {
		return fail(err)
	}
	r.progress.State = StateCompleted
	return res, nil
}

// awaitCancelOffboard waits out the grace period's timer unless a cancel-offboard signal names
// a recorded decision this run can claim (operatorDecisionsChange); a signal that does not is
// refused (progress, audit) and the timer keeps running. It reports who cancelled, if anyone.
func (r *run) awaitCancelOffboard(timer workflow.Future, cancelCh workflow.ReceiveChannel, step int) (by string, cancelled bool) {
	for {
		var value string
		received := false
		sel := workflow.NewSelector(r.ctx)
		sel.AddFuture(timer, func(workflow.Future) {})
		sel.AddReceive(cancelCh, func(c workflow.ReceiveChannel, _ bool) { c.Receive(r.ctx, &value); received = true })
		sel.Select(r.ctx)
		if !received {
			return "", false
		}
		d, refused := r.decisions.claim(r.ctx, CancelOffboardSignal, value, decideRoles, "")
		if refused == "" {
			return d.By, true
		}
		r.refuse(CancelOffboardSignal, refused, step, false)
	}
}

func (r *run) cancelOffboard(in OffboardInput, previous tenant.Status, res OffboardResult) (OffboardResult, error) {
	if err := r.step("restore-status", func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, a.TransitionStatus, activities.TransitionInput{
			TenantID: in.TenantID, To: previous, From: []tenant.Status{tenant.StatusOffboarding},
			Reason: "offboarding cancelled by " + res.CancelledBy,
		}).Get(ctx, nil)
	}); err != nil {
		r.progress.State = StateFailed
		return res, err
	}
	res.Status = previous
	setTenantSearchAttributes(r.ctx, previous, "")
	if err := r.step("audit", func(ctx workflow.Context) error {
		ev := r.event("offboard-cancelled", "tenant.offboard.cancel", operator(res.CancelledBy), activities.OutcomeSuccess, "restored to "+string(previous))
		ev.Details = map[string]string{"archiveSha256": res.Archive.SHA256}
		return record(ctx, activities.AuditInput{Event: ev})
	}); err != nil {
		r.progress.State = StateFailed
		return res, err
	}
	r.progress.State = StateCancelled
	return res, nil
}
