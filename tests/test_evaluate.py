"""The evaluation protocol follows the public ``evaluate_synset`` (MTT and MCT code)."""

from __future__ import annotations

import pytest

from mct_plugin.harness.eval.protocol import learning_rate_schedule


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
