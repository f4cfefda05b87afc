# labwall — two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CONFIG ?= config.yaml
# No NVIDIA driver on this machine: start in demo mode (simulated GPUs, clearly labelled).
DEMO   ?= $(if $(wildcard /proc/driver/nvidia/version),,--demo)
ARGS   ?=

.PHONY: run test lint check-config bench clean install-service

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

run: $(VENV)/.installed
	$(BIN)/python main.py --config $(CONFIG) $(DEMO) $(ARGS)

check-config: $(VENV)/.installed
	$(BIN)/python main.py --config $(CONFIG) --check-config

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .

test: $(VENV)/.installed-test
	bash tests/ensure_chromium.sh
	bash tests/ensure_prometheus.sh
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

bench: $(VENV)/.installed-test
	$(BIN)/python bench/collect_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info test-artifacts

# As root: install or upgrade the systemd service (idempotent); uninstall keeps /etc/labwall/config.yaml.
install-service:
	PYTHON=$(PYTHON) bash systemd/install.sh install

.PHONY: uninstall-service
uninstall-service:
	bash systemd/install.sh uninstall
