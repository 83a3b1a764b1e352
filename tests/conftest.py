"""Shared fixtures: real Fashion-MNIST (Debian package files), small real experts, kill points.

Everything runs for real on the CPU; sizes are chosen so the whole suite stays within a few
minutes on 2 cores (narrow ConvNets, class-balanced subsets, few epochs and iterations).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
import torch

from mct_plugin.harness.runtime.allocator import tune_allocator

tune_allocator()
if "OMP_NUM_THREADS" not in os.environ:  # an explicit thread count (e.g. beside a benchmark) wins
    # under pytest-xdist (make test: one worker per core) each worker keeps to one thread
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    threads = max(1, min(2, (os.cpu_count() or 1) // workers))
    torch.set_num_threads(threads)
    if "PYTEST_XDIST_WORKER" in os.environ:  # the programs a test starts share the worker's cores too
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)

from helpers import ALL_KILL_POINTS, DEFAULT_KILL_POINTS, SMALL_MODEL, built_once, components, write_fmnist_subset  # noqa: E402


@pytest.fixture(scope="session")
def fmnist():
    """The full Fashion-MNIST dataset from the Debian package (skipped if not installed)."""
    from mct_plugin.harness.data import load_dataset
    from mct_plugin.harness.errors import DataNotFoundError

    try:
        return load_dataset(components().datasets.get("FashionMNIST"))
    except DataNotFoundError as exc:  # pragma: no cover - CI installs the package
        pytest.skip(f"Fashion-MNIST is not installed: {exc}")


@pytest.fixture(scope="session")
def small_data(fmnist):
    """2000 class-balanced training images and the first 2000 test images (quick but real)."""
    data = fmnist.train_subset(2000, seed=0)
    return dataclasses.replace(data, test_images=fmnist.test_images[:2000], test_labels=fmnist.test_labels[:2000])


@pytest.fixture(scope="session")
def expert_root(tmp_path_factory, small_data):
    """A buffer root with 4 real ConvNetW32 experts (5 epochs each) in the public MTT layout
    (trained once per session, not once per xdist worker; tests only read it)."""
    from mct_plugin.harness.config import ExpertConfig
    from mct_plugin.harness.experts.train import train_experts

    def train(root: Path) -> None:
        config = ExpertConfig(model=SMALL_MODEL, num_experts=4, train_epochs=5, buffer_path=str(root),
                              save_interval=2, seed=1)
        train_experts(config, data=small_data, components=components(), show_progress=False)

    return built_once(tmp_path_factory, "buffers", train)


@pytest.fixture(scope="session")
def expert_dir(expert_root):
    return expert_root / "FashionMNIST" / SMALL_MODEL


# -- fault-injection kill points ----------------------------------------------------------------


def pytest_addoption(parser):
    parser.addoption("--fuzz-examples", type=int, default=12,
                     help="inputs per property of the fuzz tests (tests/test_fuzz.py; default 12, make test-fuzz: 200)")
    parser.addoption("--all-kill-points", action="store_true", default=False,
                     help=f"fault-injection tests: SIGKILL at all {ALL_KILL_POINTS} seeded points per command "
                          f"(default: the first {DEFAULT_KILL_POINTS})")


def pytest_generate_tests(metafunc):
    if "kill_point" in metafunc.fixturenames:
        count = ALL_KILL_POINTS if metafunc.config.getoption("--all-kill-points") else DEFAULT_KILL_POINTS
        metafunc.parametrize("kill_point", range(count))


@pytest.fixture(scope="session")
def mini_fmnist_dir(tmp_path_factory, fmnist):
    """A --data-path folder with 1000 class-balanced real training and 500 real test images
    (Fashion-MNIST, as IDX files), so a subprocess trains and tests an expert epoch in well under
    a second. Depends on ``fmnist`` only to be skipped where the dataset is missing."""
    return write_fmnist_subset(tmp_path_factory.mktemp("mini-fmnist"), per_class=100, test=500)


@pytest.fixture(scope="session")
def micro_fmnist_dir(tmp_path_factory, fmnist):
    """Like ``mini_fmnist_dir`` with 100 training (10 per class) and 100 test images: a "whole
    training set" that evaluation networks train on in a moment."""
    return write_fmnist_subset(tmp_path_factory.mktemp("micro-fmnist"), per_class=10, test=100)
