package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/misybot/tenancy/internal/testkit/devtemporal"
)

// devServer is a Temporal dev server of the bench's own, on a fresh SQLite file.
//
// Why: the dev server stores every run in one SQLite file, and it slows as that file grows
// (measured: its own floor workflow 1.4 to 1.6 times slower at concurrency 1 after a few
// thousand runs). The figure "onboarding after 2,000 tenants against an empty platform" is
// about our platform's data (registry, audit history, tenant databases), so the bench measures
// both concurrency-1 points on a freshly started server (restart), each beside its floor:
// what is left in the ratio is ours. The shared dev server of `make dev` is not touched.
type devServer struct {
	bin, dir, addr string
	// metricsAddr serves the server's Prometheus metrics (a new port on each start).
	metricsAddr string
	cmd         *exec.Cmd
	done        chan struct{}
	generation  int
}

// startDevServer starts the Temporal CLI's dev server (scripts/tools.sh builds or finds it) on
// free loopback ports, with the lifecycle search attributes registered.
func startDevServer() (*devServer, error) {
	out, err := exec.Command("scripts/tools.sh", "temporal").Output()
	if err != nil {
		return nil, fmt.Errorf("scripts/tools.sh temporal: %w", err)
	}
	dir, err := os.MkdirTemp("", "bench-temporal-")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	d := &devServer{bin: strings.TrimSpace(string(out)), dir: dir, addr: "127.0.0.1:" + strconv.Itoa(port)}
	return d, d.start()
}

func (d *devServer) start() error {
	d.generation++
	ports := make([]string, 2)
	for i := range ports {
		p, err := freePort()
		if err != nil {
			return err
		}
		ports[i] = strconv.Itoa(p)
	}
	_, port, _ := net.SplitHostPort(d.addr)
	d.metricsAddr = "127.0.0.1:" + ports[1]
	args := []string{"server", "start-dev", "--ip", "127.0.0.1", "--port", port, "--headless",
		"--http-port", ports[0], "--metrics-port", ports[1],
		"--db-filename", filepath.Join(d.dir, fmt.Sprintf("temporal-%d.db", d.generation)), "--log-level", "warn"}
	args = append(append(args, devtemporal.Tuning...), devtemporal.SearchAttributeFlags()...)
	log, err := os.OpenFile(filepath.Join(d.dir, "temporal.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	d.cmd = exec.Command(d.bin, args...)
	d.cmd.Stdout, d.cmd.Stderr = log, log
	if err := d.cmd.Start(); err != nil {
		_ = log.Close()
		return err
	}
	d.done = make(chan struct{})
	cmd, done := d.cmd, d.done
	go func() { _ = cmd.Wait(); _ = log.Close(); close(done) }()
	c, err := client.NewLazyClient(client.Options{HostPort: d.addr, Logger: tlog.NewStructuredLogger(slog.New(slog.DiscardHandler))})
	if err != nil {
		return err
	}
	defer c.Close()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err = c.CheckHealth(ctx, &client.CheckHealthRequest{})
		cancel()
		if err == nil {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("the bench's dev server did not become healthy (log %s): %w", filepath.Join(d.dir, "temporal.log"), err)
}

// restart stops the server and starts it again on a new, empty SQLite file, on the same port.
func (d *devServer) restart() error {
	d.stop()
	return d.start()
}

// stop ends the server and waits until it is gone.
func (d *devServer) stop() {
	if d.cmd == nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(15 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.done
	}
	d.cmd = nil
}

// close stops the server and removes its files.
func (d *devServer) close() {
	d.stop()
	_ = os.RemoveAll(d.dir)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		return 0, errors.New("not a TCP address")
	}
	return addr.Port, nil
}
