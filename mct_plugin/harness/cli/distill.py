"""``dd-harness distill``: distil a synthetic set by trajectory matching."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..command_options import OptionLayer, resolve_options
from ..components import Components
from ..config import DistillConfig
from ..distill.resume import PATH_OPTIONS, RecordedExperts
from ..errors import RunDirectoryError
from ..io.rundir import CHECKPOINT, RunDirectory
from ._options import add_command_options, command_layers

log = logging.getLogger("mct_plugin")


def build(sub, components: Components) -> None:
    p = sub.add_parser("distill", help="distil a synthetic set by trajectory matching",
                       description="Distil a synthetic dataset by matching expert trajectories. The matcher "
                                   "(--matcher), sampler (--sampler) and recipes (--recipe) come from plugins; see "
                                   "'dd-harness plugins' and 'dd-harness recipes'. Values: defaults < --recipe < "
                                   "--config < the command line.")
    p.add_argument("--recipe", default=None, metavar="NAME|FILE",
                   help="start from a named recipe (see 'dd-harness recipes'), or a recipe file (.yaml), e.g. the one "
                        "a study's search exported")
    add_command_options(p, "distill", DistillConfig, components, absolute_paths=PATH_OPTIONS,
                        choices={"gradient_mode": [*components.gradient_modes.names(),
                                                   *components.gradient_modes.aliases()]})
    p.add_argument("--overwrite", action="store_true", help="replace the results in --out")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its checkpoint, with the options saved in its config.json")
    p.add_argument("--other-experts", action="store_true",
                   help="with --config RUN/config.json: run with the expert files in --buffer-path even where they "
                        "are not those the run recorded (by default such a run is refused, naming the files)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=run, interrupted=interrupted)


def interrupted(args: argparse.Namespace) -> str:
    """How to continue a run that was interrupted after writing its checkpoint (else nothing)."""
    out = getattr(args, "out", None)
    if out is not None and RunDirectory(out).file(CHECKPOINT).is_file():
        return f"continue from the last checkpoint with: dd-harness distill --resume --out {out}"
    return ""


def recorded_options(out: Path) -> OptionLayer | None:
    """The options that the run in ``out`` recorded (None where it has no config.json): a resume
    continues them, with what the command line gives on top (:mod:`..distill.resume` decides
    which changes it accepts)."""
    if not (out / "config.json").is_file():
        return None
    saved = RunDirectory(out).read_config()
    if not isinstance(saved, dict):
        raise RunDirectoryError(f"{out / 'config.json'} does not hold a mapping of options")
    return OptionLayer(str(out / "config.json"), saved)


def recorded_experts(args: argparse.Namespace, layers: list[OptionLayer]) -> RecordedExperts | None:
    """The expert files that a ``--config`` file written by a run recorded (its ``buffer_files``)."""
    if not getattr(args, "config", None):
        return None
    from_file = next(layer for layer in layers if layer.where == str(args.config))
    digests = from_file.values.get("buffer_files")
    if not isinstance(digests, dict):
        return None  # an options file, not a run's record
    return RecordedExperts(str(args.config), dict(digests), accept_others=args.other_experts)


def run(args: argparse.Namespace, components: Components) -> int:
    from ..distill.loop import Distillation
    from ..runtime.distributed import process_group

    layers = command_layers(args, components)
    config = resolve_options(args.command_options, layers)
    experts = recorded_experts(args, layers)
    recorded = recorded_options(Path(config.out)) if args.resume else None
    if recorded is not None:  # the run directory's own path, wherever it was when the run started
        config = resolve_options(args.command_options, [*layers, OptionLayer("--out", {"out": config.out})],
                                 recorded=recorded)
    args.out = config.out  # for the interruption message
    with process_group() as dist:
        run = Distillation(config, components=components, overwrite=args.overwrite, resume=args.resume,
                           show_progress=not args.quiet, report=log.info, dist=dist, experts=experts)
        result = run.run()  # its last log line gives the final and the best set's accuracy
    if not dist.is_main:
        return 0
    print(result.run_dir)
    return 0
