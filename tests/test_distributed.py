"""torch.distributed (torchrun, gloo on CPU, 2 processes): experts, distillation, evaluation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from helpers import built_once, run_cli

HERE = Path(__file__).resolve().parent
# one thread per process, in the references too: results must not depend on thread counts
ENV = {"OMP_NUM_THREADS": "1", "DD_HARNESS_MALLOC_TUNING": "1"}


def torchrun(*args: str, nproc: int = 2, timeout: int = 300) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", *args]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env={**os.environ, **ENV})
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def tiny_buffers(tmp_path_factory):
    """Two ConvNetW16 experts (3 epochs on 500 images), trained once per session (tests only read them)."""
    def train(root: Path) -> None:
        proc = run_cli("experts", "--model", "ConvNetW16", "--num-experts", "2", "--train-epochs", "3", "--subset",
                       "500", "--buffer-path", str(root), "--quiet", env=ENV)
        assert proc.returncode == 0, proc.stderr

    return built_once(tmp_path_factory, "dist_buffers", train)


def test_a_library_call_is_single_process_unless_it_is_given_a_context(monkeypatch, small_data):
    """evaluate_set (like Distillation, train_experts, evaluate_run) reads no torchrun environment:
    without a context it trains every network itself and joins no process group."""
    from mct_plugin.harness.config import EvalSettings
    from mct_plugin.harness.eval.protocol import evaluate_set, random_real_subset
    from mct_plugin.harness.runtime.distributed import DistContext

    from helpers import components

    for name, value in {"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1"}.items():
        monkeypatch.setenv(name, value)
    images, labels = random_real_subset(small_data, 1, seed=0)
    result = evaluate_set(images, labels, 0.01, small_data, "ConvNetW16", EvalSettings(num_eval=3, epoch_eval_train=1),
                          models=components().models)
    assert len(result.accuracies) == 3 and not torch.distributed.is_initialized()
    assert DistContext(rank=1, world_size=2).shard(["a", "b", "c"]) == [(1, "b")]  # what rank 1 of 2 would train


def test_sharded_experts_match_a_single_process_run(tmp_path):
    common = ["experts", "--model", "ConvNetW16", "--num-experts", "3", "--save-interval", "1", "--train-epochs", "1",
              "--subset", "300", "--quiet"]
    single, sharded = tmp_path / "single", tmp_path / "sharded"
    assert run_cli(*common, "--buffer-path", str(single), env=ENV).returncode == 0
    torchrun("-m", "mct_plugin.harness.cli", *common, "--buffer-path", str(sharded))
    folder = Path("FashionMNIST") / "ConvNetW16"
    names = sorted(p.name for p in (sharded / folder).glob("*.pt"))
    assert names == ["replay_buffer_0.pt", "replay_buffer_1.pt", "replay_buffer_2.pt"]  # no collision, no leftovers
    assert sorted(p.name for p in (sharded / folder).iterdir()) == sorted(names + [n[:-3] + ".json" for n in names])
    for name in names:
        a = torch.load(single / folder / name, weights_only=True)
        b = torch.load(sharded / folder / name, weights_only=True)
        assert all(torch.equal(x, y) for ca, cb in zip(a[0], b[0]) for x, y in zip(ca, cb)), name


@pytest.mark.parametrize("matcher,mode", [("mtt", "checkpointed"), ("mct", "first-order")])
def test_two_processes_at_meta_batch_2_give_the_run_of_one_process_at_meta_batch_2(tiny_buffers, tmp_path, matcher,
                                                                                   mode):
    """The meta-batch, not the number of processes, defines the algorithm: 3 iterations on 2 ranks
    (each matching its share: one segment) equal 3 iterations in one process (both segments, one
    after the other); the ranks keep identical sets, and every segment is logged with its rank."""
    worker = str(HERE / "_dist_worker.py")
    ranks = sorted(json_lines(torchrun(worker, str(tiny_buffers), str(tmp_path / "two"), "3", matcher,
                                       mode).stdout), key=lambda r: r["rank"])
    assert [r["rank"] for r in ranks] == [0, 1] and ranks[0]["world"] == 2
    assert ranks[0]["digest"] == ranks[1]["digest"] and ranks[0]["lr"] == ranks[1]["lr"]
    two = ranks[0]
    assert two["segments"] == ranks[1]["segments"]  # every rank draws the whole meta-batch
    for segments in two["segments"]:  # each iteration: one segment per rank, logged with its rank
        assert [s["rank"] for s in segments] == [0, 1]
        assert {s["expert"] for s in segments} <= {f"replay_buffer_0.pt#{i}" for i in range(2)}
    assert len({(s["start_epoch"], s["expert"]) for segments in two["segments"] for s in segments}) > 1
    recorded = json.loads((tmp_path / "two" / "config.json").read_text())  # rank 0 wrote the outputs
    assert recorded["world_size"] == 2 and recorded["meta_batch"] == 2

    one = subprocess.run([sys.executable, worker, str(tiny_buffers), str(tmp_path / "one"), "3", matcher, mode],
                         capture_output=True, text=True, timeout=300, env={**os.environ, **ENV})
    assert one.returncode == 0, one.stderr[-3000:]
    (single,) = json_lines(one.stdout)
    assert single["world"] == 1
    without_rank = lambda line: [[{k: v for k, v in s.items() if k != "rank"} for s in it] for it in line["segments"]]
    assert without_rank(single) == without_rank(two)
    a = torch.load(tmp_path / "two" / "images.pt", weights_only=True)
    b = torch.load(tmp_path / "one" / "images.pt", weights_only=True)
    assert a.shape == (10, 1, 28, 28) and float((a - b).norm() / b.norm()) <= 1e-5
    assert two["lr"] == pytest.approx(single["lr"], rel=1e-6)


def test_a_resumed_two_rank_distillation_ends_identical_to_an_uninterrupted_one(tiny_buffers, tmp_path):
    worker = str(HERE / "_dist_worker.py")
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    whole = json_lines(torchrun(worker, str(tiny_buffers), str(reference), "4", "mct", "unrolled").stdout)
    torchrun(worker, str(tiny_buffers), str(resumed), "4", "mct", "unrolled", "stop:2")
    assert (resumed / "checkpoint.pt").is_file()
    rows = [json.loads(line) for line in (resumed / "metrics.jsonl").read_text().splitlines()]
    assert [row["iteration"] for row in rows] == [0, 1]  # stopped half-way
    continued = json_lines(torchrun(worker, str(tiny_buffers), str(resumed), "4", "mct", "unrolled", "resume").stdout)
    # every rank: the same images and alpha, and the same segments sampled after the resume
    by_rank = lambda lines: {r["rank"]: (r["digest"], r["lr"], r["segments"][2:]) for r in lines}
    assert sorted(by_rank(continued)) == [0, 1] and by_rank(continued) == by_rank(whole)
    for name in ("images.pt", "lr.pt", "labels.pt"):
        assert (resumed / name).read_bytes() == (reference / name).read_bytes(), name
    strip = lambda path: [{k: v for k, v in json.loads(line).items() if k != "seconds"}
                          for line in (path / "metrics.jsonl").read_text().splitlines()]
    assert strip(resumed) == strip(reference)


def test_sharded_evaluation_equals_single_process_evaluation(tiny_buffers, tmp_path, mini_fmnist_dir):
    run = tmp_path / "run"  # any distilled set: one process distils it
    distilled = subprocess.run([sys.executable, str(HERE / "_dist_worker.py"), str(tiny_buffers), str(run), "1", "mtt",
                                "unrolled"], capture_output=True, text=True, timeout=300, env={**os.environ, **ENV})
    assert distilled.returncode == 0, distilled.stderr[-3000:]
    options = ["eval", "--run-dir", str(run), "--num-eval", "3", "--epoch-eval-train", "4", "--models",
               "ConvNetW16,ConvNetD1", "--data-path", str(mini_fmnist_dir)]
    single = run_cli(*options, env=ENV)
    assert single.returncode == 0, single.stderr
    expected = json.loads((run / "eval.json").read_text())
    torchrun("-m", "mct_plugin.harness.cli", *options)
    sharded = json.loads((run / "eval.json").read_text())
    assert sharded["rows"] == expected["rows"]
    assert [row["model"] for row in sharded["rows"]] == ["ConvNetW16", "ConvNetD1"]
