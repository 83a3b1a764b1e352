"""``dd-harness demo``: the end-to-end job of the README, as a small plugin command.

On Fashion-MNIST it trains a few small experts (cached under the user cache directory, so a
rerun skips them), distils one image per class with the chosen matcher (MTT by default),
evaluates the distilled set and (during the run) a random real subset of the same size under
the same protocol, and prints one table. Its options are the recipe ``demo/fashionmnist-ipc1``
(``recipes/``, shown by ``dd-harness recipes demo/fashionmnist-ipc1``; sized for a 2-core CPU):
its ``experts`` section makes the experts and its ``options`` the distillation.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from mct_plugin.harness.api import add_options, hookimpl, option, recipes_in

log = logging.getLogger(__name__)

RECIPE = "demo/fashionmnist-ipc1"


@hookimpl
def dd_register_recipes():
    return recipes_in(Path(__file__).parent / "recipes")


def demo_cache(cache: str | None) -> Path:
    from mct_plugin.harness.api import cache_dir

    return Path(cache).expanduser() if cache else cache_dir() / "demo"


def cached_experts(directory: Path) -> int:
    """How many experts the replay buffers in ``directory`` hold."""
    from mct_plugin.harness.api import load_replay_buffer, replay_buffer_files

    return sum(len(load_replay_buffer(path)) for path in replay_buffer_files(directory))


def run_demo(components, cache: str | None = None, out: str = "runs/demo", data_path: str | None = None,
             matcher: str | None = None, overwrite: bool = False, show_progress: bool = True,
             report: Callable[[str], None] = log.info) -> str:
    """Run the demo with ``components`` (``build_components()``, which hold its recipe), with the
    recipe's matcher unless ``matcher`` names another; return the printed table (Markdown)."""
    from mct_plugin.harness.api import DistillConfig, Distillation, ExpertConfig, RunDirectory, load_dataset, train_experts

    recipe = components.recipes.get(RECIPE)
    RunDirectory(out).check_available(overwrite=overwrite, resume=False)  # before minutes of work
    started = time.perf_counter()
    buffers = demo_cache(cache) / "buffers"
    experts = ExpertConfig.from_dict({**recipe.expert_options(), "buffer_path": str(buffers)}, where=recipe.where)
    config = DistillConfig.from_dict({**recipe.options, **({"matcher": matcher} if matcher else {}),
                                      "buffer_path": str(buffers), "out": out},
                                     where=recipe.where).replace(recipe=recipe.name, recipe_version=recipe.version)
    data = load_dataset(components.datasets.get(config.dataset), data_path)
    report(f"Fashion-MNIST: {len(data.train_images)} training / {len(data.test_images)} test images from {data.source}")
    expert_dir = experts.output_dir(components.datasets)
    found = cached_experts(expert_dir)
    if found >= experts.num_experts:
        report(f"using {found} cached experts in {expert_dir}")
    else:
        report(f"training {experts.num_experts} experts ({experts.model}, {experts.train_epochs} epochs on "
               f"{experts.subset} images)")
        result = train_experts(experts, data=data.train_subset(experts.subset, seed=experts.seed),
                               components=components, show_progress=show_progress)
        accs = [r.final_test_acc for r in result.records]
        if accs:
            report(f"experts: final test accuracy {100 * sum(accs) / len(accs):.2f}% on average")
    report(f"distilling {config.ipc} image per class with {config.matcher} for {config.iterations} iterations")
    run = Distillation(config, components=components, data=data, overwrite=overwrite, show_progress=show_progress, report=report).run()
    random = run.random_subset  # trained by the run at its first evaluation (same protocol, same network seeds)
    distilled = run.final_eval
    minutes = (time.perf_counter() - started) / 60
    verdict = "beats" if distilled.mean > random.mean else "does NOT beat"
    return "\n".join([
        f"Fashion-MNIST, {config.ipc} image per class, {config.model}, test accuracy over {config.num_eval} networks:",
        "",
        "| training set | images | test accuracy (%) |",
        "|---|---|---|",
        f"| random real subset | {len(run.synthetic.images)} | {random} |",
        f"| distilled ({config.matcher}) | {len(run.synthetic.images)} | {distilled} |",
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
    matcher: str | None = option(None, "trajectory matcher (default: the recipe's, mtt; try mct)")


def _cmd_demo(args, components) -> int:
    from mct_plugin.harness.api import options_from_command_line

    o = options_from_command_line(DemoOptions, args, "demo")
    print(run_demo(components, cache=o.cache, out=o.out, data_path=o.data_path, matcher=o.matcher,
                   overwrite=o.overwrite, show_progress=not args.quiet, report=logging.getLogger("mct_plugin").info))
    return 0


@hookimpl
def dd_register_commands(subparsers):
    p = subparsers.add_parser("demo", help="end-to-end demo on Fashion-MNIST: experts, distillation, evaluation",
                              description=f"Train a few small experts (cached), distil one image per class and "
                                          f"compare the distilled set with a random real subset of the same size, "
                                          f"with the options of the recipe {RECIPE} (see 'dd-harness recipes {RECIPE}').")
    add_options(p, DemoOptions, config_file=True)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(handler=_cmd_demo)
