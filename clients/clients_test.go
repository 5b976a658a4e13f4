// Package clients holds the API clients generated from api/openapi.yaml (`make clients`, that
// is scripts/clients.sh): go/oapi (oapi-codegen), go/ogen (ogen, a module of its own) and ts
// (openapi-typescript types for openapi-fetch). They are committed, so a Go or TypeScript team
// can use them as they are; the tests here keep them equal to what the pinned generators make
// of the document today, check that they compile, and lint the document.
package clients_test

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

// repo is the repository's root, seen from this package's folder.
const repo = ".."

// generated names the files the generators write: everything else in clients/ is by hand.
var generated = regexp.MustCompile(`^(go/oapi/client\.gen\.go|go/ogen/oas_[a-z_]+_gen\.go|ts/schema\.d\.ts)$`)

func run(t *testing.T, dir, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s %v in %s:\n%s", name, args, dir, out)
}

// generatedFiles lists the generated files under root (slash paths relative to it) with their
// contents.
func generatedFiles(t *testing.T, root string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	require.NoError(t, filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "node_modules" {
			return filepath.SkipDir
		}
		rel, err := filepath.Rel(root, path)
		if err != nil || d.IsDir() || !generated.MatchString(filepath.ToSlash(rel)) {
			return err
		}
		files[filepath.ToSlash(rel)], err = os.ReadFile(path)
		return err
	}))
	return files
}

// The committed clients are what the pinned generators make of the document now: a change
// of api/openapi.yaml that breaks a generator, or that was not followed by `make clients`,
// fails here.
func TestClientsAreUpToDate(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	run(t, repo, "scripts/clients.sh", "generate", out)
	want := generatedFiles(t, out)
	got := generatedFiles(t, ".")
	if _, err := exec.LookPath("node"); err != nil {
		t.Log("no node here: the TypeScript client is not regenerated, only the Go ones are compared")
		delete(got, "ts/schema.d.ts")
	}
	require.Contains(t, want, "go/oapi/client.gen.go")
	require.Contains(t, want, "go/ogen/oas_client_gen.go")
	for name, body := range want {
		require.Contains(t, got, name, "clients/%s is not committed: run make clients", name)
		require.True(t, bytes.Equal(body, got[name]), "clients/%s differs from what the generator makes of api/openapi.yaml: run make clients", name)
	}
	for name := range got {
		require.Contains(t, want, name, "clients/%s is no longer generated: run make clients (it removes it)", name)
	}
}

// The ogen client, a module of its own, compiles and passes vet with the requirements its
// go.mod and go.sum record (the oapi-codegen client is in the service's module: go vet and the
// e2e test that drives it compile it).
func TestOgenClientBuilds(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("go", "ogen")
	run(t, dir, "go", "build", "-mod=readonly", "./...")
	run(t, dir, "go", "vet", "-mod=readonly", "./...")
}

// The TypeScript client type-checks against the generated types (tsc, strict).
func TestTypeScriptClientTypeChecks(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("no node here: the TypeScript client is not checked")
	}
	run(t, repo, "scripts/clients.sh", "node") // installs the Node tools once, links tools/node/node_modules
	run(t, repo, "tools/node/node_modules/.bin/tsc", "-p", "clients/ts")
}

// Redocly CLI's recommended rules find no error and no warning in the document (the
// exceptions, each with its reason, are in tools/node/redocly.yaml).
func TestOpenAPILint(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("no node here: the document is not linted with Redocly")
	}
	run(t, repo, "scripts/clients.sh", "lint")
}
