package opsmetrics_test

import (
	"context"
	"encoding/json"
	"os"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/internal/domain/audit"
	"github.com/misybot/tenancy/internal/platform/opsmetrics"
	"github.com/misybot/tenancy/workflows"
)

// The Grafana dashboard is valid JSON, every panel queries something, and every series of ours
// it names (tenancy_…) is one a process exports, so a renamed metric cannot leave a panel
// silently empty.
func TestDashboardNamesExportedMetrics(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../../docs/grafana/tenancy.json")
	require.NoError(t, err)
	var dash struct {
		Panels []struct {
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	require.NoError(t, json.Unmarshal(raw, &dash))

	m, err := opsmetrics.NewWorker()
	require.NoError(t, err)
	m.WatchAuditBacklog(func(context.Context) (audit.Backlog, error) { return audit.Backlog{}, nil })
	families, err := m.Registry().Gather()
	require.NoError(t, err)
	known := map[string]bool{
		// The API's (api/metrics.go); the histogram's series carry _bucket.
		"tenancy_http_requests_total":                  true,
		"tenancy_http_request_duration_seconds_bucket": true,
	}
	for _, f := range families {
		known[f.GetName()] = true
	}
	for _, name := range []string{workflows.OperationsStartedMetric, workflows.OperationsCompletedMetric, workflows.OperationsFailedMetric, workflows.OperationsParkedMetric} {
		known[name+"_total"] = true
	}

	ours := regexp.MustCompile(`\btenancy_[a-z0-9_]+`)
	queried := 0
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		require.NotEmpty(t, p.Targets, "panel %q queries nothing", p.Title)
		for _, target := range p.Targets {
			require.NotEmpty(t, target.Expr, "panel %q", p.Title)
			for _, name := range ours.FindAllString(target.Expr, -1) {
				require.True(t, known[name], "panel %q names %s, which no process exports", p.Title, name)
				queried++
			}
		}
	}
	require.Positive(t, queried)
}

// The worker exports the cells it holds clients to, read when scraped.
func TestWorkerExportsItsOpenCells(t *testing.T) {
	m, err := opsmetrics.NewWorker()
	require.NoError(t, err)
	open := 0
	m.WatchCells(func() int { return open })
	value := func() float64 {
		families, err := m.Registry().Gather()
		require.NoError(t, err)
		for _, f := range families {
			if f.GetName() == "tenancy_cell_clients_open" {
				return f.GetMetric()[0].GetGauge().GetValue()
			}
		}
		t.Fatal("no tenancy_cell_clients_open")
		return 0
	}
	require.Zero(t, value())
	open = 2
	require.EqualValues(t, 2, value())
}
