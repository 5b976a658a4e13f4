package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/stores/tenantdb"
)

// A tenant with its slots taken waits, then is answered 429 when its queue is full or its
// wait ends; another tenant is served meanwhile, and slots given back serve the first again.
func TestLimitTenantHoldsBackOnlyTheBusyTenant(t *testing.T) {
	s := &Server{tenantSlots: newTenantSlots(2)}
	release := make(chan struct{})
	var started sync.WaitGroup
	handler := s.limitTenant(func(c echo.Context) error {
		if id, _ := tenant.IDFrom(c.Request().Context()); id == "busy" {
			started.Done()
			<-release
		}
		return c.NoContent(http.StatusNoContent)
	})
	e := echo.New()
	call := func(ctx context.Context, id string) (int, error) {
		req := httptest.NewRequest(http.MethodGet, "/", nil).WithContext(tenant.WithID(ctx, id))
		rec := httptest.NewRecorder()
		err := handler(e.NewContext(req, rec))
		return rec.Code, err
	}

	var done sync.WaitGroup
	started.Add(2)
	for range 2 {
		done.Go(func() {
			code, err := call(context.Background(), "busy")
			require.NoError(t, err)
			require.Equal(t, http.StatusNoContent, code)
		})
	}
	started.Wait()

	// A third waits for a slot; when its wait ends (here its context) it is refused.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := call(ctx, "busy")
	var p *Problem
	require.ErrorAs(t, err, &p)
	require.Equal(t, http.StatusTooManyRequests, p.Status)
	require.Equal(t, ProblemBusy, p.Type)

	code, err := call(context.Background(), "other")
	require.NoError(t, err)
	require.Equal(t, http.StatusNoContent, code, "another tenant is not held back")

	// A waiting request is served as soon as a slot is given back.
	started.Add(1)
	waited := make(chan int, 1)
	go func() {
		code, _ := call(context.Background(), "busy")
		waited <- code
	}()
	close(release)
	done.Wait()
	started.Wait()
	require.Equal(t, http.StatusNoContent, <-waited)
	s.tenantSlots.mu.Lock()
	defer s.tenantSlots.mu.Unlock()
	require.Empty(t, s.tenantSlots.tenants, "every slot given back")
}

// Past the queue a request is refused, and does not join it.
func TestLimitTenantRefusesPastTheQueue(t *testing.T) {
	slots := newTenantSlots(1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // ends the waiters
	for range 1 + tenantQueue {
		go func() { _, _ = slots.acquire(ctx, "t") }()
	}
	require.Eventually(t, func() bool {
		slots.mu.Lock()
		defer slots.mu.Unlock()
		return slots.tenants["t"] != nil && slots.tenants["t"].users == 1+tenantQueue
	}, 5*time.Second, time.Millisecond)
	_, ok := slots.acquire(context.Background(), "t")
	require.False(t, ok)
	slots.mu.Lock()
	defer slots.mu.Unlock()
	require.Equal(t, 1+tenantQueue, slots.tenants["t"].users, "the refused request did not join the queue")
}

// settingsPage writes what encoding/json would, byte for byte once compacted, without
// re-validating the values.
func TestSettingsPageMatchesTheEncoder(t *testing.T) {
	at := time.Date(2026, 12, 6, 21, 0, 0, 123456789, time.UTC)
	items := []tenantdb.Setting{
		{Key: "theme", Value: json.RawMessage(`{"dark": true, "n": [1, 2.5]}`), UpdatedAt: at},
		{Key: "a.b-c_d", Value: json.RawMessage(`"é \"x\" \u2028"`), UpdatedAt: at.Add(time.Second)},
	}
	for _, next := range []string{"", "theme"} {
		want, err := json.Marshal(page{Items: items, NextCursor: next})
		require.NoError(t, err)
		got := settingsPage(items, next)
		var compact bytes.Buffer
		require.NoError(t, json.Compact(&compact, got))
		require.JSONEq(t, string(want), string(got))
		require.Equal(t, string(want), compact.String())
	}
	require.JSONEq(t, `{"items":[]}`, string(settingsPage(nil, "")))
}
