package config_test

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/internal/config"
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
	require.Equal(t, bytes.Repeat([]byte{9}, 32), cfg.MasterKey)
	require.False(t, cfg.UsesDevMasterKey())
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
		"TASK_QUEUE":              "two words",
		"TEMPORAL_UI_URL":         "javascript:alert(1)",
		"TENANT_MASTER_KEY":       "c2hvcnQ=",
		"OPERATOR_TOKEN":          "short",
		"SHUTDOWN_TIMEOUT":        "-1s",
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
