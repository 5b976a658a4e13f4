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

.PHONY: dev
dev: services ## run everything: services, migrations, worker and API; prints the URLs
	@scripts/dev.sh start

.PHONY: down
down: ## stop exactly what `make dev` started
	@scripts/dev.sh stop
	@scripts/services.sh down

.PHONY: status
status: ## show which services run and who started them
	@scripts/services.sh status

.PHONY: test
test: services ## start the services when absent, then run unit and integration tests
	go test $(GO_TEST_FLAGS) ./...

.PHONY: bench
bench: services ## run the benchmarks against the real servers
	go test -run '^$$' -bench . -benchmem ./...

.PHONY: lint
lint: ## gofmt and go vet
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	go vet ./...

.PHONY: migrate
migrate: ## apply database migrations (as the owner role)
	APP_ENV=$${APP_ENV:-dev} go run ./starter migrate
