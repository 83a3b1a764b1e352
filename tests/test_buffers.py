"""Expert trajectories: the MTT replay-buffer format, written by `experts`, validated on read."""

from __future__ import annotations

import json
import pickle

import pytest
import torch

from mct_plugin.harness.experts.buffers import (load_replay_buffer, next_buffer_index, replay_buffer_files,
                                        resolve_buffer_dir, save_replay_buffer)
from mct_plugin.harness.errors import BufferFormatError, DataNotFoundError
from mct_plugin.harness.models import FunctionalModel

from helpers import (SMALL_MODEL, PickleExploit, assert_one_line_error, components, create_model, distill_args,
                     model_shapes, random_trajectory, run_cli, run_main, tree_snapshot)


def test_experts_write_the_public_layout_readable_with_plain_torch(expert_dir):
    files = sorted(p.name for p in expert_dir.iterdir())
    assert files == ["replay_buffer_0.json", "replay_buffer_0.pt", "replay_buffer_1.json",
                     "replay_buffer_1.pt"]  # 4 experts, 2 per file, what trained them beside each; no temp files
    raw = torch.load(expert_dir / "replay_buffer_0.pt", weights_only=True)
    assert isinstance(raw, list) and len(raw) == 2
    trajectory = raw[0]
    assert isinstance(trajectory, list) and len(trajectory) == 6  # 5 epochs -> 6 checkpoints
    checkpoint = trajectory[0]
    assert isinstance(checkpoint, list) and all(type(t) is torch.Tensor for t in checkpoint)
    assert [tuple(t.shape) for t in checkpoint] == model_shapes(SMALL_MODEL)
    assert all(t.dtype == torch.float32 and t.device.type == "cpu" for t in checkpoint)
    # parameters are copied at every epoch: consecutive checkpoints differ (the CPU aliasing trap)
    for k in range(5):
        assert any(not torch.equal(a, b) for a, b in zip(trajectory[k], trajectory[k + 1]))
    # and they load back into the model
    model = create_model(SMALL_MODEL, 1, 10, (28, 28))
    with torch.no_grad():
        for p, t in zip(model.parameters(), trajectory[-1]):
            p.copy_(t)
    assert torch.equal(next(model.parameters()), trajectory[-1][0])


def test_experts_are_real_networks_that_learned(expert_dir, small_data):
    from mct_plugin.harness.training import test_accuracy

    model = create_model(SMALL_MODEL, 1, 10, (28, 28))
    final = torch.load(expert_dir / "replay_buffer_1.pt", weights_only=True)[1][-1]
    with torch.no_grad():
        for p, t in zip(model.parameters(), final):
            p.copy_(t)
    _, accuracy = test_accuracy(model, small_data.test_images, small_data.test_labels)
    assert accuracy > 0.6  # chance is 0.1


def test_one_expert_epoch_on_a_fashion_mnist_subset_beats_chance_widely(fmnist):
    from mct_plugin.harness.config import ExpertConfig
    from mct_plugin.harness.experts.train import train_one_expert

    data = fmnist.train_subset(5000, seed=0)
    config = ExpertConfig(model="ConvNetW32", train_epochs=1, lr_teacher=0.01)
    _, record = train_one_expert(config, data, seed=0, components=components())
    assert record.final_test_acc > 0.55, record  # one epoch of plain SGD at lr 0.01 on 5000 images


def experts_command(data_path, buffers, *extra: str) -> list[str]:
    """A tiny ``experts`` command: ConvNetW16, 300 real images, one epoch, one expert per file."""
    return ["experts", "--data-path", str(data_path), "--model", "ConvNetW16", "--subset", "300", "--train-epochs", "1",
            "--save-interval", "1", "--buffer-path", str(buffers), "--quiet", *extra]


def recorded_seeds(directory) -> dict[str, list[int]]:
    return {path.name: json.loads(path.read_text())["expert_seeds"] for path in sorted(directory.glob("*.json"))}


def test_an_experts_command_run_again_does_nothing_and_more_needs_add(tmp_path, capsys, mini_fmnist_dir):
    """Twice: the same files, byte for byte and not rewritten, and one line saying so; other
    settings refused naming the file and the flags; another count refused with the hint; --add
    trains new files whose recorded seeds differ from those already there."""
    buffers = tmp_path / "buffers"
    directory = buffers / "FashionMNIST" / "ConvNetW16"
    command = experts_command(mini_fmnist_dir, buffers, "--num-experts", "2")
    assert run_main(capsys, *command).returncode == 0
    before = tree_snapshot(directory)
    written = {path.name: path.stat().st_mtime_ns for path in directory.iterdir()}
    again = run_main(capsys, *command)
    assert again.returncode == 0 and again.stdout.split() == [str(directory / "replay_buffer_0.pt"),
                                                             str(directory / "replay_buffer_1.pt")]
    assert again.stderr.splitlines() == [f"dd-harness: {directory} already holds the 2 experts of this command (2 files, "
                                         f"replay_buffer_0.pt to replay_buffer_1.pt): nothing to do (--add trains more)"]
    assert tree_snapshot(directory) == before
    assert {path.name: path.stat().st_mtime_ns for path in directory.iterdir()} == written

    other = run_main(capsys, *command, "--train-epochs", "2", "--augmentation", "none")
    assert_one_line_error(other, f"{directory / 'replay_buffer_0.pt'} holds experts trained with other settings",
                          "--train-epochs 1 (replay_buffer_0.json) vs 2 (this command); "
                          "--augmentation crop_scale_rotate (replay_buffer_0.json) vs none (this command)")
    assert_one_line_error(run_main(capsys, *command, "--num-experts", "3"),
                          "holds 2 experts of these settings", "not the 3 of --num-experts 3",
                          "--add --num-experts 1")
    assert_one_line_error(run_main(capsys, *command, "--add", "--seed", "1"), "--seed 0 (replay_buffer_0.json) vs 1")
    assert tree_snapshot(directory) == before

    added = run_main(capsys, *command, "--add", "--num-experts", "1")
    assert added.returncode == 0 and added.stdout.split() == [str(directory / "replay_buffer_2.pt")]
    seeds = recorded_seeds(directory)
    assert [len(s) for s in seeds.values()] == [1, 1, 1] and len({s for v in seeds.values() for s in v}) == 3
    assert {name: data for name, data in tree_snapshot(directory).items() if name in before} == before
    assert "nothing to do" in run_main(capsys, *command, "--num-experts", "3").stderr


def test_a_buffer_without_a_training_record_needs_add(tmp_path, capsys, mini_fmnist_dir):
    buffers = tmp_path / "buffers"
    directory = buffers / "FashionMNIST" / "ConvNetW16"
    directory.mkdir(parents=True)
    torch.save([random_trajectory("ConvNetW16", 1, 0)], directory / "replay_buffer_4.pt")  # the public buffer.py's
    before = tree_snapshot(directory)
    command = experts_command(mini_fmnist_dir, buffers, "--num-experts", "1")
    assert_one_line_error(run_main(capsys, *command), f"{directory / 'replay_buffer_4.pt'} has no training record",
                          "cannot be checked", "--add")
    assert tree_snapshot(directory) == before
    assert run_main(capsys, *command, "--add").returncode == 0
    assert sorted(p.name for p in directory.iterdir()) == ["replay_buffer_4.pt", "replay_buffer_5.json",
                                                           "replay_buffer_5.pt"]
    assert next_buffer_index(directory) == 6


def test_fresh_seeds_avoid_those_already_recorded():
    from mct_plugin.harness.experts.train import _fresh_seeds, expert_seed

    assert _fresh_seeds(0, 2, [2, 1], set()) == [(2, [expert_seed(0, 2, 0), expert_seed(0, 2, 1)]),
                                                  (3, [expert_seed(0, 3, 0)])]
    taken = {expert_seed(0, 2, 0), expert_seed(0, 2, 0) + 1}  # e.g. the seeds of a renamed file
    files = _fresh_seeds(0, 2, [2], taken)
    assert len(set(files[0][1])) == 2 and not set(files[0][1]) & taken


def test_buffer_dir_resolution_follows_the_public_layout(expert_root, expert_dir, tmp_path):
    subdir = components().datasets.get("FashionMNIST").buffer_subdir(SMALL_MODEL, False)
    assert resolve_buffer_dir(expert_dir, subdir) == expert_dir
    assert resolve_buffer_dir(expert_root, subdir) == expert_dir
    with pytest.raises(DataNotFoundError) as info:
        resolve_buffer_dir(tmp_path, components().datasets.get("CIFAR10").buffer_subdir("ConvNet", False))
    assert str(tmp_path / "CIFAR10_NO_ZCA" / "ConvNet") in str(info.value)


# -- bad input ------------------------------------------------------------------------------
def test_round_trip_of_a_valid_buffer(tmp_path):
    path = save_replay_buffer([random_trajectory(SMALL_MODEL, 2, seed=0)], tmp_path / "replay_buffer_0.pt")
    loaded = load_replay_buffer(path, model_shapes(SMALL_MODEL))
    assert len(loaded) == 1 and len(loaded[0]) == 3
    assert all(torch.equal(a, b) for a, b in zip(loaded[0][2], random_trajectory(SMALL_MODEL, 2, seed=0)[2]))
    assert replay_buffer_files(tmp_path) == [path]


@pytest.mark.parametrize("case,payload,message", [
    ("dict", {"a": 1}, "holds a dict, expected a list of expert trajectories"),
    ("empty", [], "holds an empty list"),
    ("flat", [torch.zeros(3)], "expert 0 is a Tensor, expected a list of checkpoints"),
    ("short", [[[torch.zeros(3)]]], "expert 0 has 1 checkpoint(s); at least 2 are needed"),
    ("strings", [[["a"] * 14, ["b"] * 14]], "expert 0, checkpoint 0, parameter 0 (features.0.weight) is a str"),
    ("count", [[["a"], ["b"]]], "expert 0, checkpoint 0 has 1 tensors, expected 14"),
    ("ints", [[[torch.zeros(2, dtype=torch.int64)]] * 2], "has dtype torch.int64"),
])
def test_malformed_buffers_name_file_expert_checkpoint_parameter(tmp_path, case, payload, message):
    path = tmp_path / f"replay_buffer_{case}.pt"
    torch.save(payload, path)
    with pytest.raises(BufferFormatError) as info:
        model = FunctionalModel(create_model(SMALL_MODEL, 1, 10, (28, 28)))
        named = case in ("strings", "count")
        load_replay_buffer(path, model.shapes if named else None, model.names if named else None)
    assert str(path) in str(info.value) and message in str(info.value)


def test_nan_and_shape_mismatch_are_located(tmp_path):
    trajectory = random_trajectory(SMALL_MODEL, 2, seed=0)
    trajectory[1][3][0] = float("nan")
    torch.save([random_trajectory(SMALL_MODEL, 2, seed=0), trajectory], tmp_path / "nan.pt")
    with pytest.raises(BufferFormatError, match=r"nan.pt: expert 1, checkpoint 1, parameter 3 contains NaN or Inf"):
        load_replay_buffer(tmp_path / "nan.pt", model_shapes(SMALL_MODEL))
    with pytest.raises(BufferFormatError, match=r"expert 0, checkpoint 0, parameter 0 has shape \(32, 1, 3, 3\), expected \(128, 1, 3, 3\)"):
        load_replay_buffer(tmp_path / "nan.pt", FunctionalModel(create_model("ConvNet", 1, 10, (28, 28))).shapes)


def test_identical_checkpoints_are_refused_as_a_broken_recording(tmp_path):
    final = random_trajectory(SMALL_MODEL, 2, seed=0)[-1]
    torch.save([[final] * 4], tmp_path / "aliased.pt")  # what the public buffer.py records on CPU
    with pytest.raises(BufferFormatError, match="all 4 checkpoints are identical"):
        load_replay_buffer(tmp_path / "aliased.pt")


def test_truncated_and_empty_files(tmp_path):
    path = save_replay_buffer([random_trajectory(SMALL_MODEL, 2, seed=0)], tmp_path / "good.pt")
    (tmp_path / "cut.pt").write_bytes(path.read_bytes()[:2000])
    (tmp_path / "zero.pt").write_bytes(b"")
    with pytest.raises(BufferFormatError, match="cut.pt is truncated or not a torch file"):
        load_replay_buffer(tmp_path / "cut.pt")
    with pytest.raises(BufferFormatError, match=r"zero.pt is empty \(0 bytes\)"):
        load_replay_buffer(tmp_path / "zero.pt")


@pytest.mark.parametrize("writer", ["torch", "pickle"])
def test_pickles_that_import_code_are_refused_without_running_it(tmp_path, writer):
    marker = tmp_path / "pwned"
    path = tmp_path / "replay_buffer_0.pt"
    payload = [[[PickleExploit(marker)]]]
    if writer == "torch":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload))
    with pytest.raises(BufferFormatError, match="refused to load"):
        load_replay_buffer(path)
    assert not marker.exists()


def test_cli_rejects_a_broken_buffer_in_one_line(tmp_path):
    directory = tmp_path / "FashionMNIST" / SMALL_MODEL
    directory.mkdir(parents=True)
    torch.save([[["not a tensor"], ["x"]]], directory / "replay_buffer_0.pt")
    proc = run_cli(*distill_args(SMALL_MODEL, buffer_path=tmp_path, out=tmp_path / "run", iterations=1))
    assert_one_line_error(proc, "replay_buffer_0.pt: expert 0, checkpoint 0 has 1 tensors, expected 14")
    assert not (tmp_path / "run").exists()
