package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/internal/testenv"
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
	// Kill points: after a random number of runs completed (in the first three quarters),
	// plus a random delay, so that kills land while runs are still going.
	var points []int
	for range kills {
		points = append(points, rng.IntN(n*3/4))
	}
	slices.Sort(points)
	s.logf("%d onboardings, %d kills after %v completed runs (seed %d)", n, kills, points, seed)

	w := s.startWorker("worker-0")
	runs := make([]run, n)
	var done atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			runs[i] = s.onboard(testenv.TenantID("kill"))
			errs[i] = s.wait(runs[i])
			done.Add(1)
		})
	}
	var log []string
	killed := 0
	for i, p := range points {
		for done.Load() < int64(p) {
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(time.Duration(rng.IntN(700)) * time.Millisecond)
		at := done.Load()
		if at >= int64(n) {
			break
		}
		w.Kill()
		killed++
		log = append(log, fmt.Sprintf("kill %d with %d/%d runs completed", i+1, at, n))
		time.Sleep(time.Duration(rng.IntN(1000)) * time.Millisecond)
		w = s.startWorker(fmt.Sprintf("worker-%d", i+1))
	}
	wg.Wait()
	s.logf("%s", strings.Join(log, "; "))
	require.Positive(t, killed, "no kill landed while runs were going")
	for i, err := range errs {
		require.NoError(t, err, "run of %s", runs[i].tenant)
	}
	ids := make([]string, n)
	for i, r := range runs {
		ids[i] = r.tenant
	}
	c := s.checkOnboarded(ids)
	s.logf("%d SIGKILLs mid-run, %d/%d runs completed; %s", killed, n, n, c)
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
