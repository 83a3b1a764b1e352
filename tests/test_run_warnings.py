"""A run that does not learn says so: an update that would push alpha below zero is skipped (alpha
keeps its last value; every skip is flagged and counted), an alpha that stopped moving is said; a matching loss that does not move and an evaluation below the random
real subset are said once, in the log and as event rows of metrics.jsonl, also across a resume;
--eval-it 0 writes no empty rows."""

from __future__ import annotations

import json

import pytest

from mct_plugin.harness.config import DistillConfig
from mct_plugin.harness.distill import Distillation
from mct_plugin.harness.io.metric_names import EVALUATION, RANDOM_SUBSET

from helpers import SMALL_MODEL, components


def config(expert_root, out, **overrides) -> DistillConfig:
    values = dict(model=SMALL_MODEL, matcher="mtt", buffer_path=str(expert_root), out=str(out), ipc=1, syn_steps=3,
                  expert_epochs=2, max_start_epoch=3, iterations=3, eval_it=0, num_eval=1, seed=0)
    values.update(overrides)
    return DistillConfig(**values)


def rows_of(out) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def warnings_in(lines: list[str], fragment: str) -> list[str]:
    return [line for line in lines if line.startswith("warning: ") and fragment in line]


def test_alpha_pushed_below_zero_keeps_its_last_value_and_every_skip_is_flagged(tmp_path, small_data, expert_root):
    """A large alpha overshoots the expert, its gradient is positive and --lr-lr 10 would make it
    negative at once: every such update is skipped (flagged on its row, counted in run_summary.json),
    alpha stays at its initial 0.05, one warning; after --alpha-frozen-iterations 3 a second
    warning says that alpha is no longer learnt (no evaluation, no baseline needed)."""
    lines: list[str] = []
    out = tmp_path / "run"
    Distillation(config(expert_root, out, lr_teacher=0.05, lr_lr=10.0, lr_img=1.0, alpha_frozen_iterations=3),
                 data=small_data, components=components(), show_progress=False, report=lines.append).run()
    rows = rows_of(out)
    events = [r for r in rows if "event" in r]
    assert [(e["iteration"], e["event"]) for e in events] == [(0, "alpha_kept"), (2, "alpha_frozen")]
    assert "alpha would have become -" in events[0]["message"] and "keeps its last value 0.05" in events[0]["message"]
    assert "alpha has stayed at 0.05 for 3 iterations (iterations 0-2" in events[1]["message"]
    assert len(warnings_in(lines, "alpha would have become")) == 1 and len(warnings_in(lines, "alpha has stayed")) == 1
    steps = [r for r in rows if "event" not in r]
    assert [r["iteration"] for r in steps] == [0, 1, 2]  # --eval-it 0: no empty row for iteration 3
    assert all(r["alpha_used"] == r["alpha"] == pytest.approx(0.05) and r["alpha_update_skipped"] for r in steps)
    assert json.loads((out / "run_summary.json").read_text())["alpha_updates_skipped"] == 3


def test_a_learnt_alpha_is_not_flagged_and_a_fixed_one_is_not_frozen(tmp_path, small_data, expert_root):
    """Updates that keep alpha positive are not flagged; with --lr-lr 0 alpha is fixed on purpose:
    no frozen-alpha warning however long it stays."""
    learnt = tmp_path / "learnt"
    Distillation(config(expert_root, learnt, lr_lr=1e-6, alpha_frozen_iterations=2), data=small_data,
                 components=components(), show_progress=False).run()
    steps = [r for r in rows_of(learnt) if "event" not in r]
    assert not any(r["alpha_update_skipped"] for r in steps) and len({r["alpha"] for r in steps}) == 3
    assert json.loads((learnt / "run_summary.json").read_text())["alpha_updates_skipped"] == 0
    fixed = tmp_path / "fixed"
    Distillation(config(expert_root, fixed, lr_lr=0.0, alpha_frozen_iterations=2), data=small_data,
                 components=components(), show_progress=False).run()
    assert not [r for r in rows_of(fixed) if "event" in r]


def test_a_stalled_loss_and_an_evaluation_below_the_random_subset_are_said_once(tmp_path, small_data, expert_root):
    """Noise images that barely change (--lr-img 1) score below a random real subset; with a wide
    --stall-tolerance (the tiny run's losses count as "not moved") the stall fires at iteration 2,
    when the window of 3 is full. The run stops after the warnings and resumes (with another
    window, which may change on resume): nothing is said twice, the random subset is not trained
    again, and each warning is one event row in metrics.jsonl."""
    out = tmp_path / "run"
    stalled = config(expert_root, out, pix_init="noise", lr_img=1.0, lr_lr=0.0, iterations=3, eval_it=2,
                     epoch_eval_train=10, stall_iterations=3, stall_tolerance=0.9)
    first: list[str] = []
    Distillation(stalled, data=small_data, components=components(), show_progress=False,
                 report=first.append).run(stop_at=3)
    assert len(warnings_in(first, "has not moved for 3 iterations")) == 1
    assert len(warnings_in(first, "is below the random real subset")) == 1
    resumed: list[str] = []
    Distillation(stalled.replace(stall_iterations=2), data=small_data, components=components(), resume=True,
                 show_progress=False, report=resumed.append).run()
    assert not [line for line in resumed if line.startswith("warning: ")]
    rows = rows_of(out)
    events = [(r["iteration"], r["event"]) for r in rows if "event" in r]
    assert events == [(2, "below_random_subset"), (2, "loss_stalled")]
    baseline = [r for r in rows if RANDOM_SUBSET.accuracies in r]
    assert [r["iteration"] for r in baseline] == [0]
    assert all(r[EVALUATION.mean] < baseline[0][RANDOM_SUBSET.mean] for r in rows if r.get("iteration") in (2, 3)
               and EVALUATION.mean in r)
    summary = json.loads((out / "run_summary.json").read_text())
    assert [e["event"] for e in summary["events"]] == ["below_random_subset", "loss_stalled"]
