"""ExpertPool: MTT's expert order (one file in memory), resumable state, side-effect-free peek."""

from __future__ import annotations

from pathlib import Path

import torch

from mct_plugin.harness.experts.pool import ExpertPool

FILES = [Path("a.pt"), Path("b.pt"), Path("c.pt")]


def loader(log):
    def load(path):
        log.append(path.name)
        return [f"{path.stem}{i}" for i in range(2)]
    return load


def test_cycles_through_every_expert_loading_one_file_at_a_time():
    torch.manual_seed(0)
    loads = []
    pool = ExpertPool(FILES, loader(loads))
    first_round = [pool.next()[0] for _ in range(6)]
    assert sorted(first_round) == ["a0", "a1", "b0", "b1", "c0", "c1"]
    assert len(loads) == 3  # each file loaded once per round
    labels = {pool.next()[1] for _ in range(6)}
    assert labels == {f"{f.name}#{i}" for f in FILES for i in range(2)}


def test_state_round_trip_continues_the_same_sequence():
    torch.manual_seed(1)
    pool = ExpertPool(FILES, loader([]))
    for _ in range(3):
        pool.next()
    state, rng = pool.state_dict(), torch.get_rng_state()
    expected = [pool.next()[0] for _ in range(7)]
    restored = ExpertPool(FILES, loader([]))
    restored.load_state_dict(state)
    torch.set_rng_state(rng)
    assert [restored.next()[0] for _ in range(7)] == expected


def test_peek_neither_advances_nor_draws_random_numbers():
    torch.manual_seed(2)
    pool = ExpertPool(FILES, loader([]))
    reference = ExpertPool(FILES, loader([]))
    reference.load_state_dict(pool.state_dict())
    rng = torch.get_rng_state()
    pool.peek_first()
    assert torch.equal(torch.get_rng_state(), rng)
    got = [pool.next()[0] for _ in range(5)]
    torch.set_rng_state(rng)
    assert got == [reference.next()[0] for _ in range(5)]


def test_max_experts_keeps_the_first_experts_of_every_file():
    torch.manual_seed(3)
    pool = ExpertPool(FILES, loader([]), max_experts=1)
    assert {pool.next()[0] for _ in range(9)} == {"a0", "b0", "c0"}  # every file, its first expert only


def test_max_files_keeps_the_first_files_in_name_order(tmp_path, small_data):
    """--max-files is applied by the matcher (PooledMatcher.open) before the pool is built."""
    from mct_plugin.harness.components import ComponentContext
    from mct_plugin.harness.config import DistillConfig
    from mct_plugin.harness.experts.buffers import save_replay_buffer
    from mct_plugin.harness.models import FunctionalModel

    from helpers import components, create_model
    from mct_plugin.mtt.matcher import MTTMatcher

    from helpers import random_trajectory

    for n in range(3):
        save_replay_buffer([random_trajectory("ConvNetW16", 2, seed=n)], tmp_path / f"replay_buffer_{n}.pt")
    model = FunctionalModel(create_model("ConvNetW16", 1, 10, (28, 28)))
    config = DistillConfig(model="ConvNetW16", matcher="mtt", max_files=2)
    matcher = components().build("matcher", "mtt", ComponentContext(config, components(), lambda m: None, model=model))
    assert isinstance(matcher, MTTMatcher)
    matcher.open(tmp_path)
    assert [p.name for p in matcher.pool.files] == ["replay_buffer_0.pt", "replay_buffer_1.pt"]
    assert {matcher.next_trajectory()[1].split("#")[0] for _ in range(6)} == {"replay_buffer_0.pt", "replay_buffer_1.pt"}
