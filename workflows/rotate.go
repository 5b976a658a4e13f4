package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/misybot/tenancy/activities"
)

// RotateKeyWorkflow is the type name of RotateTenantKey.
const RotateKeyWorkflow = "RotateTenantKey"

// RotateKeyInput starts a data key rotation.
type RotateKeyInput struct {
	TenantID    string
	RequestedBy string
	// SettleDelay waits, after the new version exists, for every process's cached "newest
	// version" to expire, so no message is written with the old key after re-encryption has
	// passed it (0: activities.KeyCacheTTL).
	SettleDelay  time.Duration
	Batch        int64
	StepAttempts int32
	StepTimeout  time.Duration
}

// RotateKeyResult is the new version and how many messages moved to it.
type RotateKeyResult struct {
	Version     int
	Reencrypted int
}

// RotateTenantKey adds a data key version for new writes, waits for caches to settle, then
// re-encrypts the tenant's message text under it, reporting progress; older versions keep
// decrypting throughout. Audited.
func RotateTenantKey(ctx workflow.Context, in RotateKeyInput) (RotateKeyResult, error) {
	r, err := newRun(ctx, "rotate-keys", in.TenantID, in.StepAttempts, in.StepTimeout)
	if err != nil {
		return RotateKeyResult{}, err
	}
	ref := activities.TenantRef{TenantID: in.TenantID}
	var res RotateKeyResult
	fail := func(err error) (RotateKeyResult, error) {
		r.progress.State = StateFailed
		return res, err
	}

	if err := r.step("new-key-version", func(ctx workflow.Context) error {
		if res.Version == 0 { // decided once per run, so an operator's retry reuses it
			var v activities.KeyVersionsResult
			if err := workflow.ExecuteActivity(ctx, a.KeyVersions, ref).Get(ctx, &v); err != nil {
				return err
			}
			res.Version = 1
			if n := len(v.Versions); n > 0 {
				res.Version = v.Versions[n-1] + 1
			}
		}
		return workflow.ExecuteActivity(ctx, a.EnsureKeyVersion,
			activities.KeyVersionInput{TenantID: in.TenantID, Version: res.Version}).Get(ctx, nil)
	}); err != nil {
		return fail(err)
	}

	settle := in.SettleDelay
	if settle <= 0 {
		settle = activities.KeyCacheTTL
	}
	if err := r.step("settle-caches", func(ctx workflow.Context) error { return workflow.Sleep(ctx, settle) }); err != nil {
		return fail(err)
	}

	if err := r.step("reencrypt", func(ctx workflow.Context) error {
		var p activities.ReencryptProgress
		err := workflow.ExecuteActivity(longStep(ctx), a.ReencryptMessages,
			activities.ReencryptInput{TenantID: in.TenantID, Batch: in.Batch}).Get(ctx, &p)
		res.Reencrypted = p.Reencrypted
		return err
	}); err != nil {
		return fail(err)
	}

	if err := r.step("audit", func(ctx workflow.Context) error {
		ev := r.event("keys-rotated", "tenant.keys.rotate", operator(in.RequestedBy), activities.OutcomeSuccess, "")
		ev.Resource += "/keys"
		ev.Details = map[string]string{"version": fmt.Sprint(res.Version), "reencrypted": fmt.Sprint(res.Reencrypted)}
		return record(ctx, activities.AuditInput{Event: ev})
	}); err != nil {
		return fail(err)
	}
	r.progress.State = StateCompleted
	return res, nil
}
