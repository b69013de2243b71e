# refplug: `make run` builds the example plugin and host and runs them;
# `make test` is what CI runs.
GO  ?= go
BIN := bin

.PHONY: all build run test clean

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/example-plugin ./cmd/host

run: build
	./$(BIN)/host run ./$(BIN)/example-plugin

test:
	$(GO) vet ./...
	$(GO) test -race ./...

clean:
	rm -rf $(BIN)
