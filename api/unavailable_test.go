package api_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/misybot/tenancy/api"
	"github.com/misybot/tenancy/internal/lifecycle"
	"github.com/misybot/tenancy/internal/testenv"
)

// With the workflow service unreachable, a lifecycle request is answered 503 in the problem
// shape, never 500, and starts nothing.
func TestLifecycleAnswers503WhenTemporalIsDown(t *testing.T) {
	t.Parallel()
	down, err := client.NewLazyClient(client.Options{HostPort: "127.0.0.1:1"})
	require.NoError(t, err)
	t.Cleanup(down.Close)
	b := setup(t, func(c *api.Config) {
		c.Lifecycle = lifecycle.New(down, lifecycle.Options{TaskQueue: "nowhere", Logger: testenv.Logger(t)})
	})
	a := b.provision(t, "down", allPerms, nil)
	r := b.do(t, http.MethodPost, api.TenantsPath+"/"+a.id+"/suspend", "")
	requireProblem(t, r, http.StatusServiceUnavailable)
}
