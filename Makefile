# ecomstream — the two front-door commands are `docker compose up` and `make test`.
SHELL := /bin/bash
GO ?= go
BIN := bin
SERVICES := generator ingester collector
# Every module of the workspace, for test and vet.
MODULES = $(shell $(GO) list -m -f '{{.Dir}}')

.PHONY: all build test test-go test-short generate docs vet lint fmt-check fuzz bench tracked-check run-local clean help up down logs ps e2e smoke-images rules-check dashboards loadtest loadtest-local

all: build

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

# What `<binary> --version` and ecomstream_build_info say (services/common/buildinfo).
VERSION ?= $(shell git describe --tags --always 2>/dev/null || echo dev)
COMMIT ?= $(shell r=$$(git rev-parse HEAD 2>/dev/null) && { git diff --quiet HEAD && echo $$r || echo $$r-dirty; })
LDFLAGS := -X github.com/ecomstream/ecomstream/services/common/buildinfo.Version=$(VERSION) -X github.com/ecomstream/ecomstream/services/common/buildinfo.Commit=$(COMMIT)

build: ## build bin/generator, bin/ingester, bin/collector
	@mkdir -p $(BIN)
	@for s in $(SERVICES); do \
	  CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/$$s ./services/$$s || exit 1; done
	@echo "built: $(addprefix $(BIN)/,$(SERVICES))"

vet:
	@failed=(); for m in $(MODULES); do (cd $$m && $(GO) vet ./...) || failed+=("$${m#$(CURDIR)/}"); done; \
	  if [ $${#failed[@]} -gt 0 ]; then echo "vet failed in: $${failed[*]}"; exit 1; fi

lint: ## staticcheck over every module (built once into ~/.cache/ecomstream-tools)
	scripts/staticcheck.sh

tracked-check: ## no build output or file over 2 MiB committed
	scripts/tracked-check.sh

fmt-check:
	@out=$$(find . -name '*.go' -not -path './tmp/*' -not -path './.local/*' -print0 | xargs -0 gofmt -l); \
	  [ -z "$$out" ] || { echo "gofmt needed: $$out"; exit 1; }

test: build ## every test, against a real PostgreSQL (and Prometheus); every check runs, failures are listed at the end
	@failed=(); for t in fmt-check tracked-check vet lint test-go; do $(MAKE) --no-print-directory $$t || failed+=($$t); done; \
	  if [ $${#failed[@]} -gt 0 ]; then echo "make test: FAILED: $${failed[*]}"; exit 1; fi

# Go tests of every module; tests start their own PostgreSQL from the machine's binaries
# unless ECOMSTREAM_TEST_DATABASE_URL names one. Fuzz targets run their seed corpus here.
# Every module runs even when an earlier one fails, so one failure hides nothing; the
# failing modules are listed at the end and the target fails.
TEST_FLAGS ?= -race -count=1 -timeout 20m
test-go:
	@failed=(); for m in $(MODULES); do \
	  (cd $$m && $(GO) test $(TEST_FLAGS) ./...) || failed+=("$${m#$(CURDIR)/}"); done; \
	  if [ $${#failed[@]} -gt 0 ]; then echo "FAILED modules: $${failed[*]}"; exit 1; fi

# The fast tier: no process-level or load tests, and on a machine without PostgreSQL's
# server binaries the tests that need them skip with a message (ECOMSTREAM_PG_BINDIR=/none
# shows it on a machine that has them; ECOMSTREAM_REQUIRE_POSTGRES=1 makes a skip fail).
test-short: ## every module's go test -short: the fast tier, no PostgreSQL needed
	@$(MAKE) --no-print-directory test-go TEST_FLAGS="-short -count=1 -timeout 10m"

fuzz: ## run the CSV fuzz target for FUZZTIME (default 60s)
	cd services/common && $(GO) test ./csvcodec -run '^$$' -fuzz FuzzReader -fuzztime $${FUZZTIME:-60s}

bench: build ## 1,000,000 rows at default durability: per-file, one-stream and 2-stream psql \copy vs the ingester; ratios, CPU per row, RSS (BENCH_REPEAT= BENCH_BREAKDOWN=1 BENCH_SYNC_OFF=1)
	scripts/bench.sh

loadtest: build ## rerun the seed report's scenarios on the compose stack, local processes when no Docker daemon (SCENARIO= DURATION= GENERATORS= INGESTERS= TRIGGER=)
	scripts/loadtest.sh auto

loadtest-local: build ## the load test as local processes against a throwaway PostgreSQL (same variables)
	scripts/loadtest.sh local

run-local: build ## PostgreSQL + the services as local processes; Ctrl-C stops all
	scripts/run-local.sh

up: ## start the whole stack with Docker (build, migrate, run) and print its URLs
	docker compose up -d --build
	@echo "Grafana     http://$$(docker compose port grafana 3000)   (anonymous viewer; log in as admin to edit)"
	@echo "Prometheus  http://$$(docker compose port prometheus 9090)"
	@echo "More load:  docker compose up -d --scale generator=4 --scale ingester=2"

down: ## stop the stack and delete its volumes (data, database, metrics)
	docker compose --profile loadtest down -v --remove-orphans

logs: ## follow the logs (SERVICE=ingester for one service)
	docker compose logs -f --tail=100 $(SERVICE)

ps: ## the stack's containers and their health
	docker compose ps -a

e2e: ## the real stack under Docker: up, wait for data in Prometheus and Grafana, always down -v (skips without a daemon)
	scripts/e2e-compose.sh

smoke-images: ## our binaries as FROM-scratch containers on a registry-less Docker daemon: static, nonroot volume, migrate, healthchecks, rows land (skips without a daemon)
	scripts/smoke-images.sh

rules-check: ## promtool check/test of deploy/prometheus
	promtool check config deploy/prometheus/prometheus.yml deploy/prometheus/prometheus.local.yml
	promtool check rules deploy/prometheus/rules/*.rules.yml
	promtool test rules deploy/prometheus/tests/*.test.yml

generate: ## rewrite the generated files from the code: docs/metrics.md's metric tables (the metrics each service registers) and the ingester's row encoder (table.Events); their tests fail until you do
	@for m in services/common services/generator services/ingester services/collector; do \
	  (cd $$m && ECOMSTREAM_REGENERATE=1 $(GO) test -count=1 -run '^(TestMetricsDocIsCurrent|TestRowEncoderIsGeneratedFromTheDescriptor)$$' ./...) >/dev/null || exit 1; done
	@echo "generated files are current"

docs: generate ## the same as make generate

dashboards: ## regenerate grafana/dashboards/*.json from tests/stack/dashboards and the SLA targets in deploy/prometheus/rules/sla-thresholds.rules.yml; copy them and the rules into the Helm chart
	cd tests/stack && $(GO) test -run TestDashboardsAreCurrent -update .
	cd tests/helm && $(GO) test -run TestChartCopiesAreCurrent -update .

clean:
	rm -rf $(BIN) tmp .local
