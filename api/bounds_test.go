package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/api"
	"github.com/misybot/tenancy/internal/model/limits"
)

// The review's three values PostgreSQL cannot store, each once answered 500.
var unstorable = []string{`{"value":"\ud800"}`, "{\"value\":\"\xff\xfe\"}", `{"value":1e999999}`}

func TestUnstorableValuesAreClientErrorsOnBothAPIs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := b.provision(t, "utf", allPerms, nil)
	for _, body := range unstorable {
		r := b.send(t, a.req("PUT", "/settings/bad", body))
		requireProblem(t, r, http.StatusBadRequest)
		r = b.do(t, http.MethodPut, api.TenantsPath+"/"+a.id+"/settings/bad", body)
		requireProblem(t, r, http.StatusBadRequest)
		require.Contains(t, r.Body["detail"], "cannot be stored as sent")
	}
	conv := b.send(t, a.req("POST", "/conversations", `{"title":"t"}`))
	require.Equal(t, http.StatusCreated, conv.Code, conv.Raw)
	for _, body := range []string{`{"role":"user","text":"\udc00"}`, "{\"role\":\"user\",\"text\":\"\xc3\"}"} {
		r := b.send(t, a.req("POST", "/conversations/"+conv.Body["id"].(string)+"/messages", body))
		requireProblem(t, r, http.StatusBadRequest)
	}
	r := b.send(t, a.req("GET", "/settings/bad", ""))
	requireProblem(t, r, http.StatusNotFound)
	got := b.send(t, a.req("GET", "/conversations/"+conv.Body["id"].(string), ""))
	require.Empty(t, got.Body["messages"], "nothing was written")
}

func TestBoundsAreProblemsNamingTheBound(t *testing.T) {
	t.Parallel()
	bounds := limits.Default()
	bounds.MaxSettings = 3
	b := setup(t, func(c *api.Config) { c.Limits = bounds })
	a := b.provision(t, "bnd", allPerms, nil)

	big := fmt.Sprintf(`{"value":"%s"}`, strings.Repeat("x", bounds.MaxSettingBytes))
	r := b.send(t, a.req("PUT", "/settings/big", big))
	requireProblem(t, r, http.StatusRequestEntityTooLarge)
	require.Equal(t, limits.BoundSettingBytes, r.Body["limit"])
	require.EqualValues(t, bounds.MaxSettingBytes, r.Body["limitValue"])

	for i := range 3 {
		r := b.send(t, a.req("PUT", fmt.Sprintf("/settings/k%d", i), `{"value":1}`))
		require.Equal(t, http.StatusOK, r.Code, r.Raw)
	}
	r = b.send(t, a.req("PUT", "/settings/k3", `{"value":1}`))
	requireProblem(t, r, http.StatusForbidden)
	require.Equal(t, limits.BoundSettings, r.Body["limit"])

	conv := b.send(t, a.req("POST", "/conversations", `{"title":"t"}`))
	long := fmt.Sprintf(`{"role":"user","text":"%s"}`, strings.Repeat("é", limits.Default().MaxMessageBytes/2+1))
	r = b.send(t, a.req("POST", "/conversations/"+conv.Body["id"].(string)+"/messages", long))
	requireProblem(t, r, http.StatusRequestEntityTooLarge)
	require.Equal(t, limits.BoundMessageBytes, r.Body["limit"])
}

func TestEveryListIsPaged(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := b.provision(t, "pgs", allPerms, nil)
	for i := range 5 {
		require.Equal(t, http.StatusOK, b.send(t, a.req("PUT", fmt.Sprintf("/settings/s%d", i), `{"value":1}`)).Code)
	}
	conv := b.send(t, a.req("POST", "/conversations", `{"title":"t"}`))
	cid := conv.Body["id"].(string)
	for i := range 5 {
		require.Equal(t, http.StatusCreated, b.send(t, a.req("POST", "/conversations/"+cid+"/messages", fmt.Sprintf(`{"role":"user","text":"m%d"}`, i))).Code)
	}
	// follow walks a list two at a time and returns what it saw.
	follow := func(path, field string, item func(map[string]any) string) []string {
		var seen []string
		query := "limit=2"
		for range 10 {
			r := b.send(t, signedQuery(a, path, query))
			require.Equal(t, http.StatusOK, r.Code, r.Raw)
			items := r.Body[field].([]any)
			require.LessOrEqual(t, len(items), 2)
			for _, it := range items {
				seen = append(seen, item(it.(map[string]any)))
			}
			next, _ := r.Body["nextCursor"].(string)
			if next == "" {
				return seen
			}
			query = "limit=2&cursor=" + next
		}
		t.Fatalf("%s: no last page", path)
		return nil
	}
	require.Equal(t, []string{"s0", "s1", "s2", "s3", "s4"}, follow("/settings", "items", func(m map[string]any) string { return m["key"].(string) }))
	require.Equal(t, []string{"m0", "m1", "m2", "m3", "m4"}, follow("/conversations/"+cid, "messages", func(m map[string]any) string { return m["text"].(string) }))

	for _, q := range []string{"limit=0", "limit=101", "limit=x", "cursor=zz"} {
		requireProblem(t, b.send(t, signedQuery(a, "/conversations/"+cid, q)), http.StatusBadRequest)
		requireProblem(t, b.send(t, signedQuery(a, "/conversations", q)), http.StatusBadRequest)
	}
	requireProblem(t, b.send(t, signedQuery(a, "/settings", "cursor=NOT")), http.StatusBadRequest)
}

func signedQuery(st signedTenant, path, query string) signedReq {
	r := st.req("GET", path, "")
	r.query = query
	return r
}

// FuzzTenantWrites: whatever the body, the settings and messages handlers of both APIs answer
// a client error or success, never a 5xx.
func FuzzTenantWrites(f *testing.F) {
	for _, s := range unstorable {
		f.Add(s)
	}
	f.Add(`{"value":{"a":[1,-0.5e-300,"\ud83d\ude00"]}}`)
	f.Add(`{"role":"user","text":"\ud800\u0041"}`)
	f.Add(`{"value":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}`)
	b := setup(f)
	a := b.provision(f, "fuzz", allPerms, nil)
	var cid string
	f.Fuzz(func(t *testing.T, body string) {
		if cid == "" {
			conv := b.send(t, a.req("POST", "/conversations", `{"title":"fuzz"}`))
			require.Equal(t, http.StatusCreated, conv.Code, conv.Raw)
			cid = conv.Body["id"].(string)
		}
		for _, r := range []response{
			b.send(t, a.req("PUT", "/settings/fuzz", body)),
			b.send(t, a.req("POST", "/conversations/"+cid+"/messages", body)),
			b.do(t, http.MethodPut, api.TenantsPath+"/"+a.id+"/settings/fuzz", body),
		} {
			require.Less(t, r.Code, 500, "body %q: %s", body, r.Raw)
		}
	})
}
