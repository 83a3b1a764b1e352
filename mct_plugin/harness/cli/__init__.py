"""The ``dd-harness`` command line.

Sub-commands, one module each: ``plugins``, ``models``, ``data``, ``recipes``, ``experts``,
``distill``, ``eval``, ``convert``, added through the hook ``dd_register_commands`` by the
harness's own plugin (:mod:`.commands`), then those that plugins add (the bundled ``demo`` is
one). Options are generated from the typed configs (:mod:`..config`) and the plugins' option
groups; ``--syn_steps`` stands for ``--syn-steps``, abbreviations stand for nothing (``--syn 5`` is
an error, with "did you mean --syn-steps?"). Known user errors
(:class:`~mct_plugin.harness.errors.HarnessError`) print one line and exit with status 2; an
interrupted run (SIGINT or SIGTERM) exits with 130 after one line that the command words (its
``interrupted`` default, e.g. how to resume it).

Startup imports no torch: the plugins declare their components lazily and every command module
imports its heavy modules in its ``run``; the commands that run under torchrun join its process
group themselves (:func:`~mct_plugin.harness.runtime.distributed.process_group`). ``--help``,
``plugins``, ``models``, ``recipes`` and argument errors stay quick.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Sequence

from ... import __version__
from ..errors import HarnessError, Interrupted
from ..options import normalise_argv
from ..components import Components
from ..plugins.components import build_components
from ..plugins.manager import (NameClash, PluginProblem, new_plugin_manager, one_line,
                               plugin_source)
from ..runtime.distributed import exit_process
from ..runtime.signals import sigterm_as_keyboard_interrupt
from . import commands

log = logging.getLogger("mct_plugin")
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


class _TqdmHandler(logging.Handler):
    """Log lines that do not break progress bars."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm.auto import tqdm

        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # pragma: no cover
            self.handleError(record)


def _configure_logging(verbose: int) -> None:
    handler = _TqdmHandler()
    handler.setFormatter(logging.Formatter("dd-harness: %(message)s"))
    root = logging.getLogger("mct_plugin")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose > 1 else logging.INFO if verbose == 1 else logging.WARNING)
    root.propagate = False


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line in the same one-line form as every other user error,
    with the failing command's own ``--help``; without prefix matching (``--syn 5`` is an error,
    not ``--syn-steps 5``: an abbreviation would change meaning when an option is added), and with
    "did you mean" for a misspelt option (:meth:`parse_command_line`)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **{**kwargs, "allow_abbrev": False})
        self.commands: dict[str, argparse.ArgumentParser] = {}  # sub-command -> its parser (build_parser)

    def error(self, message: str):  # type: ignore[override]
        self.exit(EXIT_USER_ERROR, f"dd-harness: error: {message} (see '{self.prog} --help')\n")

    def parse_command_line(self, argv: Sequence[str]) -> argparse.Namespace:
        """``parse_args``, but arguments that no option takes are reported by the parser they were
        given to (the sub-command's, unless they come before it), with the closest of its options
        to a misspelt one."""
        argv = list(argv)
        args, unknown = self.parse_known_args(argv)
        if unknown:
            command = getattr(args, "command", None)
            given_to = self if command not in argv or unknown[0] in argv[:argv.index(command)] else self.commands[command]
            given_to.error(f"unrecognized arguments: {' '.join(unknown)}{_did_you_mean(given_to, unknown)}")
        return args


def _did_you_mean(parser: argparse.ArgumentParser, unknown: Sequence[str]) -> str:
    """``"; did you mean --syn-steps?"`` for the first unknown option close to one of ``parser``'s
    (difflib), or ``""``."""
    import difflib

    known = [option for option in parser._option_string_actions if option.startswith("--")]
    for token in unknown:
        if token.startswith("--"):
            close = difflib.get_close_matches(token.partition("=")[0], known, n=1, cutoff=0.6)
            if close:
                return f"; did you mean {close[0]}?"
    return ""


class _NewCommandsOnly:
    """The sub-parsers action as a plugin's ``dd_register_commands`` sees it: ``add_parser``
    refuses a taken name on every Python (argparse before 3.11 would replace the command)."""

    def __init__(self, subparsers) -> None:
        self._subparsers = subparsers

    def add_parser(self, name: str, **kwargs):
        for taken in (name, *kwargs.get("aliases", ())):
            if taken in self._subparsers.choices:
                raise argparse.ArgumentError(None, f"conflicting subparser: {taken}")
        return self._subparsers.add_parser(name, **kwargs)

    def __getattr__(self, attribute: str):
        return getattr(self._subparsers, attribute)


def register_commands(subparsers, components: Components) -> dict[str, str]:
    """Let every plugin add sub-commands (``pm.hook.dd_register_commands``): first the harness's
    own (:mod:`.commands`, registered with ``components.pm`` on first use), then the plugins', in
    the order the plugins were registered. Return ``{command: plugin source}`` for the commands
    that plugins added. A plugin whose command name is taken, or whose hook raises, keeps the
    commands it added before and is reported in one line (``pm.problems``); the other commands
    keep working."""
    pm = components.pm
    if not pm.is_registered(commands):
        pm.register(commands, name=commands.PLUGIN_NAME)
    impls = sorted(pm.hook.dd_register_commands.get_hookimpls(), key=lambda impl: impl.plugin is not commands)
    added: dict[str, str] = {}
    for impl in impls:
        before = set(subparsers.choices)
        caller = pm.subset_hook_caller("dd_register_commands", [i.plugin for i in impls if i is not impl])
        source = plugin_source(pm, impl.plugin)
        try:
            caller(subparsers=_NewCommandsOnly(subparsers), components=components)
        except argparse.ArgumentError as exc:  # "conflicting subparser: NAME"
            name = str(exc).rpartition(": ")[2]
            pm.report(NameClash("command", name, f"plugin {added[name]}" if name in added else "the harness",
                                f"plugin {source}"))
        except Exception as exc:
            pm.report(PluginProblem(pm.get_name(impl.plugin) or source, "dd_register_commands", one_line(exc)))
        if impl.plugin is not commands:
            added.update({name: source for name in set(subparsers.choices) - before})
    return added


def build_parser(components: Components) -> argparse.ArgumentParser:
    """The full parser for ``components`` (``build_components()``: the installed plugins); every
    command's handler is called as ``handler(args, components)``."""
    parser = Parser(prog="dd-harness", description="Dataset distillation by trajectory matching; matchers come "
                                                   "from plugins.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=1, help="more log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    plugin_commands = register_commands(sub, components)
    sub.choices["plugins"].set_defaults(plugin_commands=plugin_commands)
    parser.commands = sub.choices
    return parser


def _interrupted_message(args: argparse.Namespace | None) -> str:
    """The line printed when a command is interrupted: what the command says was kept and how to
    continue (its ``interrupted(args)`` default, see ``dd_register_commands``), if anything."""
    interrupted = getattr(args, "interrupted", None)
    what = interrupted(args) if interrupted is not None else ""
    return f"dd-harness: interrupted: {what}" if what else "dd-harness: interrupted"


def entry() -> None:
    """The ``dd-harness`` program: :func:`main`, then the process's exit (see
    :func:`~mct_plugin.harness.runtime.distributed.exit_process`)."""
    exit_process(main())


def main(argv: Sequence[str] | None = None) -> int:
    from ..runtime.allocator import tune_allocator

    tune_allocator()
    args = None
    try:
        with sigterm_as_keyboard_interrupt():
            pm = new_plugin_manager()
            components = build_components(pm)
            parser = build_parser(components)  # may skip plugin options or commands whose names are taken
            for problem in pm.problems:
                print(f"dd-harness: warning: {problem}", file=sys.stderr)
            try:
                args = parser.parse_command_line(normalise_argv(sys.argv[1:] if argv is None else argv))
            except SystemExit as exc:  # --help, --version, or a bad command line (already printed)
                return int(exc.code or 0)
            is_main = os.environ.get("RANK", "0") == "0"  # torchrun's rank; the commands join its group
            _configure_logging(args.verbose if is_main else 0)
            return int(args.handler(args, components) or 0)
    except Interrupted as exc:
        print(f"dd-harness: interrupted: {exc}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except HarnessError as exc:
        print(f"dd-harness: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(_interrupted_message(args), file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. piped into head
        return 0
