# Two commands from a fresh clone: `make run` and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
# Extra arguments for a benchmark, e.g. make bench BENCH_ARGS=--peers
BENCH_ARGS ?=

.PHONY: install run test lint proto metadata browser console-vendor console-screenshots bench bench-proxy bench-proxy-load bench-overload bench-security bench-loops bench-api bench-console bench-processors soak clean

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
	$(BIN)/ruff check collector processors exporters proxy connectors tests benchmarks
	$(BIN)/mypy

# The read API's .proto files (Jaeger remote storage, Tempo) into the *_pb2 modules committed beside them.
proto: install
	$(BIN)/python -m collector.extensions.api.protogen

# Each package's metadata.yaml into the generated_metrics.py beside it and the self-metrics table of docs/components.md.
metadata: install
	$(BIN)/python -m collector.mdatagen

# The console's browser tests drive Debian's Chromium (Playwright is pointed at it: no browser download).
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
$(CHROMIUM):
	$(SUDO) apt-get update
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends chromium fonts-dejavu-core

browser: $(CHROMIUM)

# The web console's vendored library (uPlot), rebuilt from the npm registry: docs/console.md lists it.
CONSOLE_VENDOR := collector/extensions/api/console/static/vendor
UPLOT_VERSION := 1.6.32
console-vendor:
	rm -rf $(VENV)/console-vendor && mkdir -p $(VENV)/console-vendor
	cd $(VENV)/console-vendor && npm pack --silent uplot@$(UPLOT_VERSION) && tar xzf uplot-$(UPLOT_VERSION).tgz
	# The minified build, made an ES module by naming its one global as the export.
	{ cat $(VENV)/console-vendor/package/dist/uPlot.iife.min.js; printf '\nexport default uPlot;\n'; } > $(CONSOLE_VENDOR)/uplot.js
	cp $(VENV)/console-vendor/package/dist/uPlot.min.css $(CONSOLE_VENDOR)/uplot.css
	cp $(VENV)/console-vendor/package/LICENSE $(CONSOLE_VENDOR)/LICENSE-uplot

# Screenshots of every console page (docs/console/*.png) from a collector fed with the tests' data.
console-screenshots: install browser
	$(BIN)/python -m tests.collector.extensions.api.console.screenshots docs/console

test: install lint browser
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

bench-console: install browser
	$(BIN)/python benchmarks/console.py $(BENCH_ARGS)

soak: install
	$(BIN)/python benchmarks/soak.py

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
