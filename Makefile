# MisyBot Tenancy. `make dev` runs the control plane on real local servers, `make test` tests it.
SHELL := /bin/bash
.DEFAULT_GOAL := help

GO_TEST_FLAGS ?= -count=1 -timeout 15m

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

.PHONY: services
services: ## start PostgreSQL, Redis, Temporal dev server and FerretDB (idempotent)
	@scripts/services.sh up

.PHONY: redis-cluster
redis-cluster: ## start a local three-master Redis Cluster on 7001-7003 for the cluster tests (idempotent)
	@scripts/redis-cluster.sh up

.PHONY: cells
cells: ## start the local cells cell-2 and cell-3 beside the services (own PostgreSQL, Redis, FerretDB each; idempotent); URLs: scripts/cells.sh env cell-2
	@scripts/cells.sh up

# Not part of `make test` (building it takes minutes the first time); docs/deployment.md.
.PHONY: temporal-server
temporal-server: ## start a real Temporal server (v1.29.7 on the local PostgreSQL, SQL visibility) on 127.0.0.1:17233 beside the dev server (idempotent; scripts/temporal-server.sh down stops it)
	@scripts/temporal-server.sh up

.PHONY: dev
dev: services ## run everything: services, migrations, worker and API; prints the URLs
	@scripts/packages.sh dev
	@scripts/dev.sh start

.PHONY: down
down: ## stop exactly what `make dev` and `make test` started
	@scripts/dev.sh stop
	@scripts/temporal-server.sh down
	@scripts/redis-cluster.sh down
	@scripts/cells.sh down
	@scripts/services.sh down

.PHONY: status
status: ## show which services run and who started them
	@scripts/services.sh status

.PHONY: test
test: services redis-cluster cells temporal-server ## lint, install what the tests need (Chromium), start the services (the test Redis Cluster, the local cells, a real Temporal server) when absent, run unit and integration tests, then the e2e and chaos suites again on the real Temporal server
	@$(MAKE) --no-print-directory lint
	@scripts/packages.sh test
	@go run ./internal/testkit/testenv/prune # MongoDB databases earlier test runs left behind (FerretDB keeps each one open)
	go test $(GO_TEST_FLAGS) ./...
	@# The production shape: Temporal server v1.29.7 with PostgreSQL persistence and SQL visibility.
	TEST_TEMPORAL_ADDRESS=127.0.0.1:17233 go test $(GO_TEST_FLAGS) ./e2e ./chaos

# The end-to-end benchmark runs on a database, a Redis database and a platform audit database of
# its own, which it empties first; tenant databases in MongoDB are named after its own ids.
BENCH_ENV = APP_ENV=dev TASK_QUEUE=bench \
	DATABASE_URL='postgres://tenancy_app:tenancy_app@127.0.0.1:5432/tenancy_bench?sslmode=disable' \
	MIGRATE_DATABASE_URL='postgres://tenancy_owner:tenancy_owner@127.0.0.1:5432/tenancy_bench?sslmode=disable' \
	REDIS_URL='redis://127.0.0.1:6379/2' AUDIT_PLATFORM_DATABASE=platform_bench LOG_LEVEL=warn
# -scale: the larger size of the memory and list/GET figures. FerretDB keeps every tenant database
# open as its own SQLite file (about 4.4 descriptors each), and this container's hard limit of
# 20,000 open files stops it near 4,500 databases, so the default here is 3,500; against real
# MongoDB, run `make bench BENCH_FLAGS="-scale 10000"`.
BENCH_FLAGS ?= -scale 3500

# The chaos suite at full size (the issue's counts, every store). `make test` runs the same
# scenarios at a small size (about a minute, in parallel with the other packages).
.PHONY: chaos
chaos: services ## kill workers, restart a Temporal server, cut stores, race requests: chaos/ at full size
	CHAOS=1 go test -count=1 -timeout 30m -v ./chaos

# The scale seed onboards and fills tenants on the bench's stores (which `make bench` empties
# when it starts); re-running it skips the tenants already there.
SEED_FLAGS ?= -tenants 1000 -concurrency 16

.PHONY: seed
seed: services ## onboard and fill many tenants through the real workflows (SEED_FLAGS="-tenants 10000"); resumable
	$(BENCH_ENV) TASK_QUEUE=seed go run ./bench/seed $(SEED_FLAGS)

.PHONY: test-short
test-short: ## only the tests that need no server (seconds): unit, fuzz seeds, workflow and replay tests
	go test -short -count=1 ./...

.PHONY: bench
bench: services ## the package benchmarks, then the product end to end against its baselines; report in .bench/
	@mkdir -p .bench
	go test -p 1 -run '^$$' -bench . -skip BenchmarkAppend -benchmem ./... | tee .bench/go-bench.txt
	@# The audit append's p50 pair needs many samples to be steadier than the machine (see BenchmarkAppend).
	go test -run '^$$' -bench BenchmarkAppend -benchtime 1500x -benchmem ./internal/domain/audit | tee -a .bench/go-bench.txt
	$(BENCH_ENV) go run ./bench -gobench .bench/go-bench.txt $(BENCH_FLAGS)

# The compose files are also checked by e2e/compose_test.go, which needs no Docker.
COMPOSE_CHECK_ENV = TENANT_MASTER_KEY=x OPERATOR_TOKEN=x EXPORT_RECIPIENT=x POSTGRES_PASSWORD=x

.PHONY: lint
lint: ## gofmt, go vet, golangci-lint (.golangci.yml), shellcheck on the scripts, go.mod tidy, and `docker-compose config` of the compose files (installs shellcheck and docker-compose when missing)
	@scripts/packages.sh lint
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	go vet ./...
	"$$(scripts/tools.sh golangci-lint)" run ./...
	@command -v shellcheck >/dev/null || { echo "lint: shellcheck is missing (apt-get install shellcheck)" >&2; exit 1; }
	shellcheck scripts/*.sh .ci/run
	go mod tidy -diff
	@if command -v docker-compose >/dev/null 2>&1; then \
		for f in docker-compose.yml deploy/docker-compose.prod.yml; do \
			$(COMPOSE_CHECK_ENV) docker-compose -f $$f config -q || exit 1; echo "lint: docker-compose config $$f: ok"; done; \
	elif docker compose version >/dev/null 2>&1; then \
		for f in docker-compose.yml deploy/docker-compose.prod.yml; do \
			$(COMPOSE_CHECK_ENV) docker compose -f $$f config -q || exit 1; echo "lint: docker compose config $$f: ok"; done; \
	else \
		echo "lint: no docker-compose or docker compose here; the compose files are checked by e2e/compose_test.go only"; \
	fi

# The clients are committed; clients/clients_test.go (in `make test`) fails when they are stale.
.PHONY: clients
clients: ## regenerate the API clients in clients/ from api/openapi.yaml (oapi-codegen, ogen, openapi-typescript) and lint it (Redocly)
	@scripts/clients.sh generate
	@scripts/clients.sh lint

.PHONY: migrate
migrate: ## apply database migrations (as the owner role)
	APP_ENV=$${APP_ENV:-dev} go run ./starter migrate
