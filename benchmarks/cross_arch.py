"""Cross-architecture generalisation of distilled sets.

``--profile long`` (the default; issue 20): the sets of the long-horizon study
(``long_horizon.py``): the final and the best set of every seed of MTT and of the default MCT,
each evaluated on ConvNet (width 128), AlexNet, VGG-11, ResNet-18 and two timm models (MobileNetV3,
ConvNeXt) with 5 networks (the seed's networks for every set: paired) trained with the set's own
learned step size. The public protocol trains 1000 epochs; ``--epochs`` (default 300) is what the CPU
allows, recorded per architecture. Reported: accuracy per set (in %, one per seed) and the paired
difference MCT - MTT per architecture with a 95% t-interval; ``results/cross_arch.json``. Every
(architecture, arm, seed, set) is a job cached under the long study's folder, so a rerun continues;
``--hours`` bounds a part, ``--workers 2`` evaluates two sets side by side. ``--profile long-quick``:
the long-quick study's sets, two small architectures, one network, two epochs.

``--profile cpu|quick`` (``--quick``): the earlier measurement, kept for its history: the final sets
(seed 0) of MTT and MCT from ``convergence.py --profile P`` and a random real subset on several
architectures (``cross_arch_P.json``); rows already written are kept when a run is repeated.

Usage: ``python -m benchmarks.cross_arch [--profile long|long-quick|cpu|quick] [--epochs 300] [--workers 2]
[--hours 1.8] [--out DIR]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from dataclasses import dataclass

from ._common import components, evaluation_record, output_dir, provenance, write_json
from ._jobs import add_part_options, run_jobs

# (ipc, architecture, evaluation networks, epochs) in the order they run, cheapest first. On a
# 2-core CPU an ipc=10 set trains 10x more images per epoch and ResNet-18 / ViT cost ~10x a ConvNet
# step, so those get fewer networks, come last and ipc=10 skips the wide ConvNet. Rows already in the JSON
# (same ipc, architecture, networks and epochs) are kept, so an interrupted run resumes.
JOBS = {
    "quick": [(1, "ConvNetW16", 2, 2), (1, "timm:mobilenetv3_small_050", 2, 2)],
    "cpu": [(1, "ConvNetW32", 3, 300), (1, "ConvNet", 3, 300), (1, "AlexNet", 3, 300), (1, "VGG11", 3, 300),
            (1, "timm:mobilenetv3_small_050", 3, 300), (1, "timm:convnext_atto", 3, 300),
            (10, "ConvNetW32", 2, 200), (10, "timm:mobilenetv3_small_050", 2, 200),
            (1, "ResNet18", 2, 300), (1, "timm:vit_tiny_patch16_224", 2, 300), (10, "AlexNet", 2, 200)],
}


@dataclass(frozen=True)
class LongProfile:
    """Cross-architecture evaluation of the long-horizon sets."""

    study: str  # the mct_study.STUDIES entry whose sets are evaluated
    architectures: tuple[str, ...]
    num_eval: int
    epochs: int


# cheapest first, so a part that stops early has whole architectures
LONG_PROFILES = {
    "long": LongProfile("long", ("ConvNet", "timm:mobilenetv3_small_050", "timm:convnext_atto", "VGG11", "AlexNet",
                                 "ResNet18"), num_eval=5, epochs=300),
    "long-quick": LongProfile("long-quick", ("ConvNetW16", "timm:mobilenetv3_small_050"), num_eval=1, epochs=2),
}
PUBLIC_EPOCHS = 1000  # the public protocol's epoch_eval_train


def job_path(root: Path, job: tuple[str, str, int, str, int, int]) -> Path:
    architecture, arm, seed, which, nets, epochs = job
    folder = architecture.replace(":", "_")
    return root / "cross_arch" / folder / f"{arm}_seed{seed}_{which}_{nets}x{epochs}.json"


def evaluate_job(study, root: Path, job: tuple[str, str, int, str, int, int], data=None) -> dict:
    """One set on one architecture (cached): (architecture, arm, seed, final|best, networks, epochs)."""
    from mct_plugin.harness.eval.saved_set import load_synthetic

    from .long_horizon import set_directory
    from .mct_study import load_data

    path = job_path(root, job)
    if path.exists():
        return json.loads(path.read_text())
    architecture, arm, seed, which, nets, epochs = job
    images, labels, lr = load_synthetic(set_directory(root, study, arm, seed, which))
    record = evaluation_record(images, labels, lr, data if data is not None else load_data(study), architecture,
                               nets, epochs, seed)
    write_json(path, record)
    return record


def long_jobs(study, root: Path, architectures: tuple[str, ...], nets: int, epochs: int) -> list[tuple]:
    """Every (architecture, arm, seed, set) of the finished long-horizon runs; a best set that is
    the final one is evaluated once (as ``final``)."""
    from .long_horizon import distinct_sets

    sets = distinct_sets(study, root)
    return [(architecture, *s, nets, epochs) for architecture in architectures for s in sets]


def long_payload(study, root: Path, architectures: tuple[str, ...], nets: int, epochs: int) -> dict:
    """The JSON: per architecture and arm, the final and the best set's accuracy per seed (in %),
    and the paired MCT - MTT difference."""
    from .long_horizon import ARM_NAMES, WHICH, best_is_final
    from mct_plugin.harness.study.stats import paired_interval

    result = {}
    for architecture in architectures:
        arms, per_seed = {}, {}
        for arm in ARM_NAMES:
            values: dict[str, dict[int, float]] = {which: {} for which in WHICH}
            for seed in study.seeds:
                final = job_path(root, (architecture, arm, seed, "final", nets, epochs))
                best = job_path(root, (architecture, arm, seed, "best", nets, epochs))
                if not final.exists():
                    continue
                values["final"][seed] = 100 * json.loads(final.read_text())["mean"]
                if best.exists():
                    values["best"][seed] = 100 * json.loads(best.read_text())["mean"]
                elif best_is_final(root, study, arm, seed):  # evaluated once, as the final set
                    values["best"][seed] = values["final"][seed]
            seeds = sorted(values["final"])
            arms[arm] = {"seeds": seeds, **{which: [values[which].get(s) for s in seeds] for which in WHICH}}
            per_seed[arm] = values
        paired = {}
        for which in WHICH:
            common = sorted(set(per_seed["mtt"][which]) & set(per_seed["mct"][which]))
            if common:
                paired[which] = {**paired_interval([per_seed["mct"][which][s] - per_seed["mtt"][which][s]
                                                    for s in common]), "seeds": common}
        result[architecture] = {"num_eval": nets, "epochs": epochs, "arms": arms, "paired_mct_minus_mtt": paired}
    return result


def long_horizon_sets(args, log) -> int:
    from .mct_study import STUDIES, load_data, study_root

    profile = LONG_PROFILES[args.profile]
    study = STUDIES[profile.study]
    root = study_root(study, args.cache)
    architectures = tuple(args.architectures.split(",")) if args.architectures else profile.architectures
    nets = args.num_eval or profile.num_eval
    epochs = args.epochs or profile.epochs
    quick = args.profile.endswith("quick")
    if args.job:
        architecture, arm, seed, which, nets, epochs = args.job.split(",")
        record = evaluate_job(study, root, (architecture, arm, int(seed), which, int(nets), int(epochs)))
        log(f"{architecture} {arm} seed {seed} {which}: {100 * record['mean']:.2f}%")
        return 0
    if quick and not (root / study.runs_folder).exists():
        from . import long_horizon

        long_horizon.main(["--quick", "--cache", str(root), "--out", str(output_dir(args.out))])
    jobs = long_jobs(study, root, architectures, nets, epochs)
    if not jobs:
        raise SystemExit(f"no finished long-horizon runs in {root / study.runs_folder}: run "
                         f"'python -m benchmarks.long_horizon' first")
    complete = True
    if quick:
        data = load_data(study)
        for job in jobs:
            evaluate_job(study, root, job, data)
    else:
        command = lambda job: [sys.executable, "-m", "benchmarks.cross_arch", "--profile", args.profile,  # noqa: E731
                               "--cache", str(root), "--job", ",".join(map(str, job))]
        complete = run_jobs(jobs, command, lambda job: job_path(root, job).exists(), args.workers,
                            time.time() + 3600 * args.hours, log)
    payload = {"benchmark": "cross_arch", "profile": args.profile, "quick": quick, "ipc": 1,
               "iterations": study.plans[1].iterations, "source": f"long_horizon ({study.name} study)",
               "public_epochs": PUBLIC_EPOCHS, "complete": complete,
               "pending": sorted({job[0] for job in jobs if not job_path(root, job).exists()},
                                 key=architectures.index), **provenance(),
               "architectures": long_payload(study, root, architectures, nets, epochs)}
    name = "cross_arch_long_quick.json" if quick else "cross_arch.json"
    write_json(output_dir(args.out) / name, payload)
    for architecture, row in payload["architectures"].items():
        for which, interval in row["paired_mct_minus_mtt"].items():
            if interval["low"] is not None:
                log(f"{architecture:28s} {which:5s} MCT - MTT {interval['mean']:+.2f} "
                    f"[{interval['low']:+.2f}, {interval['high']:+.2f}] ({interval['n']} seeds)")
    log(f"wrote {output_dir(args.out) / name}" + ("" if complete else " (not finished: run the same command again)"))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=sorted({*JOBS, *LONG_PROFILES}), default="long")
    parser.add_argument("--quick", action="store_true", help="same as --profile quick (the convergence sets)")
    add_part_options(parser, "the long study's folder (long profiles) or the convergence benchmark's (cpu, quick)")
    parser.add_argument("--architectures", default=None, help="long profiles: comma-separated architectures")
    parser.add_argument("--num-eval", type=int, default=None, help="long profiles: networks per set (default 5)")
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"long profiles: epochs per network (default 300; the public protocol: {PUBLIC_EPOCHS})")
    parser.add_argument("--job", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    from mct_plugin.harness.runtime.allocator import tune_allocator

    tune_allocator()
    if args.quick:
        args.profile = "quick"
    if args.profile in LONG_PROFILES:
        from .mct_study import log

        return long_horizon_sets(args, log)
    return convergence_sets(args)


def convergence_sets(args) -> int:
    """The earlier profiles: the convergence benchmark's seed-0 sets and a random subset."""
    from . import convergence
    from mct_plugin.harness.config import EvalSettings
    from mct_plugin.harness.eval.protocol import evaluate_set, random_real_subset
    from mct_plugin.harness.eval.saved_set import load_synthetic

    name = args.profile
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
