# refplug: `make run` builds the example plugin and host and runs them;
# `make test` is what CI runs.
GO  ?= go
BIN := bin

# A count, not a duration: a duration races the fuzz coordinator's own
# deadline in Go 1.26 and fails now and then with "context deadline
# exceeded" (go.dev/issue/75804, fixed in Go 1.27). 300000 runs take about
# 7 s per target here.
FUZZTIME ?= 300000x
# The race detector needs cgo, so a C compiler; without one, tests run
# without it (and say so).
RACE ?= $(shell command -v "$$($(GO) env CC)" >/dev/null 2>&1 && echo -race)

.PHONY: all build run test generate check-generate lint cross fuzz stress bench clean

all: build

# The plugin is built static (no cgo): it then starts without the
# dynamic loader, 0.5-0.7 ms sooner at every Load (README, Performance).
build:
	CGO_ENABLED=0 $(GO) build -o $(BIN)/ ./cmd/example-plugin
	$(GO) build -o $(BIN)/ ./cmd/host

run: build
	./$(BIN)/host run ./$(BIN)/example-plugin

test:
	$(GO) vet ./...
	@[ -n "$(RACE)" ] || echo "note: no C compiler ($$($(GO) env CC)) for the race detector: testing without -race"
	$(GO) test $(RACE) ./...
	$(MAKE) fuzz FUZZTIME=$(FUZZTIME)

# Regenerate the refbroker proxies (cmd/refgen) of every contract package.
generate:
	$(GO) generate ./... ./testdata/contract ./testdata/evolve/... ./testdata/bigapi/...

# CI: fail if a generated file is stale.
check-generate: generate
	git diff --exit-code -- '*refplug_proxies.go' testdata/bigapi/api/api.go || { echo "generated proxies are stale: run make generate"; exit 1; }

# staticcheck, default checks, over the whole module (CI runs it).
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
lint:
	$(GO) run $(STATICCHECK) ./...

# The module, tests included, builds and vets on the other systems go-plugin
# supports (CI runs it): the code that only Linux or unix runs is in files
# of their own, and the rest must not lean on it.
cross:
	GOOS=darwin $(GO) vet ./...
	GOOS=windows $(GO) vet ./...
	GOOS=freebsd $(GO) vet ./...

# The long stress run: 64 goroutines for 30s, in-process and against a
# real plugin process (make test runs a 2s version).
stress:
	REFPLUG_STRESS=30s $(GO) test $(RACE) -run 'Stress' -v -timeout 10m ./refbroker ./host

# refplug against hand-written go-plugin net/rpc glue, in one run
# (BENCHMARKS.md keeps the latest table).
bench:
	$(GO) run ./cmd/refbench

# Fuzz every decoder of peer input (a short run is part of `make test`;
# `make fuzz FUZZTIME=10m` for a long one).
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeValue$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 200x ./refbroker
	$(GO) test -run '^$$' -fuzz '^FuzzDispatch$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 200x ./refbroker
	$(GO) test -run '^$$' -fuzz '^FuzzGuard$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 200x ./internal/gp

clean:
	rm -rf $(BIN)
