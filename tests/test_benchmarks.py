"""Every benchmark script has a --quick mode; these tests run them (smoke tests, not timings)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import BENCH, ROOT, benchmark_module


def bench(script: str, *args: str, cache: Path | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, **({"MCT_PLUGIN_CACHE": str(cache)} if cache else {})}
    proc = subprocess.run([sys.executable, "-m", f"benchmarks.{script.removesuffix('.py')}", *args],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    return tmp_path_factory.mktemp("bench")


@pytest.fixture(scope="module")
def speed_quick(out) -> dict:
    """One quick run of every part of speed.py the tests check (the gradient part with --modes)."""
    bench("speed.py", "--quick", "--only", "experts,distill,eval,allocator,gradients-ipc1-memory", "--modes",
          "first-order,checkpointed", "--out", str(out))
    return json.loads((out / "speed.json").read_text())


@pytest.mark.slow
def test_speed_quick(speed_quick):
    data = speed_quick
    assert data["quick"] and data["machine"]["cores"] >= 1 and data["command"].startswith("python -m benchmarks.speed")
    assert {r["allocator_tuning"] for r in data["experts"]} == {True, False}
    assert all(r["seconds_per_iteration"] > 0 and r["peak_rss_mb"] > 0 for r in data["distill"])
    for row in data["distill"] + data["allocator"]:  # 2 iterations, the first (warm-up) one not timed
        assert row["iterations_timed"] == len(row["seconds"]) == 1
        assert row["seconds_per_iteration"] == pytest.approx(sum(row["seconds"]) / len(row["seconds"]))
    assert {r["how"] for r in data["eval"]} == {"sequential", "batched"}
    assert [r["allocator_tuning"] for r in data["allocator"]] == [True, False]
    assert all(r["seconds_per_iteration"] > 0 and r["peak_rss_mb"] > 0 for r in data["allocator"])


@pytest.mark.slow
def test_speed_quick_gradient_modes(speed_quick):
    # --modes: only the modes asked for (unrolled is timed against the others in the full parts)
    rows = speed_quick["gradients-ipc1-memory"]
    assert [(r["gradient_mode"], r["syn_steps"]) for r in rows] == [
        (mode, steps) for steps in (3, 6) for mode in ("checkpointed", "first-order")]
    assert all(r["peak_rss_mb"] > 0 and r["unrolled_estimate_gb"] > 0 for r in rows)
    estimates = {r["syn_steps"]: r["unrolled_estimate_gb"] for r in rows}
    assert estimates[6] > estimates[3]  # the graph grows with syn_steps
    assert all("seconds_per_iteration" not in r and r["memory_only"] for r in rows)  # no time from a shared CPU


def test_speed_rejects_an_unknown_gradient_mode_before_writing_anything(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "benchmarks.speed", "--only", "gradients-ipc1-memory", "--modes",
                           "checkpointed,exact", "--out", str(tmp_path / "bad")], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode != 0 and "--modes: unknown gradient mode(s) exact" in proc.stderr
    assert not (tmp_path / "bad").exists()


@pytest.mark.slow
def test_storage_quick(out, tmp_path):
    bench("storage.py", "--quick", "--out", str(out), cache=tmp_path)
    data = json.loads((out / "storage.json").read_text())
    first = data["sizes"]["rows"][0]
    assert first["waypoints"] == 2 and first["ratio"] < 0.25 and first["mct_bytes"] > 0
    assert first["ratio"] == pytest.approx(first["mct_bytes"] / first["mtt_bytes"])


@pytest.mark.slow
def test_distributed_quick(out):
    bench("distributed.py", "--quick", "--out", str(out))
    rows = json.loads((out / "distributed.json").read_text())["rows"]
    assert [r["processes"] for r in rows] == [1, 2] and all(r["segments_per_s"] > 0 for r in rows)
    assert all(r["segments_per_s"] == pytest.approx(r["processes"] * r["iterations_per_s"]) for r in rows)


@pytest.mark.slow
def test_cli_startup_quick(out):
    """The script runs and reports medians (no assertion on the times themselves)."""
    bench("cli_startup.py", "--quick", "--out", str(out))
    data = json.loads((out / "cli_startup_quick.json").read_text())
    assert [r["command"] for r in data["rows"]] == ["dd-harness --help", 'python -c "import torch"']
    assert all(r["runs"] == 2 and r["median_seconds"] > 0 for r in data["rows"]) and data["help_over_import_torch"] > 0
    help_row, torch_row = data["rows"]
    assert data["help_over_import_torch"] == pytest.approx(help_row["median_seconds"] / torch_row["median_seconds"])


def test_results_markdown_is_generated_from_json(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    (results / "distributed.json").write_text(json.dumps({
        "benchmark": "distributed", "command": "python -m benchmarks.distributed", "date": "2026-01-01 00:00 UTC",
        "commit": "abc1234", "machine": {"cpu": "test cpu", "cores": 2}, "model": "ConvNetW32", "ipc": 1,
        "syn_steps": 20, "rows": [{"processes": 1, "threads_per_process": "2", "seconds_per_iteration": 0.5,
                                   "iterations_per_s": 2.0, "segments_per_s": 2.0}]}))
    output = tmp_path / "RESULTS.md"
    subprocess.run([sys.executable, "-m", "benchmarks.make_results", "--results", str(results), "--output", str(output)],
                   check=True, capture_output=True, cwd=ROOT)
    text = output.read_text()
    assert "`python -m benchmarks.distributed`" in text and "abc1234" in text and "| 1 | 2 | 0.500 |" in text


def test_gradient_table_says_why_unrolled_is_missing_and_which_modes_were_not_run():
    def row(mode, ipc, estimate, **extra):
        return {"model": "ConvNet", "ipc": ipc, "syn_steps": 80, "gradient_mode": mode, "unrolled_estimate_gb": estimate,
                "memory_only": True, "peak_rss_mb": 2048.0, **extra}

    # ipc=50 ran checkpointed alone (--modes): unrolled could not have run there, first-order was not asked for;
    # ipc=1 ran checkpointed alone too, where unrolled would have fit: not "does not fit"
    data = {"gradients-ipc50-memory": [row("checkpointed", 50, 111.5)],
            "gradients-ipc1-memory": [row("checkpointed", 1, 0.5)]}
    lines = benchmark_module("make_results").gradient_modes_section(data)
    assert "| ConvNet | 50 | 80 | 111.50 | skipped | - | not run | does not fit | 2.00 | not run |" in lines
    assert "| ConvNet | 1 | 80 | 0.50 | not run | - | not run | not run | 2.00 | not run |" in lines


def test_vs_public_refuses_a_folder_that_is_not_the_public_code(tmp_path):
    """vs_public.py runs a third-party checkout (not available offline, so not run here): a wrong
    folder is one line naming it and what is missing, exit 2, no results file."""
    (tmp_path / "distill.py").write_text("raise SystemExit('must not run')\n")
    proc = subprocess.run([sys.executable, "-m", "benchmarks.vs_public", "--public-repo", str(tmp_path),
                           "--out", str(tmp_path / "results")], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 2
    error = proc.stderr.strip().splitlines()[-1]
    assert str(tmp_path) in error and "utils.py, networks.py, reparam_module.py" in error
    assert not (tmp_path / "results").exists()


def test_vs_public_says_which_module_of_the_public_code_is_missing_before_running_it(tmp_path, monkeypatch, capsys):
    import importlib.util

    for name in ("distill.py", "networks.py", "reparam_module.py"):
        (tmp_path / name).write_text("raise SystemExit('must not run')\n")
    # module level: scipy and sklearn count; its own modules, the launcher's wandb stub and a function's import do not
    (tmp_path / "utils.py").write_text("import wandb\nimport networks\nfrom scipy.ndimage import rotate\n"
                                       "from sklearn.decomposition import PCA\n\ndef f():\n    import not_installed\n")
    real_find_spec = importlib.util.find_spec
    hidden = {"scipy", "sklearn", "wandb", "not_installed"}  # what is installed here is the environment's business
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in hidden else real_find_spec(name, *a))
    with pytest.raises(SystemExit) as stopped:
        benchmark_module("vs_public").main(["--public-repo", str(tmp_path), "--ipc", "1", "--out", str(tmp_path / "out")])
    assert stopped.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "the public code imports scipy, sklearn, which" in error and error.endswith("(pip install scikit-learn scipy)")
    assert not (tmp_path / "out").exists()


def test_vs_public_accuracy_needs_a_checkout_of_the_public_mct_code(tmp_path):
    for name in ("distill.py", "utils.py", "networks.py", "reparam_module.py"):
        (tmp_path / name).write_text("raise SystemExit('must not run')\n")
    proc = subprocess.run([sys.executable, "-m", "benchmarks.vs_public", "--public-repo", str(tmp_path), "--ipc", "",
                           "--accuracy", "--mct-repo", str(tmp_path), "--out", str(tmp_path / "results")],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 2
    assert "--accuracy needs --mct-repo pointing at a checkout of the public MCT code" in proc.stderr
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_gpu_check_cpu_smoke_runs_every_step(out):
    # no time limit: the smoke run is sized to finish well under a minute, and a slow day must not fail it
    proc = subprocess.run(["bash", str(BENCH / "gpu_check.sh"), "--cpu-smoke", "--out", str(out)],
                          capture_output=True, text=True, env={**os.environ, "PYTHON": sys.executable})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((out / "gpu_check_cpu_smoke.json").read_text())
    assert report["all_passed"] and report["device"] == "cpu"
    modes = ("first-order", "unrolled", "checkpointed")
    assert set(report["steps"]) == {"experts", "convert", *(f"distill {m}" for m in modes),
                                    "torchrun 1 process (gloo)", "eval", "paper experts", "paper profile",
                                    *(f"memory {m}" for m in modes), "precision fp32", "precision bf16"}
    assert report["paper_profile"]["finite"] and report["paper_profile"]["recipe"] == "mct/cifar10-ipc1"
    memory = report["gradient_memory"]["modes"]
    assert set(memory) == set(modes) and all(m["peak_rss_mb"] > 0 and m["peak_gpu_gb"] is None for m in memory.values())
    assert all(f"gradient mode {m}" in proc.stdout for m in modes)
    parts = {"expert epoch", "evaluation", "distill unrolled", "distill checkpointed"}
    for precision in ("fp32", "bf16"):  # bf16 runs where the CPU has it natively, else fp32 (and says so)
        measured = report["precision"][precision]
        assert measured["ran"] in (precision, "fp32") and set(measured["parts"]) == parts
        assert all(p["seconds"] > 0 and p["peak_gpu_gb"] is None for p in measured["parts"].values())
        assert f"precision {precision} (ran {measured['ran']}) distill checkpointed" in proc.stdout
    assert "distill unrolled    : bf16 takes" in proc.stdout


def test_vs_public_gives_the_public_code_a_torchvision_fashion_mnist_root(tmp_path, fmnist):
    from torchvision import datasets

    root = benchmark_module("vs_public").fashion_mnist_root(tmp_path / "data")
    train = datasets.FashionMNIST(root, train=True, download=False)
    test = datasets.FashionMNIST(root, train=False, download=False)
    assert (len(train), len(test)) == (60_000, 10_000)
    assert train.data.shape[1:] == (28, 28) and train.targets.bincount().tolist() == [6000] * 10
    assert train.data.flatten(1).float().std(1).min() > 0  # real images, not blanks


def test_results_markdown_shows_the_side_by_side_comparison(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    run = {"command": "python -m benchmarks.vs_public --public-repo MTT_REPO --ipc 1", "date": "2026-01-01 00:00 UTC",
           "commit": "def5678", "machine": {"cpu": "test cpu", "cores": 2}}
    side = lambda median, peak: {"median_s": median, "mean_s": median, "min_s": median, "max_s": median,
                                 "iterations_timed": 6, "runs": 1, "peak_rss_mb": peak}
    (results / "vs_public.json").write_text(json.dumps({
        "benchmark": "vs_public", **run, "parts": {"ipc1": run},
        "ipc1": {"ipc": 1, "syn_steps": 20, "expert_epochs": 2, "model": "ConvNet", "public": side(2.0, 2048),
                 "ours": side(1.5, 1024), "time_ratio": 0.75, "memory_ratio": 0.5},
        # --memory-only parts: every gradient mode next to the public code, or "does not fit"
        "ipc10-s20-memory": {"ipc": 10, "syn_steps": 20, "memory_only": True, "public": {"runs": 1, "peak_rss_mb": 8192},
                             "ours": {"runs": 1, "peak_rss_mb": 8192}, "ours checkpointed": {"runs": 1, "peak_rss_mb": 2048},
                             "memory_ratio": 1.0, "memory_ratio_checkpointed": 0.25},
        "ipc50-s20-memory": {"ipc": 50, "syn_steps": 20, "memory_only": True, "public": {"skipped": "too big"},
                             "ours": {"skipped": "too big"}, "ours checkpointed": {"runs": 1, "peak_rss_mb": 3072}}}))
    output = tmp_path / "RESULTS.md"
    subprocess.run([sys.executable, "-m", "benchmarks.make_results", "--results", str(results), "--output", str(output)],
                   check=True, capture_output=True, cwd=ROOT)
    text = output.read_text()
    assert "--public-repo MTT_REPO" in text and "def5678" in text
    assert "| 1 | 20 | 2 | 2.00 (2.00-2.00) | 1.50 (1.50-1.50) | 0.75x | 2.00 | 1.00 | 0.50x | 6 / 6 |" in text
    assert "| ipc | syn_steps | public distill.py (GB) | ours unrolled (GB) | ours checkpointed (GB) |" in text
    assert "| 10 | 20 | 8.00 | 8.00 (1.00x) | 2.00 (0.25x) |" in text
    assert "| 50 | 20 | does not fit | does not fit | 3.00 |" in text


# -- the studies of benchmarks/studies/ -------------------------------------------------------------
STUDIES = ROOT / "benchmarks" / "studies"


def test_every_study_file_validates_and_expands_and_the_mct_studies_share_their_runs():
    """Each file expands into its jobs without running anything; the MCT studies share one folder,
    so their experts train once and a run two of them resolve to the same options runs once."""
    from mct_plugin.harness.api import Study, build_components

    components = build_components()

    jobs = {path.stem: {job.name: job for job in Study.from_file(path, components=components).jobs()}
            for path in sorted(STUDIES.glob("*.yaml"))}
    assert {"mct-ipc1", "mct-ipc10", "checkpointed", "sweep", "long", "cross-arch", "convergence-cpu",
            "storage-accuracy", "mct-quick"} <= set(jobs)
    count = {name: {kind: sum(job.kind == kind for job in named.values()) for kind in ("experts", "distill", "eval")}
             for name, named in jobs.items()}
    assert count["mct-ipc1"] == {"experts": 1, "distill": 18 * 4, "eval": 0}  # 18 arms x seeds 0-3
    assert count["sweep"] == {"experts": 1, "distill": 28, "eval": 0}  # 14 settings x 2 seeds
    assert count["long"] == count["cross-arch"] == {"experts": 1, "distill": 8, "eval": 16}  # final and best sets
    mct = ("mct-ipc1", "mct-ipc10", "checkpointed", "sweep", "long", "cross-arch")
    assert len({name for study in mct for name in jobs[study] if name.startswith("experts")}) == 1
    assert set(jobs["checkpointed"]) <= set(jobs["mct-ipc1"])
    distills = {study: {name for name in jobs[study] if name.startswith("distill")} for study in jobs}
    assert distills["long"] == distills["cross-arch"]
    assert len(distills["sweep"] & distills["mct-ipc1"]) == 4  # the default MCT and the official one, seeds 0-1
    assert {name for name in jobs["storage-accuracy"] if name.startswith("experts")} == \
        {name for name in jobs["convergence-cpu"] if name.startswith("experts")}
    epochs = {job.options["epoch_eval_train"] for job in jobs["long"].values() if job.kind == "eval"}
    models = {tuple(job.options["models"]) for job in jobs["cross-arch"].values() if job.kind == "eval"}
    assert epochs == {1000} and len(next(iter(models))) == 6


def test_the_field_scale_table_is_one_study_in_parts_and_its_quick_variant_runs(tmp_path):
    """field-scale.yaml and its cross-architecture file are the same runs (evaluated two ways), sized
    as issue 32 asks; the quick variant of their shape runs end to end with DD-Ranking's numbers."""
    from mct_plugin.harness.api import Study, build_components

    from helpers import run_cli

    components = build_components()
    table, cross = (Study.from_file(STUDIES / f"{name}.yaml", components=components).jobs()
                    for name in ("field-scale", "field-scale-cross-arch"))
    assert {j.name for j in table if j.kind != "eval"} == {j.name for j in cross if j.kind != "eval"}
    experts = next(j for j in table if j.kind == "experts").options
    assert (experts["model"], experts["num_experts"], experts["train_epochs"], experts["subset"]) == \
        ("ConvNet", 10, 20, None)
    runs = [j.options for j in table if j.kind == "distill"]
    assert sorted((o["matcher"], o["ipc"], o["iterations"], o["seed"]) for o in runs) == [
        ("mct", 1, 2000, 0), ("mct", 1, 2000, 1), ("mct", 10, 1000, 0),
        ("mtt", 1, 2000, 0), ("mtt", 1, 2000, 1), ("mtt", 10, 1000, 0)]
    assert {o["gradient_mode"] for o in runs} == {"checkpointed"}
    assert {(j.options["epoch_eval_train"], j.options["num_eval"]) for j in table if j.kind == "eval"} == {(1000, 5)}

    quick = STUDIES / "field-scale-quick.yaml"
    proc = run_cli("study", "run", str(quick), "--folder", str(tmp_path / "quick"))
    assert proc.returncode == 0, proc.stderr
    report = run_cli("study", "report", str(quick), "--folder", str(tmp_path / "quick"))
    assert report.returncode == 0, report.stderr
    rows = (tmp_path / "quick" / "report" / "results.jsonl").read_text()
    assert rows.count('"metric": "hlr"') == 2 and rows.count('"source": "eval", "architecture": "ConvNetW16", '
                                                               '"metric": "accuracy"') == 2


def test_results_markdown_regenerates_from_the_stored_results(tmp_path):
    """Every section of RESULTS.md comes back from benchmarks/results/ as committed."""
    output = tmp_path / "RESULTS.md"
    subprocess.run([sys.executable, "-m", "benchmarks.make_results", "--output", str(output)], check=True,
                   capture_output=True, cwd=ROOT)
    assert output.read_text() == (ROOT / "benchmarks" / "RESULTS.md").read_text()


def test_a_study_report_renders_through_the_generic_section(tmp_path):
    results = tmp_path / "results"
    report = results / "studies" / "demo"
    report.mkdir(parents=True)
    (report / "report.md").write_text("## Study demo\n\n| seed | arm |\n|---|---|\n| 0 | mct |\n")
    (report / "paired.json").write_text(json.dumps({"study": "demo", "reference": "mtt", "paired": [
        {"ipc": 1, "set": "final", "source": "distill", "architecture": "ConvNetW16", "metric": "accuracy",
         "arm": "mct", "reference": "mtt", "seeds": [0, 1], "difference": 1.5, "low": -4.9, "high": 7.9, "n": 2,
         "per_seed": {"0": [70.0, 71.0], "1": [60.0, 62.0]}}]}))
    (report / "curves.png").write_bytes(b"\x89PNG")
    output = tmp_path / "RESULTS.md"
    subprocess.run([sys.executable, "-m", "benchmarks.make_results", "--results", str(results), "--output",
                    str(output)], check=True, capture_output=True, cwd=ROOT)
    text = output.read_text()
    assert "## Study `demo` (`benchmarks/studies/demo.yaml`)" in text and "## Study demo" not in text
    assert "| 0 | mct |" in text and "| ipc=1 | mct | final | distill | ConvNetW16 | 0: +1.00, 1: +2.00 |" in text
    assert "![accuracy against iteration](results/studies/demo/curves.png)" in text


def test_the_search_results_come_from_the_optuna_storage_and_the_scoring_report(tmp_path):
    """benchmarks.search reads both searches' storages (trials, pruning, CPU time, today's recipe =
    trial 0, the best) and the scoring study's rows into search.json's list; make_results renders it."""
    import datetime

    import optuna
    from optuna.trial import FrozenTrial, TrialState

    from benchmarks import make_results, search

    from mct_plugin.harness.api import Study
    from mct_plugin.harness.study.search import read_search

    from helpers import components

    folder = tmp_path / "study"
    start = datetime.datetime(2026, 12, 7, 12, 0)
    for name, arm in (("search-mct-ipc1", "mct"), ("search-mtt-ipc1", "mtt")):
        spec = read_search(Study.from_file(search.STUDIES / f"{name}.yaml", components=components(), folder=folder))
        today = dict(spec.enqueue[0])
        distributions = {d.name: d.distribution() for d in spec.space}
        (folder / "search" / name).mkdir(parents=True)
        study = optuna.create_study(study_name=f"{name}/{arm}", storage=f"sqlite:///{folder / 'search' / name / 'search.db'}",
                                    direction="maximize")
        # today's recipe (after a trial stopped with its runner) complete in 30 min on 2 threads, a
        # better trial, a trial pruned at 50 after 6 min
        for number, (state, value, lr, minutes, last) in enumerate(
                [(TrialState.FAIL, None, 1000.0, 1, 0), (TrialState.COMPLETE, 0.70, 1000.0, 29, 300),
                 (TrialState.COMPLETE, 0.74, 3000.0, 30, 300), (TrialState.PRUNED, 0.60, 150.0, 6, 50)]):
            study.add_trial(FrozenTrial(number, state, value if state == TrialState.COMPLETE else None, start,
                                        start + datetime.timedelta(minutes=minutes), {**today, "lr_img": lr},
                                        distributions, {"threads": 2}, {},
                                        {i: value or 0.5 for i in range(0, last + 1, 50)}, number))
    rows = [{"arm": arm, "seed": seed, "set": set_name, "source": "eval", "architecture": "ConvNetW32",
             "metric": "accuracy", "value": 70.0 + offset + seed + (set_name == "best")}
            for arm, offset in (("mct", 1.0), ("mct-tuned", 3.0), ("mtt", 0.0), ("mtt-tuned", 1.5))
            for seed in (0, 1) for set_name in ("final", "best")]
    report = tmp_path / "results.jsonl"
    report.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "results" / "search.json"
    assert search.main(["--folder", str(folder), "--scoring-report", str(report), "--out", str(out)]) == 0

    mct, mtt = json.loads(out.read_text())
    assert (mct["arm"], mct["ipc"], mct["trials"], mct["complete"], mct["pruned"], mct["failed"]) == \
        ("mct", 1, 3, 2, 1, 1)
    assert mct["iterations_run"] == 650 and mct["iterations_unpruned"] == 900
    assert mct["cpu_hours"] == pytest.approx(2 * 66 / 60)
    assert mct["best_params"]["lr_img"] == 3000.0 and mct["best_trial"] == 2 and mct["validation_accuracy"] == 74.0
    assert mct["baseline_params"]["lr_img"] == 1000.0 and mct["baseline_validation_accuracy"] == 70.0
    assert mct["best_params"]["waypoints"] == 4 and "waypoints" not in mtt["best_params"]
    assert mct["validation"] == {"size": 5000, "seed": 0} and mct["space"]["lr_img"] == {"log": [100, 10000]}
    assert mct["test"]["1"] == {"baseline": {"final": 72.0, "best": 73.0}, "tuned": {"final": 74.0, "best": 75.0}}
    assert mtt["test"]["0"]["tuned"] == {"final": 71.5, "best": 72.5} and "commit" in mtt

    markdown = tmp_path / "RESULTS.md"
    assert make_results.main(["--results", str(out.parent), "--output", str(markdown)]) == 0
    text = markdown.read_text()
    assert "| search-mct-ipc1 | 3 (2 complete, 1 pruned; 1 failed) | 650 of 900 (72%) | 2.20 | 70.00 | 74.00 (trial 2) |" in text
    assert "| lr_img | 1000 → 3000 | 1000 → 3000 |" in text and "| waypoints | 4 → 4 | - |" in text
    assert "| MCT | final | 2 | 71.50 ± 0.50 (n=2) | 73.50 ± 0.50 (n=2) | +2.00 [+2.00, +2.00] |" in text
    assert "| MTT | best | 2 | 71.50 ± 0.50 (n=2) | 73.00 ± 0.50 (n=2) | +1.50 [+1.50, +1.50] |" in text
    assert "| final | 2 | +1.50 [+1.50, +1.50] |" in text  # searched MCT - searched MTT


def test_the_pruning_replay_reproduces_the_median_pruner_and_counts_a_stricter_one():
    """Trials run under Optuna's median pruner (the searches' settings), replayed: at the 50th
    percentile every decision is the recorded one; keeping the top 25% stops at 200 the trial that
    ends best (a late bloomer), which the replay reports."""
    import optuna

    from benchmarks.search import pruning_replay

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize",
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=100))
    curves = [[0.60, 0.70, 0.75], [0.62, 0.68, 0.72], [0.50, 0.55, 0.60], [0.64, 0.692, 0.80], [0.63, 0.71, 0.74]]
    for curve in curves:
        trial = study.ask()
        for step, value in zip((100, 200), curve):
            trial.report(value, step)
            if trial.should_prune():
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                break
        else:
            study.tell(trial, curve[-1])
    trials = study.get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE", "PRUNED", "COMPLETE", "COMPLETE"]
    median, _, strict = pruning_replay(trials, every=100, iterations=300)
    assert median == {"percentile": 50, "iterations_share": round((4 * 300 + 100) / 1500, 3), "keeps_best": True,
                      "decisions_as_recorded": 5, "ends_unknown": 0}
    # the top 25% at 200 of the complete trials (0.70, 0.68) starts at 0.695: trial 3's 0.692 is stopped
    assert strict == {"percentile": 25, "iterations_share": round((3 * 300 + 100 + 200) / 1500, 3),
                      "keeps_best": False, "decisions_as_recorded": 4, "ends_unknown": 0}


def test_the_two_searches_share_experts_that_never_saw_the_validation_split(tmp_path):
    """search-mct-ipc1 and search-mtt-ipc1 train one set of experts (the MCT study's, less the 5,000
    validation images) and run their trials on that split, from today's recipe first."""
    from mct_plugin.harness.api import Study
    from mct_plugin.harness.study.search import Search

    from helpers import components

    searches = {name: Search(Study.from_file(STUDIES / f"{name}.yaml", components=components(), folder=tmp_path))
                for name in ("search-mct-ipc1", "search-mtt-ipc1")}
    trials = {name: search.trial_job(dict(search.spec.enqueue[0])) for name, search in searches.items()}
    experts = {name: search.expansion.jobs[trials[name].needs[0]] for name, search in searches.items()}
    assert len({job.name for job in experts.values()}) == 1
    options = next(iter(experts.values())).options
    assert (options["model"], options["num_experts"], options["train_epochs"], options["subset"],
            options["validation"], options["validation_seed"]) == ("ConvNetW32", 10, 30, 20000, 5000, 0)
    for name, job in trials.items():
        assert (job.options["validation"], job.options["iterations"], job.options["num_eval"], job.options["eval_it"]) == \
            (5000, 300, 2, 100)
        assert job.options["matcher"] == name.split("-")[1] and job.options["lr_img"] == 1000
    assert len(searches["search-mct-ipc1"].spec.space) == 9 and len(searches["search-mtt-ipc1"].spec.space) == 6
