package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/internal/testkit/testenv"
	"github.com/misybot/tenancy/workflows"
)

// The real worker binary SIGKILLed at random moments while onboardings run concurrently
// through the API, restarted each time: every run completes, and every tenant has exactly one
// set of resources and one audit event per step in a chain that verifies.
func TestWorkerKilledDuringConcurrentOnboardings(t *testing.T) {
	t.Parallel()
	needsServers(t)
	n, kills := size(10, 50), size(2, 5)
	s := newStack(t, "")
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	s.logf("%d onboardings through the API, %d SIGKILLs at random moments (seed %d)", n, kills, seed)

	// One of the tenants is the anchor: its ProvisionPostgres is held until the last kill, so
	// every kill lands while at least that run is mid-step, whatever the others are doing.
	anchor := testenv.TenantID("kill")
	s.register(anchor)
	release := s.holdProvisioning([]string{anchor})

	w := s.startWorker("worker-0")
	runs := make([]run, n)
	errs := make([]error, n)
	var done atomic.Int64
	var started, wg sync.WaitGroup
	begin := time.Now()
	for i := range n {
		started.Add(1)
		wg.Go(func() {
			id := anchor
			if i > 0 {
				id = testenv.TenantID("kill")
			}
			runs[i] = s.onboard(id)
			started.Done()
			errs[i] = s.wait(runs[i])
			done.Add(1)
		})
	}
	started.Wait()
	s.provisioningStartedOn([]string{anchor})
	// The first kill within 300 ms of the last run starting, each later one 0.3 to 3 s after
	// the restart before it.
	var log []string
	for i := range kills {
		if i == 0 {
			time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
		} else {
			time.Sleep(300*time.Millisecond + time.Duration(rng.IntN(2700))*time.Millisecond)
		}
		at := done.Load()
		w.Kill()
		log = append(log, fmt.Sprintf("kill %d at +%.1fs with %d/%d runs completed", i+1, time.Since(begin).Seconds(), at, n))
		time.Sleep(time.Duration(rng.IntN(1000)) * time.Millisecond)
		w = s.startWorker(fmt.Sprintf("worker-%d", i+1))
	}
	release()
	wg.Wait()
	s.logf("%s", strings.Join(log, "; "))
	for i, err := range errs {
		require.NoError(t, err, "run of %s", runs[i].tenant)
	}
	ids := make([]string, n)
	for i, r := range runs {
		ids[i] = r.tenant
	}
	c := s.checkOnboarded(ids)
	require.Positive(t, c.retried, "a step cut short by a kill ran again (at least the anchor's)")
	s.logf("%d SIGKILLs mid-run, %d/%d runs completed; %s", kills, n, n, c)
}

// Two workers on the task queue, one SIGKILLed while it runs steps: the other finishes every
// run. Each held tenant's ProvisionPostgres is blocked (its row held) so that the killed worker
// is certainly mid-step; the worker holding more of them is the one killed.
func TestOneOfTwoWorkersKilled(t *testing.T) {
	t.Parallel()
	needsServers(t)
	n := size(4, 10)
	s := newStack(t, "")
	a, b := s.startWorker("worker-a"), s.startWorker("worker-b")
	ids := make([]string, n)
	for i := range ids {
		ids[i] = testenv.TenantID("two")
		s.register(ids[i])
	}
	release := s.holdProvisioning(ids)
	runs := make([]run, n)
	for i, id := range ids {
		runs[i] = s.onboard(id)
	}
	on := s.provisioningStartedOn(ids)
	count := func(p *proc) (held []string) {
		for id, who := range on {
			if strings.HasPrefix(who, fmt.Sprint(p.Pid())+"@") {
				held = append(held, id)
			}
		}
		return held
	}
	victim, survivor := a, b
	if len(count(b)) > len(count(a)) {
		victim, survivor = b, a
	}
	lost := count(victim)
	require.NotEmpty(t, lost, "the killed worker runs held steps (identities %v)", on)
	victim.Kill()
	release()
	s.logf("%d onboardings, each blocked in ProvisionPostgres; killed %s (pid %d) holding %d of them, %s (pid %d) holding %d",
		n, victim.name, victim.Pid(), len(lost), survivor.name, survivor.Pid(), len(count(survivor)))

	require.Equal(t, n, s.waitAll(runs), "every run completes")
	// Each step the dead worker held was run again, by the survivor: its (single) audit event
	// says attempt 2, and the history names the survivor.
	for _, id := range lost {
		var attempt string
		for _, e := range s.holdingsOf(id).Events {
			if e.Action == "workflow.step.ProvisionPostgres" {
				attempt = e.Details["attempt"]
			}
		}
		require.Equal(t, "2", attempt, "%s: ProvisionPostgres retried once", id)
		require.True(t, strings.HasPrefix(s.lastWorkerOf(workflows.ProvisionWorkflowID(id), "ProvisionPostgres"), fmt.Sprint(survivor.Pid())+"@"),
			"%s: the survivor finished the step", id)
	}
	c := s.checkOnboarded(ids)
	s.logf("%d/%d runs completed on the survivor; %d steps of the killed worker retried there (attempt 2, one event each); %s", n, n, len(lost), c)
}

// lastWorkerOf is the identity of the worker whose attempt of the activity completed.
func (s *stack) lastWorkerOf(workflowID, activity string) string {
	s.t.Helper()
	ctx := context.Background()
	it := s.temporal.GetWorkflowHistory(ctx, workflowID, "", false, 0)
	scheduled := map[int64]string{}
	who := ""
	for it.HasNext() {
		e, err := it.Next()
		require.NoError(s.t, err)
		if a := e.GetActivityTaskScheduledEventAttributes(); a != nil {
			scheduled[e.GetEventId()] = a.GetActivityType().GetName()
		}
		if a := e.GetActivityTaskStartedEventAttributes(); a != nil && scheduled[a.GetScheduledEventId()] == activity {
			who = a.GetIdentity()
		}
	}
	return who
}
