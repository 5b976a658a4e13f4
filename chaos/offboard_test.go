package chaos

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/api"
	"github.com/misybot/tenancy/internal/model/tenant"
)

// Tenants offboarded while other tenants use the signed tenant API (reads and writes): every
// request of the others succeeds, reads answer exactly what they answered before, and their
// data afterwards is what it was plus their own writes. The offboarded tenants keep nothing.
func TestOffboardUnderLoad(t *testing.T) {
	t.Parallel()
	needsServers(t)
	nb, nv := size(3, 6), size(2, 4)
	s := newStack(t, "")
	s.startWorker("worker")
	bystanders, victims := s.onboardAll("stay", nb), s.onboardAll("leave", nv)
	for _, r := range append(bystanders, victims...) {
		s.fill(r)
	}

	// What each bystander reads before the offboardings, byte for byte.
	type snapshot struct {
		theme, conversations []byte
		settings             int
		mongo                map[string]int64
	}
	before := map[string]snapshot{}
	for _, r := range bystanders {
		h := s.holdingsOf(r.tenant)
		before[r.tenant] = snapshot{theme: s.read(r, "/settings/theme"), conversations: s.read(r, "/conversations"),
			settings: h.Postgres["tenant_settings"], mongo: h.Mongo}
	}

	var reads, writes, failures atomic.Int64
	var firstFailure atomic.Value
	fail := func(format string, args ...any) {
		failures.Add(1)
		firstFailure.CompareAndSwap(nil, fmt.Sprintf(format, args...))
	}
	lastWrite := make([]int, len(bystanders))
	stop := make(chan struct{})
	started := sync.WaitGroup{}
	var wg sync.WaitGroup
	for i, r := range bystanders {
		snap := before[r.tenant]
		started.Add(2)
		wg.Go(func() { // reader
			for n := 0; ; n++ {
				if n == 1 {
					started.Done()
				}
				select {
				case <-stop:
					return
				default:
				}
				path, want := "/settings/theme", snap.theme
				if n%2 == 1 {
					path, want = "/conversations", snap.conversations
				}
				code, body, err := s.signed(r.tenant, r.secret, http.MethodGet, path, nil)
				switch {
				case err != nil || code != http.StatusOK:
					fail("%s GET %s: %d %v %s", r.tenant, path, code, err, body)
				case !bytes.Equal(body, want):
					fail("%s GET %s changed: %s, was %s", r.tenant, path, body, want)
				default:
					reads.Add(1)
				}
			}
		})
		wg.Go(func() { // writer: its own key, one value after another
			for n := 1; ; n++ {
				if n == 2 {
					started.Done()
				}
				select {
				case <-stop:
					return
				default:
				}
				code, body, err := s.signed(r.tenant, r.secret, http.MethodPut, "/settings/load", []byte(`{"value":`+strconv.Itoa(n)+`}`))
				if err != nil || code != http.StatusOK {
					fail("%s PUT /settings/load: %d %v %s", r.tenant, code, err, body)
					continue
				}
				writes.Add(1)
				lastWrite[i] = n
			}
		})
	}
	started.Wait() // every loader has a request behind it

	var offboards []run
	for _, r := range victims {
		offboards = append(offboards, runOf(r.tenant, s.must(http.StatusAccepted, http.MethodPost, api.TenantsPath+"/"+r.tenant+"/offboard", "")))
	}
	done := s.waitAll(offboards)
	close(stop)
	wg.Wait()
	require.Equal(t, nv, done, "every offboarding completes")
	require.Zero(t, failures.Load(), "other tenants' requests during offboarding; first: %v", firstFailure.Load())
	require.Positive(t, reads.Load())
	require.Positive(t, writes.Load())

	// The offboarded tenants keep nothing; the others exactly their data plus their own writes.
	var gone tally
	for _, r := range victims {
		require.Equal(t, tenant.StatusOffboarded, s.status(r.tenant), r.tenant)
		h := s.holdingsOf(r.tenant)
		require.Empty(t, h.Postgres, "%s: PostgreSQL rows left", r.tenant)
		require.Zero(t, h.MongoDBs, "%s: MongoDB database left", r.tenant)
		require.Empty(t, h.RedisKeys, "%s: Redis keys left", r.tenant)
		gone.tenants++
	}
	var kept tally
	for i, r := range bystanders {
		snap := before[r.tenant]
		require.Equal(t, tenant.StatusActive, s.status(r.tenant))
		require.Equal(t, snap.theme, s.read(r, "/settings/theme"), r.tenant)
		require.Equal(t, snap.conversations, s.read(r, "/conversations"), r.tenant)
		var load struct{ Value json.RawMessage }
		require.NoError(t, json.Unmarshal(s.read(r, "/settings/load"), &load))
		require.Equal(t, strconv.Itoa(lastWrite[i]), string(load.Value), "%s: its last write", r.tenant)
		h := s.holdingsOf(r.tenant)
		require.Equal(t, snap.settings+1, h.Postgres["tenant_settings"], "%s: its settings and its own new key", r.tenant)
		require.Equal(t, snap.mongo["conversations"], h.Mongo["conversations"], r.tenant)
		require.Equal(t, snap.mongo["messages"], h.Mongo["messages"], r.tenant)
		s.checkChain(r.tenant, h.Events)
		kept.add(h)
		kept.chains++
	}
	s.logf("%d tenants offboarded (no row, database or key left) while %d others made %d signed reads and %d signed writes: 0 failed, 0 reads changed; their data is theirs plus their writes; %s",
		nv, nb, reads.Load(), writes.Load(), kept)
}

// fill gives a tenant data of its own through the signed tenant API: a setting, a
// conversation with a message.
func (s *stack) fill(r run) {
	s.t.Helper()
	code, body, err := s.signed(r.tenant, r.secret, http.MethodPut, "/settings/theme", []byte(`{"value":"dark-`+r.tenant+`"}`))
	require.NoError(s.t, err)
	require.Equal(s.t, http.StatusOK, code, "%s", body)
	code, body, err = s.signed(r.tenant, r.secret, http.MethodPost, "/conversations", []byte(`{"title":"support"}`))
	require.NoError(s.t, err)
	require.Equal(s.t, http.StatusCreated, code, "%s", body)
	var conv struct{ ID string }
	require.NoError(s.t, json.Unmarshal(body, &conv))
	code, body, err = s.signed(r.tenant, r.secret, http.MethodPost, "/conversations/"+conv.ID+"/messages", []byte(`{"role":"user","text":"hello"}`))
	require.NoError(s.t, err)
	require.Equal(s.t, http.StatusCreated, code, "%s", body)
}

// read is a signed GET that must answer 200.
func (s *stack) read(r run, path string) []byte {
	s.t.Helper()
	code, body, err := s.signed(r.tenant, r.secret, http.MethodGet, path, nil)
	require.NoError(s.t, err)
	require.Equal(s.t, http.StatusOK, code, "%s GET %s: %s", r.tenant, path, body)
	return body
}
