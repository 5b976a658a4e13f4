package e2e

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// docker-compose.yml publishes the API and nothing else on every interface: Temporal's
// frontend has no authentication there (whoever reaches it can start or signal lifecycle
// workflows), the Web UI is bound to loopback, and the operators' listener stays unpublished.
func TestComposePublishesOnlyTheAPI(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../docker-compose.yml")
	require.NoError(t, err)
	var compose struct {
		Services map[string]struct {
			Ports []string `yaml:"ports"`
		} `yaml:"services"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &compose))
	require.Contains(t, compose.Services, "api")
	for name, svc := range compose.Services {
		for _, p := range svc.Ports {
			switch {
			case name == "api" && p == "8080:8080":
			case strings.HasPrefix(p, "127.0.0.1:"):
			default:
				t.Errorf("service %s publishes %q on every interface", name, p)
			}
			require.NotContains(t, p, "7233", "the Temporal frontend is never published")
			require.NotContains(t, p, "9464", "the operators' listener is never published")
		}
	}
}

// deploy/docker-compose.prod.yml, checked for what the issue asks of a production layout (no
// Docker engine or compose binary here; `make lint` also runs `docker-compose config` where
// one exists): the Temporal server image (not auto-setup) after a one-shot schema job that runs
// temporal-sql-tool for both databases, two worker replicas, and only the API published;
// every long-running service has a health check, and every dependency waits on a health check
// or on a one-shot job's success.
func TestProductionCompose(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../deploy/docker-compose.prod.yml")
	require.NoError(t, err)
	type service struct {
		Image       string   `yaml:"image"`
		Build       any      `yaml:"build"`
		Ports       []string `yaml:"ports"`
		Entrypoint  []string `yaml:"entrypoint"`
		Volumes     []string `yaml:"volumes"`
		Restart     string   `yaml:"restart"`
		Healthcheck *struct {
			Test []string `yaml:"test"`
		} `yaml:"healthcheck"`
		DependsOn map[string]struct {
			Condition string `yaml:"condition"`
		} `yaml:"depends_on"`
		Deploy struct {
			Replicas int `yaml:"replicas"`
		} `yaml:"deploy"`
		StopGracePeriod string         `yaml:"stop_grace_period"`
		Environment     map[string]any `yaml:"environment"`
	}
	var compose struct {
		Services map[string]service `yaml:"services"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &compose))
	svcs := compose.Services

	for _, name := range []string{"postgres", "temporal-schema", "temporal", "temporal-namespace", "temporal-ui", "mongo", "redis", "migrate", "worker", "api"} {
		require.Contains(t, svcs, name)
	}
	for name, svc := range svcs {
		require.NotContains(t, svc.Image, "auto-setup", "%s: the development image is not used", name)
		if name == "api" {
			require.Equal(t, []string{"8080:8080"}, svc.Ports)
		} else {
			require.Empty(t, svc.Ports, "%s publishes nothing", name)
		}
		oneShot := svc.Restart == "no"
		if !oneShot {
			require.NotNil(t, svc.Healthcheck, "%s: a long-running service has a health check", name)
			require.NotEmpty(t, svc.Healthcheck.Test, name)
		}
		for dep, d := range svc.DependsOn {
			target, ok := svcs[dep]
			require.True(t, ok, "%s depends on unknown %s", name, dep)
			if target.Restart == "no" {
				require.Equal(t, "service_completed_successfully", d.Condition, "%s waits for one-shot %s to succeed", name, dep)
			} else {
				require.Equal(t, "service_healthy", d.Condition, "%s waits for %s to be healthy", name, dep)
				require.NotNil(t, target.Healthcheck, "%s depends on %s, which has a health check", name, dep)
			}
		}
	}

	require.True(t, strings.HasPrefix(svcs["temporal"].Image, "temporalio/server:"), svcs["temporal"].Image)
	require.Equal(t, "service_completed_successfully", svcs["temporal"].DependsOn["temporal-schema"].Condition)
	require.True(t, strings.HasPrefix(svcs["temporal-schema"].Image, "temporalio/admin-tools:"))
	// The schema job's script runs temporal-sql-tool create, setup-schema and update-schema for
	// both databases.
	script, err := os.ReadFile("../deploy/temporal/setup-schema.sh")
	require.NoError(t, err)
	for _, want := range []string{"temporal-sql-tool", " create", "setup-schema -v 0.0", "update-schema -d", "for db in temporal temporal_visibility"} {
		require.Contains(t, string(script), want)
	}
	require.Contains(t, strings.Join(svcs["temporal-schema"].Entrypoint, " "), "setup-schema.sh")

	require.Equal(t, 2, svcs["worker"].Deploy.Replicas, "two workers on the task queue")
	for _, name := range []string{"api", "worker"} {
		require.NotNil(t, svcs[name].Build, "%s is built from the repository's Dockerfile", name)
		require.Contains(t, svcs[name].Healthcheck.Test, "/app/starter", "%s: probed by the binary (no shell in the image)", name)
		require.NotEmpty(t, svcs[name].StopGracePeriod, "%s: a grace period for draining", name)
	}
	require.Contains(t, svcs["worker"].Healthcheck.Test, "http://127.0.0.1:9465/healthz")
	require.Contains(t, svcs["api"].Healthcheck.Test, "http://127.0.0.1:9464/readyz")
}
