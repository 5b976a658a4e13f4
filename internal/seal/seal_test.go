package seal_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/misybot/tenancy/internal/seal"
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
