"""CLI startup: wall time of ``dd-harness --help`` against ``python -c "import torch"``.

Each command runs ``--runs`` times in a fresh interpreter (alternating, after one warm-up run of
each, so that both see the same page cache); the report gives the median and the range of each
and their ratio. Run it on an otherwise idle machine: timings taken while other processes share
the cores are not comparable. ``--quick`` runs each twice (the test of this script).

Usage (from the repository root): ``python -m benchmarks.cli_startup [--runs N] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from ._common import output_dir, provenance, write_json

COMMANDS = {
    "dd-harness --help": [sys.executable, "-m", "mct_plugin.harness.cli", "--help"],
    'python -c "import torch"': [sys.executable, "-c", "import torch"],
}


def wall_seconds(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def measure(runs: int) -> dict[str, list[float]]:
    """``runs`` wall times of every command, taken in alternation after one warm-up each."""
    for command in COMMANDS.values():
        wall_seconds(command)
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(runs):
        for name, command in COMMANDS.items():
            times[name].append(wall_seconds(command))
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="runs of each command (default 15)")
    parser.add_argument("--quick", action="store_true", help="2 runs each (a smoke test, not a measurement)")
    parser.add_argument("--out", default=None, help="folder of cli_startup.json (default benchmarks/results)")
    args = parser.parse_args(argv)
    runs = 2 if args.quick else args.runs
    times = measure(runs)
    rows = [{"command": name, "runs": len(values), "median_seconds": statistics.median(values),
             "min_seconds": min(values), "max_seconds": max(values), "seconds": values}
            for name, values in times.items()]
    help_median, torch_median = (row["median_seconds"] for row in rows)
    report = {"benchmark": "cli_startup", **provenance(), "quick": args.quick, "rows": rows,
              "help_over_import_torch": help_median / torch_median}
    path = output_dir(args.out) / ("cli_startup_quick.json" if args.quick else "cli_startup.json")
    write_json(path, report)
    for row in rows:
        print(f"{row['command']}: median {row['median_seconds']:.3f} s "
              f"({row['min_seconds']:.3f}-{row['max_seconds']:.3f}, {row['runs']} runs)")
    print(f"dd-harness --help takes {report['help_over_import_torch']:.2f}x the time of importing torch; "
          f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
