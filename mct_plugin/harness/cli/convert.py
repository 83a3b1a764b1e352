"""``dd-harness convert``: convert expert buffers with a registered buffer converter."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..config import ConvertConfig
from ..errors import ConfigError
from ..components import ComponentContext, Components
from ._options import add_command_options, resolved

log = logging.getLogger("mct_plugin")


def build(sub, components: Components) -> None:
    p = sub.add_parser("convert", help="convert expert buffers with a registered buffer converter (--to NAME)",
                       description="Convert expert-trajectory buffers with a registered buffer converter. "
                                   "Sources are never modified; outputs are written atomically.")
    p.add_argument("sources", nargs="+", help="source files or folders")
    add_command_options(p, "convert", ConvertConfig, components)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=run, interrupted=interrupted)


def interrupted(args: argparse.Namespace) -> str:
    """What an interrupted conversion keeps."""
    return "finished outputs are kept; run the same command again to convert the rest"


def run(args: argparse.Namespace, components: Components) -> int:
    from ..events import RunEvents, RunInfo
    from ..io.locks import OutputLock

    config = resolved(args, components)
    if not config.to:
        raise ConfigError("choose the target format with --to (see 'dd-harness plugins')")
    if not config.out:
        raise ConfigError("choose the output folder with --out")
    components.check_names(converters=[config.to])
    out = Path(config.out).expanduser()
    info = RunInfo("convert", config, out)
    # one writer per output folder; a conversion that writes nothing leaves no empty folder
    with OutputLock(out, "dd-harness convert"), RunEvents(components, info, config.track) as events:
        context = ComponentContext(config, components, log.info, run=info, show_progress=not args.quiet,
                                   on_file=events.file)
        converter = components.build("buffer converter", config.to, context)
        report = converter.convert([Path(s) for s in args.sources], Path(config.out))
        events.summary = {"rows": len(report.rows)}
    print(report.to_text())
    return 0
