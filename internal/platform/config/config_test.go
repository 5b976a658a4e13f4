package config_test

import (
	"bytes"
	"encoding/base64"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/internal/platform/config"
)

func lookup(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

var goodKey = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32))

func TestDefaultsNeedOnlyAMasterKey(t *testing.T) {
	t.Parallel()
	cfg, err := config.FromLookup(lookup(map[string]string{"TENANT_MASTER_KEY": goodKey}))
	require.NoError(t, err)
	require.Equal(t, config.EnvProduction, cfg.Env)
	require.Equal(t, "127.0.0.1:7233", cfg.TemporalAddress)
	require.Equal(t, "127.0.0.1:9465", cfg.WorkerMetricsAddr)
	require.Equal(t, 30*time.Second, cfg.WorkerStopTimeout)
	require.Equal(t, 16, cfg.WorkerPollers)
	require.Equal(t, bytes.Repeat([]byte{9}, 32), cfg.MasterKey)
	require.False(t, cfg.UsesDevMasterKey())
}

// REDIS_URL names one server or a Redis Cluster by its seed nodes (internal/stores/redisurl).
func TestRedisURLMayNameACluster(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"redis://127.0.0.1:6379/0", "rediss://r.internal:6380/1", "redis+cluster://10.0.0.1:6379,10.0.0.2:6379", "rediss+cluster://r1.internal:6379,r2.internal:6379"} {
		cfg, err := config.FromLookup(lookup(map[string]string{"TENANT_MASTER_KEY": goodKey, "REDIS_URL": u}))
		require.NoError(t, err, u)
		require.Equal(t, u, cfg.RedisURL)
	}
	_, err := config.FromLookup(lookup(map[string]string{"TENANT_MASTER_KEY": goodKey, "REDIS_URL": "cluster://10.0.0.1:6379"}))
	require.ErrorContains(t, err, "REDIS_URL")
}

func TestMissingMasterKey(t *testing.T) {
	t.Parallel()
	_, err := config.FromLookup(lookup(nil))
	require.ErrorContains(t, err, "TENANT_MASTER_KEY")

	cfg, err := config.FromLookup(lookup(map[string]string{"APP_ENV": "dev"}))
	require.NoError(t, err, "dev mode falls back to the public dev key")
	require.True(t, cfg.UsesDevMasterKey())
}

// Each malformed value yields exactly one line, naming its variable and never the secret.
func TestMalformedValuesNameTheVariable(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"APP_ENV":                 "staging",
		"DATABASE_URL":            "mysql://x:1/db",
		"MIGRATE_DATABASE_URL":    "not a url",
		"MONGODB_URI":             "http://127.0.0.1:27017",
		"REDIS_URL":               "127.0.0.1:6379",
		"TEMPORAL_ADDRESS":        "localhost",
		"API_ADDR":                "8080",
		"WORKER_METRICS_ADDR":     "9465",
		"TASK_QUEUE":              "two words",
		"TEMPORAL_UI_URL":         "javascript:alert(1)",
		"TENANT_MASTER_KEY":       "c2hvcnQ=",
		"OPERATOR_TOKEN":          "short",
		"SHUTDOWN_TIMEOUT":        "-1s",
		"WORKER_STOP_TIMEOUT":     "soon",
		"WORKER_POLLERS":          "1",
		"LOG_LEVEL":               "loud",
		"AUDIT_PLATFORM_DATABASE": "tenant_acme",
	}
	for name, value := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			vars := map[string]string{"TENANT_MASTER_KEY": goodKey, name: value}
			_, err := config.FromLookup(lookup(vars))
			require.Error(t, err)
			lines := strings.Split(err.Error(), "\n")
			require.Len(t, lines, 1, err.Error())
			require.True(t, strings.HasPrefix(lines[0], name+": "), lines[0])
			if name == "TENANT_MASTER_KEY" || name == "OPERATOR_TOKEN" {
				require.NotContains(t, lines[0], value, "a secret's value must not be echoed")
			}
		})
	}
}

// WORKER_POLLERS: a whole number of at least 2 (the SDK panics on 1 workflow task poller).
func TestWorkerPollers(t *testing.T) {
	t.Parallel()
	cfg, err := config.FromLookup(lookup(map[string]string{"TENANT_MASTER_KEY": goodKey, "WORKER_POLLERS": "2"}))
	require.NoError(t, err)
	require.Equal(t, 2, cfg.WorkerPollers)
	for _, bad := range []string{"0", "-4", "many", "3.5", "257"} {
		_, err := config.FromLookup(lookup(map[string]string{"TENANT_MASTER_KEY": goodKey, "WORKER_POLLERS": bad}))
		require.ErrorContains(t, err, "WORKER_POLLERS: must be a whole number from 2 to 256", bad)
	}
}

// A master key may carry its version; retired versions are listed with theirs.
func TestMasterKeyVersions(t *testing.T) {
	cfg, err := config.FromLookup(lookup(map[string]string{"TENANT_MASTER_KEY": "2:" + goodKey, "TENANT_MASTER_KEY_PREVIOUS": "1:" + goodKey}))
	require.NoError(t, err)
	current, keys := cfg.MasterKeys()
	require.Equal(t, 2, current)
	require.Len(t, keys, 2)
	require.Contains(t, keys, 1)

	for _, bad := range []map[string]string{
		{"TENANT_MASTER_KEY": "0:" + goodKey},
		{"TENANT_MASTER_KEY": "x:" + goodKey},
		{"TENANT_MASTER_KEY": "2:" + goodKey, "TENANT_MASTER_KEY_PREVIOUS": goodKey},
		{"TENANT_MASTER_KEY": "2:" + goodKey, "TENANT_MASTER_KEY_PREVIOUS": "2:" + goodKey},
		{"TENANT_MASTER_KEY": "2:" + goodKey, "TENANT_MASTER_KEY_PREVIOUS": "1:short"},
	} {
		_, err := config.FromLookup(lookup(bad))
		require.Error(t, err, "%v", bad)
		require.NotContains(t, err.Error(), goodKey, "never echoes a key")
	}
}

// Temporal's TLS settings: off by default; TEMPORAL_TLS=true alone is TLS with the system
// roots; a client certificate needs its key; a CA file must hold a certificate; an API key
// turns TLS on and is never echoed.
func TestTemporalTLSSettings(t *testing.T) {
	t.Parallel()
	with := func(vars map[string]string) (config.Config, error) {
		all := map[string]string{"TENANT_MASTER_KEY": goodKey}
		for k, v := range vars {
			all[k] = v
		}
		return config.FromLookup(lookup(all))
	}
	cfg, err := with(nil)
	require.NoError(t, err)
	require.False(t, cfg.TemporalTLS)
	tc, err := cfg.TemporalTLSConfig()
	require.NoError(t, err)
	require.Nil(t, tc, "plaintext, as the dev server speaks")

	cfg, err = with(map[string]string{"TEMPORAL_TLS": "true", "TEMPORAL_TLS_SERVER_NAME": "temporal.internal"})
	require.NoError(t, err)
	tc, err = cfg.TemporalTLSConfig()
	require.NoError(t, err)
	require.NotNil(t, tc)
	require.Nil(t, tc.RootCAs, "the system roots")
	require.Empty(t, tc.Certificates)
	require.Equal(t, "temporal.internal", tc.ServerName)

	cfg, err = with(map[string]string{"TEMPORAL_API_KEY": "cloud-key-abcdef"})
	require.NoError(t, err)
	require.True(t, cfg.TemporalTLS, "an API key goes over TLS only")
	require.Equal(t, "cloud-key-abcdef", cfg.TemporalAPIKey)

	dir := t.TempDir()
	garbage := dir + "/garbage.pem"
	require.NoError(t, os.WriteFile(garbage, []byte("not a certificate"), 0o600))
	for name, vars := range map[string]map[string]string{
		"TEMPORAL_TLS_CERT": {"TEMPORAL_TLS_CERT": garbage, "TEMPORAL_API_KEY": "cloud-key-abcdef"}, // no key
		"TEMPORAL_TLS_CA":   {"TEMPORAL_TLS_CA": garbage, "TEMPORAL_API_KEY": "cloud-key-abcdef"},
		"TEMPORAL_TLS":      {"TEMPORAL_TLS": "maybe"},
	} {
		_, err := with(vars)
		require.Error(t, err, name)
		lines := strings.Split(err.Error(), "\n")
		require.Len(t, lines, 1, err.Error())
		require.True(t, strings.HasPrefix(lines[0], name+":"), lines[0])
		require.NotContains(t, err.Error(), "cloud-key-abcdef")
	}
	_, err = with(map[string]string{"TEMPORAL_TLS_CERT": garbage, "TEMPORAL_TLS_KEY": garbage})
	require.ErrorContains(t, err, "TEMPORAL_TLS_CERT: cannot load")
}
