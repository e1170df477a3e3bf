# Developer entry points. `make help` lists them.
#
#   make demo    build the three-PC demo fleet on this machine and run the main job on it
#   make test    system packages + venv, then the whole test suite (lint included)
#   make lint    ruff, mypy, yamllint and ansible-lint only
#   make bench   benchmark scripts (print figures, assert nothing)

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
# The main job run by `make demo`: the scheduled job, `cyclotron run` (sync.yml through
# ansible-runner, recorded in the store). The demo keeps its own state dir (run history,
# approvals, heartbeat): `CYCLOTRON_STATE_DIR=.demo/state cyclotron status` reads it.
DEMO_PLAYBOOK ?= sync
DEMO_MODE ?= full-auto
DEMO_INVENTORY ?= inventory/demo/hosts.yml
DEMO_STATE_DIR ?= .demo/state
MANIFEST_DIR ?= manifests
# `make test TESTS=tests/unit PYTEST_ARGS=-x` narrows a run.
TESTS ?= tests
PYTEST_ARGS ?=

# First Python >= 3.11 that actually runs (pyenv shims for missing versions do not).
PYTHON_CANDIDATES := /root/.pyenv/versions/3.11.7/bin/python3.11 python3.11 python3
# The other supported range: Python 3.12 resolves ansible-core 2.21 (3.11 resolves 2.19).
# `make test` also runs the unit tests and lint there when such a Python exists.
VENV312 ?= .venv312
PYTHON312_CANDIDATES := $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12 /root/.pyenv/versions/3.12*/bin/python3.12) python3.12

.PHONY: help demo demo-setup demo-clean test test-py312 lint bench deps venv venv312 clean

help:
	@echo "make demo        build the demo fleet (.demo/) and run cyclotron run ($(DEMO_PLAYBOOK).yml) on it"
	@echo "make demo-clean  remove the demo sandboxes and manifests"
	@echo "make test        install system packages and the venv, run the test suite"
	@echo "make test-py312  unit tests and lint under Python 3.12 / ansible-core 2.21 ($(VENV312))"
	@echo "make lint        ruff, mypy, yamllint, ansible-lint"
	@echo "make bench       run the benchmarks in benchmarks/"

# --- environment ------------------------------------------------------------------------

$(PY):
	@py=""; \
	for c in $(PYTHON_CANDIDATES); do \
	  if command -v "$$c" >/dev/null 2>&1 \
	     && "$$c" -c 'import sys, venv; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then \
	    py="$$c"; break; \
	  fi; \
	done; \
	if [ -z "$$py" ]; then \
	  echo "No Python 3.11+ with venv found (tried: $(PYTHON_CANDIDATES))." >&2; \
	  echo "Install one, e.g. apt-get install python3 python3-venv" >&2; exit 1; \
	fi; \
	echo "Creating $(VENV) with $$py"; \
	"$$py" -m venv $(VENV)

# Reinstalls when pyproject.toml changes; the stamp records the last good install.
$(VENV)/.installed: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $@

venv: $(VENV)/.installed

# The second venv: Python 3.12 and the newest ansible-core it resolves. Empty when no 3.12 runs.
PY312 := $(firstword $(foreach c,$(PYTHON312_CANDIDATES),$(shell command -v $(c) >/dev/null 2>&1 && $(c) -c 'import venv' >/dev/null 2>&1 && echo $(c))))

$(VENV312)/.installed: pyproject.toml
	"$(PY312)" -m venv $(VENV312)
	$(VENV312)/bin/python -m pip install --quiet -e '.[test]'
	@touch $@

venv312: $(if $(PY312),$(VENV312)/.installed)

# Debian packages the tests and the demo need: openssh-server for the SSH fleet, git for
# repositories, python3-venv for the fleet users' venvs, nodejs/npm for npm installs, sudo for
# the become test, chromium for the dashboard's browser tests.
# Installed only when missing, and only as root or with password-less sudo.
deps:
	@missing=""; \
	{ command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ]; } || missing="$$missing openssh-server"; \
	command -v git >/dev/null 2>&1 || missing="$$missing git"; \
	if [ -x /usr/bin/python3 ]; then \
	  /usr/bin/python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing="$$missing python3-venv"; \
	else missing="$$missing python3 python3-venv"; fi; \
	command -v node >/dev/null 2>&1 || missing="$$missing nodejs"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	command -v sudo >/dev/null 2>&1 || missing="$$missing sudo"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then sudo=""; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo"; \
	else \
	  echo "Missing system packages:$$missing"; \
	  echo "Install them with: sudo apt-get install$$missing"; \
	  echo "(Without them the SSH fleet and npm tests skip.)"; \
	  exit 0; \
	fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
	  echo "Missing system packages:$$missing (no apt-get here: install them with your package manager)"; \
	  exit 0; \
	fi; \
	echo "Installing system packages:$$missing"; \
	$$sudo apt-get update -qq; \
	DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing

# --- demo -------------------------------------------------------------------------------

demo-setup: deps venv
	$(BIN)/ansible-playbook -i $(DEMO_INVENTORY) playbooks/demo_setup.yml

demo: demo-setup
	CYCLOTRON_STATE_DIR=$(DEMO_STATE_DIR) $(BIN)/cyclotron run -i $(DEMO_INVENTORY) \
	  --playbook $(DEMO_PLAYBOOK) --mode $(DEMO_MODE)
	$(BIN)/cyclotron report $(MANIFEST_DIR)/
	@echo "Run history: CYCLOTRON_STATE_DIR=$(DEMO_STATE_DIR) $(BIN)/cyclotron status (or history)"

demo-clean:
	rm -rf .demo $(MANIFEST_DIR)

# --- checks -----------------------------------------------------------------------------

test: deps venv
	$(PY) -m pytest $(TESTS) $(PYTEST_ARGS)
	@if [ "$(TESTS)" = tests ]; then $(MAKE) --no-print-directory test-py312; fi

test-py312: venv312
	@if [ -z "$(PY312)" ]; then \
	  echo "test-py312: no Python 3.12 found (tried: $(PYTHON312_CANDIDATES)); skipped"; exit 0; fi; \
	$(VENV312)/bin/python -c 'import ansible, sys; print(f"Python {sys.version.split()[0]}, ansible-core {ansible.__version__}")'; \
	$(VENV312)/bin/python -m pytest tests/unit tests/test_lint.py -q $(PYTEST_ARGS)

lint: venv
	$(PY) -m pytest tests/test_lint.py -q $(PYTEST_ARGS)

bench: venv
	@for script in benchmarks/bench_*.py; do \
	  echo "== $$script"; \
	  $(PY) "$$script"; \
	done

clean:
	rm -rf .cache .pytest_cache .mypy_cache .ruff_cache
