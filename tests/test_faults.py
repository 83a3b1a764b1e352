"""Interrupted CLI runs: SIGINT/SIGTERM (clean stop) and SIGKILL at seeded random points (fault
injection), then the documented way to continue. The final files must equal, bit for bit, those
of one uninterrupted run of the same command.

Every command here is a real ``dd-harness`` subprocess on real Fashion-MNIST images (a 1000/500
image copy, ``mini_fmnist_dir``) with one thread (``cli_env``), so runs are short and the
reference is reproducible. Kill points: ``--all-kill-points`` runs all six per command (``make
test-faults``), each in its own slice of the run; by default only kill point 0 (see ``STRATA``
and ``conftest.pytest_generate_tests``).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
import torch

from mct_plugin.harness.io.metric_names import EVALUATION
from mct_plugin.harness.models import FunctionalModel

from helpers import ALL_KILL_POINTS, cli_env, create_model, distill_args, temporaries, tree_snapshot

# -- running and killing a CLI subprocess --------------------------------------------------------


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str
    startup_seconds: float  # from the start to the marker
    work_seconds: float  # from the marker to ``done()`` (default: the end of the process)


def run_cli_until(args: list[str], *, marker: Callable[[], bool] = lambda: True, delay: float | None = None,
                  sig: int = signal.SIGKILL, done: Callable[[], bool] = lambda: False,
                  timeout: float = 180) -> Outcome:
    """Run ``dd-harness ARGS``; once ``marker()`` holds, wait ``delay`` seconds and send ``sig``
    (``delay=None``: let it finish, timing the work up to ``done()``). Output goes to files, so a
    chatty process never blocks."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([sys.executable, "-m", "mct_plugin.harness.cli", *args], stdout=out, stderr=err,
                                env={**os.environ, **cli_env()})
        started = time.monotonic()
        deadline = started + timeout
        try:
            while not marker() and proc.poll() is None:
                assert time.monotonic() < deadline, f"marker never appeared: {args}"
                time.sleep(0.005)
            seen = finished = time.monotonic()
            if delay is not None:
                time.sleep(delay)
                if proc.poll() is None:
                    proc.send_signal(sig)
            else:
                while proc.poll() is None and not done():
                    assert time.monotonic() < deadline, f"timed out: {args}"
                    time.sleep(0.005)
                finished = time.monotonic()
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        finally:
            if proc.poll() is None:  # a hung process must not outlive the test
                proc.kill()
                proc.wait()
        work = (finished if delay is None else time.monotonic()) - seen
        out.seek(0)
        err.seek(0)
        return Outcome(proc.returncode, out.read(), err.read(), seen - started, work)


def finish(args: list[str]) -> Outcome:
    outcome = run_cli_until(args)
    assert outcome.returncode == 0, outcome.stderr
    return outcome


# the slices of the work (sixths, in this order) that kill points 0, 1, ... fall into: the default
# sample (kill point 0) lands well into the run, --all-kill-points covers all of it
STRATA = (4, 1, 3, 5, 0, 2)
assert len(STRATA) == ALL_KILL_POINTS


def kill_then_continue(command: str, kill_point: int, reference: "Reference", first: list[str], again: list[str],
                       marker: Callable[[], bool], on_kill: Callable[[], None] = lambda: None,
                       complete: Callable[[], bool] = lambda: False) -> Outcome | None:
    """SIGKILL ``first`` at a seeded random point of its work (after ``marker()``), continue with
    ``again`` (odd kill points kill that run too, early in its work, counted from its start),
    then run ``again`` to the end.

    :param complete: true when a killed run had in fact finished its work (killed on its way out)
    :returns: the final, uninterrupted run, or None when the work was complete before a kill.
    """
    rng = random.Random(f"{command}/{kill_point}")
    stratum = STRATA[kill_point % len(STRATA)]
    args = first
    for n in range(1 + kill_point % 2):
        if n == 0:  # kill point k lands in its own slice of the reference run's work
            delay = rng.uniform(stratum, stratum + 1) / len(STRATA) * reference.work_seconds
        else:  # a resumed run has less left to do
            delay = reference.startup_seconds + rng.uniform(0.05, 0.5) * reference.work_seconds
        killed = run_cli_until(args, marker=marker if n == 0 else (lambda: True), delay=delay)
        if killed.returncode == 0:  # it finished before the kill arrived
            return None
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        if complete():
            return None
        on_kill()
        args = again
    return finish(args)


def interrupted_line(outcome: Outcome) -> str:
    """A clean stop: exit status 130 and one 'dd-harness: interrupted' line, no traceback."""
    assert outcome.returncode == 130, (outcome.returncode, outcome.stderr)
    assert "Traceback" not in outcome.stderr, outcome.stderr
    lines = [line for line in outcome.stderr.splitlines() if line.startswith("dd-harness: interrupted")]
    assert len(lines) == 1, outcome.stderr
    return lines[0]


def identity(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_ino, stat.st_mtime_ns


# -- experts ---------------------------------------------------------------------------------------
MANIFEST = ".experts_run.json"


def experts_args(data: Path, root: Path) -> list[str]:
    # 5 experts, 2 per file: a kill can land before the first expert is done, with a finished
    # expert in a partial file, between files, or in the last file (of one expert)
    return ["experts", "--data-path", str(data), "--model", "ConvNetW16", "--num-experts", "5",
            "--save-interval", "2", "--train-epochs", "1", "--seed", "3", "--buffer-path", str(root), "--quiet"]


def experts_dir(root: Path) -> Path:
    return root / "FashionMNIST" / "ConvNetW16"


@dataclass
class Reference:
    root: Path
    files: dict[str, bytes]
    startup_seconds: float
    work_seconds: float


@pytest.fixture(scope="module")
def experts_reference(tmp_path_factory, mini_fmnist_dir) -> Reference:
    root = tmp_path_factory.mktemp("experts-reference")
    manifest = experts_dir(root) / MANIFEST
    outcome = run_cli_until(experts_args(mini_fmnist_dir, root), marker=manifest.exists,
                            done=lambda: not manifest.exists())
    assert outcome.returncode == 0, outcome.stderr
    files = tree_snapshot(experts_dir(root))
    assert sorted(files) == ["replay_buffer_0.json", "replay_buffer_0.pt", "replay_buffer_1.json", "replay_buffer_1.pt",
                             "replay_buffer_2.json", "replay_buffer_2.pt"]  # each with its training record
    return Reference(root, files, outcome.startup_seconds, outcome.work_seconds)


@pytest.mark.faults
def test_experts_killed_at_random_points_resume_to_identical_buffers(tmp_path, mini_fmnist_dir, experts_reference,
                                                                    kill_point):
    root = tmp_path / "buffers"
    directory = experts_dir(root)
    args = experts_args(mini_fmnist_dir, root)
    done: dict[str, tuple[int, int]] = {}
    kept: list[int] = []

    def record() -> None:
        done.update({p.name: identity(p) for p in directory.glob("replay_buffer_*.pt")})
        partial = sorted(directory.glob(".replay_buffer_*.partial.pt"))
        kept.append(len(torch.load(partial[0], weights_only=True)) if partial else 0)

    # once the manifest is gone the run is complete, and the same command would start a new one
    rerun = kill_then_continue("experts", kill_point, experts_reference, args, args,
                               lambda: (directory / MANIFEST).exists(), record,
                               complete=lambda: not (directory / MANIFEST).exists())
    if rerun is not None:
        if kept[-1]:  # the experts finished before the kill are not trained again
            assert f"{kept[-1]} of 2 experts already finished" in rerun.stderr
        assert {name: identity(directory / name) for name in done} == done  # finished files untouched
    assert tree_snapshot(directory) == experts_reference.files
    assert not temporaries(root) and not (directory / MANIFEST).exists()


@pytest.mark.parametrize("sig", [signal.SIGTERM], ids=["SIGTERM"])
def test_experts_stop_cleanly_on_a_signal_and_the_same_command_resumes(tmp_path, mini_fmnist_dir, experts_reference,
                                                                        sig):
    root = tmp_path / "buffers"
    directory = experts_dir(root)
    args = experts_args(mini_fmnist_dir, root)
    # signal while the second expert trains: the first one sits in the partial file
    stopped = run_cli_until(args, marker=lambda: (directory / ".replay_buffer_0.partial.pt").exists(), delay=0.0,
                            sig=sig)
    line = interrupted_line(stopped)
    assert "finished experts are kept; run the same command again to resume" in line
    assert sorted(p.name for p in directory.iterdir()) == [".experts_run.json", ".replay_buffer_0.partial.pt"]
    rerun = finish(args)
    assert "resuming" in rerun.stderr and "1 of 2 experts already finished" in rerun.stderr
    assert tree_snapshot(directory) == experts_reference.files
    assert not temporaries(root)


# -- distill ---------------------------------------------------------------------------------------
# 12 iterations, a checkpoint every 2 and evaluations at 0, 6 and 12: kills land between all of them
KILLED_DISTILL = {"iterations": 12, "syn_steps": 5, "max_start_epoch": 1, "lr_img": 100, "lr_lr": "1e-7", "eval_it": 6,
                  "num_eval": 1, "epoch_eval_train": 20, "checkpoint_every": 2, "seed": 5}


DISTILL_OUTPUTS = ("images.pt", "labels.pt", "lr.pt", "best/images.pt", "best/labels.pt", "best/lr.pt")


def metrics_without_seconds(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


def assert_same_run(run: Path, reference: Path) -> None:
    for name in DISTILL_OUTPUTS:
        assert (run / name).read_bytes() == (reference / name).read_bytes(), name
    assert metrics_without_seconds(run) == metrics_without_seconds(reference)
    config, expected = (json.loads((path / "config.json").read_text()) for path in (run, reference))
    assert {**config, "out": None} == {**expected, "out": None}
    assert not temporaries(run)


@pytest.fixture(scope="module")
def distill_reference(tmp_path_factory, mini_fmnist_dir, experts_reference) -> Reference:
    out = tmp_path_factory.mktemp("distill-reference") / "run"
    args = distill_args("ConvNetW16", data_path=mini_fmnist_dir, buffer_path=experts_reference.root, out=out,
                        **KILLED_DISTILL)
    last_row = '{"iteration": 12,'
    outcome = run_cli_until(args, marker=lambda: (out / "checkpoint.pt").exists(),
                            done=lambda: last_row in (out / "metrics.jsonl").read_text())
    assert outcome.returncode == 0, outcome.stderr
    rows = metrics_without_seconds(out)
    assert [r["iteration"] for r in rows if "event" not in r] == list(range(13))  # event rows: warnings
    assert [r["iteration"] for r in rows if EVALUATION.accuracies in r] == [0, 6, 12]
    return Reference(out, {}, outcome.startup_seconds, outcome.work_seconds)


@pytest.mark.faults
def test_distill_killed_at_random_points_resumes_bit_identically(tmp_path, mini_fmnist_dir, experts_reference,
                                                                 distill_reference, kill_point):
    out = tmp_path / "run"
    args = distill_args("ConvNetW16", data_path=mini_fmnist_dir, buffer_path=experts_reference.root, out=out,
                        **KILLED_DISTILL)
    resumed = kill_then_continue("distill", kill_point, distill_reference, args, args + ["--resume"],
                                 lambda: (out / "checkpoint.pt").exists())
    if resumed is not None:
        assert f"resuming {out} at iteration" in resumed.stderr
    assert_same_run(out, distill_reference.root)


@pytest.mark.faults
def test_distill_killed_before_its_first_checkpoint_restarts_from_config_json(tmp_path, mini_fmnist_dir,
                                                                            experts_reference, distill_reference):
    """SIGKILL before any checkpoint (--checkpoint-every beyond the run): 'distill --resume --out OUT',
    without retyping an option, restarts the run from its config.json and ends with the uninterrupted
    run's images bit for bit."""
    out = tmp_path / "run"
    args = distill_args("ConvNetW16", data_path=mini_fmnist_dir, buffer_path=experts_reference.root, out=out,
                        **{**KILLED_DISTILL, "checkpoint_every": 1000})
    killed = run_cli_until(args, marker=lambda: (out / "metrics.jsonl").is_file()
                           and len((out / "metrics.jsonl").read_text().splitlines()) >= 2, delay=0)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert (out / "config.json").is_file() and not (out / "checkpoint.pt").exists()
    resumed = finish(["distill", "--resume", "--out", str(out), "--quiet"])
    assert "stopped before its first checkpoint: restarting it" in resumed.stderr
    for name in DISTILL_OUTPUTS:
        assert (out / name).read_bytes() == (distill_reference.root / name).read_bytes(), name
    assert metrics_without_seconds(out) == metrics_without_seconds(distill_reference.root)
    assert json.loads((out / "config.json").read_text())["checkpoint_every"] == 1000


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_distill_finishes_the_iteration_checkpoints_and_exits_130_on_a_signal(tmp_path, mini_fmnist_dir,
                                                                              experts_reference, distill_reference,
                                                                              sig):
    out = tmp_path / "run"
    args = distill_args("ConvNetW16", data_path=mini_fmnist_dir, buffer_path=experts_reference.root, out=out,
                        **KILLED_DISTILL)
    stopped = run_cli_until(args, marker=lambda: (out / "checkpoint.pt").exists(), delay=0.2, sig=sig)
    line = interrupted_line(stopped)
    assert f"interrupted by signal {int(sig)} after iteration" in line
    assert line.endswith(f"continue with: dd-harness distill --resume --out {out}")
    last = int(line.split("after iteration ")[1].split(";")[0])
    assert last < 12
    # the current iteration was finished and checkpointed: rows 0..last, checkpoint at last + 1
    steps = [r["iteration"] for r in metrics_without_seconds(out) if "event" not in r]  # event rows: warnings
    assert steps == list(range(last + 1))
    assert torch.load(out / "checkpoint.pt", weights_only=True)["iteration"] == last + 1
    assert not temporaries(out)
    if sig == signal.SIGTERM:  # the two signals take the same path; resuming once is enough
        resumed = finish(args + ["--resume"])
        assert f"resuming {out} at iteration {last + 1}" in resumed.stderr
        assert_same_run(out, distill_reference.root)


# -- convert ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def convert_sources(tmp_path_factory) -> Path:
    """Eight MTT replay buffers (2 experts x 40 epochs, ConvNetW32 shapes) in the public layout."""
    shapes = FunctionalModel(create_model("ConvNetW32", 1, 10, (28, 28))).shapes
    directory = tmp_path_factory.mktemp("convert-sources") / "FashionMNIST" / "ConvNetW32"
    directory.mkdir(parents=True)
    generator = torch.Generator().manual_seed(0)
    for n in range(8):
        experts = []
        for _ in range(2):
            point = [0.1 * torch.randn(s, generator=generator) for s in shapes]
            trajectory = [point]
            for _ in range(40):
                point = [p + 0.01 * torch.randn(p.shape, generator=generator) for p in point]
                trajectory.append(point)
            experts.append(trajectory)
        torch.save(experts, directory / f"replay_buffer_{n}.pt")
    return directory


def convert_args(sources: Path, out: Path) -> list[str]:
    return ["convert", "--to", "mct", str(sources), "--out", str(out), "--waypoints", "3", "--dtype", "float16",
            "--quiet"]


@pytest.fixture(scope="module")
def convert_reference(tmp_path_factory, convert_sources) -> Reference:
    out = tmp_path_factory.mktemp("convert-reference") / "out"
    outcome = run_cli_until(convert_args(convert_sources, out), marker=out.exists,
                            done=lambda: len(list(out.glob("*.mct.safetensors"))) == 8)
    assert outcome.returncode == 0, outcome.stderr
    files = tree_snapshot(out)
    assert len(files) == 8
    return Reference(out, files, outcome.startup_seconds, outcome.work_seconds)


def check_rerun_of_convert(out: Path, done: dict[str, tuple[int, int]], rerun: Outcome) -> None:
    """Outputs finished before the interruption are skipped, not rewritten."""
    for name in done:
        assert f"skipped {name.replace('.mct.safetensors', '.pt')}" in rerun.stdout
    assert {name: identity(out / name) for name in done} == done


@pytest.mark.faults
def test_convert_killed_at_random_points_completes_on_rerun(tmp_path, convert_sources, convert_reference, kill_point):
    sources_before = {p.name: (p.read_bytes(), identity(p)) for p in convert_sources.iterdir()}
    out = tmp_path / "out"
    args = convert_args(convert_sources, out)
    done: dict[str, tuple[int, int]] = {}
    rerun = kill_then_continue("convert", kill_point, convert_reference, args, args, out.exists,
                               lambda: done.update({p.name: identity(p) for p in out.glob("*.mct.safetensors")}))
    if rerun is not None:
        check_rerun_of_convert(out, done, rerun)
    assert tree_snapshot(out) == convert_reference.files
    assert not temporaries(out)
    assert {p.name: (p.read_bytes(), identity(p)) for p in convert_sources.iterdir()} == sources_before


@pytest.mark.parametrize("sig", [signal.SIGTERM], ids=["SIGTERM"])
def test_convert_stops_cleanly_on_a_signal_keeping_finished_outputs(tmp_path, convert_sources,
                                                                         convert_reference, sig):
    out = tmp_path / "out"
    args = convert_args(convert_sources, out)
    stopped = run_cli_until(args, marker=lambda: any(out.glob("*.mct.safetensors")), delay=0.0, sig=sig)
    line = interrupted_line(stopped)
    assert "finished outputs are kept; run the same command again to convert the rest" in line
    assert not temporaries(out)
    done = {p.name: identity(p) for p in out.glob("*.mct.safetensors")}
    assert 1 <= len(done) < 8
    assert all((out / name).read_bytes() == convert_reference.files[name] for name in done)
    # that is the state a kill leaves too: finishing it is test_convert_killed_at_random_points_...
