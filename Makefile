# ecomstream — the two front-door commands are `docker compose up` and `make test`.
SHELL := /bin/bash
GO ?= go
BIN := bin
SERVICES := generator ingester collector
# Every module of the workspace, for test and vet.
MODULES = $(shell $(GO) list -m -f '{{.Dir}}')

.PHONY: all build test test-go vet lint fmt-check fuzz bench run-local clean help up down logs ps e2e smoke-images rules-check dashboards loadtest loadtest-local

all: build

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

build: ## build bin/generator, bin/ingester, bin/collector
	@mkdir -p $(BIN)
	@for s in $(SERVICES); do \
	  CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/$$s ./services/$$s || exit 1; done
	@echo "built: $(addprefix $(BIN)/,$(SERVICES))"

vet:
	@failed=(); for m in $(MODULES); do (cd $$m && $(GO) vet ./...) || failed+=("$${m#$(CURDIR)/}"); done; \
	  if [ $${#failed[@]} -gt 0 ]; then echo "vet failed in: $${failed[*]}"; exit 1; fi

lint: ## staticcheck over every module (built once into ~/.cache/ecomstream-tools)
	scripts/staticcheck.sh

fmt-check:
	@out=$$(find . -name '*.go' -not -path './tmp/*' -not -path './.local/*' -print0 | xargs -0 gofmt -l); \
	  [ -z "$$out" ] || { echo "gofmt needed: $$out"; exit 1; }

test: build ## every test, against a real PostgreSQL (and Prometheus); every check runs, failures are listed at the end
	@failed=(); for t in fmt-check vet lint test-go; do $(MAKE) --no-print-directory $$t || failed+=($$t); done; \
	  if [ $${#failed[@]} -gt 0 ]; then echo "make test: FAILED: $${failed[*]}"; exit 1; fi

# Go tests of every module; tests start their own PostgreSQL from the machine's binaries
# unless ECOMSTREAM_TEST_DATABASE_URL names one. Fuzz targets run their seed corpus here.
# Every module runs even when an earlier one fails, so one failure hides nothing; the
# failing modules are listed at the end and the target fails.
test-go:
	@failed=(); for m in $(MODULES); do \
	  (cd $$m && $(GO) test -race -count=1 -timeout 20m ./...) || failed+=("$${m#$(CURDIR)/}"); done; \
	  if [ $${#failed[@]} -gt 0 ]; then echo "FAILED modules: $${failed[*]}"; exit 1; fi

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

dashboards: ## regenerate grafana/dashboards/*.json from tests/stack/dashboards and the SLA targets in deploy/prometheus/rules/sla-thresholds.rules.yml; copy them and the rules into the Helm chart
	cd tests/stack && $(GO) test -run TestDashboardsAreCurrent -update .
	cd tests/helm && $(GO) test -run TestChartCopiesAreCurrent -update .

clean:
	rm -rf $(BIN) tmp .local
