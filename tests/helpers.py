"""Helpers shared by the tests: CLI runners, one-line-error checks, file snapshots, small real
data on disk, subprocesses that obey file permissions. Fixtures live in conftest.py."""

from __future__ import annotations

import contextlib
import functools
import gzip
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch
from filelock import FileLock

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BENCH = ROOT / "benchmarks"
SMALL_MODEL = "ConvNetW32"
DEFAULT_KILL_POINTS = 1  # per command and test, without --all-kill-points
ALL_KILL_POINTS = 6


@functools.cache
def components():
    """The components of the installed plugins, built once per test process (a convenience of the
    tests: the library never caches them, every caller passes its own)."""
    from mct_plugin.harness.plugins.components import build_components

    return build_components()


def create_model(name: str, channels: int, num_classes: int, image_size: tuple[int, int]):
    """A fresh model ``name`` from the installed components."""
    return components().models.create(name, channels, num_classes, image_size)


def convexify(checkpoints, waypoints: int = 2, smoothing: str = "none", spacing: str = "even",
              pacing: str = "distance"):
    """``ConvexifiedTrajectory.from_checkpoints`` with the options spelt out (the tests' plain
    default: P=2, no smoothing, even spacing; the option declarations' defaults are P=4, public)."""
    from mct_plugin.mct.convexified import ConvexifiedTrajectory
    from mct_plugin.mct.options import ConvexifyOptions

    return ConvexifiedTrajectory.from_checkpoints(checkpoints, ConvexifyOptions(waypoints, smoothing, spacing, pacing))


def benchmark_module(name: str):
    """A script of ``benchmarks/`` imported as a module of the ``benchmarks`` package (the repository
    root is on ``sys.path`` through pytest's ``pythonpath``)."""
    import importlib

    return importlib.import_module(f"benchmarks.{name}")


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run ``dd-harness``: in this process (the real ``main()``, output captured), or in a fresh
    interpreter when ``env`` or ``cwd`` is given. Tests of signals and kills use subprocesses."""
    if env is None and cwd is None:
        return run_cli_in_process(*args)
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "mct_plugin.harness.cli", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def run_cli_in_process(*args: str) -> subprocess.CompletedProcess:
    import contextlib
    import io

    from mct_plugin.harness.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return subprocess.CompletedProcess(["dd-harness", *args], code, out.getvalue(), err.getvalue())


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


def write_idx(path: Path, array) -> Path:
    """Write a uint8 array as a gzip-compressed IDX file (the MNIST-family format)."""
    import numpy as np

    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    path.write_bytes(gzip.compress(header + array.tobytes(), mtime=0))
    return path


def write_fmnist_subset(directory: Path, per_class: int, test: int) -> Path:
    """A ``--data-path`` folder of real Fashion-MNIST IDX files: the first ``per_class`` training
    images of every class and the first ``test`` test images."""
    import numpy as np

    from mct_plugin.harness.data.datasets import DEBIAN_FASHION_MNIST
    from mct_plugin.harness.data.idx import read_idx

    def raw(stem):
        return read_idx(DEBIAN_FASHION_MNIST / f"{stem}.gz")

    train_images, train_labels = raw("train-images-idx3-ubyte"), raw("train-labels-idx1-ubyte")
    index = np.concatenate([np.flatnonzero(train_labels == c)[:per_class] for c in range(10)])
    write_idx(directory / "train-images-idx3-ubyte.gz", train_images[index])
    write_idx(directory / "train-labels-idx1-ubyte.gz", train_labels[index])
    write_idx(directory / "t10k-images-idx3-ubyte.gz", raw("t10k-images-idx3-ubyte")[:test])
    write_idx(directory / "t10k-labels-idx1-ubyte.gz", raw("t10k-labels-idx1-ubyte")[:test])
    return directory


def cli_env() -> dict:
    """Environment of CLI subprocesses whose results are compared bit for bit: one fixed thread
    count (results depend on it) and one thread, so two processes never oversubscribe 2 cores."""
    return {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def run_main(capsys, *args: str) -> subprocess.CompletedProcess:
    """Run ``dd-harness`` in this process (fast: no interpreter start, no torch import); the
    result looks like :func:`run_cli`'s, so :func:`assert_one_line_error` applies."""
    from mct_plugin.harness.cli import main

    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(["dd-harness", *args], code, out, err)


def temporaries(path: Path) -> list[Path]:
    """Files a writer leaves when it dies mid-write: ``.tmp-*`` (atomic writes) and ``*.partial.pt``."""
    return sorted(p for p in path.rglob("*") if p.name.startswith(".tmp-") or p.name.endswith(".partial.pt"))


def run_cli_batch(commands: list[list[str]], *, preexec_fn=None, cwd: Path | None = None,
                  timeout: int = 300) -> list[subprocess.CompletedProcess]:
    """Run several ``dd-harness`` commands, one after the other, in ONE fresh subprocess (same
    entry point, ``main(argv)``; one interpreter start instead of one per command). Used where
    the subprocess itself must differ from the test process: fewer privileges, resource limits."""
    import json

    proc = subprocess.run([sys.executable, str(HERE / "_batch_runner.py")], input=json.dumps(commands), capture_output=True,
                          text=True, cwd=cwd, env={**os.environ, **cli_env()}, preexec_fn=preexec_fn, timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    return [subprocess.CompletedProcess(["dd-harness", *argv], code, out, err)
            for argv, (code, out, err) in zip(commands, json.loads(proc.stdout))]


def _drop_file_permission_override() -> None:
    """preexec_fn: drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the capability bounding set,
    so that root (in this process and what it executes) obeys file permissions."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def _become_nobody() -> None:
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)


def _reachable_by_everyone(path: Path) -> bool:
    """Can a user who is neither owner nor group member reach ``path`` (x on every folder above)?"""
    path = path.resolve()
    return all(parent.stat().st_mode & 0o001 for parent in path.parents) and bool(path.stat().st_mode & 0o004)


def file_permissions_preexec():
    """How to start a subprocess in which ``chmod 000`` really denies access.

    Not root: nothing to do. Root: drop the capabilities that override file permissions; where
    that is not allowed, run as ``nobody`` (needs an interpreter and inputs reachable by
    everyone). ``pytest.skip`` if neither works.
    """
    import tempfile

    if os.geteuid() != 0:
        return None
    probe_dir = Path(tempfile.mkdtemp())
    try:
        probe = probe_dir / "probe"
        probe.write_text("secret")
        probe.chmod(0)
        probe_dir.chmod(0o755)
        candidates = [_drop_file_permission_override]
        package = Path(__file__).parent.parent / "mct_plugin" / "__init__.py"
        if _reachable_by_everyone(Path(sys.executable)) and _reachable_by_everyone(package):
            candidates.append(_become_nobody)
        for preexec in candidates:
            try:
                check = subprocess.run([sys.executable, "-c", f"open({str(probe)!r}).read()"], preexec_fn=preexec,
                                       capture_output=True, text=True, timeout=60)
            except (OSError, subprocess.SubprocessError):
                continue
            if check.returncode != 0 and "PermissionError" in check.stderr:
                return preexec
    finally:
        for path in (probe_dir / "probe", probe_dir):
            with contextlib.suppress(OSError):
                path.unlink() if path.is_file() else path.rmdir()
    pytest.skip("cannot start a subprocess that obeys file permissions (root without CAP_SETPCAP, and "
                "the interpreter is not reachable by user nobody)")


@functools.cache
def model_shapes(model: str) -> list[torch.Size]:
    """The parameter shapes of ``model`` on 1x28x28 images and 10 classes (Fashion-MNIST's)."""
    from mct_plugin.harness.models import FunctionalModel

    return FunctionalModel(create_model(model, 1, 10, (28, 28))).shapes


def random_trajectory(shapes: str | Sequence[Sequence[int]], epochs: int, seed: int, *, start: float = 0.1,
                      step: float = 0.01) -> list[list[torch.Tensor]]:
    """An expert trajectory of ``epochs + 1`` checkpoints: a seeded random walk from a point of scale
    ``start``, adding noise of scale ``step`` each epoch, in the parameter space of a model (its
    name: shapes only matter to readers and converters; real experts come from ``expert_root``) or
    of the tensors of ``shapes``. The same arguments give the same tensors."""
    generator = torch.Generator().manual_seed(seed)
    if isinstance(shapes, str):
        shapes = model_shapes(shapes)
    point = [start * torch.randn(s, generator=generator) for s in shapes]
    trajectory = [point]
    for _ in range(epochs):
        point = [p + step * torch.randn(p.shape, generator=generator) for p in point]
        trajectory.append(point)
    return trajectory


class PickleExploit:
    """Unpickled, it runs ``touch marker`` (what a malicious checkpoint or buffer does): a loader that
    refuses pickles importing code leaves ``marker`` absent."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


QUICK_DISTILL = {"matcher": "mtt", "iterations": 2, "syn_steps": 2, "expert_epochs": 1, "max_start_epoch": 2,
                 "eval_it": 0, "quiet": True}


def distill_args(model: str, *extra: str, **options) -> list[str]:
    """The command line of a real distillation of ``model`` that takes seconds: ``distill`` with the
    options of ``QUICK_DISTILL`` and ``options`` over them (keywords spelt as the config's fields:
    ``syn_steps=5`` is ``--syn-steps 5``; ``True`` is a flag; ``None`` or ``False`` leaves the option
    out), then ``extra`` as written (last: over any of the above)."""
    args = ["distill", "--model", model]
    for name, value in {**QUICK_DISTILL, **options}.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            args.append(flag)
        elif value is not None and value is not False:
            args += [flag, str(value)]
    return [*args, *extra]


def built_once(tmp_path_factory, name: str, build) -> Path:
    """The folder ``name`` that ``build(folder)`` fills, built by the first pytest-xdist worker
    that asks for it and read by the others (the session's workers share the parent of their
    base temporary folders: pytest-xdist's documented pattern); without xdist, built here."""
    if "PYTEST_XDIST_WORKER" not in os.environ:  # the parent is then shared with other sessions
        folder = tmp_path_factory.mktemp(name)
        build(folder)
        return folder
    shared = tmp_path_factory.getbasetemp().parent
    folder = shared / name
    with FileLock(str(shared / f"{name}.lock")):
        if not folder.is_dir():
            partial = shared / f"{name}.partial"
            shutil.rmtree(partial, ignore_errors=True)
            build(partial)
            partial.rename(folder)
    return folder
