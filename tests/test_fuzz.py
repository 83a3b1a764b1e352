"""Property-based checks of the contract on bad input (hypothesis).

Whatever option values, corrupted buffers, MCT files or run directories are drawn, a command
either exits 0 with finite outputs, or exits 2 with exactly one ``dd-harness: error:`` line and no
traceback; it never leaves a partial file (``.tmp-*``) and never changes its inputs.

CI runs a seeded sample (``--fuzz-examples``, default 12 per property, derandomised, so a run is
reproducible); ``make test-fuzz`` runs 200 per property. Each test prints how many inputs it tried.
"""

from __future__ import annotations

from collections import Counter

import io
import json
import shutil
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import distill_args, random_trajectory, run_cli_in_process, temporaries, tree_snapshot

pytestmark = pytest.mark.fuzz
MODEL = "ConvNetW16"
WEIRD_VALUES = ["nan", "inf", "-inf", "-0.0", "0", "-1", "-1e30", "1e30", str(2**70), str(-2**70), "", "abc",
                "1.5", "3", "0.001", "1e-30"]
DISTILL_NUMBERS = ["ipc", "syn_steps", "expert_epochs", "max_start_epoch", "min_start_epoch", "lr_img", "lr_lr",
                   "lr_teacher", "batch_syn", "iterations", "eval_it", "num_eval", "epoch_eval_train", "batch_train",
                   "seed", "max_files", "max_experts", "checkpoint_every", "label_epoch", "waypoints",
                   "curriculum_initial", "curriculum_iterations", "stall_iterations", "stall_tolerance", "validation",
                   "validation_seed"]
EXPERT_NUMBERS = ["num_experts", "train_epochs", "lr_teacher", "batch_train", "momentum", "weight_decay", "seed",
                  "subset", "save_interval", "validation", "validation_seed"]
EVAL_NUMBERS = ["num_eval", "epoch_eval_train", "seed", "full_data_accuracy", "validation", "validation_seed"]


def fuzz_settings(request):
    return settings(max_examples=request.config.getoption("--fuzz-examples"), derandomize=True, deadline=None,
                    suppress_health_check=list(HealthCheck), database=None)


def check_contract(proc, out: Path | None, inputs: dict[Path, dict], before_out: dict | None = None) -> str:
    """The contract; returns "ok" or "refused" (for the tally)."""
    assert "Traceback" not in proc.stderr, proc.stderr
    for folder, snapshot in inputs.items():
        assert tree_snapshot(folder) == snapshot, f"{folder} changed"
    if out is not None and out.exists():
        assert not temporaries(out), temporaries(out)
    if proc.returncode == 0:
        if out is not None:
            for name in ("images.pt", "lr.pt"):
                if (out / name).exists():
                    assert torch.isfinite(torch.load(out / name, weights_only=True)).all(), name
        return "ok"
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("dd-harness: error:")]
    assert len(errors) == 1, proc.stderr
    if out is not None:
        assert (tree_snapshot(out) if out.exists() else None) == before_out, "a refused command changed its output"
    return "refused"


def report(name: str, tally: Counter) -> None:
    print(f"\nfuzz {name}: {sum(tally.values())} inputs ({tally.get('ok', 0)} accepted, {tally.get('refused', 0)} "
          f"refused in one line)")


@pytest.fixture(scope="module")
def buffers(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz_buffers")
    torch.save([random_trajectory(MODEL, 3, seed) for seed in (0, 1)], root / "replay_buffer_0.pt")
    return root


@pytest.fixture(scope="module")
def converted(tmp_path_factory, buffers):
    out = tmp_path_factory.mktemp("fuzz_mct") / "mct"
    assert run_cli_in_process("convert", "--to", "mct", str(buffers), "--out", str(out), "--quiet").returncode == 0
    return out


FUZZED_DISTILL = {"iterations": 1, "syn_steps": 1, "epoch_eval_train": 2, "num_eval": 1}  # over helpers.QUICK_DISTILL


def test_distill_options(request, tmp_path, buffers, mini_fmnist_dir):
    tally: Counter[str] = Counter()

    @fuzz_settings(request)
    @given(name=st.sampled_from(DISTILL_NUMBERS), value=st.sampled_from(WEIRD_VALUES),
           matcher=st.sampled_from(["mtt", "mct"]))
    def check(name, value, matcher):
        out = tmp_path / "run"
        shutil.rmtree(out, ignore_errors=True)
        inputs = {buffers: tree_snapshot(buffers)}
        args = distill_args(MODEL, f"--{name.replace('_', '-')}={value}", matcher=matcher, buffer_path=buffers,
                            data_path=mini_fmnist_dir, out=out, **FUZZED_DISTILL)
        tally[check_contract(run_cli_in_process(*args), out, inputs)] += 1

    check()
    report("distill options", tally)


def test_experts_and_eval_options(request, tmp_path, mini_fmnist_dir, buffers):
    tally: Counter[str] = Counter()
    run = tmp_path / "finished"
    assert run_cli_in_process(*distill_args(MODEL, buffer_path=buffers, data_path=mini_fmnist_dir, out=run,
                                            **FUZZED_DISTILL)).returncode == 0

    @fuzz_settings(request)
    @given(command=st.sampled_from(["experts", "eval"]), name=st.data(), value=st.sampled_from(WEIRD_VALUES))
    def check(command, name, value):
        if command == "experts":
            option = name.draw(st.sampled_from(EXPERT_NUMBERS))
            root = tmp_path / "experts"
            shutil.rmtree(root, ignore_errors=True)
            args = ["experts", "--model", MODEL, "--num-experts", "1", "--train-epochs", "1", "--subset", "100",
                    "--data-path", str(mini_fmnist_dir), "--buffer-path", str(root), "--quiet",
                    f"--{option.replace('_', '-')}={value}"]
            if option in ("num_experts", "train_epochs") and value == "3":
                args[args.index("--subset") + 1] = "20"  # three experts or epochs: keep them quick
            outcome = check_contract(run_cli_in_process(*args), None, {})
            if outcome == "refused":
                assert not root.exists()
        else:
            option = name.draw(st.sampled_from(EVAL_NUMBERS))
            before = tree_snapshot(run)
            args = ["eval", "--run", str(run), "--num-eval", "1", "--epoch-eval-train", "1", "--no-baseline",
                    f"--{option.replace('_', '-')}={value}"]
            proc = run_cli_in_process(*args)
            outcome = check_contract(proc, None, {})
            if outcome == "refused":
                assert tree_snapshot(run) == before
        tally[outcome] += 1

    check()
    report("experts and eval options", tally)


def _flip(data: bytes, positions: list[int]) -> bytes:
    mutable = bytearray(data)
    for p in positions:
        mutable[p % len(mutable)] ^= 0xFF
    return bytes(mutable)


def _structural(case: str, experts: list) -> list:
    e = [[[t.clone() for t in c] for c in traj] for traj in experts]
    if case == "duplicate checkpoint":
        e[0][2] = [t.clone() for t in e[0][1]]
    elif case == "float64":
        e[1] = [[t.double() for t in c] for c in e[1]]
    elif case == "int32":
        e[0][0][0] = e[0][0][0].int()
    elif case == "shape":
        e[0][1][2] = e[0][1][2][:-1]
    elif case == "drop a tensor":
        e[1][3] = e[1][3][:-1]
    elif case == "nan":
        e[0][2][1][0] = float("nan")
    elif case == "huge":
        e[1][1][0].mul_(1e30)
    return e


def test_corrupted_buffers_and_mct_files(request, tmp_path, buffers, converted, mini_fmnist_dir):
    tally: Counter[str] = Counter()
    original = (buffers / "replay_buffer_0.pt").read_bytes()
    original_mct = (converted / "replay_buffer_0.mct.safetensors").read_bytes()
    experts = torch.load(io.BytesIO(original), weights_only=True)

    @fuzz_settings(request)
    @given(target=st.sampled_from(["buffer", "mct"]),
           kind=st.sampled_from(["truncate", "flip", "duplicate checkpoint", "float64", "int32", "shape",
                                 "drop a tensor", "nan", "huge"]),
           cut=st.floats(0.0, 1.0), flips=st.lists(st.integers(0, 10**7), min_size=1, max_size=8),
           command=st.sampled_from(["distill", "convert"]))
    def check(target, kind, cut, flips, command):
        folder = tmp_path / "input"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        if target == "buffer":
            path, data = folder / "replay_buffer_0.pt", original
        else:
            path, data = folder / "replay_buffer_0.mct.safetensors", original_mct
            command = "distill"
        if kind == "truncate":
            path.write_bytes(data[: int(cut * len(data))])
        elif kind == "flip" or target == "mct":
            path.write_bytes(_flip(data, flips))
        else:
            torch.save(_structural(kind, experts), path)
        inputs = {folder: tree_snapshot(folder)}
        out = tmp_path / "out"
        shutil.rmtree(out, ignore_errors=True)
        if command == "convert":
            args = ["convert", "--to", "mct", str(folder), "--out", str(out), "--quiet"]
        else:
            args = distill_args(MODEL, matcher="mct" if target == "mct" else "mtt", buffer_path=folder,
                                data_path=mini_fmnist_dir, out=out, **FUZZED_DISTILL)
        tally[check_contract(run_cli_in_process(*args), out, inputs)] += 1

    check()
    report("corrupted buffers and MCT files", tally)


def test_corrupted_run_directories(request, tmp_path, buffers, mini_fmnist_dir):
    tally: Counter[str] = Counter()
    finished = tmp_path / "finished"
    assert run_cli_in_process(*distill_args(MODEL, buffer_path=buffers, data_path=mini_fmnist_dir, out=finished,
                                            **FUZZED_DISTILL)).returncode == 0

    @fuzz_settings(request)
    @given(file=st.sampled_from(["images.pt", "labels.pt", "lr.pt", "config.json", "checkpoint.pt"]),
           kind=st.sampled_from(["truncate", "flip", "replace"]), cut=st.floats(0.0, 1.0),
           flips=st.lists(st.integers(0, 10**6), min_size=1, max_size=4),
           replacement=st.sampled_from([float("nan"), float("inf"), -1.0, 0.0, 1e30, 3.0]),
           command=st.sampled_from(["eval", "resume"]))
    def check(file, kind, cut, flips, replacement, command):
        run = tmp_path / "run"
        shutil.rmtree(run, ignore_errors=True)
        shutil.copytree(finished, run)
        path = run / file
        data = path.read_bytes()
        if kind == "truncate":
            path.write_bytes(data[: int(cut * len(data))])
        elif kind == "flip":
            path.write_bytes(_flip(data, flips))
        elif file == "config.json":
            values = json.loads(data)
            values[["ipc", "lr_img", "epoch_eval_train", "dataset", "model"][flips[0] % 5]] = replacement
            path.write_text(json.dumps(values))
        elif file == "checkpoint.pt":
            state = torch.load(path, weights_only=True)
            state["images"] = torch.full_like(state["images"], replacement)
            torch.save(state, path)
        else:
            value = torch.load(path, weights_only=True)
            torch.save(torch.full_like(value, replacement) if value.is_floating_point() else value + int(replacement
                       if abs(replacement) < 100 else 0), path)
        before = tree_snapshot(run)
        if command == "eval":
            proc = run_cli_in_process("eval", "--run", str(run), "--num-eval", "1", "--epoch-eval-train", "1",
                                      "--no-baseline")
            outcome = check_contract(proc, None, {})
            if outcome == "refused":
                assert tree_snapshot(run) == before
        else:
            proc = run_cli_in_process("distill", "--resume", "--out", str(run), "--iterations", "2",
                                      "--data-path", str(mini_fmnist_dir), "--quiet")
            tally[check_contract(proc, run, {buffers: tree_snapshot(buffers)}, before)] += 1

    check()
    report("corrupted run directories", tally)
