# ferry: make help lists the targets.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X github.com/ferrycd/ferry/pkg/cli.version=$(VERSION) -X github.com/ferrycd/ferry/pkg/cli.commit=$(COMMIT)

.PHONY: help build test test-short lint demo bench fuzz e2e clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-11s %s\n", $$1, $$2}'

build: ## build bin/ferry (static, version from git)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ferry ./cmd/ferry

test: ## run every test with the race detector (what .ci/run runs)
	$(GO) test -race -count=1 ./...

test-short: ## run the quick tests only
	$(GO) test -short -count=1 ./...

lint: ## gofmt and go vet
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

demo: ## run the offline demo
	$(GO) run ./cmd/ferry demo

bench: ## run the benchmarks with allocation counts
	$(GO) test -run '^$$' -bench . -benchmem ./...

fuzz: ## run each fuzz target for FUZZTIME (default 20s)
	$(GO) test ./pkg/image -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $${FUZZTIME:-20s}
	$(GO) test ./pkg/manifest -run '^$$' -fuzz '^FuzzRewrite$$' -fuzztime $${FUZZTIME:-20s}
	$(GO) test ./pkg/audit -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $${FUZZTIME:-20s}

e2e: ## run the end-to-end tests against git http-backend and a local registry
	$(GO) test -race -count=1 -run 'EndToEnd|CLI' ./pkg/ferry ./pkg/cli

clean: ## remove build output
	rm -rf bin
