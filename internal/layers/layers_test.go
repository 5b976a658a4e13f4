// Package layers holds the test of the import direction that docs/architecture.md describes:
// each package imports only from its own layer or the layers below it, and only tests, the
// bench, the chaos suite and the test kit itself reach the test kit.
package layers

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const module = "github.com/misybot/tenancy/"

// rank orders the layers, from the ground up; a package may import ranks up to its own.
var rank = []struct {
	prefix string
	rank   int
}{
	{"internal/model/", 0}, {"migrations", 0},
	{"internal/stores/", 1},
	{"internal/keys/", 2},
	{"internal/domain/", 3},
	{"internal/platform/", 4},
	{"activities", 5},
	{"workflows", 6},
	{"internal/control/", 7},
	{"api", 8},
	{"wiring", 9},
	{"starter", 10}, {"worker", 10}, {"bench", 10}, {"chaos", 10}, {"e2e", 10},
	{"internal/testkit/", 10},
	{"internal/layers", 10},
}

func rankOf(t *testing.T, pkg string) int {
	for _, r := range rank {
		if pkg == strings.TrimSuffix(r.prefix, "/") || strings.HasPrefix(pkg, r.prefix) ||
			(!strings.HasSuffix(r.prefix, "/") && strings.HasPrefix(pkg, r.prefix+"/")) {
			return r.rank
		}
	}
	t.Fatalf("package %s has no layer: add it to docs/architecture.md and to rank", pkg)
	return 0
}

func TestImportsRunDownTheLayers(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, module+"...").Output()
	require.NoError(t, err)
	var broken []string
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		from := strings.TrimPrefix(fields[0], module)
		for _, imp := range fields[1:] {
			if !strings.HasPrefix(imp, module) {
				continue
			}
			to := strings.TrimPrefix(imp, module)
			if strings.HasPrefix(to, "internal/testkit/") && rankOf(t, from) < 10 {
				broken = append(broken, from+" -> "+to+" (the test kit is for tests and the bench)")
			}
			if rankOf(t, to) > rankOf(t, from) {
				broken = append(broken, from+" -> "+to)
			}
		}
	}
	require.Empty(t, broken, "imports that run up the layers of docs/architecture.md")
}
