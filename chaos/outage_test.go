package chaos

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/misybot/tenancy/api"
	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/stores/tenantredis"
	"github.com/misybot/tenancy/internal/testkit/testenv"
)

// outage is how long a store stays cut off.
const outage = 10 * time.Second

// PostgreSQL, Redis or FerretDB cut off for 10 s (through the stack's proxy, so the shared
// servers keep running) while onboardings provision, and suspensions of active tenants issued
// meanwhile: once the store is back every onboarding completes with exactly one set of
// resources and nothing half-made, and every suspension takes effect. `make test` cuts
// PostgreSQL only; `make chaos` each store in turn.
func TestStoreCutOffDuringProvisioning(t *testing.T) {
	t.Parallel()
	needsServers(t)
	stores := []string{"postgres"}
	if full {
		stores = append(stores, "redis", "mongodb")
	}
	for _, store := range stores {
		t.Run(store, func(t *testing.T) {
			t.Parallel()
			cutOff(t, store)
		})
	}
}

func cutOff(t *testing.T, store string) {
	k, m := size(2, 3), size(4, 8)
	s := newStack(t, "")
	s.startWorker("worker")
	proxy := map[string]*proxyHandle{"postgres": {s.pg.Cut, s.pg.Restore}, "redis": {s.redisProxy.Cut, s.redisProxy.Restore},
		"mongodb": {s.mongoProxy.Cut, s.mongoProxy.Restore}}[store]

	active := s.onboardAll("cut-a", k)
	ids := make([]string, m)
	for i := range ids {
		ids[i] = testenv.TenantID("cut")
		s.register(ids[i])
	}
	runs := make([]run, m)
	var cutAt time.Time
	if store == "postgres" {
		// The API needs PostgreSQL to start an onboarding: start them first, each held in
		// ProvisionPostgres, then cut, then let go of the rows (the worker's connections are dead).
		release := s.holdProvisioning(ids)
		for i, id := range ids {
			runs[i] = s.onboard(id)
		}
		s.provisioningStartedOn(ids)
		proxy.cut()
		cutAt = time.Now()
		release()
	} else {
		// The API starts onboardings without Redis or MongoDB: every run provisions during the cut.
		proxy.cut()
		cutAt = time.Now()
		for i, id := range ids {
			runs[i] = s.onboard(id)
		}
	}

	// Suspend the active tenants while the store is away. Without PostgreSQL the API cannot read
	// the tenant, so it refuses and the operator sends the request again: count both.
	answers := map[int]int{}
	var suspends []run
	var refused []string
	for _, r := range active {
		code, body, err := s.do(http.MethodPost, api.TenantsPath+"/"+r.tenant+"/suspend", "")
		require.NoError(t, err)
		answers[code]++
		if code == http.StatusAccepted {
			suspends = append(suspends, runOf(r.tenant, body))
		} else {
			// Refused, never lied to: a server error, not a 2xx or a 4xx blaming the request.
			require.GreaterOrEqual(t, code, http.StatusInternalServerError, "suspend of %s during the cut: %v", r.tenant, body)
			refused = append(refused, r.tenant)
		}
	}
	time.Sleep(time.Until(cutAt.Add(outage)))
	waiting := s.running(runs) + s.running(suspends)
	proxy.restore()
	s.logf("%s cut for %s: %d onboardings provisioning, %d suspensions sent meanwhile (answers %v); %d runs still waiting at restore",
		store, outage, m, k, answers, waiting)
	if store != "postgres" {
		require.Equal(t, k, answers[http.StatusAccepted], "suspensions need neither Redis nor MongoDB to be accepted")
	}
	for _, id := range refused {
		var body map[string]any
		require.Eventually(t, func() bool {
			code, b, err := s.do(http.MethodPost, api.TenantsPath+"/"+id+"/suspend", "")
			body = b
			return err == nil && code == http.StatusAccepted
		}, 2*time.Minute, 500*time.Millisecond, "suspension of %s accepted once PostgreSQL is back", id)
		suspends = append(suspends, runOf(id, body))
	}

	require.Equal(t, m, s.waitAll(runs), "every onboarding completes")
	require.Equal(t, k, s.waitAll(suspends), "every suspension completes")
	c := s.checkOnboarded(ids)

	// The suspensions took effect: registry, Redis context record and the tenant API agree.
	ctx := context.Background()
	for _, r := range active {
		require.Equal(t, tenant.StatusSuspended, s.status(r.tenant), r.tenant)
		rec, err := tenantredis.New(s.redis).ReadContext(tenant.WithID(ctx, r.tenant))
		require.NoError(t, err)
		require.Equal(t, string(tenant.StatusSuspended), rec.Status, "%s: context record", r.tenant)
		code, _, err := s.signed(r.tenant, r.secret, http.MethodGet, "/me", nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusForbidden, code, "%s: a suspended tenant is refused", r.tenant)
		h := s.holdingsOf(r.tenant)
		require.Equal(t, 1, h.MongoDBs)
		require.Equal(t, 3, h.Postgres["tenant_settings"], "%s: data kept", r.tenant)
		actions := s.checkChain(r.tenant, h.Events)
		require.Equal(t, 1, countOf(actions, "tenant.suspend"), "%s: one suspension event", r.tenant)
		c.add(h)
		c.chains++
	}
	s.logf("%s: %d/%d onboardings completed, nothing half-made; %d/%d suspensions in effect (registry, Redis record, tenant API 403); %s",
		store, m, m, k, k, c)
}

// proxyHandle cuts and restores one store.
type proxyHandle struct{ cut, restore func() }

// running counts the runs not yet closed.
func (s *stack) running(runs []run) int {
	n := 0
	for _, r := range runs {
		desc, err := s.temporal.DescribeWorkflow(context.Background(), r.workflowID, r.runID)
		if err == nil && desc.RawResponse.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			n++
		}
	}
	return n
}

func countOf(list []string, v string) int {
	n := 0
	for _, x := range list {
		if x == v {
			n++
		}
	}
	return n
}
