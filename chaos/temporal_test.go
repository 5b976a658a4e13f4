package chaos

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/internal/testkit/testenv"
)

// The Temporal dev server (the suite's own, never the shared one) SIGKILLed and restarted while
// onboardings are mid-step: the runs resume from the server's persisted state and complete,
// each step recorded once. The steps blocked at the crash are released while the server is
// down, so their completions find no server and must be retried or re-delivered.
func TestTemporalServerRestartedMidRun(t *testing.T) {
	t.Parallel()
	needsServers(t)
	n := size(4, 20)
	dev := startDevServer(t)
	s := newStack(t, dev.addr)
	s.startWorker("worker")
	ids := make([]string, n)
	for i := range ids {
		ids[i] = testenv.TenantID("restart")
		s.register(ids[i])
	}
	release := s.holdProvisioning(ids)
	runs := make([]run, n)
	for i, id := range ids {
		runs[i] = s.onboard(id)
	}
	s.provisioningStartedOn(ids)

	dev.kill()
	release()
	down := 2 * time.Second
	time.Sleep(down)
	dev.start()
	s.logf("%d onboardings blocked in ProvisionPostgres; dev server SIGKILLed, steps released while it was down, restarted after %s", n, down)

	require.Equal(t, n, s.waitAll(runs), "every run resumes and completes")
	c := s.checkOnboarded(ids)
	s.logf("%d/%d runs completed after the restart; %s", n, n, c)
}
