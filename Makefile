# Setup, tests and the demo. `make demo` and `make test` are the two commands of the README.
PYTHON ?= python3
PIP := $(PYTHON) -m pip
# torch/torchvision as served on the project's reference machines; override elsewhere
TORCH ?= torch==2.14.1 torchvision==0.29.1

.PHONY: setup packages data test test-faults demo benchmarks-quick

setup: packages data

packages:
	$(PIP) install -q $(TORCH)
	$(PIP) install -q -e '.[test]'

data: packages
	@sh scripts/install-fashion-mnist.sh $(PYTHON)

test: setup
	$(PYTHON) -m pytest -q

test-faults: setup
	$(PYTHON) -m pytest -q -m faults --all-kill-points

demo: setup
	$(PYTHON) -m mct_plugin.harness.cli demo

benchmarks-quick: setup
	$(PYTHON) benchmarks/run_all.py --quick
