# cosigner: every target installs or builds what it needs. Tools and CometBFT
# node binaries are cached outside the work tree.
SHELL        := /bin/bash
GO           ?= go
TOOLS        ?= $(HOME)/.cache/cosigner-tools
TOOLS_BIN    := $(TOOLS)/bin
export COSIGNER_TEST_CACHE ?= $(HOME)/.cache/cosigner-test
STATICCHECK  := $(TOOLS_BIN)/staticcheck
STATICCHECK_VERSION := v0.8.2
VERSION      ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
UNIT_PKGS     = $(shell $(GO) list ./... | grep -v '/test')

.PHONY: all build test test-unit test-e2e lint fuzz bench proto check-proto demo clean tools promtool

all: build

build:
	$(GO) build -ldflags "-X main.Version=$(VERSION)" -o bin/cosigner ./cmd/cosigner

## test: lint, unit tests with the race detector, then end-to-end tests against real CometBFT nodes.
test: tools lint test-unit test-e2e

## tools: staticcheck (Go module proxy) and promtool (Debian's prometheus package, for the alert rules).
tools: $(STATICCHECK) promtool

promtool:
	@command -v promtool >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing promtool (Debian package prometheus)"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null) \
	      || echo "warning: could not install promtool; the alert-rule checks will be skipped"; \
	  else echo "warning: promtool not found and not root; the alert-rule checks will be skipped"; fi; }

test-unit:
	$(GO) test -race -count=1 $(UNIT_PKGS)

# The whole verbose log goes to a file of its own (named first and last), so
# that two runs on one machine keep theirs; the terminal gets the summary.
test-e2e:
	@log=$$(mktemp "$${TMPDIR:-/tmp}/cosigner-e2e.XXXXXX"); echo "test-e2e: the whole log is $$log"; \
	$(GO) test -count=1 -timeout 20m -v ./test/... 2>&1 | tee "$$log" | grep -E '^(=== RUN|--- |PASS|FAIL|ok|panic)|e2e:'; \
	rc=$${PIPESTATUS[0]}; echo "test-e2e: the whole log is $$log"; exit $$rc

$(STATICCHECK):
	GOBIN=$(TOOLS_BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

lint: $(STATICCHECK)
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

## fuzz: each fuzz target for a short while (FUZZTIME=30s by default).
FUZZTIME ?= 30s
fuzz:
	@for pkg in ./privval ./threshold ./cosigner/ceremony ./cosigner/signstate ./cosigner/keys ./cosigner/config ./cosigner/migrate ./raft ./test/yubihsmsim; do \
	  for f in $$($(GO) test -list 'Fuzz.*' $$pkg | grep ^Fuzz); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

## bench: benchmarks of the hot operations, then the latency harness.
bench:
	$(GO) test -run '^$$' -bench . -benchmem $(UNIT_PKGS)
	COSIGNER_LATENCY=1 $(GO) test -count=1 -run Latency -v ./test/...

proto:
	bash scripts/proto.sh

check-proto:
	bash scripts/proto.sh --check

## demo: build everything and run a local chain signed by cosigner (Ctrl-C stops).
demo: build
	bash scripts/demo.sh

clean:
	rm -rf bin .demo
