"""Run every benchmark (``--quick``: the smoke-test sizes) and regenerate RESULTS.md.

The full ``cpu`` profiles take a few hours on 2 cores; run them one by one as documented in
RESULTS.md when you need fresh numbers. Usage (from the repository root):
``python -m benchmarks.run_all [--quick] [--out DIR]``
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ORDER = [["speed"], ["storage", "--only", "sizes"], ["convergence", "--profile", "cpu"],
         ["storage", "--only", "accuracy"], ["cross_arch", "--profile", "cpu"], ["distributed"]]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    extra = (["--quick"] if args.quick else []) + (["--out", args.out] if args.out else [])
    for script in ORDER:
        if args.quick and script[0] == "storage" and script[-1] == "accuracy":
            continue  # the quick storage run below covers both parts
        command = [sys.executable, "-m", f"benchmarks.{script[0]}"] + (script[1:] if not args.quick else []) + extra
        print("$", " ".join(command[1:]), flush=True)
        subprocess.run(command, check=True, cwd=ROOT)
    if not args.quick:
        subprocess.run([sys.executable, "-m", "benchmarks.make_results"], check=True, cwd=ROOT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
