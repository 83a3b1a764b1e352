"""Hostile and broken inputs (the table in docs/BAD_INPUTS.md): each gives one line
``dd-harness: error: ...`` naming the file, exit status 2 and no traceback; the inputs are
byte-identical afterwards and no partial output is left. Buffer-content cases already covered
elsewhere (tests/test_buffers.py, tests/test_mct_converter.py) are not repeated here.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import torch

from mct_plugin.harness.config import DistillConfig

from helpers import (PickleExploit, assert_one_line_error, distill_args, file_permissions_preexec, random_trajectory,
                     run_cli_batch, run_main, tree_snapshot)

MODEL = "ConvNetW16"


def buffer_folder(root: Path) -> Path:
    """A valid replay buffer (2 experts, 3 epochs, ConvNetW16 shapes) in its own folder."""
    root.mkdir(parents=True, exist_ok=True)
    torch.save([random_trajectory(MODEL, 3, seed) for seed in (0, 1)], root / "replay_buffer_0.pt")
    return root


def convert(*args: str) -> list[str]:
    return ["convert", "--to", "mct", "--quiet", *args]


# -- symbolic links that cannot be followed ----------------------------------------------------------
@pytest.mark.parametrize("link", ["loop", "dangling"])
@pytest.mark.parametrize("command", ["distill", "convert folder", "convert file"])
def test_a_replay_buffer_symlink_that_cannot_be_followed_is_named(tmp_path, capsys, mini_fmnist_dir, link, command):
    folder = buffer_folder(tmp_path / "buffers")
    bad = folder / "replay_buffer_1.pt"
    os.symlink(bad.name if link == "loop" else "missing.pt", bad)  # a loop: the link points at itself
    before = tree_snapshot(folder)
    out = tmp_path / "out"
    args = {"distill": distill_args(MODEL, data_path=mini_fmnist_dir, buffer_path=folder, out=out),
            "convert folder": convert(str(folder), "--out", str(out)),
            "convert file": convert(str(bad), "--out", str(out))}[command]
    proc = run_main(capsys, *args)
    what = "a symbolic link loop" if link == "loop" else "a symbolic link to a missing file"
    assert_one_line_error(proc, f"{bad} is {what}")
    assert tree_snapshot(folder) == before and os.readlink(bad) in ("replay_buffer_1.pt", "missing.pt")
    assert not out.exists()


def test_a_buffer_path_that_is_a_symlink_loop_is_reported_as_not_found(tmp_path, capsys, mini_fmnist_dir):
    loop = tmp_path / "buffers"
    os.symlink(loop.name, loop)
    proc = run_main(capsys, *distill_args(MODEL, data_path=mini_fmnist_dir, buffer_path=loop, out=tmp_path / "out"))
    assert_one_line_error(proc, "no expert buffers found", str(loop))
    assert not (tmp_path / "out").exists()


# -- buffer contents not covered by tests/test_buffers.py ----------------------------------------------
BROKEN_BUFFERS = {
    "zero-byte": "replay_buffer_0.pt is empty (0 bytes)",
    "inf": "replay_buffer_0.pt: expert 0, checkpoint 1, parameter 2 (features.1.weight) contains NaN or Inf",
    "bool": "replay_buffer_0.pt: expert 0, checkpoint 0, parameter 0 (features.0.weight) has dtype torch.bool",
    "complex": "has dtype torch.complex64, expected a floating-point tensor",
}


@pytest.mark.parametrize("case", list(BROKEN_BUFFERS))
def test_broken_buffer_contents_through_the_distill_command(tmp_path, capsys, mini_fmnist_dir, case):
    fragment = BROKEN_BUFFERS[case]
    folder = tmp_path / "buffers"
    folder.mkdir()
    path = folder / "replay_buffer_0.pt"
    broken = random_trajectory(MODEL, 3, seed=0)
    if case == "zero-byte":
        path.write_bytes(b"")
    else:
        if case == "inf":
            broken[1][2][0] = float("inf")
        else:
            broken = [[t.to(torch.bool if case == "bool" else torch.complex64) for t in c] for c in broken]
        torch.save([broken], path)
    before = tree_snapshot(folder)
    out = tmp_path / "run"
    proc = run_main(capsys, *distill_args(MODEL, data_path=mini_fmnist_dir, buffer_path=folder, out=out))
    assert_one_line_error(proc, str(folder), fragment)
    assert tree_snapshot(folder) == before and not out.exists()


def test_floating_point_buffers_other_than_float32_are_accepted(tmp_path):
    from mct_plugin.harness.experts.buffers import load_replay_buffer

    original = random_trajectory(MODEL, 3, seed=0)
    torch.save([[[t.double() for t in c] for c in original]], tmp_path / "replay_buffer_0.pt")
    (loaded,) = load_replay_buffer(tmp_path / "replay_buffer_0.pt", [tuple(t.shape) for t in original[0]])
    assert all(t.dtype == torch.float32 for t in loaded[0])
    assert all(torch.equal(a, b) for a, b in zip(loaded[-1], original[-1]))  # float32 -> float64 -> float32 is exact


BROKEN_MCT_FILES = {
    "truncated": "is not a readable safetensors file",
    "nan": "expert 1, waypoint 1, parameter 4 contains NaN or Inf",
    "beta": "beta values outside [0, 1]",
}


@pytest.mark.parametrize("case", list(BROKEN_MCT_FILES))
def test_broken_mct_files_are_refused_by_the_mct_matcher(tmp_path, capsys, mini_fmnist_dir, case):
    fragment = BROKEN_MCT_FILES[case]
    from safetensors import safe_open
    from safetensors.torch import save_file

    folder = buffer_folder(tmp_path / "buffers")
    converted = tmp_path / "mct"
    assert run_main(capsys, *convert(str(folder), "--out", str(converted))).returncode == 0
    path = converted / "replay_buffer_0.mct.safetensors"
    if case == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata()
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
        if case == "nan":
            tensors["expert1.waypoint1.param4"][0] = float("nan")
        else:
            tensors["expert0.beta"][1, 0] = 1.5
        save_file(tensors, str(path), metadata=metadata)
    before = tree_snapshot(converted)
    out = tmp_path / "run"
    proc = run_main(capsys, *distill_args(MODEL, matcher="mct", data_path=mini_fmnist_dir, buffer_path=converted,
                                          out=out))
    assert_one_line_error(proc, str(path), fragment)
    assert tree_snapshot(converted) == before and not out.exists()


# -- run directories and experts runs ---------------------------------------------------------------
def _run_directory(tmp_path: Path, mini_fmnist_dir: Path) -> Path:
    """A run directory as a killed run leaves it: config.json, metrics.jsonl and (soon) checkpoint.pt."""
    folder = buffer_folder(tmp_path / "buffers")
    run = tmp_path / "run"
    run.mkdir()
    config = DistillConfig(matcher="mtt", model=MODEL, buffer_path=str(folder), out=str(run), iterations=2,
                           syn_steps=2, expert_epochs=1, max_start_epoch=2, eval_it=0,
                           data_path=str(mini_fmnist_dir))
    (run / "config.json").write_text(json.dumps(config.to_dict()))
    (run / "metrics.jsonl").write_text('{"iteration": 0, "loss": 1.0}\n')
    return run


BROKEN_CHECKPOINTS = {
    "exploit": "refused to load - the pickle references",
    "truncated": "is truncated or not a torch file",
    "zero-byte": "is empty (0 bytes)",
    "wrong-content": "is not a usable checkpoint",
}


@pytest.mark.parametrize("case", list(BROKEN_CHECKPOINTS))
def test_a_broken_checkpoint_is_refused_on_resume(tmp_path, capsys, mini_fmnist_dir, case):
    fragment = BROKEN_CHECKPOINTS[case]
    run = _run_directory(tmp_path, mini_fmnist_dir)
    checkpoint = run / "checkpoint.pt"
    marker = tmp_path / "pwned"
    if case == "exploit":
        torch.save({"iteration": 1, "images": PickleExploit(marker)}, checkpoint)
    elif case == "truncated":
        data = io.BytesIO()
        torch.save({"iteration": 1, "images": torch.zeros(10, 1, 28, 28)}, data)
        checkpoint.write_bytes(data.getvalue()[:1500])
    elif case == "zero-byte":
        checkpoint.write_bytes(b"")
    elif case == "wrong-content":
        torch.save([torch.zeros(3)], checkpoint)
    before = tree_snapshot(run)
    proc = run_main(capsys, "distill", "--resume", "--out", str(run), "--quiet")
    assert_one_line_error(proc, str(checkpoint), fragment)
    assert tree_snapshot(run) == before
    assert not marker.exists()


BROKEN_MANIFESTS = {
    "garbage": "is unreadable",
    "other settings": "holds an unfinished experts run with different settings",
}


@pytest.mark.parametrize("case", list(BROKEN_MANIFESTS))
def test_a_broken_or_foreign_experts_manifest_is_refused(tmp_path, capsys, mini_fmnist_dir, case):
    fragment = BROKEN_MANIFESTS[case]
    folder = tmp_path / "buffers" / "FashionMNIST" / MODEL
    folder.mkdir(parents=True)
    manifest = folder / ".experts_run.json"
    manifest.write_text('{"fingerprint": "0123456789abcdef", "files": {"0": 1}}' if case == "other settings"
                        else '{"fingerprint": "01')  # torn by a crash of an old version, or edited by hand
    before = tree_snapshot(folder)
    proc = run_main(capsys, "experts", "--data-path", str(mini_fmnist_dir), "--model", MODEL, "--num-experts", "1",
                    "--train-epochs", "1", "--buffer-path", str(tmp_path / "buffers"), "--quiet")
    assert_one_line_error(proc, str(manifest), fragment)
    assert tree_snapshot(folder) == before


def test_an_unfinished_experts_run_of_another_count_is_refused_naming_it(tmp_path, capsys, mini_fmnist_dir):
    """The plan of an interrupted `--num-experts 2` run: `--num-experts 1` would neither finish it
    nor start afresh."""
    import dataclasses

    from mct_plugin.harness.config import ExpertConfig

    folder = tmp_path / "buffers" / "FashionMNIST" / MODEL
    folder.mkdir(parents=True)
    interrupted = ExpertConfig(model=MODEL, train_epochs=1, num_experts=2)
    manifest = folder / ".experts_run.json"
    manifest.write_text(json.dumps({"fingerprint": interrupted.fingerprint(), "files": {"0": [0, 1]},
                                    "config": dataclasses.asdict(interrupted)}))
    before = tree_snapshot(folder)
    proc = run_main(capsys, "experts", "--data-path", str(mini_fmnist_dir), "--model", MODEL, "--num-experts", "1",
                    "--train-epochs", "1", "--buffer-path", str(tmp_path / "buffers"), "--quiet")
    assert_one_line_error(proc, str(manifest), "--num-experts 2 (.experts_run.json) vs 1 (this command)")
    assert tree_snapshot(folder) == before


# -- an interrupted dataset download ------------------------------------------------------------------
DAMAGED_DOWNLOADS = {
    "truncated": "is truncated (the compressed data ends early)",
    "zero-byte": "is empty",
    "error-page": "is corrupt (Not a gzipped file",  # a proxy's HTML error page saved under the file's name
}


@pytest.mark.parametrize("damage", list(DAMAGED_DOWNLOADS))
def test_an_interrupted_download_names_the_file_and_the_fix(tmp_path, capsys, mini_fmnist_dir, damage):
    fragment = DAMAGED_DOWNLOADS[damage]
    raw = tmp_path / "data" / "FashionMNIST" / "raw"  # where torchvision downloads to
    raw.mkdir(parents=True)
    for source in mini_fmnist_dir.iterdir():
        shutil.copy(source, raw / source.name)
    broken = raw / "train-images-idx3-ubyte.gz"
    broken.write_bytes({"truncated": broken.read_bytes()[: broken.stat().st_size // 2], "zero-byte": b"",
                        "error-page": b"<html><body>504 Gateway Timeout</body></html>"}[damage])
    before = tree_snapshot(tmp_path / "data")
    proc = run_main(capsys, "data", "--data-path", str(tmp_path / "data"))
    line = assert_one_line_error(proc, str(broken), fragment)
    assert f"dd-harness data --dataset FashionMNIST --data-path {tmp_path / 'data'} --download" in line
    assert "delete the broken file" in line
    assert tree_snapshot(tmp_path / "data") == before


# -- permissions: a subprocess that obeys them, even when the tests run as root -----------------------
def test_unreadable_inputs_and_unwritable_outputs():
    from mct_plugin.harness.data.datasets import DEBIAN_FASHION_MNIST

    preexec = file_permissions_preexec()
    base = Path(tempfile.mkdtemp())
    try:
        base.chmod(0o755)  # world-traversable, in case the subprocess runs as nobody
        unreadable_file = buffer_folder(base / "b1")  # distill: an unreadable buffer file ...
        unreadable_folder = buffer_folder(base / "b2")  # ... and an unreadable buffer folder
        unreadable_source = buffer_folder(base / "b3")  # convert: an unreadable source ...
        readable = buffer_folder(base / "b4")  # ... and a read-only --out folder
        read_only_out = base / "read-only-out"
        read_only_out.mkdir()
        idx = base / "idx"  # data: an unreadable IDX file
        idx.mkdir()
        for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                     "t10k-labels-idx1-ubyte.gz"):
            if not (DEBIAN_FASHION_MNIST / name).exists():
                pytest.skip("Fashion-MNIST is not installed")
            shutil.copy(DEBIAN_FASHION_MNIST / name, idx / name)
        for path in base.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        before = tree_snapshot(base)
        denied = [unreadable_file / "replay_buffer_0.pt", unreadable_folder, unreadable_source / "replay_buffer_0.pt",
                  idx / "t10k-labels-idx1-ubyte.gz"]
        for path in denied:
            path.chmod(0)
        read_only_out.chmod(0o555)
        results = run_cli_batch([
            distill_args(MODEL, buffer_path=unreadable_file, out=base / "run1"),
            distill_args(MODEL, buffer_path=unreadable_folder, out=base / "run2"),
            convert(str(unreadable_source), "--out", str(base / "out3")),
            convert(str(readable), "--out", str(read_only_out)),
            ["data", "--data-path", str(idx)],
            convert(str(readable), "--out", str(read_only_out / "new")),
        ], preexec_fn=preexec, cwd=base)
        for path in denied + [read_only_out]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        assert_one_line_error(results[0], f"cannot read {unreadable_file / 'replay_buffer_0.pt'}: permission denied")
        assert_one_line_error(results[1], f"cannot list {unreadable_folder}: Permission denied")
        assert_one_line_error(results[2], f"cannot read {unreadable_source / 'replay_buffer_0.pt'}: Permission denied")
        assert_one_line_error(results[3], f"cannot write into {read_only_out}: Permission denied")
        line = assert_one_line_error(results[4], f"cannot read IDX file {idx / 't10k-labels-idx1-ubyte.gz'}: "
                                                 f"Permission denied")
        assert "--download" not in line  # nothing to download: the file is fine, only unreadable
        assert_one_line_error(results[5], f"cannot create folder {read_only_out / 'new'}: Permission denied")
        assert tree_snapshot(base) == before  # inputs untouched, and no output anywhere
    finally:
        subprocess.run(["chmod", "-R", "u+rwX", str(base)], check=False)
        shutil.rmtree(base, ignore_errors=True)
