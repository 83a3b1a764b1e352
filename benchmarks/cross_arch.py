"""Cross-architecture generalisation of the distilled sets of the convergence benchmark.

The final synthetic sets (seed 0) of MTT and MCT from ``convergence.py --profile P`` and a random
real subset of the same size are evaluated on several architectures with the same protocol
(``dd-harness eval`` underneath): the distillation architecture, the standard ConvNet (width
128), the CIFAR-style AlexNet / VGG-11 / ResNet-18 and timm models (ConvNeXt, MobileNetV3, ViT).

Usage: ``python benchmarks/cross_arch.py --profile cpu|quick [--out DIR]``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import output_dir, provenance, write_json  # noqa: E402

ARCHITECTURES = {
    "quick": {1: ["ConvNetW16", "timm:mobilenetv3_small_050"]},
    "cpu": {1: ["ConvNetW32", "ConvNet", "AlexNet", "VGG11", "ResNet18", "timm:convnext_atto",
                "timm:mobilenetv3_small_050", "timm:vit_tiny_patch16_224"],
            10: ["ConvNetW32", "ConvNet", "AlexNet", "timm:mobilenetv3_small_050"]},
}
# (networks, epochs) per architecture and set; ipc=10 trains 10x more images per epoch, so on a
# 2-core CPU it gets fewer networks and epochs
EVAL = {"quick": {1: (2, 5)}, "cpu": {1: (3, 300), 10: (2, 200)}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=sorted(ARCHITECTURES), default="cpu")
    parser.add_argument("--quick", action="store_true", help="same as --profile quick")
    parser.add_argument("--out", default=None)
    parser.add_argument("--cache", default=None, help="the convergence benchmark's cache folder")
    args = parser.parse_args(argv)
    import convergence
    from mct_plugin.harness.evaluate import EvalConfig, evaluate_set, random_real_subset
    from mct_plugin.harness.runtime import tune_allocator
    from mct_plugin.harness.synthetic import load_synthetic

    tune_allocator()
    name = "quick" if args.quick else args.profile
    profile = convergence.PROFILES[name]
    root = Path(args.cache) if args.cache else convergence.cache_root(profile)
    out = output_dir(args.out)
    runs = root / "runs"
    if not all((runs / f"{m}_ipc{ipc}_seed0" / "images.pt").exists() for m in profile.methods for ipc in ARCHITECTURES[name]):
        if name != "quick":
            raise SystemExit(f"run 'python benchmarks/convergence.py --profile {name}' first (no runs in {runs})")
        convergence.main(["--profile", "quick", "--out", str(out), "--cache", str(root)])
    data = convergence.load_data(profile, None)
    rows = []
    for ipc, architectures in ARCHITECTURES[name].items():
        nets, epochs = EVAL[name][ipc]
        sets = {"random real subset": (*random_real_subset(data, ipc, seed=0), profile.ipcs[ipc].lr_teacher)}
        for method in profile.methods:
            images, labels, lr = load_synthetic(runs / f"{method}_ipc{ipc}_seed0")
            sets[method.upper()] = (images, labels, lr)
        for model in architectures:
            row = {"ipc": ipc, "model": model, "num_eval": nets, "epoch_eval_train": epochs}
            for label, (images, labels, lr) in sets.items():
                started = time.perf_counter()
                result = evaluate_set(images, labels, lr, data, model,
                                      EvalConfig(num_eval=nets, epoch_eval_train=epochs, seed=0))
                row[label] = {"mean": result.mean, "std": result.std, "accs": result.accuracies,
                              "seconds": time.perf_counter() - started}
                print(f"ipc={ipc} {model:28s} {label:20s} {result}%", flush=True)
            rows.append(row)
            write_json(out / f"cross_arch_{name}.json", {"benchmark": "cross_arch", "profile": name,
                                                         **provenance(), "rows": rows})
    print(f"wrote {out / f'cross_arch_{name}.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
