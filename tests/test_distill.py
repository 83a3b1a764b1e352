"""The distillation loop with the MTT plugin: learning, outputs, public buffers, bad input."""

from __future__ import annotations

import json

import pytest
import torch

from mct_plugin.harness.config import DistillConfig
from mct_plugin.harness.distill import Distillation, distill
from mct_plugin.harness.eval.protocol import evaluate_set
from mct_plugin.harness.io.metric_names import EVALUATION, RANDOM_SUBSET

from helpers import SMALL_MODEL, assert_one_line_error, components, distill_args, run_cli, tree_snapshot

ITERATIONS = 60


def quick_config(**overrides) -> DistillConfig:
    values = dict(model=SMALL_MODEL, matcher="mtt", ipc=1, syn_steps=10, expert_epochs=2, max_start_epoch=3,
                  iterations=ITERATIONS, eval_it=ITERATIONS, num_eval=3, epoch_eval_train=100, seed=0)
    values.update(overrides)
    return DistillConfig(**values)


@pytest.fixture(scope="module")
def mtt_log() -> list[str]:
    """The log lines of the module's run (``mtt_run``)."""
    return []


@pytest.fixture(scope="module")
def mtt_run(tmp_path_factory, small_data, expert_root, mtt_log):
    out = tmp_path_factory.mktemp("mtt") / "run"
    return distill(quick_config(buffer_path=str(expert_root), out=str(out), save_every_eval=True), data=small_data,
                   components=components(), show_progress=False, report=mtt_log.append)


@pytest.mark.slow
def test_short_mtt_distillation_lowers_the_loss_and_its_evaluation_is_reproducible(mtt_run, small_data):
    """The loss falls and alpha is learned; the final evaluation is the seeded protocol (the same set
    evaluated again gives the same accuracies). Whether the set beats a random subset, and by how
    much, is measured by the benchmarks (benchmarks/studies/), not asserted here."""
    losses = [row["loss"] for row in mtt_run.rows if "loss" in row]
    assert len(losses) == ITERATIONS
    assert sum(losses[-10:]) / 10 < 0.8 * sum(losses[:10]) / 10
    again = evaluate_set(mtt_run.synthetic.images, mtt_run.labels, float(mtt_run.synthetic.lr.detach()), small_data,
                         SMALL_MODEL, quick_config().eval_settings(), models=components().models)
    assert again.accuracies == mtt_run.final_eval.accuracies
    assert float(mtt_run.synthetic.lr.detach()) != pytest.approx(0.01)  # alpha is learned


@pytest.mark.slow
def test_the_run_directory_holds_every_output_readable_by_plain_tools(mtt_run):
    run = mtt_run.run_dir
    images = torch.load(run / "images.pt", weights_only=True)
    labels = torch.load(run / "labels.pt", weights_only=True)
    lr = torch.load(run / "lr.pt", weights_only=True)
    assert images.shape == (10, 1, 28, 28) and images.dtype == torch.float32
    assert labels.tolist() == list(range(10)) and lr.dim() == 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "event" not in r]  # warnings (tests/test_run_warnings.py)
    assert [r["iteration"] for r in rows] == list(range(ITERATIONS + 1))
    assert {"loss", "start_epoch", "target_epoch", "alpha", "seconds", "expert"} <= set(rows[1])
    assert {EVALUATION.mean, EVALUATION.std} <= set(rows[0]) and {EVALUATION.mean, EVALUATION.std} <= set(rows[-1])
    assert EVALUATION.mean not in rows[1]
    assert all(r["start_epoch"] in (0.0, 1.0, 2.0) and r["target_epoch"] == r["start_epoch"] + 2 for r in rows[:-1])
    config = json.loads((run / "config.json").read_text())
    assert config["matcher"] == "mtt" and config["sampler"] == "discrete" and config["ipc"] == 1
    for png in ("synthetic.png", "curves.png"):
        assert (run / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (run / "checkpoint.pt").is_file() and (run / "best" / "images.pt").is_file()
    assert not [p for p in run.rglob(".tmp-*")]


@pytest.mark.slow
def test_a_buffer_in_the_public_mtt_layout_is_consumed(tmp_path, expert_dir):
    root = tmp_path / "public_buffers"
    target = root / "FashionMNIST" / SMALL_MODEL
    target.mkdir(parents=True)
    # rewrite one expert file exactly as the public buffer.py would: torch.save of nested lists
    experts = torch.load(expert_dir / "replay_buffer_0.pt", weights_only=True)
    torch.save([[[t.clone() for t in checkpoint] for checkpoint in trajectory] for trajectory in experts],
               target / "replay_buffer_0.pt")
    out = tmp_path / "run"
    proc = run_cli(*distill_args(SMALL_MODEL, buffer_path=root, out=out, iterations=3, syn_steps=5, expert_epochs=2,
                                 max_start_epoch=3))
    assert proc.returncode == 0, proc.stderr
    assert f"1 buffer file(s) in {target}" in proc.stderr
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 3  # --eval-it 0: no row for the last iteration


@pytest.mark.slow
def test_eval_command_compares_with_a_random_real_subset(mtt_run):
    proc = run_cli("eval", "--run", str(mtt_run.run_dir), "--num-eval", "2", "--epoch-eval-train", "30")
    assert proc.returncode == 0, proc.stderr
    assert "| model | random real subset (%) | distilled (%) | networks |" in proc.stdout
    assert f"| {SMALL_MODEL} |" in proc.stdout
    report = json.loads((mtt_run.run_dir / "eval.json").read_text())
    row = report["rows"][0]
    assert len(row["distilled"]["accuracies"]) == 2 and len(row["random_subset"]["accuracies"]) == 2
    assert report["per_class"] == 1 and report["images"] == 10
    assert (report["protocol"]["set"], report["protocol"]["iteration"]) == ("final", ITERATIONS)
    assert f"final set (iteration {ITERATIONS})" in proc.stdout


def best_iteration(rows: list[dict]) -> int:
    """The first evaluation with the highest mean (the rule that fills best/)."""
    evaluated = [r for r in rows if EVALUATION.mean in r]
    return max(evaluated, key=lambda r: (r[EVALUATION.mean], -r["iteration"]))["iteration"]


@pytest.mark.slow
def test_the_end_of_a_run_gives_the_final_and_the_best_set_with_their_iterations(mtt_run, mtt_log):
    run, rows = mtt_run.run_dir, mtt_run.rows
    evaluated = {r["iteration"]: r for r in rows if EVALUATION.mean in r}
    assert sorted(evaluated) == [0, ITERATIONS]
    best, final = evaluated[best_iteration(rows)], evaluated[ITERATIONS]
    summary = json.loads((run / "run_summary.json").read_text())
    assert summary["finished"] and summary["model"] == SMALL_MODEL
    assert summary["final"] == {"iteration": ITERATIONS, "mean": final[EVALUATION.mean], "std": final[EVALUATION.std],
                                "networks": 3}
    assert summary["best"]["iteration"] == best["iteration"] and summary["best"]["mean"] == best[EVALUATION.mean]
    assert summary["random_subset"]["mean"] == rows[0][RANDOM_SUBSET.mean] and len(rows[0][RANDOM_SUBSET.accuracies]) == 3
    assert summary["protocol"]["epochs"] == 100 and summary["protocol"]["networks"] == 3
    closing = mtt_log[-1]
    assert f"final set (iteration {ITERATIONS}): {100 * final[EVALUATION.mean]:.2f} +- " in closing
    assert f"best set (iteration {best['iteration']}, kept in best/): {100 * best[EVALUATION.mean]:.2f} +- " in closing
    assert "random real subset: " in closing
    assert torch.equal(torch.load(run / "best" / "images.pt", weights_only=True),
                       torch.load(run / "snapshots" / f"images_{best['iteration']}.pt", weights_only=True))
    assert (run / "best" / "synthetic.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_eval_takes_the_best_set_a_snapshot_or_run_best_and_records_the_protocol(mtt_run):
    run = mtt_run.run_dir
    quick = ("--num-eval", "1", "--epoch-eval-train", "2", "--no-baseline")
    best = best_iteration(mtt_run.rows)
    proc = run_cli("eval", "--run", str(run / "best"), *quick)  # the best set is a set of its run
    assert proc.returncode == 0, proc.stderr
    assert f"best set (iteration {best})" in proc.stdout and "Recorded while distilling (100-epoch" in proc.stdout
    report = json.loads((run / "best" / "eval.json").read_text())
    assert (report["protocol"]["set"], report["protocol"]["iteration"]) == ("best", best)
    assert report["recorded"]["best"]["iteration"] == best and report["recorded"]["final"]["iteration"] == ITERATIONS
    proc = run_cli("eval", "--run", str(run), "--set", "0", *quick)
    assert proc.returncode == 0, proc.stderr
    protocol = json.loads((run / "snapshots" / "eval_0.json").read_text())["protocol"]
    assert {"set", "iteration", "networks", "models", "epochs", "lr", "lr_schedule", "batch", "momentum",
            "weight_decay", "augmentation", "seed", "random_subset"} <= set(protocol)
    assert (protocol["set"], protocol["iteration"], protocol["networks"], protocol["epochs"]) == ("snapshot", 0, 1, 2)
    assert protocol["models"] == [SMALL_MODEL] and protocol["random_subset"] is None
    assert protocol["lr"] == float(torch.load(run / "snapshots" / "lr_0.pt", weights_only=True))
    assert protocol["augmentation"].startswith("DSA ") and protocol["batch"] == 256
    assert_one_line_error(run_cli("eval", "--run", str(run), "--set", "7", *quick),
                          f"keeps no set of iteration 7 (snapshots: 0, {ITERATIONS})")
    assert_one_line_error(run_cli("eval", "--run", str(run / "best"), "--set", "0", *quick),
                          "is the best set of", "--set 0 another")


@pytest.mark.slow
def test_curves_show_loss_accuracy_against_the_random_subset_alpha_and_start_epoch(mtt_run):
    from mct_plugin.harness.eval.plots import CURVE_PANELS, training_curves

    import matplotlib.pyplot as plt
    from PIL import Image

    best = best_iteration(mtt_run.rows)
    figure = training_curves(mtt_run.rows, "title", best_iteration=best)
    try:
        loss, accuracy, alpha, start = figure.axes
        assert [ax.get_title(loc="left") for ax in figure.axes] == list(CURVE_PANELS)
        assert len(loss.get_lines()[0].get_ydata()) == ITERATIONS
        labels = [line.get_label() for line in accuracy.get_lines()]
        assert any(label.startswith("random real subset") for label in labels)
        assert any(label.startswith("best set") and label.endswith(f"(iteration {best})") for label in labels)
        assert accuracy.collections and accuracy.patches  # the std bands of the set and of the random subset
        assert alpha.get_lines()[0].get_ydata()[0] == pytest.approx(0.01)  # alpha before its first update
        assert len(start.collections[0].get_offsets()) == ITERATIONS
    finally:
        plt.close(figure)
    with Image.open(mtt_run.run_dir / "curves.png") as png:
        assert png.size == (1200, 750)


# -- bad input: one line, non-zero exit, nothing written --------------------------------------
def test_no_buffers_names_the_searched_paths(tmp_path):
    proc = run_cli(*distill_args(SMALL_MODEL, buffer_path=tmp_path / "empty", out=tmp_path / "run"))
    assert_one_line_error(proc, "no expert buffers found", str(tmp_path / "empty"),
                          str(tmp_path / "empty" / "FashionMNIST" / SMALL_MODEL))
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("extra,fragment", [
    (["--ipc", "6001"], "--ipc 6001 is larger than the smallest class of FashionMNIST (6000 images)"),
    (["--min-start-epoch", "4", "--max-start-epoch", "5", "--expert-epochs", "2"],
     "--min-start-epoch 4 + --expert-epochs 2 is beyond the 5 epochs"),
    (["--syn-steps", "0"], "--syn-steps must be at least 1 (got 0)"),
    (["--expert-epochs", "1.5"], "--expert-epochs must be an integer for the discrete sampler"),
    (["--sampler", "nope"], "unknown sampler 'nope'; registered: continuous, discrete"),
    (["--matcher", "mtc"], "unknown matcher 'mtc'; registered: mct, mtt"),
    (["--model", "ConvNett"], "unknown model 'ConvNett'; registered: AlexNet, ConvNet"),
    (["--dataset", "FMNIST"], "unknown dataset 'FMNIST'; registered: CIFAR10"),
    (["--gradient-mode", "exact"], "invalid choice: 'exact'"),
])
def test_impossible_options_are_refused_before_anything_is_written(tmp_path, expert_root, extra, fragment):
    proc = run_cli(*distill_args(SMALL_MODEL, *extra, buffer_path=expert_root, out=tmp_path / "run"))
    assert_one_line_error(proc, fragment)
    assert not (tmp_path / "run").exists()


def test_an_existing_run_is_never_overwritten_without_a_flag(tmp_path, expert_root):
    out = tmp_path / "run"
    args = distill_args(SMALL_MODEL, buffer_path=expert_root, out=out)
    assert run_cli(*args).returncode == 0
    before = tree_snapshot(out)
    proc = run_cli(*args)
    assert_one_line_error(proc, f"{out} already holds results", "--overwrite", "--resume")
    assert tree_snapshot(out) == before
    assert run_cli(*args, "--overwrite").returncode == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [0, 1] and all("loss" in r for r in rows)  # --eval-it 0: no empty row
    proc = run_cli(*distill_args(SMALL_MODEL, buffer_path=expert_root, out=tmp_path / "other", resume=True))
    assert_one_line_error(proc, "cannot resume")


@pytest.mark.slow
def test_auto_gradient_picks_checkpointed_under_a_memory_limit_and_resumes_bit_for_bit(
        tmp_path, small_data, expert_root, monkeypatch):
    """The automatic choice says what it chose and why; checkpointed runs resume bit for bit."""
    config = quick_config(buffer_path=str(expert_root), iterations=4, eval_it=0, syn_steps=5)
    monkeypatch.setenv("DD_HARNESS_MEMORY_LIMIT", "1M")
    lines: list[str] = []
    auto = distill(config.replace(out=str(tmp_path / "auto")), data=small_data, components=components(),
                   show_progress=False, report=lines.append)
    chosen = [line for line in lines if line.startswith("gradient mode:")]
    assert len(chosen) == 1 and "checkpointed" in chosen[0] and "DD_HARNESS_MEMORY_LIMIT" in chosen[0], lines
    assert json.loads((tmp_path / "auto" / "config.json").read_text())["gradient_mode"] == "checkpointed"

    interrupted = config.replace(out=str(tmp_path / "resumed"), gradient_mode="checkpointed")
    Distillation(interrupted, data=small_data, components=components(), show_progress=False).run(stop_at=2)
    monkeypatch.delenv("DD_HARNESS_MEMORY_LIMIT")  # a resumed auto run keeps its recorded choice
    resumed = Distillation(config.replace(out=str(tmp_path / "resumed")), data=small_data, components=components(),
                           resume=True, show_progress=False).run()
    assert torch.equal(resumed.synthetic.images, auto.synthetic.images)
    assert torch.equal(resumed.synthetic.lr, auto.synthetic.lr)


@pytest.mark.slow
@pytest.mark.parametrize("matcher", ["mtt", "mct"])
def test_the_exact_modes_draw_the_same_run(tmp_path, small_data, expert_root, matcher):
    """One random stream per run (DESIGN.md section 9): over 5 iterations with DSA, unrolled and
    checkpointed draw the same segments, experts, minibatches and augmentations (their streams end
    in the same state) and the first iteration, on the same images, has the same loss and alpha
    update to float rounding; they used to draw differently from the first iteration on (3.8e-4 apart in
    its loss). Later iterations agree to ~1e-7 until a ReLU input lands within rounding of zero in
    one mode and not the other, as happens between thread counts too (NOTES.md)."""
    config = quick_config(matcher=matcher, buffer_path=str(expert_root), iterations=5, eval_it=0, syn_steps=5,
                          expert_epochs=1, lr_img=100, lr_lr=1e-6)
    rows, streams = {}, {}
    for mode in ("unrolled", "checkpointed"):
        with Distillation(config.replace(out=str(tmp_path / mode), gradient_mode=mode), data=small_data,
                          components=components(), show_progress=False) as run:
            rows[mode] = [row for row in run.run().rows if "loss" in row]
            streams[mode] = run.stream.state_dict()["cpu"]
    drawn = {mode: [(r["start_epoch"], r["target_epoch"], r["expert"]) for r in rows[mode]] for mode in rows}
    assert drawn["unrolled"] == drawn["checkpointed"] and len(set(drawn["unrolled"])) > 1
    assert torch.equal(streams["unrolled"], streams["checkpointed"])
    first = {mode: rows[mode][0] for mode in rows}
    assert first["checkpointed"]["loss"] == pytest.approx(first["unrolled"]["loss"], rel=1e-6)
    assert first["unrolled"]["alpha"] != config.lr_teacher  # alpha learned from the first gradient: compared
    assert first["checkpointed"]["alpha"] == pytest.approx(first["unrolled"]["alpha"], rel=1e-6)


def test_a_memory_limit_that_is_not_a_size_is_one_line(tmp_path, expert_root):
    out = tmp_path / "run"
    proc = run_cli(*distill_args(SMALL_MODEL, buffer_path=expert_root, out=out, iterations=1),
                   env={"DD_HARNESS_MEMORY_LIMIT": "lots"})
    assert_one_line_error(proc, "DD_HARNESS_MEMORY_LIMIT='lots' is not a memory size")
    assert not out.exists() or not any(out.iterdir())


def test_a_runs_config_brings_its_experts_or_names_the_files_that_differ(tmp_path, expert_root):
    """``distill --config RUN/config.json`` checks the expert files that run recorded: a file that
    joined the folder is named and refused (nothing written), ``--other-experts`` runs with it."""
    import shutil

    folder = tmp_path / "buffers" / "FashionMNIST" / SMALL_MODEL
    folder.mkdir(parents=True)
    source = expert_root / "FashionMNIST" / SMALL_MODEL
    shutil.copy(source / "replay_buffer_0.pt", folder)
    first = tmp_path / "first"
    assert run_cli(*distill_args(SMALL_MODEL, buffer_path=tmp_path / "buffers", out=first)).returncode == 0
    recorded = json.loads((first / "config.json").read_text())["buffer_files"]
    assert sorted(recorded) == ["replay_buffer_0.pt"]
    again = tmp_path / "again"
    assert run_cli("distill", "--config", str(first / "config.json"), "--out", str(again), "--quiet").returncode == 0
    assert json.loads((again / "config.json").read_text())["buffer_files"] == recorded

    shutil.copy(source / "replay_buffer_1.pt", folder)
    proc = run_cli("distill", "--config", str(first / "config.json"), "--out", str(tmp_path / "mixed"), "--quiet")
    assert_one_line_error(proc, f"{first / 'config.json'} recorded other experts", "replay_buffer_1.pt not recorded",
                          "--other-experts")
    assert not (tmp_path / "mixed").exists() or not any((tmp_path / "mixed").iterdir())
    proc = run_cli("distill", "--config", str(first / "config.json"), "--out", str(tmp_path / "mixed"), "--quiet",
                   "--other-experts")
    assert proc.returncode == 0, proc.stderr
    assert "--other-experts: the run used replay_buffer_0.pt" in proc.stderr
    assert sorted(json.loads((tmp_path / "mixed" / "config.json").read_text())["buffer_files"]) == [
        "replay_buffer_0.pt", "replay_buffer_1.pt"]


def test_resume_and_overwrite_together_are_refused(tmp_path, expert_root):
    out = tmp_path / "run"
    assert run_cli(*distill_args(SMALL_MODEL, buffer_path=expert_root, out=out)).returncode == 0
    before = tree_snapshot(out)
    proc = run_cli(*distill_args(SMALL_MODEL, buffer_path=expert_root, out=out), "--resume", "--overwrite")
    assert_one_line_error(proc, "--resume continues the run in", "--overwrite replaces it")
    assert tree_snapshot(out) == before


def test_a_meta_batch_that_the_processes_cannot_share_is_refused(tmp_path, small_data, expert_root):
    from mct_plugin.harness.errors import ConfigError
    from mct_plugin.harness.runtime.distributed import DistContext

    config = quick_config(buffer_path=str(expert_root), out=str(tmp_path / "run"), meta_batch=3)
    with pytest.raises(ConfigError, match="--meta-batch 3 is not a multiple of the 2 processes"):
        Distillation(config, data=small_data, components=components(), show_progress=False,
                     dist=DistContext(rank=1, world_size=2))  # rank 1: refused before any collective


def test_a_checkpoint_of_an_earlier_random_stream_is_refused_on_resume(tmp_path, expert_root):
    out = tmp_path / "run"
    assert run_cli(*distill_args(SMALL_MODEL, buffer_path=expert_root, out=out, iterations=3,
                                 checkpoint_every=1)).returncode == 0
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    state["format"] = 2
    del state["stream"]
    torch.save(state, out / "checkpoint.pt")
    before = tree_snapshot(out)
    proc = run_cli(*distill_args(SMALL_MODEL, buffer_path=expert_root, out=out, iterations=4), "--resume")
    assert_one_line_error(proc, "checkpoint.pt is not a usable checkpoint",
                          "written by another version of dd-harness (format 2, this version continues format 3)")
    assert tree_snapshot(out) == before
