"""``dd-harness eval``: a run's synthetic set against a random real subset, per architecture."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..config import DistillConfig, EvalCommandConfig
from ..components import Components
from ..options import fields_of, flag, read_config_file
from ._options import add_command_options, resolved

DISTILL_ONLY = frozenset(fields_of(DistillConfig)) - frozenset(fields_of(EvalCommandConfig))
"""The options of a run's ``config.json`` that ``eval --config`` leaves out (they shaped the set, and
``eval`` reads them from the run itself)."""

log = logging.getLogger("mct_plugin")


def build(sub, components: Components) -> None:
    p = sub.add_parser("eval", help="evaluate a distilled set against a random real subset",
                       description="Train fresh networks on the synthetic set of a run directory (and on a random "
                                   "real subset of the same size) and report their accuracy on the test split (on "
                                   "the run's validation split for a run distilled with --validation K), with the "
                                   "evaluation protocol recorded in the run's config.json.")
    p.add_argument("--run", "--run-dir", dest="run", required=True,
                   help="run directory holding images.pt, labels.pt, lr.pt, config.json (under torchrun write "
                        "--run-dir: torchrun itself would take --run for its --run-path)")
    add_command_options(p, "eval", EvalCommandConfig, components, ignored=DISTILL_ONLY)
    p.set_defaults(handler=run)


def report_config_file(path: str) -> None:
    """One log line: the options ``eval`` takes from a ``--config`` file that holds distill's too
    (a run's ``config.json``)."""
    given = read_config_file(path)
    if set(given) & DISTILL_ONLY:
        used = sorted(set(given) & set(fields_of(EvalCommandConfig)))
        log.info(f"--config {path}: eval takes {', '.join(map(flag, used)) or 'none of its options'} from it; "
                 f"its other options are distill's and eval leaves them out")


def run(args: argparse.Namespace, components: Components) -> int:
    from ..eval.table import evaluate_run
    from ..runtime.distributed import process_group

    options = resolved(args, components)
    if args.config:
        report_config_file(args.config)
    with process_group() as dist:
        table = evaluate_run(Path(args.run), options, components=components, report=log.info, dist=dist)
    if dist.is_main:
        print(table.to_markdown())
    return 0
