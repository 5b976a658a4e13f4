package keyring_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/internal/keys/keyring"
	"github.com/misybot/tenancy/internal/keys/seal"
	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/testkit/testenv"
)

func newKeyring(t testing.TB) (*keyring.Keyring, *pgxpool.Pool) {
	t.Helper()
	sealer, err := seal.New(bytes.Repeat([]byte{4}, 32))
	require.NoError(t, err)
	return keyring.New(testenv.AppPool(t), sealer), testenv.OwnerPool(t)
}

func register(t testing.TB, owner *pgxpool.Pool, prefix string) context.Context {
	t.Helper()
	id := testenv.TenantID(prefix)
	_, err := owner.Exec(context.Background(), `INSERT INTO tenants (tenant_id, site_id, tenant_name, contact_email, tenant_type, secret_ciphertext)
		VALUES ($1, 's', 'n', 'x@y.zz', 'trial', '\x01')`, id)
	require.NoError(t, err)
	return tenant.WithID(context.Background(), id)
}

func TestEncryptDecryptRotateDestroy(t *testing.T) {
	t.Parallel()
	kr, owner := newKeyring(t)
	a, b := register(t, owner, "kra"), register(t, owner, "krb")
	for _, ctx := range []context.Context{a, b} {
		created, err := kr.Ensure(ctx)
		require.NoError(t, err)
		require.True(t, created)
		created, err = kr.Ensure(ctx)
		require.NoError(t, err)
		require.False(t, created, "Ensure twice keeps the first key")
	}

	ct, err := kr.Encrypt(a, "messages.text", []byte("hello"))
	require.NoError(t, err)
	require.NotContains(t, string(ct), "hello")
	pt, err := kr.Decrypt(a, "messages.text", ct)
	require.NoError(t, err)
	require.Equal(t, "hello", string(pt))

	// Moved to another tenant or field, or tampered: refused.
	_, err = kr.Decrypt(b, "messages.text", ct)
	require.ErrorIs(t, err, keyring.ErrCiphertext)
	_, err = kr.Decrypt(a, "settings.value", ct)
	require.ErrorIs(t, err, keyring.ErrCiphertext)
	bad := bytes.Clone(ct)
	bad[len(bad)-1] ^= 1
	_, err = kr.Decrypt(a, "messages.text", bad)
	require.ErrorIs(t, err, keyring.ErrCiphertext)

	// Rotation: new writes use v2, v1 still decrypts.
	v, err := kr.Rotate(a)
	require.NoError(t, err)
	require.Equal(t, 2, v)
	ct2, err := kr.Encrypt(a, "messages.text", []byte("after"))
	require.NoError(t, err)
	got, _ := keyring.Version(ct2)
	require.Equal(t, 2, got)
	pt, err = kr.Decrypt(a, "messages.text", ct)
	require.NoError(t, err)
	require.Equal(t, "hello", string(pt), "the old version still decrypts")

	// Destruction: nothing of A decrypts any more; B is unaffected.
	ctB, err := kr.Encrypt(b, "messages.text", []byte("bee"))
	require.NoError(t, err)
	n, err := kr.Destroy(a)
	require.NoError(t, err)
	require.EqualValues(t, 2, n)
	for _, c := range [][]byte{ct, ct2} {
		_, err = kr.Decrypt(a, "messages.text", c)
		require.ErrorIs(t, err, keyring.ErrCiphertext)
	}
	_, err = kr.Encrypt(a, "messages.text", []byte("x"))
	require.ErrorIs(t, err, keyring.ErrNoKey)
	pt, err = kr.Decrypt(b, "messages.text", ctB)
	require.NoError(t, err)
	require.Equal(t, "bee", string(pt))

	// A second keyring (another process) cannot decrypt after destruction either: nothing is cached there.
	other, _ := newKeyring(t)
	_, err = other.Decrypt(a, "messages.text", ct)
	require.ErrorIs(t, err, keyring.ErrCiphertext)

	_, err = kr.Encrypt(context.Background(), "f", []byte("x"))
	require.ErrorIs(t, err, tenant.ErrNoTenant)
}

// BenchmarkEncryption: the keyring's path with a cached tenant key against raw AES-256-GCM
// under the same key, 1 KiB, in one run.
func BenchmarkEncryption(b *testing.B) {
	kr, owner := newKeyring(b)
	ctx := register(b, owner, "bench-kr")
	_, err := kr.Ensure(ctx)
	require.NoError(b, err)
	msg := make([]byte, 1024)
	_, _ = rand.Read(msg)
	ct, err := kr.Encrypt(ctx, "bench", msg) // warms the cache
	require.NoError(b, err)

	id, _ := tenant.IDFrom(ctx)
	aead, err := kr.CachedAEAD(ctx, id, 1) // the tenant's own data key: same key, raw path
	require.NoError(b, err)
	nonce := make([]byte, aead.NonceSize())
	rawCT := aead.Seal(nil, nonce, msg, nil)

	b.Run("encrypt/tenant-cached", func(b *testing.B) {
		b.SetBytes(1024)
		for b.Loop() {
			if _, err := kr.Encrypt(ctx, "bench", msg); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encrypt/raw-aes-gcm", func(b *testing.B) {
		b.SetBytes(1024)
		for b.Loop() {
			_, _ = rand.Read(nonce)
			_ = aead.Seal(nil, nonce, msg, nil)
		}
	})
	b.Run("decrypt/tenant-cached", func(b *testing.B) {
		b.SetBytes(1024)
		for b.Loop() {
			if _, err := kr.Decrypt(ctx, "bench", ct); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decrypt/raw-aes-gcm", func(b *testing.B) {
		b.SetBytes(1024)
		clear(nonce)
		for b.Loop() {
			if _, err := aead.Open(nil, nonce, rawCT, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}
