"""Studies as data: the file's checks, its expansion into jobs, a tiny study run end to end through
the CLI (SIGKILLed mid-way and continued), its report, a second runner refused, the submitit
executor through its local backend."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from helpers import assert_one_line_error, components, run_cli

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent

TINY = {
    "name": "tiny",
    "experts": {"model": "ConvNetW16", "num_experts": 2, "train_epochs": 2, "save_interval": 2, "subset": None},
    "options": {"model": "ConvNetW16", "iterations": 3, "eval_it": 3, "num_eval": 1, "epoch_eval_train": 2,
                "syn_steps": 2, "expert_epochs": 1, "max_start_epoch": 1, "checkpoint_every": 1},
    "arms": {"mtt": {"recipe": "mtt/fashionmnist-ipc1"},
             "mct": {"recipe": "mct/fashionmnist-ipc1", "options": {"gradient_mode": "first-order", "waypoints": 2}}},
    "grid": {"seed": [0, 1]},
    "evaluate": {"sets": ["final"], "options": {"num_eval": 1, "epoch_eval_train": 2}},
    "report": {"reference": "mtt"},
}


def write_study(path: Path, data_path: Path, **changes) -> Path:
    study = {**TINY, **changes}
    study["options"] = {**study["options"], "data_path": str(data_path)}
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def load(path: Path, folder: Path):
    from mct_plugin.harness.study.runner import Study

    return Study.from_file(path, components(), folder=folder)


# -- the file ------------------------------------------------------------------------------------
@pytest.mark.parametrize("change, fragments", [
    ({"arms": {"mtt": {"recipie": "mtt/fashionmnist-ipc1"}}}, ["arms.mtt", "unknown key 'recipie'"]),
    ({"grid": {"arms": ["nope"], "seed": [0]}}, ["grid.arms", "unknown arm 'nope'"]),
    ({"report": {"reference": "nope"}}, ["report.reference", "unknown arm 'nope'"]),
    ({"evaluate": {"sets": ["last"]}}, ["evaluate.sets", "unknown set 'last'"]),
    ({"options": {"lr_img": -1}}, ["arms.mtt (options at seed=0)", "--lr-img"]),
    ({"arms": {"mtt": {"recipe": "mtt/nope"}}}, ["mtt/nope"]),
    ({"options": {"syn_stepz": 3}}, ["options", "--syn-stepz"]),
    ({"arms": {"mtt": {}, "mct": {"recipe": "mct/fashionmnist-ipc1", "options": {"waypoints": 1}}}},
     ["arms.mct (options at seed=0)", "--waypoints"]),
    ({"colour": "blue"}, ["unknown key 'colour'"]),
])
def test_a_bad_study_file_is_one_line_naming_the_file_and_the_key(tmp_path, micro_fmnist_dir, change, fragments):
    path = write_study(tmp_path / "study.yaml", micro_fmnist_dir, **change)
    before = path.read_bytes()
    proc = run_cli("study", "status", str(path), "--folder", str(tmp_path / "folder"))
    assert_one_line_error(proc, str(path), *fragments)
    assert path.read_bytes() == before and not (tmp_path / "folder").exists()


def test_jobs_are_keyed_by_their_resolved_options_and_shared(tmp_path, micro_fmnist_dir):
    # two grids reach mct seed 0, a copy of the mct arm resolves to its runs, and both methods to
    # the same experts: each runs once
    grids = [{"seed": [0, 1]}, {"arms": ["mct"], "seed": [0, 2]}]
    arms = {**TINY["arms"], "copy": {**TINY["arms"]["mct"], "label": "the same as mct"}}
    study = load(write_study(tmp_path / "s.yaml", micro_fmnist_dir, grid=grids, arms=arms), tmp_path / "f")
    jobs = study.jobs()
    kinds = [job.kind for job in jobs]
    assert kinds.count("experts") == 1 and kinds.count("distill") == 5 and kinds.count("eval") == 5
    shared = [job for job in jobs if job.kind == "distill" and len(job.labels) == 2]
    assert sorted((label.arm, label.point["seed"]) for job in shared for label in job.labels) == [
        ("copy", 0), ("copy", 1), ("mct", 0), ("mct", 1)]
    # the fingerprint follows the options, not the file: a recipe value restated changes nothing
    restated = {"mtt": {"recipe": "mtt/fashionmnist-ipc1", "options": {"lr_teacher": 0.01}},
                "mct": TINY["arms"]["mct"]}
    again = load(write_study(tmp_path / "t.yaml", micro_fmnist_dir, grid=grids, arms=restated), tmp_path / "f")
    assert [job.name for job in again.jobs()] == [job.name for job in jobs]
    changed = load(write_study(tmp_path / "u.yaml", micro_fmnist_dir, grid=grids,
                               arms={**restated, "mtt": {"recipe": "mtt/fashionmnist-ipc1",
                                                         "options": {"lr_teacher": 0.02}}}), tmp_path / "f")
    assert len(set(job.name for job in changed.jobs()) - set(job.name for job in jobs)) == 2 + 2  # mtt runs + evals


def test_a_report_needs_a_finished_run(tmp_path, micro_fmnist_dir):
    path = write_study(tmp_path / "s.yaml", micro_fmnist_dir)
    assert_one_line_error(run_cli("study", "report", str(path), "--folder", str(tmp_path / "f")), str(path),
                          "no finished distillation yet")
    assert not (tmp_path / "f" / "report").exists()


# -- running it ----------------------------------------------------------------------------------
def _status(path: Path, folder: Path) -> dict[str, int]:
    proc = run_cli("study", "status", str(path), "--folder", str(folder))
    assert proc.returncode == 0, proc.stderr
    last = proc.stdout.strip().splitlines()[-1]
    return {word: int(count) for count, word in
            (part.split()[:2] for part in last.split(": ", 1)[1].split(" of ")[0].split(", "))}


def test_a_tiny_study_survives_sigkill_and_its_report_reads_the_runs(tmp_path, micro_fmnist_dir):
    path = write_study(tmp_path / "study.yaml", micro_fmnist_dir, evaluate=None)  # evaluations: the next test
    folder = tmp_path / "folder"
    command = [sys.executable, "-m", "mct_plugin.harness.cli", "study", "run", str(path), "--folder", str(folder),
               "--workers", "2"]
    runner = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    study = load(path, folder)
    distills = [job for job in study.jobs() if job.kind == "distill"]
    while not any((job.run_dir / "checkpoint.pt").is_file() for job in distills):  # mid-distillation
        assert runner.poll() is None, runner.stdout.read()
        time.sleep(0.1)
    runner.kill()
    runner.wait()
    for _ in range(100):  # the commands die with their runner (PDEATHSIG); the kernel then drops their locks
        counts = _status(path, folder)
        if "running" not in counts:
            break
        time.sleep(0.2)
    assert "running" not in counts, counts  # no orphan holds a lock
    assert counts.get("pending", 0) + counts.get("failed", 0) > 0
    kept = {job.name: (job.run_dir / "run_summary.json").read_bytes() for job in distills
            if (job.run_dir / "run_summary.json").is_file()}

    finished = run_cli("study", "run", str(path), "--folder", str(folder), "--workers", "2")
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert _status(path, folder) == {"done": 1 + 4}
    for name, summary in kept.items():  # a finished job is not run again
        assert (folder / "jobs" / name / "run" / "run_summary.json").read_bytes() == summary
    resumed = [job for job in distills if "resum" in job.log_file.read_text()]
    assert resumed, "the interrupted distillation continued from its checkpoint"

    report = run_cli("study", "report", str(path), "--folder", str(folder))
    assert report.returncode == 0, report.stderr
    rows = [json.loads(line) for line in (folder / "report" / "results.jsonl").read_text().splitlines()]
    for job in distills:  # the table's numbers are the runs' own
        summary = json.loads((job.run_dir / "run_summary.json").read_text())
        label = job.labels[0]
        row = next(r for r in rows if r["arm"] == label.arm and r["seed"] == label.point["seed"]
                   and r["set"] == "final" and r["source"] == "distill")
        assert row["value"] == pytest.approx(100 * summary["final"]["mean"])
    paired = json.loads((folder / "report" / "paired.json").read_text())["paired"]
    final = next(p for p in paired if p["set"] == "final" and p["source"] == "distill" and p["metric"] == "accuracy")
    values = {(r["arm"], r["seed"]): r["value"] for r in rows if r["set"] == "final" and r["source"] == "distill"}
    assert final["arm"] == "mct" and final["n"] == 2
    assert final["difference"] == pytest.approx(sum(values["mct", s] - values["mtt", s] for s in (0, 1)) / 2)
    assert final["low"] <= final["difference"] <= final["high"]
    assert (folder / "report" / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert "| final | distill | ConvNetW16 | mct | 2 |" in (folder / "report" / "report.md").read_text()

    # a second runner on the same folder is refused in one line while the first holds it
    from mct_plugin.harness.io.locks import OutputLock

    with OutputLock(folder, "dd-harness study run"):
        refused = run_cli("study", "run", str(path), "--folder", str(folder))
    assert_one_line_error(refused, str(folder), "in use")

    # more seeds later, on another executor: only the new jobs run (submitit's local backend)
    more = write_study(tmp_path / "more.yaml", micro_fmnist_dir, grid={"seed": [0, 1, 2]},
                       arms={"mct": TINY["arms"]["mct"]}, evaluate=None, report=None)
    submitted = run_cli("study", "run", str(more), "--folder", str(folder), "--executor", "submitit",
                        "--executor-option", "cluster=local", "--executor-option", "timeout_min=10")
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    assert submitted.stderr.count("submitted") == 1, submitted.stderr
    assert _status(more, folder) == {"done": 1 + 3}
    assert (folder / "submitit").is_dir()


def test_a_failed_job_shows_its_error_line_and_the_others_go_on(tmp_path, micro_fmnist_dir):
    # an arm whose start epoch lies past the experts' end fails, and its evaluation waits; the other
    # arm, from a recipe file (as a search exports), finishes and is evaluated by `dd-harness eval`
    # with its run's seed
    packaged = yaml.safe_load((ROOT / "mct_plugin" / "mtt" / "recipes" / "fashionmnist-ipc1.yaml").read_text())
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "mine.yaml").write_text(yaml.safe_dump({**packaged, "name": "lab/mine", "version": 3}))
    path = write_study(tmp_path / "study.yaml", micro_fmnist_dir, grid={"seed": [1]},
                       arms={"mtt": {"recipe": "recipes/mine.yaml"},
                             "broken": {"recipe": "mtt/fashionmnist-ipc1", "options": {"expert_epochs": 5}}})
    folder = tmp_path / "f"
    proc = run_cli("study", "run", str(path), "--folder", str(folder))
    assert proc.returncode == 1, proc.stderr
    status = run_cli("study", "status", str(path), "--folder", str(folder)).stdout
    failed = [line for line in status.splitlines() if line.startswith("failed")]
    assert len(failed) == 1 and "broken" in failed[0] and "dd-harness: error:" in failed[0], status
    assert any(line.startswith("done     distill  mtt") for line in status.splitlines()), status
    assert any(line.startswith("done     eval     mtt seed=1 set=final") for line in status.splitlines()), status
    assert any(line.startswith("pending  eval     broken") for line in status.splitlines()), status
    study = load(path, folder)
    mine = next(job for job in study.jobs() if job.kind == "distill" and job.labels[0].arm == "mtt")
    recorded = json.loads((mine.run_dir / "config.json").read_text())
    assert (recorded["recipe"], recorded["recipe_version"]) == ("lab/mine", 3)  # the name, not the file's path
    evaluation = next(job for job in study.jobs() if job.kind == "eval" and job.labels[0].arm == "mtt")
    record = json.loads((evaluation.run_dir / "eval.json").read_text())
    assert not (evaluation.target / "eval.json").exists()  # its own folder: another study may evaluate the run too
    assert record["protocol"]["seed"] == 1 and record["protocol"]["epochs"] == 2
    from mct_plugin.harness.study.report import collect

    rows = collect(study).rows
    accuracy = next(r for r in rows if r["source"] == "eval" and r["metric"] == "accuracy")
    assert accuracy["value"] == pytest.approx(100 * record["rows"][0]["distilled"]["mean"])


# -- the search ----------------------------------------------------------------------------------
TRAIN_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")


def test_a_search_prunes_resumes_never_reads_the_test_split_and_exports_a_recipe(tmp_path, mini_fmnist_dir):
    import optuna

    train_only = tmp_path / "train-only"  # no test files on disk: a read of the test split would fail
    train_only.mkdir()
    for name in TRAIN_FILES:
        (train_only / name).symlink_to(mini_fmnist_dir / name)
    search = {"arm": "mtt", "trials": 3, "sampler": "random", "pruner": "median", "seed": 0,
              "validation": {"size": 200, "seed": 0},
              "space": {"pix_init": {"choice": ["real", "noise"]}, "lr_img": {"log": [100, 10000]}},
              # two trials from real images, then one from noise: the pruner stops it at its first evaluation
              # after iteration 0 (where it never prunes)
              "enqueue": [{"pix_init": "real", "lr_img": 1000}, {"pix_init": "real", "lr_img": 300},
                          {"pix_init": "noise", "lr_img": 1000}]}
    options = {**TINY["options"], "iterations": 4, "eval_it": 2, "baseline": False}  # no random subset: not scored
    path = write_study(tmp_path / "search.yaml", train_only, search=search, options=options, evaluate=None)
    folder = tmp_path / "f"
    first = run_cli("study", "search", str(path), "--folder", str(folder))
    assert first.returncode == 0, first.stdout + first.stderr
    storage = f"sqlite:///{folder / 'search' / 'tiny' / 'search.db'}"
    trials = optuna.load_study(study_name="tiny/mtt", storage=storage).get_trials()
    states = [t.state.name for t in trials]
    assert states == ["COMPLETE", "COMPLETE", "PRUNED"], states
    assert trials[2].params["pix_init"] == "noise" and list(trials[2].intermediate_values) == [0, 2]
    assert "iterations run: 10 of 12 without pruning" in first.stdout, first.stdout  # the pruned trial stopped at 2
    status = run_cli("study", "status", str(path), "--folder", str(folder)).stdout
    assert "search: tiny: 2 complete, 1 pruned, 0 failed trials" in status, status

    # the same command with more trials continues the stored search: the first three are not run again
    path.write_text(path.read_text().replace("trials: 3", "trials: 4"))
    logs = {p: p.read_bytes() for p in (folder / "jobs").glob("distill-*/log.txt")}
    again = run_cli("study", "search", str(path), "--folder", str(folder))
    assert again.returncode == 0, again.stdout + again.stderr
    trials = optuna.load_study(study_name="tiny/mtt", storage=storage).get_trials()
    assert len(trials) == 4 and [t.state.name for t in trials[:3]] == states
    assert all(p.read_bytes() == before for p, before in logs.items())

    # a trial that the part's deadline stops is failed and enqueued again with its values (its job
    # continues from its checkpoint in the next part)
    from mct_plugin.harness.study.search import Search

    search = Search(load(path, folder))
    stored = search.optuna_study()
    stored.enqueue_trial({"pix_init": "real", "lr_img": 2000.0})  # values no job has run yet
    distributions = {d.name: d.distribution() for d in search.spec.space}
    trial = stored.ask(distributions)
    search.run_trial(stored, trial, deadline=0.0, threads=1)
    trials = stored.get_trials()
    assert trials[-2].state.name == "FAIL" and trials[-1].state.name == "WAITING", [(t.number, t.state.name, t.params) for t in trials]
    assert trials[-2].params == trial.params and stored.ask(distributions).params == trial.params  # asked next
    assert search.trial_job(trial.params).log_file.is_file()  # its job started before the deadline stopped it

    # the best trial as a recipe, with its provenance, that distill takes (scored on the test split)
    recipe = yaml.safe_load((folder / "search" / "tiny" / "best-recipe.yaml").read_text())
    best = max((t for t in trials if t.value is not None), key=lambda t: t.value)
    assert recipe["name"] == "tiny/mtt-tuned" and recipe["version"] == best.number + 1
    assert f"trial {best.number}" in recipe["source"] and "200 training images" in recipe["source"]
    assert recipe["options"]["lr_img"] == pytest.approx(best.params["lr_img"])
    assert "validation" not in recipe["options"]
    assert recipe["experts"]["validation"] == 200 and recipe["experts"]["validation_seed"] == 0
    experts = next((folder / "jobs").glob("experts-*")) / "buffers"
    # a study scoring it on the test split (no validation) resolves to the search's experts job
    scoring = write_study(tmp_path / "scoring.yaml", train_only, options=options, evaluate=None, report={},
                          arms={"tuned": {"recipe": str(folder / "search" / "tiny" / "best-recipe.yaml")}})
    jobs = load(scoring, folder).jobs()
    assert [j.folder for j in jobs if j.kind == "experts"] == [experts.parent]
    assert all(j.options.get("validation", 0) == 0 for j in jobs if j.kind == "distill")
    run = tmp_path / "tuned"
    scored = run_cli("distill", "--recipe", str(folder / "search" / "tiny" / "best-recipe.yaml"), "--buffer-path", str(experts),
                     "--data-path", str(mini_fmnist_dir), "--out", str(run), "--iterations", "1", "--eval-it", "0",
                     "--quiet")
    assert scored.returncode == 0, scored.stderr
    assert json.loads((run / "config.json").read_text())["recipe"] == "tiny/mtt-tuned"
    assert (folder / "search" / "tiny" / "history.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("search, fragments", [
    ({"arm": "nope"}, ["search.arm", "unknown arm 'nope'"]),
    ({"arm": "mtt", "trials": 2, "validation": {"size": 200}, "space": {"lr_img": {"log": [0, 10]}}},
     ["search.space.lr_img", "log needs low > 0"]),
    ({"arm": "mtt", "trials": 2, "validation": {"size": 200}, "space": {"lr_img": {"between": [1, 10]}}},
     ["search.space.lr_img", "must be one of"]),
    ({"arm": "mtt", "trials": 2, "space": {"lr_img": {"log": [1, 10]}}}, ["search.validation", "needs size"]),
])
def test_a_bad_search_section_is_one_line(tmp_path, micro_fmnist_dir, search, fragments):
    path = write_study(tmp_path / "s.yaml", micro_fmnist_dir, search=search)
    assert_one_line_error(run_cli("study", "search", str(path), "--folder", str(tmp_path / "f")), str(path),
                          *fragments)
    assert not (tmp_path / "f").exists()


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_a_continued_search_draws_new_values_and_a_new_search_draws_the_same(tmp_path, micro_fmnist_dir, sampler):
    """Each part seeds the sampler with the search's seed and the trials stored: the same file gives
    the same search, and a part does not propose the previous part's first values again."""
    from mct_plugin.harness.study.search import Search

    search_section = {"arm": "mtt", "trials": 4, "sampler": sampler, "seed": 3, "validation": {"size": 50},
                      "space": {"lr_img": {"log": [100, 10000]}, "syn_steps": {"int": [2, 60]}}}
    drawn = []
    for folder in (tmp_path / "a", tmp_path / "b"):
        path = write_study(tmp_path / "s.yaml", micro_fmnist_dir, search=search_section)
        search = Search(load(path, folder))
        search.folder.mkdir(parents=True)  # as run() makes it
        distributions = {d.name: d.distribution() for d in search.spec.space}
        values = []
        for _ in range(2):  # two parts of one trial each
            part = search.optuna_study()
            trial = part.ask(distributions)
            part.tell(trial, 0.5)
            values.append(trial.params)
        drawn.append(values)
    assert drawn[0] == drawn[1]  # reproducible
    assert drawn[0][0] != drawn[0][1]  # the second part draws anew
