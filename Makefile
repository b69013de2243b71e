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

# Fuzz every decoder of peer input (a short run is part of `make test`;
# `make fuzz FUZZTIME=10m` for a long one).
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeValue$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 200x ./refbroker
	$(GO) test -run '^$$' -fuzz '^FuzzDispatch$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 200x ./refbroker

clean:
	rm -rf $(BIN)
