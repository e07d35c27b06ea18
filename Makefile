# OPTIX developer commands. `make run` and `make test` work on a fresh clone with only Python.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROTO_FILES := $(shell find proto -name '*.proto' | sort)

.PHONY: help install lock lock-check run test test-fast gen gen-check lint fmt breaking bench envoy-config migrate clean

help: ## list the targets with what each does
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

# Dependencies are locked in uv.lock (and, for pip, its export requirements.lock). uv installs
# them in seconds: the one on PATH, else the pinned one fetched into .venv by pip. OPTIX_PIP=1 (or
# no uv wheel for this platform) installs the same pinned, hashed set with pip instead.
UV_VERSION := 0.13.8
UV := $(shell command -v uv 2>/dev/null || echo $(BIN)/uv)
export UV_PROJECT_ENVIRONMENT := $(VENV)

$(STAMP): pyproject.toml uv.lock requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@if [ -z "$(OPTIX_PIP)" ] && { [ -x "$(UV)" ] || $(BIN)/python -m pip install --quiet uv==$(UV_VERSION); }; then \
		echo "installing from uv.lock with uv"; \
		$(UV) sync --quiet --frozen --extra dev --python $(BIN)/python; \
	else \
		echo "installing from requirements.lock with pip"; \
		$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements.lock && \
		$(BIN)/python -m pip install --quiet --no-deps -e .; \
	fi
	touch $(STAMP)

install: $(STAMP) ## create .venv and install the locked dependencies with the dev tools

lock: $(STAMP) ## re-resolve uv.lock after a pyproject.toml change and export requirements.lock
	$(UV) lock
	$(UV) export --quiet --frozen --extra dev --no-emit-project > requirements.lock

lock-check: $(STAMP) ## fail when uv.lock or requirements.lock is out of date with pyproject.toml
	@$(UV) lock --check --quiet || { echo "uv.lock is stale: run 'make lock' and commit it"; exit 1; }
	@exported=$$(mktemp); trap 'rm -f "$$exported"' EXIT; \
		$(UV) export --quiet --frozen --extra dev --no-emit-project > "$$exported"; \
		cmp -s "$$exported" requirements.lock \
		|| { echo "requirements.lock is stale: run 'make lock' and commit it"; exit 1; }

run: $(STAMP) web ## migrate the embedded DB; start all services, Envoy (:8080) and the demo page
	$(BIN)/optix migrate
	$(BIN)/python -m optix_server.devrun

migrate: $(STAMP) ## apply database migrations
	$(BIN)/optix migrate

test: $(STAMP) web ## run the whole test suite (a summary of skip reasons at the end)
	$(BIN)/pytest -q

test-fast: $(STAMP) ## the suite without the e2e tests (no Envoy, browsers or web build)
	$(BIN)/pytest -q -m "not e2e"

gen: $(STAMP) ## regenerate gen/ and docs/api from proto/
	rm -rf gen/python/optix
	mkdir -p gen/python
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m grpc_tools.protoc -Iproto \
		--python_out=gen/python --grpc_python_out=gen/python \
		--mypy_out=gen/python --mypy_grpc_out=gen/python \
		$(PROTO_FILES)
	$(MAKE) --no-print-directory web-gen
	$(BIN)/python -m optix_server.tools.api_reference --proto proto --out docs/api

gen-check: gen ## fail when gen/ or docs/api is out of date with proto/
	@if [ -n "$$(git status --porcelain -- gen clients/web/src/gen clients/web/descriptors docs/api)" ]; then \
		git status --short -- gen clients/web/src/gen clients/web/descriptors docs/api | head -20; \
		echo "gen/ or docs/api is stale: run 'make gen' and commit the result"; exit 1; \
	fi

lint: $(STAMP) ## buf lint + buf format + ruff + mypy
	$(BIN)/buf lint
	$(BIN)/buf format -d --exit-code
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: $(STAMP) ## format protos and Python
	$(BIN)/buf format -w
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

breaking: $(STAMP) ## buf breaking against main
	@if git rev-parse --verify -q main >/dev/null && git ls-tree -r --name-only main | grep -q '^proto/'; then \
		$(BIN)/buf breaking --against '.git#branch=main'; \
	else echo "no v1 protos on main yet: nothing to compare"; fi

bench: $(STAMP) web ## benchmarks, printed as ratios against baselines from the same run (BENCH=bench_x to pick)
	$(BIN)/python -m tests.bench $(BENCH)

clean: ## remove .venv and var/ (the embedded database and keys)
	rm -rf $(VENV) var

# --- edge and web client (issue #5) ---------------------------------------------------------
WEB := clients/web
WEB_STAMP := $(WEB)/node_modules/.installed

.PHONY: web web-gen

envoy-config: $(STAMP) ## regenerate envoy/envoy.yaml from envoy/optix_edge (OPTIX_ENVOY_* ignored)
	env $$(env | grep -o '^OPTIX_ENVOY_[A-Z_]*' | sed 's/^/-u /') PYTHONPATH=envoy \
		$(BIN)/python -m optix_edge --out envoy/envoy.yaml
	@out=$$($(BIN)/envoy --mode validate -c envoy/envoy.yaml --disable-hot-restart 2>&1) \
		|| { echo "$$out"; exit 1; }; echo "envoy/envoy.yaml: valid"

.PHONY: deploy-config

deploy-config: $(STAMP) ## regenerate the Kubernetes manifests in deploy/ (tests/deploy fails when stale)
	$(BIN)/python -m optix_server.tools.k8s --out deploy

$(WEB_STAMP): $(WEB)/package.json $(WEB)/package-lock.json
	cd $(WEB) && npm ci --no-audit --no-fund
	touch $@

web: $(WEB_STAMP) ## install the web client's npm packages, type-check and build the demo page
	cd $(WEB) && npx --no-install tsc -p . && node build.mjs

web-gen: $(STAMP) $(WEB_STAMP) ## regenerate clients/web/src/gen from proto/ and google.rpc + grpc.health descriptors
	$(BIN)/python $(WEB)/descriptors/image.py $(WEB)/descriptors/third_party.json
	$(BIN)/buf generate --template buf.gen.web.yaml
