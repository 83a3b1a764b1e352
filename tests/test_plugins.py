"""The pluggy plugin system: entry-point discovery, registries, inline plugins, CLI listing."""

from __future__ import annotations

import ast
import importlib.metadata
import inspect
from dataclasses import dataclass
from pathlib import Path

import pluggy
import pytest

import mct_plugin.harness as harness
from mct_plugin.harness.api import hookimpl, option
from mct_plugin.harness.errors import ConfigError, UnknownNameError
from mct_plugin.harness.distill.matching import Matcher, Sampler, Segment
from mct_plugin.harness.plugins import hookspecs
from mct_plugin.harness.plugins.components import build_components
from mct_plugin.harness.plugins.manager import new_plugin_manager

from helpers import run_cli


def test_builtin_plugins_are_entry_points_of_the_distribution():
    eps = {ep.name: ep for ep in importlib.metadata.entry_points(group="dd_harness")}
    assert eps["mtt"].value == "mct_plugin.mtt"
    assert eps["mct"].value == "mct_plugin.mct"
    assert eps["mtt"].dist.name == "mct_plugin" and eps["mct"].dist.name == "mct_plugin"


def test_components_found_through_entry_points():
    components = build_components(new_plugin_manager(load_entrypoints=True))
    assert components.matchers.names() == ["mct", "mtt"]
    assert components.samplers.names() == ["continuous", "discrete"]
    assert components.converters.names() == ["mct"]
    assert components.matchers.entry("mtt").source.startswith("mct_plugin ")


def test_a_fresh_manager_without_entry_points_knows_no_components():
    components = build_components(new_plugin_manager(load_entrypoints=False))
    assert len(components.matchers) == len(components.samplers) == len(components.converters) == 0
    with pytest.raises(UnknownNameError, match=r"unknown matcher 'mtt'; registered: \(none\)"):
        components.matchers.get("mtt")


class FixedSampler(Sampler):
    name = "fixed-test"

    def sample(self, iteration):
        return Segment(0.0, 1.0)


@dataclass(frozen=True)
class FixedOptions:
    title = "fixed-test sampler"
    fixed_test_option: int = option(7, "a test option", minimum=0)


class _InlinePlugin:
    @hookimpl
    def dd_register_samplers(self):
        return [FixedSampler]

    @hookimpl
    def dd_register_options(self, command):
        return [FixedOptions] if command == "distill" else []


def test_inline_plugin_is_found_by_name_and_can_be_unregistered():
    pm = new_plugin_manager(load_entrypoints=True)
    plugin = _InlinePlugin()
    pm.register(plugin, name="inline-test")
    try:
        components = build_components(pm)
        assert components.samplers.get("fixed-test") is FixedSampler
        assert components.samplers.entry("fixed-test").source == "inline-test"
        assert "mtt" in components.matchers  # the installed plugins are still there
    finally:
        pm.unregister(plugin)
    assert "fixed-test" not in build_components(pm).samplers


def test_plugin_cli_options_are_added_and_reported():
    import argparse

    from mct_plugin.harness.cli._options import add_command_options, build_config
    from mct_plugin.harness.config import ConvertConfig, DistillConfig

    pm = new_plugin_manager(load_entrypoints=False)
    pm.register(_InlinePlugin(), name="inline-test")
    components = build_components(pm)
    parser = argparse.ArgumentParser()
    spec = add_command_options(parser, "distill", DistillConfig, components)
    assert set(spec.plugin_names()) == {"fixed_test_option"}
    args = parser.parse_args(["--fixed-test-option", "3", "--matcher", "mtt"])
    config, options = build_config(spec, args)
    assert options == {"fixed_test_option": 3} and config.plugin_options == {"fixed_test_option": 3}
    assert build_config(spec, parser.parse_args(["--matcher", "mtt"]))[1] == {"fixed_test_option": 7}  # default
    convert = add_command_options(argparse.ArgumentParser(), "convert", ConvertConfig, components)
    assert convert.plugin_names() == {}


def test_duplicate_component_names_are_refused_naming_both_plugins():
    class Clash:
        @hookimpl
        def dd_register_samplers(self):
            return [FixedSampler]

    pm = new_plugin_manager(load_entrypoints=False)
    pm.register(_InlinePlugin(), name="first")
    pm.register(Clash(), name="second")
    with pytest.raises(ConfigError, match=r"sampler 'fixed-test' is registered twice \(by first and by second\)"):
        build_components(pm)


def test_misspelt_hook_fails_check_pending():
    class Typo:
        @hookimpl
        def dd_register_matcher(self):  # missing "s"
            return []

    pm = new_plugin_manager(load_entrypoints=False)
    pm.register(Typo())
    with pytest.raises(pluggy.PluginValidationError):
        pm.check_pending()


def test_unknown_name_lists_registered_names():
    components = build_components()
    with pytest.raises(UnknownNameError) as info:
        components.matchers.get("mtc")
    assert str(info.value) == "unknown matcher 'mtc'; registered: mct, mtt"


def test_every_hook_is_documented():
    specs = [f for name, f in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("dd_")]
    assert {f.__name__ for f in specs} == {
        "dd_register_matchers", "dd_register_samplers", "dd_register_buffer_converters", "dd_register_models",
        "dd_register_datasets", "dd_register_gradient_modes", "dd_register_recipes", "dd_register_trackers",
        "dd_register_options", "dd_register_commands", "dd_run_start", "dd_iteration", "dd_evaluation",
        "dd_expert_trained", "dd_file_converted", "dd_run_end"}
    for spec in specs:
        doc = inspect.getdoc(spec) or ""
        assert ":returns:" in doc, spec.__name__
        for param in inspect.signature(spec).parameters:
            assert f":param {param}:" in doc, (spec.__name__, param)


def test_harness_never_imports_a_plugin_package():
    offenders = []
    for path in Path(harness.__file__).parent.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [("." * node.level) + (node.module or "")]
            for name in names:
                if name.startswith(("mct_plugin.mtt", "mct_plugin.mct")) or name.lstrip(".").startswith(("mtt", "mct")) and node.level >= 2:
                    offenders.append(f"{path.name}: {name}")
        text = path.read_text().lower()
        assert "convexif" not in text or path.name == "hookspecs.py", path  # no MCT knowledge in the harness
    assert offenders == []


def test_plugins_command_lists_components_with_their_distribution():
    proc = run_cli("plugins")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:3] == ["KIND", "NAME", "FROM"]
    table = {(line.split()[0], line.split()[1]): line for line in lines[1:] if not line.startswith(("buffer", "gradient"))}
    assert "mct_plugin 0.1.0" in table[("matcher", "mtt")] and "mct_plugin 0.1.0" in table[("matcher", "mct")]
    assert any(line.startswith("buffer converter  mct") for line in lines)
    assert any("first-order" in line for line in lines) and any("checkpointed" in line for line in lines)
    assert any(line.split()[:2] == ["command", "demo"] and "mct_plugin 0.1.0" in line for line in lines)


def test_a_plugin_can_add_a_command():
    from mct_plugin.harness.cli import build_parser

    class CommandPlugin:
        @hookimpl
        def dd_register_commands(self, subparsers):
            parser = subparsers.add_parser("hello-test")
            parser.add_argument("--name", default="world")
            parser.set_defaults(handler=lambda args, components: print(f"hello {args.name}") or 0)

    pm = new_plugin_manager(load_entrypoints=False)
    pm.register(CommandPlugin(), name="command-test")
    components = build_components(pm)
    args = build_parser(components).parse_args(["hello-test", "--name", "MCT"])
    assert args.name == "MCT" and args.handler(args, components) == 0


def test_matcher_and_sampler_are_abstract_interfaces():
    with pytest.raises(TypeError):
        Matcher(None, None)  # type: ignore[abstract]
    with pytest.raises(TypeError):
        Sampler(None)  # type: ignore[abstract]


QUICK_COMMANDS = [["--help"], ["plugins"], ["models"], ["recipes"], ["recipes", "mct/cifar10-ipc1"],
                  ["distill", "--help"], ["experts", "--help"], ["convert", "--help"], ["eval", "--help"],
                  ["data", "--help"], ["demo", "--help"], ["distill", "--no-such-option"], ["distill", "--ipc", "many"], ["experts", "--model"]]


def test_help_listings_and_argument_errors_do_not_import_torch():
    """The quick commands run in a fresh interpreter without loading torch (or kornia, timm,
    torchvision, matplotlib): plugins declare their components lazily."""
    import json
    import subprocess
    import sys

    probe = (
        "import contextlib, io, json, sys\n"
        "from mct_plugin.harness.cli import main\n"
        "codes = []\n"
        f"for argv in {QUICK_COMMANDS!r}:\n"
        "    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
        "        codes.append(main(argv))\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'kornia', 'timm', 'torchvision', "
        "'matplotlib'})\n"
        "print(json.dumps({'codes': codes, 'heavy': heavy}))\n")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["heavy"] == []
    assert result["codes"] == [0] * 11 + [2] * 3


def test_lazy_declarations_agree_with_the_components_they_load():
    """A Lazy declaration repeats its component's name and description (so that listings need no
    import): every one of the installed plugins' says what the loaded class says."""
    from mct_plugin.harness.api import Lazy

    components = build_components()
    checked = 0
    for kind, registry in components.by_kind().items():
        for entry in list(registry.declared()):
            if not isinstance(entry.obj, Lazy):
                continue
            declared, loaded = entry.obj, registry.get(entry.name)
            if hasattr(loaded, "name"):
                assert (loaded.name, loaded.description) == (declared.name, declared.description), (kind, entry.name)
                assert tuple(getattr(loaded, "aliases", ())) == declared.aliases, (kind, entry.name)
            checked += 1
    assert checked >= 6 + len(components.models.names())
