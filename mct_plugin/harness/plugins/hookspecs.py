"""Hook specifications of the ``dd_harness`` plugin system.

Plugins implement these with :data:`hookimpl` (``mct_plugin.harness.api.hookimpl``) and are found
through the setuptools entry-point group ``dd_harness``. *Contribution* hooks return lists that the harness
merges into registries (a name registered twice keeps the first plugin's component and skips the
later one, with one warning line naming both plugins);
*lifecycle* hooks are called while a command runs (experiment trackers are built on them).
The harness's own models, datasets and gradient modes arrive through the same hooks, from its
default plugin (:mod:`.defaults`), and so do its sub-commands, from the CLI's plugin
(:mod:`mct_plugin.harness.cli.commands`).

A contribution may be the component itself or a :class:`mct_plugin.harness.api.Lazy` declaration
(``Lazy("my_plugin.matcher:MyMatcher", "mine", "one line", options=MyOptions)``): listings,
``--help`` and argument errors then need no import of the component's module (nor torch); it loads
when first used, and receives the name, description and options stated in the declaration.

Every component class is built the same way, ``cls(options, context)``: ``options`` is an instance
of its ``Options`` dataclass (fields made with :func:`mct_plugin.harness.api.option`; they become
command-line options of the commands that use the kind, and config.json records them for runs
that use the component), ``context`` a :class:`mct_plugin.harness.api.ComponentContext`. The kinds
are listed in :data:`mct_plugin.harness.api.COMPONENT_KINDS`.
"""

from __future__ import annotations

import pluggy

PROJECT_NAME = "dd_harness"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""Marker for hook implementations: ``@hookimpl def dd_register_matchers(): ...``."""


# -- contributions --------------------------------------------------------------------------
@hookspec
def dd_register_matchers():
    """Contribute trajectory matchers (``dd-harness distill --matcher NAME``).

    A matcher turns one sampled segment of an expert trajectory into the matching problem of a
    distillation iteration (start parameters, target parameters, labels).

    :returns: a list of :class:`mct_plugin.harness.api.Matcher` subclasses, each with a unique
        ``name`` attribute.
    """


@hookspec
def dd_register_samplers():
    """Contribute segment samplers (``dd-harness distill --sampler NAME``; each matcher names a
    default). A sampler chooses, per iteration, where on the expert trajectory the student starts
    and where its target lies.

    :returns: a list of :class:`mct_plugin.harness.api.Sampler` subclasses, each with a unique
        ``name`` attribute.
    """


@hookspec
def dd_register_buffer_converters():
    """Contribute buffer converters (``dd-harness convert --to NAME SRC... --out DIR``).

    :returns: a list of :class:`mct_plugin.harness.api.BufferConverter` subclasses, each with a
        unique ``name`` attribute (the format it writes).
    """


@hookspec
def dd_register_models():
    """Contribute network architectures (``--model NAME``, ``dd-harness models``).

    :returns: a list of :class:`mct_plugin.harness.api.ModelSpec` (a name and a factory
        ``factory(channels, num_classes, image_size) -> nn.Module``) and/or
        :class:`mct_plugin.harness.api.ModelPrefix` (names ``prefix:rest`` built by
        ``resolve(rest)``, e.g. ``timm:resnet18``).
    """


@hookspec
def dd_register_datasets():
    """Contribute datasets (``--dataset NAME``, ``dd-harness data``).

    :returns: a list of :class:`mct_plugin.harness.api.DatasetSpec` (shape, classes,
        normalisation and a ``loader(data_path, download) -> RawSplits``).
    """


@hookspec
def dd_register_gradient_modes():
    """Contribute ways of differentiating the matching loss through the student's steps
    (``--gradient-mode NAME``).

    :returns: a list of :class:`mct_plugin.harness.api.GradientMode` subclasses (or their
        ``Lazy`` declarations), each with a unique ``name``, a ``description``, ``exact`` (whether
        its gradient equals backpropagation through every step) and optionally former names in
        ``aliases`` and its own ``Options``; an exact mode declares ``memory_bytes`` and
        ``relative_time``, from which ``auto`` (the harness's) chooses, as resumed runs do.
    """


@hookspec
def dd_register_recipes():
    """Contribute named, versioned option sets (``dd-harness distill --recipe NAME``,
    ``dd-harness recipes``).

    :returns: a list of :class:`mct_plugin.harness.api.Recipe`, usually read from YAML files
        shipped with the plugin (:func:`mct_plugin.harness.api.recipes_in`).
    """


@hookspec
def dd_register_trackers():
    """Contribute experiment trackers (``--track NAME``).

    A tracker is a plugin object the harness creates for one command when the user selects it;
    it implements the lifecycle hooks below as methods.

    :returns: a list of :class:`mct_plugin.harness.api.Tracker` subclasses, each with a unique
        ``name`` attribute.
    """


@hookspec
def dd_register_expert_augmentations():
    """Contribute augmentations of the real images that experts train on
    (``dd-harness experts --augmentation NAME``).

    :returns: a list of :class:`mct_plugin.harness.api.Lazy` declarations (or objects with a
        ``name``) of factories ``factory(image_size) -> callable(images) -> images``.
    """


@hookspec
def dd_register_executors():
    """Contribute executors of studies (``dd-harness study run FILE --executor NAME``): how the
    study's ``dd-harness`` commands are run (the harness's ``local`` processes, ``submitit``).

    :returns: a list of :class:`mct_plugin.harness.api.Executor` subclasses (or their ``Lazy``
        declarations), each with a unique ``name``, a ``description`` and optionally its ``Options``
        (they become options of ``dd-harness study run`` and of a study file's ``executor`` section).
    """


@hookspec
def dd_register_options(command):
    """Contribute options to a ``dd-harness`` sub-command.

    Options are declared once, as fields of a dataclass made with
    :func:`mct_plugin.harness.api.option` (type, default, valid range, help); the harness adds
    them to the command line (in a group titled by the class's ``title`` attribute), accepts
    them in ``--config`` files and recipes, validates them and records their values in the
    run's ``config.json``. Values arrive in the command's config as ``plugin_options[name]``.
    A ``used_by`` class attribute (``("matcher:mct", "sampler:continuous")``) names the
    components that read the group; ``config.json`` records it only for runs that use one.

    :param command: the sub-command name: ``"distill"``, ``"experts"`` or ``"convert"`` (the
        commands whose config holds ``plugin_options``).
    :returns: a list of option dataclasses (classes, not instances); option names must be
        unique across the harness and all plugins (a group with a taken name is skipped, with
        one line naming both plugins).
    """


@hookspec
def dd_register_commands(subparsers, components):
    """Add sub-commands to ``dd-harness`` (datasette's ``register_commands`` idea). The harness's
    own commands are added first, through this hook too; a name that is taken is skipped, with one
    line naming both plugins.

    :param subparsers: the ``argparse`` sub-parsers action of ``dd-harness``; call
        ``subparsers.add_parser(name, ...)`` and ``set_defaults(handler=function)``, where
        ``function(args, components) -> int`` runs the command with the registries the CLI built
        (:class:`mct_plugin.harness.api.Components`) and returns the exit status
        (:func:`mct_plugin.harness.api.add_options` adds the fields of an option dataclass).
        ``set_defaults(interrupted=function)`` may add ``function(args) -> str``: what to print
        (after ``dd-harness: interrupted: ``) when the command is interrupted, e.g. how to
        continue it.
    :param components: those registries, for a command whose options depend on them (e.g. the
        choices of ``--model``).
    :returns: nothing.
    """


# -- lifecycle ------------------------------------------------------------------------------
@hookspec
def dd_run_start(run):
    """A command starts its work (``distill``, ``experts`` or ``convert``), on the main process.

    :param run: a :class:`mct_plugin.harness.api.RunInfo`: the command, its typed config, the
        output folder and whether the run resumes.
    :returns: nothing.
    """


@hookspec
def dd_iteration(run, row):
    """One distillation iteration finished.

    :param run: the :class:`~mct_plugin.harness.api.RunInfo` of the run.
    :param row: the metrics row written to ``metrics.jsonl`` (``iteration``, ``loss``,
        ``start_epoch``, ``target_epoch``, ``alpha_used``, ``alpha``, ``seconds``, ...; a last
        iteration holds only the evaluation). Warnings' event rows are not passed here.
    :returns: nothing.
    """


@hookspec
def dd_evaluation(run, evaluation):
    """The synthetic set was evaluated during distillation.

    :param run: the :class:`~mct_plugin.harness.api.RunInfo` of the run.
    :param evaluation: an :class:`mct_plugin.harness.api.Evaluation`: the iteration, the
        accuracy per architecture, and the evaluated images, labels and step size.
    :returns: nothing.
    """


@hookspec
def dd_expert_trained(run, expert):
    """``dd-harness experts`` finished one expert.

    :param run: the :class:`~mct_plugin.harness.api.RunInfo` of the run.
    :param expert: an :class:`mct_plugin.harness.api.ExpertRecord` (file, position,
        accuracies per epoch).
    :returns: nothing.
    """


@hookspec
def dd_file_converted(run, row):
    """``dd-harness convert`` wrote (or skipped as complete) one output file.

    :param run: the :class:`~mct_plugin.harness.api.RunInfo` of the run.
    :param row: the file's row of the summary table, as a mapping of column to value.
    :returns: nothing.
    """


@hookspec
def dd_run_end(run, status, summary):
    """A command ended.

    :param run: the :class:`~mct_plugin.harness.api.RunInfo` of the run.
    :param status: ``"finished"``, ``"interrupted"`` (a signal; resumable) or ``"failed"``.
    :param summary: a mapping of final figures (e.g. final accuracy); empty when it failed.
    :returns: nothing.
    """
