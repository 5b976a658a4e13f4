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
	"github.com/misybot/tenancy/internal/testenv"
)

// `starter serve` sent SIGTERM while a request is in flight stops accepting connections but
// answers that request in full (SHUTDOWN_TIMEOUT), then exits 0. The request is held in flight
// by sending its body in two halves, the signal in between.
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
	body := onboardBody(id, "standard")
	half := len(body) / 2
	pr, pw := io.Pipe()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, base+api.TenantsPath, pr)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.ContentLength = int64(len(body))
	type answer struct {
		code int
		err  error
	}
	answered := make(chan answer, 1)
	go func() {
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			answered <- answer{err: err}
			return
		}
		res.Body.Close()
		answered <- answer{code: res.StatusCode}
	}()
	_, err = pw.Write([]byte(body[:half]))
	require.NoError(t, err) // headers and half the body are on their way: the connection is busy

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

	_, err = pw.Write([]byte(body[half:]))
	require.NoError(t, err)
	require.NoError(t, pw.Close())
	a := <-answered
	require.NoError(t, a.err, "the request in flight is answered")
	require.Equal(t, http.StatusCreated, a.code, "and carried out")
	require.NoError(t, cmd.Wait(), "the API exits 0 after draining")
}
