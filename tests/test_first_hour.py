"""What a user hits in the first hour (issue 30, item 6): a --buffer-path that names another model's
folder or a file, a --max-start-epoch beyond the experts (capped alike by MTT and MCT, in one line),
conversion options reported only where asked for, and an environment that builds plugins."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

from helpers import ROOT, SMALL_MODEL, assert_one_line_error, distill_args, run_main


def start_epochs(run) -> set[float]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return {row["start_epoch"] for row in rows if "start_epoch" in row}


def test_a_buffer_path_without_the_models_folder_lists_those_it_holds_and_a_file_is_refused(tmp_path, capsys,
                                                                                             expert_root, expert_dir,
                                                                                             mini_fmnist_dir):
    out = tmp_path / "run"
    proc = run_main(capsys, *distill_args("ConvNetW16", data_path=mini_fmnist_dir, buffer_path=expert_root, out=out))
    assert_one_line_error(proc, f"no expert buffers found (searched {expert_root} and",
                          f"{expert_root} holds buffers in other model folders: FashionMNIST/{SMALL_MODEL} (choose one "
                          f"with --dataset, --model and --zca, or point --buffer-path at it)")
    buffer = expert_dir / "replay_buffer_0.pt"
    proc = run_main(capsys, *distill_args(SMALL_MODEL, data_path=mini_fmnist_dir, buffer_path=buffer, out=out))
    assert_one_line_error(proc, f"--buffer-path {buffer} is a file, not a folder; pass the folder that holds it "
                                f"({expert_dir})")
    proc = run_main(capsys, "experts", "--buffer-path", str(buffer), "--data-path", str(mini_fmnist_dir), "--quiet")
    assert_one_line_error(proc, f"--buffer-path {buffer} is a file, not a folder; experts writes "
                                f"DATASET/MODEL/replay_buffer_N.pt below the folder it is given")
    data_file = mini_fmnist_dir / "train-images-idx3-ubyte.gz"
    proc = run_main(capsys, *distill_args(SMALL_MODEL, data_path=data_file, buffer_path=expert_root, out=out))
    assert_one_line_error(proc, f"--data-path {data_file} is a file, not a folder; pass the folder that holds the "
                                f"dataset files ({mini_fmnist_dir})")
    assert not out.exists() and sorted(p.name for p in expert_dir.iterdir())[:2] == ["replay_buffer_0.json",
                                                                                    "replay_buffer_0.pt"]


def test_mtt_and_mct_cap_a_start_epoch_beyond_the_experts_alike_and_say_so_once(tmp_path, capsys, expert_dir,
                                                                               mini_fmnist_dir):
    """5-epoch experts, --expert-epochs 2, --max-start-epoch 20: MTT draws integer starts below its
    bound (0..3), MCT real ones up to it (0..3); each says so in one line. The MCT files were
    converted with --waypoints 3: a run that does not ask for waypoints hears nothing about them."""
    common = dict(data_path=mini_fmnist_dir, max_start_epoch=20, expert_epochs=2, iterations=4)
    mtt = run_main(capsys, *distill_args(SMALL_MODEL, buffer_path=expert_dir, out=tmp_path / "mtt", **common))
    assert mtt.returncode == 0, mtt.stderr
    assert [line for line in mtt.stderr.splitlines() if "capped" in line] == [
        "dd-harness: --max-start-epoch 20 capped at 4: start epochs 0..3, so that start + --expert-epochs 2 stays "
        "within the 5 epochs of the expert trajectories"]
    assert start_epochs(tmp_path / "mtt") <= {0.0, 1.0, 2.0, 3.0}

    converted = tmp_path / "converted"
    assert run_main(capsys, "convert", "--to", "mct", str(expert_dir), "--out", str(converted), "--waypoints", "3",
                    "--quiet").returncode == 0
    mct = run_main(capsys, *distill_args(SMALL_MODEL, matcher="mct", buffer_path=converted, out=tmp_path / "mct",
                                         **common))
    assert mct.returncode == 0, mct.stderr
    assert [line for line in mct.stderr.splitlines() if "capped" in line] == [
        "dd-harness: --max-start-epoch 20 capped at 3: start epochs 0..3, so that start + --expert-epochs 2 stays "
        "within the 5 epochs of the expert trajectories"]
    assert max(start_epochs(tmp_path / "mct")) <= 3.0
    # --waypoints was not asked for: its default 4 is no request (asked for, it is reported: G
    # test_options_that_would_be_ignored_are_refused_or_reported)
    assert "do not apply" not in mct.stderr


def test_the_environment_builds_a_plugin_offline(tmp_path):
    """`make setup` installs the test extras, setuptools and wheel among them: the documented example
    plugin builds without a network (no build isolation, no index)."""
    extras = re.search(r"^test = \[(.*?)^\]", (ROOT / "pyproject.toml").read_text(), re.S | re.M).group(1)
    assert {"setuptools", "wheel"} <= set(re.findall(r'^\s*"([\w-]+)', extras, re.M))
    source = shutil.copytree(ROOT / "docs" / "examples" / "averaged_mtt", tmp_path / "averaged_mtt")  # builds in place
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "--no-index",
                           "-q", "-w", str(tmp_path / "dist"), str(source)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert [p.name for p in (tmp_path / "dist").glob("*.whl")] == ["averaged_mtt-1.0-py3-none-any.whl"]
