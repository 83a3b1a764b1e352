"""``dd-harness distill``: distil a synthetic set by trajectory matching."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..config import DistillConfig
from ..distill.loop import Distillation
from ..errors import ConfigError
from ..io.rundir import RunDirectory
from ..plugins.components import Components, current
from ..runtime import distributed
from ._options import add_command_options, build_config

log = logging.getLogger("mct_plugin")


def build(sub, components: Components) -> None:
    p = sub.add_parser("distill", help="distil a synthetic set by trajectory matching",
                       description="Distil a synthetic dataset by matching expert trajectories. The matcher "
                                   "(--matcher), sampler (--sampler) and recipes (--recipe) come from plugins; see "
                                   "'dd-harness plugins' and 'dd-harness recipes'. Values: defaults < --recipe < "
                                   "--config < the command line.")
    p.add_argument("--recipe", default=None, metavar="NAME", help="start from a named recipe (see 'dd-harness recipes')")
    add_command_options(p, "distill", DistillConfig, components,
                        choices={"gradient_mode": components.gradient_modes.names()})
    p.add_argument("--overwrite", action="store_true", help="replace the results in --out")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its checkpoint, with the options saved in its config.json")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=run)


def recipe_layers(name: str | None, components: Components) -> tuple[list, dict]:
    """The recipe's option values as a layer, and the fields that record it in config.json."""
    if not name:
        return [], {}
    recipe = components.recipes.get(name)
    if recipe.command != "distill":
        raise ConfigError(f"recipe {name} is for 'dd-harness {recipe.command}', not for distill")
    return [(recipe.where, recipe.options)], {"recipe": recipe.name, "recipe_version": recipe.version}


def resolve(args: argparse.Namespace, components: Components) -> DistillConfig:
    """The run's config from the recipe, the --config file and the command line."""
    spec = args.command_options
    name = args.recipe
    if name is None and args.config:
        from ..options import read_config_file

        name = read_config_file(args.config).get("recipe")
    layers, recorded = recipe_layers(name, components)
    config, _ = build_config(spec, args, layers, **recorded)
    return config


def run(args: argparse.Namespace) -> int:
    components = current()
    config = resolve(args, components)
    args.out = config.out  # for the interruption message
    if args.resume and (Path(config.out).expanduser() / "config.json").is_file():
        # a resumed run continues with its own options, whatever else the command line says
        saved = RunDirectory(config.out).read_config()
        config = DistillConfig.from_dict({**saved, "out": config.out}, where=str(Path(config.out) / "config.json"))
    run = Distillation(config, components=components, overwrite=args.overwrite, resume=args.resume,
                       show_progress=not args.quiet, report=log.info)
    result = run.run()
    if not distributed.context().is_main:
        return 0
    if result.final_eval is not None:
        log.info("final accuracy (%s, %d networks): %s%%", config.model, len(result.final_eval.accuracies),
                 result.final_eval)
    print(result.run_dir)
    return 0
