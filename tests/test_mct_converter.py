"""`dd-harness convert --to mct`: round trips, sizes, public MCT files, re-runs and bad input."""

from __future__ import annotations

import io
import json

import pytest
import torch
from safetensors import safe_open

from mct_plugin.mct.convexified import ConvexifiedTrajectory, waypoint_epochs
from mct_plugin.mct.format import read_mct_file
from mct_plugin.mct.public_format import load_public_pair

from helpers import (SMALL_MODEL, PickleExploit, assert_one_line_error, convexify, model_shapes, random_trajectory, run_cli,
                     tree_snapshot)

SHAPES = model_shapes(SMALL_MODEL)
P2 = ("--waypoints", "2", "--smooth", "none", "--waypoint-spacing", "even")  # start and end exact


def torch_bytes(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def public_root(tmp_path_factory):
    """Two 50-epoch experts saved exactly as the public buffer.py does (plain torch.save)."""
    root = tmp_path_factory.mktemp("public")
    directory = root / "FashionMNIST" / SMALL_MODEL
    directory.mkdir(parents=True)
    torch.save([random_trajectory(SMALL_MODEL, 50, seed) for seed in (0, 1)], directory / "replay_buffer_0.pt")
    torch.save([random_trajectory(SMALL_MODEL, 50, 2)], directory / "replay_buffer_1.pt")
    return root


def convert(*args):
    return run_cli("convert", "--to", "mct", *map(str, args), "--quiet")


def test_round_trip_sizes_and_exact_endpoints(public_root, tmp_path):
    source_dir = public_root / "FashionMNIST" / SMALL_MODEL
    before = tree_snapshot(source_dir)
    out32, out16 = tmp_path / "f32", tmp_path / "f16"
    proc = convert(source_dir, "--out", out32, *P2)
    assert proc.returncode == 0, proc.stderr
    assert "replay_buffer_0.pt" in proc.stdout and "yes" in proc.stdout and "total" in proc.stdout
    assert convert(source_dir, "--out", out16, "--dtype", "float16", *P2).returncode == 0
    assert tree_snapshot(source_dir) == before  # sources untouched
    source = source_dir / "replay_buffer_0.pt"
    f32, f16 = out32 / "replay_buffer_0.mct.safetensors", out16 / "replay_buffer_0.mct.safetensors"
    ratio = f32.stat().st_size / source.stat().st_size
    assert ratio <= (2 / 51) * 1.05, ratio
    assert f16.stat().st_size / f32.stat().st_size <= 0.55
    experts = torch.load(source, weights_only=True)
    trajectories, meta = read_mct_file(f32, SHAPES)
    assert len(trajectories) == 2 and trajectories[0].epochs == [0, 50]
    for original, convexified in zip(experts, trajectories):
        assert all(torch.equal(a, b) for a, b in zip(convexified.point_at(0), original[0]))
        assert all(torch.equal(a, b) for a, b in zip(convexified.point_at(50), original[50]))
        reference = convexify(original)
        assert torch.allclose(convexified.flat_point_at(17.3), reference.flat_point_at(17.3))
    assert meta["source"] == "replay_buffer_0.pt" and meta["num_epochs"] == 50 and meta["format_version"] == 1
    assert (meta["dataset"], meta["model"]) == ("FashionMNIST", SMALL_MODEL)
    assert meta["param_names"][0] == "features.0.weight" and meta["param_shapes"][0] == [32, 1, 3, 3]
    with safe_open(str(f16), framework="pt") as handle:  # plain safetensors reads it
        assert handle.get_tensor("expert0.waypoint1.param0").dtype == torch.float16
        assert handle.get_tensor("expert0.beta").shape == (51, len(SHAPES))
        assert json.loads(handle.metadata()["dtype"]) == "float16"
    half, _ = read_mct_file(f16)
    error = max(float((a - b).abs().max()) for a, b in zip(half[0].point_at(50), experts[0][50]))
    assert 0 < error < 1e-3


def summary_rows(stdout: str) -> dict[str, dict[str, str]]:
    """The convert summary table, by source file and column."""
    import re

    lines = stdout.splitlines()
    header = re.split(r" {2,}", lines[0].strip())
    rows = [re.split(r" {2,}", line.strip()) for line in lines[2:] if line.startswith("replay_buffer")]
    return {row[0]: dict(zip(header, row)) for row in rows}


def test_the_summary_says_that_smoothing_moved_the_end_and_gives_the_error_without_it(public_root, tmp_path):
    source = public_root / "FashionMNIST" / SMALL_MODEL / "replay_buffer_0.pt"
    smoothed = convert(source, "--out", tmp_path / "public")  # defaults: P=4, --smooth public
    assert smoothed.returncode == 0, smoothed.stderr
    row = summary_rows(smoothed.stdout)["replay_buffer_0.pt"]
    experts = torch.load(source, weights_only=True)
    move = max(float(((a + b) / 2 - b).abs().max()) for e in experts for a, b in zip(e[-2], e[-1]))
    assert row["start/end exact"] == "no" and float(row["max |end error|"]) == pytest.approx(move, rel=1e-3)
    assert float(row["end moved by smoothing"]) == pytest.approx(move, rel=1e-3)
    assert float(row["error w/o smoothing"]) == 0.0  # float32 stores exactly what was convexified
    assert "where --smooth moves the end on purpose (public: the end becomes the mean of the last two " \
           "checkpoints when P > 2)" in smoothed.stdout
    plain = convert(source, "--out", tmp_path / "plain", *P2)
    row = summary_rows(plain.stdout)["replay_buffer_0.pt"]
    assert (row["start/end exact"], row["max |end error|"], row["end moved by smoothing"],
            row["error w/o smoothing"]) == ("yes", "0", "-", "0")
    assert "on purpose" not in plain.stdout
    half = convert(source, "--out", tmp_path / "half", "--dtype", "float16")
    row = summary_rows(half.stdout)["replay_buffer_0.pt"]
    assert 0 < float(row["error w/o smoothing"]) < 1e-3  # float16 rounding, apart from the smoothing


def test_rerun_skips_completed_outputs_and_converts_the_rest(public_root, tmp_path):
    source_dir = public_root / "FashionMNIST" / SMALL_MODEL
    out = tmp_path / "out"
    assert convert(source_dir / "replay_buffer_0.pt", "--out", out, *P2).returncode == 0
    first = (out / "replay_buffer_0.mct.safetensors").read_bytes()
    proc = convert(source_dir, "--out", out, *P2)
    assert proc.returncode == 0, proc.stderr
    assert "skipped replay_buffer_0.pt" in proc.stdout
    assert (out / "replay_buffer_0.mct.safetensors").read_bytes() == first
    assert (out / "replay_buffer_1.mct.safetensors").is_file()
    # other options would change the file: refused unless --overwrite
    P4 = ("--waypoints", "4", "--smooth", "none", "--waypoint-spacing", "even")
    assert_one_line_error(convert(source_dir, "--out", out, *P4), "already exists", "--overwrite")
    assert convert(source_dir, "--out", out, *P4, "--overwrite").returncode == 0
    assert read_mct_file(out / "replay_buffer_0.mct.safetensors")[0][0].epochs == [0, 17, 33, 50]


def write_public_mct_files(directory, trajectories, waypoints):
    """The public MCT code's compressed files, built with plain torch.save (its documented layout)."""
    if waypoints == 2:
        steps = [[[torch.tensor(float(v)) for v in row] for row in convexify(tr).beta]
                 for tr in trajectories]
        points = [[tr[0], tr[-1]] for tr in trajectories]
        tag = ""
    else:
        epochs = waypoint_epochs(len(trajectories[0]) - 1, waypoints, "public")
        steps, points = [], []
        for tr in trajectories:
            pieces = []
            for start, end in zip(epochs[:-1], epochs[1:]):
                beta = convexify(tr[start:end + 1]).beta
                pieces.append([[torch.tensor(float(v)) for v in row] for row in beta])
            steps.append(pieces)
            smoothed = convexify(tr, waypoints, "public", "public")
            points.append(smoothed.waypoints)
        tag = f"_ip{waypoints}"
    torch.save(points, directory / f"waypoint_buffer{tag}_0.pt")
    torch.save(steps, directory / f"step_buffer{tag}_0.pt")
    return directory / f"waypoint_buffer{tag}_0.pt"


@pytest.mark.parametrize("waypoints", [2, 4])
def test_public_mct_files_are_imported(tmp_path, waypoints):
    trajectories = [random_trajectory(SMALL_MODEL, 20, 5), random_trajectory(SMALL_MODEL, 20, 6)]
    waypoint_file = write_public_mct_files(tmp_path, trajectories, waypoints)
    imported = load_public_pair(waypoint_file, waypoint_file.with_name("step" + waypoint_file.name[8:]))
    smoothing, spacing = ("none", "even") if waypoints == 2 else ("public", "public")
    for trajectory, got in zip(trajectories, imported):
        expected = convexify(trajectory, waypoints, smoothing, spacing)
        assert got.epochs == expected.epochs
        for s in (0.0, 3.5, 7.0, 12.25, 20.0):
            assert torch.allclose(got.flat_point_at(s), expected.flat_point_at(s), atol=1e-6)
    proc = convert(tmp_path, "--out", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    (output,) = (tmp_path / "out").iterdir()
    converted, meta = read_mct_file(output)
    assert meta["imported_from"] == "public MCT code"
    assert torch.allclose(converted[1].flat_point_at(9.5), imported[1].flat_point_at(9.5))


# -- bad input: one line, non-zero exit, source untouched, no partial output ------------------
def _bad_sources(tmp_path):
    good = random_trajectory(SMALL_MODEL, 4, 0)
    nan = random_trajectory(SMALL_MODEL, 4, 1)
    nan[2][5][0] = float("nan")
    yield "truncated", lambda p: p.write_bytes(torch_bytes([good])[:3000]), "is truncated or not a torch file"
    yield "not-tensors", lambda p: torch.save([[["a", "b"], ["c", "d"]]], p), "expert 0, checkpoint 0, parameter 0 is a str"
    yield "exploit", lambda p: torch.save([PickleExploit(tmp_path / "pwned")], p), "refused to load"
    yield "nan", lambda p: torch.save([nan], p), "expert 0, checkpoint 2, parameter 5 contains NaN or Inf"
    yield "lengths", lambda p: torch.save([good, random_trajectory(SMALL_MODEL, 3, 2)], p), \
        "expert 1 has 4 checkpoints but expert 0 has 5"
    yield "shapes", lambda p: torch.save([good, [[x[:1] for x in c] for c in good]], p), "expert 1, checkpoint 0, parameter 0 has shape"
    yield "one-checkpoint", lambda p: torch.save([good[:1]], p), "expert 0 has 1 checkpoint(s); at least 2 are needed"


@pytest.mark.parametrize("case", [c[0] for c in _bad_sources(None)])
def test_bad_sources_are_refused_in_one_line_without_output(tmp_path, case):
    writer, fragment = {name: (w, f) for name, w, f in _bad_sources(tmp_path)}[case]
    source = tmp_path / "src" / "replay_buffer_0.pt"
    source.parent.mkdir()
    writer(source)
    before = source.read_bytes()
    proc = convert(source, "--out", tmp_path / "out")
    assert_one_line_error(proc, str(source), fragment)
    assert source.read_bytes() == before
    assert not any((tmp_path / "out").iterdir()) if (tmp_path / "out").exists() else True
    assert not (tmp_path / "pwned").exists()


def test_waypoints_beyond_the_checkpoint_count_are_refused(tmp_path):
    source = tmp_path / "replay_buffer_0.pt"
    torch.save([random_trajectory(SMALL_MODEL, 2, 0)], source)
    assert_one_line_error(convert(source, "--out", tmp_path / "out", "--waypoints", "4"),
                          "--waypoints 4 is larger than the 3 checkpoints")
    assert not list((tmp_path / "out").glob("*"))


def test_waypoints_as_many_as_the_checkpoints_warn_that_nothing_is_saved(tmp_path):
    source = tmp_path / "replay_buffer_0.pt"
    torch.save([random_trajectory(SMALL_MODEL, 2, 0)], source)
    every = convert(source, "--out", tmp_path / "every", "--waypoints", "3")
    assert every.returncode == 0, every.stderr
    assert [line for line in every.stderr.splitlines() if "warning" in line] == [
        "dd-harness: warning: --waypoints 3 keeps every checkpoint of replay_buffer_0.pt (3 checkpoints), so the MCT "
        "files save nothing over their sources; MCT saves space with fewer waypoints than checkpoints"]
    fewer = convert(source, "--out", tmp_path / "fewer", "--waypoints", "2")
    assert fewer.returncode == 0 and "warning" not in fewer.stderr


def test_outputs_never_collide_with_sources(public_root, tmp_path):
    source_dir = public_root / "FashionMNIST" / SMALL_MODEL
    before = tree_snapshot(source_dir)
    assert_one_line_error(convert(source_dir, "--out", source_dir / "replay_buffer_0.pt"), "is not a folder")
    other = tmp_path / "other"
    other.mkdir()
    torch.save([random_trajectory(SMALL_MODEL, 3, 9)], other / "replay_buffer_0.pt")
    proc = convert(source_dir / "replay_buffer_0.pt", other / "replay_buffer_0.pt", "--out", tmp_path / "out")
    assert_one_line_error(proc, "would both be written to")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    # converting into the source folder itself is fine: outputs have their own names
    assert convert(source_dir, "--out", source_dir).returncode == 0
    assert {k: v for k, v in tree_snapshot(source_dir).items() if k.endswith(".pt")} == before
    again = convert(source_dir, "--out", source_dir)
    assert again.returncode == 0 and again.stdout.count("skipped") == 2
    for path in source_dir.glob("*.safetensors"):
        path.unlink()
