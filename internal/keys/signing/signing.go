// Package signing is the HMAC request signature of the tenant API.
//
// A tenant signs each request with its secret (the 64-character hex string it received at
// registration, used as the HMAC key as is: its ASCII bytes):
//
//	X-Tenant-Id:  <tenantId>
//	X-Timestamp:  <unix seconds>
//	X-Nonce:      <16 to 64 characters of [A-Za-z0-9_-], never reused>
//	X-Signature:  v1=<hex HMAC-SHA256(secret, canonical)>
//
//	canonical = METHOD "\n" PATH ["?" QUERY] "\n" TIMESTAMP "\n" NONCE "\n" hex(SHA-256(body))
//
// PATH is the request path as sent (escaped form), QUERY the raw query string exactly as sent,
// with the "?" only when the query is not empty; the body hash covers the raw bytes (the hash of
// the empty string for no body). The version prefix lets a later scheme coexist.
package signing

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names.
const (
	HeaderTenant    = "X-Tenant-Id"
	HeaderTimestamp = "X-Timestamp"
	HeaderNonce     = "X-Nonce"
	HeaderSignature = "X-Signature"
)

// MaxSkew is how far a request's timestamp may be from the server's clock, either way.
const MaxSkew = 300 * time.Second

// Reasons a request is refused, stable strings the API returns.
var (
	ErrMissingHeader    = errors.New("missing signature header")
	ErrMalformedHeader  = errors.New("malformed signature header")
	ErrStaleTimestamp   = errors.New("timestamp outside the allowed window")
	ErrBadSignature     = errors.New("signature does not match")
	ErrUnsupportedAlgID = errors.New("unsupported signature version")
)

// Headers are the parsed signature headers of a request.
type Headers struct {
	TenantID  string
	Timestamp int64
	Nonce     string
	Signature []byte
}

// ParseHeaders reads and checks the shape of the four headers. It does not check the tenant id
// against the tenant rules; the caller does.
func ParseHeaders(h http.Header) (Headers, error) {
	var out Headers
	get := func(name string) (string, error) {
		vs := h.Values(name)
		switch {
		case len(vs) == 0 || vs[0] == "":
			return "", fmt.Errorf("%w: %s", ErrMissingHeader, name)
		case len(vs) > 1:
			return "", fmt.Errorf("%w: %s sent more than once", ErrMalformedHeader, name)
		}
		return vs[0], nil
	}
	var err error
	if out.TenantID, err = get(HeaderTenant); err != nil {
		return Headers{}, err
	}
	ts, err := get(HeaderTimestamp)
	if err != nil {
		return Headers{}, err
	}
	if out.Timestamp, err = ParseTimestamp(ts); err != nil {
		return Headers{}, err
	}
	if out.Nonce, err = get(HeaderNonce); err != nil {
		return Headers{}, err
	}
	if err := checkNonce(out.Nonce); err != nil {
		return Headers{}, err
	}
	sig, err := get(HeaderSignature)
	if err != nil {
		return Headers{}, err
	}
	if out.Signature, err = ParseSignature(sig); err != nil {
		return Headers{}, err
	}
	return out, nil
}

// ParseTimestamp accepts unix seconds as plain decimal digits (no sign, no spaces, no leading
// zero, at most 12): exactly the form strconv.FormatInt gives back, so the timestamp signed
// and the one the server puts in the canonical string cannot differ.
func ParseTimestamp(s string) (int64, error) {
	if s == "" || len(s) > 12 || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("%w: %s must be unix seconds", ErrMalformedHeader, HeaderTimestamp)
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0, fmt.Errorf("%w: %s must be unix seconds", ErrMalformedHeader, HeaderTimestamp)
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

func checkNonce(n string) error {
	if len(n) < 16 || len(n) > 64 {
		return fmt.Errorf("%w: %s must be 16 to 64 characters", ErrMalformedHeader, HeaderNonce)
	}
	for _, r := range n {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return fmt.Errorf("%w: %s may hold only letters, digits, '-' and '_'", ErrMalformedHeader, HeaderNonce)
		}
	}
	return nil
}

// ParseSignature parses "v1=<64 hex digits>" into the 32-byte MAC.
func ParseSignature(s string) ([]byte, error) {
	version, value, ok := strings.Cut(s, "=")
	if !ok {
		return nil, fmt.Errorf("%w: %s must be v1=<hex>", ErrMalformedHeader, HeaderSignature)
	}
	if version != "v1" {
		return nil, fmt.Errorf("%w: %q", ErrUnsupportedAlgID, version)
	}
	if len(value) != 2*sha256.Size {
		return nil, fmt.Errorf("%w: %s must carry 64 hex digits", ErrMalformedHeader, HeaderSignature)
	}
	mac, err := hex.DecodeString(value)
	if err != nil {
		return nil, fmt.Errorf("%w: %s must carry 64 hex digits", ErrMalformedHeader, HeaderSignature)
	}
	return mac, nil
}

// CheckTime refuses a timestamp more than MaxSkew away from now.
func CheckTime(ts int64, now time.Time) error {
	d := now.Sub(time.Unix(ts, 0))
	if d > MaxSkew || d < -MaxSkew {
		return ErrStaleTimestamp
	}
	return nil
}

// Canonical builds the signed string.
func Canonical(method, path, rawQuery string, timestamp int64, nonce string, body []byte) string {
	sum := sha256.Sum256(body)
	target := path
	if rawQuery != "" {
		target += "?" + rawQuery
	}
	return method + "\n" + target + "\n" + strconv.FormatInt(timestamp, 10) + "\n" + nonce + "\n" + hex.EncodeToString(sum[:])
}

// MAC is HMAC-SHA256 of canonical under secret.
func MAC(secret []byte, canonical string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(canonical))
	return m.Sum(nil)
}

// Header formats a MAC as the X-Signature value.
func Header(mac []byte) string { return "v1=" + hex.EncodeToString(mac) }

// Verify compares the request's MAC with the MAC under each candidate secret (the current one
// and, during a rotation's overlap, the previous one) in constant time. It returns the index of
// the secret that matched.
func Verify(secrets [][]byte, canonical string, got []byte) (int, error) {
	matched := -1
	for i, s := range secrets {
		if hmac.Equal(MAC(s, canonical), got) && matched < 0 {
			matched = i
		}
	}
	if matched < 0 {
		return -1, ErrBadSignature
	}
	return matched, nil
}
