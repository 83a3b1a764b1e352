# Setup, tests and the demo. `make demo` and `make test` are the two commands of the README.
#
# `make setup` installs into a project virtual environment (.venv), or into the one already
# active ($VIRTUAL_ENV), so it works where the system Python refuses global installs (PEP 668)
# and never pollutes it.
PYTHON_BASE ?= python3
VENV ?= $(if $(VIRTUAL_ENV),$(VIRTUAL_ENV),.venv)
PYTHON := $(VENV)/bin/python
PIP := $(PYTHON) -m pip
# torch/torchvision as served on the project's reference machines; override elsewhere
TORCH ?= torch==2.14.1 torchvision==0.29.1

.PHONY: setup packages data test test-faults test-fuzz demo benchmarks-quick

setup: packages data

$(PYTHON):
	$(PYTHON_BASE) -m venv $(VENV)

packages: $(PYTHON)
	$(PIP) install -q $(TORCH)
	$(PIP) install -q -e '.[test]'

data: packages
	@sh scripts/install-fashion-mnist.sh $(PYTHON)

test: setup
	$(PYTHON) -m pytest -q -n auto --maxprocesses 4 --dist worksteal

test-faults: setup
	$(PYTHON) -m pytest -q -m faults --all-kill-points

test-fuzz: setup
	$(PYTHON) -m pytest -q -m fuzz --fuzz-examples 200

demo: setup
	$(PYTHON) -m mct_plugin.harness.cli demo

benchmarks-quick: setup
	$(PYTHON) -m benchmarks.run_all --quick
