"""Every benchmark script has a --quick mode; these tests run them (smoke tests, not timings)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def bench(script: str, *args: str, cache: Path | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, **({"MCT_PLUGIN_CACHE": str(cache)} if cache else {})}
    proc = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True,
                          timeout=timeout, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    return tmp_path_factory.mktemp("bench")


@pytest.mark.slow
def test_speed_quick(out):
    bench("speed.py", "--quick", "--out", str(out))
    data = json.loads((out / "speed.json").read_text())
    assert data["quick"] and data["machine"]["cores"] >= 1 and data["command"].startswith("python benchmarks/speed.py")
    assert {r["allocator_tuning"] for r in data["experts"]} == {True, False}
    assert all(r["seconds_per_iteration"] > 0 and r["peak_rss_mb"] > 0 for r in data["distill"])
    assert {r["how"] for r in data["eval"]} == {"sequential", "batched"}


@pytest.mark.slow
def test_convergence_and_cross_arch_quick(out, tmp_path):
    bench("convergence.py", "--quick", "--out", str(out), "--cache", str(tmp_path / "cache"))
    data = json.loads((out / "convergence_quick.json").read_text())
    methods = data["analysis"]["1"]["methods"]
    assert set(methods) == {"mtt", "mct"} and len(data["runs"]) == 4  # 2 methods x 2 seeds
    assert "95% of final MTT" in methods["mct"]["iterations_to_reach"]
    assert (out / "convergence_quick.png").read_bytes()[:4] == b"\x89PNG"
    bench("cross_arch.py", "--quick", "--out", str(out), "--cache", str(tmp_path / "cache"))
    rows = json.loads((out / "cross_arch_quick.json").read_text())["rows"]
    assert {r["model"] for r in rows} == {"ConvNetW16", "timm:mobilenetv3_small_050"}
    assert {"random real subset", "MTT", "MCT"} <= set(rows[0])


@pytest.mark.slow
def test_storage_quick(out, tmp_path):
    bench("storage.py", "--quick", "--out", str(out), cache=tmp_path)
    data = json.loads((out / "storage.json").read_text())
    first = data["sizes"]["rows"][0]
    assert first["waypoints"] == 2 and first["ratio"] < 0.25 and first["mct_bytes"] > 0
    assert [r["dtype"] for r in data["accuracy"]["rows"]] == ["float32", "float32"]


@pytest.mark.slow
def test_distributed_quick(out):
    bench("distributed.py", "--quick", "--out", str(out))
    rows = json.loads((out / "distributed.json").read_text())["rows"]
    assert [r["processes"] for r in rows] == [1, 2] and all(r["segments_per_s"] > 0 for r in rows)


def test_results_markdown_is_generated_from_json(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    (results / "distributed.json").write_text(json.dumps({
        "benchmark": "distributed", "command": "python benchmarks/distributed.py", "date": "2026-01-01 00:00 UTC",
        "commit": "abc1234", "machine": {"cpu": "test cpu", "cores": 2}, "model": "ConvNetW32", "ipc": 1,
        "syn_steps": 20, "rows": [{"processes": 1, "threads_per_process": "2", "seconds_per_iteration": 0.5,
                                   "iterations_per_s": 2.0, "segments_per_s": 2.0}]}))
    output = tmp_path / "RESULTS.md"
    subprocess.run([sys.executable, str(BENCH / "make_results.py"), "--results", str(results), "--output", str(output)],
                   check=True, capture_output=True)
    text = output.read_text()
    assert "`python benchmarks/distributed.py`" in text and "abc1234" in text and "| 1 | 2 | 0.500 |" in text
