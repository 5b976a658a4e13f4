package signing_test

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/internal/keys/signing"
)

func TestCanonical(t *testing.T) {
	t.Parallel()
	got := signing.Canonical("POST", "/api/tenant/v1/settings/theme", "a=1&b=2", 1700000000, "nonce-0123456789ab", []byte(`{"value":1}`))
	require.Equal(t, "POST\n/api/tenant/v1/settings/theme?a=1&b=2\n1700000000\nnonce-0123456789ab\n"+
		"48208f9428d64634bd8e28ff345bf0eab60d53c18fa2fbdb0b9bc1e84df2b5f6", got, "the body hash is sha256sum of the raw body")
	require.Equal(t, "GET\n/me\n1\nn\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", signing.Canonical("GET", "/me", "", 1, "n", nil))
}

func TestVerify(t *testing.T) {
	t.Parallel()
	current, previous := []byte("current-secret"), []byte("previous-secret")
	c := signing.Canonical("GET", "/x", "", 1, "n", nil)
	i, err := signing.Verify([][]byte{current, previous}, c, signing.MAC(previous, c))
	require.NoError(t, err)
	require.Equal(t, 1, i)
	_, err = signing.Verify([][]byte{current}, c, signing.MAC(previous, c))
	require.ErrorIs(t, err, signing.ErrBadSignature)
	tampered := signing.Canonical("GET", "/y", "", 1, "n", nil)
	_, err = signing.Verify([][]byte{current}, tampered, signing.MAC(current, c))
	require.ErrorIs(t, err, signing.ErrBadSignature)
}

func TestCheckTime(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	require.NoError(t, signing.CheckTime(now.Unix()-300, now))
	require.NoError(t, signing.CheckTime(now.Unix()+300, now))
	require.ErrorIs(t, signing.CheckTime(now.Unix()-301, now), signing.ErrStaleTimestamp)
	require.ErrorIs(t, signing.CheckTime(now.Unix()+301, now), signing.ErrStaleTimestamp)
}

func headers(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func TestParseHeaders(t *testing.T) {
	t.Parallel()
	sig := "v1=" + strings.Repeat("ab", 32)
	ok := headers("X-Tenant-Id", "acme", "X-Timestamp", "1700000000", "X-Nonce", "0123456789abcdef", "X-Signature", sig)
	h, err := signing.ParseHeaders(ok)
	require.NoError(t, err)
	require.Equal(t, int64(1700000000), h.Timestamp)
	require.Equal(t, bytes.Repeat([]byte{0xab}, 32), h.Signature)

	for name, hdr := range map[string]http.Header{
		"no tenant":     headers("X-Timestamp", "1", "X-Nonce", "0123456789abcdef", "X-Signature", sig),
		"no signature":  headers("X-Tenant-Id", "acme", "X-Timestamp", "1", "X-Nonce", "0123456789abcdef"),
		"neg timestamp": headers("X-Tenant-Id", "acme", "X-Timestamp", "-5", "X-Nonce", "0123456789abcdef", "X-Signature", sig),
		"leading zero":  headers("X-Tenant-Id", "acme", "X-Timestamp", "01700000000", "X-Nonce", "0123456789abcdef", "X-Signature", sig),
		"float ts":      headers("X-Tenant-Id", "acme", "X-Timestamp", "1.5", "X-Nonce", "0123456789abcdef", "X-Signature", sig),
		"short nonce":   headers("X-Tenant-Id", "acme", "X-Timestamp", "1", "X-Nonce", "short", "X-Signature", sig),
		"nonce spaces":  headers("X-Tenant-Id", "acme", "X-Timestamp", "1", "X-Nonce", "0123456789 abcdef", "X-Signature", sig),
		"v2":            headers("X-Tenant-Id", "acme", "X-Timestamp", "1", "X-Nonce", "0123456789abcdef", "X-Signature", "v2="+strings.Repeat("ab", 32)),
		"short sig":     headers("X-Tenant-Id", "acme", "X-Timestamp", "1", "X-Nonce", "0123456789abcdef", "X-Signature", "v1=abcd"),
		"not hex":       headers("X-Tenant-Id", "acme", "X-Timestamp", "1", "X-Nonce", "0123456789abcdef", "X-Signature", "v1="+strings.Repeat("zz", 32)),
		"twice":         headers("X-Tenant-Id", "acme", "X-Tenant-Id", "other", "X-Timestamp", "1", "X-Nonce", "0123456789abcdef", "X-Signature", sig),
	} {
		_, err := signing.ParseHeaders(hdr)
		require.Error(t, err, name)
		require.True(t, errors.Is(err, signing.ErrMissingHeader) || errors.Is(err, signing.ErrMalformedHeader) || errors.Is(err, signing.ErrUnsupportedAlgID), "%s: %v", name, err)
	}
}

// FuzzParseSignature: never panics; whatever parses is exactly 32 bytes and re-formats to the
// (lowercased) input.
func FuzzParseSignature(f *testing.F) {
	for _, s := range []string{"v1=" + strings.Repeat("ab", 32), "v1=", "=", "v1", "v2=00", "v1=" + strings.Repeat("Z", 64), "v1=" + strings.Repeat("AB", 32), ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		mac, err := signing.ParseSignature(s)
		if err != nil {
			return
		}
		if len(mac) != 32 {
			t.Fatalf("parsed %q into %d bytes", s, len(mac))
		}
		if signing.Header(mac) != strings.ToLower(s) {
			t.Fatalf("round trip of %q gave %q", s, signing.Header(mac))
		}
	})
}

// FuzzParseHeaders: arbitrary header values never panic, and accepted ones respect the limits.
func FuzzParseHeaders(f *testing.F) {
	f.Add("acme", "1700000000", "0123456789abcdef", "v1="+strings.Repeat("ab", 32))
	f.Add("", "99999999999999999999", "x", "v1=")
	f.Fuzz(func(t *testing.T, tenant, ts, nonce, sig string) {
		h, err := signing.ParseHeaders(headers("X-Tenant-Id", tenant, "X-Timestamp", ts, "X-Nonce", nonce, "X-Signature", sig))
		if err != nil {
			return
		}
		if h.Timestamp < 0 || len(h.Nonce) < 16 || len(h.Nonce) > 64 || len(h.Signature) != 32 {
			t.Fatalf("accepted out-of-bounds headers %+v", h)
		}
	})
}
