# ecomstream — the two front-door commands are `docker compose up` and `make test`.
SHELL := /bin/bash
GO ?= go
BIN := bin
SERVICES := generator ingester collector
# Every module of the workspace, for test and vet.
MODULES = $(shell $(GO) list -m -f '{{.Dir}}')

.PHONY: all build test test-go vet fmt-check fuzz bench run-local clean help

all: build

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

build: ## build bin/generator, bin/ingester, bin/collector
	@mkdir -p $(BIN)
	@for s in $(SERVICES); do \
	  CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/$$s ./services/$$s || exit 1; done
	@echo "built: $(addprefix $(BIN)/,$(SERVICES))"

vet:
	@for m in $(MODULES); do (cd $$m && $(GO) vet ./...) || exit 1; done

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); [ -z "$$out" ] || { echo "gofmt needed: $$out"; exit 1; }

test: build fmt-check vet test-go ## every test, against a real PostgreSQL (and Prometheus)

# Go tests of every module; tests start their own PostgreSQL from the machine's binaries
# unless ECOMSTREAM_TEST_DATABASE_URL names one. Fuzz targets run their seed corpus here.
test-go:
	@for m in $(MODULES); do (cd $$m && $(GO) test -count=1 -timeout 20m ./...) || exit 1; done

fuzz: ## run the CSV fuzz target for FUZZTIME (default 60s)
	cd services/common && $(GO) test ./csvcodec -run '^$$' -fuzz FuzzReader -fuzztime $${FUZZTIME:-60s}

bench: build ## ingest 1,000,000 rows: psql \copy baseline vs the ingester, with the ratio
	scripts/bench.sh

run-local: build ## PostgreSQL + the services as local processes; Ctrl-C stops all
	scripts/run-local.sh

clean:
	rm -rf $(BIN) tmp .local
