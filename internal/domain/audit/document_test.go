package audit

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/bson"
)

// Detail keys are data for some event types (a reconciliation's drift kinds): their stored
// names hold no '.', no '$', no NUL, and read back as they were written.
func TestDetailKeysAreEscapedInTheDocument(t *testing.T) {
	t.Parallel()
	d := Details{
		"kind.context_missing": "2", "$where": "x", "a%2Eb": "literal percent", "": "empty",
		"nul\x00key": "n", "plain": "p", "%": "lone percent",
	}
	raw, err := bson.Marshal(Event{ID: "e", Details: d})
	require.NoError(t, err)
	names := []string{}
	elems, err := bson.Raw(raw).Lookup("details").Document().Elements()
	require.NoError(t, err)
	for _, el := range elems {
		names = append(names, el.Key())
		require.NotContains(t, el.Key(), ".")
		require.NotContains(t, el.Key(), "\x00")
		require.NotEqual(t, byte('$'), el.Key()[0])
	}
	require.Contains(t, names, "kind%2Econtext_missing")
	require.Contains(t, names, "plain", "a safe key is stored as it is")

	var back Event
	require.NoError(t, bson.Unmarshal(raw, &back))
	require.Equal(t, d, back.Details)

	empty, err := bson.Marshal(Event{ID: "e"})
	require.NoError(t, err)
	_, err = bson.Raw(empty).LookupErr("details")
	require.Error(t, err, "no details, no field")
}

// Documents written before the escaping (plain keys; on MongoDB even dotted ones) read back
// unchanged; a name the writer would not have written is refused, so Verify names the edit.
func TestDetailsDecodeLegacyAndRefuseForeignForms(t *testing.T) {
	t.Parallel()
	decode := func(details bson.D) (Details, error) {
		raw, err := bson.Marshal(bson.D{{Key: "_id", Value: "e"}, {Key: "details", Value: details}})
		require.NoError(t, err)
		var e Event
		err = bson.Unmarshal(raw, &e)
		return e.Details, err
	}
	got, err := decode(bson.D{{Key: "status", Value: "committed"}, {Key: "kind.x", Value: "1"}})
	require.NoError(t, err)
	require.Equal(t, Details{"status": "committed", "kind.x": "1"}, got)

	for name, details := range map[string]bson.D{
		"unknown escape":   {{Key: "a%41", Value: "1"}},
		"truncated escape": {{Key: "a%2", Value: "1"}},
		"twice":            {{Key: "kind.x", Value: "1"}, {Key: "kind%2Ex", Value: "1"}},
		"not a string":     {{Key: "n", Value: int32(1)}},
	} {
		_, err := decode(details)
		require.Error(t, err, name)
	}
}
