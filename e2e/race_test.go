package e2e

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/api"
	"github.com/misybot/tenancy/internal/testkit/testenv"
)

// Profile updates (PUT) racing suspend and restore never revive a suspended tenant: after
// every completed suspension, a signed request is refused, however many PUTs ran meanwhile.
// (A PUT used to rewrite the whole Redis record, status included, from a read taken before the
// suspension landed.)
func TestProfileUpdatesNeverReviveASuspendedTenant(t *testing.T) {
	t.Parallel()
	s := newStack(t, true)
	id := testenv.TenantID("race")
	code, body := s.do(http.MethodPost, api.TenantsPath+"/onboard", onboardBody(id, "standard"))
	require.Equal(t, http.StatusAccepted, code, body)
	secret := body["tenantSecret"].(string)
	require.NoError(t, s.wait(body))
	// Widen the window between a read of the context record and what follows it, as a slow
	// network would: the record a reader got may be stale by the time it acts on it.
	s.redis.AddHook(slowReads{delay: 10 * time.Millisecond})

	stop := make(chan struct{})
	var puts atomic.Int64
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				code, _ := s.do(http.MethodPut, api.TenantsPath+"/"+id,
					`{"tenantName":"Racing","contactEmail":"ops@race.test","tenantType":"standard","allowedOrigins":["https://race.test"]}`)
				if code == http.StatusOK {
					puts.Add(1)
				}
			}
		})
	}
	for cycle := range 8 {
		code, body := s.do(http.MethodPost, api.TenantsPath+"/"+id+"/suspend", "")
		require.Equal(t, http.StatusAccepted, code, body)
		require.NoError(t, s.wait(body))
		for range 5 {
			require.Equal(t, http.StatusForbidden, s.signedGet(id, secret, "/me"), "cycle %d: a suspended tenant is refused", cycle)
		}
		code, body = s.do(http.MethodPost, api.TenantsPath+"/"+id+"/restore", "")
		require.Equal(t, http.StatusAccepted, code, body)
		require.NoError(t, s.wait(body))
	}
	close(stop)
	wg.Wait()
	require.Positive(t, puts.Load(), "profile updates ran during the cycles")
}

// slowReads delays the answer of every HGETALL (a context record read) after Redis gave it.
type slowReads struct{ delay time.Duration }

func (slowReads) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h slowReads) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if cmd.Name() == "hgetall" {
			time.Sleep(h.delay)
		}
		return err
	}
}

func (slowReads) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
