package audit

import (
	"fmt"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/bsontype"
	"go.mongodb.org/mongo-driver/x/bsonx/bsoncore"
)

// Details are an event's counts and names. In MongoDB they are a sub-document whose field
// names are the detail keys, escaped (see escapeKey) so that no key an event type chooses,
// however it builds it (a drift kind, a table name, a header), can make the document one a
// store refuses: FerretDB refuses a field name holding '.' ("key must not contain '.' sign"),
// and one starting with '$'; BSON cannot hold a NUL in a field name. Issue 32: a
// reconciliation event with the key "kind.context_missing" was refused for ever and, being
// first in its chain, held every later platform event back.
//
// The escaping is done here, where the document is encoded, so no event type can reintroduce
// the problem. It changes only the BSON form: JSON (workflow payloads, the API, the outbox)
// keeps the keys as they are, and so does the chain's hash, which is computed over the keys
// themselves (see Chain), never over a document.
type Details map[string]string

// keyEscape is the escape character of detail keys in MongoDB. A key holding none of
// '%', '.', '$' or NUL is stored as it is, so every key written before the escaping existed
// reads back unchanged, and documents stay queryable by their plain keys
// ("details.claimedTenantId").
const keyEscape = '%'

// escapeKey is a detail key as a MongoDB field name: '%', '.', '$' and NUL percent-encoded
// (%25, %2E, %24, %00), and the empty key, which stores disagree about, as a lone "%" (no
// escaped key is "%" alone, so this stays reversible).
func escapeKey(k string) string {
	if k == "" {
		return string(keyEscape)
	}
	if !strings.ContainsAny(k, "%.$\x00") {
		return k
	}
	var b strings.Builder
	b.Grow(len(k) + 8)
	for i := 0; i < len(k); i++ {
		switch c := k[i]; c {
		case '%', '.', '$', 0:
			fmt.Fprintf(&b, "%%%02X", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// unescapeKey reverses escapeKey. A stored name without '%' is taken as it is: a key written
// before the escaping existed (on MongoDB, which accepts dotted names, it may hold a '.').
// A name with '%' must be exactly what escapeKey writes; anything else was not written by the
// writer (an edit) and is refused, so one key has one stored form and Verify sees the edit.
func unescapeKey(name string) (string, error) {
	if name == string(keyEscape) {
		return "", nil
	}
	if !strings.ContainsRune(name, keyEscape) {
		return name, nil
	}
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		if name[i] != keyEscape {
			b.WriteByte(name[i])
			continue
		}
		if i+2 >= len(name) {
			return "", fmt.Errorf("detail key %q: truncated escape", name)
		}
		switch name[i+1 : i+3] {
		case "25":
			b.WriteByte('%')
		case "2E":
			b.WriteByte('.')
		case "24":
			b.WriteByte('$')
		case "00":
			b.WriteByte(0)
		default:
			return "", fmt.Errorf("detail key %q: %q is not an escape the writer uses", name, name[i:i+3])
		}
		i += 2
	}
	return b.String(), nil
}

// MarshalBSONValue writes the details as a sub-document with escaped keys, in key order (the
// order does not matter to the hash; a fixed one makes equal events equal documents).
func (d Details) MarshalBSONValue() (bsontype.Type, []byte, error) {
	keys := sortedKeys(d)
	idx, doc := bsoncore.AppendDocumentStart(nil)
	for _, k := range keys {
		doc = bsoncore.AppendStringElement(doc, escapeKey(k), d[k])
	}
	doc, err := bsoncore.AppendDocumentEnd(doc, idx)
	if err != nil {
		return 0, nil, fmt.Errorf("audit: encode details: %w", err)
	}
	return bson.TypeEmbeddedDocument, doc, nil
}

// UnmarshalBSONValue reads the details back: a sub-document of string values whose names
// unescape to distinct keys. Anything else is not what the writer wrote and fails the decode
// (Verify then names the event as edited).
func (d *Details) UnmarshalBSONValue(t bsontype.Type, data []byte) error {
	switch t {
	case bson.TypeNull, bson.TypeUndefined:
		*d = nil
		return nil
	case bson.TypeEmbeddedDocument:
	default:
		return fmt.Errorf("audit: details are a %s, not a document", t)
	}
	elems, err := bsoncore.Document(data).Elements()
	if err != nil {
		return fmt.Errorf("audit: decode details: %w", err)
	}
	out := make(Details, len(elems))
	for _, el := range elems {
		k, err := unescapeKey(el.Key())
		if err != nil {
			return fmt.Errorf("audit: decode details: %w", err)
		}
		v, ok := el.Value().StringValueOK()
		if !ok {
			return fmt.Errorf("audit: detail %q is a %s, not a string", k, el.Value().Type)
		}
		if _, dup := out[k]; dup {
			return fmt.Errorf("audit: detail %q is stored twice", k)
		}
		out[k] = v
	}
	*d = out
	return nil
}

// IsZero makes an empty Details omitted from the document, as an empty map was.
func (d Details) IsZero() bool { return len(d) == 0 }

// sortedKeys are d's keys in byte order: the order of the hash and of the document.
func sortedKeys(d map[string]string) []string {
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
