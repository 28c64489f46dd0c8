# MPS build, run and test targets.
#
#   make run     install missing system packages, build bin/mps, run it
#   make test    install test dependencies, go vet, go test (what CI runs)
#
# Other targets: build, race, bench, fuzz, fmt, lint, deps, deps-test, clean.

SHELL       := /bin/bash
GO          ?= go
BIN         := bin/mps
CONFIG      ?= configs/mps.yaml
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -X main.version=$(VERSION)
TEST_TIMEOUT ?= 20m
FUZZTIME    ?= 10s
BENCHFLAGS  ?=
BROWSER_DIR := test/browser
UI_DIR      := web/ui
UI_VENDOR   := $(UI_DIR)/static/vendor/hls.min.js $(UI_DIR)/static/vendor/dash.all.min.js

# sudo only when not root (and only when something must be installed).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Debian packages as package:command (or package:/path/of/a/file); a
# package is installed only when its command (or file) is missing.
# pocketsphinx-en-us is the speech model of captions (ffmpeg's asr filter).
SPEECH_MODEL  := pocketsphinx-en-us:/usr/share/pocketsphinx/model/en-us/en-us.lm.bin
RUN_PACKAGES  := ffmpeg:ffmpeg $(SPEECH_MODEL)
TEST_PACKAGES := ffmpeg:ffmpeg chromium:chromium $(SPEECH_MODEL) postgresql:pg_ctlcluster
# The S3 server the storage tests run against.
VERSITYGW     := github.com/versity/versitygw/cmd/versitygw@v1.8.0

GO_FILES = $(shell find . -name '*.go' -not -path '*/node_modules/*' -not -path './bin/*')

.PHONY: all build run test race bench fuzz fmt lint deps deps-test clean ui

all: build

# apt_install installs the packages of $(1) whose command is missing.
define apt_install
	@missing=""; \
	for pc in $(1); do \
		what="$${pc#*:}"; \
		case "$$what" in \
		/*) [ -e "$$what" ] || missing="$$missing $${pc%%:*}" ;; \
		*) command -v "$$what" >/dev/null 2>&1 || missing="$$missing $${pc%%:*}" ;; \
		esac; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		$(SUDO) apt-get update; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; \
	fi
endef

## deps: system packages needed to run mps.
deps:
	$(call apt_install,$(RUN_PACKAGES))

## deps-test: system packages and npm modules needed by the tests.
deps-test:
	$(call apt_install,$(TEST_PACKAGES))
	@command -v versitygw >/dev/null 2>&1 || [ -x "$$($(GO) env GOPATH)/bin/versitygw" ] || \
		{ echo "installing versitygw"; $(GO) install $(VERSITYGW); }
	@if [ -f $(BROWSER_DIR)/package.json ]; then \
		cd $(BROWSER_DIR) && \
		if [ ! -f package-lock.json ]; then npm install --no-audit --no-fund; \
		elif [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then \
			npm ci --no-audit --no-fund; \
		fi; \
	fi

## ui: the web console's player libraries (hls.js, dash.js from npm),
## copied into web/ui/static/vendor/ to be embedded in the binary.
ui: $(UI_VENDOR)

$(UI_VENDOR): $(UI_DIR)/package.json $(UI_DIR)/package-lock.json
	@command -v npm >/dev/null 2>&1 || $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y npm
	cd $(UI_DIR) && npm ci --no-audit --no-fund
	cp $(UI_DIR)/node_modules/hls.js/dist/hls.min.js $(UI_DIR)/static/vendor/hls.min.js
	cp $(UI_DIR)/node_modules/dashjs/dist/modern/umd/dash.all.min.js $(UI_DIR)/static/vendor/dash.all.min.js

## build: compile bin/mps.
build: ui
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/mps

## run: build and run the server with configs/mps.yaml.
run: deps build
	./$(BIN) serve --config $(CONFIG)

## test: vet, then every test (end-to-end tests included).
test: deps-test ui
	$(GO) vet ./...
	$(GO) test -timeout $(TEST_TIMEOUT) ./...

## race: every test under the race detector (slower).
race: deps-test
	$(GO) test -race -timeout 40m ./...

## bench: the benchmarks in test/bench (extra flags in BENCHFLAGS).
bench: deps-test
	@if [ -d test/bench ]; then \
		$(GO) test -run '^$$' -bench . $(BENCHFLAGS) -tags bench -timeout 60m ./test/bench/...; \
	else \
		echo "no benchmarks yet: test/bench does not exist"; \
	fi

## fuzz: each fuzz target for FUZZTIME (default 10s).
fuzz:
	@set -e; \
	for pkg in $$($(GO) list ./...); do \
		for fn in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "fuzz $$pkg $$fn ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

## fmt: format every Go file.
fmt:
	gofmt -w $(GO_FILES)

## lint: gofmt check and go vet.
lint:
	@unformatted="$$(gofmt -l $(GO_FILES))"; \
	if [ -n "$$unformatted" ]; then echo "gofmt needed on:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf bin
