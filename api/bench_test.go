package api_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/misybot/tenancy/api"
	"github.com/misybot/tenancy/internal/keys/signing"
)

// BenchmarkSignatureVerification measures a signed GET /me (header parsing, time window, the
// tenant's Redis context record, cached secret, HMAC, Redis SET NX of the nonce, registry read)
// against the same request's handler work without the signature layer, in one run: the first
// over the second is the cost of authentication per request. Also the bare HMAC check alone.
func BenchmarkSignatureVerification(b *testing.B) {
	bb := setup(b)
	a := bb.provision(b, "bench-sig", allPerms, nil)

	b.Run("signed-request", func(b *testing.B) {
		for b.Loop() {
			ts := time.Now().Unix()
			n := nonce()
			req := httptest.NewRequest(http.MethodGet, api.TenantAPIPath+"/me", nil)
			c := signing.Canonical(http.MethodGet, api.TenantAPIPath+"/me", "", ts, n, nil)
			req.Header.Set(signing.HeaderTenant, a.id)
			req.Header.Set(signing.HeaderTimestamp, strconv.FormatInt(ts, 10))
			req.Header.Set(signing.HeaderNonce, n)
			req.Header.Set(signing.HeaderSignature, signing.Header(signing.MAC([]byte(a.secret), c)))
			rec := httptest.NewRecorder()
			bb.e.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("status %d: %s", rec.Code, rec.Body.String())
			}
		}
	})
	b.Run("operator-request-same-read", func(b *testing.B) {
		for b.Loop() {
			req := httptest.NewRequest(http.MethodGet, api.TenantsPath+"/"+a.id, nil)
			req.Header.Set("Authorization", "Bearer "+token)
			rec := httptest.NewRecorder()
			bb.e.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("status %d", rec.Code)
			}
		}
	})
	secret := []byte(a.secret)
	canonical := signing.Canonical(http.MethodGet, "/me", "", time.Now().Unix(), nonce(), nil)
	mac := signing.MAC(secret, canonical)
	b.Run("hmac-verify-only", func(b *testing.B) {
		for b.Loop() {
			if _, err := signing.Verify([][]byte{secret}, canonical, mac); err != nil {
				b.Fatal(err)
			}
		}
	})
}
