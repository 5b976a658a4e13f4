// Command starter is the operator's entry point: `starter serve` runs the HTTP API (whose
// handlers start workflows), `starter migrate` applies the database migrations.
package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"filippo.io/age"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/misybot/tenancy/api"
	"github.com/misybot/tenancy/internal/control/lifecycle"
	"github.com/misybot/tenancy/internal/domain/audit"
	"github.com/misybot/tenancy/internal/domain/decision"
	"github.com/misybot/tenancy/internal/domain/registry"
	"github.com/misybot/tenancy/internal/domain/tenantservice"
	"github.com/misybot/tenancy/internal/keys/keycheck"
	"github.com/misybot/tenancy/internal/keys/seal"
	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/platform/clients"
	"github.com/misybot/tenancy/internal/platform/config"
	"github.com/misybot/tenancy/internal/platform/operators"
	"github.com/misybot/tenancy/internal/stores/rls"
	"github.com/misybot/tenancy/wiring"
	"github.com/misybot/tenancy/workflows"
)

const usage = `usage: starter <command>

commands:
  serve     run the management API on API_ADDR
  migrate   apply pending database migrations (as MIGRATE_DATABASE_URL's owner role), then the cell migrations to each registered cell
  migrate-cell <cellId>
            the cell migrations for a cell registered without its owner's URL, given in
            CELL_MIGRATE_DATABASE_URL (used once, not stored)
  register <tenantId> <owner|enterprise|standard|trial> <name> <contactEmail>
            register a tenant (pending) with the type's permissions; prints it and its
            secret (JSON), the only time the secret is ever shown
  onboard|suspend|restore|offboard <tenantId> [reason]
            start a lifecycle workflow for a registered tenant; prints the run (JSON)
  status <tenantId>
            print the tenant and its latest lifecycle run with its progress (JSON)
  rotate-master-key
            re-wrap every tenant's data keys and secrets under TENANT_MASTER_KEY's version
            (after every process runs with it and the old key in TENANT_MASTER_KEY_PREVIOUS)
  reconcile [run|show|repair|decide|close] …
            compare the registry with the stores and repair drift (see docs/reconciliation.md)
  decide <retry|abort|cancel-offboard> <tenantId> | decide <retry|abort> --workflow <workflowId>
            record an operator decision and send it to the run waiting for it (a raw
            temporal workflow signal is refused: the run acts only on recorded decisions)
  audit-quarantine [list|reship|redact] …
            audit events the audit store refused for good: list them, put one back in its chain
            as it is or redacted (audited; see docs/operations.md, "Quarantined audit events")
  probe <url>
            GET url and exit 0 on a 2xx answer: the container health check of the API
            (its /readyz) and the worker (its /healthz), in images without curl or a shell
  export-keygen
            print a new age identity for EXPORT_RECIPIENT (its public key) and for decrypting archives
  operator create <name> <platform-admin|operator|auditor>
            issue an operator token (printed once; stored hashed)
  operator revoke <name> | operator list
  operator disable-bootstrap
            turn OPERATOR_TOKEN off for every process (needs a named platform-admin)
  verify-isolation
            check, as the application role, that every tenant table is under forced
            row-level security and that the role cannot bypass it

Configuration comes from the environment; see docs/configuration.md.`

func main() {
	if len(os.Args) < 2 || os.Args[1] == "help" || os.Args[1] == "-h" || os.Args[1] == "--help" {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	if os.Args[1] == "probe" { // needs no configuration: a container health check
		if len(os.Args) != 3 {
			fmt.Fprintln(os.Stderr, "usage: starter probe <url>")
			os.Exit(2)
		}
		if err := probe(os.Args[2], 3*time.Second); err != nil {
			fmt.Fprintln(os.Stderr, "probe:", err)
			os.Exit(1)
		}
		return
	}
	if os.Args[1] == "export-keygen" { // needs no configuration
		if err := exportKeygen(); err != nil {
			fmt.Fprintln(os.Stderr, "starter:", err)
			os.Exit(1)
		}
		return
	}
	cfg, err := config.FromEnv()
	if err != nil {
		exitConfig(err)
	}
	logger := cfg.NewLogger(os.Stderr)
	slog.SetDefault(logger) // packages that log without a logger of their own (audit chain repairs) log here
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	switch os.Args[1] {
	case "serve":
		err = serve(ctx, cfg, logger)
	case "migrate":
		err = migrate(ctx, cfg, logger)
	case "migrate-cell":
		err = migrateCellCommand(ctx, cfg, logger, os.Args[2:])
	case "register":
		err = register(ctx, cfg, logger, os.Args[2:])
	case "onboard", "suspend", "restore", "offboard", "status":
		err = operate(ctx, cfg, logger, os.Args[1], os.Args[2:])
	case "operator":
		err = operatorCommand(ctx, cfg, os.Args[2:])
	case "rotate-master-key":
		err = rotateMasterKey(ctx, cfg, logger)
	case "reconcile":
		err = reconcileCommand(ctx, cfg, logger, os.Args[2:])
	case "decide":
		err = decideCommand(ctx, cfg, logger, os.Args[2:])
	case "audit-quarantine":
		err = auditQuarantineCommand(ctx, cfg, logger, os.Args[2:])
	case "verify-isolation":
		err = verifyIsolation(ctx, cfg, logger)
	default:
		fmt.Fprintf(os.Stderr, "starter: unknown command %q\n\n%s\n", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		logger.Error("starter failed", "command", os.Args[1], "err", err)
		os.Exit(1)
	}
}

// exitConfig prints one line per invalid variable and stops.
func exitConfig(err error) {
	for line := range strings.SplitSeq(err.Error(), "\n") {
		fmt.Fprintln(os.Stderr, "config: "+line)
	}
	os.Exit(2)
}

func serve(ctx context.Context, cfg config.Config, logger *slog.Logger) error {
	if cfg.OperatorToken == "" {
		logger.Warn("no OPERATOR_TOKEN: only operators created with `starter operator create` can use the management API")
	}
	if cfg.UsesDevMasterKey() {
		logger.Warn("using the public development master key: set TENANT_MASTER_KEY for anything but local development")
	}
	sealer, err := seal.NewKeyring(cfg.MasterKeys())
	if err != nil {
		return err
	}
	c, err := clients.Open(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer func() {
		if err := c.Close(context.Background()); err != nil {
			logger.Warn("close clients", "err", err)
		}
	}()

	if err := rls.VerifyAtStart(ctx, c.Postgres, logger); err != nil {
		return err
	}
	if err := keycheck.VerifyAll(ctx, c.Postgres, sealer); err != nil {
		return err
	}

	app := wiring.API(cfg, c, sealer, logger)
	public := api.NewHTTPServer(cfg.APIAddr, app.Public, api.DefaultTimeouts)
	ops := api.NewHTTPServer(cfg.MetricsAddr, app.Ops, api.DefaultTimeouts)

	errc := make(chan error, 2)
	go func() { errc <- public.ListenAndServe() }()
	go func() { errc <- ops.ListenAndServe() }()
	logger.Info("api listening", "addr", cfg.APIAddr, "metrics_addr", cfg.MetricsAddr, "env", cfg.Env)

	select {
	case err := <-errc:
		_ = public.Close()
		_ = ops.Close()
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("api: %w", err)
	case <-ctx.Done():
	}
	// Drain: stop accepting, let requests in flight finish (up to SHUTDOWN_TIMEOUT).
	logger.Info("api shutting down", "timeout", cfg.ShutdownTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	return errors.Join(public.Shutdown(shutdownCtx), ops.Shutdown(shutdownCtx))
}

// probe GETs url within timeout and succeeds on a 2xx status.
func probe(url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return fmt.Errorf("%s answered %s", url, res.Status)
	}
	return nil
}

// exportKeygen prints a new age X25519 identity in age-keygen's format: the public key (the
// EXPORT_RECIPIENT value) in a comment, then the secret key. Keep the output offline; it is
// what decrypts offboarding archives.
func exportKeygen() error {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return err
	}
	fmt.Printf("# created: %s\n# public key: %s\n%s\n", time.Now().UTC().Format(time.RFC3339), id.Recipient(), id)
	fmt.Fprintf(os.Stderr, "Public key: %s\n", id.Recipient())
	return nil
}

// rotateMasterKey starts the RotateMasterKey workflow (one at a time) and prints its ids; its
// progress is in the Web UI and `temporal workflow describe -w master-key-rotation`.
func rotateMasterKey(ctx context.Context, cfg config.Config, logger *slog.Logger) error {
	c, err := clients.Open(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer func() { _ = c.Close(context.Background()) }()
	run, err := c.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: workflows.MasterKeyRotationID, TaskQueue: cfg.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL, WorkflowExecutionErrorWhenAlreadyStarted: true,
		TypedSearchAttributes: workflows.StartSearchAttributes("", "rotate-master-key", "", "", ""),
	}, workflows.RotateMasterKey, workflows.RotateMasterKeyInput{RequestedBy: "cli:" + os.Getenv("USER"), Version: cfg.MasterKeyVersion})
	if err != nil {
		return fmt.Errorf("start the master key rotation: %w", err)
	}
	fmt.Printf("master key rotation to version %d started: workflow %s, run %s\n", cfg.MasterKeyVersion, run.GetID(), run.GetRunID())
	return nil
}

// verifyIsolation runs the isolation self-check once and reports the result.
func verifyIsolation(ctx context.Context, cfg config.Config, logger *slog.Logger) error {
	pool, err := pgxpool.New(ctx, cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("DATABASE_URL: %w", err)
	}
	defer pool.Close()
	if err := rls.Verify(ctx, pool); err != nil {
		for line := range strings.SplitSeq(err.Error(), "\n") {
			fmt.Fprintln(os.Stderr, "isolation: "+line)
		}
		return errors.New("isolation self-check failed")
	}
	fmt.Println("isolation: ok: every tenant table is under forced row-level security and the application role cannot bypass it")
	return nil
}

// operate runs a lifecycle command for operators at a shell: the same checks and workflows as
// the API's endpoints, without going through HTTP.
func operate(ctx context.Context, cfg config.Config, logger *slog.Logger, cmd string, args []string) error {
	if len(args) < 1 || tenant.ValidateID(args[0]) != nil {
		fmt.Fprintf(os.Stderr, "usage: starter %s <tenantId> [reason]\n", cmd)
		os.Exit(2)
	}
	id, reason := args[0], strings.Join(args[1:], " ")
	c, err := clients.Open(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer func() { _ = c.Close(context.Background()) }()
	reg := registry.New(c.Postgres)
	svc := lifecycle.New(c.Temporal, lifecycle.Options{TaskQueue: cfg.TaskQueue, OffboardGrace: cfg.OffboardGrace, Decisions: decision.New(c.Postgres)})

	t, err := reg.Get(ctx, id)
	if err != nil {
		return err
	}
	var out any
	if cmd == "status" {
		op, err := svc.Current(ctx, id)
		if err != nil && !errors.Is(err, lifecycle.ErrNoOperation) {
			return err
		}
		out = map[string]any{"tenant": t, "operation": op}
	} else {
		operator := cliActor()
		run, err := svc.Start(ctx, lifecycle.Operation(cmd), t, operator, reason)
		if err != nil {
			return err
		}
		out = run
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// register registers a tenant from a shell, by the same rules as POST /api/meta-agent/tenants
// (tenantservice), and records it in the platform audit chain in the registration's own
// transaction, as the API does.
func register(ctx context.Context, cfg config.Config, logger *slog.Logger, args []string) error {
	if len(args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: starter register <tenantId> <owner|enterprise|standard|trial> <name> <contactEmail>")
		os.Exit(2)
	}
	typ := tenant.Type(args[1])
	if !slices.Contains([]tenant.Type{tenant.TypeOwner, tenant.TypeEnterprise, tenant.TypeStandard, tenant.TypeTrial}, typ) {
		return fmt.Errorf("tenant type %q: want owner, enterprise, standard or trial", args[1])
	}
	sealer, err := seal.NewKeyring(cfg.MasterKeys())
	if err != nil {
		return err
	}
	c, err := clients.Open(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer func() { _ = c.Close(context.Background()) }()
	// The secret is sealed, and the event MAC'd, under this key: refuse one the database was not
	// set up with, as serve and the worker do, or the API could never open the secret.
	if err := keycheck.VerifyAll(ctx, c.Postgres, sealer); err != nil {
		return err
	}
	auditWriter := c.AuditWriter(sealer)
	by := cliActor()
	ev := audit.Event{
		ID: "cli/" + randomID(), TenantID: args[0], Actor: audit.Actor{Type: audit.ActorOperator, ID: by},
		Action: "tenant.register", Resource: "tenant/" + args[0], Outcome: audit.OutcomeSuccess,
		Details: map[string]string{"tenantType": string(typ), "via": "starter register"}, At: time.Now().UTC(),
	}
	ctx = rls.WithCommitHook(ctx, func(ctx context.Context, tx pgx.Tx) error {
		_, err := auditWriter.RecordTxIfWrote(ctx, tx, ev, true)
		return err
	})
	svc := tenantservice.New(registry.New(c.Postgres), sealer, c.Cells(sealer, logger).TenantRedis(), logger)
	t, secret, err := svc.Register(ctx, tenant.Tenant{ID: args[0], Name: args[2], ContactEmail: args[3], Type: typ})
	if err != nil {
		return err
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(map[string]any{"tenant": t, "tenantSecret": secret}); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "register: the tenant secret is printed once above; only its sealed form is stored")
	return nil
}

// cliActor names who runs a CLI command, for the audit trail: "cli:" and the login name.
func cliActor() string {
	return "cli:" + cmp.Or(os.Getenv("USER"), os.Getenv("LOGNAME"), "unknown")
}

// randomID is 16 random bytes, hex-encoded: the id of a CLI audit event, made once per command.
func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms (Go 1.24+)
	return hex.EncodeToString(b)
}

// operatorCommand manages operator tokens from a shell.
func operatorCommand(ctx context.Context, cfg config.Config, args []string) error {
	usage := func() {
		fmt.Fprintln(os.Stderr, "usage: starter operator create <name> <platform-admin|operator|auditor> | revoke <name> | list | disable-bootstrap")
		os.Exit(2)
	}
	if len(args) == 0 {
		usage()
	}
	pool, err := pgxpool.New(ctx, cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("DATABASE_URL: %w", err)
	}
	defer pool.Close()
	store := operators.New(pool, "")
	switch {
	case args[0] == "create" && len(args) == 3:
		token, err := store.Create(ctx, args[1], operators.Role(args[2]))
		if err != nil {
			return err
		}
		fmt.Println(token)
		fmt.Fprintln(os.Stderr, "operator: token printed once above; only its SHA-256 is stored")
		return nil
	case args[0] == "revoke" && len(args) == 2:
		ok, err := store.Revoke(ctx, args[1])
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("no operator named %q", args[1])
		}
		fmt.Println("revoked", args[1])
		return nil
	case args[0] == "list" && len(args) == 1:
		list, err := store.List(ctx)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(list)
	case args[0] == "disable-bootstrap" && len(args) == 1:
		if err := store.DisableBootstrap(ctx, "cli:"+os.Getenv("USER")); err != nil {
			return err
		}
		fmt.Println("the bootstrap token (OPERATOR_TOKEN) is refused by every process from now on")
		return nil
	}
	usage()
	return nil
}
