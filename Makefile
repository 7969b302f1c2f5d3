# BrightRun: `make run` starts the product on its embedded default (SQLite,
# local storage, local accounts, local trainer); `make test` runs every test
# (Go on SQLite and PostgreSQL, browser tests, trainer tests).
SHELL := /bin/bash
GO ?= go
BIN := bin/brightrun
WEB_STAMP := web/node_modules/.package-lock.json
GOTESTSUM := gotest.tools/gotestsum@v1.13.0

.PHONY: setup setup-go setup-web setup-trainer assets build run test test-go test-trainer bench clean

setup: setup-go setup-web setup-trainer

setup-go:
	$(GO) mod download

$(WEB_STAMP): web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund
	@touch $@

setup-web: $(WEB_STAMP)

setup-trainer:
	@if [ -f scripts/trainer-setup.sh ]; then scripts/trainer-setup.sh; fi

assets: setup-web
	cd web && npm run build

build: setup-go assets
	$(GO) build -trimpath -o $(BIN) ./cmd/brightrun

run: setup build
	$(BIN) serve

test: setup assets
	scripts/test.sh

test-go: setup-go assets
	BRIGHTRUN_SKIP_TRAINER=1 scripts/test.sh

test-trainer: setup-trainer
	scripts/trainer-test.sh

bench: setup-go
	@for s in bench/*/run.sh; do echo "== $$s"; bash $$s; done

clean:
	rm -rf bin internal/ui/static/dist test-artifacts
