// Package chaos kills, cuts and restarts the parts of the control plane on purpose and checks
// that nothing is lost or made twice: the real worker binary SIGKILLed mid-run, two workers
// with one killed, a Temporal dev server (the suite's own) restarted mid-run, PostgreSQL,
// Redis and FerretDB cut off for 10 s through TCP proxies the suite controls, identical
// onboard requests racing, and offboarding under other tenants' load.
//
// The scenarios are ordinary Go tests (chaos_test files), so that a short version of them runs
// in `make test` (skipped under -short, like every test that needs the servers) and the full
// version with `make chaos` (CHAOS=1: more tenants, more kills, every store). A test package
// rather than a program: the same harness, assertions and clean-up as the e2e tests, and the
// scenarios compile, vet and lint with everything else. Each scenario logs what it did and the
// counts it checked (`go test -v`), and fails when a check fails.
package chaos
