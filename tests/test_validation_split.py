"""``--validation K``: a class-balanced split of the training images, held out of everything that
shapes a set (experts, initial images, random subsets), scores every evaluation instead of the
test split, which is then never read; experts and runs with other splits are refused."""

from __future__ import annotations

import json

import pytest
import torch

from helpers import assert_one_line_error, components, distill_args, run_cli, tree_snapshot

from mct_plugin.harness.config import DistillConfig, ExpertConfig
from mct_plugin.harness.data import DatasetSpec, ValidationSplit, load_dataset
from mct_plugin.harness.distill.loop import Distillation
from mct_plugin.harness.distill.synthetic import SyntheticSet
from mct_plugin.harness.errors import ConfigError, DataNotFoundError
from mct_plugin.harness.eval.protocol import random_real_subset
from mct_plugin.harness.experts.train import train_experts
from mct_plugin.harness.io.metric_names import EVAL_SPLIT, EVALUATION

MODEL = "ConvNetW16"
SPLIT = "validation (K=50, seed=0)"
TRAIN_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
QUICK_EVAL = {"eval_it": 2, "epoch_eval_train": 2, "num_eval": 1}  # an evaluation at iterations 0 and 2


def fashion() -> DatasetSpec:
    return components().datasets.get("FashionMNIST")


@pytest.fixture(scope="module")
def train_only_dir(tmp_path_factory, mini_fmnist_dir):
    """The two training files of ``mini_fmnist_dir`` (real Fashion-MNIST, 100 images per class)
    alone: no test split on disk."""
    folder = tmp_path_factory.mktemp("train-only")
    for name in TRAIN_FILES:
        (folder / name).symlink_to(mini_fmnist_dir / name)
    return folder


def experts_cli(root, data_path, *split: str):
    """One ConvNetW16 expert (3 epochs) under the buffer root ``root``."""
    proc = run_cli("experts", "--model", MODEL, "--num-experts", "1", "--train-epochs", "3", "--buffer-path", str(root),
                   "--data-path", str(data_path), *split, "--quiet")
    assert proc.returncode == 0, proc.stderr
    return root


@pytest.fixture(scope="module")
def split_experts(tmp_path_factory, train_only_dir):
    """Experts trained with --validation 50 on the training files alone."""
    return experts_cli(tmp_path_factory.mktemp("split-experts"), train_only_dir, "--validation", "50")


@pytest.fixture(scope="module")
def split_run(tmp_path_factory, split_experts, train_only_dir):
    """A distillation with --validation 50 on those experts, evaluated at iterations 0 and 2."""
    out = tmp_path_factory.mktemp("split-run") / "run"
    proc = run_cli(*distill_args(MODEL, buffer_path=split_experts, data_path=train_only_dir, out=out, validation=50,
                                 **QUICK_EVAL))
    assert proc.returncode == 0, proc.stderr
    return out


def test_the_split_is_seeded_class_balanced_and_held_out_of_the_training_images(mini_fmnist_dir):
    raw = fashion().load(mini_fmnist_dir)
    split = ValidationSplit(50, seed=3)
    held = split.indices(raw.train_labels, 10, "FashionMNIST")
    assert torch.equal(held, split.indices(raw.train_labels, 10, "FashionMNIST"))  # the seed fixes it
    assert not torch.equal(held, ValidationSplit(50, seed=4).indices(raw.train_labels, 10, "FashionMNIST"))
    assert torch.bincount(raw.train_labels[held], minlength=10).tolist() == [5] * 10
    data, plain = load_dataset(fashion(), mini_fmnist_dir, validation=split), load_dataset(fashion(), mini_fmnist_dir)
    kept = sorted(set(range(len(raw.train_labels))) - set(held.tolist()))
    assert torch.equal(data.test_images, plain.train_images[held]) and torch.equal(data.test_labels, raw.train_labels[held])
    assert torch.equal(data.train_images, plain.train_images[kept]) and len(data.train_images) == 950
    assert (data.split, plain.split) == ("validation (K=50, seed=3)", "test")
    # what shapes a set comes from the other images: the real initialisation, the random subsets
    torch.manual_seed(0)
    initial = SyntheticSet.initialise(data, ipc=5).images.detach()
    subset, _ = random_real_subset(data, per_class=20, seed=0)
    for images in (initial, subset):
        assert not (images.flatten(1)[:, None] == data.test_images.flatten(1)[None]).all(-1).any()


def test_a_split_that_does_not_fit_the_classes_is_refused(tmp_path, mini_fmnist_dir):
    labels = fashion().load(mini_fmnist_dir).train_labels
    with pytest.raises(ConfigError, match="holds out 100 images per class but the smallest class .* has 100"):
        ValidationSplit(1000).indices(labels, 10, "FashionMNIST")
    proc = run_cli("experts", "--model", MODEL, "--num-experts", "1", "--buffer-path", str(tmp_path / "buffers"),
                   "--data-path", str(mini_fmnist_dir), "--validation", "9")
    assert_one_line_error(proc, "--validation 9 is smaller than the number of classes of FashionMNIST (10)")
    assert not (tmp_path / "buffers").exists()  # refused before the folder is made


def test_the_test_split_is_never_read_while_a_validation_split_is_on(train_only_dir, split_run):
    """The data layer reads the training files alone: a folder without the test files serves a
    validation split, and without the split names the missing test file."""
    data = load_dataset(fashion(), train_only_dir, validation=ValidationSplit(50))
    assert (len(data.train_images), len(data.test_images), data.split) == (950, 50, SPLIT)
    with pytest.raises(DataNotFoundError, match=f"{train_only_dir} has no t10k-images-idx3-ubyte"):
        load_dataset(fashion(), train_only_dir)
    never_called = DatasetSpec("Plugin", 1, (28, 28), 10, (0.5,), (0.5,), loader=lambda path, download: 1 / 0)
    with pytest.raises(ConfigError, match="dataset Plugin cannot read its training images alone"):
        never_called.load(test=False)
    proc = run_cli("experts", "--model", MODEL, "--num-experts", "1", "--train-epochs", "1", "--data-path",
                   str(train_only_dir), "--buffer-path", str(split_run.parent / "unused"))
    assert_one_line_error(proc, "has no t10k-images-idx3-ubyte[.gz] (the test split; with --validation K")
    # experts, distill and eval of split_run all ran on the training files alone, and recorded the split
    assert json.loads((split_run / "config.json").read_text())["validation"] == 50
    evaluated = [row for row in map(json.loads, (split_run / "metrics.jsonl").read_text().splitlines())
                 if EVALUATION.mean in row]
    assert [row[EVAL_SPLIT] for row in evaluated] == [SPLIT, SPLIT]
    assert json.loads((split_run / "run_summary.json").read_text())["protocol"]["split"] == SPLIT


def test_the_experts_record_their_split_and_other_splits_make_other_experts(split_experts, mini_fmnist_dir):
    folder = split_experts / "FashionMNIST" / MODEL
    training = json.loads((folder / "replay_buffer_0.json").read_text())["training"]
    assert (training["validation"], training["validation_seed"]) == (50, 0)
    assert ExpertConfig().fingerprint() == "032723aca297f472"  # as before the option existed
    assert ExpertConfig(validation_seed=4).fingerprint() == "032723aca297f472"  # no split: the seed is no setting
    assert ExpertConfig(validation=50).fingerprint() != ExpertConfig(validation=50, validation_seed=1).fingerprint()
    before = tree_snapshot(split_experts)
    proc = run_cli("experts", "--model", MODEL, "--num-experts", "1", "--train-epochs", "3", "--buffer-path",
                   str(split_experts), "--data-path", str(mini_fmnist_dir))
    assert_one_line_error(proc, f"{folder / 'replay_buffer_0.pt'} holds experts trained with other settings",
                          "--validation 50 (replay_buffer_0.json) vs 0 (this command)")
    assert tree_snapshot(split_experts) == before


def test_data_loaded_with_another_split_is_refused_before_anything_is_written(tmp_path, split_experts,
                                                                              mini_fmnist_dir):
    data = load_dataset(fashion(), mini_fmnist_dir)
    wrong = r"the data given scores on the test split but the options ask for the validation \(K=50, seed=0\) split"
    config = ExpertConfig(model=MODEL, num_experts=1, train_epochs=1, buffer_path=str(tmp_path / "buffers"),
                          validation=50)
    with pytest.raises(ConfigError, match=wrong):
        train_experts(config, data=data, components=components(), show_progress=False)
    config = DistillConfig(matcher="mtt", model=MODEL, buffer_path=str(split_experts), out=str(tmp_path / "run"),
                           validation=50)
    with pytest.raises(ConfigError, match=wrong):
        Distillation(config, data=data, components=components(), show_progress=False)
    assert not (tmp_path / "buffers").exists() and not (tmp_path / "run" / "config.json").exists()


def test_a_run_whose_split_is_not_its_experts_is_refused(tmp_path, split_experts, train_only_dir, mini_fmnist_dir):
    buffer = split_experts / "FashionMNIST" / MODEL / "replay_buffer_0.pt"
    proc = run_cli(*distill_args(MODEL, buffer_path=split_experts, data_path=train_only_dir, out=tmp_path / "a",
                                 validation=50, validation_seed=1))
    assert_one_line_error(proc, f"{buffer} holds experts trained with --validation 50 --validation-seed 0 but this "
                                f"run has --validation 50 --validation-seed 1")
    experts_cli(tmp_path / "no-split", mini_fmnist_dir)
    no_split = tmp_path / "no-split" / "FashionMNIST" / MODEL / "replay_buffer_0.pt"
    proc = run_cli(*distill_args(MODEL, buffer_path=tmp_path / "no-split", data_path=mini_fmnist_dir,
                                 out=tmp_path / "b", validation=50))
    assert_one_line_error(proc, f"{no_split} holds experts trained with --validation 0 (no split: the validation "
                                f"images were in their training) but this run has --validation 50")
    unrecorded = tmp_path / "unrecorded"
    unrecorded.mkdir()
    (unrecorded / buffer.name).symlink_to(buffer)
    proc = run_cli(*distill_args(MODEL, buffer_path=unrecorded, data_path=train_only_dir, out=tmp_path / "c",
                                 validation=50))
    assert_one_line_error(proc, f"--validation 50 --validation-seed 0: {unrecorded / buffer.name} records no "
                                "training options")
    assert not any((tmp_path / name).exists() for name in "abc")
    # without a split, experts that held one out are fine (the chosen recipe is scored on the test set)
    proc = run_cli(*distill_args(MODEL, buffer_path=split_experts, data_path=mini_fmnist_dir, out=tmp_path / "d"))
    assert proc.returncode == 0, proc.stderr
    assert f"trained without the {SPLIT} images; this run has no validation split" in proc.stderr


def test_eval_scores_the_runs_split_unless_told_to_score_the_test_split(split_run, mini_fmnist_dir):
    proc = run_cli("eval", "--run", str(split_run), "--num-eval", "1", "--epoch-eval-train", "2")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((split_run / "eval.json").read_text())
    assert report["protocol"]["split"] == SPLIT and report["recorded"]["split"] == SPLIT
    assert f"scored on the {SPLIT} split" in (split_run / "eval_table.md").read_text()
    # the test split takes an explicit --validation 0; the run's training files alone do not hold it
    proc = run_cli("eval", "--run", str(split_run), "--num-eval", "1", "--epoch-eval-train", "2", "--validation", "0")
    assert_one_line_error(proc, "has no t10k-images-idx3-ubyte")
    proc = run_cli("eval", "--run", str(split_run), "--num-eval", "1", "--epoch-eval-train", "2", "--validation", "0",
                   "--data-path", str(mini_fmnist_dir))
    assert proc.returncode == 0, proc.stderr
    assert f"--validation 0: scoring on the test split a run distilled on the {SPLIT} split" in proc.stderr
    report = json.loads((split_run / "eval.json").read_text())
    assert report["protocol"]["split"] == "test" and report["recorded"]["split"] == SPLIT
    for other in (["--validation", "60"], ["--validation-seed", "1"]):
        proc = run_cli("eval", "--run", str(split_run), *other)
        assert_one_line_error(proc, f"the run of {split_run / 'config.json'} was distilled with --validation 50 "
                                    "--validation-seed 0")
