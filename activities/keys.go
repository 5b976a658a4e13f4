package activities

import (
	"context"

	"go.temporal.io/sdk/activity"
)

// KeyVersionsResult lists a tenant's data key versions, oldest first.
type KeyVersionsResult struct {
	Versions []int
}

// KeyVersions reads the tenant's key versions. Read-only, so trivially safe to retry.
func (a *Activities) KeyVersions(ctx context.Context, in TenantRef) (KeyVersionsResult, error) {
	tctx, err := scoped(ctx, in.TenantID)
	if err != nil {
		return KeyVersionsResult{}, err
	}
	v, err := a.Keys.Versions(tctx)
	return KeyVersionsResult{Versions: v}, err
}

// KeyVersionInput names the key version to create.
type KeyVersionInput struct {
	TenantID string
	Version  int
}

// EnsureKeyVersion creates data key version Version if absent. Idempotent: the version number
// is chosen by the workflow before the call, and the insert is create-if-absent, so a retry
// never adds another version. The key itself never leaves the activity.
func (a *Activities) EnsureKeyVersion(ctx context.Context, in KeyVersionInput) (bool, error) {
	tctx, err := scoped(ctx, in.TenantID)
	if err != nil {
		return false, err
	}
	return a.Keys.EnsureVersion(tctx, in.Version)
}

// ReencryptInput resumes a re-encryption after a message id.
type ReencryptInput struct {
	TenantID string
	After    string
	Batch    int64
}

// ReencryptProgress is how far a re-encryption got.
type ReencryptProgress struct {
	After       string
	Reencrypted int
	Done        bool
}

// ReencryptMessages moves every message of the tenant to its newest data key, batch by batch in
// message id order, heartbeating its position after each batch, then every conversation title.
// Idempotent and resumable: a retried attempt resumes from the last heartbeat, a message or
// title already under the newest key is skipped, and each rewrite is conditional on the value
// it read.
func (a *Activities) ReencryptMessages(ctx context.Context, in ReencryptInput) (ReencryptProgress, error) {
	tctx, err := scoped(ctx, in.TenantID)
	if err != nil {
		return ReencryptProgress{}, err
	}
	p := ReencryptProgress{After: in.After}
	if activity.HasHeartbeatDetails(ctx) {
		var saved ReencryptProgress
		if activity.GetHeartbeatDetails(ctx, &saved) == nil {
			p = saved
		}
	}
	batch := in.Batch
	if batch <= 0 {
		batch = 500
	}
	for !p.Done {
		last, n, done, err := a.Conversations.Reencrypt(tctx, p.After, batch)
		if err != nil {
			return p, err
		}
		p.After, p.Reencrypted, p.Done = last, p.Reencrypted+n, done
		activity.RecordHeartbeat(ctx, p)
		if err := ctx.Err(); err != nil {
			return p, err
		}
	}
	n, err := a.Conversations.ReencryptTitles(tctx)
	p.Reencrypted += n
	return p, err
}
