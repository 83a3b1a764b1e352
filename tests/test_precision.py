"""``--precision`` (experts), ``--eval-precision`` (evaluation) and ``--student-precision`` (the
distillation student): bf16 autocast end to end with float32 files, the precision recorded where
each part records its settings, refused on a resume that changes it, and the fp32 fallback of a
device without native bf16.

A CPU without native bf16 (such as the one these tests were written on) makes ``bf16`` fall back
to fp32: the tests that need bf16 to run make :func:`bf16_autocast_supported` answer yes
(autocast then emulates bfloat16 arithmetic, only slower), and the fallback tests make it answer
no; everything else runs for real.
"""

from __future__ import annotations

import json

import pytest
import torch

from helpers import assert_one_line_error, components, distill_args, run_cli, tree_snapshot
from mct_plugin.harness.runtime import precision

MODEL = "ConvNetW16"


def bf16_answer(monkeypatch, supported: bool) -> None:
    """Make the device check answer ``supported`` for every device."""
    monkeypatch.setattr(precision, "bf16_autocast_supported", lambda device: supported)


def experts_args(buffers, data, *extra: str) -> list[str]:
    return ["experts", "--model", MODEL, "--num-experts", "1", "--train-epochs", "2", "--data-path", str(data),
            "--buffer-path", str(buffers), "--quiet", *extra]


def tiny_distill(buffers, data, out, *extra: str, **options) -> list[str]:
    return distill_args(MODEL, *extra, **{"buffer_path": buffers, "data_path": data, "out": out, "max_start_epoch": 1,
                                          "eval_it": 2, "num_eval": 1, "epoch_eval_train": 2, **options})


@pytest.fixture(scope="module")
def micro_data(micro_fmnist_dir):
    from mct_plugin.harness.data import load_dataset

    return load_dataset(components().datasets.get("FashionMNIST"), str(micro_fmnist_dir))


@pytest.fixture(scope="module")
def bf16_runs(tmp_path_factory, micro_fmnist_dir):
    """bf16 experts, and a distillation at bf16 (student and evaluation) in each exact gradient mode
    (the unrolled run evaluates its set, the checkpointed one does not)."""
    root = tmp_path_factory.mktemp("bf16")
    with pytest.MonkeyPatch.context() as monkeypatch:
        bf16_answer(monkeypatch, True)
        proc = run_cli(*experts_args(root / "buffers", micro_fmnist_dir, "--precision", "bf16"))
        assert proc.returncode == 0, proc.stderr
        for mode, eval_it in (("unrolled", 2), ("checkpointed", 0)):
            proc = run_cli(*tiny_distill(root / "buffers", micro_fmnist_dir, root / mode, "--gradient-mode", mode,
                                         "--student-precision", "bf16", "--eval-precision", "bf16", eval_it=eval_it))
            assert proc.returncode == 0, proc.stderr
    return root


def test_bf16_experts_write_the_mtt_format_in_float32_and_record_their_precision(bf16_runs):
    folder = bf16_runs / "buffers" / "FashionMNIST" / MODEL
    trajectories = torch.load(folder / "replay_buffer_0.pt", weights_only=True)
    checkpoints = trajectories[0]
    assert len(trajectories) == 1 and len(checkpoints) == 3  # 2 epochs: 3 checkpoints
    assert all(t.dtype == torch.float32 and torch.isfinite(t).all() for c in checkpoints for t in c)
    assert not torch.equal(checkpoints[0][0], checkpoints[-1][0])  # it trained
    assert json.loads((folder / "replay_buffer_0.json").read_text())["training"]["precision"] == "bf16"


@pytest.mark.parametrize("mode", ["unrolled", "checkpointed"])
def test_bf16_distillation_keeps_float32_files_and_records_both_precisions(bf16_runs, mode):
    run = bf16_runs / mode
    for name in ("images.pt", "lr.pt"):
        tensor = torch.load(run / name, weights_only=True)
        assert tensor.dtype == torch.float32 and torch.isfinite(tensor).all()
    config = json.loads((run / "config.json").read_text())
    assert (config["student_precision"], config["eval_precision"], config["gradient_mode"]) == ("bf16", "bf16", mode)
    assert json.loads((run / "run_summary.json").read_text())["protocol"]["precision"] == "bf16"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in rows if "loss" in r)
    evaluated = [r["eval_acc_mean"] > 0 for r in rows if "eval_acc_mean" in r]
    assert evaluated == ([True, True] if mode == "unrolled" else [])


def test_eval_trains_at_the_runs_precision_unless_told_otherwise(bf16_runs, monkeypatch):
    run = bf16_runs / "unrolled"
    bf16_answer(monkeypatch, True)
    proc = run_cli("eval", "--run", str(run), "--num-eval", "1", "--epoch-eval-train", "1", "--batched")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((run / "eval.json").read_text())
    assert report["protocol"]["precision"] == "bf16" and report["protocol"]["batched"]
    assert 0 < report["rows"][0]["distilled"]["mean"] <= 1
    proc = run_cli("eval", "--run", str(run), "--num-eval", "1", "--epoch-eval-train", "1", "--eval-precision", "fp32")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((run / "eval.json").read_text())["protocol"]["precision"] == "fp32"


@pytest.mark.parametrize("change", [("--student-precision", "fp32"), ("--eval-precision", "fp32")])
def test_a_resume_that_changes_a_precision_is_refused(bf16_runs, change, monkeypatch):
    bf16_answer(monkeypatch, True)  # where the run was made
    run = bf16_runs / "checkpointed"
    before = tree_snapshot(run)
    proc = run_cli("distill", "--resume", "--out", str(run), *change, "--quiet")
    assert_one_line_error(proc, f"cannot resume {run}: {change[0]} fp32 (the run has bf16) would change the run")
    assert tree_snapshot(run) == before


def test_the_student_gradient_under_bf16_is_float32_and_both_exact_modes_agree(micro_data):
    from mct_plugin.harness.distill.gradient_modes import Checkpointed, StudentProblem, Unrolled
    from mct_plugin.harness.distill.matching import normalised_distance
    from mct_plugin.harness.models import FunctionalModel

    torch.manual_seed(0)
    model = FunctionalModel(components().models.create(MODEL, 1, 10, (28, 28)))
    start = model.initial_flat()
    target = start + 0.01 * torch.randn_like(start)
    images = micro_data.train_images[:20].clone().requires_grad_(True)
    labels = micro_data.train_labels[:20]

    def gradients(mode, at: str):
        problem = StudentProblem(model, start, lambda theta: normalised_distance(theta, start, target), images, labels,
                                 torch.tensor(0.01, requires_grad=True), syn_steps=3, batch_syn=10, precision=at)
        torch.manual_seed(1)
        return mode.run(problem)

    full, unrolled, checkpointed = gradients(Unrolled(), "fp32"), gradients(Unrolled(), "bf16"), \
        gradients(Checkpointed(), "bf16")
    for result in (unrolled, checkpointed):
        assert result.images_grad.dtype == result.lr_grad.dtype == torch.float32
        assert torch.isfinite(result.images_grad).all() and torch.isfinite(result.lr_grad).all()
        assert result.loss == pytest.approx(full.loss, rel=1e-3)
    assert not torch.equal(unrolled.images_grad, full.images_grad)  # autocast was in effect
    cosine = torch.nn.functional.cosine_similarity(unrolled.images_grad.flatten(), checkpointed.images_grad.flatten(),
                                                   dim=0)
    assert cosine > 0.99


def test_without_native_bf16_experts_train_fp32_say_so_and_record_it(tmp_path, monkeypatch, micro_fmnist_dir):
    bf16_answer(monkeypatch, False)
    proc = run_cli(*experts_args(tmp_path, micro_fmnist_dir, "--precision", "bf16"))
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "bfloat16" in line]
    assert lines == ["dd-harness: --precision bf16: device cpu has no native bfloat16 (autocast would emulate it, "
                     "slower than fp32), so this part runs in fp32 and is recorded so"]
    record = tmp_path / "FashionMNIST" / MODEL / "replay_buffer_0.json"
    assert json.loads(record.read_text())["training"]["precision"] == "fp32"
    # where bf16 runs, it is another expert setting: the folder's fp32 experts are not these
    bf16_answer(monkeypatch, True)
    before = tree_snapshot(tmp_path)
    assert_one_line_error(run_cli(*experts_args(tmp_path, micro_fmnist_dir, "--precision", "bf16")),
                          "holds experts trained with other settings than this command",
                          "--precision fp32 (replay_buffer_0.json) vs bf16 (this command)")
    assert tree_snapshot(tmp_path) == before


def test_without_native_bf16_the_student_and_evaluation_run_and_record_fp32(bf16_runs, tmp_path, monkeypatch,
                                                                          micro_fmnist_dir):
    bf16_answer(monkeypatch, False)
    proc = run_cli(*tiny_distill(bf16_runs / "buffers", micro_fmnist_dir, tmp_path / "run", "--student-precision",
                                 "bf16", "--eval-precision", "bf16", eval_it=0))
    assert proc.returncode == 0, proc.stderr
    assert sum("has no native bfloat16" in line for line in proc.stderr.splitlines()) == 2
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (config["student_precision"], config["eval_precision"]) == ("fp32", "fp32")


def test_an_unknown_precision_is_refused_in_one_line(tmp_path, micro_fmnist_dir):
    config = tmp_path / "options.yaml"
    config.write_text("precision: fp16\n")
    assert_one_line_error(run_cli(*experts_args(tmp_path, micro_fmnist_dir, "--config", str(config))),
                          "--precision must be one of fp32, bf16 (got 'fp16')")
    assert_one_line_error(run_cli("distill", "--matcher", "mtt", "--student-precision", "fp16"),
                          "argument --student-precision: invalid choice: 'fp16'")
    assert not (tmp_path / "FashionMNIST").exists()


def test_the_full_data_cache_keys_the_precision(micro_data, tmp_path):
    from mct_plugin.harness.config import EvalSettings
    from mct_plugin.harness.eval.full_data import FullDataKey

    keys = [FullDataKey.of(micro_data, MODEL, EvalSettings(eval_precision=p), 0.01, zca=False)
            for p in ("fp32", "bf16")]
    assert keys[0].precision == "fp32" and keys[0].file(tmp_path) != keys[1].file(tmp_path)


def test_an_unfinished_experts_plan_written_before_the_precision_existed_is_continued(tmp_path, micro_fmnist_dir):
    import dataclasses
    import hashlib

    from mct_plugin.harness.config import ExpertConfig

    planned = ExpertConfig(model=MODEL, num_experts=1, train_epochs=2, buffer_path=str(tmp_path))
    earlier = {k: v for k, v in planned.training_options().items() if k != "precision"}  # what that version hashed
    fingerprint = hashlib.sha256(json.dumps(earlier, sort_keys=True).encode()).hexdigest()[:16]
    folder = tmp_path / "FashionMNIST" / MODEL
    folder.mkdir(parents=True)
    (folder / ".experts_run.json").write_text(json.dumps({
        "fingerprint": fingerprint, "files": {"0": [0]},
        "config": {k: v for k, v in dataclasses.asdict(planned).items() if k != "precision"}}))
    proc = run_cli(*experts_args(tmp_path, micro_fmnist_dir))
    assert proc.returncode == 0, proc.stderr
    assert not (folder / ".experts_run.json").exists()
    assert json.loads((folder / "replay_buffer_0.json").read_text())["expert_seeds"] == [0]
