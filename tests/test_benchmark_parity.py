"""The benchmarks of issue 20: parity with the public code (and its ablation swaps), the long
horizon, cross-architecture on its sets, their statistics and their RESULTS.md sections.

The public MTT/MCT code is not part of the project and not available offline: the launcher's
wiring is tested on ``tests/public_standin``, a small program of our own with the public code's
interfaces (file names, call sites, signatures); the swap adapters are tested in-process on the
toy buffer of ``conftest.expert_dir``.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import ROOT, SMALL_MODEL, benchmark_module

STANDIN = Path(__file__).resolve().parent / "public_standin"


# -- statistics --------------------------------------------------------------------------------
def test_t_quantiles_agree_with_the_printed_table():
    from mct_plugin.harness.study import stats
    table = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 7: 2.365, 9: 2.262, 10: 2.228, 20: 2.086,
             30: 2.042, 120: 1.980}
    for df, value in table.items():
        assert stats.t_quantile(0.975, df) == pytest.approx(value, abs=6e-4), df
    assert stats.t_quantile(0.975, float("inf")) == pytest.approx(1.95996, abs=1e-5)
    assert stats.t_quantile(0.025, 5) == pytest.approx(-stats.t_quantile(0.975, 5))
    # fractional degrees of freedom (Welch) fall between their integer neighbours
    assert stats.t_quantile(0.975, 4) > stats.t_quantile(0.975, 4.5) > stats.t_quantile(0.975, 5)


def test_welch_interval_matches_the_formula_worked_by_hand():
    from mct_plugin.harness.study import stats
    ours, public = [70.0, 71.0, 72.0], [68.0, 70.0, 72.0, 74.0]
    # variances of the means: 1/3 and (20/3)/4 = 5/3; df = (2)^2 / ((1/3)^2/2 + (5/3)^2/3) = 4 / (1/18 + 25/27)
    df = 4 / (1 / 18 + 25 / 27)
    interval = stats.welch_interval(ours, public)
    assert interval["difference"] == pytest.approx(0.0) and interval["df"] == pytest.approx(df)
    assert interval["high"] == pytest.approx(stats.t_quantile(0.975, df) * 2 ** 0.5)
    assert interval["low"] == pytest.approx(-interval["high"]) and interval["n"] == [3, 4]
    assert stats.welch_interval([1.0], [2.0, 3.0])["low"] is None  # one run: no interval
    paired = stats.paired_interval([1.0, 2.0, 3.0])
    assert paired["mean"] == 2.0 and paired["high"] - 2.0 == pytest.approx(stats.t_quantile(0.975, 2) / 3 ** 0.5)


# -- the swap adapters, in-process on the toy buffer ---------------------------------------------
def _toy_script(tmp_path: Path) -> Path:
    """A file name for code that calls like a public script (the adapters recognise their caller)."""
    path = tmp_path / "distill.py"
    path.write_text("# stand-in call sites\n")
    return path


def _run_as(script: Path, source: str, namespace: dict) -> dict:
    exec(compile(source, str(script), "exec"), namespace)
    return namespace


@pytest.fixture()
def toy_utils(monkeypatch):
    """A ``utils`` module as the public scripts import it (the dsa swap replaces its DiffAugment)."""
    import types

    module = types.ModuleType("utils")
    module.DiffAugment = lambda x, strategy="", seed=-1, param=None: x
    monkeypatch.setitem(sys.modules, "utils", module)
    return module


def test_each_swap_adapter_puts_our_component_in_its_place(tmp_path, toy_utils, expert_root):
    from mct_plugin.harness.augment import DifferentiableAugmentation

    swaps = benchmark_module("public_swaps")
    workloads = benchmark_module("workloads")
    script = _toy_script(tmp_path)
    arguments = ["--matcher", "mtt", "--model", SMALL_MODEL, "--buffer-path", str(expert_root), "--seed", "3",
                 "--syn-steps", "2", "--expert-epochs", "1", "--max-start-epoch", "3", "--eval-it", "1",
                 "--num-eval", "1", "--epoch-eval-train", "1", "--iterations", "1", "--save-every-eval", "--quiet"]
    init = tmp_path / "init.pt"
    workloads.initial_images(str(init), *arguments, "--out", str(tmp_path / "probe"))
    # the images of a real run of the same seed at iteration 0 (before any update) are these exactly
    workloads.distill_command(*arguments, "--out", str(tmp_path / "run"))
    assert torch.equal(torch.load(init), torch.load(tmp_path / "run" / "snapshots" / "images_0.pt"))

    spec = swaps.SwapSpec(swaps.SWAP_NAMES, str(script), seed=3, method="mtt", max_start_epoch=3, expert_epochs=1,
                          iterations=4, lr_teacher=0.01, num_epochs=5, init_images=str(init))
    originals = (toy_utils.DiffAugment, np.random.randint, torch.randperm, random.shuffle, torch.optim.SGD.step,
                 torch.optim.SGD.__init__)
    patches, calls = swaps.install(spec)
    try:
        torch.manual_seed(11)
        x = torch.randn(10, 1, 28, 28, requires_grad=True)
        source = """
import random
import numpy as np
import torch
import utils
image_syn = torch.zeros(10, 1, 28, 28).requires_grad_(True)
optimizer_img = torch.optim.SGD([image_syn], lr=1.0)
syn_lr = torch.tensor(0.001).requires_grad_(True)
optimizer_lr = torch.optim.SGD([syn_lr], lr=1.0)
syn_lr.grad = torch.tensor(1.0)
optimizer_lr.step()
augmented = utils.DiffAugment(x, 'color_crop_cutout_flip_scale_rotate')
starts = [np.random.randint(0, 3) for _ in range(6)]
orders = [torch.randperm(10) for _ in range(2)]
files = list(range(7))
random.shuffle(files)
"""
        torch.manual_seed(5)
        ran = _run_as(script, source, {"x": x})
        torch.manual_seed(5)  # our DSA from the same global stream gives the same augmentation
        expected = DifferentiableAugmentation((28, 28))(x)
        assert torch.equal(ran["augmented"], expected)
        assert torch.autograd.grad(ran["augmented"].sum(), x)[0].abs().sum() > 0  # still differentiable

        assert torch.equal(ran["image_syn"].detach(), torch.load(init))  # init: our starting images
        # optimizer: the update that would take alpha from 0.001 to -0.999 is skipped, as ours is
        assert float(ran["syn_lr"].detach()) == pytest.approx(0.001)

        torch.manual_seed(3)  # segment: our discrete sampler on the run's seed
        assert ran["starts"] == [int(torch.randint(0, 3, (1,))) for _ in range(6)]
        torch.manual_seed(3)  # minibatch: our schedule's permutations on the run's seed
        assert all(torch.equal(order, torch.randperm(10)) for order in ran["orders"])
        torch.manual_seed(3)  # expert order: our pool's shuffle on the run's seed
        assert ran["files"] == torch.randperm(7).tolist()
        assert calls == {"dsa": 1, "init": 1, "segment": 6, "minibatch": 2, "optimizer": 1, "expert-order": 1}

        np.random.seed(0)  # calls from anywhere else still reach the originals
        outside = [np.random.randint(0, 3) for _ in range(6)]
        np.random.seed(0)
        assert outside == [originals[1](0, 3) for _ in range(6)] and calls["segment"] == 6
    finally:
        patches.restore()
    assert (toy_utils.DiffAugment, np.random.randint, torch.randperm, random.shuffle, torch.optim.SGD.step,
            torch.optim.SGD.__init__) == originals


def test_the_continuous_segment_swap_answers_the_public_mct_draw(tmp_path, toy_utils):
    swaps = benchmark_module("public_swaps")
    script = _toy_script(tmp_path)
    spec = swaps.SwapSpec(("segment",), str(script), seed=2, method="mct", max_start_epoch=2.5, expert_epochs=1,
                          iterations=4, lr_teacher=0.01, num_epochs=5)
    patches, calls = swaps.install(spec)
    try:
        starts = _run_as(script, "import numpy as np\nstarts = [np.random.uniform(0, 2.5) for _ in range(4)]",
                         {})["starts"]
    finally:
        patches.restore()
    torch.manual_seed(2)
    assert starts == pytest.approx([2.5 * float(torch.rand(())) for _ in range(4)]) and calls["segment"] == 4
    with pytest.raises(ValueError, match="unknown swap"):
        bad = tmp_path / "spec.json"
        bad.write_text(json.dumps({**spec.__dict__, "swaps": ["colour"]}))
        swaps.SwapSpec.from_json(bad)


# -- the launcher on the stand-in public code ----------------------------------------------------
@pytest.fixture(scope="module")
def public_data(tmp_path_factory):
    """The torchvision Fashion-MNIST root the launcher's data branch reads."""
    return benchmark_module("vs_public").fashion_mnist_root(tmp_path_factory.mktemp("public-data"))


def _launch(script: str, *args: str, env: dict | None = None) -> dict:
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "public_launcher.py"), str(STANDIN), script, "1",
                           *args], capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_launcher_runs_a_public_style_program_with_every_swap_and_evaluates_a_saved_set(
        tmp_path, public_data, expert_root):
    swaps = benchmark_module("public_swaps")
    init = tmp_path / "init.pt"
    ours = torch.randn(10, 1, 28, 28)
    torch.save(ours, init)
    spec = swaps.SwapSpec(swaps.SWAP_NAMES, str(STANDIN / "distill.py"), seed=0, method="mtt", max_start_epoch=2,
                          expert_epochs=1, iterations=3, lr_teacher=0.01, num_epochs=5, init_images=str(init))
    capture = tmp_path / "capture"
    capture.mkdir()
    result = _launch("distill.py", "--model", SMALL_MODEL, "--buffer_path", str(expert_root), "--data_path",
                     str(public_data), "--Iteration", "3", "--eval_it", "3",
                     env={"DD_CAPTURE_DIR": str(capture), "DD_SWAP_SPEC": str(spec.to_json(tmp_path / "spec.json"))})
    assert set(result["swap_calls"]) == set(swaps.SWAP_NAMES) and all(n > 0 for n in result["swap_calls"].values())
    first, final = (torch.load(path) for path in result["captured"])  # iterations 0 and 3
    assert torch.equal(first["images"], ours) and not torch.equal(final["images"], ours)
    assert len([row for row in result["logged"] if "Grand_Loss" in row]) == 4
    evaluated = _launch("evaluate_synset", "--set", result["captured"][-1], "--model", SMALL_MODEL, "--num_eval", "2",
                        "--epoch_eval_train", "2", "--data_path", str(public_data))
    assert len(evaluated["accs"]) == 2 and all(0 <= a <= 1 for a in evaluated["accs"])
    assert (evaluated["num_eval"], evaluated["epoch_eval_train"]) == (2, 2)


def test_vs_public_refuses_an_unknown_swap(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "benchmarks.vs_public", "--public-repo", str(STANDIN), "--accuracy",
                           "--methods", "mtt", "--swap", "dsa,colour", "--out", str(tmp_path / "results")],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 2 and "--swap: unknown colour" in proc.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "results").exists()


def _use_as_experts(expert_dir: Path, buffers: Path) -> None:
    """The session's toy experts (ConvNetW32, 5 epochs) as the quick parity's experts: their records
    count the experts it asks for, so its experts job is done."""
    shutil.copytree(expert_dir, buffers / "FashionMNIST" / SMALL_MODEL)


@pytest.mark.slow
def test_parity_quick_judges_every_final_set_twice_and_resumes(tmp_path, expert_dir):
    """vs_public --accuracy --quick on the stand-in public program: the JSON of the issue's shape,
    intervals, the ablation rows, the scatter, and a rerun that finds every step cached."""
    cache, out = tmp_path / "cache", tmp_path / "out"
    _use_as_experts(expert_dir, cache / "experts" / "buffers")  # the quick experts: ConvNetW32 x 5 epochs
    command = ["-m", "benchmarks.vs_public", "--public-repo", str(STANDIN), "--accuracy", "--quick", "--methods", "mtt",
               "--seeds", "2", "--swap", "init", "--swap-runs", "2", "--cache", str(cache), "--out", str(out)]
    proc = subprocess.run([sys.executable, *command], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((out / "parity_quick.json").read_text())
    assert data["ipc"] == 1 and set(data["methods"]) == {"mtt"} and data["complete"]
    for program in ("public", "ours"):
        values = data["methods"]["mtt"][program]
        assert set(values) == {"ours_eval", "public_eval"} and all(len(v) == 2 for v in values.values())
        assert all(0 <= a <= 100 for v in values.values() for a in v)
    for evaluator in ("ours_eval", "public_eval"):
        d = data["differences"]["mtt"][evaluator]
        assert d["low"] <= d["difference"] <= d["high"] and d["n"] == [2, 2] and d["target_met"] in (True, False)
    swapped = data["ablation"]["mtt"]["init"]
    assert len(swapped["ours_eval"]) == 2 and swapped["runs"][0]["swap_calls"] == {"init": 1}
    assert (out / "parity_quick.png").read_bytes()[:4] == b"\x89PNG"
    cached = sorted(p for p in cache.glob("mtt/*/run*/*")
                    if p.name in ("set.pt", "run.json", "ours_eval.json", "public_eval.json"))
    assert len(cached) == 6 * 4  # 6 runs x (set, run record, two evaluations)
    before = [p.stat().st_mtime_ns for p in cached]
    proc = subprocess.run([sys.executable, *command], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [p.stat().st_mtime_ns for p in cached] == before

    results = tmp_path / "results"  # the RESULTS.md section, from this JSON as a full run would write it
    results.mkdir()
    (results / "parity.json").write_text(json.dumps({**data, "quick": False}))
    text = _results_markdown(results)
    assert "## Parity with the public code, powered" in text and "### Ablation" in text
    assert "| MTT | init | the real images our run of the same seed starts from |" in text
    assert "side by side (`vs_public.py --accuracy`)" not in text  # the earlier 3-run section is replaced
    (results / "parity.json").write_text(json.dumps({**data, "quick": False, "complete": False}))
    text = _results_markdown(results)  # a part cut by --hours: no verdict on the target yet
    assert "**Not finished**" in text and "pending (unfinished)" in text and "| missed |" not in text


# -- the long horizon and cross-architecture ----------------------------------------------------
def _results_markdown(results: Path) -> str:
    output = results.parent / "RESULTS.md"
    subprocess.run([sys.executable, "-m", "benchmarks.make_results", "--results", str(results), "--output",
                    str(output)], check=True, capture_output=True, cwd=ROOT)
    return output.read_text()


def test_long_horizon_and_cross_arch_sections_say_what_is_not_finished(tmp_path):
    """The sections of the stored long-horizon and cross-architecture results, and a part cut by
    --hours: it says so, names what is left and shows no empty row."""
    results = tmp_path / "results"
    results.mkdir()
    stored = ROOT / "benchmarks" / "results"
    shutil.copy(stored / "long_horizon.json", results)
    cross = json.loads((stored / "cross_arch.json").read_text())
    (results / "cross_arch.json").write_text(json.dumps(cross))
    text = _results_markdown(results)
    assert "## The long horizon: MTT against the default MCT over 2000 iterations" in text
    assert "## Cross-architecture on the long-horizon sets" in text and "**Not finished**" not in text
    empty = {"mtt": {"seeds": [], "final": [], "best": []}, "mct": {"seeds": [], "final": [], "best": []}}
    cross["architectures"]["VGG99"] = {"num_eval": 1, "epochs": 2, "arms": empty, "paired_mct_minus_mtt": {}}
    (results / "cross_arch.json").write_text(json.dumps({**cross, "complete": False, "pending": ["VGG99"]}))
    text = _results_markdown(results)
    assert "**Not finished**: the sets evaluated so far; still to run: VGG99." in text and "| VGG99 |" not in text
