"""Cross-architecture generalisation of the distilled sets of the convergence benchmark.

The final synthetic sets (seed 0) of MTT and MCT from ``convergence.py --profile P`` and a random
real subset of the same size are evaluated on several architectures with the same protocol
(``dd-harness eval`` underneath): the distillation architecture, the standard ConvNet (width
128), the CIFAR-style AlexNet / VGG-11 / ResNet-18 and timm models (MobileNetV3, ConvNeXt, ViT).
Results are written after every architecture; a rerun keeps the rows already written.

Usage: ``python -m benchmarks.cross_arch --profile cpu|quick [--out DIR]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ._common import components, output_dir, provenance, write_json

# (ipc, architecture, evaluation networks, epochs) in the order they run, cheapest first. On a
# 2-core CPU an ipc=10 set trains 10x more images per epoch and ResNet-18 / ViT cost ~10x a ConvNet
# step, so those get fewer networks, come last and ipc=10 skips the wide ConvNet. Rows already in the JSON
# (same ipc, architecture, networks and epochs) are kept, so an interrupted run resumes.
JOBS = {
    "quick": [(1, "ConvNetW16", 2, 5), (1, "timm:mobilenetv3_small_050", 2, 5)],
    "cpu": [(1, "ConvNetW32", 3, 300), (1, "ConvNet", 3, 300), (1, "AlexNet", 3, 300), (1, "VGG11", 3, 300),
            (1, "timm:mobilenetv3_small_050", 3, 300), (1, "timm:convnext_atto", 3, 300),
            (10, "ConvNetW32", 2, 200), (10, "timm:mobilenetv3_small_050", 2, 200),
            (1, "ResNet18", 2, 300), (1, "timm:vit_tiny_patch16_224", 2, 300), (10, "AlexNet", 2, 200)],
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=sorted(JOBS), default="cpu")
    parser.add_argument("--quick", action="store_true", help="same as --profile quick")
    parser.add_argument("--out", default=None)
    parser.add_argument("--cache", default=None, help="the convergence benchmark's cache folder")
    args = parser.parse_args(argv)
    from . import convergence
    from mct_plugin.harness.config import EvalSettings
    from mct_plugin.harness.eval.protocol import evaluate_set, random_real_subset
    from mct_plugin.harness.runtime.allocator import tune_allocator
    from mct_plugin.harness.eval.saved_set import load_synthetic

    tune_allocator()
    name = "quick" if args.quick else args.profile
    profile = convergence.PROFILES[name]
    root = Path(args.cache) if args.cache else convergence.cache_root(profile)
    out = output_dir(args.out)
    runs = root / "runs"
    jobs = JOBS[name]
    ipcs = sorted({ipc for ipc, *_ in jobs})
    if not all((runs / f"{m}_ipc{ipc}_seed0" / "images.pt").exists() for m in profile.methods for ipc in ipcs):
        if name != "quick":
            raise SystemExit(f"run 'python -m benchmarks.convergence --profile {name}' first (no runs in {runs})")
        convergence.main(["--profile", "quick", "--out", str(out), "--cache", str(root)])
    data = convergence.load_data(profile, None)
    sets_by_ipc = {}
    for ipc in ipcs:
        sets = {"random real subset": (*random_real_subset(data, ipc, seed=0), profile.ipcs[ipc].lr_teacher)}
        for method in profile.methods:
            sets[method.upper()] = load_synthetic(runs / f"{method}_ipc{ipc}_seed0")
        sets_by_ipc[ipc] = sets
    path = out / f"cross_arch_{name}.json"
    key = ("ipc", "model", "num_eval", "epoch_eval_train")
    done = json.loads(path.read_text())["rows"] if path.exists() and name != "quick" else []
    rows = []
    for ipc, model, nets, epochs in jobs:
        row = {"ipc": ipc, "model": model, "num_eval": nets, "epoch_eval_train": epochs}
        previous = next((r for r in done if all(r[k] == row[k] for k in key)), None)
        if previous:
            rows.append(previous)
            print(f"ipc={ipc} {model}: kept from {path}", flush=True)
            continue
        for label, (images, labels, lr) in sets_by_ipc[ipc].items():
            started = time.perf_counter()
            result = evaluate_set(images, labels, lr, data, model, EvalSettings(num_eval=nets, epoch_eval_train=epochs, seed=0),
                                  models=components().models)
            row[label] = {"mean": result.mean, "std": result.std, "accs": result.accuracies,
                          "seconds": time.perf_counter() - started}
            print(f"ipc={ipc} {model:28s} {label:20s} {result}%", flush=True)
        rows.append(row)
        write_json(path, {"benchmark": "cross_arch", "profile": name, **provenance(), "rows": rows})
    print(f"wrote {out / f'cross_arch_{name}.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
