"""Convexified trajectories: beta table, hand-computed examples, continuous points, public options."""

from __future__ import annotations

import pytest
import torch

from mct_plugin.harness.errors import ConfigError
from mct_plugin.mct.convexified import ConvexifiedTrajectory, waypoint_epochs

from helpers import convexify, random_trajectory


def t(*values):
    return torch.tensor(values, dtype=torch.float32)


# trajectory of two tensors: a 2-vector moving (0,0) -> (3,4) -> (6,0) and a scalar 1 -> 2 -> 4
THREE = [[t(0, 0), t(1)], [t(3, 4), t(2)], [t(6, 0), t(4)]]


def test_hand_computed_three_checkpoint_example_with_two_waypoints():
    c = convexify(THREE, waypoints=2)
    assert c.epochs == [0, 2]
    # d = (5, 5) for the vector, (1, 2) for the scalar
    assert torch.allclose(c.beta, torch.tensor([[0, 0], [0.5, 1 / 3], [1, 1]]))
    assert torch.allclose(c.point_at(1)[0], t(3, 0)) and torch.allclose(c.point_at(1)[1], t(2))
    assert torch.allclose(c.point_at(0.5)[0], t(1.5, 0)) and torch.allclose(c.point_at(0.5)[1], t(1.5))
    assert torch.allclose(c.point_at(1.5)[0], t(4.5, 0)) and torch.allclose(c.point_at(1.5)[1], t(3))
    assert all(torch.equal(a, b) for a, b in zip(c.point_at(0), THREE[0]))
    assert all(torch.equal(a, b) for a, b in zip(c.point_at(2), THREE[2]))


def test_three_waypoints_on_three_checkpoints_reproduce_the_trajectory():
    c = convexify(THREE, waypoints=3)
    assert c.epochs == [0, 1, 2]
    for k in range(3):
        assert all(torch.equal(a, b) for a, b in zip(c.point_at(k), THREE[k]))
    assert torch.allclose(c.point_at(0.5)[0], t(1.5, 2))


FIVE = [[t(v)] for v in (0, 1, 5, 4, 10)]


def test_hand_computed_four_waypoint_example():
    c = convexify(FIVE, waypoints=4)
    assert c.epochs == [0, 1, 3, 4]  # round(p * 4 / 3)
    # piece [1, 3]: d2 = 4, d3 = 1 -> beta(2) = 0.8; interior waypoint rows are 0, the last row 1
    assert torch.allclose(c.beta[:, 0], t(0, 0, 0.8, 0, 1))
    assert torch.allclose(c.point_at(2)[0], t(1 + 0.8 * 3))
    assert torch.allclose(c.point_at(2.5)[0], t(1 + 0.9 * 3))
    assert torch.allclose(c.point_at(3.5)[0], t(4 + 0.5 * 6))
    for k in (0, 1, 3, 4):
        assert torch.equal(c.point_at(k)[0], FIVE[k][0])


def test_public_spacing_and_smoothing_as_documented():
    c = convexify(FIVE, waypoints=3, smoothing="public", spacing="public")
    assert c.epochs == [0, 2, 4]  # range(0, 5, 5 // 2)
    # beta from the original pieces: [0,2]: d = 1, 4 -> 0.2 ; [2,4]: d = 1, 6 -> 1/7
    assert torch.allclose(c.beta[:, 0], t(0, 0.2, 0, 1 / 7, 1))
    # interior waypoint = mean of its neighbours, end = mean of the last two checkpoints
    assert [float(w[0]) for w in c.waypoints] == [0.0, 2.5, 7.0]
    assert waypoint_epochs(50, 5, "public") == [0, 12, 24, 36, 48, 50]  # the public rule can add a waypoint
    assert waypoint_epochs(50, 4, "even") == [0, 17, 33, 50]
    two = convexify(FIVE, waypoints=2, smoothing="public")
    assert float(two.waypoints[-1][0]) == 10.0  # the public code smooths only when P > 2
    ends = convexify(FIVE, waypoints=2, smoothing="end")
    assert float(ends.waypoints[-1][0]) == 7.0


def random_walk(epochs: int = 12, seed: int = 0) -> list[list[torch.Tensor]]:
    """Two small tensors taking steps as large as half their scale: pieces far from straight."""
    return random_trajectory([(4, 3), (5,)], epochs, seed, start=1.0, step=0.5)


@pytest.mark.parametrize("waypoints", [2, 4])
def test_beta_is_monotone_from_zero_to_one_and_points_lie_on_segments(waypoints):
    trajectory = random_walk()
    c = convexify(trajectory, waypoints=waypoints)
    for start, end in zip(c.epochs[:-1], c.epochs[1:]):
        piece = torch.cat([c.beta[start:end], torch.ones(1, c.beta.shape[1])])
        assert torch.all(piece[0] == 0)
        assert torch.all(piece[1:] >= piece[:-1])
        for s in torch.linspace(start, end, 9).tolist()[:-1]:
            point = c.point_at(s)
            for layer, (a, b) in enumerate(zip(c.waypoints[c.piece_of(s)], c.waypoints[c.piece_of(s) + 1])):
                direction = (b - a).flatten()
                offset = (point[layer] - a).flatten()
                coefficient = float(offset @ direction / (direction @ direction))
                assert -1e-6 <= coefficient <= 1 + 1e-6
                assert torch.allclose(offset, coefficient * direction, atol=1e-5)  # on the segment
    assert torch.all(c.beta[-1] == 1)


def test_continuous_points_interpolate_beta_linearly_and_the_end_is_exact():
    trajectory = random_walk()
    c = convexify(trajectory)
    _, b2 = c.beta_at(2.0)
    _, b3 = c.beta_at(3.0)
    _, b = c.beta_at(2.25)
    assert torch.allclose(b, 0.75 * b2 + 0.25 * b3)
    assert all(torch.equal(a, e) for a, e in zip(c.point_at(c.num_epochs), trajectory[-1]))
    assert all(torch.equal(a, e) for a, e in zip(c.point_at(0), trajectory[0]))
    with pytest.raises(ValueError):
        c.point_at(c.num_epochs + 0.5)
    assert c.flat_point_at(1.5).numel() == sum(p.numel() for p in trajectory[0])


def test_pace_follows_the_original_trajectory():
    # a trajectory that moves fast early and slowly later: beta rises quickly at first
    trajectory = [[t(float(v))] for v in (0, 8, 12, 14, 15, 15.5)]
    c = convexify(trajectory)
    steps = torch.diff(c.beta[:, 0])
    assert torch.all(steps[:-1] > steps[1:])


def test_impossible_waypoint_counts_are_refused():
    with pytest.raises(ConfigError, match="--waypoints 4 is larger than the 3 checkpoints"):
        convexify(THREE, waypoints=4)
    with pytest.raises(ConfigError, match="--waypoints must be at least 2"):
        convexify(THREE, waypoints=1)


# -- pacing: how beta advances along a piece (the paper's ablation of beta) ------------------------------
def test_uniform_pacing_advances_beta_linearly_in_every_piece():
    from mct_plugin.mct.convexified import beta_table

    table = beta_table(random_walk(12), [0, 4, 12], "uniform")
    assert torch.allclose(table[:4, 0], torch.tensor([0, 0.25, 0.5, 0.75], dtype=torch.float64))
    assert torch.allclose(table[4:12, 1], torch.arange(8, dtype=torch.float64) / 8)
    assert torch.equal(table[:, 0], table[:, 1]) and table[-1].tolist() == [1.0, 1.0]


def test_decreasing_pacing_starts_at_zero_with_shrinking_increments():
    from mct_plugin.mct.convexified import beta_table

    table = beta_table(random_walk(4), [0, 4], "decreasing")
    # increments proportional to 4, 3, 2, 1: beta = 0, 4/10, 7/10, 9/10, 1 (the public code starts at 5/15)
    assert torch.allclose(table[:, 0], torch.tensor([0, 0.4, 0.7, 0.9, 1.0], dtype=torch.float64))


def test_projected_pacing_is_the_clipped_monotone_projection_on_the_chord():
    from mct_plugin.mct.convexified import beta_table

    trajectory = random_walk(10, seed=3)
    table = beta_table(trajectory, [0, 10], "projected")
    flat = [torch.cat([t.double().reshape(-1) for t in c]) for c in trajectory]
    chord = flat[-1] - flat[0]
    raw = torch.stack([(f - flat[0]).dot(chord) / chord.dot(chord) for f in flat])
    expected = torch.cummax(raw.clamp(0, 1), 0).values
    expected[-1] = 1.0
    assert torch.allclose(table[:, 0], expected) and torch.equal(table[:, 0], table[:, 1])
    assert (table[1:, 0] >= table[:-1, 0]).all() and table[0, 0] == 0


def test_pacing_does_not_change_the_waypoints_and_distance_is_the_default():
    trajectory = random_walk(8)
    default = convexify(trajectory, 3, "none", "even")
    distance = convexify(trajectory, 3, "none", "even", "distance")
    uniform = convexify(trajectory, 3, "none", "even", "uniform")
    assert torch.equal(default.beta, distance.beta) and not torch.equal(default.beta, uniform.beta)
    for a, b in zip(default.waypoints, uniform.waypoints):
        assert all(torch.equal(x, y) for x, y in zip(a, b))
    with pytest.raises(ConfigError, match="unknown pacing 'cosine'"):
        convexify(trajectory, 2, pacing="cosine")
