"""The evaluation protocol follows the public ``evaluate_synset`` (MTT and MCT code)."""

from __future__ import annotations

import json

import pytest

from mct_plugin.harness.eval.protocol import EvalResult, learning_rate_schedule
from mct_plugin.harness.eval.recorded import RunSummary
from mct_plugin.harness.io.metric_names import EVALUATION, RANDOM_SUBSET


def public_schedule(lr: float, epochs: int) -> list[float]:
    """The learning rate of each training pass in the public code: ``for ep in range(Epoch + 1)``,
    train, then ``if ep in [Epoch // 2 + 1]: lr *= 0.1`` (with a new optimizer)."""
    rates = []
    for ep in range(epochs + 1):
        rates.append(lr)
        if ep == epochs // 2 + 1:
            lr *= 0.1
    return rates


@pytest.mark.parametrize("epochs", [1, 2, 3, 10, 300, 1000])
def test_schedule_equals_the_public_one(epochs):
    ours = learning_rate_schedule(0.02, epochs)
    assert len(ours) == epochs + 1
    assert ours == pytest.approx(public_schedule(0.02, epochs))


def test_the_decay_comes_after_pass_half_plus_one():
    rates = learning_rate_schedule(1.0, 1000)
    assert rates[501] == 1.0 and rates[502] == pytest.approx(0.1) and rates.count(1.0) == 502


def test_a_result_written_into_a_metrics_row_reads_back_the_same():
    result = EvalResult("ConvNetW16", [0.5, 0.25, 0.125], iteration=3)
    row = json.loads(json.dumps({"iteration": 3, **result.to_row(EVALUATION)}))  # as metrics.jsonl holds it
    assert row == {"iteration": 3, "eval_acc_mean": result.mean, "eval_acc_std": result.std,
                   "eval_accs": [0.5, 0.25, 0.125]}
    assert EvalResult.from_row(row, "ConvNetW16", EVALUATION, 3) == result
    assert EvalResult.from_row(row, "ConvNetW16", RANDOM_SUBSET) is None  # the row records no random subset
    assert result.networks == 3 and result.mean == pytest.approx(0.875 / 3)
    assert list(result.as_dict()) == ["model", "accuracies", "mean", "std", "networks", "train_losses"]  # no iteration
    assert EvalResult("m", [0.5]).as_dict()["std"] is None and str(EvalResult("m", [0.5])) == "50.00"  # one network


def test_the_first_evaluation_with_the_highest_mean_is_the_best():
    first, tie, higher = (EvalResult("m", [mean], iteration) for iteration, mean in ((0, 0.5), (1, 0.5), (2, 0.625)))
    assert first.improves_on(None) and higher.improves_on(first)
    assert not tie.improves_on(first) and not first.improves_on(higher)


def row(iteration: int, *accuracies: float) -> dict:
    return {"iteration": iteration, "loss": 0.5, **EvalResult("m", list(accuracies)).to_row(EVALUATION)}


def test_a_run_summary_gives_the_final_the_best_and_the_random_subset_of_the_rows():
    event = {"iteration": 4, "event": "loss_stalled", "message": "the loss has not moved"}
    rows = [{**row(0, 0.25, 0.5), **EvalResult("m", [0.375, 0.5]).to_row(RANDOM_SUBSET)}, {"iteration": 1, "loss": 0.5},
            row(5, 0.75, 0.5), event, row(10, 0.5, 0.75)]
    summary = RunSummary.from_rows(rows, "m", 10)
    assert (summary.final.iteration, summary.best.iteration) == (10, 5)  # a later tie is not the best
    assert summary.best == EvalResult("m", [0.75, 0.5], 5) and summary.events == [event]
    assert summary.as_dict() == {
        "final": {"iteration": 10, "mean": 0.625, "std": 0.125, "networks": 2},
        "best": {"iteration": 5, "mean": 0.625, "std": 0.125, "networks": 2},
        "random_subset": {"iteration": None, "mean": 0.4375, "std": 0.0625, "networks": 2}, "events": [event]}
    assert summary.describe() == ("final set (iteration 10): 62.50 +- 12.50%; best set (iteration 5, kept in best/): "
                                  "62.50 +- 12.50%; random real subset: 43.75 +- 6.25% (2 networks each)")
    unfinished = RunSummary.from_rows(rows[:3], "m", 10)
    assert unfinished.final is None and unfinished.best.iteration == 5
    assert RunSummary.from_rows([], "m", 10).describe() == "no evaluation during distillation (--eval-it 0)"
