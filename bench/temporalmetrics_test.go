package main

import (
	"strings"
	"testing"
)

func TestTemporalCountersSumByLabelAndSummarise(t *testing.T) {
	scrape := func(text string) temporalCounters {
		t.Helper()
		c, err := parseTemporalCounters(strings.NewReader(text))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	before := scrape(`# HELP persistence_requests x
persistence_requests{operation="CreateTasks",service_name="matching"} 10
persistence_requests{operation="CreateTasks",service_name="history"} 5
persistence_requests{operation="UpdateWorkflowExecution",service_name="history"} 100
poll_success_sync{operation="TaskQueueMgr",namespace="default"} 3
poll_success{operation="TaskQueueMgr",namespace="default"} 8
poll_timeouts{operation="TaskQueueMgr"} 99
`)
	if got := before["persistence_requests{CreateTasks}"]; got != 15 {
		t.Fatalf("CreateTasks summed over its series = %v, want 15", got)
	}
	if _, ok := before["poll_timeouts{TaskQueueMgr}"]; ok {
		t.Fatal("an unselected counter was kept")
	}
	after := scrape(`persistence_requests_total{operation="CreateTasks"} 35
persistence_requests_total{operation="UpdateWorkflowExecution"} 180
poll_success_sync_total{operation="TaskQueueMgr"} 23
poll_success_total{operation="TaskQueueMgr"} 48
`)
	want := "50 persistence requests (10.0 task backlog writes), 10.0 of 20.0 tasks handed to a waiting poll"
	if got := after.summary(before, 2); got != want {
		t.Fatalf("summary = %q, want %q", got, want)
	}
	if _, err := parseTemporalCounters(strings.NewReader(`poll_success{operation="x"} notanumber` + "\n")); err == nil {
		t.Fatal("a malformed value was accepted")
	}
}
