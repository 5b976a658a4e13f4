package e2e

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"

	"github.com/misybot/tenancy/api"
	"github.com/misybot/tenancy/internal/keys/keyring"
	"github.com/misybot/tenancy/internal/model/limits"
	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/testkit/testenv"
)

// Key rotation through the API: messages written under version 1 end up under version 2 and
// still read back; new writes use version 2 at once.
func TestKeyRotationReencryptsMessages(t *testing.T) {
	t.Parallel()
	s := newStack(t, true)
	ctx := context.Background()
	id := testenv.TenantID("rot")
	code, body := s.do(http.MethodPost, api.TenantsPath+"/onboard", onboardBody(id, "standard"))
	require.Equal(t, http.StatusAccepted, code, body)
	require.NoError(t, s.wait(body))

	tctx := tenant.WithID(ctx, id)
	conv, err := s.conversations.Create(tctx, "history")
	require.NoError(t, err)
	// A conversation written before titles were encrypted: its title is plaintext at rest.
	legacyID := "legacy-conversation-0001"
	_, err = s.mongo.Database("tenant_"+id).Collection("conversations").InsertOne(ctx,
		bson.D{{Key: "_id", Value: legacyID}, {Key: "title", Value: "legacy plaintext title"}, {Key: "messageCount", Value: 0}})
	require.NoError(t, err)
	titleVersions := func() map[string]int {
		cur, err := s.mongo.Database("tenant_"+id).Collection("conversations").Find(ctx, bson.D{})
		require.NoError(t, err)
		var docs []bson.M
		require.NoError(t, cur.All(ctx, &docs))
		out := map[string]int{}
		for _, d := range docs {
			v := 0
			if bin, ok := d["titleEnc"].(primitive.Binary); ok {
				v, _ = keyring.Version(bin.Data)
			}
			out[d["_id"].(string)] = v
		}
		return out
	}
	require.Equal(t, map[string]int{conv.ID: 1, legacyID: 0}, titleVersions())
	texts := []string{"one", "two", "three"}
	for _, tx := range texts {
		_, err := s.conversations.AddMessage(tctx, conv.ID, "user", tx)
		require.NoError(t, err)
	}
	versions := func() []int {
		cur, err := s.mongo.Database("tenant_"+id).Collection("messages").Find(ctx, bson.D{})
		require.NoError(t, err)
		var docs []struct {
			Text []byte `bson:"text"`
		}
		require.NoError(t, cur.All(ctx, &docs))
		var out []int
		for _, d := range docs {
			v, ok := keyring.Version(d.Text)
			require.True(t, ok)
			out = append(out, v)
		}
		return out
	}
	require.Equal(t, []int{1, 1, 1}, versions())

	code, body = s.do(http.MethodPost, api.TenantsPath+"/"+id+"/keys/rotate", "")
	require.Equal(t, http.StatusAccepted, code, body)
	require.NoError(t, s.wait(body))
	require.Equal(t, []int{2, 2, 2}, versions())
	require.Equal(t, map[string]int{conv.ID: 2, legacyID: 2}, titleVersions(), "titles too, the plaintext one encrypted at last")
	list, _, err := s.conversations.List(tctx, nil, 10)
	require.NoError(t, err)
	var titles []string
	for _, c := range list {
		titles = append(titles, c.Title)
	}
	require.ElementsMatch(t, []string{"history", "legacy plaintext title"}, titles)

	page, err := s.conversations.Get(tctx, conv.ID, "", limits.DefaultPage)
	require.NoError(t, err)
	var got []string
	for _, m := range page.Messages {
		got = append(got, m.Text)
	}
	require.Equal(t, texts, got)

	_, op := s.do(http.MethodGet, api.TenantsPath+"/"+id+"/operations/current", "")
	require.Equal(t, "completed", op["status"])
	require.Equal(t, "RotateTenantKey", op["workflow"])
}
