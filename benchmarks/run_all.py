"""Run every benchmark (``--quick``: the smoke-test sizes) and regenerate RESULTS.md.

The timing scripts run first, then the studies of ``benchmarks/studies/`` through ``dd-harness
study run`` (each continues where it stopped: run the same command again after an interruption),
each reported into ``results/studies/NAME``. The full studies take many hours on 2 cores; run them
one by one (``dd-harness study run FILE --hours 1.8``) when you need fresh numbers. Usage (from the
repository root): ``python -m benchmarks.run_all [--quick] [--out DIR]``
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ["speed", "storage", "distributed"]
STUDIES = ["mct-ipc1", "mct-ipc10", "checkpointed", "sweep", "long", "cross-arch", "convergence-cpu",
           "storage-accuracy"]
QUICK_STUDIES = ["mct-quick"]


def run(command: list[str]) -> None:
    print("$", " ".join(command[1:]), flush=True)
    subprocess.run(command, check=True, cwd=ROOT)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    extra = (["--quick"] if args.quick else []) + (["--out", args.out] if args.out else [])
    for script in SCRIPTS:
        run([sys.executable, "-m", f"benchmarks.{script}", *extra])
    results = Path(args.out) if args.out else ROOT / "benchmarks" / "results"
    study = [sys.executable, "-m", "mct_plugin.harness.cli", "study"]
    for name in QUICK_STUDIES if args.quick else STUDIES:
        path = str(ROOT / "benchmarks" / "studies" / f"{name}.yaml")
        run([*study, "run", path, "--workers", "2"])
        run([*study, "report", path, "--out", str(results / "studies" / name)])
    if not args.quick:
        run([sys.executable, "-m", "benchmarks.make_results"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
