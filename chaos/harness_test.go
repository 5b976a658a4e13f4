package chaos

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"

	"github.com/misybot/tenancy/api"
	"github.com/misybot/tenancy/internal/control/lifecycle"
	"github.com/misybot/tenancy/internal/control/schedule"
	"github.com/misybot/tenancy/internal/domain/audit"
	"github.com/misybot/tenancy/internal/domain/conversations"
	"github.com/misybot/tenancy/internal/domain/decision"
	"github.com/misybot/tenancy/internal/domain/registry"
	"github.com/misybot/tenancy/internal/keys/keyring"
	"github.com/misybot/tenancy/internal/keys/seal"
	"github.com/misybot/tenancy/internal/keys/signing"
	"github.com/misybot/tenancy/internal/model/limits"
	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/platform/clients"
	"github.com/misybot/tenancy/internal/platform/operators"
	"github.com/misybot/tenancy/internal/stores/rls"
	"github.com/misybot/tenancy/internal/stores/tenantdb"
	"github.com/misybot/tenancy/internal/stores/tenantmongo"
	"github.com/misybot/tenancy/internal/stores/tenantredis"
	"github.com/misybot/tenancy/internal/testkit/devtemporal"
	"github.com/misybot/tenancy/internal/testkit/testenv"
	"github.com/misybot/tenancy/workflows"
)

// full is set by `make chaos` (CHAOS=1): the sizes and every variant. Without it the
// scenarios that run in `make test` use smaller sizes.
var full = os.Getenv("CHAOS") == "1"

// size is short under `make test`, long under `make chaos`.
func size(short, long int) int {
	if full {
		return long
	}
	return short
}

// needsServers skips under -short (make test-short), like every test that needs the servers.
func needsServers(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("chaos scenario: needs the real servers (make test, make chaos)")
	}
}

const token = "chaos-operator-token-0123456789"

// Step budget of the suite's runs. The attempt timeout is short so that an attempt lost with a
// killed worker is retried within seconds (production: 2 minutes); the budget is twice the
// default so that a step can lose an attempt to every kill of a scenario without parking for
// an operator. Nothing else differs from production.
const (
	stepTimeout  = 10 * time.Second
	stepAttempts = 10
)

var masterKey = testenv.MasterKey

var exportIdentity = func() *age.X25519Identity {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		panic(err)
	}
	return id
}()

// binDir holds the worker binary; TestMain removes it.
var binDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// workerBin is the real worker binary, built once per test binary.
var workerBin = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "chaos-worker-")
	if err != nil {
		return "", err
	}
	binDir = dir
	bin := filepath.Join(dir, "worker")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/misybot/tenancy/worker").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build worker: %w: %s", err, out)
	}
	return bin, nil
})

// stack is the control plane under test: the API in-process, worker processes started by the
// scenario, and every store reached through a proxy the scenario can cut. The stack's own
// handles (owner, app, mongo, redis, temporal) connect directly, to inspect.
type stack struct {
	t            *testing.T
	dir          string
	queue        string
	temporalAddr string
	temporal     client.Client
	owner        *pgxpool.Pool
	app          *pgxpool.Pool
	mongo        *mongo.Client
	redis        *redis.Client
	platformDB   string
	url          string
	// pg, mongoProxy and redisProxy stand between the stores and the API and workers.
	pg, mongoProxy, redisProxy *testenv.Proxy
	pgURL, mongoURL, redisURL  string
	http                       *http.Client
	// cellStores are the PostgreSQL, MongoDB and Redis (direct, not through a proxy) of each test cell a
	// scenario registered, by cell id: where holdingsOf looks for the cell's tenants.
	cellStores map[string]cellStores
	audit      func() *audit.Writer
}

// cellStores are a test cell's PostgreSQL (as its owner), MongoDB and Redis, reached directly,
// to inspect.
type cellStores struct {
	postgres *pgxpool.Pool
	mongo    *mongo.Client
	redis    *redis.Client
}

// newStack starts the API on a new task queue, talking to the Temporal server at
// temporalAddr ("" for the shared dev server) and to the stores through proxies.
func newStack(t *testing.T, temporalAddr string) *stack {
	t.Helper()
	needsServers(t)
	s := &stack{
		t: t, dir: t.TempDir(), queue: "chaos-" + testenv.TenantID("q"), temporalAddr: cmpOr(temporalAddr, testenv.TemporalAddress),
		owner: testenv.OwnerPool(t), app: testenv.AppPool(t), mongo: testenv.MongoClient(t), redis: testenv.RedisClient(t),
		http: &http.Client{Timeout: time.Minute}, cellStores: map[string]cellStores{},
	}
	s.audit = sync.OnceValue(s.newAuditWriter)
	s.temporal = s.temporalClient("test")
	s.platformDB = strings.ReplaceAll(testenv.TenantID("platform_chaos"), "-", "_")
	t.Cleanup(func() { _ = s.mongo.Database(s.platformDB).Drop(context.Background()) })

	s.pg = testenv.StartProxy(t, hostOf(t, testenv.AppDatabaseURL))
	s.mongoProxy = testenv.StartProxy(t, hostOf(t, testenv.MongoURI))
	s.redisProxy = testenv.StartProxy(t, hostOf(t, testenv.RedisURL))
	s.pgURL = withHost(t, testenv.AppDatabaseURL, s.pg.Addr)
	s.mongoURL = withHost(t, testenv.MongoURI, s.mongoProxy.Addr)
	s.redisURL = withHost(t, testenv.RedisURL, s.redisProxy.Addr)

	ctx := context.Background()
	pool, err := pgxpool.New(ctx, s.pgURL)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	mc, err := mongo.Connect(ctx, options.Client().ApplyURI(s.mongoURL))
	require.NoError(t, err)
	t.Cleanup(func() { _ = mc.Disconnect(context.Background()) })
	ropts, err := redis.ParseURL(s.redisURL)
	require.NoError(t, err)
	rc := redis.NewClient(ropts)
	t.Cleanup(func() { _ = rc.Close() })

	sealer, err := seal.New(masterKey)
	require.NoError(t, err)
	logger := s.fileLogger("api")
	cl := &clients.Clients{Postgres: pool, Mongo: mc, Redis: rc, AuditPlatformDatabase: s.platformDB}
	e := api.New(api.Config{
		Registry: registry.New(pool), Settings: tenantdb.New(pool), Sealer: sealer, Operators: operators.New(pool, token),
		Lifecycle: lifecycle.New(s.temporalClient("api"), lifecycle.Options{
			TaskQueue: s.queue, StepTimeout: stepTimeout, StepAttempts: stepAttempts, Logger: logger,
			Decisions: decision.New(pool),
		}),
		Redis:         tenantredis.New(rc),
		Conversations: conversations.New(tenantmongo.New(mc), keyring.New(pool, sealer), tenantredis.New(rc), tenantdb.New(pool), limits.Default()),
		SecretOverlap: time.Hour,
		Audit:         cl.AuditWriter(sealer),
		ExportDir:     s.dir,
		Logger:        logger,
	})
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// hostOf is the host:port of a database URL.
func hostOf(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	return u.Host
}

// withHost is raw with its host:port replaced by addr.
func withHost(t *testing.T, raw, addr string) string {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	u.Host = addr
	return u.String()
}

// fileLogger writes JSON lines to <dir>/<name>.log (printed when the test fails), so that
// `go test -v` shows the scenarios' own lines only.
func (s *stack) fileLogger(name string) *slog.Logger {
	f, err := os.Create(filepath.Join(s.dir, name+".log"))
	require.NoError(s.t, err)
	s.t.Cleanup(func() { _ = f.Close() })
	return slog.New(slog.NewJSONHandler(f, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// temporalClient is a lazy client of the stack's Temporal server: it reconnects by itself
// when the server comes back after a restart.
func (s *stack) temporalClient(name string) client.Client {
	c, err := client.NewLazyClient(client.Options{HostPort: s.temporalAddr, Namespace: "default",
		Logger: tlog.NewStructuredLogger(s.fileLogger("temporal-" + name))})
	require.NoError(s.t, err)
	s.t.Cleanup(c.Close)
	return c
}

// logf prints one line of the scenario's report.
func (s *stack) logf(format string, args ...any) {
	s.t.Helper()
	s.t.Logf("chaos: "+format, args...)
}

// --- worker processes ------------------------------------------------------------------------

// proc is a worker process.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// Pid is the process id, which starts the worker's Temporal identity ("<pid>@host@queue").
func (p *proc) Pid() int { return p.cmd.Process.Pid }

// Kill sends SIGKILL and reaps the process.
func (p *proc) Kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// startWorker runs the real worker binary on the stack's task queue, its stores through the
// proxies.
func (s *stack) startWorker(name string) *proc {
	s.t.Helper()
	bin, err := workerBin()
	require.NoError(s.t, err)
	logPath := filepath.Join(s.dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	require.NoError(s.t, err)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"APP_ENV=dev", "LOG_LEVEL=info",
		"DATABASE_URL="+s.pgURL, "MONGODB_URI="+s.mongoURL, "REDIS_URL="+s.redisURL,
		"TEMPORAL_ADDRESS="+s.temporalAddr, "TASK_QUEUE="+s.queue,
		"TENANT_MASTER_KEY="+base64.StdEncoding.EncodeToString(masterKey), "EXPORT_DIR="+s.dir,
		"AUDIT_PLATFORM_DATABASE="+s.platformDB, "EXPORT_RECIPIENT="+exportIdentity.Recipient().String(),
		"OFFBOARD_GRACE_PERIOD=0s",
		"WORKER_METRICS_ADDR=127.0.0.1:0", // beside other tests' workers
	)
	cmd.Stdout, cmd.Stderr = f, f
	require.NoError(s.t, cmd.Start())
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); _ = f.Close(); close(p.done) }()
	s.t.Cleanup(func() {
		p.Kill()
		if s.t.Failed() {
			b, _ := os.ReadFile(logPath)
			s.t.Logf("%s log (last 4 KiB):\n%s", name, tail(b, 4096))
		}
	})
	// Each worker process creates its task queue's retention schedule; it dies with the test.
	s.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.temporal.ScheduleClient().GetHandle(ctx, schedule.AuditRetentionID(s.queue)).Delete(ctx)
	})
	return p
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// --- the API, as an operator and as a tenant ------------------------------------------------

// do sends an operator request and decodes the JSON answer.
func (s *stack) do(method, path, body string) (int, map[string]any, error) {
	req, err := http.NewRequest(method, s.url+path, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := s.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			return res.StatusCode, nil, fmt.Errorf("%s %s: %d %s", method, path, res.StatusCode, raw)
		}
	}
	return res.StatusCode, out, nil
}

// must sends an operator request that must be answered with want.
func (s *stack) must(want int, method, path, body string) map[string]any {
	s.t.Helper()
	code, out, err := s.do(method, path, body)
	require.NoError(s.t, err)
	require.Equal(s.t, want, code, "%s %s: %v", method, path, out)
	return out
}

func registrationBody(id string) string {
	return `{"tenantId":"` + id + `","tenantName":"Chaos ` + id + `","contactEmail":"ops@` + id + `.test","tenantType":"standard","allowedOrigins":["https://` + id + `.test"]}`
}

// run is a started lifecycle run.
type run struct {
	tenant, workflowID, runID, secret string
}

func runOf(id string, body map[string]any) run {
	r := run{tenant: id}
	r.workflowID, _ = body["workflowId"].(string)
	r.runID, _ = body["runId"].(string)
	r.secret, _ = body["tenantSecret"].(string)
	return r
}

// onboard registers (when new) and onboards a tenant through the API.
func (s *stack) onboard(id string) run {
	s.t.Helper()
	return runOf(id, s.must(http.StatusAccepted, http.MethodPost, api.TenantsPath+"/onboard", registrationBody(id)))
}

// register registers a tenant through the API and returns its secret.
func (s *stack) register(id string) string {
	s.t.Helper()
	body := s.must(http.StatusCreated, http.MethodPost, api.TenantsPath, registrationBody(id))
	secret, _ := body["tenantSecret"].(string)
	require.NotEmpty(s.t, secret)
	return secret
}

// onboardAll onboards n new tenants at once and waits until every run completed.
func (s *stack) onboardAll(prefix string, n int) []run {
	s.t.Helper()
	runs := make([]run, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { runs[i] = s.onboard(testenv.TenantID(prefix)) })
	}
	wg.Wait()
	for _, r := range runs {
		require.NoError(s.t, s.wait(r), "onboarding %s", r.tenant)
	}
	return runs
}

// wait blocks until the run ends and returns its error. Errors of the connection to Temporal
// (a restarting server) are retried for up to five minutes; the run's own failure is returned.
func (s *stack) wait(r run) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for {
		err := s.temporal.GetWorkflow(ctx, r.workflowID, r.runID).Get(ctx, nil)
		var wfErr *temporal.WorkflowExecutionError
		if err == nil || errors.As(err, &wfErr) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// waitAll waits for every run and returns how many completed.
func (s *stack) waitAll(runs []run) int {
	s.t.Helper()
	errs := make([]error, len(runs))
	var wg sync.WaitGroup
	for i, r := range runs {
		wg.Go(func() { errs[i] = s.wait(r) })
	}
	wg.Wait()
	ok := 0
	for i, err := range errs {
		if assertNoError(s.t, err, "run of %s", runs[i].tenant) {
			ok++
		}
	}
	return ok
}

func assertNoError(t *testing.T, err error, format string, args ...any) bool {
	t.Helper()
	if err != nil {
		t.Errorf(format+": %v", append(args, err)...)
		return false
	}
	return true
}

// status is the tenant's status in the registry.
func (s *stack) status(id string) tenant.Status {
	s.t.Helper()
	var st string
	require.NoError(s.t, s.owner.QueryRow(context.Background(), `SELECT status FROM tenants WHERE tenant_id = $1`, id).Scan(&st))
	return tenant.Status(st)
}

// signed sends a tenant API request signed with the tenant's secret, as the tenant's site would.
func (s *stack) signed(id, secret, method, path string, body []byte) (int, []byte, error) {
	req, err := http.NewRequest(method, s.url+api.TenantAPIPath+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	ts := time.Now().Unix()
	nb := make([]byte, 12)
	_, _ = rand.Read(nb)
	nonce := hex.EncodeToString(nb)
	canonical := signing.Canonical(method, req.URL.EscapedPath(), req.URL.RawQuery, ts, nonce, body)
	req.Header.Set(signing.HeaderTenant, id)
	req.Header.Set(signing.HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(signing.HeaderNonce, nonce)
	req.Header.Set(signing.HeaderSignature, signing.Header(signing.MAC([]byte(secret), canonical)))
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := s.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	return res.StatusCode, raw, err
}

// --- holding a step ------------------------------------------------------------------------

// holdProvisioning takes the row ProvisionPostgres inserts first for each (registered) tenant,
// in an open transaction of the owner role (directly, not through the proxy): that step blocks,
// started, until release. It is how a scenario knows its runs are mid-step when it strikes.
func (s *stack) holdProvisioning(ids []string) (release func()) {
	s.t.Helper()
	ctx := context.Background()
	tx, err := s.owner.Begin(ctx)
	require.NoError(s.t, err)
	for _, id := range ids {
		_, err = tx.Exec(ctx, `SELECT set_config('app.tenant_id', $1, true)`, id)
		require.NoError(s.t, err)
		_, err = tx.Exec(ctx, `INSERT INTO tenant_settings (tenant_id, key, value) VALUES ($1, 'locale', '"held"')`, id)
		require.NoError(s.t, err)
	}
	var once sync.Once
	release = func() { once.Do(func() { _ = tx.Rollback(context.Background()) }) }
	s.t.Cleanup(release)
	return release
}

// provisioningStartedOn waits until ProvisionPostgres of every tenant is started and returns,
// per tenant, the identity of the worker that runs it.
func (s *stack) provisioningStartedOn(ids []string) map[string]string {
	s.t.Helper()
	ctx := context.Background()
	on := map[string]string{}
	require.Eventually(s.t, func() bool {
		for _, id := range ids {
			if on[id] != "" {
				continue
			}
			desc, err := s.temporal.DescribeWorkflow(ctx, workflows.ProvisionWorkflowID(id), "")
			if err != nil {
				continue
			}
			for _, pa := range desc.RawResponse.GetPendingActivities() {
				if pa.GetActivityType().GetName() == "ProvisionPostgres" && pa.GetState() == enumspb.PENDING_ACTIVITY_STATE_STARTED {
					on[id] = pa.GetLastWorkerIdentity()
				}
			}
		}
		return len(on) == len(ids)
	}, 2*time.Minute, 100*time.Millisecond, "ProvisionPostgres never started for every held tenant")
	return on
}

// --- what a tenant has ---------------------------------------------------------------------

// holdings is everything a tenant has in the three stores, and its audit chain.
type holdings struct {
	Postgres  map[string]int
	MongoDBs  int
	Mongo     map[string]int64
	RedisKeys []string
	Events    []audit.Event
}

// holdingsOf reads what the tenant has, directly from the stores, after relaying the events
// its cell's PostgreSQL keeps and shipping its audit chain's backlog (what the worker's relay
// and shipper would have done by now).
func (s *stack) holdingsOf(id string) holdings {
	s.t.Helper()
	ctx := context.Background()
	h := holdings{Postgres: map[string]int{}, Mongo: map[string]int64{}}
	if p := s.postgresOf(id); p != s.owner {
		src := audit.RelaySource{Cell: "of " + id, Pool: p}
		_, err := s.audit().NewRelay(nil, s.fileLogger("relay")).Drain(ctx, src)
		require.NoError(s.t, err)
	}
	if s.status(id) != tenant.StatusOffboarded { // an offboarded tenant's chain went with it
		_, err := s.tenantChain(id).Ship(ctx)
		require.NoError(s.t, err)
	}
	// The control plane's database (keys, audit outbox; every table for the default cell's
	// tenants) and, for a test cell's tenant, its cell's (its tenant tables).
	pools := []*pgxpool.Pool{s.owner}
	if p := s.postgresOf(id); p != s.owner {
		pools = append(pools, p)
	}
	for _, p := range pools {
		require.NoError(s.t, rls.Tx(tenant.WithID(ctx, id), p, func(tx pgx.Tx) error {
			tables, err := tenantdb.TenantTables(ctx, tx)
			if err != nil {
				return err
			}
			for _, table := range tables {
				var n int
				if err := tx.QueryRow(ctx, `SELECT count(*) FROM `+table.Sanitize()+` WHERE tenant_id = $1`, id).Scan(&n); err != nil {
					return err
				}
				if n > 0 {
					h.Postgres[table[len(table)-1]] += n
				}
			}
			return nil
		}))
	}
	mc, rc := s.storesOf(id)
	dbs, err := mc.ListDatabaseNames(ctx, bson.D{{Key: "name", Value: tenantmongo.DatabasePrefix + id}})
	require.NoError(s.t, err)
	h.MongoDBs = len(dbs)
	if h.MongoDBs == 1 {
		db := mc.Database(tenantmongo.DatabasePrefix + id)
		names, err := db.ListCollectionNames(ctx, bson.D{})
		require.NoError(s.t, err)
		for _, n := range names {
			c, err := db.Collection(n).CountDocuments(ctx, bson.D{})
			require.NoError(s.t, err)
			h.Mongo[n] = c
		}
		cur, err := db.Collection(audit.Collection).Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "seq", Value: 1}}))
		require.NoError(s.t, err)
		require.NoError(s.t, cur.All(ctx, &h.Events))
	}
	var cursor uint64
	for {
		keys, next, err := rc.Scan(ctx, cursor, "tenant:{"+id+"}:*", 1000).Result()
		require.NoError(s.t, err)
		h.RedisKeys = append(h.RedisKeys, keys...)
		if cursor = next; cursor == 0 {
			break
		}
	}
	slices.Sort(h.RedisKeys)
	return h
}

// postgresOf is the PostgreSQL (as its owner) of the tenant's cell: the stack's for the default
// cell, a test cell's otherwise.
func (s *stack) postgresOf(id string) *pgxpool.Pool {
	s.t.Helper()
	var cell *string
	require.NoError(s.t, s.owner.QueryRow(context.Background(), `SELECT cell_id FROM tenants WHERE tenant_id = $1`, id).Scan(&cell))
	if cell != nil {
		if cs, ok := s.cellStores[*cell]; ok {
			return cs.postgres
		}
	}
	return s.owner
}

// storesOf are the MongoDB and Redis of the tenant's cell: the stack's own for the default
// cell (or a tenant not placed), a test cell's (cellStores) otherwise.
func (s *stack) storesOf(id string) (*mongo.Client, *redis.Client) {
	s.t.Helper()
	var cell *string
	require.NoError(s.t, s.owner.QueryRow(context.Background(), `SELECT cell_id FROM tenants WHERE tenant_id = $1`, id).Scan(&cell))
	if cell == nil {
		return s.mongo, s.redis
	}
	if cs, ok := s.cellStores[*cell]; ok {
		return cs.mongo, cs.redis
	}
	return s.mongo, s.redis
}

// auditWriter reads and verifies the stack's chains with the key the API and workers use. It
// is made once per stack: its cell router keeps a client per cell it reaches (a tenant chain
// on a test cell), closed when the test ends.
func (s *stack) auditWriter() *audit.Writer { return s.audit() }

func (s *stack) newAuditWriter() *audit.Writer {
	sealer, err := seal.New(masterKey)
	require.NoError(s.t, err)
	cl := &clients.Clients{Postgres: s.app, Mongo: s.mongo, AuditPlatformDatabase: s.platformDB}
	router := cl.Cells(sealer, s.fileLogger("inspect")) // the router AuditWriter uses
	s.t.Cleanup(func() { _ = router.Close(context.Background()) })
	return cl.AuditWriter(sealer)
}

func (s *stack) tenantChain(id string) *audit.Chain {
	c, err := s.auditWriter().TenantChain(tenant.WithID(context.Background(), id))
	require.NoError(s.t, err)
	return c
}

// onboardedSteps are the audit events of one onboarding, one per step: mark onboarding, keys,
// the three stores, the onboarding event and mark active.
var onboardedSteps = []string{"tenant.onboard",
	"workflow.step.EnsureKeys", "workflow.step.PlaceTenant", "workflow.step.ProvisionMongo", "workflow.step.ProvisionPostgres", "workflow.step.ProvisionRedis",
	"workflow.step.TransitionStatus", "workflow.step.TransitionStatus"}

// tally counts what a scenario checked, for its report line.
type tally struct {
	tenants, pgRows, mongoDBs, redisKeys, events, chains int
	// retried counts steps whose recorded attempt is not the first: work a failure made run
	// again, recorded once.
	retried int
}

func (c tally) String() string {
	return fmt.Sprintf("%d tenants: %d PostgreSQL rows, %d MongoDB databases, %d Redis keys, %d audit events (no duplicate id or step; %d steps ran more than once, each recorded once), %d chains verified",
		c.tenants, c.pgRows, c.mongoDBs, c.redisKeys, c.events, c.retried, c.chains)
}

// checkOnboarded checks that each tenant is active with exactly one set of resources (three
// default settings, its owner member, one data key; one MongoDB database with its three
// collections; the Redis context record alone) and exactly one audit event per step of its
// onboarding (extra, when given, are further actions expected in its chain), in a chain that
// verifies.
func (s *stack) checkOnboarded(ids []string, extra ...string) tally {
	s.t.Helper()
	var c tally
	for _, id := range ids {
		require.Equal(s.t, tenant.StatusActive, s.status(id), id)
		h := s.holdingsOf(id)
		c.add(h)
		events := len(onboardedSteps) + len(extra)
		// The outbox keeps a row per event (shipped ones marked so): one per event too.
		require.Equal(s.t, map[string]int{"tenant_settings": 3, "tenant_members": 1, "tenant_keys": 1, "audit_outbox": events}, h.Postgres, "%s: PostgreSQL rows", id)
		require.Equal(s.t, 1, h.MongoDBs, "%s: one MongoDB database", id)
		require.Equal(s.t, map[string]int64{"conversations": 0, "messages": 0, audit.Collection: int64(events)}, h.Mongo, "%s: collections", id)
		require.Equal(s.t, []string{tenantredis.Key(id, "context", "record")}, h.RedisKeys, "%s: Redis keys", id)
		want := slices.Concat(onboardedSteps, extra)
		slices.Sort(want)
		require.Equal(s.t, want, s.checkChain(id, h.Events), "%s: one audit event per step", id)
		c.chains++
	}
	return c
}

func (c *tally) add(h holdings) {
	c.tenants++
	for _, n := range h.Postgres {
		c.pgRows += n
	}
	c.mongoDBs += h.MongoDBs
	c.redisKeys += len(h.RedisKeys)
	c.events += len(h.Events)
	for _, e := range h.Events {
		if a := e.Details["attempt"]; a != "" && a != "1" {
			c.retried++
		}
	}
}

// checkChain checks a tenant's shipped events (no duplicate id, seqs 1..n with no gap) and
// verifies the chain; it returns the sorted actions.
func (s *stack) checkChain(id string, events []audit.Event) []string {
	s.t.Helper()
	// A step's event id is derived from its workflow, run and activity id, which Temporal keeps
	// across retries: a step written twice would show here as a duplicate id, or (under another
	// id) as an extra action in the caller's comparison.
	ids := map[string]bool{}
	var actions []string
	for i, e := range events {
		require.False(s.t, ids[e.ID], "%s: event %s twice", id, e.ID)
		ids[e.ID] = true
		require.EqualValues(s.t, i+1, e.Seq, "%s: seqs without gap", id)
		actions = append(actions, e.Action)
	}
	rep, err := s.tenantChain(id).Verify(context.Background())
	require.NoError(s.t, err)
	require.True(s.t, rep.OK, "%s: chain breaks at %+v", id, rep.FirstBroken)
	require.EqualValues(s.t, len(events), rep.Checked, "%s: every event verified", id)
	slices.Sort(actions)
	return actions
}

// --- a Temporal dev server of the suite's own ---------------------------------------------

// devServer is a Temporal dev server the scenario may kill and restart; its state is a SQLite
// file in the test's folder, so runs survive a restart. Started with the low-latency settings
// of scripts/services.sh.
type devServer struct {
	t    *testing.T
	addr string
	args []string
	log  string
	cmd  *exec.Cmd
	done chan struct{}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func startDevServer(t *testing.T) *devServer {
	t.Helper()
	out, err := exec.Command("../scripts/tools.sh", "temporal").Output()
	require.NoError(t, err, "scripts/tools.sh temporal")
	bin := strings.TrimSpace(string(out))
	dir := t.TempDir()
	port := freePort(t)
	d := &devServer{t: t, addr: fmt.Sprintf("127.0.0.1:%d", port), log: filepath.Join(dir, "temporal.log")}
	d.args = []string{"server", "start-dev", "--ip", "127.0.0.1", "--port", strconv.Itoa(port), "--headless",
		"--http-port", strconv.Itoa(freePort(t)), "--metrics-port", strconv.Itoa(freePort(t)),
		"--db-filename", filepath.Join(dir, "temporal.db"), "--log-level", "warn"}
	d.args = append(append(d.args, devtemporal.Tuning...), devtemporal.SearchAttributeFlags()...)
	d.args = append([]string{bin}, d.args...)
	d.start()
	t.Cleanup(d.kill)
	return d
}

func (d *devServer) start() {
	d.t.Helper()
	f, err := os.OpenFile(d.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	require.NoError(d.t, err)
	d.cmd = exec.Command(d.args[0], d.args[1:]...)
	d.cmd.Stdout, d.cmd.Stderr = f, f
	require.NoError(d.t, d.cmd.Start())
	d.done = make(chan struct{})
	cmd, done := d.cmd, d.done
	go func() { _ = cmd.Wait(); _ = f.Close(); close(done) }()
	c, err := client.NewLazyClient(client.Options{HostPort: d.addr, Logger: tlog.NewStructuredLogger(slog.New(slog.DiscardHandler))})
	require.NoError(d.t, err)
	defer c.Close()
	require.Eventually(d.t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := c.CheckHealth(ctx, &client.CheckHealthRequest{})
		return err == nil
	}, time.Minute, 200*time.Millisecond, "the dev server did not become healthy (log %s)", d.log)
}

// kill SIGKILLs the server (a crash, not a clean stop) and waits until it is gone.
func (d *devServer) kill() {
	if d.cmd == nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.done
	d.cmd = nil
}
