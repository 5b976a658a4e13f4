package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/misybot/tenancy/api"
	"github.com/misybot/tenancy/internal/keys/signing"
)

// The signed tenant API read (GET /api/tenant/v1/settings/:key, with its signature, nonce,
// context record, secret and RLS read) against a bare Echo handler answering the same shape of
// JSON from memory, both served over loopback HTTP by this process and driven by the same load
// generator at the same concurrency: their throughput ratio is what authentication, isolation
// and the database read cost per request.

// loadResult is one load run: requests completed in a fixed time at a fixed concurrency.
type loadResult struct {
	Name        string        `json:"name"`
	Concurrency int           `json:"concurrency"`
	Requests    int64         `json:"requests"`
	Elapsed     time.Duration `json:"elapsedNs"`
	Throughput  float64       `json:"requestsPerSecond"`
	P50         float64       `json:"p50Ms"`
	P99         float64       `json:"p99Ms"`
}

// load sends requests made by mk from conc goroutines for d, and fails on the first answer
// other than 200.
func load(name string, conc int, d time.Duration, mk func() (*http.Request, error)) (loadResult, error) {
	say(fmt.Sprintf("%s: %d clients for %s", name, conc, d))
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc}}
	defer client.CloseIdleConnections()
	var (
		count    atomic.Int64
		firstErr error
		mu       sync.Mutex
		wg       sync.WaitGroup
		lats     = make([][]float64, conc)
	)
	deadline := time.Now().Add(d)
	start := time.Now()
	for g := range conc {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				req, err := mk()
				if err == nil {
					t0 := time.Now()
					var res *http.Response
					res, err = client.Do(req)
					if err == nil {
						_, _ = io.Copy(io.Discard, res.Body)
						_ = res.Body.Close()
						if res.StatusCode != http.StatusOK {
							err = fmt.Errorf("%s: status %d", name, res.StatusCode)
						}
					}
					lats[g] = append(lats[g], float64(time.Since(t0).Microseconds())/1000)
				}
				if err != nil {
					mu.Lock()
					firstErr = cmpErr(firstErr, err)
					mu.Unlock()
					return
				}
				count.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []float64
	for _, l := range lats {
		all = append(all, l...)
	}
	sortFloats(all)
	r := loadResult{Name: name, Concurrency: conc, Requests: count.Load(), Elapsed: elapsed,
		Throughput: float64(count.Load()) / elapsed.Seconds(), P50: quantile(all, 0.5), P99: quantile(all, 0.99)}
	if firstErr == nil {
		say(fmt.Sprintf("  %.0f requests/s, p50 %.2f ms, p99 %.2f ms", r.Throughput, r.P50, r.P99))
	}
	return r, firstErr
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// bareServer serves GET /bare/settings/:key: an Echo handler with no middleware answering the
// JSON a setting read answers, from memory.
func bareServer() *httptest.Server {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.GET("/bare/settings/:key", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]any{"key": c.Param("key"), "value": "dark", "updatedAt": time.Now().UTC()})
	})
	return httptest.NewServer(e)
}

// tenantAPIRead compares the signed read with the bare handler, conc clients for d each, the
// bare handler first and last (the report takes the mean of its two runs, so a machine that
// slows during the measurement does not favour either side).
func (b *bench) tenantAPIRead(ctx context.Context, conc int, d time.Duration) (signed, bare loadResult, err error) {
	id, secret, err := b.onboardWithSecret(ctx)
	if err != nil {
		return signed, bare, err
	}
	const key = "theme"
	if err := b.signedDo(ctx, id, secret, http.MethodPut, api.TenantAPIPath+"/settings/"+key, `{"value":"dark"}`); err != nil {
		return signed, bare, fmt.Errorf("write the setting to read: %w", err)
	}
	srv := bareServer()
	defer srv.Close()
	bareReq := func() (*http.Request, error) {
		return http.NewRequest(http.MethodGet, srv.URL+"/bare/settings/"+key, nil)
	}
	signedReq := func() (*http.Request, error) {
		return b.signedRequest(id, secret, http.MethodGet, api.TenantAPIPath+"/settings/"+key, "")
	}
	bare1, err := load("bare Echo handler", conc, d, bareReq)
	if err != nil {
		return signed, bare, err
	}
	if signed, err = load("signed tenant API read", conc, d, signedReq); err != nil {
		return signed, bare, err
	}
	bare2, err := load("bare Echo handler, again", conc, d, bareReq)
	if err != nil {
		return signed, bare, err
	}
	bare = bare1
	bare.Name = "bare Echo handler (mean of the runs before and after)"
	bare.Requests += bare2.Requests
	bare.Elapsed += bare2.Elapsed
	bare.Throughput = (bare1.Throughput + bare2.Throughput) / 2
	bare.P50, bare.P99 = (bare1.P50+bare2.P50)/2, (bare1.P99+bare2.P99)/2
	return signed, bare, nil
}

// signedRequest builds a request of the tenant API signed with the tenant's secret, as
// scripts/tenant-request.sh does: a fresh nonce each time.
func (b *bench) signedRequest(id, secret, method, path, body string) (*http.Request, error) {
	var bodyReader io.Reader
	if body != "" {
		bodyReader = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, b.url+path, bodyReader)
	if err != nil {
		return nil, err
	}
	n := make([]byte, 16)
	_, _ = rand.Read(n)
	nonce := hex.EncodeToString(n)
	ts := time.Now().Unix()
	mac := signing.MAC([]byte(secret), signing.Canonical(method, path, "", ts, nonce, []byte(body)))
	req.Header.Set(signing.HeaderTenant, id)
	req.Header.Set(signing.HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(signing.HeaderNonce, nonce)
	req.Header.Set(signing.HeaderSignature, signing.Header(mac))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

func (b *bench) signedDo(ctx context.Context, id, secret, method, path, body string) error {
	req, err := b.signedRequest(id, secret, method, path, body)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		return err
	}
	raw, _ := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if res.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, path, res.StatusCode, raw)
	}
	return nil
}
