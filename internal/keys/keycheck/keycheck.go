// Package keycheck proves at start-up that a process holds the master key its database was set
// up with. Two deployments sharing one PostgreSQL with different keys, or a mistyped
// TENANT_MASTER_KEY, otherwise show up only per request, as tenant secrets that cannot be
// opened; here the process refuses to start, in one line naming the variable.
package keycheck

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Purpose names the key the check value is a MAC under (seal.Sealer.PurposeKey).
const Purpose = "master-key-check"

// label is what the check value MACs: fixed, so the value depends on the key alone.
const label = "misybot-tenancy/master-key-check/v1"

// ErrMismatch: the key is not the one the database recorded for its version.
var ErrMismatch = errors.New("TENANT_MASTER_KEY does not match the master key this database was set up with")

// Querier is a pool or a transaction.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Value is the check value of a key: hex HMAC-SHA256 of a fixed label under checkKey
// (seal.Sealer.PurposeKey(Purpose)).
func Value(checkKey []byte) string {
	m := hmac.New(sha256.New, checkKey)
	m.Write([]byte(label))
	return hex.EncodeToString(m.Sum(nil))
}

// Verify records the check value of version on first use and compares it afterwards. It
// returns ErrMismatch (wrapped with the version) when the database holds another value.
func Verify(ctx context.Context, q Querier, checkKey []byte, version int) error {
	want := Value(checkKey)
	var got string
	err := q.QueryRow(ctx, `
		WITH ins AS (
			INSERT INTO master_key_checks (version, mac) VALUES ($1, $2)
			ON CONFLICT (version) DO NOTHING RETURNING mac
		)
		SELECT mac FROM ins UNION ALL SELECT mac FROM master_key_checks WHERE version = $1 LIMIT 1`, version, want).Scan(&got)
	if errors.Is(err, pgx.ErrNoRows) {
		// Another process recorded it concurrently, after this statement's snapshot: read it.
		err = q.QueryRow(ctx, `SELECT mac FROM master_key_checks WHERE version = $1`, version).Scan(&got)
	}
	if err != nil {
		return fmt.Errorf("keycheck: %w", err)
	}
	if !hmac.Equal([]byte(got), []byte(want)) {
		return fmt.Errorf("%w (key version %d): start every process with the same key, or point DATABASE_URL at this key's database", ErrMismatch, version)
	}
	return nil
}

// Keys is what VerifyAll needs of a seal.Sealer: its master key versions and a purpose key of
// each.
type Keys interface {
	Versions() []int
	PurposeKeyOf(version int, purpose string) []byte
}

// VerifyAll verifies every master key version a process holds (the current one and those kept
// to open what they sealed), so a mistyped previous key is caught at start too.
func VerifyAll(ctx context.Context, q Querier, keys Keys) error {
	for _, v := range keys.Versions() {
		if err := Verify(ctx, q, keys.PurposeKeyOf(v, Purpose), v); err != nil {
			return err
		}
	}
	return nil
}
