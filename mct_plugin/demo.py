"""``dd-harness demo``: the end-to-end job of the README, as a small plugin command.

On Fashion-MNIST it trains a few small experts (cached under the user cache directory, so a
rerun skips them), distils one image per class with the chosen matcher (MTT by default),
evaluates the distilled set and (during the run) a random real subset of the same size under
the same protocol, and prints one table. Sized for a 2-core CPU: ConvNet of width 32, experts on a
10,000-image class-balanced subset, a few hundred distillation iterations.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from mct_plugin.harness.api import add_options, hookimpl, option

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoSettings:
    model: str = "ConvNetW32"
    expert_subset: int = 10_000
    num_experts: int = 4
    train_epochs: int = 8
    ipc: int = 1
    syn_steps: int = 20
    expert_epochs: int = 2
    max_start_epoch: int = 5
    iterations: int = 300
    eval_it: int = 150
    lr_img: float = 1000.0
    num_eval: int = 5
    epoch_eval_train: int = 300
    seed: int = 0


def demo_cache(cache: str | None) -> Path:
    from mct_plugin.harness.api import cache_dir

    return Path(cache).expanduser() if cache else cache_dir() / "demo"


def run_demo(components, cache: str | None = None, out: str = "runs/demo", data_path: str | None = None, matcher: str = "mtt",
             overwrite: bool = False,
             settings: DemoSettings = DemoSettings(), show_progress: bool = True,
             report: Callable[[str], None] = log.info) -> str:
    """Run the demo with ``components`` (``build_components()``); return the printed table (Markdown)."""
    from mct_plugin.harness.api import (DistillConfig, Distillation, ExpertConfig, RunDirectory, load_dataset,
                                        replay_buffer_files, train_experts)

    s = settings
    RunDirectory(out).check_available(overwrite=overwrite, resume=False)  # before minutes of work
    started = time.perf_counter()
    data = load_dataset(components.datasets.get("FashionMNIST"), data_path)
    report(f"Fashion-MNIST: {len(data.train_images)} training / {len(data.test_images)} test images from {data.source}")
    buffers = demo_cache(cache) / "buffers"
    expert_config = ExpertConfig(model=s.model, num_experts=s.num_experts, train_epochs=s.train_epochs,
                                 buffer_path=str(buffers), subset=s.expert_subset, seed=s.seed)
    expert_dir = expert_config.output_dir(components.datasets)
    existing = replay_buffer_files(expert_dir)
    if existing and not (expert_dir / ".experts_run.json").exists():
        report(f"using {len(existing)} cached expert file(s) in {expert_dir}")
    else:
        report(f"training {s.num_experts} experts ({s.model}, {s.train_epochs} epochs on {s.expert_subset} images)")
        result = train_experts(expert_config, data=data.train_subset(s.expert_subset, seed=s.seed),
                               components=components, show_progress=show_progress)
        accs = [r.final_test_acc for r in result.records]
        if accs:
            report(f"experts: final test accuracy {100 * sum(accs) / len(accs):.2f}% on average")
    config = DistillConfig(model=s.model, matcher=matcher, buffer_path=str(buffers), out=out, ipc=s.ipc,
                           syn_steps=s.syn_steps, expert_epochs=s.expert_epochs, max_start_epoch=s.max_start_epoch,
                           iterations=s.iterations, eval_it=s.eval_it, lr_img=s.lr_img, num_eval=s.num_eval,
                           epoch_eval_train=s.epoch_eval_train, seed=s.seed)
    report(f"distilling {s.ipc} image per class with {matcher} for {s.iterations} iterations")
    run = Distillation(config, components=components, data=data, overwrite=overwrite, show_progress=show_progress, report=report).run()
    random = run.random_subset  # trained by the run at its first evaluation (same protocol, same network seeds)
    distilled = run.final_eval
    minutes = (time.perf_counter() - started) / 60
    verdict = "beats" if distilled.mean > random.mean else "does NOT beat"
    return "\n".join([
        f"Fashion-MNIST, {s.ipc} image per class, {s.model}, test accuracy over {s.num_eval} networks:",
        "",
        "| training set | images | test accuracy (%) |",
        "|---|---|---|",
        f"| random real subset | {len(run.synthetic.images)} | {random} |",
        f"| distilled ({matcher}) | {len(run.synthetic.images)} | {distilled} |",
        "",
        f"The distilled set {verdict} the random subset by {100 * (distilled.mean - random.mean):.2f} points "
        f"({minutes:.1f} min). Images: {run.run_dir / 'synthetic.png'}; curves: {run.run_dir / 'curves.png'}.",
    ])


@dataclass(frozen=True)
class DemoOptions:
    """The options of ``dd-harness demo`` (also accepted in a ``--config`` file)."""

    cache: str | None = option(None, "folder for the cached demo experts (default: the user cache)", metavar="DIR")
    out: str = option("runs/demo", "run directory", metavar="DIR")
    overwrite: bool = option(False, "replace an earlier demo run in --out")
    data_path: str | None = option(None, "folder with the Fashion-MNIST files (default: the Debian package, then "
                                         "the cache)", metavar="DIR")
    matcher: str = option("mtt", "trajectory matcher (try mct)")


def _cmd_demo(args, components) -> int:
    from mct_plugin.harness.api import options_from_command_line

    o = options_from_command_line(DemoOptions, args, "demo")
    print(run_demo(components, cache=o.cache, out=o.out, data_path=o.data_path, matcher=o.matcher,
                   overwrite=o.overwrite, show_progress=not args.quiet, report=logging.getLogger("mct_plugin").info))
    return 0


@hookimpl
def dd_register_commands(subparsers):
    p = subparsers.add_parser("demo", help="end-to-end demo on Fashion-MNIST: experts, distillation, evaluation",
                              description="Train a few small experts (cached), distil one image per class and compare "
                                          "the distilled set with a random real subset of the same size.")
    add_options(p, DemoOptions, config_file=True)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(handler=_cmd_demo)
