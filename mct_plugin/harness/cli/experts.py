"""``dd-harness experts``: train expert trajectories and write MTT replay buffers."""

from __future__ import annotations

import argparse
import logging

from ..config import ExpertConfig
from ..components import Components
from ._options import add_command_options, resolved

log = logging.getLogger("mct_plugin")


def build(sub, components: Components) -> None:
    p = sub.add_parser("experts", help="train expert trajectories and write MTT replay buffers",
                       description="Train expert networks with SGD on real data and record their parameters "
                                   "after every epoch, as MTT replay buffers "
                                   "(BUFFER_PATH/DATASET[_NO_ZCA]/MODEL/replay_buffer_N.pt).")
    add_command_options(p, "experts", ExpertConfig, components)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(handler=run, interrupted=interrupted)


def interrupted(args: argparse.Namespace) -> str:
    """What an interrupted experts run keeps."""
    return "finished experts are kept; run the same command again to resume"


def run(args: argparse.Namespace, components: Components) -> int:
    from ..events import RunEvents, RunInfo
    from ..experts.train import train_experts
    from ..runtime.distributed import process_group

    config = resolved(args, components)
    with process_group() as dist:
        info = RunInfo("experts", config, config.output_dir(components.datasets), world_size=dist.world_size)
        with RunEvents(components, info, config.track, dist=dist) as events:
            result = train_experts(config, components=components, show_progress=not args.quiet,
                                   on_expert=events.expert, dist=dist)
            accs = [r.final_test_acc for r in result.records]
            events.summary = {"experts": len(accs), "files": [str(p) for p in result.files],
                              "mean_final_test_accuracy": sum(accs) / len(accs) if accs else None,
                              "split": result.records[0].split if result.records else None}
    if not dist.is_main:
        return 0
    for path in result.files:
        print(path)
    if accs:
        log.info("%d experts trained; final accuracy on the %s split %.2f%% (min %.2f%%, max %.2f%%)",
                 len(accs), result.records[0].split, 100 * sum(accs) / len(accs), 100 * min(accs), 100 * max(accs))
    return 0
