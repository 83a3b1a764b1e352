"""Shared fixtures: real Fashion-MNIST (Debian package files), small real experts, helpers.

Everything runs for real on the CPU; sizes are chosen so the whole suite stays within a few
minutes on 2 cores (narrow ConvNets, class-balanced subsets, few epochs and iterations).
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mct_plugin.harness.runtime import tune_allocator

tune_allocator()
torch.set_num_threads(min(2, os.cpu_count() or 1))

SMALL_MODEL = "ConvNetW32"


@pytest.fixture(scope="session")
def fmnist():
    """The full Fashion-MNIST dataset from the Debian package (skipped if not installed)."""
    from mct_plugin.harness.data import load_dataset
    from mct_plugin.harness.errors import DataNotFoundError

    try:
        return load_dataset("FashionMNIST")
    except DataNotFoundError as exc:  # pragma: no cover - CI installs the package
        pytest.skip(f"Fashion-MNIST is not installed: {exc}")


@pytest.fixture(scope="session")
def small_data(fmnist):
    """2000 class-balanced training images and the first 2000 test images (quick but real)."""
    data = fmnist.train_subset(2000, seed=0)
    return dataclasses.replace(data, test_images=fmnist.test_images[:2000], test_labels=fmnist.test_labels[:2000])


@pytest.fixture(scope="session")
def expert_root(tmp_path_factory, small_data):
    """A buffer root with 4 real ConvNetW32 experts (5 epochs each) in the public MTT layout."""
    from mct_plugin.harness.experts import ExpertConfig, train_experts

    root = tmp_path_factory.mktemp("buffers")
    config = ExpertConfig(model=SMALL_MODEL, num_experts=4, train_epochs=5, buffer_path=str(root),
                          save_interval=2, seed=1)
    train_experts(config, data=small_data, show_progress=False)
    return root


@pytest.fixture(scope="session")
def expert_dir(expert_root):
    return expert_root / "FashionMNIST" / SMALL_MODEL


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run ``dd-harness`` in a subprocess (the installed console script's module)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "mct_plugin.harness.cli", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    """A user error: non-zero exit, one 'dd-harness: error:' line on stderr, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.startswith("dd-harness: error:")]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def tree_snapshot(path: Path) -> dict[str, bytes]:
    """Relative path -> bytes of every file under ``path`` (to prove nothing was touched)."""
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}
