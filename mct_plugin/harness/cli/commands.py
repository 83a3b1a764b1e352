"""The harness's own sub-commands, added through ``dd_register_commands`` as a plugin's are.

The CLI registers this module with the plugin manager (:func:`~mct_plugin.harness.cli.build_parser`)
and lets it add its commands before any plugin's, so a plugin can never take one of these names.
"""

from __future__ import annotations

from ..components import Components
from ..plugins.hookspecs import hookimpl
from . import convert, data, distill, evaluate, experts, models, plugins, recipes, study

PLUGIN_NAME = "dd_harness.commands"
COMMANDS = (plugins, models, data, recipes, experts, distill, evaluate, convert, study)
"""One module per command, in the order of ``dd-harness --help``; each has ``build(sub, components)``."""


@hookimpl
def dd_register_commands(subparsers, components: Components) -> None:
    for command in COMMANDS:
        command.build(subparsers, components)
