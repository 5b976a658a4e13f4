package archives_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/bson"

	"github.com/misybot/tenancy/internal/domain/archives"
	"github.com/misybot/tenancy/internal/domain/audit"
	"github.com/misybot/tenancy/internal/stores/tenantmongo"
	"github.com/misybot/tenancy/internal/testkit/testenv"
)

// Archives past their retention are deleted with their checksum record, each deletion in the
// platform audit chain once; younger archives and other files stay.
func TestPruneDeletesOldArchivesOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	mc := testenv.MongoClient(t)
	db := strings.ReplaceAll(testenv.TenantID("platform_arch"), "-", "_")
	t.Cleanup(func() { _ = mc.Database(db).Drop(context.Background()) })
	w := audit.NewWriter(testenv.AppPool(t), mc, tenantmongo.New(mc), bytes.Repeat([]byte{6}, 32), audit.WithPlatformDatabase(db))
	dir := t.TempDir()
	now := time.Now()
	write := func(name string, age time.Duration) {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte("x"), 0o600))
		require.NoError(t, os.Chtimes(p, now.Add(-age), now.Add(-age)))
	}
	write("old-1.tar.gz.age", 40*24*time.Hour)
	write("old-1.tar.gz.age.json", 40*24*time.Hour)
	write("young-2.tar.gz.age", 2*24*time.Hour)
	write("notes.txt", 400*24*time.Hour)

	p := &archives.Pruner{Dir: dir, Keep: 30 * 24 * time.Hour, Audit: w}
	n, err := p.Prune(ctx, now)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	left, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range left {
		names = append(names, e.Name())
	}
	require.ElementsMatch(t, []string{"young-2.tar.gz.age", "notes.txt"}, names)
	n, err = p.Prune(ctx, now)
	require.NoError(t, err)
	require.Zero(t, n, "nothing more to delete")

	_, err = w.PlatformChain().Ship(ctx)
	require.NoError(t, err)
	count, err := mc.Database(db).Collection(audit.Collection).CountDocuments(ctx, bson.D{{Key: "action", Value: "tenant.archive.delete"}})
	require.NoError(t, err)
	require.EqualValues(t, 1, count, "the deletion is audited once")
}
