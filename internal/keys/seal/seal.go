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
	"slices"
	"sync"
)

// The first byte of every sealed value names its scheme, so schemes coexist:
//
//	1: nonce || ciphertext+tag, under master key version 1 (every value written before master
//	   keys had versions, and every value written while version 1 is current);
//	2: master key version (1 byte) || nonce || ciphertext+tag.
const (
	schemeV1 byte = 1
	schemeV2 byte = 2
)

const nonceSize = 12

// ErrOpen is returned for any ciphertext that cannot be opened: wrong tenant, wrong field,
// tampered bytes or wrong master key. The causes are deliberately not distinguished.
var ErrOpen = errors.New("seal: cannot open value")

// Sealer seals and opens values for any tenant. Safe for concurrent use.
//
// It holds a keyring of master key versions: it seals under the current one and opens under
// any it holds, so a master key can rotate: new values use the new version while old ones
// still open, until a rotation re-seals them (RotateMasterKey).
type Sealer struct {
	masters map[int][]byte
	current int
	aeads   sync.Map // aeadKey -> cipher.AEAD
}

type aeadKey struct {
	version int
	tenant  string
}

// MaxVersion bounds master key versions (one byte in sealed values).
const MaxVersion = 255

// New returns a Sealer for a 32-byte master key, version 1.
func New(masterKey []byte) (*Sealer, error) {
	return NewKeyring(1, map[int][]byte{1: masterKey})
}

// NewKeyring returns a Sealer that seals under masters[current] and opens under any version in
// masters. Every key is 32 bytes; versions are 1 to MaxVersion.
func NewKeyring(current int, masters map[int][]byte) (*Sealer, error) {
	if _, ok := masters[current]; !ok {
		return nil, fmt.Errorf("seal: no master key of the current version %d", current)
	}
	s := &Sealer{masters: map[int][]byte{}, current: current}
	for v, k := range masters {
		if v < 1 || v > MaxVersion {
			return nil, fmt.Errorf("seal: master key version %d is outside 1..%d", v, MaxVersion)
		}
		if len(k) != 32 {
			return nil, fmt.Errorf("seal: master key version %d must be 32 bytes, got %d", v, len(k))
		}
		s.masters[v] = append([]byte(nil), k...)
	}
	return s, nil
}

// Version is the current master key version: what Seal uses.
func (s *Sealer) Version() int { return s.current }

// Versions lists the master key versions this Sealer opens, ascending.
func (s *Sealer) Versions() []int {
	out := make([]int, 0, len(s.masters))
	for v := range s.masters {
		out = append(out, v)
	}
	slices.Sort(out)
	return out
}

// SealedVersion reports the master key version a sealed value was sealed under.
func SealedVersion(sealed []byte) (int, bool) {
	switch {
	case len(sealed) >= 1+nonceSize && sealed[0] == schemeV1:
		return 1, true
	case len(sealed) >= 2+nonceSize && sealed[0] == schemeV2:
		return int(sealed[1]), true
	}
	return 0, false
}

func (s *Sealer) aead(tenantID string) (cipher.AEAD, error) { return s.aeadFor(s.current, tenantID) }

func (s *Sealer) aeadFor(version int, tenantID string) (cipher.AEAD, error) {
	k := aeadKey{version, tenantID}
	if a, ok := s.aeads.Load(k); ok {
		return a.(cipher.AEAD), nil
	}
	master, ok := s.masters[version]
	if !ok {
		return nil, ErrOpen
	}
	// The info string is the same for every version: the master key is what differs.
	key, err := hkdf.Key(sha256.New, master, nil, "misybot-tenancy/v1/tenant-key/"+tenantID, 32)
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
	actual, _ := s.aeads.LoadOrStore(k, a)
	return actual.(cipher.AEAD), nil
}

func associatedData(tenantID, field string) []byte {
	return []byte("tenant=" + tenantID + "\x00field=" + field)
}

// Seal encrypts plaintext for one tenant and field under the current master key version:
// scheme 1 (version 1) or scheme 2 (any other), see the scheme constants.
func (s *Sealer) Seal(tenantID, field string, plaintext []byte) ([]byte, error) {
	a, err := s.aead(tenantID)
	if err != nil {
		return nil, err
	}
	head := []byte{schemeV1}
	if s.current != 1 {
		head = []byte{schemeV2, byte(s.current)}
	}
	out := make([]byte, len(head)+nonceSize, len(head)+nonceSize+len(plaintext)+a.Overhead())
	copy(out, head)
	nonce := out[len(head):]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal: nonce: %w", err)
	}
	return a.Seal(out, nonce, plaintext, associatedData(tenantID, field)), nil
}

// Open decrypts a value sealed by Seal for the same tenant and field, under whichever master
// key version sealed it (ErrOpen when this Sealer does not hold that version).
func (s *Sealer) Open(tenantID, field string, sealed []byte) ([]byte, error) {
	v, ok := SealedVersion(sealed)
	if !ok {
		return nil, ErrOpen
	}
	a, err := s.aeadFor(v, tenantID)
	if err != nil {
		return nil, err
	}
	body := sealed[1:]
	if sealed[0] == schemeV2 {
		body = sealed[2:]
	}
	plain, err := a.Open(nil, body[:nonceSize], body[nonceSize:], associatedData(tenantID, field))
	if err != nil {
		return nil, ErrOpen
	}
	return plain, nil
}

// Reseal re-seals a value under the current master key version; a value already under it is
// returned as it is (changed false).
func (s *Sealer) Reseal(tenantID, field string, sealed []byte) (out []byte, changed bool, err error) {
	if v, ok := SealedVersion(sealed); ok && v == s.current {
		return sealed, false, nil
	}
	plain, err := s.Open(tenantID, field, sealed)
	if err != nil {
		return nil, false, err
	}
	defer clear(plain)
	out, err = s.Seal(tenantID, field, plain)
	return out, err == nil, err
}

// PurposeKey derives a 32-byte key for one purpose other than sealing (for example the audit
// trail's HMAC key), with HKDF-SHA256 from the master key. The info string lives in its own
// namespace ("purpose-key/"), so no purpose key can equal a tenant's sealing key, and keys of
// different purposes are independent: a leaked purpose key opens no sealed value.
func (s *Sealer) PurposeKey(purpose string) []byte { return s.PurposeKeyOf(s.current, purpose) }

// PurposeKeyOf is PurposeKey under master key version v (nil when this Sealer does not hold it).
func (s *Sealer) PurposeKeyOf(v int, purpose string) []byte {
	master, ok := s.masters[v]
	if !ok {
		return nil
	}
	key, err := hkdf.Key(sha256.New, master, nil, "misybot-tenancy/v1/purpose-key/"+purpose, 32)
	if err != nil {
		// hkdf.Key fails only for an output longer than 255 hash lengths; 32 bytes cannot.
		panic("seal: derive purpose key: " + err.Error())
	}
	return key
}
