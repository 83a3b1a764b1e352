"""Options from one source: frozen configs, shared groups declared once, defaults that come from
the declarations, and README tables generated from them."""

from __future__ import annotations

import dataclasses
import importlib.util

import pytest

from mct_plugin.harness import config as harness_config
from mct_plugin.harness.config import DistillConfig, EvalOptions, EvalSettings, RunOptions

from helpers import ROOT, SMALL_MODEL, components


def option_classes():
    from mct_plugin.mct import options as mct_options
    from mct_plugin.trackers import tensorboard, wandb

    modules = (harness_config, mct_options, tensorboard, wandb)
    return [cls for module in modules for cls in vars(module).values()
            if dataclasses.is_dataclass(cls) and cls.__module__ == module.__name__]


@pytest.mark.parametrize("cls", option_classes(), ids=lambda cls: cls.__name__)
def test_every_config_is_frozen(cls):
    instance = cls()
    name = dataclasses.fields(cls)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(instance, name, getattr(instance, name))


def test_shared_groups_are_declared_once():
    """The evaluation settings and seed/device/track are fields of one class each; the commands
    inherit them (same default, range and help everywhere)."""
    def declares(cls, name):
        return name in cls.__dict__.get("__annotations__", {})

    for name in ("num_eval", "epoch_eval_train", "batch_train", "dsa", "dsa_strategy"):
        assert declares(EvalOptions, name) and not declares(DistillConfig, name) and not declares(EvalSettings, name)
        assert DistillConfig.__dataclass_fields__[name].metadata == EvalOptions.__dataclass_fields__[name].metadata
        assert EvalSettings.__dataclass_fields__[name].metadata == EvalOptions.__dataclass_fields__[name].metadata
    for name in ("seed", "device", "track"):
        assert not declares(DistillConfig, name) and not declares(harness_config.ExpertConfig, name)
        for command in (DistillConfig, harness_config.ExpertConfig):
            assert command.__dataclass_fields__[name].metadata == RunOptions.__dataclass_fields__[name].metadata


def test_the_converter_and_matcher_defaults_are_the_option_declarations():
    import inspect

    from mct_plugin.mct.convexified import ConvexifiedTrajectory
    from mct_plugin.mct.options import ConvertOptions, ConvexifyOptions, MatcherOptions

    default = inspect.signature(ConvexifiedTrajectory.from_checkpoints).parameters["options"].default
    assert default == ConvexifyOptions()
    for name in ("waypoints", "smooth", "waypoint_spacing", "pacing"):
        assert getattr(MatcherOptions(), name) == getattr(ConvertOptions(), name) == getattr(default, name)


def test_a_distillation_leaves_the_callers_config_untouched(tmp_path, small_data, expert_root):
    from mct_plugin.harness.distill import Distillation

    config = DistillConfig(model=SMALL_MODEL, matcher="mtt", buffer_path=str(expert_root), out=str(tmp_path / "run"),
                           iterations=1, eval_it=0, syn_steps=1, expert_epochs=1, max_start_epoch=1)
    before = dataclasses.asdict(config)
    run = Distillation(config, data=small_data, components=components(), show_progress=False)
    run.close()
    assert dataclasses.asdict(config) == before and config.sampler is None and config.gradient_mode is None
    assert (run.config.sampler, run.config.gradient_mode) == ("discrete", "unrolled")  # resolved in a copy


def test_the_readme_option_tables_are_generated_from_the_declarations():
    spec = importlib.util.spec_from_file_location("option_tables", ROOT / "scripts" / "option_tables.py")
    tables = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tables)
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert text.count("<!-- options: ") == 3  # the mct matcher, the continuous sampler, the mct converter
    assert tables.regenerate(text) == text, "README option tables drifted: run python scripts/option_tables.py"
    drifted = text.replace("| `--waypoints P` | 4 |", "| `--waypoints P` | 2 |", 1)
    assert tables.regenerate(drifted) == text


# -- boolean flags say what they do ------------------------------------------------------------------
# A flag that turns something off (store_false, or spelt --no-X) describes what it does, in words that
# turn off: never the description of the feature it removes (once, "--no-dsa: differentiable
# augmentation of the synthetic images" and "--no-baseline: also evaluate a random real subset").
DISABLING = ("do not ", "don't ", "disable ", "skip ", "turn off", "omit ", "no ", "without ")


def every_command_parser():
    """``(command, parser)`` for dd-harness itself and every sub-command, the plugins' included,
    built as the CLI builds them (``build_parser`` over the installed components)."""
    import argparse

    from mct_plugin.harness.cli import build_parser

    parser = build_parser(components())
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return [("dd-harness", parser), *sub.choices.items()]


def boolean_flags(parser):
    import argparse

    switches = (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse.BooleanOptionalAction)
    return [a for a in parser._actions if isinstance(a, switches)]


def test_every_boolean_flag_of_every_command_says_what_it_does():
    from mct_plugin.harness.options import fields_of

    positive_descriptions = {f.metadata.get("help") for cls in option_classes() for f in fields_of(cls).values()}
    commands, negatives = set(), []
    for command, parser in every_command_parser():
        commands.add(command)
        for action in boolean_flags(parser):
            spelt = "/".join(action.option_strings)
            assert (action.help or "").strip(), f"{command} {spelt} has no help"
            if action.const is False or any(s.startswith("--no-") for s in action.option_strings):
                negatives.append(f"{command} {spelt}")
                assert action.help.lower().startswith(DISABLING), f"{command} {spelt}: {action.help!r}"
                assert action.help not in positive_descriptions, f"{command} {spelt} shows the positive description"
    assert {"experts", "distill", "eval", "convert", "data", "demo", "plugins", "models", "recipes"} <= commands
    assert {"distill --no-dsa", "eval --no-baseline"} <= set(negatives)


def test_a_negative_flag_without_its_own_words_says_turn_off():
    import argparse

    from mct_plugin.harness.options import add_options, option, option_table

    @dataclasses.dataclass(frozen=True)
    class Switches:
        labels: bool = option(True, "soft labels from the expert")

    parser = argparse.ArgumentParser()
    add_options(parser, Switches)
    (action,) = boolean_flags(parser)
    assert action.option_strings == ["--no-labels"] and action.help == "turn off: soft labels from the expert"
    assert "| `--no-labels` | on | turn off: soft labels from the expert |" in option_table(Switches)


# -- a misspelt or abbreviated option --------------------------------------------------------------
def test_abbreviations_are_errors_with_a_did_you_mean_and_the_commands_own_help(capsys):
    from helpers import assert_one_line_error, run_main

    assert all(parser.allow_abbrev is False for _, parser in every_command_parser())
    assert_one_line_error(run_main(capsys, "distill", "--syn", "5"),
                          "unrecognized arguments: --syn 5; did you mean --syn-steps? (see 'dd-harness distill --help')")
    assert_one_line_error(run_main(capsys, "experts", "--modle=ConvNet"),
                          "unrecognized arguments: --modle=ConvNet; did you mean --model? "
                          "(see 'dd-harness experts --help')")
    assert_one_line_error(run_main(capsys, "--verbse", "plugins"),  # given to dd-harness, not to the command
                          "unrecognized arguments: --verbse; did you mean --verbose? (see 'dd-harness --help')")
    line = assert_one_line_error(run_main(capsys, "eval", "--run", "r", "--zzz"), "(see 'dd-harness eval --help')")
    assert "did you mean" not in line
