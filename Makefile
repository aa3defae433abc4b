# Two commands from a fresh clone: `make run` and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
# Extra arguments for a benchmark, e.g. make bench BENCH_ARGS=--peers
BENCH_ARGS ?=

.PHONY: install run test lint proto metadata bench bench-proxy bench-proxy-load bench-overload bench-security bench-loops bench-api bench-processors soak clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/genai-collector run --config otel-config.yaml

lint: install
	$(BIN)/ruff check collector processors exporters proxy tests benchmarks
	$(BIN)/mypy

# The read API's .proto files (Jaeger remote storage, Tempo) into the *_pb2 modules committed beside them.
proto: install
	$(BIN)/python -m collector.extensions.api.protogen

# Each package's metadata.yaml into the generated_metrics.py beside it and the self-metrics table of docs/components.md.
metadata: install
	$(BIN)/python -m collector.mdatagen

test: install lint
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python benchmarks/ingest.py $(BENCH_ARGS)

bench-proxy: install
	$(BIN)/python benchmarks/proxy.py $(BENCH_ARGS)

bench-proxy-load: install
	$(BIN)/python benchmarks/proxy_under_load.py $(BENCH_ARGS)

bench-overload: install
	$(BIN)/python benchmarks/overload.py $(BENCH_ARGS)

bench-security: install
	$(BIN)/python benchmarks/security.py $(BENCH_ARGS)

bench-loops: install
	$(BIN)/python benchmarks/loop_detection.py $(BENCH_ARGS)

bench-api: install
	$(BIN)/python benchmarks/read_api.py $(BENCH_ARGS)

bench-processors: install
	$(BIN)/python benchmarks/processors.py $(BENCH_ARGS)

soak: install
	$(BIN)/python benchmarks/soak.py

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
