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

With ``--accuracy`` it measures accuracy parity, powered (:mod:`benchmarks.parity`): ``--seeds``
(default 8) whole distillations per program on the MCT study's experts, the public MTT
``distill.py`` against ``--matcher mtt`` and the public MCT recipe (``--mct-repo``:
``exps/trajectory_compression.py`` then ``distill_compressed.py``) against ``--matcher mct`` with the
same first-order gradient; every run's final set judged by our evaluation and by the public
``evaluate_synset``; ours - public with 95% Welch intervals; ``results/parity.json`` and
``results/parity.png``; resumable (``--hours``, cached steps). ``--swap dsa,init,...`` adds the
ablation (the public program with one of our components, :mod:`benchmarks.public_swaps`).
``--quick``: tiny experts, 2 iterations, 2 runs, one network (``parity_quick.json``).

With ``--gradient-modes unrolled,checkpointed,first-order`` our side runs once per gradient mode, and
``--memory-only`` runs one iteration per program and records peak memory only (a memory figure does
not depend on a shared CPU; a time would): the parts are then named ``ipcN-sSTEPS-memory`` and never
replace a timed part. Where the graph of every step would not fit this machine, neither the public
code nor ``unrolled`` is started (the row says so).

The public code imports scipy (``pip install scipy`` in the environment that runs this script; checked
before anything runs).

Usage: ``python -m benchmarks.vs_public --public-repo DIR [--ipc 1,10] [--experts] [--iterations 6] [--repeats 2]``
or ``python -m benchmarks.vs_public --public-repo MTT_DIR --mct-repo MCT_DIR --accuracy [--seeds 8] [--hours 1.8]
[--swap dsa,init,segment,minibatch,optimizer,expert-order --swap-runs 4] [--methods mtt,mct] [--quick]``
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from functools import partial
from pathlib import Path

from ._common import output_dir, provenance, run_parts, run_workload
from .public_swaps import SWAP_NAMES
from .speed import unrolled_does_not_fit, unrolled_estimate_gb, write_random_walk_buffer

#: modules the launcher provides itself (public_launcher.py stubs wandb)
PROVIDED_TO_PUBLIC_CODE = ("wandb",)
#: pip's name where it differs from the module's
PIP_NAMES = {"sklearn": "scikit-learn", "cv2": "opencv-python", "PIL": "pillow"}


def missing_modules(repo: Path, files: tuple[str, ...]) -> list[str]:
    """Top-level modules that ``files`` (paths inside ``repo``) import at module level and this
    interpreter cannot, the repository's own modules and the launcher's stubs excepted."""
    import re

    wanted: set[str] = set()
    for name in files:
        path = repo / name
        if path.is_file():
            for match in re.finditer(r"^(?:from|import)\s+([A-Za-z_]\w*)", path.read_text(errors="replace"), re.M):
                wanted.add(match.group(1))
    local = {p.stem for p in repo.glob("*.py")} | {p.name for p in repo.iterdir() if p.is_dir()}
    return sorted(m for m in wanted - local - set(PROVIDED_TO_PUBLIC_CODE) if importlib.util.find_spec(m) is None)


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


def launch_public(repo: Path, script: str, ipc: int, args: list[str], env: dict | None = None) -> dict:
    """Run ``script`` of the public checkout ``repo`` through ``public_launcher.py`` (with ``env``
    added to the environment: ``DD_CAPTURE_DIR``, ``DD_SWAP_SPEC``) and return its JSON line."""
    launcher = Path(__file__).resolve().parent / "public_launcher.py"
    proc = subprocess.run([sys.executable, str(launcher), str(repo), script, str(ipc), *args], capture_output=True,
                          text=True, timeout=7200, env={**os.environ, **(env or {})})
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


def run_ours(ipc: int, steps: int, iterations: int, buffers: Path, out: Path, mode: str = "unrolled") -> dict:
    result = run_workload("distill_iterations", "mtt", mode, "ConvNet", str(ipc), str(steps), str(iterations + 1),
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
    parser.add_argument("--mct-repo", type=Path, default=None,
                        help="a checkout of Zhong0x29a/MCT (distill_compressed.py, exps/trajectory_compression.py), "
                             "for --accuracy")
    parser.add_argument("--ipc", default=None,
                        help="distillation ipcs to time ('' for none; default 1,10, none with --accuracy)")
    parser.add_argument("--experts", action="store_true", help="also compare one epoch of expert training")
    parser.add_argument("--accuracy", action="store_true",
                        help="whole distillations side by side: public MCT vs ours, public MTT vs ours")
    parser.add_argument("--seeds", type=int, default=8, help="runs per program with --accuracy")
    parser.add_argument("--methods", default="mtt,mct", help="--accuracy: the methods compared (mtt, mct)")
    parser.add_argument("--swap", default="",
                        help=f"--accuracy: the ablation, comma-separated swaps ({', '.join(SWAP_NAMES)}): the "
                             "public program with that component of ours")
    parser.add_argument("--swap-runs", type=int, default=4, help="--accuracy: runs per swap")
    parser.add_argument("--hours", type=float, default=1.8,
                        help="--accuracy: no new step (a distillation or an evaluation) after this many hours")
    parser.add_argument("--quick", action="store_true",
                        help="--accuracy: tiny experts, 2 iterations, 1 network x 2 epochs (a smoke test)")
    parser.add_argument("--cache", default=None, help="--accuracy: the cache of runs (default: user cache)")
    parser.add_argument("--syn-steps", type=int, default=20)
    parser.add_argument("--iterations", type=int, default=6, help="timed iterations per run")
    parser.add_argument("--repeats", type=int, default=2, help="alternating runs of each program")
    parser.add_argument("--gradient-modes", default="unrolled",
                        help="our gradient modes to run against the public distill.py, comma-separated "
                             "(unrolled computes what the public code computes)")
    parser.add_argument("--memory-only", action="store_true",
                        help="one iteration per program, peak memory only (no time: for a shared CPU)")
    parser.add_argument("--out", default=None, help="folder for vs_public.json (default benchmarks/results)")
    args = parser.parse_args(argv)
    modes = [m for m in args.gradient_modes.split(",") if m]
    repo = args.public_repo.expanduser().resolve()
    missing = [name for name in ("distill.py", "utils.py", "networks.py", "reparam_module.py")
               if not (repo / name).is_file()]
    if missing:
        parser.error(f"{repo} is not a checkout of the public MTT code (missing {', '.join(missing)})")
    mct_repo = args.mct_repo.expanduser().resolve() if args.mct_repo else None
    methods = [m for m in args.methods.split(",") if m]
    swaps = [s for s in args.swap.split(",") if s]
    if args.accuracy and "mct" in methods and (mct_repo is None or not (mct_repo / "distill_compressed.py").is_file()
                                               or not (mct_repo / "exps" / "trajectory_compression.py").is_file()):
        parser.error("--accuracy needs --mct-repo pointing at a checkout of the public MCT code "
                     "(distill_compressed.py, exps/trajectory_compression.py)")
    # found now, not as a traceback from the first public run
    absent = set(missing_modules(repo, ("distill.py", "utils.py", "networks.py", "buffer.py")))
    if args.accuracy and "mct" in methods:
        absent |= set(missing_modules(mct_repo, ("distill_compressed.py", "utils.py", "convexify.py",
                                                 "exps/trajectory_compression.py")))
    if absent:
        parser.error(f"the public code imports {', '.join(sorted(absent))}, which {sys.executable} lacks "
                     f"(pip install {' '.join(sorted(PIP_NAMES.get(m, m) for m in absent))})")
    if set(methods) - {"mtt", "mct"} or not methods:
        parser.error(f"--methods takes mtt and/or mct (got {args.methods!r})")
    if set(swaps) - set(SWAP_NAMES):
        parser.error(f"--swap: unknown {', '.join(sorted(set(swaps) - set(SWAP_NAMES)))}; known: {', '.join(SWAP_NAMES)}")
    if args.seeds < 2 or args.swap_runs < 2:
        parser.error("--seeds and --swap-runs must be at least 2 (an interval needs two runs per program)")
    # no local paths in the results (provenance reads sys.argv)
    placeholders = {str(args.public_repo): "MTT_REPO", str(args.mct_repo): "MCT_REPO"}
    shown = []
    for a in (argv if argv is not None else sys.argv[1:]):
        key, eq, value = a.partition("=")
        if eq and key in ("--public-repo", "--mct-repo"):
            a = f"{key}={'MTT_REPO' if key == '--public-repo' else 'MCT_REPO'}"
        shown.append(placeholders.get(a, a))
    sys.argv[1:] = shown
    selected = [int(x) for x in (args.ipc if args.ipc is not None else ("" if args.accuracy else "1,10")).split(",")
                if x]

    def log(message: str) -> None:
        print(message, flush=True)

    # a memory-only measurement (shared CPU) is its own part: it never replaces a timed one
    suffix = f"-s{args.syn_steps}-memory" if args.memory_only else ""
    chosen = [f"ipc{ipc}{suffix}" for ipc in selected] + (["experts"] if args.experts else [])
    if not chosen and not args.accuracy:
        parser.error("nothing to measure: give --ipc, --experts and/or --accuracy")
    if chosen:
        time_and_memory(args, repo, modes, selected, suffix, chosen)
    if args.accuracy:
        from .parity import measure as measure_parity

        measure_parity({"mtt": repo, **({"mct": mct_repo} if mct_repo else {})}, methods, args.seeds, swaps,
                       args.swap_runs, args.hours, args.quick, args.cache, args.out, log)
    return 0


def time_and_memory(args, repo: Path, modes: list[str], selected: list[int], suffix: str, chosen: list[str]) -> None:
    """The timed (or memory-only) parts: one per ipc, and the expert epoch."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = fashion_mnist_root(tmp / "data")
        buffers = tmp / "buffers"
        write_random_walk_buffer(buffers, "ConvNet", epochs=10)

        def measure(ipc: int, quick: bool) -> dict:
            # "ours" is the unrolled gradient (what the public code computes); other modes are "ours MODE"
            programs = ["public"] + ["ours" if mode == "unrolled" else f"ours {mode}" for mode in modes]
            runs: dict[str, list[dict]] = {name: [] for name in programs}
            iterations = 0 if args.memory_only else args.iterations
            # the public code keeps every step's graph like unrolled: neither runs where that cannot fit
            too_big = unrolled_does_not_fit(unrolled_estimate_gb("ConvNet", ipc, args.syn_steps), "a full graph")
            skipped = {name: too_big for name in programs if too_big and name in ("public", "ours")}
            for name in skipped:
                print(f"ipc={ipc} {name}: skipped ({too_big})", flush=True)
            for repeat in range(1 if args.memory_only else args.repeats):
                for name in programs:
                    if name in skipped:
                        continue
                    if name == "public":
                        result = run_public(repo, ipc, args.syn_steps, iterations + 1, buffers, data)
                    else:
                        mode = name.partition(" ")[2] or "unrolled"
                        result = run_ours(ipc, args.syn_steps, iterations, buffers, tmp / "run", mode)
                    runs[name].append(result)
                    timing = "" if args.memory_only else f"median {statistics.median(result['seconds']):.2f} s/it, "
                    print(f"ipc={ipc} {name} run {repeat + 1}: {timing}peak {result['peak_rss_mb']:.0f} MB", flush=True)
            row = {"ipc": ipc, "syn_steps": args.syn_steps, "expert_epochs": 2, "model": "ConvNet",
                   "threads": os.environ.get("OMP_NUM_THREADS", "default"), "memory_only": args.memory_only}
            for name, results in runs.items():
                if name in skipped:
                    row[name] = {"skipped": skipped[name]}
                    continue
                row[name] = {"runs": len(results), "peak_rss_mb": max(r["peak_rss_mb"] for r in results)}
                seconds = [s for r in results for s in r["seconds"]]
                if seconds and not args.memory_only:
                    row[name].update(median_s=statistics.median(seconds), mean_s=statistics.fmean(seconds),
                                     min_s=min(seconds), max_s=max(seconds), iterations_timed=len(seconds))
            for name in programs[1:] if "public" not in skipped else ():
                if name in skipped:
                    continue
                suffix = name.partition(" ")[2]
                key = f"_{suffix}" if suffix else ""
                if not args.memory_only:
                    row[f"time_ratio{key}"] = row[name]["median_s"] / row["public"]["median_s"]
                row[f"memory_ratio{key}"] = row[name]["peak_rss_mb"] / row["public"]["peak_rss_mb"]
                timing = "" if args.memory_only else f"{row[name]['median_s']:.2f} s/it vs public " \
                    f"{row['public']['median_s']:.2f} ({row[f'time_ratio{key}']:.2f}x time), "
                print(f"ipc={ipc}: {name} {timing}{row[name]['peak_rss_mb']:.0f} MB vs public "
                      f"{row['public']['peak_rss_mb']:.0f} MB ({row[f'memory_ratio{key}']:.2f}x memory)", flush=True)
            return row

        # one part per ipc (and per syn_steps for memory-only parts): a later run of one part keeps every
        # other part of the file, timed or memory-only, with its provenance
        earlier = output_dir(args.out) / "vs_public.json"
        known = json.loads(earlier.read_text()).get("parts", {}) if earlier.exists() else {}
        parts = {**dict.fromkeys(known), **{f"ipc{ipc}{suffix}": partial(measure, ipc) for ipc in selected}}
        parts["experts"] = lambda quick: measure_experts(repo, data, buffers, args.repeats)
        # the 3-run side by side of an earlier version stays in vs_public.json as history (parity.json replaces it)
        parts["accuracy"] = None
        run_parts(output_dir(args.out) / "vs_public.json", parts, ",".join(chosen), False,
                  {"benchmark": "vs_public", **provenance()})


if __name__ == "__main__":
    sys.exit(main())
