// Package config reads the process configuration from the environment: local defaults that
// match `make dev`, overridden by variables, validated once at start so a bad value stops the
// process with one line naming the variable instead of failing later on first use.
package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"filippo.io/age"
)

// Env names the deployment mode. Dev relaxes exactly one rule: a missing master key falls back
// to a fixed, publicly known development key (with a warning), so tests and a first `go run`
// work. Everything else is validated identically in both modes.
type Env string

const (
	EnvDev        Env = "dev"
	EnvProduction Env = "production"
)

// DevMasterKey is the well-known key used only when APP_ENV=dev and TENANT_MASTER_KEY is unset.
// It is public on purpose: nothing sealed with it is secret.
var DevMasterKey = []byte("misybot-tenancy-dev-master-key!!")

// Config is everything the API and the worker need to reach their dependencies.
type Config struct {
	Env Env

	// DatabaseURL connects as the application role (owns nothing, subject to row-level security).
	DatabaseURL string
	// MigrateDatabaseURL connects as the owner role; only `starter migrate` uses it.
	MigrateDatabaseURL string
	MongoURI           string
	RedisURL           string

	TemporalAddress   string
	TemporalNamespace string
	TaskQueue         string
	// Temporal's transport security, for a cluster of your own with mTLS or for Temporal Cloud:
	// TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY (PEM files, both or neither) are the client
	// certificate; TEMPORAL_TLS_CA (PEM file) the CA the server's certificate must chain to
	// (the system roots when unset); TEMPORAL_TLS_SERVER_NAME the name to check when it differs
	// from TEMPORAL_ADDRESS's host; TEMPORAL_API_KEY an API key (Temporal Cloud), sent as a
	// bearer token. Any of them, or TEMPORAL_TLS=true, turns TLS on; TemporalTLSConfig builds it.
	TemporalTLS           bool
	TemporalTLSCert       string
	TemporalTLSKey        string
	TemporalTLSCA         string
	TemporalTLSServerName string
	TemporalAPIKey        string
	// TemporalUIURL is the Temporal Web UI the dashboard links each run to (TEMPORAL_UI_URL).
	TemporalUIURL string

	// MasterKey is the 32-byte TENANT_MASTER_KEY from which every tenant key is derived, and
	// MasterKeyVersion its version ("<version>:<base64>"; 1 when no version is given).
	MasterKey        []byte
	MasterKeyVersion int
	// PreviousMasterKeys are retired master key versions still needed to open what they sealed
	// until a master key rotation re-seals it (TENANT_MASTER_KEY_PREVIOUS, "<version>:<base64>",
	// comma-separated).
	PreviousMasterKeys map[int][]byte
	// OperatorToken authenticates operators on the management API (bearer token).
	OperatorToken string

	APIAddr string
	// MetricsAddr is the operators' listener: /metrics and detailed /readyz. Loopback by
	// default; a private network in a cluster, never the public one.
	MetricsAddr string
	// WorkerMetricsAddr is the worker's operators' listener: /metrics (Temporal SDK metrics,
	// lifecycle operation counters, audit shipping) and /healthz. Loopback by default.
	WorkerMetricsAddr string
	// TrustedProxies are the networks whose X-Forwarded-For the API believes (TRUSTED_PROXIES,
	// comma-separated CIDRs; empty: none, the peer address is the client).
	TrustedProxies  []*net.IPNet
	ShutdownTimeout time.Duration
	// WorkerStopTimeout is how long a worker told to stop (SIGTERM) waits for the activities it
	// runs to finish before cancelling them (WORKER_STOP_TIMEOUT, default 30s). Give the
	// orchestrator a longer grace period before it kills the process.
	WorkerStopTimeout time.Duration
	// WorkerPollers is how many long polls a worker keeps open for workflow tasks, and as many
	// for activity tasks (WORKER_POLLERS, default 16; the SDK's own default is 2). A task that
	// finds a poll waiting is handed over at once; one that finds none is written to the task
	// queue's backlog and read back: on a 2-core dev server, 16 polls ran 1.15–1.17 times as
	// many onboardings at concurrency 16 as 2 did (make bench). Idle polls cost next to nothing.
	WorkerPollers int
	// OffboardGrace is how long an offboarded tenant's exported data waits before the purge
	// (cancel-offboard restores it meanwhile). Zero in dev, 72h otherwise.
	OffboardGrace time.Duration
	// ExportDir is where offboarding writes tenant archives.
	ExportDir string
	// ExportRecipients are the age recipients (EXPORT_RECIPIENT, "age1…", comma-separated)
	// archives are encrypted to; the matching identities decrypt them, offline.
	ExportRecipients []age.Recipient
	// ExportRetention is how long an archive is kept before the worker deletes it
	// (EXPORT_RETENTION, default 720h).
	ExportRetention time.Duration
	// SecretOverlap is how long a rotated-out tenant secret keeps verifying signatures.
	SecretOverlap time.Duration
	// AuditPlatformDatabase is the MongoDB database of the platform audit chain. Every process
	// of a deployment must use the same one; tests give their worker processes their own.
	AuditPlatformDatabase string
	// ReconcileAutoRepair runs reconciliation's safe repairs (missing index, missing or stale
	// context record) without waiting for an approval (RECONCILE_AUTO_REPAIR, default false).
	ReconcileAutoRepair bool
	LogLevel            slog.Level
}

// maxWorkerPollers bounds WORKER_POLLERS: each poll holds a connection slot on the Temporal
// frontend, and past the tasks in flight more polls only wait.
const maxWorkerPollers = 256

// Defaults match the servers `make dev` starts on 127.0.0.1.
func Defaults() Config {
	return Config{
		Env:                   EnvProduction,
		DatabaseURL:           "postgres://tenancy_app:tenancy_app@127.0.0.1:5432/tenancy?sslmode=disable",
		MigrateDatabaseURL:    "postgres://tenancy_owner:tenancy_owner@127.0.0.1:5432/tenancy?sslmode=disable",
		MongoURI:              "mongodb://127.0.0.1:27017/",
		RedisURL:              "redis://127.0.0.1:6379/0",
		TemporalAddress:       "127.0.0.1:7233",
		TemporalNamespace:     "default",
		TaskQueue:             "tenancy",
		TemporalUIURL:         "http://127.0.0.1:8233",
		APIAddr:               "127.0.0.1:8080",
		MetricsAddr:           "127.0.0.1:9464",
		WorkerMetricsAddr:     "127.0.0.1:9465",
		ShutdownTimeout:       10 * time.Second,
		WorkerStopTimeout:     30 * time.Second,
		WorkerPollers:         16,
		OffboardGrace:         72 * time.Hour,
		ExportDir:             "exports",
		ExportRetention:       30 * 24 * time.Hour,
		SecretOverlap:         24 * time.Hour,
		AuditPlatformDatabase: "platform",
		LogLevel:              slog.LevelInfo,
	}
}

// FromEnv returns Defaults overridden by the environment, validated. The error names the
// variable at fault and never echoes a secret's value.
func FromEnv() (Config, error) { return FromLookup(os.LookupEnv) }

// FromLookup is FromEnv with the environment injected, for tests.
func FromLookup(lookup func(string) (string, bool)) (Config, error) {
	c := Defaults()
	get := func(name string, dst *string) {
		if v, ok := lookup(name); ok && strings.TrimSpace(v) != "" {
			*dst = strings.TrimSpace(v)
		}
	}
	var temporalTLS string
	var env, masterKey, previousKeys, shutdown, workerStop, pollers, level, grace, overlap, proxies, recipients, exportRetention, autoRepair string
	get("APP_ENV", &env)
	get("DATABASE_URL", &c.DatabaseURL)
	get("MIGRATE_DATABASE_URL", &c.MigrateDatabaseURL)
	get("MONGODB_URI", &c.MongoURI)
	get("REDIS_URL", &c.RedisURL)
	get("TEMPORAL_ADDRESS", &c.TemporalAddress)
	get("TEMPORAL_NAMESPACE", &c.TemporalNamespace)
	get("TASK_QUEUE", &c.TaskQueue)
	get("TEMPORAL_TLS", &temporalTLS)
	get("TEMPORAL_TLS_CERT", &c.TemporalTLSCert)
	get("TEMPORAL_TLS_KEY", &c.TemporalTLSKey)
	get("TEMPORAL_TLS_CA", &c.TemporalTLSCA)
	get("TEMPORAL_TLS_SERVER_NAME", &c.TemporalTLSServerName)
	get("TEMPORAL_API_KEY", &c.TemporalAPIKey)
	get("TEMPORAL_UI_URL", &c.TemporalUIURL)
	get("TENANT_MASTER_KEY", &masterKey)
	get("TENANT_MASTER_KEY_PREVIOUS", &previousKeys)
	get("OPERATOR_TOKEN", &c.OperatorToken)
	get("API_ADDR", &c.APIAddr)
	get("METRICS_ADDR", &c.MetricsAddr)
	get("WORKER_METRICS_ADDR", &c.WorkerMetricsAddr)
	get("TRUSTED_PROXIES", &proxies)
	get("SHUTDOWN_TIMEOUT", &shutdown)
	get("WORKER_STOP_TIMEOUT", &workerStop)
	get("WORKER_POLLERS", &pollers)
	get("LOG_LEVEL", &level)
	get("OFFBOARD_GRACE_PERIOD", &grace)
	get("EXPORT_DIR", &c.ExportDir)
	get("EXPORT_RECIPIENT", &recipients)
	get("EXPORT_RETENTION", &exportRetention)
	get("SECRET_ROTATION_OVERLAP", &overlap)
	get("AUDIT_PLATFORM_DATABASE", &c.AuditPlatformDatabase)
	get("RECONCILE_AUTO_REPAIR", &autoRepair)

	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
	}

	switch Env(env) {
	case "":
	case EnvDev, EnvProduction:
		c.Env = Env(env)
	default:
		bad("APP_ENV", "must be %q or %q, got %q", EnvDev, EnvProduction, env)
	}

	checkURL := func(name, value string, schemes ...string) {
		u, err := url.Parse(value)
		if err != nil || u.Host == "" {
			bad(name, "must be a URL with a host (%s://host:port/...)", schemes[0])
			return
		}
		for _, s := range schemes {
			if u.Scheme == s {
				return
			}
		}
		bad(name, "scheme must be one of %v, got %q", schemes, u.Scheme)
	}
	checkURL("DATABASE_URL", c.DatabaseURL, "postgres", "postgresql")
	checkURL("MIGRATE_DATABASE_URL", c.MigrateDatabaseURL, "postgres", "postgresql")
	checkURL("MONGODB_URI", c.MongoURI, "mongodb", "mongodb+srv")
	checkURL("REDIS_URL", c.RedisURL, "redis", "rediss", "redis+cluster", "rediss+cluster")
	checkURL("TEMPORAL_UI_URL", c.TemporalUIURL, "http", "https")

	checkHostPort := func(name, value string) {
		if _, port, err := net.SplitHostPort(value); err != nil || port == "" {
			bad(name, "must be host:port, got %q", value)
		}
	}
	checkHostPort("TEMPORAL_ADDRESS", c.TemporalAddress)
	switch strings.ToLower(temporalTLS) {
	case "", "false", "0":
	case "true", "1":
		c.TemporalTLS = true
	default:
		bad("TEMPORAL_TLS", "must be true or false, got %q", temporalTLS)
	}
	if (c.TemporalTLSCert == "") != (c.TemporalTLSKey == "") {
		bad("TEMPORAL_TLS_CERT", "and TEMPORAL_TLS_KEY go together: the client certificate and its private key")
	}
	if c.TemporalTLSCert != "" || c.TemporalTLSCA != "" || c.TemporalTLSServerName != "" || c.TemporalAPIKey != "" {
		c.TemporalTLS = true
	}
	if c.TemporalTLS {
		if _, err := c.TemporalTLSConfig(); err != nil {
			errs = append(errs, err)
		}
	}
	checkHostPort("API_ADDR", c.APIAddr)
	checkHostPort("METRICS_ADDR", c.MetricsAddr)
	checkHostPort("WORKER_METRICS_ADDR", c.WorkerMetricsAddr)
	if recipients != "" {
		rs, err := age.ParseRecipients(strings.NewReader(strings.ReplaceAll(recipients, ",", "\n")))
		if err != nil {
			bad("EXPORT_RECIPIENT", "must be age recipients (age1…), comma-separated: %v", err)
		}
		c.ExportRecipients = rs
	}
	if exportRetention != "" {
		d, err := time.ParseDuration(exportRetention)
		if err != nil || d < time.Hour {
			bad("EXPORT_RETENTION", "must be a duration of at least 1h, e.g. 720h, got %q", exportRetention)
		} else {
			c.ExportRetention = d
		}
	}
	for cidr := range strings.SplitSeq(proxies, ",") {
		if cidr = strings.TrimSpace(cidr); cidr == "" {
			continue
		}
		_, n, err := net.ParseCIDR(cidr)
		if err != nil {
			bad("TRUSTED_PROXIES", "%q is not a CIDR network (e.g. 10.0.0.0/8)", cidr)
			continue
		}
		c.TrustedProxies = append(c.TrustedProxies, n)
	}
	if c.MetricsAddr == c.APIAddr {
		bad("METRICS_ADDR", "must differ from API_ADDR: metrics and readiness details are not for API clients")
	}

	if c.TaskQueue == "" || strings.ContainsAny(c.TaskQueue, " \t") {
		bad("TASK_QUEUE", "must be a non-empty name without spaces")
	}

	c.MasterKeyVersion = 1
	switch {
	case masterKey != "":
		v, key, err := parseMasterKey(masterKey)
		if err != nil {
			bad("TENANT_MASTER_KEY", "%v", err)
		} else {
			c.MasterKey, c.MasterKeyVersion = key, v
		}
	case c.Env == EnvDev:
		c.MasterKey = DevMasterKey
	default:
		bad("TENANT_MASTER_KEY", "is required outside APP_ENV=dev (openssl rand -base64 32)")
	}

	for item := range strings.SplitSeq(previousKeys, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		v, key, err := parseMasterKey(item)
		switch {
		case err != nil:
			bad("TENANT_MASTER_KEY_PREVIOUS", "%v", err)
		case !strings.Contains(item, ":"):
			bad("TENANT_MASTER_KEY_PREVIOUS", "each key needs its version: <version>:<base64>")
		case v == c.MasterKeyVersion:
			bad("TENANT_MASTER_KEY_PREVIOUS", "version %d is the current TENANT_MASTER_KEY's", v)
		default:
			if c.PreviousMasterKeys == nil {
				c.PreviousMasterKeys = map[int][]byte{}
			}
			c.PreviousMasterKeys[v] = key
		}
	}

	if c.OperatorToken != "" && len(c.OperatorToken) < 16 {
		bad("OPERATOR_TOKEN", "must be at least 16 characters")
	}

	if shutdown != "" {
		d, err := time.ParseDuration(shutdown)
		if err != nil || d <= 0 {
			bad("SHUTDOWN_TIMEOUT", "must be a positive duration such as 10s, got %q", shutdown)
		} else {
			c.ShutdownTimeout = d
		}
	}
	if workerStop != "" {
		d, err := time.ParseDuration(workerStop)
		if err != nil || d < 0 {
			bad("WORKER_STOP_TIMEOUT", "must be a duration such as 30s (0s: cancel activities at once), got %q", workerStop)
		} else {
			c.WorkerStopTimeout = d
		}
	}
	if pollers != "" {
		// At least 2: the SDK alternates workflow task polls between the normal and the sticky
		// queue, and panics on 1.
		n, err := strconv.Atoi(pollers)
		if err != nil || n < 2 || n > maxWorkerPollers {
			bad("WORKER_POLLERS", "must be a whole number from 2 to %d, got %q", maxWorkerPollers, pollers)
		} else {
			c.WorkerPollers = n
		}
	}
	if c.Env == EnvDev {
		c.OffboardGrace = 0
	}
	if grace != "" {
		d, err := time.ParseDuration(grace)
		if err != nil || d < 0 {
			bad("OFFBOARD_GRACE_PERIOD", "must be a duration such as 72h or 0s, got %q", grace)
		} else {
			c.OffboardGrace = d
		}
	}
	if overlap != "" {
		d, err := time.ParseDuration(overlap)
		if err != nil || d < 0 {
			bad("SECRET_ROTATION_OVERLAP", "must be a duration such as 24h or 0s, got %q", overlap)
		} else {
			c.SecretOverlap = d
		}
	}
	// The rule of audit.ValidPlatformDatabase, repeated to keep this package free of the
	// MongoDB driver: a safe database name that cannot be a tenant's ("tenant_" + id).
	if !platformDatabase.MatchString(c.AuditPlatformDatabase) || strings.HasPrefix(c.AuditPlatformDatabase, "tenant_") {
		bad("AUDIT_PLATFORM_DATABASE", "must be 1 to 63 lowercase letters, digits or '_', starting with a letter and not with \"tenant_\"")
	}
	if autoRepair != "" {
		b, err := strconv.ParseBool(autoRepair)
		if err != nil {
			bad("RECONCILE_AUTO_REPAIR", "must be true or false, got %q", autoRepair)
		}
		c.ReconcileAutoRepair = b
	}
	if level != "" {
		if err := c.LogLevel.UnmarshalText([]byte(level)); err != nil {
			bad("LOG_LEVEL", "must be debug, info, warn or error, got %q", level)
		}
	}
	return c, errors.Join(errs...)
}

var platformDatabase = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// parseMasterKey reads "[<version>:]<base64 of 32 bytes>"; no version means 1. The error
// never contains the key.
func parseMasterKey(s string) (int, []byte, error) {
	version := 1
	if v, rest, ok := strings.Cut(s, ":"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 255 {
			return 0, nil, errors.New("the version before ':' must be 1 to 255")
		}
		version, s = n, rest
	}
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(key) != 32 {
		return 0, nil, errors.New("must be 32 bytes, base64-encoded (openssl rand -base64 32), optionally as <version>:<base64>")
	}
	return version, key, nil
}

// TemporalTLSConfig is the TLS configuration of the connection to Temporal, or nil when TLS is
// off: the client certificate (mTLS) when TEMPORAL_TLS_CERT/KEY are set, the CA pool of
// TEMPORAL_TLS_CA (else the system roots), TLS 1.2 at least. Errors name the variable and the
// file, never a key's content.
func (c Config) TemporalTLSConfig() (*tls.Config, error) {
	if !c.TemporalTLS {
		return nil, nil
	}
	t := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.TemporalTLSServerName}
	if c.TemporalTLSCert != "" && c.TemporalTLSKey != "" {
		cert, err := tls.LoadX509KeyPair(c.TemporalTLSCert, c.TemporalTLSKey)
		if err != nil {
			return nil, fmt.Errorf("TEMPORAL_TLS_CERT: cannot load the certificate %s with its key TEMPORAL_TLS_KEY: %w", c.TemporalTLSCert, err)
		}
		t.Certificates = []tls.Certificate{cert}
	}
	if c.TemporalTLSCA != "" {
		pem, err := os.ReadFile(c.TemporalTLSCA)
		if err != nil {
			return nil, fmt.Errorf("TEMPORAL_TLS_CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("TEMPORAL_TLS_CA: %s holds no PEM certificate", c.TemporalTLSCA)
		}
		t.RootCAs = pool
	}
	return t, nil
}

// MasterKeys returns the current master key version and every version held (current and
// previous), for seal.NewKeyring.
func (c Config) MasterKeys() (int, map[int][]byte) {
	keys := map[int][]byte{c.MasterKeyVersion: c.MasterKey}
	for v, k := range c.PreviousMasterKeys {
		keys[v] = k
	}
	return c.MasterKeyVersion, keys
}

// UsesDevMasterKey reports whether the insecure development key is in use, so main can warn.
func (c Config) UsesDevMasterKey() bool { return string(c.MasterKey) == string(DevMasterKey) }

// NewLogger returns the process logger: JSON lines on w at the configured level.
func (c Config) NewLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: c.LogLevel}))
}
