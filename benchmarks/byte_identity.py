"""Byte-identity proof for refactors: one fixed-seed experts -> convert -> distill -> eval chain,
and the SHA-256 of every file it writes.

Run it on the tree before a change and again after; the two hash lists must be equal::

    python -m benchmarks.byte_identity --json before.json      # on the old tree
    python -m benchmarks.byte_identity --json after.json --compare before.json

The chain runs through the ``dd-harness`` command line (in fresh interpreters, CPU only) in a
temporary folder: 2 ConvNetW16 experts on a 500-image Fashion-MNIST subset; conversion to MCT
(P=2, and P=4 with public smoothing stored as float16); distillations with mtt, with mct
(constant-memory gradient, teacher labels) and with mct at ipc=2; ``dd-harness eval`` of each.
Files whose content names the temporary folder or a duration are normalised first: the folder
becomes ``<ROOT>``, JSON keys that hold wall-clock times (``seconds``, ``minutes``, ...) are
dropped, and a JSON file is hashed in a canonical form (sorted keys). Tensors (``.pt``,
``.safetensors``) and images are hashed as written. A few minutes on two CPU cores.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

TIME_KEYS = frozenset({"seconds", "minutes", "elapsed", "duration", "wall_s", "started", "finished", "timestamp",
                       "time", "date"})
MODEL = "ConvNetW16"
COMMON = ("--device", "cpu")


def chain(root: Path) -> list[list[str]]:
    """The commands of the chain (``dd-harness`` arguments), in order."""
    buffers = root / "buffers"
    experts_dir = buffers / "FashionMNIST" / MODEL
    distill = ("distill", "--model", MODEL, "--iterations", "6", "--syn-steps", "4", "--expert-epochs", "1",
               "--max-start-epoch", "2", "--eval-it", "3", "--num-eval", "1", "--epoch-eval-train", "3",
               "--checkpoint-every", "4", "--quiet", *COMMON)
    evaluate = ("--num-eval", "1", "--epoch-eval-train", "2", *COMMON)
    return [
        ["experts", "--model", MODEL, "--num-experts", "2", "--train-epochs", "4", "--subset", "500",
         "--buffer-path", str(buffers), "--seed", "3", "--quiet", *COMMON],
        ["convert", str(experts_dir), "--to", "mct", "--out", str(root / "mct_p2"), "--waypoints", "2",
         "--smooth", "none", "--quiet"],
        ["convert", str(experts_dir), "--to", "mct", "--out", str(root / "mct_p4"), "--waypoints", "4",
         "--smooth", "public", "--dtype", "float16", "--quiet"],
        [*distill, "--matcher", "mtt", "--buffer-path", str(buffers), "--out", str(root / "run_mtt")],
        [*distill, "--matcher", "mct", "--buffer-path", str(root / "mct_p4"), "--out", str(root / "run_mct"),
         "--gradient-mode", "constant-memory", "--teacher-label"],
        [*distill, "--matcher", "mct", "--buffer-path", str(root / "mct_p2"), "--out", str(root / "run_mct_ipc2"),
         "--ipc", "2", "--lr-img", "100"],
        ["eval", "--run", str(root / "run_mtt"), *evaluate],
        ["eval", "--run", str(root / "run_mct"), *evaluate, "--no-baseline"],
        ["eval", "--run", str(root / "run_mct_ipc2"), *evaluate, "--no-baseline"],
    ]


def _without_times(value):
    if isinstance(value, dict):
        return {k: _without_times(v) for k, v in value.items() if k not in TIME_KEYS}
    if isinstance(value, list):
        return [_without_times(v) for v in value]
    return value


def normalised(path: Path, root: Path) -> bytes:
    """The bytes hashed for ``path``: JSON canonical and without times, text with ``<ROOT>``."""
    data = path.read_bytes()
    if path.suffix not in (".json", ".jsonl", ".md", ".txt"):
        return data
    text = data.decode("utf-8").replace(str(root), "<ROOT>")
    if path.suffix == ".json":
        return json.dumps(_without_times(json.loads(text)), sort_keys=True).encode()
    if path.suffix == ".jsonl":
        rows = [json.dumps(_without_times(json.loads(line)), sort_keys=True) for line in text.splitlines() if line]
        return "\n".join(rows).encode()
    return text.encode()


def hashes(root: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file under ``root`` (lock files excluded)."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.name.startswith(".dd-harness.lock"):
            out[str(path.relative_to(root))] = hashlib.sha256(normalised(path, root)).hexdigest()
    return out


def run_chain(root: Path, log=print) -> dict[str, str]:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONHASHSEED": "0"}
    for args in chain(root):
        log("dd-harness " + " ".join(a.replace(str(root), "<ROOT>") for a in args[:3]) + " ...")
        proc = subprocess.run([sys.executable, "-m", "mct_plugin.harness.cli", *args], env=env, capture_output=True,
                              text=True)
        if proc.returncode != 0:
            raise SystemExit(f"failed ({proc.returncode}): dd-harness {' '.join(args)}\n{proc.stderr[-3000:]}")
    return hashes(root)


def compare(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Lines describing every difference (empty: byte-identical)."""
    lines = [f"only before: {k}" for k in sorted(set(before) - set(after))]
    lines += [f"only after: {k}" for k in sorted(set(after) - set(before))]
    lines += [f"differs: {k}" for k in sorted(set(before) & set(after)) if before[k] != after[k]]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", help="write the hash list here")
    parser.add_argument("--compare", help="a hash list from before the change; exit 1 on any difference")
    parser.add_argument("--keep", help="run in this (new) folder and keep it, instead of a temporary one")
    args = parser.parse_args(argv)
    if args.keep:
        root = Path(args.keep).resolve()
        root.mkdir(parents=True)
        result = run_chain(root)
    else:
        with tempfile.TemporaryDirectory(prefix="dd-bytes-") as tmp:
            result = run_chain(Path(tmp).resolve())
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    for name, digest in result.items():
        print(f"{digest}  {name}")
    print(f"{len(result)} files")
    if args.compare:
        differences = compare(json.loads(Path(args.compare).read_text()), result)
        print("\n".join(differences) or "byte-identical: every file hashes the same")
        return 1 if differences else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
