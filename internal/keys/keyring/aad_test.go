package keyring

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"testing"
	"time"

	"github.com/misybot/tenancy/internal/model/tenant"
)

// The associated data alone must stop a ciphertext moved to another tenant, field or version:
// here both tenants are given the very same data key (through the cache), so only the
// associated data can tell them apart.
func TestAssociatedDataBindsTenantFieldAndVersion(t *testing.T) {
	t.Parallel()
	block, _ := aes.NewCipher(bytes.Repeat([]byte{1}, 32))
	aead, _ := cipher.NewGCM(block)
	k := &Keyring{now: time.Now}
	for _, id := range []string{"acme", "beta"} {
		for _, v := range []int{1, 2} {
			k.keys.Store(keyID{tenant: id, version: v}, cachedKey{aead: aead, at: time.Now()})
		}
		k.newest.Store(id, cachedVersion{version: 1, at: time.Now()})
	}
	a, b := tenant.WithID(context.Background(), "acme"), tenant.WithID(context.Background(), "beta")

	ct, err := k.Encrypt(a, "messages.text", []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := k.Decrypt(a, "messages.text", ct); err != nil || string(pt) != "hello" {
		t.Fatalf("round trip: %q, %v", pt, err)
	}
	if _, err := k.Decrypt(b, "messages.text", ct); !errors.Is(err, ErrCiphertext) {
		t.Fatalf("another tenant with the same key opened it: %v", err)
	}
	if _, err := k.Decrypt(a, "settings.value", ct); !errors.Is(err, ErrCiphertext) {
		t.Fatalf("another field opened it: %v", err)
	}
	relabeled := bytes.Clone(ct)
	relabeled[4] = 2 // claim key version 2 (same key here)
	if _, err := k.Decrypt(a, "messages.text", relabeled); !errors.Is(err, ErrCiphertext) {
		t.Fatalf("a relabeled version opened it: %v", err)
	}
}
