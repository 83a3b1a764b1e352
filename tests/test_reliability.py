"""Determinism, resume from a checkpoint, and full disks, in this process (fast); the killed and
signalled subprocess runs are in tests/test_faults.py.

* Same seed, same command, same machine: identical experts and synthetic sets, bit for bit.
* A distillation stopped at any iteration and resumed ends bit-identical to an uninterrupted one.
* A full disk (simulated: a writer that gets ``ENOSPC``; and a real ``EFBIG`` from a file-size
  limit in a subprocess) gives one line, leaves the previous file intact and no temporary file,
  and the same command (or ``--resume``) then completes the job.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import shutil
import signal
from pathlib import Path

import pytest
import torch

from mct_plugin.harness.io import atomic
from mct_plugin.harness.config import DistillConfig
from mct_plugin.harness.distill import Distillation, distill
from mct_plugin.harness.config import ExpertConfig
from mct_plugin.harness.experts.train import MANIFEST, train_experts
from mct_plugin.harness.io.metric_names import EVALUATION

from helpers import (components, assert_one_line_error, distill_args, random_trajectory, run_cli_batch, run_main,
                     temporaries, tree_snapshot)

MODEL = "ConvNetW16"


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One intra-op thread, as in the CLI subprocesses of these tests (``cli_env``): results are
    compared bit for bit (they depend on the thread count), and two busy threads on a 2-core
    machine that runs anything else slow torch down several times over."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def metrics_without_seconds(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


def assert_same_synthetic_set(run: Path, reference: Path) -> None:
    for name in ("images.pt", "labels.pt", "lr.pt"):
        assert (run / name).read_bytes() == (reference / name).read_bytes(), name
    assert metrics_without_seconds(run) == metrics_without_seconds(reference)
    assert not temporaries(run)


# -- determinism -------------------------------------------------------------------------------------
def expert_config(root: Path) -> ExpertConfig:
    return ExpertConfig(model=MODEL, num_experts=2, train_epochs=1, save_interval=1, seed=7, buffer_path=str(root))


@pytest.fixture(scope="module")
def twin_experts(tmp_path_factory, small_data):
    """The same experts command run twice; the second run also records its manifest as it was
    while the run was going on."""
    roots = [tmp_path_factory.mktemp("experts-a"), tmp_path_factory.mktemp("experts-b")]
    train_experts(expert_config(roots[0]), data=small_data, components=components(), show_progress=False)
    directory = expert_config(roots[1]).output_dir(components().datasets)
    manifests = []
    train_experts(expert_config(roots[1]), data=small_data, components=components(), show_progress=False,
                  on_file=lambda path: manifests.append((directory / MANIFEST).read_text()))
    return roots, manifests[0]


def test_experts_are_bit_identical_for_the_same_seed(twin_experts):
    (first, second), _ = twin_experts
    files = tree_snapshot(expert_config(first).output_dir(components().datasets))
    assert sorted(files) == ["replay_buffer_0.json", "replay_buffer_0.pt", "replay_buffer_1.json", "replay_buffer_1.pt"]
    assert files == tree_snapshot(expert_config(second).output_dir(components().datasets))
    # and the seed matters: the two experts of a run differ
    a, b = (torch.load(expert_config(first).output_dir(components().datasets) / f"replay_buffer_{n}.pt", weights_only=True) for n in (0, 1))
    assert not torch.equal(a[0][0][0], b[0][0][0])


def test_an_experts_run_that_fails_before_keeping_an_expert_leaves_nothing_behind(tmp_path, small_data):
    """The run's plan goes with a failure before any expert is on disk (the corrected command
    starts afresh); once one is kept, in a partial file, the plan stays and the rerun resumes."""
    config = ExpertConfig(model=MODEL, num_experts=2, train_epochs=1, save_interval=2, seed=7,
                          buffer_path=str(tmp_path / "buffers"))
    directory = config.output_dir(components().datasets)
    data = small_data.train_subset(200, seed=0)
    trained = []

    def fail_at(expert: int):
        def on_expert(record) -> None:
            trained.append(record)
            if len(trained) == expert:
                raise RuntimeError("the tracker went away")
        return on_expert

    with pytest.raises(RuntimeError):  # after training the first expert, before it is written
        train_experts(config, data=data, components=components(), show_progress=False, on_expert=fail_at(1))
    assert not (tmp_path / "buffers").exists()
    trained.clear()
    with pytest.raises(RuntimeError):  # the first expert is in the partial file
        train_experts(config, data=data, components=components(), show_progress=False, on_expert=fail_at(2))
    assert sorted(p.name for p in directory.iterdir()) == [MANIFEST, ".replay_buffer_0.partial.pt"]
    result = train_experts(config, data=data, components=components(), show_progress=False)
    assert result.resumed and [(r.file_index, r.position) for r in result.records] == [(0, 1)]
    assert sorted(p.name for p in directory.iterdir()) == ["replay_buffer_0.json", "replay_buffer_0.pt"]


def distill_config(buffers: Path, out: Path, **overrides) -> DistillConfig:
    values = dict(model=MODEL, matcher="mtt", buffer_path=str(buffers), out=str(out), ipc=1, syn_steps=6,
                  expert_epochs=1, max_start_epoch=1, lr_img=100, lr_lr=1e-7, iterations=8, eval_it=5, num_eval=1,
                  epoch_eval_train=10, checkpoint_every=3, seed=11)
    values.update(overrides)
    return DistillConfig(**values)


def test_distillation_is_bit_identical_for_the_same_seed(tmp_path, small_data, twin_experts):
    (buffers, _), _ = twin_experts
    runs = [tmp_path / "a", tmp_path / "b"]
    for run in runs:
        distill(distill_config(buffers, run), data=small_data, components=components(), show_progress=False)
    assert_same_synthetic_set(runs[1], runs[0])
    assert tree_snapshot(runs[1] / "best") == tree_snapshot(runs[0] / "best")
    rows = metrics_without_seconds(runs[0])
    assert [r["iteration"] for r in rows if EVALUATION.accuracies in r] == [0, 5, 8]
    assert len({r["loss"] for r in rows[:-1]}) > 1  # it did something


def test_a_resumed_mct_distillation_ends_bit_identical(tmp_path, small_data, twin_experts):
    """Stop before an iteration (checkpoint), build a fresh Distillation with resume=True and run
    to the end: everything in the checkpoint (images, alpha, both optimizers, RNG states, the
    continuous sampler and expert-pool state, best set, metrics) must have been saved; a torn
    metrics line and a stale temporary file are cleaned up. (MTT is resumed by killed and
    signalled subprocesses in tests/test_faults.py.)"""
    (buffers, _), _ = twin_experts
    stop_at = 2
    overrides = {"matcher": "mct", "expert_epochs": 0.6, "max_start_epoch": 0.4,
                 "plugin_options": {"start_curriculum": "linear", "curriculum_initial": 0.1,
                                    "curriculum_iterations": 8, "teacher_label": True, "waypoints": 2}}
    reference = distill(distill_config(buffers, tmp_path / "reference", **overrides), data=small_data,
                        components=components(), show_progress=False).run_dir
    out = tmp_path / "run"
    Distillation(distill_config(buffers, out, **overrides), data=small_data, components=components(), show_progress=False).run(stop_at=stop_at)
    assert [r["iteration"] for r in metrics_without_seconds(out) if "event" not in r] == list(range(stop_at))
    # what a SIGKILL can leave besides: a torn last metrics line, a temporary file of a write
    with open(out / "metrics.jsonl", "a") as handle:
        handle.write('{"iteration": 2, "loss": 0.5')
    (out / ".tmp-images.pt.k2j4h1").write_bytes(b"PK\x03\x04 half a file")
    Distillation(distill_config(buffers, out, **overrides), data=small_data, components=components(), show_progress=False, resume=True).run()
    assert_same_synthetic_set(out, reference)
    assert tree_snapshot(out / "best") == tree_snapshot(reference / "best")
    assert torch.load(out / "labels.pt", weights_only=True).shape == (10, 10)  # soft labels from the expert


def test_experts_rerun_after_a_stop_between_writing_a_file_and_removing_its_partial(tmp_path, small_data,
                                                                                      twin_experts):
    """The narrowest window of an experts run: replay_buffer_0.pt is written, the partial file
    and the manifest are still there. The rerun trains nothing and cleans up."""
    (_, source), manifest = twin_experts
    root = tmp_path / "buffers"
    directory = expert_config(root).output_dir(components().datasets)
    shutil.copytree(expert_config(source).output_dir(components().datasets), directory)
    (directory / "replay_buffer_1.pt").unlink()  # the second file was not written yet
    (directory / MANIFEST).write_text(manifest)
    shutil.copy(directory / "replay_buffer_0.pt", directory / ".replay_buffer_0.partial.pt")
    before = (directory / "replay_buffer_0.pt").stat().st_mtime_ns
    result = train_experts(expert_config(root), data=small_data, components=components(), show_progress=False)
    assert result.resumed and [(r.file_index, r.position) for r in result.records] == [(1, 0)]  # only expert 2
    assert tree_snapshot(directory) == tree_snapshot(expert_config(source).output_dir(components().datasets))  # no partial, no manifest
    assert (directory / "replay_buffer_0.pt").stat().st_mtime_ns == before


# -- a full disk ---------------------------------------------------------------------------------------
class _FullDiskFile:
    """A file on a disk with ``room`` bytes left: writes beyond that fail with ENOSPC."""

    def __init__(self, handle, room: int) -> None:
        self.handle, self.room = handle, room

    def write(self, data) -> int:
        if len(data) > self.room:
            self.handle.write(bytes(data[: self.room]))
            self.room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.handle.write(data)

    def __getattr__(self, name):
        return getattr(self.handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.handle.close()


def fill_disk_at(monkeypatch, target: str, occurrence: int = 1, room: int = 1000) -> None:
    """From the ``occurrence``-th atomic write of a file called ``target`` on, the disk is full
    (after ``room`` more bytes): every writer of the project goes through mct_plugin.harness.io.atomic."""
    real_open = open
    seen = []

    def open_on_a_filling_disk(file, mode="r", *args, **kwargs):
        handle = real_open(file, mode, *args, **kwargs)
        if "w" in mode and Path(file).name.startswith(f"{atomic.TEMP_PREFIX}{target}."):
            seen.append(file)
            if len(seen) >= occurrence:
                return _FullDiskFile(handle, room)
        return handle

    monkeypatch.setattr(atomic, "open", open_on_a_filling_disk, raising=False)


def test_a_full_disk_during_experts_keeps_finished_experts(tmp_path, capsys, monkeypatch, mini_fmnist_dir):
    def experts(root: Path) -> list[str]:
        return ["experts", "--data-path", str(mini_fmnist_dir), "--model", MODEL, "--num-experts", "2",
                "--save-interval", "2", "--train-epochs", "1", "--buffer-path", str(root), "--quiet"]

    assert run_main(capsys, *experts(tmp_path / "reference")).returncode == 0
    reference = tmp_path / "reference" / "FashionMNIST" / MODEL
    directory = tmp_path / "buffers" / "FashionMNIST" / MODEL
    fill_disk_at(monkeypatch, "replay_buffer_0.pt")
    proc = run_main(capsys, *experts(tmp_path / "buffers"))
    assert_one_line_error(proc, f"could not write {directory / 'replay_buffer_0.pt'}: disk full")
    # the first expert survives in the partial file; nothing half-written
    assert sorted(p.name for p in directory.iterdir()) == [MANIFEST, ".replay_buffer_0.partial.pt"]
    assert len(torch.load(directory / ".replay_buffer_0.partial.pt", weights_only=True)) == 1
    monkeypatch.undo()  # space again
    rerun = run_main(capsys, *experts(tmp_path / "buffers"))
    assert rerun.returncode == 0 and "1 of 2 experts already finished" in rerun.stderr
    assert tree_snapshot(directory) == tree_snapshot(reference)


def test_a_full_disk_during_distillation_keeps_the_last_checkpoint(tmp_path, capsys, monkeypatch, mini_fmnist_dir):
    buffers = tmp_path / "buffers"
    buffers.mkdir()
    torch.save([random_trajectory(MODEL, 3, seed) for seed in (0, 1)], buffers / "replay_buffer_0.pt")

    run = {"data_path": mini_fmnist_dir, "buffer_path": buffers, "iterations": 6, "syn_steps": 4, "lr_img": 100,
           "lr_lr": "1e-7", "checkpoint_every": 2}
    assert run_main(capsys, *distill_args(MODEL, out=tmp_path / "reference", **run)).returncode == 0
    out = tmp_path / "run"
    fill_disk_at(monkeypatch, "checkpoint.pt", occurrence=2)
    proc = run_main(capsys, *distill_args(MODEL, out=out, **run))
    assert_one_line_error(proc, f"could not write {out / 'checkpoint.pt'}: disk full")
    assert not temporaries(out)
    assert torch.load(out / "checkpoint.pt", weights_only=True)["iteration"] == 2  # the previous one, intact
    monkeypatch.undo()
    resumed = run_main(capsys, *distill_args(MODEL, out=out, resume=True, **run))
    assert resumed.returncode == 0 and f"resuming {out} at iteration 2" in resumed.stderr
    assert_same_synthetic_set(out, tmp_path / "reference")


def test_a_full_disk_during_conversion_keeps_finished_outputs(tmp_path, capsys, monkeypatch):
    sources = tmp_path / "sources"
    sources.mkdir()
    for n in range(3):
        torch.save([random_trajectory(MODEL, 6, n)], sources / f"replay_buffer_{n}.pt")
    before = tree_snapshot(sources)
    assert run_main(capsys, "convert", "--to", "mct", str(sources), "--out", str(tmp_path / "reference"),
                    "--quiet").returncode == 0
    out = tmp_path / "out"
    fill_disk_at(monkeypatch, "replay_buffer_1.mct.safetensors")
    proc = run_main(capsys, "convert", "--to", "mct", str(sources), "--out", str(out), "--quiet")
    assert_one_line_error(proc, f"could not write {out / 'replay_buffer_1.mct.safetensors'}: disk full")
    assert tree_snapshot(out) == {k: v for k, v in tree_snapshot(tmp_path / "reference").items()
                                  if k == "replay_buffer_0.mct.safetensors"}
    monkeypatch.undo()
    rerun = run_main(capsys, "convert", "--to", "mct", str(sources), "--out", str(out), "--quiet")
    assert rerun.returncode == 0 and "skipped replay_buffer_0.pt" in rerun.stdout
    assert tree_snapshot(out) == tree_snapshot(tmp_path / "reference")
    assert tree_snapshot(sources) == before


def _file_size_limit(limit: int):
    def preexec() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() then fails with EFBIG instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return preexec


def test_a_real_write_error_from_torch_and_safetensors_is_one_line(tmp_path, mini_fmnist_dir):
    """A file-size limit makes the kernel refuse writes (EFBIG) the way a full disk does (ENOSPC);
    torch.save and safetensors would report it as opaque RuntimeError/SafetensorError."""
    sources = tmp_path / "sources"
    sources.mkdir()
    torch.save([random_trajectory(MODEL, 4, 0)], sources / "replay_buffer_0.pt")
    before = tree_snapshot(sources)
    run, out = tmp_path / "run", tmp_path / "out"
    # 16 KiB: enough for config.json and metrics.jsonl, not for an MCT file (~40 KB) or a
    # checkpoint (10 images of 28x28 and their momentum, ~60 KB)
    results = run_cli_batch([
        ["convert", "--to", "mct", str(sources), "--out", str(out), "--quiet"],
        distill_args(MODEL, matcher="mct", data_path=mini_fmnist_dir, buffer_path=sources, out=run, iterations=3,
                     max_start_epoch=1, checkpoint_every=1),
    ], preexec_fn=_file_size_limit(16 * 1024), cwd=tmp_path)
    assert_one_line_error(results[0], f"could not write {out / 'replay_buffer_0.mct.safetensors'}: File too large")
    assert_one_line_error(results[1], f"could not write {run / 'checkpoint.pt'}: File too large")
    assert tree_snapshot(sources) == before
    assert not out.exists() or not any(out.iterdir())
    assert not run.exists()  # it failed before its first checkpoint: nothing is kept, no --overwrite needed
