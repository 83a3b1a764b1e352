"""The plugin platform: a third-party distribution written only against ``harness.api``, broken
plugins, plugin selection and tracing, lifecycle hooks and trackers, the import contract."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from mct_plugin.harness.io.metric_names import EVAL_MODELS, EVALUATION, PER_MODEL
from mct_plugin.harness.plugins.components import build_components
from mct_plugin.harness.plugins.manager import new_plugin_manager

from helpers import assert_one_line_error, distill_args, run_cli

ROOT = Path(__file__).resolve().parent.parent

THIRD_PARTY = textwrap.dedent('''
    """A third-party dd_harness plugin: it imports mct_plugin.harness.api and nothing else of the harness."""
    import json
    from dataclasses import dataclass
    from pathlib import Path
    from typing import ClassVar

    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    from mct_plugin.harness.api import (DatasetSpec, ModelSpec, PooledMatcher, RawSplits, Tracker,
                                        build_components, hookimpl, load_replay_buffer, option,
                                        replay_buffer_files)


    class TinyMLP(nn.Module):
        def __init__(self, channels, num_classes, image_size):
            super().__init__()
            self.hidden = nn.Linear(channels * image_size[0] * image_size[1], 32)
            self.out = nn.Linear(32, num_classes)

        def forward(self, x):
            return self.out(F.relu(self.hidden(x.flatten(1))))


    def small_fashion(data_path, download):
        """Fashion-MNIST at 14x14 (2x2 average), 1000 training and 500 test images."""
        raw = build_components().datasets.get("FashionMNIST").loader(data_path, download)  # the harness's spec
        def shrink(images, count):
            return F.avg_pool2d(images[:count].float(), 2).round().to(torch.uint8)
        return RawSplits(shrink(raw.train_images, 1000), raw.train_labels[:1000], shrink(raw.test_images, 500),
                         raw.test_labels[:500], raw.source + " (14x14)")


    class InterpolatingMatcher(PooledMatcher):
        """MTT's recorded checkpoints, linearly interpolated between epochs."""
        name = "interpolating"
        description = "third-party test matcher"
        default_sampler = "discrete"

        def sources(self, directory):
            load = lambda path: load_replay_buffer(path, self.model.shapes, self.model.names)
            return replay_buffer_files(directory), load, "buffer file(s)"

        def epochs_of(self, expert):
            return len(expert) - 1

        def point(self, trajectory, epoch):
            low = int(epoch)
            high = min(low + 1, len(trajectory) - 1)
            a = torch.cat([t.reshape(-1) for t in trajectory[low]])
            b = torch.cat([t.reshape(-1) for t in trajectory[high]])
            return torch.lerp(a, b, float(epoch) - low)


    @dataclass(frozen=True)
    class EventOptions:
        events_file: str = option("events.jsonl", "file name of the event log")


    class EventLog(Tracker):
        name = "eventlog"
        description = "every lifecycle event as a JSON line"
        Options = EventOptions

        def _write(self, **record):
            folder = Path(self.run.out) / "trackers"
            folder.mkdir(parents=True, exist_ok=True)
            with open(folder / self.options.events_file, "a") as handle:
                handle.write(json.dumps(record) + "\\n")

        @hookimpl
        def dd_run_start(self, run):
            self._write(event="start", command=run.command)

        @hookimpl
        def dd_iteration(self, run, row):
            self._write(event="iteration", iteration=row["iteration"], loss=row.get("loss"))

        @hookimpl
        def dd_evaluation(self, run, evaluation):
            self._write(event="evaluation", iteration=evaluation.iteration,
                        accuracy={m: r.mean for m, r in evaluation.results.items()})

        @hookimpl
        def dd_run_end(self, run, status, summary):
            self._write(event="end", status=status)


    @hookimpl
    def dd_register_matchers():
        return [InterpolatingMatcher]


    @hookimpl
    def dd_register_models():
        return [ModelSpec("TinyMLP", TinyMLP)]


    @hookimpl
    def dd_register_datasets():
        return [DatasetSpec("FashionMNIST14", 1, (14, 14), 10, (0.2861,), (0.3530,), small_fashion)]


    @hookimpl
    def dd_register_trackers():
        return [EventLog]


''')


def install_distribution(site: Path, name: str, module_source: str | None, entry_points: dict[str, str]) -> Path:
    """A test-local distribution: the module plus a ``.dist-info`` with entry points, on ``site``."""
    site.mkdir(parents=True, exist_ok=True)
    if module_source is not None:
        (site / f"{name}.py").write_text(module_source)
    info = site / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[dd_harness]\n" + "".join(f"{k} = {v}\n" for k, v in entry_points.items()))
    return site


def with_site(site: Path, **extra: str) -> dict:
    return {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]), "OMP_NUM_THREADS": "1",
            **extra}


@pytest.fixture(scope="module")
def third_party(tmp_path_factory):
    return install_distribution(tmp_path_factory.mktemp("site"), "thirdparty_plugin", THIRD_PARTY,
                                {"thirdparty": "thirdparty_plugin"})


def test_third_party_plugin_adds_matcher_model_dataset_and_tracker_and_distils(third_party, tmp_path):
    env = with_site(third_party)
    listing = run_cli("plugins", env=env)
    assert listing.returncode == 0, listing.stderr
    for kind, name in [("matcher", "interpolating"), ("tracker", "eventlog"), ("dataset", "FashionMNIST14")]:
        assert any(line.split()[:3] == [kind, name, "thirdparty_plugin"] for line in listing.stdout.splitlines()), kind
    assert "TinyMLP" in run_cli("models", "Tiny*", env=env).stdout
    buffers, out = tmp_path / "buffers", tmp_path / "run"
    experts = run_cli("experts", "--dataset", "FashionMNIST14", "--model", "TinyMLP", "--num-experts", "2",
                      "--train-epochs", "3", "--buffer-path", str(buffers), "--quiet", env=env)
    assert experts.returncode == 0, experts.stderr
    proc = run_cli(*distill_args("TinyMLP", dataset="FashionMNIST14", matcher="interpolating", buffer_path=buffers,
                                 out=out, iterations=4, eval_it=2, num_eval=1, epoch_eval_train=3, syn_steps=3,
                                 track="eventlog", events_file="log.jsonl"), env=env)
    assert proc.returncode == 0, proc.stderr
    assert torch.load(out / "images.pt", weights_only=True).shape == (10, 1, 14, 14)
    config = json.loads((out / "config.json").read_text())
    assert config["matcher"] == "interpolating" and config["plugin_options"]["events_file"] == "log.jsonl"
    events = [json.loads(line) for line in (out / "trackers" / "log.jsonl").read_text().splitlines()]
    assert events[0] == {"event": "start", "command": "distill"} and events[-1] == {"event": "end", "status": "finished"}
    assert [e["iteration"] for e in events if e["event"] == "iteration"] == [0, 1, 2, 3, 4]
    assert [e["iteration"] for e in events if e["event"] == "evaluation"] == [0, 2, 4]
    assert all(0 <= e["accuracy"]["TinyMLP"] <= 1 for e in events if e["event"] == "evaluation")


def test_a_broken_plugin_is_reported_in_one_line_and_the_rest_still_work(tmp_path, expert_root):
    site = install_distribution(tmp_path / "site", "broken_plugin", "raise ImportError('no module named quantum')\n",
                                {"broken": "broken_plugin"})
    install_distribution(site, "faulty_plugin", textwrap.dedent('''
        from mct_plugin.harness.api import hookimpl

        @hookimpl
        def dd_register_matchers():
            raise RuntimeError("database unreachable")
    '''), {"faulty": "faulty_plugin"})
    install_distribution(site, "typo_plugin", textwrap.dedent('''
        from mct_plugin.harness.api import hookimpl

        @hookimpl
        def dd_register_matcher():  # misspelt
            return []
    '''), {"typo": "typo_plugin"})
    env = with_site(site)
    listing = run_cli("plugins", env=env)
    assert listing.returncode == 0, listing.stderr
    warnings = [line for line in listing.stderr.splitlines() if line.startswith("dd-harness: warning:")]
    assert len(warnings) == 3, listing.stderr
    assert any("'broken' was skipped: loading failed (ImportError: no module named quantum)" in w for w in warnings)
    assert any("'faulty' was skipped: dd_register_matchers failed (RuntimeError: database unreachable)" in w
               for w in warnings)
    assert any("'typo' was skipped: validation failed (unknown hook(s) dd_register_matcher)" in w for w in warnings)
    assert "Traceback" not in listing.stderr
    assert any(line.split()[:2] == ["matcher", "mtt"] for line in listing.stdout.splitlines())
    out = tmp_path / "run"
    proc = run_cli(*distill_args("ConvNetW32", buffer_path=expert_root, out=out), env=env)
    assert proc.returncode == 0, proc.stderr
    assert (out / "images.pt").is_file()


def test_plugin_selection_autoload_switch_and_tracing():
    selected = build_components(new_plugin_manager(environ={"DD_HARNESS_PLUGINS": "mtt"}))
    assert selected.matchers.names() == ["mtt"] and "unrolled" in selected.gradient_modes
    none = build_components(new_plugin_manager(environ={"DD_HARNESS_DISABLE_PLUGIN_AUTOLOAD": "1"}))
    assert len(none.matchers) == 0 and "ConvNet" in none.models.names() and "FashionMNIST" in none.datasets
    traced = run_cli("models", "ConvNetW1*", env={"DD_HARNESS_TRACE_PLUGINS": "1"})
    assert traced.returncode == 0 and "dd_register_models" in traced.stderr and "ConvNetW16" in traced.stdout
    assert run_cli("models", "ConvNetW1*").stdout.splitlines() == ["ConvNetW16", "ConvNetW128"]  # natural order


def test_lifecycle_hooks_reach_an_inline_plugin_through_pm_hook(small_data, expert_root, tmp_path):
    from mct_plugin.harness.api import hookimpl
    from mct_plugin.harness.config import DistillConfig
    from mct_plugin.harness.distill import Distillation

    seen: list[tuple] = []

    class Listener:
        @hookimpl
        def dd_run_start(self, run):
            seen.append(("start", run.command, run.resumed))

        @hookimpl
        def dd_iteration(self, run, row):
            seen.append(("iteration", row["iteration"]))

        @hookimpl
        def dd_evaluation(self, run, evaluation):
            seen.append(("evaluation", evaluation.iteration, sorted(evaluation.results)))

        @hookimpl
        def dd_run_end(self, run, status, summary):
            seen.append(("end", status, round(summary["final_accuracy"], 6)))

    components = build_components()
    components.pm.register(Listener(), name="listener")
    config = DistillConfig(model="ConvNetW32", matcher="mtt", buffer_path=str(expert_root), out=str(tmp_path / "run"),
                           iterations=2, eval_it=2, num_eval=1, epoch_eval_train=2, syn_steps=2, expert_epochs=1,
                           max_start_epoch=2, eval_models=("ConvNetW16",), save_every_eval=True)
    result = Distillation(config, components=components, data=small_data, show_progress=False).run()
    assert seen[0] == ("start", "distill", False)
    assert seen[1] == ("evaluation", 0, ["ConvNetW16", "ConvNetW32"])
    assert [s for s in seen if s[0] == "iteration"] == [("iteration", 0), ("iteration", 1), ("iteration", 2)]
    assert seen[-1] == ("end", "finished", round(result.final_eval.mean, 6))
    row = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert set(row[EVAL_MODELS]) == {"ConvNetW16", "ConvNetW32"}
    assert row[EVAL_MODELS]["ConvNetW32"][PER_MODEL.accuracies] == row[EVALUATION.accuracies]
    snapshots = sorted(p.name for p in (tmp_path / "run" / "snapshots").iterdir())
    assert snapshots == ["images_0.pt", "images_2.pt", "labels_0.pt", "labels_2.pt", "lr_0.pt", "lr_2.pt"]


def test_tensorboard_event_files_hold_the_loss_and_accuracy_rows(expert_root, tmp_path, mini_fmnist_dir):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    proc = run_cli(*distill_args("ConvNetW32", matcher="mct", buffer_path=expert_root, data_path=mini_fmnist_dir,
                                 out=out, iterations=3, eval_it=3, num_eval=1, epoch_eval_train=2, track="tensorboard"))
    assert proc.returncode == 0, proc.stderr
    events = EventAccumulator(str(out / "trackers" / "tensorboard"), size_guidance={"histograms": 0, "images": 0})
    events.Reload()
    losses = [e.value for e in events.Scalars("Grand_Loss")]
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert losses == pytest.approx([m["loss"] for m in metrics if "loss" in m], rel=1e-6)
    accuracy = events.Scalars("Accuracy/ConvNetW32")
    assert [e.step for e in accuracy] == [0, 3] and accuracy[-1].value == pytest.approx(metrics[-1][EVALUATION.mean])
    alpha = events.Scalars("Synthetic_LR")
    assert [e.step for e in alpha] == [0, 1, 2] and alpha[0].value == pytest.approx(0.01)  # before its first update
    assert [e.value for e in alpha] == pytest.approx([m["alpha_used"] for m in metrics if "loss" in m])
    # what the public MTT code logs besides: the best evaluation's std, pixel histograms, upsampled and clipped grids
    best, best_std = None, []
    for m in (m for m in metrics if EVALUATION.mean in m):
        best = (m[EVALUATION.mean], m[EVALUATION.std]) if best is None or m[EVALUATION.mean] > best[0] else best
        best_std.append(best[1])
    assert [e.value for e in events.Scalars("Max_Std/ConvNetW32")] == pytest.approx(best_std)
    final = torch.load(out / "images.pt", weights_only=True)
    assert events.Scalars("Pixels/Max_Channel_Std")[-1].value == pytest.approx(float(final.flatten().std()), rel=1e-5)
    histogram = events.Histograms("Pixels")
    assert [e.step for e in histogram] == [0, 3] and histogram[-1].histogram_value.num == final.numel()
    assert histogram[-1].histogram_value.max == pytest.approx(float(final.max()))
    for tag in ("Synthetic_Images", "Clipped_Synthetic_Images/std_2.5"):
        grid = events.Images(tag)[-1]  # 10 images of 28 px, drawn 5x with a 1-px frame: 10 x 142 by 1 x 142
        assert (grid.width, grid.height) == (10 * 142, 142)
    protocol = events.Tensors("Evaluation_Protocol/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "networks: 1" in protocol and "epochs: 2" in protocol and "lr: the learned alpha" in protocol


def test_wandb_offline_run_holds_the_loss_and_accuracy_rows(expert_root, tmp_path, mini_fmnist_dir):
    pytest.importorskip("wandb")
    out = tmp_path / "run"
    proc = run_cli(*distill_args("ConvNetW32", buffer_path=expert_root, data_path=mini_fmnist_dir, out=out,
                                 iterations=3, eval_it=3, num_eval=1, epoch_eval_train=2, track="wandb",
                                 wandb_mode="offline", wandb_project="tests"),
                   env={"WANDB_SILENT": "true", "WANDB_DISABLE_GIT": "true"}, timeout=600)
    assert proc.returncode == 0, proc.stderr
    runs = list((out / "trackers" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    history = {row["_step"]: row for row in _offline_history(next(runs[0].glob("*.wandb")))}
    assert sorted(step for step, row in history.items() if "Grand_Loss" in row) == [0, 1, 2]
    assert [history[m["iteration"]]["Grand_Loss"] for m in metrics if "loss" in m] == \
        pytest.approx([m["loss"] for m in metrics if "loss" in m])
    assert [history[m["iteration"]]["Synthetic_LR"] for m in metrics if "alpha" in m] == \
        pytest.approx([m["alpha_used"] for m in metrics if "alpha" in m])  # the alpha each iteration used
    assert sorted(step for step, row in history.items() if "Accuracy/ConvNetW32" in row) == [0, 3]
    assert history[3]["Accuracy/ConvNetW32"] == pytest.approx(metrics[-1][EVALUATION.mean])
    assert history[3]["Synthetic_Images/_type"] == "image-file"
    assert history[3]["Clipped_Synthetic_Images/std_2.5/_type"] == "image-file"
    assert history[3]["Pixels/_type"] == "histogram" and "Max_Std/ConvNetW32" in history[3]


def _offline_history(path: Path) -> list[dict]:
    """The history rows of an offline ``.wandb`` file: a LevelDB-style log (7-byte file header, 32 KiB
    blocks of records with a 7-byte header: crc32, length, type FULL/FIRST/MIDDLE/LAST) of wandb
    ``Record`` protobufs, decoded with wandb's own protobuf classes."""
    import struct

    from wandb.proto import wandb_internal_pb2

    data, block, position = path.read_bytes(), 32768, 7
    assert data[:4] == b":W&B"
    records, pending = [], b""
    while position + 7 <= len(data):
        space = block - position % block
        if space < 7:
            position += space
            continue
        _, length, kind = struct.unpack("<IHB", data[position:position + 7])
        if length == 0 and kind == 0:  # zero padding up to the next block
            position += space
            continue
        pending += data[position + 7:position + 7 + length]
        position += 7 + length
        if kind in (1, 4):  # FULL or LAST
            records.append(pending)
            pending = b""
    rows = []
    for raw in records:
        record = wandb_internal_pb2.Record()
        record.ParseFromString(raw)
        if record.WhichOneof("record_type") == "history":
            rows.append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                         for item in record.history.item})
    return rows


def test_eval_uses_the_runs_augmentation_strategy(tmp_path, expert_root, mini_fmnist_dir):
    from mct_plugin.harness.config import DistillConfig, EvalCommandConfig
    from mct_plugin.harness.eval.table import run_protocol

    out = tmp_path / "run"
    proc = run_cli(*distill_args("ConvNetW32", buffer_path=expert_root, data_path=mini_fmnist_dir, out=out,
                                 iterations=1, dsa_strategy="flip", epoch_eval_train=7))
    assert proc.returncode == 0, proc.stderr
    saved = DistillConfig.from_dict(json.loads((out / "config.json").read_text()))
    protocol = run_protocol(saved, EvalCommandConfig(num_eval=2))
    assert protocol.dsa_strategy == "flip" and protocol.epoch_eval_train == 7 and protocol.num_eval == 2
    # the eval command trains with that strategy: an unknown strategy in config.json reaches the augmentation
    edited = json.loads((out / "config.json").read_text())
    edited["dsa_strategy"] = "flip_blur"
    (out / "config.json").write_text(json.dumps(edited))
    assert_one_line_error(run_cli("eval", "--run", str(out), "--num-eval", "1", "--epoch-eval-train", "1"),
                          "unknown DSA family ['blur']")


@pytest.fixture
def linted_copy(tmp_path):
    """A copy of the package and setup.cfg, and a function that runs lint-imports on it."""
    pytest.importorskip("importlinter")
    linter = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    copy = tmp_path / "src"
    shutil.copytree(ROOT / "mct_plugin", copy / "mct_plugin", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "setup.cfg", copy / "setup.cfg")
    env = {**os.environ, "PYTHONPATH": str(copy)}

    def lint() -> subprocess.CompletedProcess:
        return subprocess.run([linter, "setup.cfg", "--no-cache"], cwd=copy, env=env, capture_output=True, text=True,
                              timeout=300)

    return copy / "mct_plugin", lint


def test_import_contracts_hold_and_a_plugin_importing_past_the_api_breaks_one(linted_copy):
    package, lint = linted_copy
    clean = lint()
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "Contracts: 3 kept, 0 broken" in clean.stdout
    sampler = package / "mct" / "sampler.py"
    sampler.write_text(sampler.read_text().replace("import torch\n", "import torch\n\nfrom mct_plugin.harness.errors "
                                                                    "import ConfigError  # noqa\n", 1))
    broken = lint()
    assert broken.returncode != 0
    assert "mct_plugin.mct.sampler -> mct_plugin.harness.errors" in broken.stdout


def test_a_low_layer_importing_a_high_one_breaks_the_layers_contract(linted_copy):
    """The registries sit at the bottom: a lookup through the plugin layer, even a lazy import inside
    a function, is an import upwards."""
    package, lint = linted_copy
    registry = package / "harness" / "_registry.py"
    registry.write_text(registry.read_text() + "\n\ndef installed():\n"
                        "    from .plugins.components import build_components  # noqa\n\n"
                        "    return build_components()\n")
    broken = lint()
    assert broken.returncode != 0
    assert "The harness's layers: a module imports only from layers below its own BROKEN" in broken.stdout
    assert "mct_plugin.harness._registry -> mct_plugin.harness.plugins.components" in broken.stdout
