# OPTIX developer commands. `make run` and `make test` work on a fresh clone with only Python.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROTO_FILES := $(shell find proto -name '*.proto' | sort)

.PHONY: help install run test test-fast gen gen-check lint fmt breaking bench envoy-config migrate clean

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install the project with its dev tools

run: $(STAMP) ## migrate the embedded DB and start all services (+ Envoy on :8080)
	$(BIN)/optix migrate
	$(BIN)/python -m optix_server.devrun

migrate: $(STAMP) ## apply database migrations
	$(BIN)/optix migrate

test: $(STAMP) ## run the whole test suite
	$(BIN)/pytest -q

gen: $(STAMP) ## regenerate gen/ from proto/
	rm -rf gen/python/optix
	mkdir -p gen/python
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m grpc_tools.protoc -Iproto \
		--python_out=gen/python --grpc_python_out=gen/python \
		--mypy_out=gen/python --mypy_grpc_out=gen/python \
		$(PROTO_FILES)

gen-check: gen ## fail when gen/ is out of date with proto/
	@if [ -n "$$(git status --porcelain -- gen)" ]; then \
		git status --short -- gen | head -20; \
		echo "gen/ is stale: run 'make gen' and commit the result"; exit 1; \
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

bench: $(STAMP) ## benchmarks, printed as ratios against baselines from the same run (BENCH=bench_x to pick)
	$(BIN)/python -m tests.bench $(BENCH)

clean:
	rm -rf $(VENV) var
