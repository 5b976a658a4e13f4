package main

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The health check passes on a 2xx answer only, and fails when nothing answers in time.
func TestProbe(t *testing.T) {
	t.Parallel()
	var status atomic.Int32
	status.Store(http.StatusOK)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(time.Second)
		}
		w.WriteHeader(int(status.Load()))
	}))
	t.Cleanup(srv.Close)

	require.NoError(t, probe(srv.URL+"/readyz", time.Second))
	status.Store(http.StatusServiceUnavailable)
	require.ErrorContains(t, probe(srv.URL+"/readyz", time.Second), "503")
	require.Error(t, probe(srv.URL+"/slow", 100*time.Millisecond))
	srv.Close()
	require.Error(t, probe(srv.URL+"/readyz", time.Second))
}
