"""DD-Ranking's IOR, HLR and LRS (``mct_plugin/harness/eval/ranking.py``) against the definition of
Li et al., "DD-Ranking: Rethinking the Evaluation of Dataset Distillation" (arXiv:2505.13300):

    HLR = Acc_real-hard - Acc_syn-hard,  IOR = Acc_syn-any - Acc_rdm-any,
    alpha = w IOR - (1 - w) HLR,  LRS = (e^alpha - e^-1) / (e - e^-1),  w = 0.5 on their leaderboard,

and through ``dd-harness eval``: the full-data accuracy cache that ``--full-data`` fills and a later
``eval`` reads, and ``--full-data-accuracy``'s one-line errors.
"""

from __future__ import annotations

import json
import math
import re

import pytest
import torch

from helpers import assert_one_line_error, distill_args, random_trajectory, run_main, tree_snapshot
from mct_plugin.harness.eval.ranking import (hard_label_recovery, improvement_over_random, label_robust_score,
                                             label_robust_scores)

MODEL = "ConvNetW16"
E, E_INV = 2.718281828459045, 0.36787944117144233  # e and e^-1


# -- the formula on fixed numbers ------------------------------------------------------------------------
def test_ior_and_hlr_are_the_two_differences_of_the_definition():
    assert improvement_over_random(0.62, 0.55) == pytest.approx(0.07)  # synthetic beats random by 7 points
    assert improvement_over_random(0.40, 0.55) == pytest.approx(-0.15)  # worse than random: negative
    assert hard_label_recovery(0.90, 0.62) == pytest.approx(0.28)  # 28 points short of the whole training set


def test_lrs_by_hand():
    # w = 0.5, IOR = 0.10, HLR = 0.30: alpha = 0.05 - 0.15 = -0.1, e^-0.1 = 0.904837418
    assert label_robust_score(0.10, 0.30) == pytest.approx((0.904837418 - E_INV) / (E - E_INV), abs=1e-9)
    assert label_robust_score(0.10, 0.30) == pytest.approx(0.2284536383, abs=1e-9)
    # the normalisation's ends and middle: alpha = -1 -> 0, alpha = 1 -> 1, alpha = 0 -> 1 / (1 + e)
    assert label_robust_score(-1.0, 1.0) == pytest.approx(0.0, abs=1e-12)
    assert label_robust_score(1.0, -1.0) == pytest.approx(1.0)
    assert label_robust_score(0.2, 0.2) == pytest.approx(1 / (1 + E))
    # w = 1: IOR alone (alpha = 0.35, e^0.35 = 1.419067549); w = 0: -HLR alone
    assert label_robust_score(0.35, 0.9, weight=1.0) == pytest.approx((1.419067549 - E_INV) / (E - E_INV))
    assert label_robust_score(0.9, 0.35, weight=0.0) == pytest.approx((math.exp(-0.35) - E_INV) / (E - E_INV))
    with pytest.raises(ValueError, match="weight must lie in"):
        label_robust_score(0.1, 0.1, weight=1.5)


def test_scores_are_per_paired_network_then_mean_and_population_std():
    # networks i of the synthetic set and of the random subset share their seed: paired, as DD-Ranking's runs
    scores = label_robust_scores("ConvNet", [0.60, 0.62], [0.50, 0.55], 0.90, full_data_source="given")
    assert scores.ior.values == pytest.approx((0.10, 0.07)) and scores.hlr.values == pytest.approx((0.30, 0.28))
    assert scores.ior.mean == pytest.approx(0.085) and scores.ior.std == pytest.approx(0.015)  # np.std, not n-1
    assert scores.hlr.mean == pytest.approx(0.29) and scores.hlr.std == pytest.approx(0.01)
    # alpha = -0.1 and -0.105: e^-0.1 = 0.904837418, e^-0.105 = 0.900324523
    by_hand = [(0.904837418 - E_INV) / (E - E_INV), (0.900324523 - E_INV) / (E - E_INV)]
    assert scores.lrs.values == pytest.approx(by_hand, abs=1e-9)
    assert scores.lrs.mean == pytest.approx(0.2274936, abs=1e-7)
    assert scores.ior.points(signed=True) == "+8.50 +- 1.50" and scores.lrs.points() == "22.75 +- 0.10"


def test_missing_inputs_leave_their_numbers_out_and_percentages_are_refused():
    no_full = label_robust_scores("ConvNet", [0.6], [0.5], None)
    assert no_full.ior is not None and no_full.hlr is None and no_full.lrs is None
    no_random = label_robust_scores("ConvNet", [0.6], None, 0.9)
    assert no_random.ior is None and no_random.hlr.mean == pytest.approx(0.3) and no_random.lrs is None
    with pytest.raises(ValueError, match="not a fraction"):
        label_robust_scores("ConvNet", [60.0], [50.0], 90.0)  # accuracies in percent would leave [0, 1]
    with pytest.raises(ValueError, match="cannot be paired"):
        label_robust_scores("ConvNet", [0.6, 0.7], [0.5], 0.9)


# -- through dd-harness eval -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, micro_fmnist_dir):
    """A finished one-iteration ConvNetW16 run on the micro Fashion-MNIST folder (100 real
    training images: the "whole training set" of --full-data)."""
    from mct_plugin.harness.cli import main

    base = tmp_path_factory.mktemp("ranking")
    torch.save([random_trajectory(MODEL, 3, seed=0)], base / "replay_buffer_0.pt")
    run = base / "run"
    assert main(distill_args(MODEL, buffer_path=base, data_path=micro_fmnist_dir, out=run, iterations=1,
                             syn_steps=1)) == 0
    return run


def tiny_eval(run, *extra):
    return ["eval", "--run", str(run), "--num-eval", "1", "--epoch-eval-train", "1", *extra]


def lrs_by_hand(report: dict, full: float) -> list[float]:
    row = report["rows"][0]
    pairs = zip(row["distilled"]["accuracies"], row["random_subset"]["accuracies"])
    return [(math.exp(0.5 * (s - r) - 0.5 * (full - s)) - E_INV) / (E - E_INV) for s, r in pairs]


def test_full_data_fills_the_cache_and_a_later_eval_uses_it(finished_run, tmp_path, monkeypatch, capsys):
    cache = tmp_path / "cache"
    monkeypatch.setenv("MCT_PLUGIN_CACHE", str(cache))
    filled = run_main(capsys, *tiny_eval(finished_run, "--full-data"))
    assert filled.returncode == 0, filled.stderr
    [entry] = (cache / "full_data").glob("FashionMNIST-ConvNetW16-*.json")
    record = json.loads(entry.read_text())
    assert record["networks"] == 1 and len(record["accuracies"]) == 1
    assert record["key"]["train_images"] == 100 and record["key"]["epoch_eval_train"] == 1  # the tiny protocol
    assert record["key"]["model"] == MODEL and record["key"]["dataset"] == "FashionMNIST"
    assert "(measured, 1 network)" in filled.stdout

    reused = run_main(capsys, *tiny_eval(finished_run, "--num-eval", "2"))  # more networks: the same protocol
    assert reused.returncode == 0, reused.stderr
    assert "(cached, 1 network)" in reused.stdout and "need the accuracy" not in reused.stdout
    assert "| model | IOR (points) | full data (%) | HLR (points) | LRS (%) |" in reused.stdout
    report = json.loads((finished_run / "eval.json").read_text())
    [ranked] = report["dd_ranking"]["rows"]
    assert ranked["full_data_accuracy"] == pytest.approx(record["mean"])
    assert ranked["full_data_source"] == "cached, 1 network" and ranked["weight"] == 0.5
    assert len(ranked["lrs"]["values"]) == 2  # one per pair of networks
    assert ranked["lrs"]["values"] == pytest.approx(lrs_by_hand(report, record["mean"]), abs=1e-12)
    distilled = report["rows"][0]["distilled"]["accuracies"]
    assert ranked["hlr"]["values"] == pytest.approx([record["mean"] - s for s in distilled])

    other_protocol = run_main(capsys, *tiny_eval(finished_run, "--epoch-eval-train", "2"))
    assert other_protocol.returncode == 0, other_protocol.stderr
    assert re.search(r"\| ConvNetW16 \| [+-]\d+\.\d\d \| - \| - \| - \|", other_protocol.stdout)  # 1 network: no std
    assert "HLR and LRS of ConvNetW16 need the accuracy" in other_protocol.stdout

    entry.write_text('{"format": 1, "key": {}, "accuracies": [0.5]}')  # damaged: refused before any training
    before = tree_snapshot(finished_run)
    assert_one_line_error(run_main(capsys, *tiny_eval(finished_run)), str(entry),
                          "is not a full-data accuracy record", "--full-data' again")
    assert tree_snapshot(finished_run) == before


def test_a_given_full_data_accuracy_enters_as_a_fraction(finished_run, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MCT_PLUGIN_CACHE", str(tmp_path / "cache"))
    proc = run_main(capsys, *tiny_eval(finished_run, "--full-data-accuracy", "91.5"))
    assert proc.returncode == 0, proc.stderr
    assert "| 91.50 (--full-data-accuracy) |" in proc.stdout
    report = json.loads((finished_run / "eval.json").read_text())
    assert report["dd_ranking"]["rows"][0]["lrs"]["values"] == pytest.approx(lrs_by_hand(report, 0.915), abs=1e-12)
    assert not (tmp_path / "cache").exists()


def test_a_soft_labelled_set_gets_a_note_instead_of_numbers(finished_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "soft"
    shutil.copytree(finished_run, run)
    torch.save(torch.full((10, 10), 0.1), run / "labels.pt")
    proc = run_main(capsys, *tiny_eval(run, "--full-data-accuracy", "90"))
    assert proc.returncode == 0, proc.stderr
    assert "IOR (points)" not in proc.stdout and "the synthetic set has soft labels" in proc.stdout
    ranking = json.loads((run / "eval.json").read_text())["dd_ranking"]
    assert ranking["rows"] == [] and "soft labels" in ranking["notes"][0]


@pytest.mark.parametrize("value,fragment", [
    ("abc", "--full-data-accuracy must be a number (got 'abc')"),
    ("150", "--full-data-accuracy must be at most 100 (got 150"),
    ("-1", "--full-data-accuracy must be at least 0 (got -1"),
    ("nan", "--full-data-accuracy must be a finite number (got nan)"),
])
def test_a_bad_full_data_accuracy_is_one_line(finished_run, capsys, value, fragment):
    before = tree_snapshot(finished_run)
    assert_one_line_error(run_main(capsys, *tiny_eval(finished_run, f"--full-data-accuracy={value}")), fragment)
    assert tree_snapshot(finished_run) == before


@pytest.mark.parametrize("extra,fragment", [
    (["--full-data", "--full-data-accuracy", "90"], "pass one of them"),
    (["--models", "ConvNetW16,ConvNetW32", "--full-data-accuracy", "90"], "gives one accuracy but 2 models"),
])
def test_conflicting_full_data_options_are_one_line(finished_run, capsys, extra, fragment):
    before = tree_snapshot(finished_run)
    assert_one_line_error(run_main(capsys, *tiny_eval(finished_run, *extra)), fragment)
    assert tree_snapshot(finished_run) == before

