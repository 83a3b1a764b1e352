"""Hook specifications of the ``dd_harness`` plugin system.

Plugins implement these with :data:`mct_plugin.harness.hookimpl` and are found through the
setuptools entry-point group ``dd_harness``. Contribution hooks return lists that the harness
merges into registries; a name registered twice is refused with an error naming both plugins.
"""

from __future__ import annotations

import pluggy

PROJECT_NAME = "dd_harness"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)


@hookspec
def dd_register_matchers():
    """Contribute trajectory matchers.

    A matcher turns one sampled segment of an expert trajectory into the matching problem of a
    distillation iteration (start parameters, target parameters, labels) and is selected with
    ``dd-harness distill --matcher NAME``.

    :returns: a list of :class:`mct_plugin.harness.matching.Matcher` subclasses, each with a
        unique ``name`` attribute.
    """


@hookspec
def dd_register_samplers():
    """Contribute segment samplers.

    A sampler chooses, per iteration, where on the expert trajectory the student starts and
    where its target lies (``dd-harness distill --sampler NAME``; each matcher names a default).

    :returns: a list of :class:`mct_plugin.harness.matching.Sampler` subclasses, each with a
        unique ``name`` attribute.
    """


@hookspec
def dd_register_buffer_converters():
    """Contribute buffer converters (``dd-harness convert --to NAME SRC... --out DIR``).

    :returns: a list of :class:`mct_plugin.harness.conversion.BufferConverter` subclasses, each
        with a unique ``name`` attribute (the format it writes).
    """


@hookspec
def dd_add_cli_options(command, parser):
    """Add command-line options to a ``dd-harness`` sub-command.

    Called once per plugin while the parser of ``command`` is built. Values of the options
    arrive in the command's config as ``plugin_options[dest]``.

    :param command: the sub-command name, e.g. ``"distill"`` or ``"convert"``.
    :param parser: the :class:`argparse.ArgumentParser` of that sub-command; add an argument
        group named after the plugin.
    :returns: nothing.
    """


@hookspec
def dd_register_commands(subparsers):
    """Add sub-commands to ``dd-harness`` (datasette's ``register_commands`` idea).

    :param subparsers: the ``argparse`` sub-parsers action of ``dd-harness``; call
        ``subparsers.add_parser(name, ...)`` and ``set_defaults(handler=function)``, where
        ``function(args) -> int`` runs the command and returns the exit status.
    :returns: nothing.
    """
