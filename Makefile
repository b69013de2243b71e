# refplug: `make run` builds the example plugin and host and runs them;
# `make test` is what CI runs.
GO  ?= go
BIN := bin

FUZZTIME ?= 10s

.PHONY: all build run test fuzz stress bench clean

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/example-plugin ./cmd/host

run: build
	./$(BIN)/host run ./$(BIN)/example-plugin

test:
	$(GO) vet ./...
	$(GO) test -race ./...
	$(MAKE) fuzz FUZZTIME=$(FUZZTIME)

# The long stress run: 64 goroutines for 30s, in-process and against a
# real plugin process (make test runs a 2s version).
stress:
	REFPLUG_STRESS=30s $(GO) test -race -run 'Stress' -v -timeout 10m ./refbroker ./host

# refplug against hand-written go-plugin net/rpc glue, in one run
# (BENCHMARKS.md keeps the latest table).
bench:
	$(GO) run ./cmd/refbench

# Fuzz every decoder of peer input (a short run is part of `make test`;
# `make fuzz FUZZTIME=10m` for a long one).
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeValue$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 200x ./refbroker
	$(GO) test -run '^$$' -fuzz '^FuzzDispatch$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 200x ./refbroker

clean:
	rm -rf $(BIN)
