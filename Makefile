# sandbox: build, test, bench, static build and demo.
#
# Quick start:  make deps demo   then   make test
# `make help` lists the targets.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build
MAKEFLAGS += --no-print-directory

# Go lives in /usr/local/go on the project machines; find it even when the
# calling shell's PATH lacks it.
export PATH := $(PATH):/usr/local/go/bin

GO      ?= go
GOFMT   ?= gofmt
BIN     := bin
SANDBOX := $(BIN)/sandbox
SANDBOX_STATIC := $(BIN)/sandbox-static

# Extra flags for `sandbox run` in the demo, e.g. SANDBOX_FLAGS='--log-level debug'.
SANDBOX_FLAGS ?=
# Extra flags for the bench runner, e.g. BENCH_FLAGS='-rounds 1 -load-iters 0'
# (go run ./bench/run -help lists them; bench/README.md explains the tables).
BENCH_FLAGS ?=

# Debian packages the project needs (build, tests, bench, demo).
DEB_PACKAGES := libseccomp-dev pkg-config gcc iproute2 iptables nftables tmux strace curl python3 make git bind9-dnsutils musl-tools python3-dnspython
ifeq ($(shell dpkg --print-architecture 2>/dev/null),amd64)
DEB_PACKAGES += gcc-multilib
endif

GO_FILES = $(shell find . -name '*.go' -not -path './.git/*' -not -path './vendor/*' -not -path '*/testdata/*')

.PHONY: all help build test fuzz-smoke fmt fmt-check vet bench static check-static demo deps clean

all: build

help:
	@echo 'targets:'
	@echo '  build         $(SANDBOX): static against libseccomp.a as in the Dockerfile (dynamic without it)'
	@echo '  test          gofmt check, go vet ./..., go test -count=1 -timeout 20m ./...'
	@echo '  bench         the full benchmark (~4-6 min): every row natively, under the floor (bench/floor),'
	@echo '                under the sandbox (allow-all, rule, self) and strace, interleaved, both CPU placements;'
	@echo '                overhead vs the floor, startup, 64x10,000-connect load; bench/results.json (BENCH_FLAGS=...)'
	@echo '  static        fully static $(SANDBOX_STATIC) against libseccomp.a (as in the Dockerfile)'
	@echo '  check-static  static, then verify ldd says "not a dynamic executable"'
	@echo '  demo          curl a loopback HTTP server under the sandbox'
	@echo '  deps          apt-get install the missing Debian packages (as root)'
	@echo '  fmt vet clean'

# The binary is the one the Docker image ships: fully static against
# libseccomp.a (libseccomp-dev has it), which starts about 1 ms faster than
# a dynamic one (no dynamic loader, no libseccomp.so to map and relocate:
# docs/design.md, "Startup"). Without libseccomp.a it is linked dynamically.
STATIC_FLAGS := -trimpath -ldflags '-s -w -linkmode external -extldflags "-static"' -tags netgo,osusergo

build:
	@mkdir -p $(BIN)
	@lib="$$($(CC) -print-file-name=libseccomp.a)"; \
	if [ "$$lib" != libseccomp.a ] && [ -e "$$lib" ]; then \
		echo "CGO_ENABLED=1 $(GO) build $(STATIC_FLAGS) -o $(SANDBOX) ./cmd/sandbox"; \
		CGO_ENABLED=1 $(GO) build $(STATIC_FLAGS) -o $(SANDBOX) ./cmd/sandbox; \
	else \
		echo "build: libseccomp.a not found (make deps installs libseccomp-dev): linking dynamically"; \
		$(GO) build -o $(SANDBOX) ./cmd/sandbox; \
	fi

# The single test command: formatting, vet, then every package's tests.
test:
	@$(MAKE) fmt-check
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...
	@$(MAKE) fuzz-smoke

# Each fuzz target runs briefly beyond its seed corpus (which plain `go test`
# already replays): the sockaddr decoder, the control-message walker, the
# rtnetlink payload translation, the DEST parser (and that whatever parses
# can match), the policy parser, the verdict lookup against a linear scan,
# rules by host name, learn's merge into an existing policy, and the DNS
# forwarder's handling of answers.
# The budget is a count of executions, not a duration: Go 1.26's fuzz
# coordinator can report a duration's expiry as a failure ("context deadline
# exceeded", no crasher: golang/go#75804, fixed in Go 1.27), and a loaded CI
# machine meets that race. FUZZTIME=10m for a real session (a duration works,
# with that risk), or FUZZTIME=1000000x.
FUZZTIME ?= 30000x
FUZZ_TARGETS := sentry:FuzzDecodeRequest sentry:FuzzWalkCmsgs sentry:FuzzNetlinkPayload netstack:FuzzParseDest netstack:FuzzParseDestMatchable netstack:FuzzParsePolicy netstack:FuzzDecide netstack:FuzzNameRule netstack/learn:FuzzMerge sentry/dnsfwd:FuzzAnswer
fuzz-smoke:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t#*:}; \
		echo "fuzz: $$name ($$pkg, $(FUZZTIME))"; \
		out=$$($(GO) test ./$$pkg -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) 2>&1) || { echo "$$out"; exit 1; }; \
	done; echo "fuzz: ok"

fmt:
	$(GOFMT) -w $(GO_FILES)

fmt-check:
	@out="$$($(GOFMT) -l $(GO_FILES) </dev/null)"; \
	if [ -n "$$out" ]; then \
		echo "gofmt: these files are not formatted (run 'make fmt'):" >&2; \
		echo "$$out" >&2; exit 1; \
	fi; \
	echo "gofmt: ok"

vet:
	$(GO) vet ./...

# The bench measures the binary `make build` makes (BENCH_FLAGS='-sandbox
# PATH' measures another).
bench: build
	$(GO) run ./bench/run -sandbox $(SANDBOX) $(BENCH_FLAGS)

# The exact static build the Docker image uses. libseccomp-golang links
# -lseccomp (via pkg-config); with -extldflags -static the linker takes
# libseccomp.a from libseccomp-dev. netgo,osusergo keep glibc's NSS
# (dlopen-based, unusable in a static binary) out of the link.
static:
	@lib="$$($(CC) -print-file-name=libseccomp.a)"; \
	if [ "$$lib" = libseccomp.a ] || [ ! -e "$$lib" ]; then \
		echo "static: libseccomp.a not found; install libseccomp-dev (make deps)" >&2; exit 1; \
	fi
	@mkdir -p $(BIN)
	CGO_ENABLED=1 $(GO) build $(STATIC_FLAGS) -o $(SANDBOX_STATIC) ./cmd/sandbox

check-static: static
	@out="$$(ldd $(SANDBOX_STATIC) 2>&1 || true)"; \
	echo "ldd $(SANDBOX_STATIC): $$out"; \
	if ! grep -q 'not a dynamic executable' <<<"$$out"; then \
		echo "check-static: $(SANDBOX_STATIC) is dynamically linked" >&2; exit 1; \
	fi; \
	echo "check-static: ok"

demo: build
	SANDBOX_FLAGS='$(SANDBOX_FLAGS)' bash bench/demo.sh $(SANDBOX)

deps:
	@missing=""; \
	for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then \
		echo "deps: all Debian packages present"; \
	elif [ "$$(id -u)" != 0 ]; then \
		echo "deps: missing:$$missing" >&2; \
		echo "deps: as root run: apt-get update && apt-get install -y$$missing" >&2; \
		exit 1; \
	else \
		echo "deps: installing:$$missing"; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; \
	fi; \
	if ! command -v $(GO) >/dev/null; then \
		echo "deps: Go not found (expected in /usr/local/go/bin); install Go matching go.mod" >&2; exit 1; \
	fi; \
	echo "deps: $$($(GO) version)"

clean:
	rm -rf $(BIN)
