package seal_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/misybot/tenancy/internal/keys/seal"
	"github.com/stretchr/testify/require"
)

func newSealer(t *testing.T, b byte) *seal.Sealer {
	t.Helper()
	s, err := seal.New(bytes.Repeat([]byte{b}, 32))
	require.NoError(t, err)
	return s
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	s := newSealer(t, 1)
	sealed, err := s.Seal("acme", "tenant_secret", []byte("hunter2"))
	require.NoError(t, err)
	require.NotContains(t, string(sealed), "hunter2")

	plain, err := s.Open("acme", "tenant_secret", sealed)
	require.NoError(t, err)
	require.Equal(t, "hunter2", string(plain))

	again, err := s.Seal("acme", "tenant_secret", []byte("hunter2"))
	require.NoError(t, err)
	require.NotEqual(t, sealed, again, "a fresh nonce must make each sealing differ")
}

// A ciphertext moved to another tenant, another field, or opened under another master key must
// fail, and so must any flipped byte.
func TestOpenRefusesMovedOrTamperedValues(t *testing.T) {
	t.Parallel()
	s := newSealer(t, 1)
	sealed, err := s.Seal("acme", "tenant_secret", []byte("hunter2"))
	require.NoError(t, err)

	_, err = s.Open("acme2", "tenant_secret", sealed)
	require.ErrorIs(t, err, seal.ErrOpen)
	_, err = s.Open("acme", "other_field", sealed)
	require.ErrorIs(t, err, seal.ErrOpen)
	_, err = newSealer(t, 2).Open("acme", "tenant_secret", sealed)
	require.ErrorIs(t, err, seal.ErrOpen)

	for i := range sealed {
		tampered := bytes.Clone(sealed)
		tampered[i] ^= 0x01
		_, err := s.Open("acme", "tenant_secret", tampered)
		require.Truef(t, errors.Is(err, seal.ErrOpen), "byte %d flipped but value opened", i)
	}
	_, err = s.Open("acme", "tenant_secret", sealed[:5])
	require.ErrorIs(t, err, seal.ErrOpen)
}

func TestNewRejectsShortKey(t *testing.T) {
	t.Parallel()
	_, err := seal.New([]byte("short"))
	require.Error(t, err)
}

// Purpose keys are stable for one master key and purpose, and differ across purposes and
// master keys.
func TestPurposeKey(t *testing.T) {
	t.Parallel()
	a, b := newSealer(t, 1), newSealer(t, 2)
	k := a.PurposeKey("audit-chain")
	require.Len(t, k, 32)
	require.Equal(t, k, a.PurposeKey("audit-chain"), "deterministic")
	require.NotEqual(t, k, a.PurposeKey("other"), "independent per purpose")
	require.NotEqual(t, k, b.PurposeKey("audit-chain"), "independent per master key")
}

// Master key rotation: a Sealer with versions 1 and 2 opens values sealed under either, seals
// under the current one, and re-seals old values; one that lacks a version cannot open its
// values.
func TestMasterKeyVersions(t *testing.T) {
	t.Parallel()
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	old, err := seal.New(k1)
	require.NoError(t, err)
	v1, err := old.Seal("acme", "secret", []byte("s3cret"))
	require.NoError(t, err)
	ver, ok := seal.SealedVersion(v1)
	require.True(t, ok)
	require.Equal(t, 1, ver)

	both, err := seal.NewKeyring(2, map[int][]byte{1: k1, 2: k2})
	require.NoError(t, err)
	require.Equal(t, 2, both.Version())
	require.Equal(t, []int{1, 2}, both.Versions())
	plain, err := both.Open("acme", "secret", v1)
	require.NoError(t, err)
	require.Equal(t, "s3cret", string(plain))

	v2, changed, err := both.Reseal("acme", "secret", v1)
	require.NoError(t, err)
	require.True(t, changed)
	ver, _ = seal.SealedVersion(v2)
	require.Equal(t, 2, ver)
	again, changed, err := both.Reseal("acme", "secret", v2)
	require.NoError(t, err)
	require.False(t, changed, "already under the current version")
	require.Equal(t, v2, again)

	_, err = old.Open("acme", "secret", v2)
	require.ErrorIs(t, err, seal.ErrOpen, "a process without version 2 cannot open it")
	onlyNew, err := seal.NewKeyring(2, map[int][]byte{2: k2})
	require.NoError(t, err)
	_, err = onlyNew.Open("acme", "secret", v1)
	require.ErrorIs(t, err, seal.ErrOpen, "version 1 retired")
	_, err = onlyNew.Open("other", "secret", v2)
	require.ErrorIs(t, err, seal.ErrOpen, "still bound to its tenant")
	require.NotEqual(t, old.PurposeKey("audit-chain"), both.PurposeKey("audit-chain"))
	require.Equal(t, old.PurposeKey("audit-chain"), both.PurposeKeyOf(1, "audit-chain"))

	_, err = seal.NewKeyring(3, map[int][]byte{1: k1})
	require.Error(t, err, "no key of the current version")
	_, err = seal.NewKeyring(1, map[int][]byte{1: k1[:16]})
	require.Error(t, err)
}
