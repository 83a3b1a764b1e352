"""``dd-harness demo``: what this project is for, in minutes: MTT and MCT side by side.

On Fashion-MNIST it trains a few small experts, distils one image per class with MTT and with MCT
from those same experts (both at once, one thread each), and prints one table: the final and the
best set of each against a random real subset of the same size (same protocol, same networks), the
difference MCT - MTT, and what each method stores (the MTT replay buffers against MCT's
convexified files, ``dd-harness convert --to mct``). The demo is a study file (``study.yaml``
here, run with the study runner; ``dd-harness study run`` runs it as well) whose arms are the
recipe ``demo/fashionmnist-ipc1`` with either matcher; its runs are kept in the user cache, so a
second demo reuses them. ``--out`` receives the report: the overlaid accuracy curves
(``curves.png``), ``report.md``, ``results.csv``.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from mct_plugin.harness.api import add_options, hookimpl, option, recipes_in

log = logging.getLogger(__name__)

RECIPE = "demo/fashionmnist-ipc1"
STUDY_FILE = Path(__file__).parent / "study.yaml"


@hookimpl
def dd_register_recipes():
    return recipes_in(Path(__file__).parent / "recipes")


def demo_cache(cache: str | None) -> Path:
    from mct_plugin.harness.api import cache_dir

    return Path(cache).expanduser() if cache else cache_dir() / "demo"


def folder_bytes(folder: Path, pattern: str) -> int:
    return sum(path.stat().st_size for path in folder.rglob(pattern))


def storage(experts: Path, converted: Path) -> tuple[int, int]:
    """Bytes of the MTT replay buffers in ``experts`` and of their MCT conversion (written once
    into ``converted`` by ``dd-harness convert --to mct``)."""
    buffers = next(path.parent for path in experts.rglob("replay_buffer_*.pt"))
    if not any(converted.glob("*.mct.safetensors")):
        subprocess.run([sys.executable, "-m", "mct_plugin.harness.cli", "convert", str(buffers), "--to", "mct",
                        "--out", str(converted), "--quiet"], check=True, capture_output=True)
    return folder_bytes(buffers, "replay_buffer_*.pt"), folder_bytes(converted, "*.mct.safetensors")


def _accuracy(rows: list[dict], arm: str, set_name: str) -> dict:
    return next(r for r in rows if r["arm"] == arm and r["set"] == set_name and r["source"] == "distill")


def run_demo(components, cache: str | None = None, out: str = "runs/demo", data_path: str | None = None,
             overwrite: bool = False, report: Callable[[str], None] = log.info) -> str:
    """Run the demo study with ``components`` (``build_components()``, which hold its recipe) and
    write its report into ``out``; return the printed table (Markdown)."""
    from mct_plugin.harness.api import RunDirectory, Study, write_report

    RunDirectory(out).check_available(overwrite=overwrite, resume=False)  # before minutes of work
    started = time.perf_counter()
    study = Study.from_file(STUDY_FILE, components, folder=demo_cache(cache) / "study", report=report)
    if data_path:
        study = Study(replace(study.spec, options={**study.spec.options, "data_path": data_path}), components, report)
    outcome = study.run(executor_options={"workers": 2})
    if not outcome.complete:
        raise RuntimeError(f"the demo's runs did not all finish: see dd-harness study status {STUDY_FILE}")
    paths = write_report(study, Path(out))
    rows = [json.loads(line) for line in paths["results.jsonl"].read_text(encoding="utf-8").splitlines()]
    experts = next(job for job in study.jobs() if job.kind == "experts")
    mtt_bytes, mct_bytes = storage(experts.run_dir, demo_cache(cache) / "mct_files")
    labels = {name: arm.title for name, arm in study.spec.arms.items()}
    lines = ["Fashion-MNIST, 1 image per class, test accuracy (%) of 5 networks trained on each set:", "",
             "| training set | final set | best set (iteration) |", "|---|---|---|",
             f"| random real subset | {_accuracy(rows, 'mtt', 'random_subset')['value']:.2f} | |"]
    for arm in ("mtt", "mct"):
        final, best = _accuracy(rows, arm, "final"), _accuracy(rows, arm, "best")
        lines.append(f"| {labels[arm]} | {final['value']:.2f} | {best['value']:.2f} ({best['iteration']}) |")
    difference = _accuracy(rows, "mct", "final")["value"] - _accuracy(rows, "mtt", "final")["value"]
    minutes = (time.perf_counter() - started) / 60
    lines += ["", f"MCT - MTT on the final set: {difference:+.2f} points (one seed: run 'dd-harness study run' "
                  f"with more seeds for an interval).",
              f"Storage of the experts: MTT buffers {mtt_bytes / 2**20:.1f} MiB, MCT files {mct_bytes / 2**20:.1f} MiB "
              f"({100 * mct_bytes / mtt_bytes:.1f}%).",
              f"{minutes:.1f} min. Curves: {paths['curves.png']}; runs: {study.folder / 'jobs'}."]
    return "\n".join(lines)


@dataclass(frozen=True)
class DemoOptions:
    """The options of ``dd-harness demo`` (also accepted in a ``--config`` file)."""

    cache: str | None = option(None, "folder for the demo's experts and runs (default: the user cache's demo/)",
                               metavar="DIR")
    out: str = option("runs/demo", "folder of the demo's report (curves.png, report.md, results.csv)", metavar="DIR")
    overwrite: bool = option(False, "replace an earlier demo report in --out")
    data_path: str | None = option(None, "folder with the Fashion-MNIST files (default: the Debian package, then "
                                         "the cache)", metavar="DIR")


def _cmd_demo(args, components) -> int:
    from mct_plugin.harness.api import options_from_command_line

    o = options_from_command_line(DemoOptions, args, "demo")
    print(run_demo(components, cache=o.cache, out=o.out, data_path=o.data_path, overwrite=o.overwrite,
                   report=(lambda line: None) if args.quiet else logging.getLogger("mct_plugin").info))
    return 0


@hookimpl
def dd_register_commands(subparsers):
    p = subparsers.add_parser("demo", help="end-to-end demo on Fashion-MNIST: MTT and MCT from the same experts",
                              description=f"Train a few small experts, distil one image per class with MTT and with "
                                          f"MCT from them (the study file {STUDY_FILE.name}: the recipe {RECIPE} with "
                                          f"either matcher) and compare both with a random real subset of the same "
                                          f"size, and what each stores.")
    add_options(p, DemoOptions, config_file=True)
    p.add_argument("--quiet", action="store_true", help="no progress lines (which run started, which finished)")
    p.set_defaults(handler=_cmd_demo)
