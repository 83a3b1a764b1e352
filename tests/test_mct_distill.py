"""MCT in the distillation loop: continuous sampler, matcher, soft labels, gradient modes."""

from __future__ import annotations

import json
import logging

import pytest
import torch

from mct_plugin.harness.config import DistillConfig
from mct_plugin.harness.distill import distill
from mct_plugin.harness.errors import ConfigError
from mct_plugin.mct.sampler import ContinuousSampler

from helpers import SMALL_MODEL, components, distill_args, run_cli

ITERATIONS = 40


@pytest.fixture(scope="module")
def mct_run(tmp_path_factory, small_data, expert_root):
    messages: list[str] = []
    config = DistillConfig(model=SMALL_MODEL, matcher="mct", buffer_path=str(expert_root),
                           out=str(tmp_path_factory.mktemp("mct") / "run"), ipc=1, syn_steps=5, expert_epochs=2,
                           max_start_epoch=3, iterations=ITERATIONS, eval_it=ITERATIONS, num_eval=3,
                           epoch_eval_train=20, seed=0)
    result = distill(config, data=small_data, components=components(), show_progress=False, report=messages.append)
    return result, messages


@pytest.mark.slow
def test_short_mct_distillation_lowers_the_loss_and_samples_continuous_starts(mct_run, small_data):
    """(Accuracy against a random subset is measured by the benchmarks, not asserted here.)"""
    result, messages = mct_run
    assert any("MTT replay buffers, convexified on the fly in memory" in m for m in messages)
    losses = [row["loss"] for row in result.rows if "loss" in row]
    assert sum(losses[-10:]) / 10 < 0.8 * sum(losses[:10]) / 10
    starts = [row["start_epoch"] for row in result.rows if "start_epoch" in row]
    assert any(s != int(s) for s in starts) and 0 <= min(starts) and max(starts) <= 3  # continuous starts
    assert len(result.final_eval.accuracies) == 3 and all(0 <= a <= 1 for a in result.final_eval.accuracies)


@pytest.mark.slow
def test_converted_files_soft_labels_and_the_former_constant_memory_name_from_the_cli(tmp_path, expert_dir):
    converted = tmp_path / "mct"
    assert run_cli("convert", "--to", "mct", str(expert_dir), "--out", str(converted), "--quiet").returncode == 0
    out = tmp_path / "run"
    proc = run_cli(*distill_args(SMALL_MODEL, matcher="mct", buffer_path=converted, out=out, iterations=4, syn_steps=5,
                                 expert_epochs="1.5", max_start_epoch=3, gradient_mode="constant-memory",
                                 teacher_label=True))
    assert proc.returncode == 0, proc.stderr
    assert "file(s) of MCT files" in proc.stderr
    assert "gradient mode 'constant-memory' is now called 'first-order'" in proc.stderr  # the former name works
    assert json.loads((out / "config.json").read_text())["gradient_mode"] == "first-order"  # recorded by its name
    labels = torch.load(out / "labels.pt", weights_only=True)
    assert labels.shape == (10, 10) and torch.allclose(labels.sum(1), torch.ones(10), atol=1e-5)
    rows = [line for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 4  # iterations 0-3; with --eval-it 0 the last one (4) takes no step and has no row


class _Config:
    def __init__(self, **kw):
        self.min_start_epoch, self.max_start_epoch, self.expert_epochs = 0.0, 10.0, 2.5
        self.iterations = 5000
        self.__dict__.update(kw)


def continuous_sampler(config: _Config, **options) -> ContinuousSampler:
    from mct_plugin.harness.api import from_mapping
    from mct_plugin.harness.components import ComponentContext
    from mct_plugin.mct.options import SamplerOptions

    return ContinuousSampler(from_mapping(SamplerOptions, options), ComponentContext(config, None))


def test_continuous_sampler_draws_real_starts_and_clamps_targets():
    torch.manual_seed(0)
    sampler = continuous_sampler(_Config())
    sampler.bind(12)
    segments = [sampler.sample(i) for i in range(2000)]
    starts = torch.tensor([s.start for s in segments])
    assert 0 <= float(starts.min()) < 0.1 and 9.4 < float(starts.max()) <= 9.5  # capped at 12 - 2.5
    assert all(s.target == pytest.approx(s.start + 2.5) for s in segments)
    capped = continuous_sampler(_Config(max_start_epoch=11.0))
    capped.bind(12)  # as in the public code, start + expert_epochs never passes the last epoch
    assert max(capped.sample(i).target for i in range(500)) <= 12.0


def test_linear_curriculum_grows_the_upper_bound_like_the_public_code():
    sampler = continuous_sampler(_Config(), start_curriculum="linear")
    sampler.bind(50)
    assert sampler.upper_bound(0) == 0.5
    assert sampler.upper_bound(1250) == pytest.approx(0.5 + 10 * 1250 / 2500)
    assert sampler.upper_bound(4999) == 10.0
    torch.manual_seed(1)
    assert max(sampler.sample(0).start for _ in range(200)) <= 0.5


def test_continuous_sampler_refuses_impossible_segments():
    with pytest.raises(ConfigError, match="--min-start-epoch 11 \\+ --expert-epochs 2.5 is beyond the 12 epochs"):
        continuous_sampler(_Config(min_start_epoch=11.0)).bind(12)
    with pytest.raises(ConfigError, match="--start-curriculum must be one of"):
        continuous_sampler(_Config(), start_curriculum="cosine")
