"""Storage: bytes of MTT buffers vs MCT files, converter throughput and memory, and accuracy.

Part 1 (``sizes``) writes a 50-epoch MTT buffer of ConvNet (width 128) experts, >= 500 MB split
over two files (random-walk trajectories: file sizes do not depend on the values), and converts it
with ``dd-harness convert --to mct`` at P=2 / P=4 and float32 / float16 / bfloat16, each in a fresh
process: output bytes, ratio to MTT, seconds, MB/s and peak RSS (to show that conversion streams
one source file at a time).

Part 2 (``accuracy``) asks whether compact storage costs accuracy: the real experts of the
convergence benchmark's ``cpu`` profile are converted with each setting and an MCT distillation
(ipc=1, same seed and budget) runs from each; the distilled sets are evaluated with 3 networks.

Usage: ``python -m benchmarks.storage [--quick] [--only sizes,accuracy] [--out DIR]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from ._common import components, output_dir, provenance, random_walk_trajectory, run_parts, run_workload

SETTINGS = [(2, "float32"), (4, "float32"), (2, "float16"), (2, "bfloat16"), (4, "float16")]



def write_buffers(directory: Path, model: str, epochs: int, experts_per_file: int, files: int) -> list[Path]:
    from mct_plugin.harness.experts.buffers import save_replay_buffer

    paths = []
    for f in range(files):
        trajectories = [random_walk_trajectory(model, epochs, seed=f * 100 + e) for e in range(experts_per_file)]
        paths.append(save_replay_buffer(trajectories, directory / f"replay_buffer_{f}.pt"))
        del trajectories
    return paths


def bench_sizes(quick: bool) -> dict:
    model, epochs, per_file, files = ("ConvNetW16", 10, 2, 2) if quick else ("ConvNet", 50, 4, 2)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "FashionMNIST" / model
        paths = write_buffers(source, model, epochs, per_file, files)
        total = sum(p.stat().st_size for p in paths)
        largest = max(p.stat().st_size for p in paths)
        print(f"MTT buffer: {total / 1e6:.1f} MB in {files} files ({per_file} experts x {epochs + 1} checkpoints each)",
              flush=True)
        baseline = run_workload("imports_only", in_process=quick)["peak_rss_mb"]
        for waypoints, dtype in SETTINGS[: 2 if quick else None]:
            out = Path(tmp) / f"mct_p{waypoints}_{dtype}"
            result = run_workload("convert", str(source), "--out", str(out), "--waypoints", str(waypoints),
                                  "--dtype", dtype, in_process=quick)
            written = sum(p.stat().st_size for p in out.glob("*.mct.safetensors"))
            row = {"waypoints": waypoints, "dtype": dtype, "mct_bytes": written, "mtt_bytes": total,
                   "ratio": written / total, "expected_ratio_P_over_E1": waypoints / (epochs + 1),
                   "seconds": result["seconds"], "mb_per_s": total / 1e6 / result["seconds"],
                   "peak_rss_mb": result["peak_rss_mb"], "baseline_rss_mb": baseline,
                   "largest_source_mb": largest / 1e6}
            rows.append(row)
            print(f"P={waypoints} {dtype}: {written / 1e6:.2f} MB = {100 * row['ratio']:.2f}% of MTT, "
                  f"{row['mb_per_s']:.0f} MB/s, peak RSS {row['peak_rss_mb']:.0f} MB "
                  f"({row['peak_rss_mb'] - baseline:.0f} MB above the {baseline:.0f} MB of the imports)", flush=True)
    return {"model": model, "epochs": epochs, "experts": per_file * files, "files": files, "mtt_bytes": total,
            "rows": rows}


def bench_accuracy(quick: bool) -> dict:
    from mct_plugin.harness.config import DistillConfig
    from mct_plugin.harness.distill import Distillation
    from mct_plugin.harness.io.paths import cache_dir

    from . import convergence

    profile = convergence.PROFILES["quick" if quick else "cpu"]
    root = cache_dir() / "benchmarks" / f"storage_{profile.name}"
    root.mkdir(parents=True, exist_ok=True)
    data = convergence.load_data(profile, None)
    experts_root = convergence.cache_root(profile)
    buffers = convergence.ensure_experts(profile, data, experts_root if not quick else root, print)
    source = buffers / "FashionMNIST" / profile.model
    settings = SETTINGS[:2] if quick else SETTINGS[:4]
    iterations, eval_nets, epochs = (4, 2, 10) if quick else (300, 3, 300)
    ipc = 1
    rows = []
    for waypoints, dtype in settings:
        out = root / f"mct_p{waypoints}_{dtype}"
        converted = run_workload("convert", str(source), "--out", str(out), "--waypoints", str(waypoints),
                                 "--dtype", dtype, in_process=quick)
        if converted["exit"] != 0:
            raise RuntimeError(f"conversion of {source} failed")
        s = profile.ipcs[ipc]
        config = DistillConfig(dataset=profile.dataset, model=profile.model, matcher="mct", buffer_path=str(out),
                               out=str(root / f"run_p{waypoints}_{dtype}"), ipc=ipc, syn_steps=s.syn_steps,
                               expert_epochs=s.expert_epochs, max_start_epoch=s.max_start_epoch, lr_img=s.lr_img,
                               lr_lr=s.lr_lr, iterations=iterations, eval_it=iterations, num_eval=eval_nets,
                               epoch_eval_train=epochs, seed=0)
        started = time.perf_counter()
        result = Distillation(config, components=components(), data=data, overwrite=True, show_progress=False).run()
        bytes_ = sum(p.stat().st_size for p in out.glob("*.mct.safetensors"))
        rows.append({"waypoints": waypoints, "dtype": dtype, "bytes": bytes_, "accuracy_mean": result.final_eval.mean,
                     "accuracy_std": result.final_eval.std, "accs": result.final_eval.accuracies,
                     "seconds": time.perf_counter() - started})
        print(f"P={waypoints} {dtype}: {bytes_ / 1e6:.3f} MB, MCT ipc=1 after {iterations} iterations: "
              f"{result.final_eval}%", flush=True)
    mtt_bytes = sum(p.stat().st_size for p in source.glob("replay_buffer_*.pt"))
    return {"profile": profile.name, "ipc": ipc, "iterations": iterations, "num_eval": eval_nets,
            "epoch_eval_train": epochs, "mtt_bytes": mtt_bytes, "rows": rows}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="sizes,accuracy")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    from mct_plugin.harness.runtime.allocator import tune_allocator

    tune_allocator()
    out = output_dir(args.out)
    payload = {"benchmark": "storage", "quick": args.quick, **provenance()}
    run_parts(out / "storage.json", {"sizes": bench_sizes, "accuracy": bench_accuracy}, args.only, args.quick, payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
