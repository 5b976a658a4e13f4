// Package e2e drives the whole control plane as an operator does: HTTP requests to the API,
// workflows on the Temporal dev server, activities against real PostgreSQL, FerretDB and Redis.
package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/worker"

	"github.com/misybot/tenancy/activities"
	"github.com/misybot/tenancy/api"
	"github.com/misybot/tenancy/internal/control/lifecycle"
	"github.com/misybot/tenancy/internal/domain/audit"
	"github.com/misybot/tenancy/internal/domain/conversations"
	"github.com/misybot/tenancy/internal/domain/decision"
	"github.com/misybot/tenancy/internal/domain/reconcile"
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
	"github.com/misybot/tenancy/internal/testkit/testenv"
	"github.com/misybot/tenancy/workflows"
)

const token = "e2e-operator-token-0123456789"

var masterKey = testenv.MasterKey

// exportIdentity decrypts the stacks' offboarding archives; its recipient encrypts them.
var exportIdentity = func() *age.X25519Identity {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		panic(err)
	}
	return id
}()

type stack struct {
	t        *testing.T
	url      string
	queue    string
	temporal client.Client
	owner    *pgxpool.Pool
	mongo    *mongo.Client
	redis    *redis.Client
	exports  string
	// conversations writes tenant data directly, as the signed tenant API would.
	conversations *conversations.Store
	// platformDB is this stack's own platform audit database (audit.WithPlatformDatabase), so
	// its platform chain holds only events written under this stack's key.
	platformDB string
	app        *pgxpool.Pool
	// cells routes tenant data to each tenant's cell.
	cells *clients.CellRouter
}

// audit is a writer over the stack's chains, with the key the API and the workers use, to
// verify them.
func (s *stack) audit() *audit.Writer {
	sealer, err := seal.New(masterKey)
	require.NoError(s.t, err)
	return (&clients.Clients{Postgres: s.app, Mongo: s.mongo, AuditPlatformDatabase: s.platformDB}).AuditWriter(sealer)
}

// tenantChain is a tenant's audit chain.
func (s *stack) tenantChain(id string) *audit.Chain {
	c, err := s.audit().TenantChain(tenant.WithID(context.Background(), id))
	require.NoError(s.t, err)
	return c
}

// platform is the stack's platform audit collection, with what waited in the outbox shipped.
func (s *stack) platform() *mongo.Collection {
	_, err := s.audit().PlatformChain().Ship(context.Background())
	require.NoError(s.t, err)
	return s.mongo.Database(s.platformDB).Collection(audit.Collection)
}

// newStack starts the API in-process on its own task queue; withWorker also runs a worker
// in-process (the kill test runs worker processes instead).
func newStack(t *testing.T, withWorker bool) *stack {
	t.Helper()
	s := &stack{
		t: t, queue: "e2e-" + testenv.TenantID("q"), temporal: testenv.TemporalClient(t),
		owner: testenv.OwnerPool(t), mongo: testenv.MongoClient(t), redis: testenv.RedisClient(t), exports: t.TempDir(),
	}
	app := testenv.AppPool(t)
	s.app = app
	sealer, err := seal.New(masterKey)
	require.NoError(t, err)
	s.platformDB = strings.ReplaceAll(testenv.TenantID("platform_e2e"), "-", "_")
	t.Cleanup(func() { _ = s.mongo.Database(s.platformDB).Drop(context.Background()) })
	cl := &clients.Clients{Postgres: app, Mongo: s.mongo, Redis: s.redis, AuditPlatformDatabase: s.platformDB}
	// Tenant data through the cell router, as the product wires it (wiring.API).
	s.cells = cl.Cells(sealer, testenv.Logger(t))
	s.conversations = conversations.New(s.cells.TenantMongo(), keyring.New(app, sealer), s.cells.TenantRedis(), s.cells.TenantDB(), limits.Default())
	e := api.New(api.Config{
		Registry: registry.New(app), Settings: s.cells.TenantDB(), Sealer: sealer, Operators: operators.New(app, token),
		Lifecycle: lifecycle.New(s.temporal, lifecycle.Options{TaskQueue: s.queue, StepTimeout: 3 * time.Second, KeySettleDelay: time.Second, Decisions: decision.New(app),
			Cells: s.cells.Registry(), Healthy: s.cells.Healthy}),
		Redis: s.cells.TenantRedis(), Conversations: s.conversations, SecretOverlap: time.Hour,
		Audit:     cl.AuditWriter(sealer),
		ExportDir: s.exports,
		Logger:    testenv.Logger(t),

		Reconciliation: &api.Reconciliation{Reports: reconcile.NewReports(app), Reconciler: lifecycle.NewReconciler(s.temporal, s.queue, decision.New(app))},
		Cells:          s.cells,
	})
	srv := httptest.NewServer(checkOpenAPI(t, e)) // every request and answer checked against the API's OpenAPI document
	t.Cleanup(srv.Close)
	s.url = srv.URL

	if withWorker {
		acts := activities.New(activities.Deps{Clients: cl, Sealer: sealer, ExportDir: s.exports, Logger: testenv.Logger(t)})
		acts.ExportRecipients = []age.Recipient{exportIdentity.Recipient()}
		w := worker.New(s.temporal, s.queue, worker.Options{Interceptors: []interceptor.WorkerInterceptor{activities.NewAuditInterceptor(acts)}})
		workflows.Register(w)
		w.RegisterActivity(acts)
		require.NoError(t, w.Start())
		t.Cleanup(w.Stop)
		shipCtx, stop := context.WithCancel(context.Background())
		go acts.Audit.NewShipper(testenv.Logger(t)).Run(shipCtx)
		go acts.Audit.NewRelay(acts.Cells.RelaySources, testenv.Logger(t)).Run(shipCtx)
		t.Cleanup(stop)
	}
	return s
}

func (s *stack) do(method, path, body string) (int, map[string]any) {
	s.t.Helper()
	return s.doAs(token, method, path, body)
}

// doAs sends an operator request with the token tok.
func (s *stack) doAs(tok, method, path, body string) (int, map[string]any) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.url+path, strings.NewReader(body))
	require.NoError(s.t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(s.t, err)
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out map[string]any
	if len(raw) > 0 {
		require.NoError(s.t, json.Unmarshal(raw, &out), string(raw))
	}
	return res.StatusCode, out
}

func onboardBody(id, typ string) string {
	return `{"tenantId":"` + id + `","tenantName":"T ` + id + `","contactEmail":"ops@` + id + `.test","tenantType":"` + typ + `","allowedOrigins":["https://` + id + `.test"]}`
}

// wait blocks until the run ends and returns its error.
func (s *stack) wait(body map[string]any) error {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return s.temporal.GetWorkflow(ctx, body["workflowId"].(string), body["runId"].(string)).Get(ctx, nil)
}

// state is everything a tenant has in the three stores.
type state struct {
	Postgres    map[string]int
	MongoExists bool
	Mongo       map[string]int64
	RedisKeys   []string
}

func (s *stack) state(id string) state {
	s.t.Helper()
	ctx := context.Background()
	st := state{Postgres: map[string]int{}, Mongo: map[string]int64{}}
	_, err := s.tenantChain(id).Ship(ctx) // what the shipper would have done by now
	require.NoError(s.t, err)
	require.NoError(s.t, rls.Tx(tenant.WithID(ctx, id), s.owner, func(tx pgx.Tx) error {
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
				st.Postgres[table.Sanitize()] = n
			}
		}
		return nil
	}))
	dbs, err := s.mongo.ListDatabaseNames(ctx, bson.D{{Key: "name", Value: "tenant_" + id}})
	require.NoError(s.t, err)
	st.MongoExists = len(dbs) == 1
	if st.MongoExists {
		db := s.mongo.Database("tenant_" + id)
		names, err := db.ListCollectionNames(ctx, bson.D{})
		require.NoError(s.t, err)
		for _, n := range names {
			c, err := db.Collection(n).CountDocuments(ctx, bson.D{})
			require.NoError(s.t, err)
			st.Mongo[n] = c
		}
	}
	var cursor uint64
	for {
		keys, next, err := s.redis.Scan(ctx, cursor, "tenant:{"+id+"}:*", 1000).Result()
		require.NoError(s.t, err)
		st.RedisKeys = append(st.RedisKeys, keys...)
		if cursor = next; cursor == 0 {
			break
		}
	}
	return st
}

func (s *stack) status(id string) tenant.Status {
	s.t.Helper()
	code, body := s.do(http.MethodGet, api.TenantsPath+"/"+id, "")
	require.Equal(s.t, http.StatusOK, code, body)
	return tenant.Status(body["status"].(string))
}

func requireProvisioned(t *testing.T, id string, st state) {
	t.Helper()
	require.Equal(t, 3, st.Postgres[`"public"."tenant_settings"`], "default settings: %v", st.Postgres)
	require.Equal(t, 1, st.Postgres[`"public"."tenant_members"`], "owner member")
	require.Equal(t, 1, st.Postgres[`"public"."tenant_keys"`], "one data key")
	require.True(t, st.MongoExists)
	for _, c := range []string{"conversations", "messages", "audit_events"} {
		require.Contains(t, st.Mongo, c)
	}
	require.Contains(t, st.RedisKeys, "tenant:{"+id+"}:context:record")
}

// signedGet sends a GET to the tenant API signed with the tenant's secret, as a tenant would.
func (s *stack) signedGet(id, secret, path string) int {
	s.t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.url+api.TenantAPIPath+path, nil)
	require.NoError(s.t, err)
	ts := time.Now().Unix()
	nonce := testenv.TenantID("nonce-0123456789")
	canonical := signing.Canonical(http.MethodGet, req.URL.EscapedPath(), req.URL.RawQuery, ts, nonce, nil)
	req.Header.Set(signing.HeaderTenant, id)
	req.Header.Set(signing.HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(signing.HeaderNonce, nonce)
	req.Header.Set(signing.HeaderSignature, signing.Header(signing.MAC([]byte(secret), canonical)))
	res, err := http.DefaultClient.Do(req)
	require.NoError(s.t, err)
	res.Body.Close()
	return res.StatusCode
}

type downloaded struct {
	code int
	body []byte
}

// download fetches an offboarding archive as the operator holding tok.
func (s *stack) download(name, tok string) downloaded {
	s.t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.url+api.ArchivesPath+"/"+name, nil)
	require.NoError(s.t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := http.DefaultClient.Do(req)
	require.NoError(s.t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(s.t, err)
	return downloaded{code: res.StatusCode, body: body}
}
