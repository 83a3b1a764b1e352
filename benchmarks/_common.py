"""Shared helpers of the benchmark scripts: machine facts, JSON results, subprocess peaks."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

from .workloads import WORKLOADS, components

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"


def git_commit() -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict:
    import torch

    return {"cpu": cpu_model(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform(),
            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)}


def provenance(argv: list[str] | None = None) -> dict:
    argv = argv if argv is not None else sys.argv
    script = Path(argv[0]).resolve()
    try:
        shown = str(script.relative_to(ROOT))
    except ValueError:
        shown = script.name
    if shown.startswith("benchmarks/") and shown.endswith(".py"):  # run as a module of the package
        shown = "-m " + shown.removesuffix(".py").replace("/", ".")
    return {"command": "python " + " ".join([shown] + [shlex.quote(a) for a in argv[1:]]),
            "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": git_commit(), "machine": machine()}


def run_parts(path: Path, parts: dict, selected: str, quick: bool, payload: dict) -> dict:
    """Run the comma-separated ``selected`` parts (name -> function(quick)) into ``payload``.

    A full (non-quick) run keeps the parts of an earlier ``path`` that it does not re-run; each part
    records its own provenance under ``payload["parts"]``. Writes ``path`` and returns the payload.
    """
    if path.exists() and not quick:
        kept = {k: v for k, v in json.loads(path.read_text()).items() if k in (*parts, "parts")}
        payload = {**kept, **payload}
    for name in selected.split(","):
        payload[name] = parts[name](quick)
        payload.setdefault("parts", {})[name] = provenance()
    write_json(path, payload)
    print(f"wrote {path}")
    return payload


def write_json(path: Path, payload: dict) -> Path:
    from mct_plugin.harness.io.atomic import atomic_write_json

    atomic_write_json(path, payload)
    return path


def run_workload(name: str, *args: str, env: dict | None = None, timeout: int = 3600,
                 in_process: bool = False) -> dict:
    """Run the workload ``name`` of :mod:`workloads` in a fresh interpreter and return its result.

    ``in_process`` calls it here instead (quick smoke tests: no interpreter start, shared peaks).
    """
    if in_process:
        return WORKLOADS[name](*args)
    proc = subprocess.run([sys.executable, "-m", "benchmarks.workloads", name, *args],
                          capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark workload {name} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def output_dir(arg: str | None) -> Path:
    path = Path(arg) if arg else RESULTS
    path.mkdir(parents=True, exist_ok=True)
    return path


def random_walk_trajectory(model: str, epochs: int, seed: int) -> list:
    """An expert-shaped trajectory of ``model`` (Fashion-MNIST shapes): a random walk from a fresh
    initialisation. Sizes and iteration costs do not depend on the values, accuracy does."""
    import torch

    torch.manual_seed(seed)
    point = [p.detach().clone() for p in components().models.create(model, 1, 10, (28, 28)).parameters()]
    trajectory = [point]
    for _ in range(epochs):
        point = [p + 0.01 * torch.randn_like(p) for p in point]
        trajectory.append(point)
    return trajectory


def evaluation_record(images, labels, lr: float, data, model: str, num_eval: int, epochs: int, seed: int) -> dict:
    """Our evaluation protocol on one set (``num_eval`` networks of ``model`` x ``epochs``, network
    seeds from ``seed``): accuracies as fractions, their mean and population std, the seconds."""
    import time

    from mct_plugin.harness.config import EvalSettings
    from mct_plugin.harness.eval.protocol import evaluate_set

    started = time.perf_counter()
    result = evaluate_set(images, labels, lr, data, model,
                          EvalSettings(num_eval=num_eval, epoch_eval_train=epochs, seed=seed), models=components().models)
    return {"model": model, "num_eval": num_eval, "epochs": epochs, "seed": seed, "accs": result.accuracies,
            "mean": result.mean, "std": result.std, "seconds": time.perf_counter() - started}


def save_figure(fig, path: Path) -> None:
    """Lay out, write atomically as PNG (100 dpi) and close a matplotlib figure."""
    import matplotlib.pyplot as plt

    from mct_plugin.harness.io.atomic import atomic_path

    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
