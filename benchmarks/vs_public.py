"""Our ``distill`` against the public MTT ``distill.py``, run side by side on this machine.

The speed targets of the project are ratios to the public code's seconds per iteration. A
reference figure measured on another day can drift with the machine; this script measures both
programs in one session, alternating them, on the same random-walk expert buffer (ConvNet,
Fashion-MNIST shapes), the same hyper-parameters (syn_steps, expert_epochs, batch_syn = all
images, DSA on) and the same thread count.

With ``--experts`` it also times one epoch of expert training: the public ``buffer.py`` (its
default DSA augmentation) against ours with DSA and with our default ``crop_scale_rotate``.

The public code is not part of this project: pass the folder of your own checkout of
https://github.com/GeorgeCazenavette/mtt-distillation with ``--public-repo``. It runs unmodified
(its own files are read, never written) inside a small launcher that

* replaces ``wandb`` by a module that records nothing (no account, no network);
* gives its ``get_dataset`` a Fashion-MNIST branch (it has none) reading the IDX files that the
  project uses, through torchvision's ``FashionMNIST`` class;
* makes ``Tensor.cuda`` a no-op on CPU (it saves images through ``.cuda()``);
* flattens the ConvNet features with ``reshape`` (its ``view`` fails on torch >= 2.x CPU tensors);
* records the time of every synthetic-image optimizer step (``distill.py``) and of every pass over
  the data (``buffer.py``, the expert training).

The first iteration of each program (with the public code's evaluation at iteration 0, reduced to
one network for two epochs) is not timed. Peak RSS is the whole process's ``VmHWM``.

Usage: ``python benchmarks/vs_public.py --public-repo DIR [--ipc 1,10] [--experts] [--iterations 6] [--repeats 2]``
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import output_dir, provenance, run_parts, run_workload  # noqa: E402
from speed import write_random_walk_buffer  # noqa: E402



def fashion_mnist_root(directory: Path) -> Path:
    """A torchvision ``FashionMNIST`` root (uncompressed IDX files) made from the project's data."""
    from mct_plugin.harness.data.datasets import DEBIAN_FASHION_MNIST

    raw = directory / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        with gzip.open(DEBIAN_FASHION_MNIST / f"{stem}.gz") as source, open(raw / stem, "wb") as target:
            shutil.copyfileobj(source, target)
    return directory


def launch_public(repo: Path, script: str, ipc: int, args: list[str]) -> dict:
    launcher = Path(__file__).resolve().parent / "public_launcher.py"
    proc = subprocess.run([sys.executable, str(launcher), str(repo), script, str(ipc), *args], capture_output=True,
                          text=True, timeout=7200)
    if proc.returncode != 0:
        raise RuntimeError(f"the public {script} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_public(repo: Path, ipc: int, steps: int, iterations: int, buffers: Path, data: Path) -> dict:
    args = ["--dataset", "FashionMNIST", "--model", "ConvNet", "--ipc", str(ipc), "--syn_steps", str(steps),
            "--expert_epochs", "2", "--max_start_epoch", "5", "--lr_teacher", "0.01", "--Iteration", str(iterations),
            "--eval_it", "100000", "--num_eval", "1", "--epoch_eval_train", "2", "--buffer_path", str(buffers),
            "--data_path", str(data)]
    result = launch_public(repo, "distill.py", ipc, args)
    return {"seconds": result["seconds"][1:], "peak_rss_mb": result["peak_rss_mb"]}  # [0] holds the evaluation


def run_ours(ipc: int, steps: int, iterations: int, buffers: Path, out: Path) -> dict:
    result = run_workload("distill_iterations", "mtt", "unrolled", "ConvNet", str(ipc), str(steps), str(iterations + 1),
                        str(buffers), str(out))
    return {"seconds": result["seconds"], "peak_rss_mb": result["peak_rss_mb"]}


def measure_experts(repo: Path, data: Path, buffers: Path, repeats: int) -> dict:
    """One epoch of expert training (ConvNet, full Fashion-MNIST, batch 256, lr 0.01): the public
    buffer.py with its default DSA augmentation vs ours with DSA and with our default
    crop_scale_rotate; train pass and test pass timed separately."""
    runs: dict[str, list[dict]] = {"public (dsa)": [], "ours (dsa)": [], "ours (crop_scale_rotate)": []}
    for repeat in range(repeats):
        result = launch_public(repo, "buffer.py", 1, [
            "--dataset", "FashionMNIST", "--model", "ConvNet", "--num_experts", "1", "--train_epochs", "1",
            "--buffer_path", str(buffers / "public_experts"), "--data_path", str(data)])
        train = [s for mode, s in result["epochs"] if mode == "train"]
        test = [s for mode, s in result["epochs"] if mode == "test"]
        runs["public (dsa)"].append({"train_s": train[0], "test_s": test[0]})
        for augmentation in ("dsa", "crop_scale_rotate"):
            ours = run_workload("expert_epoch", "ConvNet", "0", augmentation)
            runs[f"ours ({augmentation})"].append({"train_s": ours["train_s"], "test_s": ours["test_s"]})
        for name, results in runs.items():
            print(f"experts {name} run {repeat + 1}: train {results[-1]['train_s']:.1f} s, "
                  f"test {results[-1]['test_s']:.1f} s", flush=True)
    row = {"model": "ConvNet", "batch_train": 256}
    for name, results in runs.items():
        row[name] = {key: statistics.median(r[key] for r in results) for key in ("train_s", "test_s")}
        row[name]["epoch_s"] = row[name]["train_s"] + row[name]["test_s"]
        row[name]["runs"] = len(results)
    for name in ("ours (dsa)", "ours (crop_scale_rotate)"):
        row[f"time_ratio {name}"] = row[name]["epoch_s"] / row["public (dsa)"]["epoch_s"]
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--public-repo", required=True, type=Path,
                        help="a checkout of GeorgeCazenavette/mtt-distillation (distill.py, utils.py, networks.py)")
    parser.add_argument("--ipc", default="1,10", help="distillation ipcs to compare ('' for none)")
    parser.add_argument("--experts", action="store_true", help="also compare one epoch of expert training")
    parser.add_argument("--syn-steps", type=int, default=20)
    parser.add_argument("--iterations", type=int, default=6, help="timed iterations per run")
    parser.add_argument("--repeats", type=int, default=2, help="alternating runs of each program")
    parser.add_argument("--out", default=None, help="folder for vs_public.json (default benchmarks/results)")
    args = parser.parse_args(argv)
    repo = args.public_repo.expanduser().resolve()
    missing = [name for name in ("distill.py", "utils.py", "networks.py", "reparam_module.py")
               if not (repo / name).is_file()]
    if missing:
        parser.error(f"{repo} is not a checkout of the public MTT code (missing {', '.join(missing)})")
    given = str(args.public_repo)  # no local paths in the results (provenance reads sys.argv)
    sys.argv[1:] = [("--public-repo=MTT_REPO" if a.startswith("--public-repo=") else "MTT_REPO" if a == given else a)
                    for a in (argv if argv is not None else sys.argv[1:])]
    selected = [int(x) for x in args.ipc.split(",") if x]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = fashion_mnist_root(tmp / "data")
        buffers = tmp / "buffers"
        write_random_walk_buffer(buffers, "ConvNet", epochs=10)

        def measure(ipc: int, quick: bool) -> dict:
            runs = {"public": [], "ours": []}
            for repeat in range(args.repeats):
                for name in ("public", "ours"):
                    if name == "public":
                        result = run_public(repo, ipc, args.syn_steps, args.iterations + 1, buffers, data)
                    else:
                        result = run_ours(ipc, args.syn_steps, args.iterations, buffers, tmp / "run")
                    runs[name].append(result)
                    print(f"ipc={ipc} {name} run {repeat + 1}: median "
                          f"{statistics.median(result['seconds']):.2f} s/it, peak {result['peak_rss_mb']:.0f} MB",
                          flush=True)
            row = {"ipc": ipc, "syn_steps": args.syn_steps, "expert_epochs": 2, "model": "ConvNet",
                   "threads": os.environ.get("OMP_NUM_THREADS", "default")}
            for name, results in runs.items():
                seconds = [s for r in results for s in r["seconds"]]
                row[name] = {"median_s": statistics.median(seconds), "mean_s": statistics.fmean(seconds),
                             "min_s": min(seconds), "max_s": max(seconds), "iterations_timed": len(seconds),
                             "runs": len(results), "peak_rss_mb": max(r["peak_rss_mb"] for r in results)}
            row["time_ratio"] = row["ours"]["median_s"] / row["public"]["median_s"]
            row["memory_ratio"] = row["ours"]["peak_rss_mb"] / row["public"]["peak_rss_mb"]
            print(f"ipc={ipc}: ours {row['ours']['median_s']:.2f} s/it vs public {row['public']['median_s']:.2f} "
                  f"({row['time_ratio']:.2f}x time, {row['memory_ratio']:.2f}x memory)", flush=True)
            return row

        # one part per ipc: a later run of one ipc keeps the others' rows and provenance
        parts = {f"ipc{ipc}": partial(measure, ipc) for ipc in sorted({1, 10, *selected})}
        parts["experts"] = lambda quick: measure_experts(repo, data, buffers, args.repeats)
        chosen = [f"ipc{ipc}" for ipc in selected] + (["experts"] if args.experts else [])
        if not chosen:
            parser.error("nothing to measure: give --ipc and/or --experts")
        run_parts(output_dir(args.out) / "vs_public.json", parts, ",".join(chosen), False,
                  {"benchmark": "vs_public", **provenance()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
