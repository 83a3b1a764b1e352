"""No silent garbage, no mixed runs: every case below used to exit 0 with a meaningless result or
end in a traceback. Each now gives one line ``dd-harness: error: ...`` naming the file or value,
exit status 2, inputs untouched, and no partial or stale output (docs/BAD_INPUTS.md)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from mct_plugin.harness.config import DistillConfig
from mct_plugin.harness.distill import Distillation
from mct_plugin.harness.errors import DivergenceError, RunDirectoryError

from helpers import (SMALL_MODEL, assert_one_line_error, components, distill_args, random_trajectory, run_main,
                     temporaries, tree_snapshot, write_idx)

MODEL = "ConvNetW16"


def buffer_folder(root: Path, experts=None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    experts = experts if experts is not None else [random_trajectory(MODEL, 4, seed) for seed in (0, 1)]
    torch.save(experts, root / "replay_buffer_0.pt")
    return root


# -- 1. degenerate trajectories ---------------------------------------------------------------------
def _degenerate(case: str) -> list[list[torch.Tensor]]:
    t = random_trajectory(MODEL, 4, seed=0)
    if case == "one-repeat":
        t[2] = [x.clone() for x in t[1]]
    elif case == "all-but-first":
        t = [t[0]] + [[x.clone() for x in t[1]] for _ in range(4)]
    else:  # nearly identical: a relative change of 3e-7 (a few float32 ulps)
        t[2] = [x * (1 + 3e-7) for x in t[1]]
    return t


DEGENERATE = {"one-repeat": "checkpoints 1 and 2 are identical",
              "all-but-first": "checkpoints 1 and 2 are identical",
              "tiny-step": "checkpoints 1 and 2 are almost identical"}


@pytest.mark.parametrize("case", list(DEGENERATE))
@pytest.mark.parametrize("command", ["distill mtt", "distill mct", "convert"])
def test_degenerate_trajectories_are_refused_at_load(tmp_path, capsys, mini_fmnist_dir, case, command):
    folder = buffer_folder(tmp_path / "buffers", [random_trajectory(MODEL, 4, seed=3), _degenerate(case)])
    before = tree_snapshot(folder)
    out = tmp_path / "out"
    if command == "convert":
        args = ["convert", "--to", "mct", str(folder), "--out", str(out), "--quiet"]
    else:
        args = distill_args(MODEL, matcher=command.split()[1], data_path=mini_fmnist_dir, buffer_path=folder, out=out)
    line = assert_one_line_error(run_main(capsys, *args), "replay_buffer_0.pt: expert 1", DEGENERATE[case])
    assert "no direction" in line
    assert tree_snapshot(folder) == before and not out.exists()


def test_identical_waypoints_in_an_mct_file_are_refused(tmp_path, capsys, mini_fmnist_dir):
    from safetensors import safe_open
    from safetensors.torch import save_file

    folder = buffer_folder(tmp_path / "buffers")
    converted = tmp_path / "mct"
    assert run_main(capsys, "convert", "--to", "mct", str(folder), "--out", str(converted), "--quiet").returncode == 0
    path = converted / "replay_buffer_0.mct.safetensors"
    with safe_open(str(path), framework="pt") as handle:
        metadata, tensors = handle.metadata(), {k: handle.get_tensor(k) for k in handle.keys()}
    for key in [k for k in tensors if k.startswith("expert1.waypoint1.")]:
        tensors[key] = tensors[key.replace("waypoint1", "waypoint0")].clone()
    save_file(tensors, str(path), metadata=metadata)
    proc = run_main(capsys, *distill_args(MODEL, matcher="mct", data_path=mini_fmnist_dir, buffer_path=converted,
                                          out=tmp_path / "run"))
    assert_one_line_error(proc, f"{path}: expert 1", "waypoints 0 and 1 are identical")
    assert not (tmp_path / "run").exists()


def test_a_segment_without_length_is_refused_while_distilling(tmp_path, small_data):
    """Defence in depth behind the load-time check: a matcher whose start and target coincide."""
    from mct_plugin.harness.distill.matching import Segment, check_segment_length
    from mct_plugin.harness.errors import BufferFormatError

    start = torch.randn(100)
    with pytest.raises(BufferFormatError, match="the segment from epoch 2 to 4 has no length"):
        check_segment_length(start, start + 1e-9, "replay_buffer_0.pt#1", Segment(2.0, 4.0))
    check_segment_length(start, start + 0.1, "x", Segment(0.0, 1.0))  # a real segment passes


# -- 2. divergence ------------------------------------------------------------------------------------
def test_a_diverging_run_stops_in_one_line_and_leaves_nothing_half_done(tmp_path, capsys, expert_root,
                                                                       mini_fmnist_dir):
    out = tmp_path / "run"
    args = distill_args(SMALL_MODEL, buffer_path=expert_root, data_path=mini_fmnist_dir, out=out, iterations=3)
    proc = run_main(capsys, *args, "--lr-img", "1e12")
    assert_one_line_error(proc, "the distillation diverged at iteration 0", "no checkpoint was written")
    assert not out.exists()  # a failed start leaves nothing: the corrected command needs no --overwrite
    assert run_main(capsys, *args).returncode == 0


def test_divergence_after_a_checkpoint_keeps_that_checkpoint(tmp_path, small_data, expert_root):
    config = DistillConfig(model="ConvNetW32", matcher="mtt", buffer_path=str(expert_root), out=str(tmp_path / "run"),
                           iterations=6, eval_it=0, syn_steps=2, expert_epochs=1, max_start_epoch=2,
                           checkpoint_every=2)
    Distillation(config, data=small_data, components=components(), show_progress=False).run(stop_at=2)
    kept = (tmp_path / "run" / "images.pt").read_bytes()
    resumed = Distillation(config, data=small_data, components=components(), show_progress=False, resume=True)
    with torch.no_grad():
        resumed.synthetic.lr.fill_(float("nan"))  # what a NaN gradient of alpha would do
    with pytest.raises(DivergenceError, match="at iteration 2: the matching loss became nan .*; the checkpoint of iteration 2 is kept"):
        resumed.run()
    assert (tmp_path / "run" / "images.pt").read_bytes() == kept
    assert torch.isfinite(torch.load(tmp_path / "run" / "images.pt", weights_only=True)).all()
    assert not temporaries(tmp_path / "run")


# -- 3. numeric options -------------------------------------------------------------------------------
BAD_OPTIONS = [
    (["--lr-img", "nan"], "--lr-img must be a finite number (got nan)"),
    (["--lr-lr", "nan"], "--lr-lr must be a finite number (got nan)"),
    (["--expert-epochs", "nan"], "--expert-epochs must be a finite number"),
    (["--max-start-epoch", "inf"], "--max-start-epoch must be a finite number (got inf)"),
    (["--max-start-epoch", "nan"], "--max-start-epoch must be a finite number"),
    (["--min-start-epoch", "nan"], "--min-start-epoch must be a finite number"),
    (["--matcher", "mct", "--label-epoch", "-3"], "--label-epoch must be at least 0 (got -3)"),
    (["--matcher", "mct", "--label-epoch", "nan"], "--label-epoch must be a finite number"),
    (["--lr-img", "-1000"], "--lr-img must be greater than 0 (got -1000)"),
    (["--lr-lr", "-1"], "--lr-lr must be at least 0 (got -1)"),
    (["--seed", "2**70"], "argument --seed: --seed must be an integer (got '2**70')"),
    (["--seed", str(2**70)], f"--seed {2**70} is out of range (at most 2**63 - 1 in magnitude)"),
    (["--max-files", "-1"], "--max-files must be at least 1 (got -1)"),
    (["--max-experts", "-1"], "--max-experts must be at least 1 (got -1)"),
    (["--lr-teacher", "0"], "--lr-teacher must be greater than 0 (got 0)"),
    (["--num-eval", "0"], "--num-eval must be at least 1 (got 0)"),
]


@pytest.mark.parametrize("extra,fragment", BAD_OPTIONS, ids=[" ".join(e) for e, _ in BAD_OPTIONS])
def test_impossible_numbers_are_refused_where_options_are_defined(tmp_path, capsys, mini_fmnist_dir, extra, fragment):
    folder = buffer_folder(tmp_path / "buffers")
    out = tmp_path / "run"
    proc = run_main(capsys, *distill_args(MODEL, *extra, data_path=mini_fmnist_dir, buffer_path=folder, out=out))
    assert_one_line_error(proc, fragment)
    assert not out.exists()


def test_experts_refuse_a_nan_learning_rate_and_a_subset_smaller_than_the_classes(tmp_path, capsys, mini_fmnist_dir):
    common = ["experts", "--model", MODEL, "--num-experts", "1", "--train-epochs", "1", "--data-path",
              str(mini_fmnist_dir), "--buffer-path", str(tmp_path / "buffers"), "--quiet"]
    assert_one_line_error(run_main(capsys, *common, "--lr-teacher", "nan"), "--lr-teacher must be a finite number")
    assert_one_line_error(run_main(capsys, *common, "--subset", "5"),
                          "--subset 5 is smaller than the number of classes (10)")
    assert not (tmp_path / "buffers").exists()  # no plan left behind that would block the next command
    assert run_main(capsys, *common, "--subset", "100").returncode == 0


# -- 4. one writer per output folder -------------------------------------------------------------------
HOLDER = """
import sys, time
from mct_plugin.harness.io.locks import OutputLock
lock = OutputLock(sys.argv[1], "test holder").acquire()
print("locked", flush=True)
time.sleep(120)
"""


@pytest.fixture
def held(tmp_path):
    """Hold the lock of a folder in another process; yields (folder, process)."""
    def hold(folder: Path) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "locked"
        holders.append(proc)
        return proc

    holders: list[subprocess.Popen] = []
    yield hold
    for proc in holders:
        proc.kill()
        proc.wait()


def test_a_second_writer_is_refused_naming_the_holder_and_a_dead_holder_is_recovered(tmp_path, capsys, held,
                                                                                   mini_fmnist_dir):
    folder = buffer_folder(tmp_path / "buffers")
    run, converted = tmp_path / "run", tmp_path / "mct"
    holders = {path: held(path) for path in (run, converted, tmp_path / "experts" / "FashionMNIST" / MODEL)}
    commands = {
        run: distill_args(MODEL, data_path=mini_fmnist_dir, buffer_path=folder, out=run),
        converted: ["convert", "--to", "mct", str(folder), "--out", str(converted), "--quiet"],
        tmp_path / "experts" / "FashionMNIST" / MODEL: [
            "experts", "--model", MODEL, "--num-experts", "1", "--train-epochs", "1", "--data-path",
            str(mini_fmnist_dir), "--buffer-path", str(tmp_path / "experts"), "--quiet"],
    }
    for path, args in commands.items():
        line = assert_one_line_error(run_main(capsys, *args), f"{path} is in use by another dd-harness process",
                                     f"pid {holders[path].pid}")
        assert "test holder" in line
    for path, proc in holders.items():  # SIGKILL: the kernel drops the lock, the file stays behind
        proc.kill()
        proc.wait()
        assert (path / ".dd-harness.lock").exists()
    for path, args in commands.items():
        proc = run_main(capsys, *args)
        assert proc.returncode == 0, proc.stderr
        assert not (path / ".dd-harness.lock").exists()


def test_a_distillation_holds_its_run_directory_until_it_is_closed(tmp_path, small_data, expert_root):
    """The lock is released when the run ends, or when a distillation that never ran leaves its
    ``with`` block: deterministically, not whenever the object is collected."""
    from mct_plugin.harness.errors import OutputInUseError
    from mct_plugin.harness.io.locks import LOCK_NAME, OutputLock

    config = DistillConfig(model="ConvNetW32", matcher="mtt", buffer_path=str(expert_root), out=str(tmp_path / "run"),
                           iterations=1, eval_it=0, syn_steps=1, expert_epochs=1, max_start_epoch=1)
    with Distillation(config, data=small_data, components=components(), show_progress=False) as run:
        with pytest.raises(OutputInUseError):
            OutputLock(tmp_path / "run").acquire()
    assert not (tmp_path / "run" / LOCK_NAME).exists()
    assert run.lock is None  # the object lives on; its lock does not
    OutputLock(tmp_path / "run").acquire().release()


def test_two_distillations_into_one_folder_cannot_mix(tmp_path, capsys, expert_root, mini_fmnist_dir):
    out = tmp_path / "run"
    args = distill_args(SMALL_MODEL, buffer_path=expert_root, data_path=mini_fmnist_dir, out=out, iterations=None)
    first = subprocess.Popen([sys.executable, "-m", "mct_plugin.harness.cli", *args, "--iterations", "100000"],
                             stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.time() + 120
        while not (out / "metrics.jsonl").exists() and time.time() < deadline:
            time.sleep(0.2)
        second = run_main(capsys, *args, "--iterations", "2", "--overwrite")
        assert_one_line_error(second, f"{out} is in use by another dd-harness process (pid {first.pid}")
        assert json.loads((out / "config.json").read_text())["iterations"] == 100000  # the first run's, untouched
    finally:
        first.send_signal(signal.SIGINT)
        first.wait(timeout=120)
    assert first.returncode == 130


# -- 5. resume takes the command line seriously ---------------------------------------------------------
@pytest.fixture
def stopped_run(tmp_path, small_data, expert_root):
    """A run of 4 iterations stopped after 2, with a relative buffer path."""
    config = DistillConfig(model="ConvNetW32", matcher="mtt", buffer_path=str(expert_root), out=str(tmp_path / "run"),
                           iterations=4, eval_it=0, syn_steps=2, expert_epochs=1, max_start_epoch=2,
                           checkpoint_every=1)
    config = config.replace(buffer_path=str(expert_root.resolve()))
    Distillation(config, data=small_data, components=components(), show_progress=False).run(stop_at=2)
    return tmp_path / "run"


def test_resume_refuses_options_that_would_change_the_run(stopped_run, capsys, mini_fmnist_dir):
    before = tree_snapshot(stopped_run)
    proc = run_main(capsys, "distill", "--resume", "--out", str(stopped_run), "--iterations", "5", "--ipc", "10",
                    "--lr-img", "5", "--buffer-path", "/nonexistent", "--quiet")
    line = assert_one_line_error(proc, f"cannot resume {stopped_run}", "--ipc 10 (the run has 1)",
                                 "--lr-img 5.0 (the run has 1000.0)")
    assert "would change the run" in line
    assert tree_snapshot(stopped_run) == before


def test_an_api_resume_is_refused_exactly_like_the_cli(stopped_run, small_data, capsys):
    """One decision in the library: Distillation(..., resume=True) refuses the same changes with the
    same line (here options the CLI used to check alone: --expert-epochs, --batch-syn, --dsa-strategy)."""
    before = tree_snapshot(stopped_run)
    recorded = DistillConfig.from_dict(json.loads((stopped_run / "config.json").read_text()))
    changed = recorded.replace(expert_epochs=2.0, batch_syn=5, dsa_strategy="flip", iterations=6)
    with pytest.raises(RunDirectoryError) as refused:
        Distillation(changed, data=small_data, components=components(), show_progress=False, resume=True)
    proc = run_main(capsys, "distill", "--resume", "--out", str(stopped_run), "--expert-epochs", "2", "--batch-syn",
                    "5", "--dsa-strategy", "flip", "--iterations", "6", "--quiet")
    line = assert_one_line_error(proc, "--expert-epochs 2.0 (the run has 1)", "--batch-syn 5 (the run has None)",
                                 "--dsa-strategy flip (the run has color_crop_cutout_flip_scale_rotate)")
    assert line == f"dd-harness: error: {refused.value}"
    assert "--iterations" not in line  # may change
    assert tree_snapshot(stopped_run) == before


def test_a_resume_with_more_iterations_is_recorded_in_config_json(stopped_run, small_data):
    """An accepted change is written back, the previous value kept in the 'resumed' history; a resume
    that changes nothing leaves config.json as it was."""
    first = json.loads((stopped_run / "config.json").read_text())
    config = DistillConfig.from_dict(first)
    Distillation(config.replace(iterations=5), data=small_data, components=components(), show_progress=False,
                 resume=True).run(stop_at=3)
    after = json.loads((stopped_run / "config.json").read_text())
    assert after["iterations"] == 5 and after["resumed"] == [{"iteration": 2, "previous": {"iterations": 4}}]
    assert {k: v for k, v in after.items() if k not in ("iterations", "resumed")} == \
           {k: v for k, v in first.items() if k != "iterations"}
    Distillation(config.replace(iterations=5), data=small_data, components=components(), show_progress=False,
                 resume=True).run()
    assert json.loads((stopped_run / "config.json").read_text()) == after
    rows = [json.loads(line) for line in (stopped_run / "metrics.jsonl").read_text().splitlines()]
    # --eval-it 0: the last iteration (5) takes no step and is not evaluated, so it has no row
    assert [r["iteration"] for r in rows] == list(range(5))


def test_resuming_a_folder_where_nothing_was_recorded_is_one_line(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    for folder in (tmp_path / "run", tmp_path / "missing"):
        proc = run_main(capsys, "distill", "--resume", "--out", str(folder), "--quiet")
        assert_one_line_error(proc, f"cannot resume {folder}: nothing was recorded there (no config.json); "
                                    f"rerun the original command")
    assert not (tmp_path / "missing").exists() and not any((tmp_path / "run").iterdir())


def test_resume_from_another_folder_and_with_relocated_buffers(stopped_run, tmp_path, expert_root, capsys,
                                                               mini_fmnist_dir):
    import shutil

    config = json.loads((stopped_run / "config.json").read_text())
    assert Path(config["buffer_path"]).is_absolute() and Path(config["out"]).is_absolute()
    assert set(config["buffer_files"]) == {"replay_buffer_0.pt", "replay_buffer_1.pt"}
    moved = tmp_path / "moved"
    shutil.copytree(expert_root / "FashionMNIST" / "ConvNetW32", moved)
    broken = tmp_path / "broken"
    shutil.copytree(moved, broken)
    torch.save(torch.load(broken / "replay_buffer_1.pt", weights_only=True)[::-1], broken / "replay_buffer_1.pt")
    assert_one_line_error(run_main(capsys, "distill", "--resume", "--out", str(stopped_run), "--buffer-path",
                                   str(broken), "--data-path", str(mini_fmnist_dir), "--quiet"),
                          f"{broken / 'replay_buffer_1.pt'} changed (its digest differs)")
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path)  # relative paths of the command line are resolved here, recorded absolute
        proc = run_main(capsys, "distill", "--resume", "--out", "run", "--buffer-path", "moved", "--data-path",
                        str(mini_fmnist_dir), "--iterations", "5", "--quiet")
    finally:
        os.chdir(cwd)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in (stopped_run / "metrics.jsonl").read_text().splitlines()]
    # --eval-it 0: the last iteration (5) takes no step and is not evaluated, so it has no row
    assert [r["iteration"] for r in rows] == list(range(5))
    assert_one_line_error(run_main(capsys, "distill", "--resume", "--out", str(stopped_run), "--iterations", "3",
                                   "--data-path", str(mini_fmnist_dir), "--quiet"),
                          "with --iterations 3: it has already done 5")


# -- 6. eval on edited run files --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, expert_root):
    from mct_plugin.harness.cli import main

    out = tmp_path_factory.mktemp("finished") / "run"
    assert main(distill_args(SMALL_MODEL, buffer_path=expert_root, out=out, iterations=1)) == 0
    return out


EDITS = {
    "labels out of range": (lambda r: torch.save(torch.arange(10) + 5, r / "labels.pt"), "outside 0..9"),
    "negative labels": (lambda r: torch.save(torch.arange(10) - 1, r / "labels.pt"), "outside 0..9"),
    "float labels": (lambda r: torch.save(torch.arange(10).float(), r / "labels.pt"), "holds torch.float32 labels"),
    "soft labels of the wrong width": (lambda r: torch.save(torch.full((10, 7), 1 / 7), r / "labels.pt"),
                                       "soft labels of width 7 for 10 classes"),
    "empty images": (lambda r: (torch.save(torch.zeros(0, 1, 28, 28), r / "images.pt"),
                                torch.save(torch.zeros(0, dtype=torch.long), r / "labels.pt")), "holds no images"),
    "NaN images": (lambda r: torch.save(torch.full((10, 1, 28, 28), float("nan")), r / "images.pt"),
                   "images.pt contains NaN or Inf"),
    "zero lr": (lambda r: torch.save(torch.tensor(0.0), r / "lr.pt"), "holds the step size 0.0"),
    "NaN lr": (lambda r: torch.save(torch.tensor(float("nan")), r / "lr.pt"), "holds the step size nan"),
    "config.json a list": (lambda r: (r / "config.json").write_text("[1, 2]"), "does not hold a mapping of options"),
}


@pytest.mark.parametrize("case", list(EDITS))
def test_eval_refuses_edited_run_files(finished_run, tmp_path, capsys, case):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    edit, fragment = EDITS[case]
    edit(run)
    before = tree_snapshot(run)
    assert_one_line_error(run_main(capsys, "eval", "--run", str(run), "--num-eval", "1", "--epoch-eval-train", "1"),
                          fragment)
    assert tree_snapshot(run) == before  # no eval.json written


@pytest.mark.parametrize("extra,fragment", [(["--num-eval", "0"], "--num-eval must be at least 1"),
                                            (["--num-eval", "-1"], "--num-eval must be at least 1"),
                                            (["--epoch-eval-train", "0"], "--epoch-eval-train must be at least 1"),
                                            (["--epoch-eval-train", "-3"], "--epoch-eval-train must be at least 1")])
def test_eval_refuses_impossible_counts_and_keeps_the_previous_report(finished_run, tmp_path, capsys, extra,
                                                                      fragment):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    (run / "eval.json").write_text('{"previous": "good report"}')
    assert_one_line_error(run_main(capsys, "eval", "--run", str(run), *extra), fragment)
    assert json.loads((run / "eval.json").read_text()) == {"previous": "good report"}


# -- 7. hostile MCT metadata, public step files, sparse tensors ----------------------------------------------
def _edited_mct_file(tmp_path: Path, capsys, edit) -> Path:
    from safetensors import safe_open
    from safetensors.torch import save_file

    converted = tmp_path / "mct"
    assert run_main(capsys, "convert", "--to", "mct", str(buffer_folder(tmp_path / "buffers")), "--out",
                    str(converted), "--quiet").returncode == 0
    path = converted / "replay_buffer_0.mct.safetensors"
    with safe_open(str(path), framework="pt") as handle:
        metadata, tensors = dict(handle.metadata()), {k: handle.get_tensor(k) for k in handle.keys()}
    edit(metadata, tensors)
    save_file(tensors, str(path), metadata=metadata)
    return path


HOSTILE_METADATA = {
    "num_experts missing": (lambda m, t: m.pop("num_experts"), "metadata num_experts must be a positive integer"),
    "num_experts a string": (lambda m, t: m.update(num_experts='"2"'), "metadata num_experts must be a positive"),
    "param_shapes a number": (lambda m, t: m.update(param_shapes="7"), "metadata param_shapes must be a list"),
    "float epochs": (lambda m, t: t.update({"expert0.epochs": t["expert0.epochs"].double()}),
                     "waypoint epochs must be a 1-d int64 tensor"),
    "decreasing epochs": (lambda m, t: t.update({"expert0.epochs": t["expert0.epochs"].flip(0)}),
                          "must increase from 0 to num_epochs"),
}


@pytest.mark.parametrize("case", list(HOSTILE_METADATA))
def test_hostile_mct_metadata_is_refused_in_one_line(tmp_path, capsys, mini_fmnist_dir, case):
    edit, fragment = HOSTILE_METADATA[case]
    path = _edited_mct_file(tmp_path, capsys, edit)
    proc = run_main(capsys, *distill_args(MODEL, matcher="mct", data_path=mini_fmnist_dir, buffer_path=path.parent,
                                          out=tmp_path / "run"))
    assert_one_line_error(proc, str(path), fragment)
    assert not (tmp_path / "run").exists()


def _public_pair(folder: Path, steps) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    t = random_trajectory(MODEL, 2, seed=0)
    torch.save([[t[0], t[-1]]], folder / "waypoint_buffer_0.pt")
    torch.save([steps], folder / "step_buffer_0.pt")


def _row(values) -> list[torch.Tensor]:
    return [torch.tensor(float(v)) for v in values]


@pytest.mark.parametrize("case,steps,fragment", [
    ("ragged", [_row([0] * 10), _row([0.5] * 9), _row([1] * 10)], "row 1: 9 step sizes, row 0 has 10"),
    ("decreasing", [_row([0] * 10), _row([0.7] * 10), _row([0.4] * 10), _row([1] * 10)],
     "step sizes decrease at row 2"),
    ("not a list", 3, "is a int, expected a list of step rows"),
])
def test_public_step_files_that_are_ragged_or_go_backwards_are_refused(tmp_path, capsys, case, steps, fragment):
    _public_pair(tmp_path / "public", steps)
    out = tmp_path / "out"
    assert_one_line_error(run_main(capsys, "convert", "--to", "mct", str(tmp_path / "public"), "--out", str(out),
                                   "--quiet"), "step_buffer_0.pt: expert 0", fragment)
    assert not out.exists()


def test_sparse_tensors_in_a_replay_buffer_are_refused(tmp_path, capsys, mini_fmnist_dir):
    t = random_trajectory(MODEL, 4, seed=0)
    t[1][0] = t[1][0].to_sparse()
    folder = buffer_folder(tmp_path / "buffers", [t])
    proc = run_main(capsys, *distill_args(MODEL, data_path=mini_fmnist_dir, buffer_path=folder, out=tmp_path / "run"))
    assert_one_line_error(proc, "expert 0, checkpoint 1, parameter 0 (features.0.weight) is a sparse_coo tensor")


# -- 8. leftovers after an error -------------------------------------------------------------------------------
def test_convert_leaves_no_empty_output_folder_after_an_error(tmp_path, capsys):
    folder = tmp_path / "buffers"
    folder.mkdir()
    (folder / "replay_buffer_0.pt").write_bytes(b"not a torch file")
    out = tmp_path / "deep" / "out"
    assert_one_line_error(run_main(capsys, "convert", "--to", "mct", str(folder), "--out", str(out), "--quiet"),
                          str(folder / "replay_buffer_0.pt"))
    assert not (tmp_path / "deep").exists()


def test_demo_does_not_replace_an_existing_run_without_overwrite(tmp_path, capsys, finished_run):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    before = tree_snapshot(run)
    assert_one_line_error(run_main(capsys, "demo", "--out", str(run), "--quiet"), f"{run} already holds results",
                          "--overwrite")
    assert tree_snapshot(run) == before


# -- 9. mismatches ------------------------------------------------------------------------------------------------
def test_a_buffer_folder_of_another_model_or_dataset_is_refused(tmp_path, capsys, mini_fmnist_dir):
    convnet = tmp_path / "root" / "FashionMNIST" / "ConvNet"
    buffer_folder(convnet, [random_trajectory("ConvNet", 2, 0)])
    proc = run_main(capsys, *distill_args("ConvNetMP", data_path=mini_fmnist_dir, buffer_path=convnet,
                                          out=tmp_path / "run"))
    assert_one_line_error(proc, f"{convnet} holds experts of ConvNet (its folder name) but --model is ConvNetMP")
    mnist = tmp_path / "mnist" / "MNIST" / MODEL
    buffer_folder(mnist)
    proc = run_main(capsys, *distill_args(MODEL, data_path=mini_fmnist_dir, buffer_path=mnist, out=tmp_path / "run"))
    assert_one_line_error(proc, f"{mnist} holds experts trained on MNIST (its folder name) but --dataset is FashionMNIST")
    assert not (tmp_path / "run").exists()


def test_options_that_would_be_ignored_are_refused_or_reported(tmp_path, capsys, mini_fmnist_dir):
    folder = buffer_folder(tmp_path / "buffers")
    assert_one_line_error(run_main(capsys, "convert", "--to", "mct", str(folder), "--out", str(tmp_path / "x"),
                                   "--model", MODEL), "--model needs --dataset too")
    converted = tmp_path / "mct"
    assert run_main(capsys, "convert", "--to", "mct", str(folder), "--out", str(converted), "--waypoints", "3",
                    "--smooth", "none", "--quiet").returncode == 0
    out = tmp_path / "run"
    proc = run_main(capsys, *distill_args(MODEL, matcher="mct", data_path=mini_fmnist_dir, buffer_path=converted,
                                          out=out, waypoints=2, smooth="public"))
    assert proc.returncode == 0, proc.stderr
    assert "were converted with waypoints=3, smooth='none'" in proc.stderr and "do not apply" in proc.stderr
    recorded = json.loads((out / "config.json").read_text())["plugin_options"]
    assert recorded["waypoints"] == 3 and recorded["smooth"] == "none"


@pytest.mark.parametrize("case,fragment", [("labels beyond the classes", "train labels run 0..12"),
                                           ("32x32 images", "the train images are (1, 32, 32)")])
def test_idx_files_that_do_not_fit_the_dataset_are_refused(tmp_path, capsys, mini_fmnist_dir, case, fragment):
    import numpy as np

    from mct_plugin.harness.data.idx import read_idx

    folder = tmp_path / "idx"
    folder.mkdir()
    for path in mini_fmnist_dir.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    if case == "labels beyond the classes":
        labels = read_idx(folder / "train-labels-idx1-ubyte.gz").copy()
        labels[0] = 12
        write_idx(folder / "train-labels-idx1-ubyte.gz", labels)
    else:
        images = read_idx(folder / "train-images-idx3-ubyte.gz")
        write_idx(folder / "train-images-idx3-ubyte.gz", np.pad(images, ((0, 0), (2, 2), (2, 2))))
    assert_one_line_error(run_main(capsys, "data", "--data-path", str(folder)), str(folder), fragment)


def test_a_corrupted_pickle_stream_is_one_line_whatever_the_unpickler_raises(tmp_path, capsys, mini_fmnist_dir):
    """Found by the fuzz suite: one flipped byte in the pickle made torch's weights-only unpickler
    raise a bare KeyError (a memo reference that does not exist)."""
    import io

    buffer = io.BytesIO()
    torch.save([random_trajectory(MODEL, 4, seed) for seed in (0, 1)], buffer)
    data = bytearray(buffer.getvalue())
    data[112] ^= 0xFF
    folder = tmp_path / "buffers"
    folder.mkdir()
    (folder / "replay_buffer_0.pt").write_bytes(bytes(data))
    proc = run_main(capsys, *distill_args(MODEL, data_path=mini_fmnist_dir, buffer_path=folder, out=tmp_path / "run"))
    assert_one_line_error(proc, f"{folder / 'replay_buffer_0.pt'} is truncated or not a torch file (KeyError")
