# stratumd — a Bitcoin mining pool. `make help` lists the targets.
#
# make run and make test need PostgreSQL: DATABASE_URL when set, otherwise a
# private cluster in .pg/ started by scripts/pg.sh from the installed server
# binaries (installing Debian's postgresql package when they are missing).

SHELL       := /bin/bash
GO          ?= go
BIN         := bin
GOFLAGS     ?=
FUZZTIME    ?= 10s
TEST_TIMEOUT ?= 25m
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
GOLANGCI    := github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0

# The daemon's embedded default for `make run` (DESIGN.md, "Command line"):
# miners on RUN_LISTEN, the web page, JSON API and /metrics on RUN_HTTP
# (both loopback only; the "stratumd ready" log line prints the URLs).
RUN_LISTEN ?= 127.0.0.1:3333
RUN_HTTP   ?= 127.0.0.1:9100
RUN_ARGS ?= --network regtest --node embedded --auth open --listen $(RUN_LISTEN) \
	--metrics-listen $(RUN_HTTP) \
	--datadir .data/regtest --share-dir .data/shares --min-diff 0.001 --regtest-premine 432

.PHONY: help build run test test-race lint fuzz bench pg pg-stop tools clean chaos

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

build: ## build stratumd, payout and the tools into bin/
	@mkdir -p $(BIN)
	$(GO) build $(GOFLAGS) -o $(BIN)/ ./cmd/...

pg: ## start the private PostgreSQL (or use DATABASE_URL) and print its URL
	@scripts/pg.sh start

tools: ## build the pinned btcd, btcctl and btcwallet into .tools/bin
	@scripts/tools.sh

pg-stop: ## stop the private PostgreSQL
	@scripts/pg.sh stop

run: build ## run stratumd on regtest with the in-process node, a private PostgreSQL, the web page and /metrics on 127.0.0.1:9100
	@set -e; eval "$$(scripts/pg.sh start)"; export DATABASE_URL; \
	$(BIN)/stratumd migrate up; \
	exec $(BIN)/stratumd $(RUN_ARGS)

test: ## gofmt, vet, then every test (unit and integration, real PostgreSQL, btcd, btcwallet, bcoin, libzmq) with the race detector
	@set -e; eval "$$(scripts/pg.sh start)"; export DATABASE_URL; \
	export STRATUMD_TOOLS_BIN=$$(scripts/tools.sh); \
	export STRATUMD_ZMQ_PYTHON=$$(scripts/zmq.sh); \
	export STRATUMD_BCOIN=$$(scripts/bcoin.sh); \
	unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.*')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi; \
	$(GO) vet ./...; \
	$(GO) test -race -timeout $(TEST_TIMEOUT) -count=1 ./...

test-race: test ## alias: make test always runs the race detector

chaos: ## fault and hostile-client suites against the real binaries (issue 9; docs/RELIABILITY.md)
	@set -e; eval "$$(scripts/pg.sh start)"; export DATABASE_URL; \
	export STRATUMD_TOOLS_BIN=$$(scripts/tools.sh); \
	$(GO) test -tags chaos -p 1 -count=1 -timeout 15m -v ./internal/e2e/chaos/ ./internal/e2e/hostile/

lint: ## gofmt, go vet, staticcheck and golangci-lint's errorlint, rowserrcheck, sqlclosecheck (pinned), the chaos suites' files included
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet -tags chaos ./...
	$(GO) run $(STATICCHECK) -tags chaos ./...
	$(GO) run $(GOLANGCI) run ./...

fuzz: ## run every fuzz target for FUZZTIME (default 10s) each
	@scripts/fuzz.sh $(FUZZTIME)

bench: ## run the benchmarks (numbers go to docs/BENCHMARKS.md)
	@set -e; eval "$$(scripts/pg.sh start)"; export DATABASE_URL; \
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean: ## remove build output (not the database in .pg/)
	rm -rf $(BIN)
