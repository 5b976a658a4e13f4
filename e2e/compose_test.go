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
