"""Honest cross-architecture evaluation through ``dd-harness eval`` (issue 30, item 4): the step
size of the evaluation networks (``--eval-lr``) and of the real sets (``--baseline-lr``, by
default the synthetic set's), augmentation on/off, networks that end at chance flagged, the
cheap labelled full-data approximation (``--full-data-subset``), a run's own ``config.json`` as
``--config``, one network without a std, and a best set that is the initial images.

One tiny real run (ConvNetW16 on 100 real Fashion-MNIST training and 100 test images, an update of the pixels so large
that the initial images stay the best set) serves every test; each eval trains a few networks
for a few passes over 10 images.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from helpers import assert_one_line_error, distill_args, random_trajectory, run_main, tree_snapshot

MODEL = "ConvNetW16"


@pytest.fixture(scope="module")
def run(tmp_path_factory, micro_fmnist_dir):
    """A finished 1-iteration run evaluated (1 network, 2 epochs) at iterations 0 and 1; its one
    update (--lr-img 1e8) wrecks the images, so its best set is the initial one."""
    from mct_plugin.harness.cli import main

    base = tmp_path_factory.mktemp("honesty")
    torch.save([random_trajectory(MODEL, 3, seed=0)], base / "replay_buffer_0.pt")
    out = base / "run"
    assert main(distill_args(MODEL, buffer_path=base, data_path=micro_fmnist_dir, out=out, iterations=1, syn_steps=1,
                             eval_it=1, num_eval=1, epoch_eval_train=2, lr_img=1e8)) == 0
    return out


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MCT_PLUGIN_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def evaluate(capsys, run, *extra: str, networks: int = 2, epochs: int = 2):
    """Run ``eval`` on ``run`` (a run directory, or its best/), return its output and eval.json."""
    proc = run_main(capsys, "eval", "--run", str(run), "--num-eval", str(networks), "--epoch-eval-train", str(epochs),
                    *extra)
    assert proc.returncode == 0, proc.stderr
    return proc, json.loads((run / "eval.json").read_text())


def table_row(stdout: str, model: str) -> list[str]:
    """The cells of ``model``'s row of the accuracy table."""
    line = next(line for line in stdout.splitlines() if line.startswith(f"| {model} |") and "networks" not in line)
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_both_sets_train_with_the_learned_alpha_by_default_and_lr_teacher_is_one_flag_away(run, capsys):
    learned = float(torch.load(run / "lr.pt", weights_only=True))
    proc, report = evaluate(capsys, run)
    [row] = report["rows"]
    assert row["lr"] == {"distilled": learned, "random_subset": learned}  # only the data differ
    assert report["protocol"]["lr"] == learned and report["protocol"]["random_subset"]["lr"] == learned
    assert (report["protocol"]["eval_lr"], report["protocol"]["baseline_lr"]) == ("learned", "same")
    assert "| model | random real subset (%) | distilled (%) | networks | lr |" in proc.stdout
    assert table_row(proc.stdout, MODEL)[-1] == f"{learned:.4g}"
    assert f"{MODEL}: lr {learned:.4g} on the synthetic set, {learned:.4g} on real images" in proc.stderr
    assert report["protocol"]["augmentation"].startswith("DSA ")  # the run's


def test_eval_lr_per_architecture_and_augmentation_off(run, capsys):
    learned = float(torch.load(run / "lr.pt", weights_only=True))
    proc, report = evaluate(capsys, run, "--models", "ConvNetW16,ConvNetW32", "--eval-lr", "ConvNetW32=0.02",
                            "--no-dsa", "--no-baseline", networks=1)
    lrs = {row["model"]: row["lr"]["distilled"] for row in report["rows"]}
    assert lrs == {"ConvNetW16": learned, "ConvNetW32": 0.02}
    assert report["protocol"]["lr"] == {"ConvNetW16": learned, "ConvNetW32": 0.02}
    assert report["protocol"]["augmentation"] == "none"  # the run augments (DSA); --no-dsa turns it off here
    assert table_row(proc.stdout, "ConvNetW32")[-1] == "0.02"


def test_eval_lr_values():
    from mct_plugin.harness.config import EvalCommandConfig, parse_eval_lr

    assert parse_eval_lr("learned") == {None: "learned"}
    assert parse_eval_lr("ConvNetW32=0.01, ResNet18=teacher") == {"ConvNetW32": 0.01, "ResNet18": "teacher",
                                                                 None: "learned"}
    options = EvalCommandConfig(eval_lr="0.03,ConvNet=teacher")
    assert options.eval_lr_of("ConvNet", learned=0.004, teacher=0.01) == 0.01
    assert options.eval_lr_of("ResNet18", learned=0.004, teacher=0.01) == 0.03
    assert options.baseline_lr_of("ResNet18", learned=0.004, teacher=0.01) == 0.03  # same: the synthetic set's
    assert options.replace(baseline_lr="teacher").baseline_lr_of("ResNet18", learned=0.004, teacher=0.01) == 0.01


def test_a_network_at_chance_is_flagged_in_the_table_the_json_and_the_log(run, capsys):
    # alpha 1e-6: the networks on the synthetic set do not move (training loss ~ ln 10); lr_teacher trains the others
    learned = float(torch.load(run / "lr.pt", weights_only=True))
    proc, report = evaluate(capsys, run, "--eval-lr", "1e-6", "--baseline-lr", "teacher", "--no-dsa", epochs=5)
    [row] = report["rows"]
    assert row["lr"] == {"distilled": 1e-6, "random_subset": 0.01}  # --baseline-lr teacher: the run's --lr-teacher
    assert report["protocol"]["random_subset"]["lr"] == 0.01 and report["protocol"]["baseline_lr"] == "teacher"
    assert table_row(proc.stdout, MODEL)[-1] == "0.01 / 1e-06" and learned != 1e-6
    assert row["distilled"]["at_chance"] == 2 and row["random_subset"]["at_chance"] == 0
    assert all(loss >= 0.95 * math.log(10) for loss in row["distilled"]["train_losses"])
    assert all(loss < 0.95 * math.log(10) and accuracy > 0.12 for loss, accuracy in
               zip(row["random_subset"]["train_losses"], row["random_subset"]["accuracies"]))
    assert report["protocol"]["at_chance_rule"].startswith("test accuracy at most 1/10 + 2 points (12.00%)")
    random_cell, distilled_cell = table_row(proc.stdout, MODEL)[1:3]
    assert distilled_cell.endswith("(!)") and not random_cell.endswith("(!)")
    assert f"(!) {MODEL}, distilled: 2 of 2 networks ended at chance (test accuracy at most" in proc.stdout
    assert f"dd-harness: warning: {MODEL}, distilled: 2 of 2 networks ended at chance" in proc.stderr


def test_full_data_subset_is_cached_apart_and_labelled_everywhere(run, capsys, private_cache):
    proc, report = evaluate(capsys, run, "--full-data", "--full-data-subset", "55", networks=1)
    assert report["protocol"]["full_data"]["label"] == "full data (subset of 50)"  # 55 // 10 per class
    [entry] = (private_cache / "full_data").glob(f"FashionMNIST-{MODEL}-*.json")
    record = json.loads(entry.read_text())
    assert record["key"]["subset"] == 50 and record["key"]["train_images"] == 100
    assert "--full-data: the networks also train on 50 real training images (full data (subset of 50))" in proc.stderr
    assert f"{MODEL}: full data (subset of 50) " in proc.stderr
    assert "(subset of 50; measured, 1 network)" in proc.stdout
    assert "full data (subset of 50): networks trained on 50 class-balanced real training images (of 100)" \
        in proc.stdout
    [ranked] = report["dd_ranking"]["rows"]
    assert ranked["full_data_source"] == "subset of 50; measured, 1 network"
    assert ranked["full_data_accuracy"] == pytest.approx(record["mean"])

    # read back, still labelled; without --full-data-subset never taken for the whole training set's accuracy
    proc, report = evaluate(capsys, run, "--full-data-subset", "50", "--no-baseline", networks=1)
    assert report["dd_ranking"]["rows"][0]["full_data_source"] == "subset of 50; cached, 1 network"
    proc, report = evaluate(capsys, run, "--no-baseline", networks=1)
    assert report["dd_ranking"]["rows"][0]["full_data_accuracy"] is None
    assert "need the accuracy of networks trained on the whole real training set" in proc.stdout


def test_one_network_shows_its_accuracy_without_a_std(run, capsys):
    from mct_plugin.harness.eval.plots import training_curves
    from mct_plugin.harness.io.rundir import RunDirectory

    proc, report = evaluate(capsys, run, networks=1)
    assert "+- 0.00" not in proc.stdout + proc.stderr
    assert "One network per set: its accuracy alone, no std (n/a)." in proc.stdout
    row = report["rows"][0]
    assert row["distilled"]["std"] is None and row["distilled"]["networks"] == 1
    assert table_row(proc.stdout, MODEL)[2].removesuffix(" (!)") == f"{100 * row['distilled']['mean']:.2f}"
    # the run itself evaluated one network: its curves show no +- 0.0 either
    figure = training_curves(RunDirectory(run).read_metrics(), best_iteration=0)
    labels = [line.get_label() for ax in figure.axes for line in ax.get_lines()]
    assert any(label.startswith("random real subset") and label.endswith("% (1 network)") for label in labels)
    assert "distilled set (1 network)" in labels and not any("+- 0.0" in label for label in labels)


def test_a_best_set_that_is_the_initialisation_says_so(run, capsys):
    assert json.loads((run / "run_summary.json").read_text())["best"]["iteration"] == 0
    proc, report = evaluate(capsys, run / "best", "--no-baseline", networks=1)
    assert "best set (iteration 0) = the initial images: no later evaluation beat them" in proc.stdout
    assert "best set (iteration 0, kept in best/): " in proc.stdout and "- the initial images" in proc.stdout
    assert report["protocol"]["initial_images"] is True and report["protocol"]["set"] == "best"


def test_a_runs_own_config_json_is_a_config_file_for_eval(run, capsys):
    proc, report = evaluate(capsys, run, "--config", str(run / "config.json"), "--no-baseline", networks=1)
    assert report["protocol"]["networks"] == 1 and report["protocol"]["epochs"] == 2  # the command line over the file
    assert (f"--config {run / 'config.json'}: eval takes --baseline, --data-path, --device, --dsa, "
            "--epoch-eval-train, --eval-precision, --num-eval, --seed, --validation, --validation-seed from it; its other "
            "options are distill's") in proc.stderr


@pytest.mark.parametrize("extra,fragment", [
    (["--eval-lr", "fast"], "--eval-lr fast: 'fast' is not a learning rate (a positive number, learned or teacher"),
    (["--eval-lr", "ConvNetW16=0"], "'ConvNetW16=0' is not a learning rate"),
    (["--eval-lr", "ConvNetW16=0.1,ConvNetW16=0.2"], "ConvNetW16 is given two learning rates"),
    (["--eval-lr", "ResNet18=0.01"], "--eval-lr ResNet18=0.01 names ResNet18, which is not evaluated here "
                                     "(the models: ConvNetW16)"),
    (["--baseline-lr", "learned"], "argument --baseline-lr: invalid choice: 'learned'"),
    (["--full-data-subset", "5"], "--full-data-subset 5 is smaller than the number of classes of FashionMNIST (10)"),
    (["--full-data", "--full-data-subset", "500"], "--full-data-subset 500: 50 images per class requested but "
                                                   "the smallest class of FashionMNIST has 10"),
    (["--full-data-subset", "100", "--full-data-accuracy", "80"], "--full-data-subset approximates"),
])
def test_bad_evaluation_options_are_one_line_and_touch_nothing(run, capsys, extra, fragment):
    before = tree_snapshot(run)
    proc = run_main(capsys, "eval", "--run", str(run), "--num-eval", "1", "--epoch-eval-train", "1", *extra)
    if extra[0] == "--baseline-lr":  # argparse's own refusal: its usage line, then the error
        assert proc.returncode == 2 and fragment in proc.stderr
    else:
        assert_one_line_error(proc, fragment)
    assert tree_snapshot(run) == before
