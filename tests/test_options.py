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
    from mct_plugin.mct.options import ConvertOptions, ConvexifyOptions, DistillOptions

    default = inspect.signature(ConvexifiedTrajectory.from_checkpoints).parameters["options"].default
    assert default == ConvexifyOptions()
    for name in ("waypoints", "smooth", "waypoint_spacing", "pacing"):
        assert getattr(DistillOptions(), name) == getattr(ConvertOptions(), name) == getattr(default, name)


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
    assert text.count("<!-- options: ") == 2
    assert tables.regenerate(text) == text, "README option tables drifted: run python scripts/option_tables.py"
    drifted = text.replace("| `--waypoints P` | 4 |", "| `--waypoints P` | 2 |", 1)
    assert tables.regenerate(drifted) == text
