package e2e

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/api"
	"github.com/misybot/tenancy/internal/testkit/testenv"
)

// `starter serve` sent SIGTERM while a request is in flight stops accepting connections but
// answers that request in full (SHUTDOWN_TIMEOUT), then exits 0. The request, a tenant update,
// is held in flight by a lock the test holds on the tenant's row, released after the signal.
func TestAPIDrainsOnSIGTERM(t *testing.T) {
	t.Parallel()
	testenv.Migrate(t)
	bin := filepath.Join(t.TempDir(), "starter")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/misybot/tenancy/starter").CombinedOutput()
	require.NoError(t, err, string(out))

	addr, opsAddr := freeAddr(t), freeAddr(t)
	logPath := filepath.Join(t.TempDir(), "api.log")
	logFile, err := os.Create(logPath)
	require.NoError(t, err)
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), "APP_ENV=dev", "LOG_LEVEL=info",
		"DATABASE_URL="+testenv.AppDatabaseURL, "MONGODB_URI="+testenv.MongoURI, "REDIS_URL="+testenv.RedisURL,
		"TEMPORAL_ADDRESS="+testenv.TemporalAddress, "TENANT_MASTER_KEY="+base64.StdEncoding.EncodeToString(masterKey),
		"OPERATOR_TOKEN="+token, "API_ADDR="+addr, "METRICS_ADDR="+opsAddr, "SHUTDOWN_TIMEOUT=1m", "EXPORT_DIR="+t.TempDir())
	cmd.Stdout, cmd.Stderr = logFile, logFile
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
		logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("api log:\n%s", b)
		}
	})
	base := "http://" + addr
	require.Eventually(t, func() bool {
		res, err := http.Get(base + "/healthz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	}, time.Minute, 50*time.Millisecond, "the API never answered")

	id := testenv.TenantID("drain")
	status, _ := send(http.MethodPost, base+api.TenantsPath, onboardBody(id, "standard"))
	require.Equal(t, http.StatusCreated, status)

	// Hold the tenant's registry row: the update below blocks inside its handler, in flight,
	// until the test lets it go. PostgreSQL says when it waits on this lock.
	ctx := context.Background()
	owner := testenv.OwnerPool(t)
	blocker, err := owner.Begin(ctx)
	require.NoError(t, err)
	defer blocker.Rollback(ctx) //nolint:errcheck
	var blockerPID int
	require.NoError(t, blocker.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&blockerPID))
	_, err = blocker.Exec(ctx, `SELECT 1 FROM tenants WHERE tenant_id = $1 FOR UPDATE`, id)
	require.NoError(t, err)

	type answer struct {
		code int
		err  error
	}
	answered := make(chan answer, 1)
	go func() {
		code, err := send(http.MethodPut, base+api.TenantsPath+"/"+id, `{"tenantName":"Drained","contactEmail":"ops@`+id+`.test","tenantType":"standard"}`)
		answered <- answer{code: code, err: err}
	}()
	require.Eventually(t, func() bool {
		var waiting bool
		err := owner.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid)))`, blockerPID).Scan(&waiting)
		return err == nil && waiting
	}, time.Minute, 20*time.Millisecond, "the update never reached the lock")

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.Eventually(t, func() bool {
		b, _ := os.ReadFile(logPath)
		return strings.Contains(string(b), `"api shutting down"`)
	}, time.Minute, 20*time.Millisecond, "the API never began to shut down")
	require.Eventually(t, func() bool {
		c, err := http.Get(base + "/healthz")
		if err == nil {
			c.Body.Close()
		}
		return err != nil
	}, time.Minute, 20*time.Millisecond, "a draining API refuses new connections")

	require.NoError(t, blocker.Rollback(ctx))
	a := <-answered
	require.NoError(t, a.err, "the request in flight is answered")
	require.Equal(t, http.StatusOK, a.code, "and carried out")
	require.NoError(t, cmd.Wait(), "the API exits 0 after draining")
}

// send makes one request with the operator token on a connection of its own (no keep-alive: a
// connection left idle in a shared pool would be closed by the shutdown, as idle ones are).
func send(method, url, body string) (int, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	res, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
	return res.StatusCode, nil
}
