package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	mongooptions "go.mongodb.org/mongo-driver/mongo/options"

	"github.com/misybot/tenancy/internal/domain/cells"
	"github.com/misybot/tenancy/internal/stores/redisurl"
	"github.com/misybot/tenancy/internal/stores/tenantmongo"
	"github.com/misybot/tenancy/migrations"
)

// The placement and routing overhead (issue 26): onboarding placed among three cells against
// onboarding named onto the default cell, interleaved at concurrency 1 in the same run. The
// two extra cells are the local cells cell-2 and cell-3 (scripts/cells.sh, their tenancy_bench
// databases), registered open for the measurement and closed after it, so the rest of the
// bench places nothing on them. With the default cell holding every earlier tenant, the
// least-loaded placement puts the three-cell side's tenants on cell-2 and cell-3: the figure
// is what choosing a cell and reaching stores other than the process's own cost an onboarding.

// benchCells are the local cells the measurement registers.
var benchCells = []string{"cell-2", "cell-3"}

// errNoLocalCells: scripts/cells.sh has not started the cells.
var errNoLocalCells = errors.New("the local cells are not running (make cells)")

// cellEnv reads a local cell's connection strings for the bench database from
// `scripts/cells.sh env <cell> tenancy_bench`.
func cellEnv(ctx context.Context, cell string) (map[string]string, error) {
	out, err := exec.CommandContext(ctx, "scripts/cells.sh", "env", cell, "tenancy_bench").Output()
	if err != nil {
		return nil, fmt.Errorf("%w: scripts/cells.sh env %s: %w", errNoLocalCells, cell, err)
	}
	env := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			env[k] = v
		}
	}
	return env, nil
}

// cellsPair registers the local cells, measures the pair, and closes the cells again.
func (b *bench) cellsPair(ctx context.Context, samples int) (one, three phase, err error) {
	reg := b.cells
	for _, name := range benchCells {
		env, err := cellEnv(ctx, name)
		if err != nil {
			return one, three, err
		}
		if err := b.cleanCell(ctx, env); err != nil {
			return one, three, fmt.Errorf("%s: %w", name, err)
		}
		id := "bench-" + strings.TrimPrefix(name, "cell-")
		_ = reg.Delete(ctx, id) // left by an earlier bench (reset emptied its tenants)
		_, err = reg.Create(ctx, cells.Cell{ID: id, Region: "local", Kind: cells.KindPooled, Capacity: 3500},
			cells.Stores{PostgresURL: env["CELL_POSTGRES_URL"], PostgresMigrateURL: env["CELL_POSTGRES_OWNER_URL"], MongoURL: env["CELL_MONGO_URL"], RedisURL: env["CELL_REDIS_URL"]})
		if err != nil {
			return one, three, fmt.Errorf("register %s: %w", name, err)
		}
		defer func() { _, _ = reg.SetState(context.WithoutCancel(ctx), id, cells.StateClosed) }()
	}
	return b.interleaved(samples, "onboarding, concurrency 1, named onto the default cell", b.onboardOnDefault,
		"onboarding, concurrency 1, placed among 3 cells", b.onboard)
}

// onboardOnDefault is onboard with the default cell named.
func (b *bench) onboardOnDefault(ctx context.Context) error {
	id := fmt.Sprintf("%st%05d", b.prefix, b.seq.Add(1))
	body := `{"tenantId":"` + id + `","tenantName":"Bench ` + id + `","contactEmail":"ops@` + id + `.test","tenantType":"standard","cellId":"default"}`
	var started struct{ WorkflowID, RunID string }
	if err := b.operatorDo(ctx, http.MethodPost, "/api/meta-agent/tenants/onboard", body, http.StatusAccepted, &started); err != nil {
		return err
	}
	return b.temporal.GetWorkflow(ctx, started.WorkflowID, started.RunID).Get(ctx, nil)
}

// cleanCell applies the cell migrations to a local cell's bench database and empties what
// earlier benches left on the cell: its tenant rows and relayed events, the bench tenants'
// MongoDB databases, its Redis database.
func (b *bench) cleanCell(ctx context.Context, env map[string]string) error {
	if err := migrations.UpCell(ctx, env["CELL_POSTGRES_OWNER_URL"], b.logger); err != nil {
		return err
	}
	owner, err := pgxpool.New(ctx, env["CELL_POSTGRES_OWNER_URL"])
	if err != nil {
		return err
	}
	defer owner.Close()
	if _, err := owner.Exec(ctx, `TRUNCATE tenant_settings, tenant_members, tenant_api_keys, tenant_usage, audit_relay`); err != nil {
		return fmt.Errorf("empty the cell's bench database: %w", err)
	}
	m, err := mongo.Connect(ctx, mongooptions.Client().ApplyURI(env["CELL_MONGO_URL"]))
	if err != nil {
		return err
	}
	defer func() { _ = m.Disconnect(context.WithoutCancel(ctx)) }()
	names, err := m.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		return err
	}
	for _, n := range names {
		if strings.HasPrefix(n, tenantmongo.DatabasePrefix+"b") {
			if err := m.Database(n).Drop(ctx); err != nil {
				return err
			}
		}
	}
	rc, err := redisurl.NewClient(env["CELL_REDIS_URL"])
	if err != nil {
		return err
	}
	defer func() { _ = rc.Close() }()
	return rc.FlushDB(ctx).Err()
}
