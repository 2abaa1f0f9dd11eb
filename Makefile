# ferry: make help lists the targets.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X github.com/ferrycd/ferry/pkg/cli.version=$(VERSION) -X github.com/ferrycd/ferry/pkg/cli.commit=$(COMMIT)

.PHONY: help build test test-short lint demo bench bench-all fuzz e2e clean

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-11s %s\n", $$1, $$2}'

build: ## build bin/ferry (static, version from git)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ferry ./cmd/ferry

test: ## run every test with the race detector (what .ci/run runs)
	$(GO) test -race -count=1 ./...

test-short: ## run the quick tests only
	$(GO) test -short -count=1 ./...

STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

lint: ## gofmt, go vet and staticcheck (pinned; from the module proxy)
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

demo: ## run the offline demo
	$(GO) run ./cmd/ferry demo

bench: ## run the benchmarks with allocation counts, then time a deploy to 2,000 apps (git vs ferry)
	$(GO) test -run '^$$' -bench . -benchmem ./...
	@$(GO) run ./bench/envbench -apps 2000

bench-all: ## time a deploy to 2,000 and 8,000 apps (git vs ferry) at loopback and 25 ms, then 20 concurrent writers, then ferry status at 500 apps × 3 environments; prints Markdown tables
	@$(GO) run ./bench/envbench -apps 2000,8000 -runs $${RUNS:-3} -latency 0,25ms
	@$(GO) run ./bench/envbench -apps 2000 -runs $${RUNS:-3} -writers 20
	@$(GO) run ./bench/envbench -status -runs $${RUNS:-3} -latency 0,25ms

fuzz: ## run each fuzz target for FUZZTIME (default 20s)
	$(GO) test ./pkg/ref -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $${FUZZTIME:-20s}
	$(GO) test ./pkg/ref -run '^$$' -fuzz '^FuzzCanonical$$' -fuzztime $${FUZZTIME:-20s}
	$(GO) test ./pkg/manifest -run '^$$' -fuzz '^FuzzRewrite$$' -fuzztime $${FUZZTIME:-20s}
	$(GO) test ./pkg/manifest -run '^$$' -fuzz '^FuzzRewriteValues$$' -fuzztime $${FUZZTIME:-20s}
	$(GO) test ./pkg/audit -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $${FUZZTIME:-20s}

e2e: ## run the end-to-end tests (pkg/ferry, pkg/cli, internal/e2e) against git http-backend and a local registry
	$(GO) test -race -count=1 -run 'EndToEnd|CLI' ./pkg/ferry ./pkg/cli
	$(GO) test -race -count=1 ./internal/e2e

clean: ## remove build output
	rm -rf bin

.PHONY: image image-check pipelines

image: ## build the container image (needs a Docker engine)
	docker build --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) -t ferry:$(VERSION) .

image-check: ## build ferry the Dockerfile's way, check it is static, run it in an empty chroot (root)
	$(GO) test -count=1 -v -run '^(TestDockerfile|TestDockerignore|TestImage.*)$$' ./internal/pipelines

pipelines: ## run cloudbuild.yaml, pipelines/ (Cloud Build, GitHub Actions, GitLab CI) and action.yml against a local git host and registry; actionlint
	$(GO) test -count=1 -v -run '^(TestRollout.*|TestCloudBuild.*|TestGitLab.*|TestAction.*|TestShellcheckAction|TestEveryPipelineFileRuns|TestReadmeRecipes|TestNoExpressionInScripts)$$' ./internal/pipelines
