package jsontext

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCheckRefusesWhatPostgresCannotStore(t *testing.T) {
	for name, doc := range map[string]string{
		"lone high surrogate":        `{"value":"\ud800"}`,
		"lone high at end of string": `{"value":"a\ud800"}`,
		"high then non-low":          `{"value":"\ud800\u0041"}`,
		"lone low surrogate":         `{"value":"\udc00"}`,
		"invalid UTF-8":              "{\"value\":\"\xff\xfe\"}",
		"huge number":                `{"value":1e999999}`,
		"number rounding to zero":    `{"value":1e-999999}`,
		"number in an array":         `{"value":[1,2,-1e400]}`,
		"overlong number":            `{"value":0.` + strings.Repeat("0", 70) + `1}`,
	} {
		t.Run(name, func(t *testing.T) {
			err := Check([]byte(doc))
			require.Error(t, err)
			var e *Error
			require.ErrorAs(t, err, &e)
		})
	}
}

func TestCheckAcceptsOrdinaryJSON(t *testing.T) {
	for _, doc := range []string{
		`{"value":"\ud83d\ude00 ok"}`, `{"value":"é\u00e9\\ud800"}`, `{"value":{"a":[1,2.5,-3e10,0,0.0,1e308,5e-324]}}`,
		`{"value":"\"quoted\" \\u"}`, `{"text":"ünïcödé","role":"user"}`, `not json`, ``,
	} {
		require.NoError(t, Check([]byte(doc)), doc)
	}
}

// FuzzCheck: Check never panics, whatever the bytes.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{`{"value":"\ud800"}`, "{\"value\":\"\xff\"}", `{"value":1e999999}`, `{"v":"\ud83d\ude00"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		_ = Check(doc)
	})
}
