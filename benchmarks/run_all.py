"""Run every benchmark (``--quick``: the smoke-test sizes) and regenerate RESULTS.md.

The full ``cpu`` profiles take a few hours on 2 cores; run them one by one as documented in
RESULTS.md when you need fresh numbers. Usage: ``python benchmarks/run_all.py [--quick] [--out DIR]``
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = [["speed.py"], ["storage.py", "--only", "sizes"], ["convergence.py", "--profile", "cpu"],
         ["storage.py", "--only", "accuracy"], ["cross_arch.py", "--profile", "cpu"], ["distributed.py"]]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    extra = (["--quick"] if args.quick else []) + (["--out", args.out] if args.out else [])
    for script in ORDER:
        if args.quick and script[0] == "storage.py" and script[-1] == "accuracy":
            continue  # the quick storage run below covers both parts
        command = [sys.executable, str(HERE / script[0])] + (script[1:] if not args.quick else []) + extra
        if args.quick and script[0] == "storage.py":
            command = [sys.executable, str(HERE / "storage.py")] + extra
        print("$", " ".join(command[1:]), flush=True)
        subprocess.run(command, check=True)
    if not args.quick:
        subprocess.run([sys.executable, str(HERE / "make_results.py")], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
