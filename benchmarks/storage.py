"""Storage: bytes of MTT buffers vs MCT files, converter throughput and memory.

It writes a 50-epoch MTT buffer of ConvNet (width 128) experts, >= 500 MB split
over two files (random-walk trajectories: file sizes do not depend on the values), and converts it
with ``dd-harness convert --to mct`` at P=2 / P=4 and float32 / float16 / bfloat16, each in a fresh
process: output bytes, ratio to MTT, seconds, MB/s and peak RSS (to show that conversion streams
one source file at a time).

Whether compact storage costs accuracy (MCT from P=2 and P=4 waypoints of the same experts) is a
study: ``dd-harness study run benchmarks/studies/storage-accuracy.yaml``.

Usage: ``python -m benchmarks.storage [--quick] [--out DIR]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from ._common import output_dir, provenance, random_walk_trajectory, run_parts, run_workload

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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    from mct_plugin.harness.runtime.allocator import tune_allocator

    tune_allocator()
    out = output_dir(args.out)
    payload = {"benchmark": "storage", "quick": args.quick, **provenance()}
    run_parts(out / "storage.json", {"sizes": bench_sizes}, "sizes", args.quick, payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
