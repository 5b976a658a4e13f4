package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/labstack/echo/v4"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
	"go.mongodb.org/mongo-driver/mongo/readpref"
	"go.mongodb.org/mongo-driver/x/mongo/driver/connstring"

	"github.com/misybot/tenancy/internal/domain/cells"
	"github.com/misybot/tenancy/internal/platform/clients"
	"github.com/misybot/tenancy/internal/platform/operators"
	"github.com/misybot/tenancy/internal/platform/opsmetrics"
	"github.com/misybot/tenancy/internal/stores/redisurl"
	"github.com/misybot/tenancy/internal/stores/rls"
	"github.com/misybot/tenancy/migrations"
)

// CellsPath is the prefix of the cell endpoints:
//
//	GET    /api/meta-agent/cells                    every cell, with tenants, health and redacted stores (any operator role)
//	POST   /api/meta-agent/cells                    register a cell after checking its stores (platform-admin)
//	GET    /api/meta-agent/cells/{cellId}           one cell
//	POST   /api/meta-agent/cells/{cellId}/drain     no new tenants; the ones it has stay (platform-admin)
//	POST   /api/meta-agent/cells/{cellId}/close     likewise, and marked out of service (platform-admin)
//	POST   /api/meta-agent/cells/{cellId}/open      takes new tenants again (platform-admin)
//	DELETE /api/meta-agent/cells/{cellId}           remove an empty cell other than default (platform-admin)
//
// Every write is audited on the platform chain: a cell is not any one tenant's.
const CellsPath = "/api/meta-agent/cells"

// ProblemCellStores is the type of a registration refused because a store of the cell did not
// answer, or its PostgreSQL role could step around row-level security (422; nothing stored).
const ProblemCellStores = problemBase + "cell-stores-refused"

const (
	// cellStoreTimeout bounds each store's check at registration (connect and check).
	cellStoreTimeout = 5 * time.Second
	// cellHealthTimeout bounds the health of each cell in a list or a read; the cells are
	// checked at once, so a list takes about this long at worst, whatever the number of cells.
	cellHealthTimeout = 3 * time.Second
	// maxCapacity bounds a cell's capacity (tenants).
	maxCapacity = 1_000_000
	// maxStoreURL bounds a connection string's length.
	maxStoreURL = 2000
)

// cellHandlers serve the cell endpoints over the process's cell router.
type cellHandlers struct {
	router *clients.CellRouter
	logger *slog.Logger
}

// cellRoutes registers the cell endpoints; a nil router leaves them out.
func (s *Server) cellRoutes(e *echo.Echo, router *clients.CellRouter, read, admin []echo.MiddlewareFunc) {
	if router == nil {
		return
	}
	h := &cellHandlers{router: router, logger: s.logger}
	// Registered once per server; tests build several servers over one router.
	_ = s.metrics.registry.Register(opsmetrics.CellClientsOpen(router.OpenCells))
	e.GET(CellsPath, h.list, read...)
	s.audited(e.POST(CellsPath, h.register, admin...), "cell.register")
	e.GET(CellsPath+"/:cellId", h.get, read...)
	s.audited(e.POST(CellsPath+"/:cellId/drain", h.setState(cells.StateDraining), admin...), "cell.drain")
	s.audited(e.POST(CellsPath+"/:cellId/close", h.setState(cells.StateClosed), admin...), "cell.close")
	s.audited(e.POST(CellsPath+"/:cellId/open", h.setState(cells.StateOpen), admin...), "cell.open")
	s.audited(e.DELETE(CellsPath+"/:cellId", h.delete, admin...), "cell.delete")
}

// cellView is a cell as the API answers it: never a password, never a whole connection string.
type cellView struct {
	cells.Cell
	// Healthy: the cell's MongoDB and Redis answered a ping just now (CellRouter.Healthy).
	Healthy bool `json:"healthy"`
	// Stores are the cell's stores, redacted; absent for the default cell, whose stores are
	// the deployment's own.
	Stores *redactedStores `json:"stores,omitempty"`
}

// redactedStores show where a cell's stores are (scheme://host:port/database), without user
// information or query (which may carry credentials).
type redactedStores struct {
	Postgres string `json:"postgres"`
	Mongo    string `json:"mongo"`
	Redis    string `json:"redis"`
}

type cellList struct {
	Items []cellView `json:"items"`
	// CanManage tells the caller whether its role may register, drain, close, open and delete
	// cells (the dashboard shows those buttons only then); the server stays the judge.
	CanManage bool `json:"canManage"`
}

func (h *cellHandlers) list(c echo.Context) error {
	ctx := c.Request().Context()
	all, err := h.router.Registry().List(ctx)
	if err != nil {
		return err
	}
	views := make([]cellView, len(all))
	var wg sync.WaitGroup
	for i, cell := range all {
		wg.Go(func() { views[i] = h.view(ctx, cell) })
	}
	wg.Wait()
	return c.JSON(http.StatusOK, cellList{Items: views, CanManage: operatorOf(c).Role == operators.RoleAdmin})
}

func (h *cellHandlers) get(c echo.Context) error {
	cell, err := h.pathCell(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, h.view(c.Request().Context(), cell))
}

// view adds a cell's health and redacted stores. A store list that cannot be read (the sealed
// stores do not open: another master key) leaves the stores out and the cell unhealthy.
func (h *cellHandlers) view(ctx context.Context, cell cells.Cell) cellView {
	v := cellView{Cell: cell}
	stores, ok, err := h.router.Registry().Stores(ctx, cell.ID)
	if err != nil {
		h.logger.Warn("cell stores not readable", "cell_id", cell.ID, "err", err)
		return v
	}
	if ok {
		v.Stores = redact(stores)
	}
	hctx, cancel := context.WithTimeout(ctx, cellHealthTimeout)
	defer cancel()
	v.Healthy = h.router.Healthy(hctx, cell.ID)
	return v
}

// pathCell reads the cell the path names: 400 for a malformed id, 404 for an unknown one.
func (h *cellHandlers) pathCell(c echo.Context) (cells.Cell, error) {
	id := c.Param("cellId")
	if !cells.ValidID(id) {
		return cells.Cell{}, validationProblem(FieldError{Field: "cellId", Message: cellIDRule})
	}
	cell, err := h.router.Registry().Get(c.Request().Context(), id)
	if errors.Is(err, cells.ErrNotFound) {
		return cells.Cell{}, notFound("no cell " + strconv.Quote(id))
	}
	return cell, err
}

const cellIDRule = "must be 2 to 32 lowercase letters, digits and hyphens, starting with a letter and not ending with a hyphen"

// registerCellRequest is a new cell. The connection strings are kept sealed; answers show them
// redacted only.
type registerCellRequest struct {
	CellID      string `json:"cellId"`
	Region      string `json:"region"`
	Kind        string `json:"kind"`
	Capacity    *int   `json:"capacity"`
	TaskQueue   string `json:"taskQueue"`
	PostgresURL string `json:"postgresUrl"`
	// PostgresMigrateURL is the same database as its owner role: registration applies the
	// cell migrations with it. Optional when the cell's schema is current already.
	PostgresMigrateURL string `json:"postgresMigrateUrl"`
	MongoURL           string `json:"mongoUrl"`
	RedisURL           string `json:"redisUrl"`
}

// parsedStores are a request's connection strings, parsed.
type parsedStores struct {
	postgres *pgx.ConnConfig
	migrate  string // the owner role's connection string, or ""
	mongo    *connstring.ConnString
}

// validate checks every field without I/O and names each that is wrong.
func (r registerCellRequest) validate() (parsedStores, []FieldError) {
	var errs []FieldError
	var p parsedStores
	bad := func(field, msg string) { errs = append(errs, FieldError{Field: field, Message: msg}) }
	if !cells.ValidID(r.CellID) {
		bad("cellId", cellIDRule)
	}
	if !cells.ValidID(r.Region) {
		bad("region", cellIDRule)
	}
	if r.Kind != cells.KindPooled && r.Kind != cells.KindDedicated {
		bad("kind", "must be pooled or dedicated")
	}
	if r.Capacity == nil || *r.Capacity < 1 || *r.Capacity > maxCapacity {
		bad("capacity", "must be an integer from 1 to 1000000 (tenants)")
	}
	if r.TaskQueue != "" && !validTaskQueue(r.TaskQueue) {
		bad("taskQueue", "must be at most 200 letters, digits and . _ : -")
	}
	// The drivers' own parsers, as the processes that connect use them. Their errors are not
	// repeated: some quote the string, which holds a password.
	switch {
	case r.PostgresURL == "" || len(r.PostgresURL) > maxStoreURL:
		bad("postgresUrl", "is required: a PostgreSQL connection string of at most 2000 characters")
	default:
		cfg, err := pgx.ParseConfig(r.PostgresURL)
		if err != nil {
			bad("postgresUrl", "is not a PostgreSQL connection string pgx accepts (its text is not repeated: it may hold a password)")
		} else {
			p.postgres = cfg
		}
	}
	if r.PostgresMigrateURL != "" {
		cfg, err := pgx.ParseConfig(r.PostgresMigrateURL)
		switch {
		case len(r.PostgresMigrateURL) > maxStoreURL || err != nil:
			bad("postgresMigrateUrl", "is not a PostgreSQL connection string pgx accepts, of at most 2000 characters (its text is not repeated: it may hold a password)")
		case p.postgres != nil && (cfg.Host != p.postgres.Host || cfg.Port != p.postgres.Port || cfg.Database != p.postgres.Database):
			bad("postgresMigrateUrl", "must name the same server, port and database as postgresUrl (as the owner role)")
		case p.postgres != nil && cfg.User == p.postgres.User:
			bad("postgresMigrateUrl", "must connect as the database's owner role, not as postgresUrl's application role")
		default:
			p.migrate = r.PostgresMigrateURL
		}
	}
	switch {
	case r.MongoURL == "" || len(r.MongoURL) > maxStoreURL:
		bad("mongoUrl", "is required: a MongoDB connection string of at most 2000 characters")
	default:
		cs, err := connstring.ParseAndValidate(r.MongoURL)
		if err != nil {
			bad("mongoUrl", "is not a MongoDB connection string the driver accepts (its text is not repeated: it may hold a password)")
		} else {
			p.mongo = cs
		}
	}
	switch {
	case r.RedisURL == "" || len(r.RedisURL) > maxStoreURL:
		bad("redisUrl", "is required: a Redis URL of at most 2000 characters")
	default:
		rc, err := redisurl.NewClient(r.RedisURL)
		if err != nil {
			bad("redisUrl", "is not a Redis URL (redis://, rediss://, redis+cluster://, rediss+cluster://; its text is not repeated: it may hold a password)")
		} else {
			_ = rc.Close() // parsed only: it never connected
		}
	}
	return p, errs
}

func validTaskQueue(s string) bool {
	if len(s) > 200 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// register validates the request (400 naming each field), refuses a taken id (409), checks
// the three stores (422 naming each that failed), then stores the cell, open, with its stores
// sealed (201). Nothing is stored unless every check passed.
func (h *cellHandlers) register(c echo.Context) error {
	var req registerCellRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	parsed, errs := req.validate()
	if len(errs) > 0 {
		return validationProblem(errs...)
	}
	ctx := c.Request().Context()
	if _, err := h.router.Registry().Get(ctx, req.CellID); err == nil {
		return conflict("a cell " + strconv.Quote(req.CellID) + " is registered already")
	} else if !errors.Is(err, cells.ErrNotFound) {
		return err
	}
	stores := cells.Stores{PostgresURL: req.PostgresURL, PostgresMigrateURL: req.PostgresMigrateURL, MongoURL: req.MongoURL, RedisURL: req.RedisURL}
	if refused := h.checkStores(ctx, req.CellID, parsed, stores); len(refused) > 0 {
		names := make([]string, len(refused))
		for i, f := range refused {
			names[i] = storeName[f.Field]
		}
		p := newProblem(http.StatusUnprocessableEntity, ProblemCellStores, "Cell stores refused",
			"the cell's "+strings.Join(names, ", ")+" did not pass the check; nothing was stored")
		p.Errors = refused
		return p
	}
	cell, err := h.router.Registry().Create(ctx, cells.Cell{
		ID: req.CellID, Region: req.Region, Kind: req.Kind, Capacity: *req.Capacity, TaskQueue: req.TaskQueue,
	}, stores)
	if errors.Is(err, cells.ErrExists) {
		return conflict("a cell " + strconv.Quote(req.CellID) + " is registered already")
	}
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, CellsPath+"/"+cell.ID)
	return c.JSON(http.StatusCreated, cellView{Cell: cell, Healthy: true, Stores: redact(stores)})
}

// storeName names each store field in messages.
var storeName = map[string]string{"postgresUrl": "PostgreSQL", "mongoUrl": "MongoDB", "redisUrl": "Redis"}

// checkStores checks the three stores at once, each within cellStoreTimeout: PostgreSQL
// connects as the given role and passes the isolation self-check (rls.Verify: the role is no
// superuser, has no BYPASSRLS and owns no table, and every tenant table the database has is
// under forced row-level security; on a database without tables yet, the role's checks still
// hold); MongoDB answers a ping; Redis answers PING. The refusals name the field, never the
// connection string; the causes are logged.
func (h *cellHandlers) checkStores(ctx context.Context, cellID string, p parsedStores, s cells.Stores) []FieldError {
	checks := []struct {
		field string
		run   func(context.Context) (string, error)
	}{
		{"postgresUrl", func(ctx context.Context) (string, error) { return h.checkPostgres(ctx, cellID, p) }},
		{"mongoUrl", func(ctx context.Context) (string, error) { return checkMongo(ctx, s.MongoURL) }},
		{"redisUrl", func(ctx context.Context) (string, error) { return checkRedis(ctx, s.RedisURL) }},
	}
	msgs := make([]string, len(checks))
	var wg sync.WaitGroup
	for i, chk := range checks {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, cellStoreTimeout)
			defer cancel()
			msg, err := chk.run(cctx)
			if err != nil {
				h.logger.Warn("cell store check failed", "cell_id", cellID, "store", storeName[chk.field], "err", withheld(err, s))
				msgs[i] = msg
			}
		})
	}
	wg.Wait()
	var out []FieldError
	for i, chk := range checks {
		if msgs[i] != "" {
			out = append(out, FieldError{Field: chk.field, Message: msgs[i]})
		}
	}
	return out
}

// checkPostgres applies the cell migrations as the owner role when given one, then connects as
// the application role (one connection, closed after), checks the cell schema is current and
// runs the isolation self-check. A database that is the control plane's own is refused: it
// is the default cell already.
func (h *cellHandlers) checkPostgres(ctx context.Context, cellID string, p parsedStores) (string, error) {
	if p.migrate != "" {
		if err := migrations.UpCell(ctx, p.migrate, h.logger.With("cell_id", cellID)); err != nil {
			if ctx.Err() != nil {
				return "PostgreSQL did not complete the cell migrations within " + cellStoreTimeout.String(), err
			}
			if errors.Is(err, migrations.ErrControlPlane) {
				return err.Error(), err
			}
			return "the cell migrations could not be applied as postgresMigrateUrl's role (server down, wrong role or password, or not the database's owner)", err
		}
	}
	conn, err := pgx.ConnectConfig(ctx, p.postgres)
	if err != nil {
		return "PostgreSQL did not accept a connection within " + cellStoreTimeout.String() + " (server down, or wrong host, role or password)", err
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	switch v, err := migrations.CellSchemaVersion(ctx, conn); {
	case errors.Is(err, migrations.ErrControlPlane):
		return err.Error(), err
	case err != nil:
		return "PostgreSQL did not answer which cell migrations it has", err
	case v < migrations.CellVersion():
		return fmt.Sprintf("the database has cell migrations up to %d of %d: give postgresMigrateUrl (the owner role) so that registration applies them", v, migrations.CellVersion()),
			fmt.Errorf("cell schema at %d of %d", v, migrations.CellVersion())
	}
	if err := rls.Verify(ctx, conn); err != nil {
		if ctx.Err() != nil || pgconn.Timeout(err) {
			return "PostgreSQL did not complete the isolation self-check within " + cellStoreTimeout.String(), err
		}
		// The self-check's findings name roles and tables, never a connection string.
		return "the isolation self-check failed (use the cell's application role, never its owner or a superuser): " +
			truncateText(strings.ReplaceAll(err.Error(), "\n", "; "), 500), err
	}
	return "", nil
}

func checkMongo(ctx context.Context, uri string) (string, error) {
	deadline, _ := ctx.Deadline()
	m, err := mongo.Connect(ctx, options.Client().ApplyURI(uri).SetServerSelectionTimeout(time.Until(deadline)).SetMaxPoolSize(1))
	if err != nil {
		return "MongoDB: the client could not be built from the connection string", err
	}
	defer func() { _ = m.Disconnect(context.WithoutCancel(ctx)) }()
	if err := m.Ping(ctx, readpref.Primary()); err != nil {
		return "MongoDB did not answer a ping within " + cellStoreTimeout.String(), err
	}
	return "", nil
}

func checkRedis(ctx context.Context, rawURL string) (string, error) {
	rc, err := redisurl.NewClient(rawURL)
	if err != nil {
		return "Redis: the client could not be built from the URL", err
	}
	defer func() { _ = rc.Close() }()
	if err := rc.Ping(ctx).Err(); err != nil {
		return "Redis did not answer PING within " + cellStoreTimeout.String(), err
	}
	return "", nil
}

// withheld keeps a driver's error for the log unless its text quotes a connection string or a
// password of the cell's.
func withheld(err error, s cells.Stores) error {
	msg := err.Error()
	if strings.Contains(msg, "://") {
		return errors.New("(the error quotes a connection string; withheld)")
	}
	for _, raw := range []string{s.PostgresURL, s.PostgresMigrateURL, s.MongoURL, s.RedisURL} {
		if u, perr := url.Parse(raw); perr == nil && u.User != nil {
			if pw, ok := u.User.Password(); ok && pw != "" && strings.Contains(msg, pw) {
				return errors.New("(the error quotes a password; withheld)")
			}
		}
	}
	return err
}

// setState moves a cell to state and answers with it.
func (h *cellHandlers) setState(state string) echo.HandlerFunc {
	return func(c echo.Context) error {
		cell, err := h.pathCell(c)
		if err != nil {
			return err
		}
		cell, err = h.router.Registry().SetState(c.Request().Context(), cell.ID, state)
		if errors.Is(err, cells.ErrNotFound) {
			return notFound("no cell " + strconv.Quote(c.Param("cellId")))
		}
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, h.view(c.Request().Context(), cell))
	}
}

// delete removes an empty cell: 409 while it holds a tenant, 409 for the default cell.
func (h *cellHandlers) delete(c echo.Context) error {
	cell, err := h.pathCell(c)
	if err != nil {
		return err
	}
	err = h.router.Registry().Delete(c.Request().Context(), cell.ID)
	switch {
	case errors.Is(err, cells.ErrDefault):
		return conflict("the default cell is the deployment's own stores: it cannot be deleted (drain or close it instead)")
	case errors.Is(err, cells.ErrNotEmpty):
		return conflict(fmt.Sprintf("cell %s still holds tenants (%d when read): move or offboard them first; drain it so that it takes no new one", cell.ID, cell.Tenants))
	case errors.Is(err, cells.ErrNotFound):
		return notFound("no cell " + strconv.Quote(cell.ID))
	case err != nil:
		return err
	}
	// This process's clients to it go; other processes keep theirs until they restart (a cell
	// registered again under this id should name new stores under a new id).
	h.router.Drop(c.Request().Context(), cell.ID)
	return c.NoContent(http.StatusNoContent)
}

// redact shows each store as scheme://host:port/database: no user, no password, no query.
func redact(s cells.Stores) *redactedStores {
	return &redactedStores{Postgres: redactPostgres(s.PostgresURL), Mongo: redactMongo(s.MongoURL), Redis: redactRedis(s.RedisURL)}
}

func redactPostgres(raw string) string {
	cfg, err := pgconn.ParseConfig(raw)
	if err != nil {
		return "postgres://(unreadable)"
	}
	return "postgres://" + hostPort(cfg.Host, strconv.Itoa(int(cfg.Port))) + "/" + cfg.Database
}

func redactMongo(raw string) string {
	cs, err := connstring.Parse(raw)
	if err != nil {
		return "mongodb://(unreadable)"
	}
	scheme := cs.Scheme
	if scheme == "" {
		scheme = connstring.SchemeMongoDB
	}
	return scheme + "://" + strings.Join(cs.Hosts, ",") + "/" + cs.Database
}

func redactRedis(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return "redis://(unreadable)"
	}
	return u.Scheme + "://" + u.Host + u.EscapedPath()
}

// hostPort joins a host (an IPv6 address in brackets; a socket folder as it is) and a port.
func hostPort(host, port string) string {
	if strings.HasPrefix(host, "/") {
		return host
	}
	if strings.Contains(host, ":") {
		return "[" + host + "]:" + port
	}
	return host + ":" + port
}
