package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/bson"

	"github.com/misybot/tenancy/api"
	"github.com/misybot/tenancy/internal/domain/audit"
	"github.com/misybot/tenancy/internal/domain/cells"
	"github.com/misybot/tenancy/internal/keys/seal"
	"github.com/misybot/tenancy/internal/platform/clients"
	"github.com/misybot/tenancy/internal/platform/operators"
	"github.com/misybot/tenancy/internal/testkit/testenv"
)

// cellsBundle is the API with its cell endpoints, over a router of its own.
type cellsBundle struct {
	auditBundle
	router *clients.CellRouter
}

func cellsSetup(t *testing.T) cellsBundle {
	t.Helper()
	sealer, err := seal.New(testenv.MasterKey)
	require.NoError(t, err)
	router := (&clients.Clients{Postgres: testenv.AppPool(t), Mongo: testenv.MongoClient(t), Redis: testenv.RedisClient(t)}).
		Cells(sealer, testenv.Logger(t))
	t.Cleanup(func() { _ = router.Close(context.Background()) })
	b := auditSetup(t, func(c *api.Config) { c.Cells = router })
	return cellsBundle{auditBundle: b, router: router}
}

// cell2Postgres is cell-2's PostgreSQL as its application role, with the cell migrations
// applied.
func cell2Postgres(t *testing.T) (dsn, password string) {
	t.Helper()
	c := testenv.CellPostgresOf(t, 2)
	return c.AppURL, c.Password
}

// newCell is a registration of cell id on cell-2's stores, with fields replaced or added by
// overrides (a nil value removes the field). Its region is the id's: unique to the test, so
// no other test's placement asks for it.
func newCell(t *testing.T, id string, overrides ...any) string {
	t.Helper()
	pg, _ := cell2Postgres(t)
	region := "test-region"
	if cells.ValidID(id) {
		region = id
	}
	m := map[string]any{
		"cellId": id, "region": region, "kind": "dedicated", "capacity": 5,
		"postgresUrl": pg, "mongoUrl": testenv.Cell2MongoURI, "redisUrl": testenv.Cell2RedisURL,
	}
	for i := 0; i+1 < len(overrides); i += 2 {
		if overrides[i+1] == nil {
			delete(m, overrides[i].(string))
		} else {
			m[overrides[i].(string)] = overrides[i+1]
		}
	}
	raw, err := json.Marshal(m)
	require.NoError(t, err)
	return string(raw)
}

// cellID is an id unique to the test.
func cellID() string { return "t" + strings.ReplaceAll(testenv.TenantID("cell"), "-", "") }

// removeCell closes, empties and deletes a test's cell, whatever the test left.
func (b cellsBundle) removeCell(t *testing.T, id string) {
	t.Cleanup(func() {
		ctx := context.Background()
		_, _ = b.router.Registry().SetState(ctx, id, cells.StateClosed)
		_ = b.router.Registry().Delete(ctx, id)
	})
}

func findCell(t *testing.T, list response, id string) map[string]any {
	t.Helper()
	for _, item := range list.Body["items"].([]any) {
		if c := item.(map[string]any); c["cellId"] == id {
			return c
		}
	}
	t.Fatalf("cell %s not in the list: %s", id, list.Raw)
	return nil
}

// A platform admin registers a cell on cell-2's stores: 201 with the cell, its stores redacted
// (no user, password or query anywhere in the answer or the list), healthy. Then a duplicate
// (409), drain, close and open (each audited on the platform chain), an auditor who reads but
// may not change, a delete refused while the cell holds a tenant and for default, and a delete.
func TestCellsRegisterListAndLifecycle(t *testing.T) {
	t.Parallel()
	b := cellsSetup(t)
	id := cellID()
	b.removeCell(t, id)
	_, password := cell2Postgres(t)
	require.NotEmpty(t, password)
	owner := testenv.CellPostgresOf(t, 2).OwnerURL
	ou, err := url.Parse(owner)
	require.NoError(t, err)
	ownerPassword, _ := ou.User.Password()

	// With the owner's URL, registration applies the cell migrations (the test database has
	// them already: nothing to do, and the URL is kept sealed for `starter migrate`).
	res := b.do(t, http.MethodPost, api.CellsPath, newCell(t, id, "postgresMigrateUrl", owner))
	require.Equal(t, http.StatusCreated, res.Code, res.Raw)
	require.NotContains(t, res.Raw, ownerPassword)
	require.NotContains(t, res.Raw, "tenancy_owner")
	stores, _, err := b.router.Registry().Stores(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, owner, stores.PostgresMigrateURL)
	// Closed at once: an open cell with room could take another package's onboarding.
	closed := b.do(t, http.MethodPost, api.CellsPath+"/"+id+"/close", "")
	require.Equal(t, http.StatusOK, closed.Code, closed.Raw)
	require.Equal(t, cells.StateClosed, closed.Body["state"])
	require.Equal(t, api.CellsPath+"/"+id, res.Header.Get("Location"))
	require.Equal(t, id, res.Body["cellId"])
	require.Equal(t, cells.StateOpen, res.Body["state"])
	require.Equal(t, true, res.Body["healthy"])
	require.EqualValues(t, 5, res.Body["capacity"])
	require.EqualValues(t, 0, res.Body["tenants"])
	require.Equal(t, map[string]any{
		"postgres": "postgres://127.0.0.1:5442/tenancy_test",
		"mongo":    "mongodb://127.0.0.1:27027/",
		"redis":    "redis://127.0.0.1:6389/1",
	}, res.Body["stores"])
	require.NotContains(t, res.Raw, password)
	require.NotContains(t, res.Raw, "tenancy_app")

	list := b.do(t, http.MethodGet, api.CellsPath, "")
	require.Equal(t, http.StatusOK, list.Code, list.Raw)
	require.NotContains(t, list.Raw, password)
	require.NotContains(t, list.Raw, "sslmode")
	require.Equal(t, true, list.Body["canManage"])
	mine := findCell(t, list, id)
	require.Equal(t, true, mine["healthy"], "cell-2's stores answer")
	require.Equal(t, cells.StateClosed, mine["state"])
	require.Equal(t, id, mine["region"])
	require.Equal(t, cells.KindDedicated, mine["kind"])
	def := findCell(t, list, cells.Default)
	require.Equal(t, true, def["healthy"], "the deployment's own stores answer")
	require.NotContains(t, def, "stores", "the default cell's stores are the deployment's own")

	requireProblem(t, b.do(t, http.MethodPost, api.CellsPath, newCell(t, id)), http.StatusConflict)

	for _, step := range []struct{ action, state string }{
		{"drain", cells.StateDraining}, {"open", cells.StateOpen}, {"close", cells.StateClosed},
	} {
		r := b.do(t, http.MethodPost, api.CellsPath+"/"+id+"/"+step.action, "")
		require.Equal(t, http.StatusOK, r.Code, r.Raw)
		require.Equal(t, step.state, r.Body["state"], step.action)
		require.NotContains(t, r.Raw, password)
	}
	got := b.do(t, http.MethodGet, api.CellsPath+"/"+id, "")
	require.Equal(t, http.StatusOK, got.Code, got.Raw)
	require.Equal(t, cells.StateClosed, got.Body["state"])

	// An auditor reads, and may change nothing.
	auditor, err := operators.New(b.app, "").Create(context.Background(), "cells-auditor-"+id, operators.RoleAuditor)
	require.NoError(t, err)
	asAuditor := []string{"Authorization", "Bearer " + auditor}
	ro := b.do(t, http.MethodGet, api.CellsPath, "", asAuditor...)
	require.Equal(t, http.StatusOK, ro.Code, ro.Raw)
	require.Equal(t, false, ro.Body["canManage"])
	requireProblem(t, b.do(t, http.MethodPost, api.CellsPath+"/"+id+"/open", "", asAuditor...), http.StatusForbidden)
	requireProblem(t, b.do(t, http.MethodDelete, api.CellsPath+"/"+id, "", asAuditor...), http.StatusForbidden)
	requireProblem(t, b.do(t, http.MethodPost, api.CellsPath, newCell(t, cellID()), asAuditor...), http.StatusForbidden)

	// Not while it holds a tenant; never the default cell; 404 and 400 for unknown and malformed ids.
	tenantID := testenv.TenantID("oncell")
	_, err = b.owner.Exec(context.Background(), `INSERT INTO tenants (tenant_id, site_id, tenant_name, contact_email, tenant_type, secret_ciphertext, cell_id)
		VALUES ($1, 's', 'n', 'x@y.zz', 'standard', '\x01', $2)`, tenantID, id)
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = b.owner.Exec(context.Background(), `DELETE FROM tenants WHERE tenant_id = $1`, tenantID)
	})
	busy := b.do(t, http.MethodDelete, api.CellsPath+"/"+id, "")
	requireProblem(t, busy, http.StatusConflict)
	require.Contains(t, busy.Body["detail"], "still holds tenants")
	_, err = b.owner.Exec(context.Background(), `DELETE FROM tenants WHERE tenant_id = $1`, tenantID)
	require.NoError(t, err)
	requireProblem(t, b.do(t, http.MethodDelete, api.CellsPath+"/"+cells.Default, ""), http.StatusConflict)
	requireProblem(t, b.do(t, http.MethodDelete, api.CellsPath+"/"+cellID(), ""), http.StatusNotFound)
	requireProblem(t, b.do(t, http.MethodGet, api.CellsPath+"/"+cellID(), ""), http.StatusNotFound)
	requireProblem(t, b.do(t, http.MethodPost, api.CellsPath+"/No_Such/drain", ""), http.StatusBadRequest)

	del := b.do(t, http.MethodDelete, api.CellsPath+"/"+id, "")
	require.Equal(t, http.StatusNoContent, del.Code, del.Raw)
	requireProblem(t, b.do(t, http.MethodGet, api.CellsPath+"/"+id, ""), http.StatusNotFound)

	// Every write, on the platform chain (this test's own), under its action.
	var actions []string
	for _, e := range b.events(t, "", bson.D{{Key: "outcome", Value: audit.OutcomeSuccess}}) {
		actions = append(actions, e.Action)
	}
	require.Equal(t, []string{"cell.register", "cell.close", "cell.drain", "cell.open", "cell.close", "cell.delete"}, actions)
}

// Each malformed field is refused with 400 naming it, and nothing is stored; a connection
// string's text (and its password) is never repeated.
func TestCellsRegisterRefusesBadFields(t *testing.T) {
	t.Parallel()
	b := cellsSetup(t)
	for _, tc := range []struct {
		field string
		value any
	}{
		{"cellId", "Bad_Id"},
		{"cellId", nil},
		{"region", "x"},
		{"kind", "shared"},
		{"capacity", 0},
		{"capacity", 1_000_001},
		{"capacity", nil},
		{"taskQueue", "has spaces"},
		{"postgresUrl", "postgres://tenancy_app:s3cret-pw@127.0.0.1:notaport/db"},
		{"postgresUrl", ""},
		{"mongoUrl", "http://tenancy:s3cret-pw@127.0.0.1:27027/"},
		{"mongoUrl", nil},
		{"redisUrl", "ftp://:s3cret-pw@127.0.0.1:6389/1"},
		{"redisUrl", "redis+cluster://:s3cret-pw@127.0.0.1:7001/3"},
	} {
		id := cellID()
		b.removeCell(t, id)
		overrides := []any{tc.field, tc.value}
		if tc.field == "cellId" && tc.value != nil {
			id = tc.value.(string)
		}
		if tc.value == nil {
			overrides = []any{tc.field, nil}
		}
		res := b.do(t, http.MethodPost, api.CellsPath, newCell(t, id, overrides...))
		require.Equal(t, http.StatusBadRequest, res.Code, "%s=%v: %s", tc.field, tc.value, res.Raw)
		requireProblem(t, res, http.StatusBadRequest)
		require.NotContains(t, res.Raw, "s3cret-pw")
		errs, _ := res.Body["errors"].([]any)
		require.Len(t, errs, 1, "%s=%v: %s", tc.field, tc.value, res.Raw)
		require.Equal(t, tc.field, errs[0].(map[string]any)["field"], res.Raw)
		if cells.ValidID(id) {
			_, err := b.router.Registry().Get(context.Background(), id)
			require.ErrorIs(t, err, cells.ErrNotFound, "nothing stored for %s=%v", tc.field, tc.value)
		}
	}
	unknown := cellID()
	b.removeCell(t, unknown)
	res := b.do(t, http.MethodPost, api.CellsPath, newCell(t, unknown, "password", "x"))
	requireProblem(t, res, http.StatusBadRequest)
	require.Contains(t, res.Raw, `"field":"password"`, "an unknown field is named")
}

// A store that does not answer, or a PostgreSQL role that could step around row-level
// security, is refused with 422 naming the store's field; nothing is stored, and no password
// is repeated.
func TestCellsRegisterRefusesStoresThatFailTheirCheck(t *testing.T) {
	t.Parallel()
	b := cellsSetup(t)
	_, password := cell2Postgres(t)
	cell2 := testenv.CellPostgresOf(t, 2)
	ownerPW, _ := url.Parse(cell2.OwnerURL)
	ownerPassword, _ := ownerPW.User.Password()
	noSchema := strings.Replace(cell2.AppURL, "/tenancy_test?", "/postgres?", 1)
	for _, tc := range []struct {
		name      string
		overrides []any
		fields    []string
		says      string
	}{
		{"redis on a closed port", []any{"redisUrl", "redis://:s3cret-pw@127.0.0.1:1/1"}, []string{"redisUrl"}, "Redis did not answer PING"},
		{"postgres on a closed port", []any{"postgresUrl", "postgres://tenancy_app:s3cret-pw@127.0.0.1:1/tenancy_test?sslmode=disable"}, []string{"postgresUrl"}, "PostgreSQL did not accept a connection"},
		{"postgres as a table owner, and mongodb on a closed port", []any{"postgresUrl", cell2.OwnerURL, "mongoUrl", "mongodb://u:s3cret-pw@127.0.0.1:1/"},
			[]string{"postgresUrl", "mongoUrl"}, "owns table"},
		{"postgres: the control plane's own database", []any{"postgresUrl", testenv.AppDatabaseURL}, []string{"postgresUrl"}, "the control plane's database"},
		{"postgres: a database without the cell migrations, and no owner to apply them", []any{"postgresUrl", noSchema}, []string{"postgresUrl"}, "cell migrations up to 0 of"},
		{"postgres: migrations as a role that cannot apply them", []any{"postgresUrl", noSchema, "postgresMigrateUrl", strings.Replace(noSchema, "tenancy_app:", "tenancy_nobody:", 1)},
			[]string{"postgresUrl"}, "the cell migrations could not be applied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id := cellID()
			b.removeCell(t, id)
			res := b.do(t, http.MethodPost, api.CellsPath, newCell(t, id, tc.overrides...))
			requireProblem(t, res, http.StatusUnprocessableEntity)
			require.Equal(t, api.ProblemCellStores, res.Body["type"])
			var fields []string
			for _, e := range res.Body["errors"].([]any) {
				fields = append(fields, e.(map[string]any)["field"].(string))
			}
			require.Equal(t, tc.fields, fields, res.Raw)
			require.Contains(t, res.Raw, tc.says)
			// No connection string (the owner's password is its role's name, which the
			// self-check's findings name, so the URLs' hosts stand for it).
			for _, secret := range []string{"s3cret-pw", password, ownerPassword, "127.0.0.1"} {
				require.NotContains(t, res.Raw, secret)
			}
			_, err := b.router.Registry().Get(context.Background(), id)
			require.ErrorIs(t, err, cells.ErrNotFound, "nothing stored")
		})
	}
}
