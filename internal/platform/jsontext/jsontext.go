// Package jsontext checks that a JSON document holds only what every store can keep as it was
// sent: PostgreSQL's jsonb refuses invalid UTF-8, unpaired surrogate escapes (\ud800) and
// numbers beyond its numeric type (1e999999), and Go's decoder would silently replace the first
// two with U+FFFD. Requests are checked once, before anything is decoded or stored, so such a
// value is the client's 400 and never a store's 500.
package jsontext

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// MaxNumberLen bounds a number's written form: far more than a float64 needs (at most 24
// characters), short enough that no number can ask PostgreSQL for more digits than it keeps.
const MaxNumberLen = 64

// Error says what is wrong and at which byte offset of the document.
type Error struct {
	Offset  int64
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("at byte %d: %s", e.Offset, e.Message) }

// Check returns an *Error for the first thing in doc a store could not keep exactly, nil when
// there is none. A document that is not JSON at all is left to the decoder to report (nil).
func Check(doc []byte) error {
	if !utf8.Valid(doc) {
		return &Error{Offset: int64(invalidUTF8At(doc)), Message: "the body must be valid UTF-8"}
	}
	if off, ok := loneSurrogate(doc); ok {
		return &Error{Offset: int64(off), Message: "a \\u escape names half of a UTF-16 surrogate pair without its other half"}
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	for {
		tok, ok := nextToken(dec)
		if !ok {
			return nil
		}
		if n, ok := tok.(json.Number); ok {
			if msg := checkNumber(string(n)); msg != "" {
				return &Error{Offset: dec.InputOffset(), Message: msg}
			}
		}
	}
}

// nextToken is the document's next token; false at its end, or where it is not JSON (which the
// decoder that reads it for real reports, with the offset).
func nextToken(dec *json.Decoder) (json.Token, bool) {
	tok, err := dec.Token()
	return tok, err == nil
}

// checkNumber allows the numbers a float64 holds without rounding to zero or infinity.
func checkNumber(n string) string {
	if len(n) > MaxNumberLen {
		return fmt.Sprintf("a number must be written in at most %d characters", MaxNumberLen)
	}
	f, err := strconv.ParseFloat(n, 64)
	if err != nil || math.IsInf(f, 0) {
		return "a number must be within ±1.7976931348623157e308 (a 64-bit float)"
	}
	if f == 0 && bytes.ContainsAny(mantissa(n), "123456789") {
		return "a non-zero number must be at least 4.9e-324 in magnitude (a 64-bit float)"
	}
	return ""
}

// mantissa is a number's digits before its exponent.
func mantissa(n string) []byte {
	if i := bytes.IndexAny([]byte(n), "eE"); i >= 0 {
		return []byte(n[:i])
	}
	return []byte(n)
}

func invalidUTF8At(doc []byte) int {
	for i := 0; i < len(doc); {
		r, size := utf8.DecodeRune(doc[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return len(doc)
}

// loneSurrogate finds a \uD800–\uDFFF escape inside a string that is not a high surrogate
// directly followed by a low one. It tracks strings itself: the decoder hides escapes.
func loneSurrogate(doc []byte) (int, bool) {
	inString := false
	for i := 0; i < len(doc); i++ {
		c := doc[i]
		if !inString {
			inString = c == '"'
			continue
		}
		switch c {
		case '"':
			inString = false
		case '\\':
			if i+1 >= len(doc) {
				return 0, false
			}
			if doc[i+1] != 'u' {
				i++ // a one-character escape, \" included
				continue
			}
			u, ok := hex4(doc, i+2)
			if !ok {
				return 0, false // malformed: the decoder reports it
			}
			switch {
			case u >= 0xD800 && u <= 0xDBFF:
				low, ok := hex4(doc, i+8)
				if i+7 >= len(doc) || doc[i+6] != '\\' || doc[i+7] != 'u' || !ok || low < 0xDC00 || low > 0xDFFF {
					return i, true
				}
				i += 11
			case u >= 0xDC00 && u <= 0xDFFF:
				return i, true
			default:
				i += 5
			}
		}
	}
	return 0, false
}

func hex4(doc []byte, at int) (rune, bool) {
	if at+4 > len(doc) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(doc[at:at+4]), 16, 16)
	return rune(v), err == nil
}
