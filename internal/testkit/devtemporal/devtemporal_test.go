package devtemporal

import (
	"os"
	"strings"
	"testing"
)

// The shared dev server (scripts/services.sh) must run with the tuning the bench and the chaos
// suite measure with, or `make dev` behaves unlike what docs/performance.md's figures describe.
func TestServicesScriptStartsTheDevServerWithTheSameTuning(t *testing.T) {
	script, err := os.ReadFile("../../../scripts/services.sh")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(Tuning); i += 2 {
		flag, value := Tuning[i], Tuning[i+1]
		if strings.Contains(value, `"`) {
			value = "'" + value + "'" // the shell quotes a JSON string
		}
		if want := flag + " " + value; !strings.Contains(string(script), want) {
			t.Errorf("scripts/services.sh does not start the dev server with %s", want)
		}
	}
}

func TestSearchAttributeFlagsRegisterEveryLifecycleAttributeAsKeyword(t *testing.T) {
	got := strings.Join(SearchAttributeFlags(), " ")
	for _, name := range []string{"TenantId", "LifecycleOperation", "TenantType", "TenantStatus", "CellId"} {
		if !strings.Contains(got, "--search-attribute "+name+"=Keyword") {
			t.Errorf("flags %q do not register %s", got, name)
		}
	}
}
