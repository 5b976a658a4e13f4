// Package seal encrypts small tenant secrets at rest with AES-256-GCM under a key derived per
// tenant from TENANT_MASTER_KEY.
//
// Key derivation is HKDF-SHA256 (RFC 5869), not PBKDF2: the master key is 32 random bytes, not a
// password, so a deliberately slow derivation adds no strength; HKDF gives independent keys per
// tenant in microseconds. Derived keys are still cached, because a request path should not
// derive at all.
//
// Every ciphertext carries associated data binding the tenant id and the field name, so a value
// copied into another tenant's row or into another column fails to open instead of decrypting.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
)

// version is the first byte of every sealed value, so a later scheme can coexist with this one.
const version byte = 1

const nonceSize = 12

// ErrOpen is returned for any ciphertext that cannot be opened: wrong tenant, wrong field,
// tampered bytes or wrong master key. The causes are deliberately not distinguished.
var ErrOpen = errors.New("seal: cannot open value")

// Sealer seals and opens values for any tenant. Safe for concurrent use.
type Sealer struct {
	master []byte
	aeads  sync.Map // tenant id -> cipher.AEAD
}

// New returns a Sealer for a 32-byte master key.
func New(masterKey []byte) (*Sealer, error) {
	if len(masterKey) != 32 {
		return nil, fmt.Errorf("seal: master key must be 32 bytes, got %d", len(masterKey))
	}
	return &Sealer{master: append([]byte(nil), masterKey...)}, nil
}

func (s *Sealer) aead(tenantID string) (cipher.AEAD, error) {
	if a, ok := s.aeads.Load(tenantID); ok {
		return a.(cipher.AEAD), nil
	}
	key, err := hkdf.Key(sha256.New, s.master, nil, "misybot-tenancy/v1/tenant-key/"+tenantID, 32)
	if err != nil {
		return nil, fmt.Errorf("seal: derive key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	a, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	actual, _ := s.aeads.LoadOrStore(tenantID, a)
	return actual.(cipher.AEAD), nil
}

func associatedData(tenantID, field string) []byte {
	return []byte("tenant=" + tenantID + "\x00field=" + field)
}

// Seal encrypts plaintext for one tenant and field: version || nonce || ciphertext+tag.
func (s *Sealer) Seal(tenantID, field string, plaintext []byte) ([]byte, error) {
	a, err := s.aead(tenantID)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+nonceSize, 1+nonceSize+len(plaintext)+a.Overhead())
	out[0] = version
	if _, err := rand.Read(out[1 : 1+nonceSize]); err != nil {
		return nil, fmt.Errorf("seal: nonce: %w", err)
	}
	return a.Seal(out, out[1:1+nonceSize], plaintext, associatedData(tenantID, field)), nil
}

// Open decrypts a value sealed by Seal for the same tenant and field.
func (s *Sealer) Open(tenantID, field string, sealed []byte) ([]byte, error) {
	if len(sealed) < 1+nonceSize || sealed[0] != version {
		return nil, ErrOpen
	}
	a, err := s.aead(tenantID)
	if err != nil {
		return nil, err
	}
	plain, err := a.Open(nil, sealed[1:1+nonceSize], sealed[1+nonceSize:], associatedData(tenantID, field))
	if err != nil {
		return nil, ErrOpen
	}
	return plain, nil
}

// PurposeKey derives a 32-byte key for one purpose other than sealing (for example the audit
// trail's HMAC key), with HKDF-SHA256 from the master key. The info string lives in its own
// namespace ("purpose-key/"), so no purpose key can equal a tenant's sealing key, and keys of
// different purposes are independent: a leaked purpose key opens no sealed value.
func (s *Sealer) PurposeKey(purpose string) []byte {
	key, err := hkdf.Key(sha256.New, s.master, nil, "misybot-tenancy/v1/purpose-key/"+purpose, 32)
	if err != nil {
		// hkdf.Key fails only for an output longer than 255 hash lengths; 32 bytes cannot.
		panic("seal: derive purpose key: " + err.Error())
	}
	return key
}
