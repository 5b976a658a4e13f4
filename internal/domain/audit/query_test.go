package audit_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/internal/domain/audit"
)

func ids(events []audit.Event) []string {
	out := []string{}
	for _, e := range events {
		out = append(out, e.ID)
	}
	return out
}

// Every filter selects exactly its events, pages follow the chain in both directions without
// loss or repetition, and another tenant's events never show.
func TestListFiltersAndPages(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx, _ := b.tenantCtx(t, "list")
	octx, _ := b.tenantCtx(t, "list")
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	write := func(id, action, actorType, actorID, outcome string, at time.Time) {
		_, err := b.w.Tenant(ctx, audit.Event{ID: id, Actor: audit.Actor{Type: actorType, ID: actorID}, Action: action, Resource: "r", Outcome: outcome, At: at})
		require.NoError(t, err)
	}
	write("e1", "tenant.update", audit.ActorOperator, "ops", audit.OutcomeSuccess, t0)
	write("e2", "tenant.suspend", audit.ActorOperator, "alice", audit.OutcomeFailure, t0.Add(time.Hour))
	write("e3", "tenant.update", audit.ActorSystem, "OnboardTenant", audit.OutcomeSuccess, t0.Add(day))
	write("e4", "tenant.update", audit.ActorOperator, "ops", audit.OutcomeDenied, t0.Add(day+time.Hour))
	write("e5", "tenant.update", audit.ActorOperator, "ops", audit.OutcomeSuccess, t0.Add(2*day))
	_, err := b.w.Tenant(octx, audit.Event{ID: "other", Actor: audit.Actor{Type: audit.ActorOperator, ID: "ops"}, Action: "tenant.update", Outcome: audit.OutcomeSuccess, At: t0})
	require.NoError(t, err)

	c, err := b.w.TenantChain(ctx)
	require.NoError(t, err)
	list := func(q audit.Query) ([]string, bool) {
		t.Helper()
		if q.Limit == 0 {
			q.Limit = 100
		}
		events, more, err := c.List(ctx, q)
		require.NoError(t, err)
		return ids(events), more
	}

	for _, tc := range []struct {
		name string
		q    audit.Query
		want []string
	}{
		{"all", audit.Query{}, []string{"e1", "e2", "e3", "e4", "e5"}},
		{"action", audit.Query{Action: "tenant.update"}, []string{"e1", "e3", "e4", "e5"}},
		{"actor type", audit.Query{ActorType: audit.ActorSystem}, []string{"e3"}},
		{"actor id", audit.Query{ActorID: "alice"}, []string{"e2"}},
		{"outcome", audit.Query{Outcome: audit.OutcomeDenied}, []string{"e4"}},
		{"range, end exclusive", audit.Query{From: t0.Add(day), To: t0.Add(2 * day)}, []string{"e3", "e4"}},
		{"from only", audit.Query{From: t0.Add(day + time.Minute)}, []string{"e4", "e5"}},
		{"combined", audit.Query{Action: "tenant.update", Outcome: audit.OutcomeSuccess, From: t0.Add(time.Minute)}, []string{"e3", "e5"}},
		{"nothing", audit.Query{Action: "tenant.delete"}, []string{}},
		{"newest first", audit.Query{Desc: true}, []string{"e5", "e4", "e3", "e2", "e1"}},
	} {
		got, more := list(tc.q)
		require.Equal(t, tc.want, got, tc.name)
		require.False(t, more, tc.name)
	}

	for _, desc := range []bool{false, true} {
		var all []string
		q := audit.Query{Limit: 2, Desc: desc, Action: "tenant.update"}
		for page := 0; ; page++ {
			events, more, err := c.List(ctx, q)
			require.NoError(t, err)
			require.LessOrEqual(t, len(events), 2)
			all = append(all, ids(events)...)
			if !more {
				break
			}
			require.Less(t, page, 5, "pagination must end")
			q.After = events[len(events)-1].Seq
		}
		want := []string{"e1", "e3", "e4", "e5"}
		if desc {
			want = []string{"e5", "e4", "e3", "e1"}
		}
		require.Equal(t, want, all)
	}
}

func TestSummaryCountsPerDayActionOutcome(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx, _ := b.tenantCtx(t, "sum")
	t0 := time.Date(2026, 3, 1, 23, 30, 0, 0, time.UTC)
	for i, e := range []struct {
		action, outcome string
		at              time.Time
	}{
		{"tenant.update", audit.OutcomeSuccess, t0},
		{"tenant.update", audit.OutcomeSuccess, t0.Add(10 * time.Minute)},
		{"tenant.update", audit.OutcomeFailure, t0.Add(20 * time.Minute)},
		{"tenant.update", audit.OutcomeSuccess, t0.Add(time.Hour)}, // next day, UTC
		{"tenant.suspend", audit.OutcomeDenied, t0.Add(time.Hour)},
	} {
		_, err := b.w.Tenant(ctx, audit.Event{ID: "s" + string(rune('a'+i)), Actor: audit.Actor{Type: audit.ActorOperator, ID: "ops"}, Action: e.action, Outcome: e.outcome, At: e.at})
		require.NoError(t, err)
	}
	c, err := b.w.TenantChain(ctx)
	require.NoError(t, err)
	got, err := c.Summary(ctx, audit.Query{})
	require.NoError(t, err)
	require.Equal(t, []audit.DayCount{
		{Day: "2026-03-01", Action: "tenant.update", Outcome: "failure", Count: 1},
		{Day: "2026-03-01", Action: "tenant.update", Outcome: "success", Count: 2},
		{Day: "2026-03-02", Action: "tenant.suspend", Outcome: "denied", Count: 1},
		{Day: "2026-03-02", Action: "tenant.update", Outcome: "success", Count: 1},
	}, got)

	got, err = c.Summary(ctx, audit.Query{Outcome: audit.OutcomeSuccess, From: t0.Add(5 * time.Minute)})
	require.NoError(t, err)
	require.Equal(t, []audit.DayCount{
		{Day: "2026-03-01", Action: "tenant.update", Outcome: "success", Count: 1},
		{Day: "2026-03-02", Action: "tenant.update", Outcome: "success", Count: 1},
	}, got)
}
