package redisurl_test

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/internal/stores/redisurl"
)

func TestSingleServerURL(t *testing.T) {
	t.Parallel()
	c, err := redisurl.NewClient("redis://:pw@127.0.0.1:6380/3")
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	single, ok := c.(*redis.Client)
	require.True(t, ok, "a redis:// URL is one server")
	require.Equal(t, "127.0.0.1:6380", single.Options().Addr)
	require.Equal(t, 3, single.Options().DB)
	require.Equal(t, "pw", single.Options().Password)
}

// A cluster is named by its seed nodes, comma-separated; the query takes go-redis's options.
func TestClusterURL(t *testing.T) {
	t.Parallel()
	c, err := redisurl.NewClient("rediss+cluster://app:s3cret@n1.redis.internal:7001,n2.redis.internal:7002,n3.redis.internal:7003/?dial_timeout=3s&max_redirects=5")
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	cluster, ok := c.(*redis.ClusterClient)
	require.True(t, ok, "a redis+cluster:// URL is a cluster")
	o := cluster.Options()
	require.Equal(t, []string{"n1.redis.internal:7001", "n2.redis.internal:7002", "n3.redis.internal:7003"}, o.Addrs)
	require.Equal(t, "app", o.Username)
	require.Equal(t, "s3cret", o.Password)
	require.Equal(t, 3*time.Second, o.DialTimeout)
	require.Equal(t, 5, o.MaxRedirects)
	require.NotNil(t, o.TLSConfig, "rediss+cluster is TLS")
	require.Equal(t, "n1.redis.internal", o.TLSConfig.ServerName)

	plain, err := redisurl.NewClient("redis+cluster://127.0.0.1:7001")
	require.NoError(t, err)
	t.Cleanup(func() { _ = plain.Close() })
	require.Nil(t, plain.(*redis.ClusterClient).Options().TLSConfig)
}

// Mistakes are refused with a reason that never repeats the URL (it may carry a password).
func TestBadURLs(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{
		"redis+cluster://:hunter2@127.0.0.1:7001/2", // a cluster has database 0 only
		"redis+cluster://:hunter2@/",                // no host
		"redis+cluster://:hunter2@127.0.0.1:7001?no_such_option=1",
		"http://:hunter2@127.0.0.1:6379",
		"redis://:hunter2@127.0.0.1:6379/x",
	} {
		c, err := redisurl.NewClient(raw)
		require.Error(t, err, raw)
		require.Nil(t, c)
		require.NotContains(t, err.Error(), "hunter2", raw)
	}
}
