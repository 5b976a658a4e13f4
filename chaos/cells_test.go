package chaos

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/misybot/tenancy/api"
	"github.com/misybot/tenancy/internal/domain/cells"
	"github.com/misybot/tenancy/internal/keys/seal"
	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/stores/tenantredis"
	"github.com/misybot/tenancy/internal/testkit/testenv"
	"github.com/misybot/tenancy/workflows"
)

// suspendedSteps are the audit events a suspension adds to a tenant's chain: the API's request,
// the status transition, the revoked sessions and the suspension event.
var suspendedSteps = []string{"tenant.suspend.request", "workflow.step.TransitionStatus", "workflow.step.RevokeSessions", "tenant.suspend"}

// retriedSteps are the audit events of an operator's retry of a parked step: the API's request
// and the decision the run acted on.
var retriedSteps = []string{"tenant.operation.retry", "workflow.signal.retry"}

// Every store of one of three cells stopped (its PostgreSQL, MongoDB and Redis) while onboardings and suspensions run across all three (issue 26). Every operation
// of the tenants on the other two cells completes while the cell is stopped; those on the
// stopped cell wait, retried by Temporal within the suite's step budget, and complete once the
// stores are back (one that spent its budget and parked gets the operator's retry, recorded
// through the API). Nothing is lost or duplicated: one set of resources per tenant, on its
// cell, and one audit event per step. `make test` runs 6 + 6 operations, `make chaos` 30 + 30.
func TestCellStoppedDuringOperations(t *testing.T) {
	t.Parallel()
	needsServers(t)
	n := size(6, 30)
	s := newStack(t, "")
	s.startWorker("worker")
	all := []*testCell{{id: cells.Default, name: "default"},
		s.addCell(2, testenv.Cell2MongoURI, testenv.Cell2RedisURL),
		s.addCell(3, testenv.Cell3MongoURI, testenv.Cell3RedisURL)}
	stopped := all[2]
	cellOf := func(i int) *testCell { return all[i%len(all)] }

	// The tenants to suspend: onboarded, active, before the cell stops.
	toSuspend := make([]string, n)
	for i := range toSuspend {
		toSuspend[i] = s.registerOn(testenv.TenantID("cs-s"), cellOf(i))
	}
	var wg sync.WaitGroup
	first := make([]run, n)
	for i, id := range toSuspend {
		wg.Go(func() { first[i] = s.onboard(id) })
	}
	wg.Wait()
	require.Equal(t, n, s.waitAll(first), "the tenants to suspend are onboarded first")
	toOnboard := make([]string, n)
	for i := range toOnboard {
		toOnboard[i] = s.registerOn(testenv.TenantID("cs-o"), cellOf(i))
	}

	stopped.cut()
	ops := make([]cellOp, 0, 2*n)
	for i := range n {
		ops = append(ops, cellOp{kind: "onboard", cell: cellOf(i), tenant: toOnboard[i]},
			cellOp{kind: "suspend", cell: cellOf(i), tenant: toSuspend[i]})
	}
	for i := range ops {
		wg.Go(func() {
			op := &ops[i]
			if op.kind == "onboard" {
				op.run = s.onboard(op.tenant)
			} else {
				op.run = runOf(op.tenant, s.must(http.StatusAccepted, http.MethodPost, api.TenantsPath+"/"+op.tenant+"/suspend", ""))
			}
		})
	}
	wg.Wait()
	others := slices.DeleteFunc(slices.Clone(ops), func(op cellOp) bool { return op.cell == stopped })
	onStopped := slices.DeleteFunc(slices.Clone(ops), func(op cellOp) bool { return op.cell != stopped })

	// While the cell is stopped: every operation on the other cells completes, with exactly one
	// set of resources on its cell and one audit event per step.
	require.Equal(t, len(others), s.waitAll(runsOf(others)), "every operation on the other cells completes while %s is stopped", stopped.name)
	c := s.checkCellOps(others)
	s.logf("%s stopped (PostgreSQL, MongoDB and Redis cut): %d onboardings and %d suspensions across 3 cells (%s); on the other cells %d/%d completed during the cut; %s",
		stopped.name, n, n, perCell(ops), len(others), len(others), c)

	// None of the stopped cell's operations can finish without its stores: each waits.
	waiting := s.running(runsOf(onStopped))
	require.Equal(t, len(onStopped), waiting, "every operation on %s waits while it is stopped", stopped.name)
	stopped.restore()
	parked := s.finish(onStopped)
	require.Equal(t, len(onStopped), s.waitAll(runsOf(onStopped)), "every operation on %s completes after the restore", stopped.name)
	c2 := s.checkCellOps(onStopped)
	steps, most := s.retriedSteps(runsOf(onStopped))
	s.logf("%s restored with %d/%d of its operations waiting; %d completed by Temporal's retries (%d steps took more than one attempt, up to %d), %d parked and completed after the operator's retry; %s",
		stopped.name, waiting, len(onStopped), len(onStopped)-parked, steps, most, parked, c2)
}

// testCell is one of the scenario's cells: the default cell, or one registered on a local
// cell's stores through proxies the scenario can cut.
type testCell struct {
	id, name               string
	postgres, mongo, redis *testenv.Proxy
	mongoURI, redisURL     string
}

func (c *testCell) cut()     { c.postgres.Cut(); c.mongo.Cut(); c.redis.Cut() }
func (c *testCell) restore() { c.postgres.Restore(); c.mongo.Restore(); c.redis.Restore() }

// addCell registers a cell on the local cell name's MongoDB and Redis, each reached through a
// proxy, and closes it at once, so that no concurrent test's onboarding is placed on it (the
// scenario places its own tenants by hand, and placement keeps a tenant already placed). The
// test's tenants are taken off it and the cell deleted when the test ends.
func (s *stack) addCell(k int, mongoURI, redisURL string) *testCell {
	s.t.Helper()
	name := fmt.Sprintf("cell-%d", k)
	pg := testenv.CellPostgresOf(s.t, k)
	c := &testCell{id: "t-" + testenv.TenantID("c")[2:10], name: name, mongoURI: mongoURI, redisURL: redisURL,
		postgres: testenv.StartProxy(s.t, hostOf(s.t, pg.AppURL)),
		mongo:    testenv.StartProxy(s.t, hostOf(s.t, mongoURI)), redis: testenv.StartProxy(s.t, hostOf(s.t, redisURL))}
	c.name = name + " (" + c.id + ")"
	// A cut proxy accepts and closes every connection: the driver would wait its default 30 s
	// for a server before each command fails; 2 s lets a cut attempt fail well inside the
	// attempt timeout, as a refused connection does for Redis.
	mu, err := url.Parse(withHost(s.t, mongoURI, c.mongo.Addr))
	require.NoError(s.t, err)
	mu.RawQuery = "serverSelectionTimeoutMS=2000"
	sealer, err := seal.New(masterKey)
	require.NoError(s.t, err)
	reg := cells.New(s.app, sealer)
	ctx := context.Background()
	_, err = reg.Create(ctx, cells.Cell{ID: c.id, Region: "local", Kind: cells.KindPooled, Capacity: 100},
		cells.Stores{PostgresURL: withHost(s.t, pg.AppURL, c.postgres.Addr), MongoURL: mu.String(), RedisURL: withHost(s.t, redisURL, c.redis.Addr)})
	require.NoError(s.t, err)
	s.t.Cleanup(func() {
		_, _ = s.owner.Exec(context.Background(), `UPDATE tenants SET cell_id = NULL WHERE cell_id = $1`, c.id)
		_ = reg.Delete(context.Background(), c.id)
	})
	_, err = reg.SetState(ctx, c.id, cells.StateClosed)
	require.NoError(s.t, err)

	ropts, err := redis.ParseURL(redisURL)
	require.NoError(s.t, err)
	rc := redis.NewClient(ropts)
	s.t.Cleanup(func() { _ = rc.Close() })
	s.cellStores[c.id] = cellStores{postgres: testenv.CellOwnerPool(s.t, k), mongo: testenv.MongoClientAt(s.t, mongoURI), redis: rc}
	return c
}

// registerOn registers a tenant through the API and places it on the cell by hand, as an
// operator's placement would; its onboarding keeps the cell.
func (s *stack) registerOn(id string, c *testCell) string {
	s.t.Helper()
	s.register(id)
	_, err := s.owner.Exec(context.Background(), `UPDATE tenants SET cell_id = $2 WHERE tenant_id = $1`, id, c.id)
	require.NoError(s.t, err)
	return id
}

// cellOp is one operation of the scenario on a tenant of a cell.
type cellOp struct {
	kind    string // onboard or suspend
	cell    *testCell
	tenant  string
	run     run
	retried bool // the operator's retry was sent (once or more)
}

func runsOf(ops []cellOp) []run {
	runs := make([]run, len(ops))
	for i, op := range ops {
		runs[i] = op.run
	}
	return runs
}

// perCell counts the operations of each cell.
func perCell(ops []cellOp) string {
	var names []string
	count := map[string]int{}
	for _, op := range ops {
		if count[op.cell.name] == 0 {
			names = append(names, op.cell.name)
		}
		count[op.cell.name]++
	}
	out := ""
	for i, name := range names {
		if i > 0 {
			out += ", "
		}
		out += fmt.Sprintf("%s %d", name, count[name])
	}
	return out
}

// checkCellOps checks each operation's outcome. An onboarded tenant: checkOnboarded (its
// database and Redis record on its cell). A suspended one: suspended in the registry and in its
// Redis context record on its cell, its data kept, exactly the events of its onboarding and its
// suspension. Either: plus the two events of an operator's retry when one was sent.
func (s *stack) checkCellOps(ops []cellOp) tally {
	s.t.Helper()
	var c tally
	for _, op := range ops {
		var extra []string
		if op.retried {
			extra = retriedSteps
		}
		if op.kind == "onboard" {
			c.plus(s.checkOnboarded([]string{op.tenant}, extra...))
			continue
		}
		id := op.tenant
		require.Equal(s.t, tenant.StatusSuspended, s.status(id), id)
		_, rc := s.storesOf(id)
		rec, err := tenantredis.New(rc).ReadContext(tenant.WithID(context.Background(), id))
		require.NoError(s.t, err, "%s: context record on its cell", id)
		require.Equal(s.t, string(tenant.StatusSuspended), rec.Status, "%s: context record", id)
		h := s.holdingsOf(id)
		require.Equal(s.t, 1, h.MongoDBs, "%s: one MongoDB database", id)
		require.Equal(s.t, 3, h.Postgres["tenant_settings"], "%s: data kept", id)
		require.Equal(s.t, []string{tenantredis.Key(id, "context", "record")}, h.RedisKeys, "%s: Redis keys", id)
		want := slices.Concat(onboardedSteps, suspendedSteps, extra)
		slices.Sort(want)
		require.Equal(s.t, want, s.checkChain(id, h.Events), "%s: one audit event per step", id)
		c.add(h)
		c.chains++
	}
	return c
}

// finish waits until every operation's run has ended, sending the operator's retry through the
// API (a recorded decision; raw signals are refused by design) to each that spent its step
// budget and parked; it returns how many it retried.
func (s *stack) finish(ops []cellOp) int {
	s.t.Helper()
	ctx := context.Background()
	retried := 0
	deadline := time.Now().Add(5 * time.Minute)
	for {
		open := 0
		for i := range ops {
			op := &ops[i]
			desc, err := s.temporal.DescribeWorkflow(ctx, op.run.workflowID, op.run.runID)
			require.NoError(s.t, err)
			if desc.RawResponse.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
				continue
			}
			open++
			res, err := s.temporal.QueryWorkflow(ctx, op.run.workflowID, op.run.runID, workflows.ProgressQuery)
			var p workflows.Progress
			if err != nil || res.Get(&p) != nil || p.State != workflows.StateAwaitingOperator || !slices.Contains(p.Signals, workflows.RetrySignal) {
				continue
			}
			s.must(http.StatusAccepted, http.MethodPost, api.TenantsPath+"/"+op.tenant+"/operations/current/retry", "")
			if !op.retried {
				op.retried = true
				retried++
			}
		}
		if open == 0 {
			return retried
		}
		require.True(s.t, time.Now().Before(deadline), "%d runs still open 5 minutes after the restore", open)
		time.Sleep(500 * time.Millisecond)
	}
}

// retriedSteps counts, from the runs' histories, the steps whose last attempt was not their first,
// and the most attempts a step took.
func (s *stack) retriedSteps(runs []run) (steps, most int) {
	s.t.Helper()
	for _, r := range runs {
		it := s.temporal.GetWorkflowHistory(context.Background(), r.workflowID, r.runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			require.NoError(s.t, err)
			if a := int(ev.GetActivityTaskStartedEventAttributes().GetAttempt()); a > 1 {
				steps++
				most = max(most, a)
			}
		}
	}
	return steps, most
}

// plus adds another tally's counts.
func (c *tally) plus(o tally) {
	c.tenants += o.tenants
	c.pgRows += o.pgRows
	c.mongoDBs += o.mongoDBs
	c.redisKeys += o.redisKeys
	c.events += o.events
	c.chains += o.chains
	c.retried += o.retried
}
