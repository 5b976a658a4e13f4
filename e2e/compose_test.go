package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
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

// The Temporal version both compose files run. They run the real server (temporalio/server on
// PostgreSQL), so they name the real-server build the project tested (go.temporal.io/server
// v1.29.7, with this project's e2e, workflow and activity tests against it), the latest 1.29 patch
// (a security release), not the 1.29.1 the Temporal CLI embeds as its dev server: that one pins
// tools/go.mod, and TestComposeTemporalImages keeps the two on one minor line (one schema and
// feature set, whether a user runs `make dev` or Docker). This constant is the one place to change
// the version; the test fails until both compose files follow.
const (
	composeTemporalVersion = "1.29.7"
	// Since 1.24 admin-tools is tagged <server>-tctl-<tctl>-cli-<cli>, and from 1.29.2 on there
	// is no plain <server> tag (temporalio/admin-tools:1.29.7 does not exist). CLI v1.7.2 and
	// tctl v1.18.4 (its last release) are those the 1.29.7 image was built with.
	composeAdminToolsTag = composeTemporalVersion + "-tctl-1.18.4-cli-1.7.2"
)

// composeUpstreamImages are the other upstream images the compose files may name, with the one
// tag each; a new image or tag fails TestComposeTemporalImages until someone has checked that it
// exists upstream and added it here.
var composeUpstreamImages = map[string]string{"postgres": "15", "mongo": "7", "redis": "7"}

type composeService struct {
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

// composeFiles are the two compose files, relative to this package.
var composeFiles = []string{"../docker-compose.yml", "../deploy/docker-compose.prod.yml"}

// loadCompose reads a compose file's services (YAML anchors and merge keys resolved).
func loadCompose(t *testing.T, path string) map[string]composeService {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	var compose struct {
		Services map[string]composeService `yaml:"services"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &compose), path)
	require.NotEmpty(t, compose.Services, path)
	return compose.Services
}

// requireDependenciesWait checks that every dependency waits on a health check, or on a one-shot
// job's success, so that nothing starts against a service that is not ready yet.
func requireDependenciesWait(t *testing.T, file string, svcs map[string]composeService) {
	t.Helper()
	for name, svc := range svcs {
		for dep, d := range svc.DependsOn {
			target, ok := svcs[dep]
			require.True(t, ok, "%s: %s depends on unknown %s", file, name, dep)
			if target.Restart == "no" {
				require.Equal(t, "service_completed_successfully", d.Condition, "%s: %s waits for one-shot %s to succeed", file, name, dep)
			} else {
				require.Equal(t, "service_healthy", d.Condition, "%s: %s waits for %s to be healthy", file, name, dep)
				require.NotNil(t, target.Healthcheck, "%s: %s depends on %s, which has a health check", file, name, dep)
			}
		}
	}
}

// imageDefault is the image a compose file names, with ${VAR:-default} replaced by its default
// (what runs when the variable is unset), split into repository and tag.
func imageDefault(image string) (repo, tag string) {
	image = regexp.MustCompile(`\$\{\w+:-([^}]*)\}`).ReplaceAllString(image, "$1")
	repo, tag, _ = strings.Cut(image, ":")
	return repo, tag
}

// goModVersion is the version a go.mod requires of a module, without the "v".
func goModVersion(t *testing.T, gomod []byte, module string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^\s*(?:require\s+)?` + regexp.QuoteMeta(module) + `\s+v(\S+)`).FindSubmatch(gomod)
	require.NotNil(t, m, "tools/go.mod requires %s", module)
	return string(m[1])
}

// minorLine is "1.29" of "1.29.7".
func minorLine(version string) string {
	parts := strings.SplitN(version, ".", 3)
	return strings.Join(parts[:min(2, len(parts))], ".")
}

// Every image the compose files pull exists upstream under the tag named, and the Temporal ones
// match what the project builds and pins: the server and admin-tools at composeTemporalVersion
// (never the development image auto-setup), on the minor line of the dev server the Temporal CLI
// embeds (tools/go.mod, built by scripts/tools.sh), and the Web UI at the version that CLI embeds.
func TestComposeTemporalImages(t *testing.T) {
	t.Parallel()
	gomod, err := os.ReadFile("../tools/go.mod")
	require.NoError(t, err)
	cliVersion := goModVersion(t, gomod, "github.com/temporalio/cli")
	devServerVersion := goModVersion(t, gomod, "go.temporal.io/server")
	uiVersion := goModVersion(t, gomod, "github.com/temporalio/ui-server/v2")

	script, err := os.ReadFile("../scripts/tools.sh")
	require.NoError(t, err)
	require.Contains(t, string(script), "\nTEMPORAL_VERSION=v"+cliVersion+" ", "scripts/tools.sh builds the CLI tools/go.mod pins")

	require.Equal(t, minorLine(devServerVersion), minorLine(composeTemporalVersion),
		"the compose files' Temporal (%s) and the dev server of the CLI in tools/go.mod (%s) are on one minor line", composeTemporalVersion, devServerVersion)
	require.True(t, strings.HasPrefix(composeAdminToolsTag, composeTemporalVersion+"-"), "admin-tools ships the schema of the server it runs beside")

	want := map[string]string{
		"temporalio/server":      composeTemporalVersion,
		"temporalio/admin-tools": composeAdminToolsTag,
		"temporalio/ui":          uiVersion,
	}
	for repo, tag := range composeUpstreamImages {
		want[repo] = tag
	}
	for _, file := range composeFiles {
		seen := map[string]bool{}
		for name, svc := range loadCompose(t, file) {
			if svc.Build != nil {
				continue // built from the repository's Dockerfile
			}
			repo, tag := imageDefault(svc.Image)
			require.NotContains(t, repo, "auto-setup", "%s: %s uses the development image", file, name)
			wantTag, known := want[repo]
			require.True(t, known, "%s: %s pulls %s, which is not in the list of checked images (composeUpstreamImages)", file, name, svc.Image)
			require.Equal(t, wantTag, tag, "%s: %s pulls %s", file, name, svc.Image)
			seen[repo] = true
		}
		for _, repo := range []string{"temporalio/server", "temporalio/admin-tools", "temporalio/ui"} {
			require.True(t, seen[repo], "%s runs %s", file, repo)
		}
	}
}

// docker-compose.yml runs Temporal as deploy/docker-compose.prod.yml does, with the same scripts:
// a schema job, the server after it, and a namespace job the API and the worker wait for.
func TestComposeTemporalLikeProduction(t *testing.T) {
	t.Parallel()
	setupDir, err := filepath.Abs("../deploy/temporal")
	require.NoError(t, err)
	for _, file := range composeFiles {
		svcs := loadCompose(t, file)
		for _, name := range []string{"temporal-schema", "temporal", "temporal-namespace", "temporal-ui"} {
			require.Contains(t, svcs, name, file)
		}
		requireDependenciesWait(t, file, svcs)

		for job, script := range map[string]string{"temporal-schema": "setup-schema.sh", "temporal-namespace": "setup-namespace.sh"} {
			svc := svcs[job]
			require.Equal(t, "no", svc.Restart, "%s: %s is a one-shot job", file, job)
			require.Equal(t, []string{"/bin/sh", "/setup/" + script}, svc.Entrypoint, "%s: %s", file, job)
			// The one copy of the scripts, deploy/temporal/, mounted read-only.
			require.Len(t, svc.Volumes, 1, "%s: %s", file, job)
			src, dst, ok := strings.Cut(svc.Volumes[0], ":")
			require.True(t, ok)
			require.Equal(t, "/setup:ro", dst, "%s: %s", file, job)
			abs, err := filepath.Abs(filepath.Join(filepath.Dir(file), src))
			require.NoError(t, err)
			require.Equal(t, setupDir, abs, "%s: %s mounts deploy/temporal", file, job)
		}
		require.Equal(t, "service_completed_successfully", svcs["temporal"].DependsOn["temporal-schema"].Condition, file)
		require.NotNil(t, svcs["temporal"].Healthcheck, file)
		require.Equal(t, "service_healthy", svcs["temporal-namespace"].DependsOn["temporal"].Condition, file)
		for _, name := range []string{"api", "worker"} {
			require.Equal(t, "service_completed_successfully", svcs[name].DependsOn["temporal-namespace"].Condition,
				"%s: %s starts once the namespace and the search attributes exist", file, name)
		}
		require.Empty(t, svcs["temporal"].Ports, "%s: the Temporal frontend is never published", file)
	}
}

// The namespace job registers every search attribute the workflows set, as Keyword: TenantId,
// LifecycleOperation, TenantType, TenantStatus and CellId.
func TestComposeSearchAttributes(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../deploy/temporal/setup-namespace.sh")
	require.NoError(t, err)
	script := string(raw)
	m := regexp.MustCompile(`(?m)^for name in ([^;]+); do$`).FindStringSubmatch(script)
	require.NotNil(t, m, "setup-namespace.sh loops over the attribute names")
	registered := strings.Fields(m[1])
	require.Equal(t, []string{"TenantId", "LifecycleOperation", "TenantType", "TenantStatus", "CellId"}, registered)
	require.Contains(t, script, "search-attribute create --address \"$ADDR\" --namespace \"$NS\" --type Keyword --name \"$name\"")

	// Whatever key the workflows declare is registered, with its type.
	sources, err := filepath.Glob("../workflows/*.go")
	require.NoError(t, err)
	key := regexp.MustCompile(`NewSearchAttributeKey(\w+)\("(\w+)"\)`)
	for _, path := range sources {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		src, err := os.ReadFile(path)
		require.NoError(t, err)
		for _, k := range key.FindAllStringSubmatch(string(src), -1) {
			require.Equal(t, "Keyword", k[1], "%s: %s is registered as Keyword", path, k[2])
			require.True(t, slices.Contains(registered, k[2]), "%s: %s is registered by setup-namespace.sh", path, k[2])
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
	svcs := loadCompose(t, "../deploy/docker-compose.prod.yml")

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
	}
	requireDependenciesWait(t, "deploy/docker-compose.prod.yml", svcs)

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
