"""The pluggy plugin system: entry-point discovery, registries, inline plugins, CLI listing."""

from __future__ import annotations

import ast
import importlib.metadata
import inspect
import re
import textwrap
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


@dataclass(frozen=True)
class FixedOptions:
    fixed_test_option: int = option(7, "a test option", minimum=0)


class FixedSampler(Sampler):
    name = "fixed-test"
    Options = FixedOptions

    def sample(self, iteration):
        return Segment(0.0, float(self.options.fixed_test_option))


@dataclass(frozen=True)
class CommandWideOptions:
    title = "a group of the whole command"
    command_wide_option: int = option(1, "a test option of no component", minimum=0)


class _InlinePlugin:
    @hookimpl
    def dd_register_samplers(self):
        return [FixedSampler]

    @hookimpl
    def dd_register_options(self, command):
        return [CommandWideOptions] if command == "distill" else []


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


def _parsed(components, command, config_cls, argv):
    import argparse

    from mct_plugin.harness.cli._options import add_command_options, command_layers
    from mct_plugin.harness.command_options import resolve_options

    parser = argparse.ArgumentParser()
    spec = add_command_options(parser, command, config_cls, components)
    return spec, resolve_options(spec, command_layers(parser.parse_args(argv), components))


def test_plugin_cli_options_are_added_resolved_and_reach_their_component():
    from mct_plugin.harness.components import ComponentContext
    from mct_plugin.harness.config import ConvertConfig, DistillConfig

    pm = new_plugin_manager(load_entrypoints=False)
    pm.register(_InlinePlugin(), name="inline-test")
    components = build_components(pm)
    spec, config = _parsed(components, "distill", DistillConfig, ["--fixed-test-option", "3", "--matcher", "mtt"])
    assert set(spec.plugin_names()) == {"fixed_test_option", "command_wide_option", "checkpoint_interval"}
    assert config.plugin_options == {"fixed_test_option": 3}  # what was given, nothing else
    sampler = components.build("sampler", "fixed-test", ComponentContext(config, components))
    assert sampler.options == FixedOptions(3) and sampler.sample(0) == Segment(0.0, 3.0)
    _, default = _parsed(components, "distill", DistillConfig, ["--matcher", "mtt"])
    assert default.plugin_options == {}
    assert components.build("sampler", "fixed-test", ComponentContext(default, components)).options == FixedOptions()
    recorded, ignored = components.plugin_options_in_use("distill", config.plugin_options, {"sampler:fixed-test"})
    assert recorded == {"fixed_test_option": 3, "command_wide_option": 1} and ignored == {}
    recorded, ignored = components.plugin_options_in_use("distill", config.plugin_options, {"sampler:discrete"})
    assert recorded == {"command_wide_option": 1} and ignored == {"fixed_test_option": ("sampler:fixed-test",)}
    convert, _ = _parsed(components, "convert", ConvertConfig, [])
    assert convert.plugin_names() == {}


@dataclass(frozen=True)
class _SmoothA:
    smooth: str = option("a", "smoothing of the first test sampler")
    only_a: int = option(0, "an option of A alone")


@dataclass(frozen=True)
class _SmoothB:
    smooth: str = option("b", "smoothing of the second test sampler")


def test_two_plugins_with_an_option_of_the_same_name_both_work():
    from mct_plugin.harness.components import ComponentContext
    from mct_plugin.harness.config import DistillConfig

    class SamplerA(FixedSampler):
        name, Options = "sampler-a", _SmoothA

    class SamplerB(FixedSampler):
        name, Options = "sampler-b", _SmoothB

    class PluginA:
        @hookimpl
        def dd_register_samplers(self):
            return [SamplerA]

    class PluginB:
        @hookimpl
        def dd_register_samplers(self):
            return [SamplerB]

    pm = new_plugin_manager(load_entrypoints=False)
    pm.register(PluginA(), name="plugin-a")
    pm.register(PluginB(), name="plugin-b")
    components = build_components(pm)
    spec, config = _parsed(components, "distill", DistillConfig, ["--matcher", "mtt"])
    assert pm.problems == [] and spec.plugin_names()["smooth"] == [_SmoothA, _SmoothB]
    context = ComponentContext(config, components)
    assert components.build("sampler", "sampler-a", context).options == _SmoothA("a", 0)  # each its own default
    assert components.build("sampler", "sampler-b", context).options == _SmoothB("b")
    _, config = _parsed(components, "distill", DistillConfig, ["--matcher", "mtt", "--smooth", "x", "--only-a", "2"])
    context = ComponentContext(config, components)
    assert components.build("sampler", "sampler-a", context).options == _SmoothA("x", 2)  # one flag sets both
    assert components.build("sampler", "sampler-b", context).options == _SmoothB("x")
    assert components.plugin_options_in_use("distill", config.plugin_options, {"sampler:sampler-b"}) == (
        {"smooth": "x"}, {"only_a": ("sampler:sampler-a",)})


class _WidgetSpecs:
    @hookspecs.hookspec
    def dd_register_widgets(self):
        """Contribute widgets (a kind that only this test knows).

        :returns: a list of widget classes with a unique ``name``.
        """


def test_a_new_component_kind_is_its_hookspec_and_one_row():
    from mct_plugin.harness.components import COMPONENT_KINDS, ComponentContext, ComponentKind

    @dataclass(frozen=True)
    class WidgetOptions:
        size: int = option(2, "how large", minimum=1)

    class Widget:
        name, description, Options = "knob", "a test widget", WidgetOptions

        def __init__(self, options, context):
            self.options, self.context = options, context

    class WidgetPlugin:
        @hookimpl
        def dd_register_widgets(self):
            return [Widget]

    pm = new_plugin_manager(load_entrypoints=False)
    pm.add_hookspecs(_WidgetSpecs)
    pm.register(WidgetPlugin(), name="widgets")
    row = ComponentKind("widget", "widgets", "dd_register_widgets", "--widget", ("distill",))
    components = build_components(pm, kinds=(*COMPONENT_KINDS, row))
    assert components.widgets.names() == ["knob"] and "widget" in components.by_kind()
    from mct_plugin.harness.config import DistillConfig

    spec, config = _parsed(components, "distill", DistillConfig, ["--matcher", "mtt", "--size", "5"])
    assert "size" in spec.plugin_names()
    widget = components.build("widget", "knob", ComponentContext(config, components))
    assert widget.options == WidgetOptions(5) and widget.context.config is config
    with pytest.raises(UnknownNameError, match="unknown widget 'dial'"):
        components.check_names(widgets=["dial"])


class RivalMTT:  # the clash is about the name alone
    name = "mtt"


class _Rival:
    """A third-party plugin that names its matcher like the bundled MTT matcher, and has a sampler of its own."""

    @hookimpl
    def dd_register_matchers(self):
        return [RivalMTT]

    @hookimpl
    def dd_register_samplers(self):
        return [FixedSampler]


def test_a_name_clash_skips_the_later_plugins_component_only_naming_both():
    class Second:
        @hookimpl
        def dd_register_samplers(self):
            return [FixedSampler]

    pm = new_plugin_manager(load_entrypoints=True)
    pm.register(_Rival(), name="rival")
    pm.register(Second(), name="second")
    components = build_components(pm)
    assert components.matchers.entry("mtt").source.startswith("mct_plugin ")  # the built-in keeps its name
    assert components.matchers.get("mtt").__module__ == "mct_plugin.mtt.matcher"
    assert components.samplers.entry("fixed-test").source == "rival"  # the rest of the plugin works
    assert "mct" in components.matchers and "discrete" in components.samplers
    assert [str(p) for p in pm.problems] == [
        "matcher 'mtt' of plugin rival was skipped: plugin mct_plugin 0.1.0 registered that name first",
        "sampler 'fixed-test' of plugin second was skipped: plugin rival registered that name first"]
    build_components(pm)
    assert len(pm.problems) == 2  # reported once per process, however often components are built


def test_a_third_party_distribution_clashing_with_bundled_names_is_skipped_and_every_command_works(tmp_path,
                                                                                                   monkeypatch):
    """A real second distribution whose entry point sorts before the bundled ones ("aaa") registers a
    matcher 'mtt', the option --waypoints of distill (MCT's, with another type) and a command 'eval': each is skipped with
    one line naming both plugins; its own sampler works, and so does every command."""
    from helpers import run_cli_batch
    from test_platform import install_distribution, with_site

    site = install_distribution(tmp_path / "site", "aaa_rival", textwrap.dedent('''
        from dataclasses import dataclass
        from mct_plugin.harness.api import Sampler, Segment, hookimpl, option

        class Rival(Sampler):
            name = "mtt"

        class Fixed(Sampler):
            name, description = "rival-fixed", "always epoch 0 to 1"

            def sample(self, iteration):
                return Segment(0.0, 1.0)

        @dataclass(frozen=True)
        class RivalOptions:
            waypoints: str = option("3", "a rival's waypoints, of another type than MCT's")

        @hookimpl
        def dd_register_matchers():
            return [Rival]

        @hookimpl
        def dd_register_samplers():
            return [Fixed]

        @hookimpl
        def dd_register_options(command):
            return [RivalOptions] if command == "distill" else []

        @hookimpl
        def dd_register_commands(subparsers):
            subparsers.add_parser("eval")
    '''), {"aaa": "aaa_rival"})
    for name, value in with_site(site).items():
        monkeypatch.setenv(name, value)
    listing, models, distill_help, eval_help = run_cli_batch(  # one fresh interpreter that finds the distribution
        [["plugins"], ["models", "ConvNetW1*"], ["distill", "--help"], ["eval", "--help"]])
    assert listing.returncode == 0, listing.stderr
    warnings = [line for line in listing.stderr.splitlines() if line.startswith("dd-harness: warning:")]
    assert sorted(warnings) == sorted([
        "dd-harness: warning: matcher 'mtt' of plugin aaa_rival 1.0 was skipped: plugin mct_plugin 0.1.0 registered "
        "that name first",
        "dd-harness: warning: distill option '--waypoints' of plugin aaa_rival 1.0 (RivalOptions) was skipped: "
        "plugin mct_plugin 0.1.0 registered that name first",
        "dd-harness: warning: command 'eval' of plugin aaa_rival 1.0 was skipped: the harness registered that name "
        "first"]), listing.stderr
    rows = [line.split()[:3] for line in listing.stdout.splitlines()]
    assert ["matcher", "mtt", "mct_plugin"] in rows and ["sampler", "rival-fixed", "aaa_rival"] in rows
    assert models.stdout.splitlines() == ["ConvNetW16", "ConvNetW128"]
    assert "--waypoints P" in distill_help.stdout  # MCT's option, with its metavar
    assert distill_help.returncode == eval_help.returncode == 0 and "--run RUN" in eval_help.stdout


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
        "dd_register_expert_augmentations", "dd_register_executors", "dd_register_options", "dd_register_commands",
        "dd_run_start", "dd_iteration", "dd_evaluation",
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
        named = set(re.findall(r"mct_plugin\.(?:mtt|mct)[\w.]*", path.read_text()))
        if path.name == "api.py":  # the one exception: the bundled matchers, re-exported by name for subclassing
            from mct_plugin.harness.api import BUNDLED_MATCHERS

            named -= set(BUNDLED_MATCHERS.values()) | {"mct_plugin.mtt", "mct_plugin.mct"}
        assert not named, (path, named)
    assert offenders == []


def test_the_bundled_matchers_are_exported_through_the_api_for_subclassing():
    import mct_plugin.harness.api as api

    assert {"MTTMatcher", "MCTMatcher", "PooledMatcher", "load_replay_buffer", "replay_buffer_files",
            "check_buffer_folder", "check_segment_length", "ExpertPool"} <= set(api.__all__)
    components = build_components()
    assert api.MTTMatcher is components.matchers.get("mtt") and api.MCTMatcher is components.matchers.get("mct")
    assert issubclass(api.MTTMatcher, api.PooledMatcher) and issubclass(api.MCTMatcher, api.PooledMatcher)


def test_plugins_command_lists_components_with_their_distribution():
    proc = run_cli("plugins")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:3] == ["KIND", "NAME", "FROM"]
    table = {(line.split()[0], line.split()[1]): line for line in lines[1:] if not line.startswith(("buffer", "gradient"))}
    assert "mct_plugin 0.1.0" in table[("matcher", "mtt")] and "mct_plugin 0.1.0" in table[("matcher", "mct")]
    assert any(line.split()[:3] == ["buffer", "converter", "mct"] for line in lines)
    assert any(line.split()[:3] == ["expert", "augmentation", "crop_scale_rotate"] for line in lines)
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


def test_the_harness_commands_come_through_the_same_hook_first():
    """The CLI's own commands are a plugin of dd_register_commands too, added before any other
    plugin's (whatever the registration order), so a plugin cannot take their names; a command
    hook may take the components."""
    import argparse

    from mct_plugin.harness.cli import build_parser, commands

    class EarlyPlugin:
        @hookimpl
        def dd_register_commands(self, subparsers, components):
            subparsers.add_parser("early-test").set_defaults(handler=lambda args, components: 0, seen=components)
            subparsers.add_parser("distill")

    pm = new_plugin_manager(load_entrypoints=False)
    pm.register(EarlyPlugin(), name="early-test")  # before the CLI registers its commands
    components = build_components(pm)
    parser = build_parser(components)
    assert pm.get_plugin(commands.PLUGIN_NAME) is commands
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert list(sub.choices) == ["plugins", "models", "data", "recipes", "experts", "distill", "eval", "convert",
                                 "study", "early-test"]
    assert [str(p) for p in pm.problems] == [
        "command 'distill' of plugin early-test was skipped: the harness registered that name first"]
    assert parser.parse_args(["early-test"]).seen is components
    assert parser.parse_args(["plugins"]).plugin_commands == {"early-test": "early-test"}


def test_each_command_words_its_own_interruption_line(tmp_path):
    from mct_plugin.harness import cli

    class PatientPlugin:
        @hookimpl
        def dd_register_commands(self, subparsers):
            p = subparsers.add_parser("patient-test")
            p.add_argument("--name")
            p.set_defaults(handler=lambda args, components: 0, interrupted=lambda args: f"{args.name} is kept")

    pm = new_plugin_manager(load_entrypoints=False)
    pm.register(PatientPlugin(), name="patient-test")
    parser = cli.build_parser(build_components(pm))

    def line(*argv: str) -> str:
        return cli._interrupted_message(parser.parse_args(list(argv)))

    assert line("patient-test", "--name", "half") == "dd-harness: interrupted: half is kept"
    assert line("experts") == "dd-harness: interrupted: finished experts are kept; run the same command again to resume"
    assert line("distill", "--out", str(tmp_path)) == "dd-harness: interrupted"  # no checkpoint: nothing to continue
    (tmp_path / "checkpoint.pt").write_bytes(b"")
    assert line("distill", "--out", str(tmp_path)) == ("dd-harness: interrupted: continue from the last checkpoint "
                                                       f"with: dd-harness distill --resume --out {tmp_path}")
    assert line("models") == cli._interrupted_message(None) == "dd-harness: interrupted"


def test_the_default_plugin_and_the_manager_import_no_circle():
    """defaults.py takes the hookimpl marker from hookspecs.py, not from the manager that registers it."""
    import subprocess
    import sys

    probe = ("import sys, mct_plugin.harness.plugins.defaults\n"
             "print('mct_plugin.harness.plugins.manager' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.split() == ["False"], proc.stderr


def test_matcher_and_sampler_are_abstract_interfaces():
    with pytest.raises(TypeError):
        Matcher(None, None)  # type: ignore[abstract]
    with pytest.raises(TypeError):
        Sampler(None, None)  # type: ignore[abstract]


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


def test_a_lazy_declaration_is_the_one_place_of_its_components_name_and_options():
    """The classes that the bundled plugins declare lazily state no name, description, former name
    or options of their own: they receive the declaration's when loaded; a class that states a
    different value is refused."""
    from mct_plugin.harness._registry import Lazy
    from mct_plugin.harness.components import component_options

    components = build_components()
    checked = 0
    for kind in ("matcher", "sampler", "buffer converter", "gradient mode"):
        registry = components.registries[kind]
        for entry in list(registry.declared()):
            declared, loaded = entry.obj, registry.get(entry.name)
            assert isinstance(declared, Lazy), (kind, entry.name)
            assert not re.search(r"^    (name|description|aliases|Options) = ", inspect.getsource(loaded), re.M), entry.name
            assert (loaded.name, loaded.description, tuple(getattr(loaded, "aliases", ()))) == (
                declared.name, declared.description, declared.aliases), (kind, entry.name)
            assert component_options(loaded) is component_options(declared), (kind, entry.name)
            checked += 1
    assert checked >= 9

    class Stated:
        name = "stated"

    with pytest.raises(ConfigError, match="states name 'stated', but its declaration says 'other'"):
        Lazy("x:y", "other").stamp(Stated)


def test_config_json_holds_the_plugin_options_of_the_components_in_use_only(tmp_path, capsys, expert_root,
                                                                            mini_fmnist_dir):
    """An MTT run records none of MCT's options (nor a tracker's it does not use) and says in one line
    that those given are ignored; an MCT run records MCT's."""
    import dataclasses
    import json

    from mct_plugin.mct.options import MatcherOptions, SamplerOptions

    from helpers import SMALL_MODEL, run_main

    common = ["--model", SMALL_MODEL, "--buffer-path", str(expert_root), "--data-path", str(mini_fmnist_dir),
              "--iterations", "1", "--eval-it", "0", "--syn-steps", "1", "--expert-epochs", "1", "--max-start-epoch",
              "1", "--gradient-mode", "unrolled", "--quiet"]
    proc = run_main(capsys, "distill", "--matcher", "mtt", "--out", str(tmp_path / "mtt"), "--waypoints", "2",
                    "--tensorboard-dir", str(tmp_path / "tb"), *common)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "mtt" / "config.json").read_text())["plugin_options"] == {}
    ignored = [line for line in proc.stderr.splitlines() if "ignored" in line]
    assert ignored == ["dd-harness: --tensorboard-dir, --waypoints ignored: options of matcher mct, tracker "
                       "tensorboard, which this run does not use"]
    proc = run_main(capsys, "distill", "--matcher", "mct", "--out", str(tmp_path / "mct"), "--waypoints", "2", *common)
    assert proc.returncode == 0, proc.stderr
    recorded = json.loads((tmp_path / "mct" / "config.json").read_text())["plugin_options"]
    assert recorded["waypoints"] == 2 and set(recorded) == {f.name for cls in (MatcherOptions, SamplerOptions)
                                                            for f in dataclasses.fields(cls)}
    assert "ignored" not in proc.stderr


EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "averaged_mtt"


def test_the_plugins_md_example_is_the_example_package_verbatim():
    text = (EXAMPLE.parent.parent / "PLUGINS.md").read_text(encoding="utf-8")
    shown = dict(re.findall(r"`docs/examples/averaged_mtt/([^`]+)`:\n\n```\w+\n(.*?)```", text, flags=re.S))
    assert set(shown) == {"averaged_mtt/__init__.py", "averaged_mtt/matcher.py", "pyproject.toml"}
    for name, code in shown.items():
        assert (EXAMPLE / name).read_text() == code, name


def test_the_plugins_md_example_plugin_distils(tmp_path, monkeypatch, capsys, expert_dir, mini_fmnist_dir):
    """The example package of docs/PLUGINS.md, registered on a real plugin manager beside the installed
    plugins: its option reaches the command line and config.json, its matcher (MTT's, subclassed
    through the api) averages neighbouring checkpoints, and a distillation runs with it."""
    import importlib
    import json

    import torch

    from mct_plugin.harness.api import MTTMatcher, load_replay_buffer
    from mct_plugin.harness.cli import build_parser
    from mct_plugin.harness.components import ComponentContext
    from mct_plugin.harness.config import DistillConfig
    from mct_plugin.harness.models import FunctionalModel

    from helpers import SMALL_MODEL, create_model

    monkeypatch.syspath_prepend(str(EXAMPLE))
    example = importlib.import_module("averaged_mtt")
    pm = new_plugin_manager(load_entrypoints=True)
    pm.register(example, name="averaged-mtt")
    components = build_components(pm)
    assert pm.problems == []
    matcher_cls = components.matchers.get("mtt-averaged")
    assert issubclass(matcher_cls, MTTMatcher) and components.matchers.entry("mtt-averaged").source == "averaged-mtt"

    out = tmp_path / "run"
    args = build_parser(components).parse_args([
        "distill", "--matcher", "mtt-averaged", "--average-window", "2", "--model", SMALL_MODEL, "--buffer-path",
        str(expert_dir), "--data-path", str(mini_fmnist_dir), "--out", str(out), "--iterations", "2", "--eval-it", "0",
        "--syn-steps", "2", "--expert-epochs", "1", "--max-start-epoch", "2", "--gradient-mode", "unrolled", "--quiet"])
    assert args.handler(args, components) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["matcher"] == "mtt-averaged" and config["sampler"] == "discrete"  # MTT's default sampler
    assert config["plugin_options"] == {"average_window": 2}  # its own option only, none of MCT's
    assert config["component_options"] == {"matcher:mtt-averaged": {"average_window": 2}}  # under its owner
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [row["iteration"] for row in rows if "loss" in row] == [0, 1]
    assert torch.isfinite(torch.load(out / "images.pt", weights_only=True)).all()

    model = FunctionalModel(create_model(SMALL_MODEL, 1, 10, (28, 28)))
    context = ComponentContext(DistillConfig.from_dict(config), components, model=model)
    matcher = components.build("matcher", "mtt-averaged", context)
    assert matcher.options.average_window == 2
    trajectory = load_replay_buffer(expert_dir / "replay_buffer_0.pt", model.shapes)[0]
    flat = [torch.cat([t.reshape(-1) for t in checkpoint]) for checkpoint in trajectory]
    assert torch.allclose(matcher.point(trajectory, 1.0), torch.stack(flat[0:4]).mean(0))  # epochs 0..3
    assert torch.allclose(matcher.point(trajectory, 5.0), torch.stack(flat[3:6]).mean(0))  # 3..5, the last
