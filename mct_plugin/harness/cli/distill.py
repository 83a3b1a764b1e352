"""``dd-harness distill``: distil a synthetic set by trajectory matching."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..config import DistillConfig
from ..constants import AUTO_GRADIENT_MODE
from ..distill.resume import PATH_OPTIONS, absolute
from ..errors import ConfigError, RunDirectoryError
from ..io.rundir import CHECKPOINT, RunDirectory
from ..components import Components
from ..options import read_config_file
from ._options import add_command_options, build_config, coerce_layer, given_on_command_line

log = logging.getLogger("mct_plugin")


def build(sub, components: Components) -> None:
    p = sub.add_parser("distill", help="distil a synthetic set by trajectory matching",
                       description="Distil a synthetic dataset by matching expert trajectories. The matcher "
                                   "(--matcher), sampler (--sampler) and recipes (--recipe) come from plugins; see "
                                   "'dd-harness plugins' and 'dd-harness recipes'. Values: defaults < --recipe < "
                                   "--config < the command line.")
    p.add_argument("--recipe", default=None, metavar="NAME", help="start from a named recipe (see 'dd-harness recipes')")
    add_command_options(p, "distill", DistillConfig, components,
                        choices={"gradient_mode": [AUTO_GRADIENT_MODE, *components.gradient_modes.names(),
                                                   *components.gradient_modes.aliases()]})
    p.add_argument("--overwrite", action="store_true", help="replace the results in --out")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its checkpoint, with the options saved in its config.json")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=run, interrupted=interrupted)


def interrupted(args: argparse.Namespace) -> str:
    """How to continue a run that was interrupted after writing its checkpoint (else nothing)."""
    out = getattr(args, "out", None)
    if out is not None and RunDirectory(out).file(CHECKPOINT).is_file():
        return f"continue from the last checkpoint with: dd-harness distill --resume --out {out}"
    return ""


def recipe_layers(name: str | None, components: Components) -> tuple[list, dict]:
    """The recipe's option values as a layer, and the fields that record it in config.json."""
    if not name:
        return [], {}
    recipe = components.recipes.get(name)
    if recipe.command != "distill":
        raise ConfigError(f"recipe {name} is for 'dd-harness {recipe.command}', not for distill")
    return [(recipe.where, recipe.options)], {"recipe": recipe.name, "recipe_version": recipe.version}


def absolute_paths(config: DistillConfig) -> DistillConfig:
    """Paths as absolute paths, so that config.json still points at the data from another folder."""
    return config.replace(**{name: absolute(value) for name in PATH_OPTIONS if (value := getattr(config, name))})


def requested(args: argparse.Namespace, components: Components) -> tuple[list, dict]:
    """The layers below the command line (recipe, --config file) and the fields that record the recipe."""
    name = args.recipe
    if name is None and args.config:
        from ..options import read_config_file

        name = read_config_file(args.config).get("recipe")
    return recipe_layers(name, components)


def resolve(args: argparse.Namespace, components: Components) -> DistillConfig:
    """The run's config from the recipe, the --config file and the command line."""
    layers, recorded = requested(args, components)
    config, _ = build_config(args.command_options, args, layers, **recorded)
    return absolute_paths(config)


def resume_config(args: argparse.Namespace, components: Components, out: Path) -> DistillConfig:
    """The saved config of the run in ``out`` with every option given (on the command line, in
    --config or through --recipe) on top; :class:`Distillation` decides whether the resume may
    change them (:mod:`mct_plugin.harness.distill.resume`), for the CLI as for any caller."""
    spec = args.command_options
    saved = RunDirectory(out).read_config()
    if not isinstance(saved, dict):
        raise RunDirectoryError(f"{out / 'config.json'} does not hold a mapping of options")
    base = DistillConfig.from_dict({**saved, "out": str(out)}, where=str(out / "config.json"))
    layers, _ = requested(args, components)
    given: dict = {}
    for where, values in layers:
        given.update(coerce_layer(spec, values, where))
    if args.config:
        given.update(coerce_layer(spec, read_config_file(args.config), str(args.config)))
    given.update(given_on_command_line(spec, args))
    given.pop("out", None)
    given = {name: absolute(value) if name in PATH_OPTIONS and value is not None else value
             for name, value in given.items()}
    harness = {name: value for name, value in given.items() if name in spec.harness_names()}
    plugin = {name: value for name, value in given.items() if name not in harness}
    return base.replace(**harness, plugin_options={**base.plugin_options, **plugin})


def run(args: argparse.Namespace, components: Components) -> int:
    from ..distill.loop import Distillation
    from ..runtime.distributed import process_group

    config = resolve(args, components)
    args.out = config.out  # for the interruption message
    if args.resume and (Path(config.out) / "config.json").is_file():
        config = resume_config(args, components, Path(config.out))
    with process_group() as dist:
        run = Distillation(config, components=components, overwrite=args.overwrite, resume=args.resume,
                           show_progress=not args.quiet, report=log.info, dist=dist)
        result = run.run()  # its last log line gives the final and the best set's accuracy
    if not dist.is_main:
        return 0
    print(result.run_dir)
    return 0
