"""Parity with the public code, powered (``vs_public.py --accuracy``; issue 20).

Whole distillations side by side on the MCT study's experts (``studies/mct-ipc1.yaml``: ConvNetW32,
10 experts x 30 epochs on Fashion-MNIST, its experts job), the same hyper-parameters and budget for
both programs (the recipe ``mtt/fashionmnist-ipc1``: ipc=1, syn_steps 20, expert_epochs 2,
max_start_epoch 10, lr_img 1000, lr_lr 1e-5, lr_teacher 0.01, 300 iterations):

* MTT: the public ``distill.py`` against ``--matcher mtt --gradient-mode unrolled``;
* the official MCT recipe: the public ``exps/trajectory_compression.py --num_interpolation 4`` then
  ``distill_compressed.py`` against ``--matcher mct`` with what the public code computes (P=4,
  public spacing and smoothing, the first-order gradient).

``--seeds N`` runs per program (default 8; the public code cannot be seeded, its runs are
repetitions; ours use seeds 0..N-1). Only the **final** set of each run is evaluated, twice, so that
neither evaluator favours its own program: by our evaluation (5 networks x 300 epochs, network
seeds from the run index, as the study) and by the public ``utils.evaluate_synset`` run unmodified
through the launcher (as many networks and epochs, DSA on as in the public distillation; the
public code seeds its networks from the clock). Reported per method and evaluator: ours - public
with a 95% Welch interval (Welch-Satterthwaite degrees of freedom), seconds per iteration and peak
RSS of every run, a per-run scatter (``results/parity.png``) and ``results/parity.json``.

``--swap dsa,init,...`` (the ablation): the public program with one of our components in place of
its own (:mod:`benchmarks.public_swaps` says what each swap does), ``--swap-runs`` runs each
(default 4), judged by both evaluators; compared with the public and with our runs.

Every finished step (a run's final set, each of its evaluations) is cached under the parity cache
(``--cache``; default the user cache's ``benchmarks/parity_cpu``), so the same command continues
an interrupted part; ``--hours`` starts no new step after that many hours (a step takes minutes).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ._common import (ROOT, components, evaluation_record, output_dir, provenance, run_workload, save_figure,
                      write_json)
from .public_swaps import SWAP_NAMES, SwapSpec
from mct_plugin.harness.study.stats import mean, welch_interval

PROGRAMS = ("public", "ours")
EVALUATORS = ("ours_eval", "public_eval")
PUBLIC_SCRIPTS = {"mtt": "distill.py", "mct": "distill_compressed.py"}
COMPRESSION = "exps/trajectory_compression.py"
# What the public programs compute: MTT's exact gradient; MCT's first-order gradient on P=4 waypoints at
# the public spacing with its smoothing (explicit, as our MCT default is the exact gradient).
SAME_METHOD = {"mtt": ["--gradient-mode", "unrolled"],
               "mct": ["--gradient-mode", "first-order", "--waypoints", "4", "--waypoint-spacing", "public",
                       "--smooth", "public"]}
TARGET_POINTS = 1.0  # |ours - public| <= 1 point, or above ...
TARGET_HALF_WIDTH = 1.5  # ... with a 95% interval of half-width <= 1.5 points


HYPER_PARAMETERS = ("iterations", "syn_steps", "expert_epochs", "max_start_epoch", "lr_img", "lr_lr", "lr_teacher")
MCT_STUDY = Path(__file__).resolve().parent / "studies" / "mct-ipc1.yaml"


@dataclass(frozen=True)
class ParitySettings:
    """The protocol: the hyper-parameters and budget shared by both programs, the evaluation, the
    experts (``dd-harness experts`` options; ``None``: the MCT study's experts job)."""

    name: str
    plan: dict
    experts: dict | None = None
    ipc: int = 1
    num_eval: int = 5
    epoch_eval_train: int = 300
    test_subset: int | None = None

    def record(self) -> dict:
        """The settings as the JSON holds them (the plan's hyper-parameters, flat)."""
        return {"name": self.name, "ipc": self.ipc, **self.plan, "num_eval": self.num_eval,
                "epoch_eval_train": self.epoch_eval_train}


def study_plan() -> dict:
    """The MCT study's ipc=1 plan: the hyper-parameters of the recipe its arms start from."""
    options = components().recipes.get("mtt/fashionmnist-ipc1").options
    return {name: options[name] for name in HYPER_PARAMETERS}


SETTINGS = {  # only the final set is evaluated
    "cpu": ParitySettings("cpu", plan=study_plan()),
    # tiny experts: ConvNetW32 (a model the public code knows), 2 x 5 epochs (the public P=4 spacing
    # then gives 4 waypoints), 1000 images; a 500-image test subset for our evaluation
    "quick": ParitySettings("quick", num_eval=1, epoch_eval_train=2, test_subset=500,
                            plan={"iterations": 2, "syn_steps": 2, "expert_epochs": 1, "max_start_epoch": 2,
                                  "lr_img": 1000.0, "lr_lr": 1e-5, "lr_teacher": 0.01},
                            experts={"dataset": "FashionMNIST", "model": "ConvNetW32", "num_experts": 2,
                                     "train_epochs": 5, "subset": 1000}),
}


def experts_job(settings: ParitySettings, root: Path):
    """The ``dd-harness experts`` job that trains the experts: the MCT study's (shared with it), or
    the quick experts' under ``root``."""
    from mct_plugin.harness.config import ExpertConfig
    from mct_plugin.harness.study.jobs import Job
    from mct_plugin.harness.study.runner import Study

    if settings.experts is None:
        return next(job for job in Study.from_file(MCT_STUDY, components()).jobs() if job.kind == "experts")
    folder = root / "experts"
    options = ExpertConfig(**settings.experts, buffer_path=str(folder / "buffers")).to_dict()
    return Job("experts", "quick", folder, json.loads(json.dumps(options)))


def ensure_experts(job, log: Callable[[str], None]) -> Path:
    """Run the experts job unless its records count its experts already; return its buffer root."""
    from mct_plugin.harness.io.atomic import atomic_write_json
    from mct_plugin.harness.study.state import experts_done

    if not experts_done(job):
        log(f"training the experts: {' '.join(job.command(resume=False))}")
        job.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_json(job.options_file, dict(job.options))
        subprocess.run(job.command(resume=False), check=True, cwd=ROOT)
    return job.run_dir


@dataclass
class Parity:
    """One parity measurement: the settings, the public checkouts, the cache and the clock."""

    settings: ParitySettings
    repos: dict[str, Path]  # method -> checkout of the public code
    root: Path
    deadline: float
    log: Callable[[str], None]
    quick: bool = False

    def __post_init__(self) -> None:
        from mct_plugin.harness.data import load_dataset

        job = experts_job(self.settings, self.root)
        self.experts = job.options
        self.buffers = ensure_experts(job, self.log)
        data = load_dataset(components().datasets.get(self.experts["dataset"]))
        if self.settings.test_subset:
            data = dataclasses.replace(data, test_images=data.test_images[:self.settings.test_subset],
                                       test_labels=data.test_labels[:self.settings.test_subset])
        self.data = data
        self.model = self.experts["model"]
        self.num_epochs = self.experts["train_epochs"]

    # -- shared inputs of the public code -------------------------------------------------------
    def data_root(self) -> Path:
        from .vs_public import fashion_mnist_root

        root = self.root / "data"
        if not (root / "READY").exists():
            fashion_mnist_root(root)
            (root / "READY").write_text("")
        return root

    def public_buffers(self, method: str) -> Path:
        """A copy of the experts for the public code (it writes its compressed files next to
        them); for MCT with the public compression done once."""
        from .vs_public import launch_public

        root = self.root / "public_buffers"
        folder = root / "FashionMNIST" / self.model
        if not (root / "COPIED").exists():
            folder.mkdir(parents=True, exist_ok=True)
            for path in sorted((self.buffers / "FashionMNIST" / self.model).glob("replay_buffer_*.pt")):
                shutil.copy(path, folder / path.name)
            (root / "COPIED").write_text("")
        if method == "mct" and not (root / "COMPRESSED").exists():
            self.log(f"public MCT: compressing the trajectories ({COMPRESSION} --num_interpolation 4)")
            launch_public(self.repos["mct"], COMPRESSION, self.settings.ipc,
                          self.common_args(root) + ["--num_interpolation", "4"])
            (root / "COMPRESSED").write_text("")
        return root

    def common_args(self, buffers: Path) -> list[str]:
        return ["--dataset", "FashionMNIST", "--model", self.model, "--buffer_path", str(buffers), "--data_path",
                str(self.data_root())]

    # -- runs ------------------------------------------------------------------------------------
    def run_folder(self, method: str, program: str, index: int) -> Path:
        return self.root / method / program / f"run{index}"

    def public_distillation(self, method: str, index: int, folder: Path, swap: str | None) -> dict:
        """The public script's final set (its evaluation points captured, only the last one kept)."""
        from .vs_public import launch_public

        s = self.settings
        script = PUBLIC_SCRIPTS[method]
        args = self.common_args(self.public_buffers(method)) + [
            "--ipc", str(s.ipc), *hyper_parameter_flags(s.plan, "_"), "--Iteration", str(s.plan["iterations"]),
            "--eval_it", str(s.plan["iterations"]), "--num_eval", "1"]
        capture = folder / "capture"
        shutil.rmtree(capture, ignore_errors=True)
        capture.mkdir(parents=True)
        env = {"DD_CAPTURE_DIR": str(capture)}
        if swap:
            spec = SwapSpec((swap,), str(self.repos[method] / script), index, method, s.plan["max_start_epoch"],
                            s.plan["expert_epochs"], s.plan["iterations"], s.plan["lr_teacher"], self.num_epochs,
                            init_images=str(self.our_initial_images(method, index)) if swap == "init" else None)
            env["DD_SWAP_SPEC"] = str(spec.to_json(folder / "swap.json"))
        result = launch_public(self.repos[method], script, s.ipc, args, env=env)
        final = torch_load(result["captured"][-1])  # the set at iteration s.plan["iterations"]
        losses = [row["Grand_Loss"] for row in result["logged"] if "Grand_Loss" in row]
        record = {"seconds_per_iteration": statistics.median(result["seconds"]), "peak_rss_mb": result["peak_rss_mb"],
                  "loss": losses[:s.plan["iterations"]], "swap_calls": result.get("swap_calls", {})}
        shutil.rmtree(capture)
        return {"set": final, "record": record}

    def our_arguments(self, method: str, index: int, out: Path) -> list[str]:
        s = self.settings
        return ["--matcher", method, *SAME_METHOD[method], "--model", self.model, "--buffer-path", str(self.buffers),
                "--out", str(out), "--overwrite", "--seed", str(index), "--ipc", str(s.ipc),
                *hyper_parameter_flags(s.plan, "-"), "--iterations", str(s.plan["iterations"]), "--eval-it", "0"]

    def our_distillation(self, method: str, index: int, folder: Path) -> dict:
        from mct_plugin.harness.eval.saved_set import load_synthetic

        out = folder / "run"
        result = run_workload("distill_command", *self.our_arguments(method, index, out), in_process=self.quick)
        rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        images, labels, lr = load_synthetic(out)
        record = {"seconds_per_iteration": statistics.median(r["seconds"] for r in rows if "seconds" in r),
                  "peak_rss_mb": result["peak_rss_mb"], "loss": [r["loss"] for r in rows if "loss" in r]}
        shutil.rmtree(out)
        return {"set": {"images": images, "labels": labels, "lr": lr}, "record": record}

    def our_initial_images(self, method: str, index: int) -> Path:
        """The images our run ``index`` starts from (for the init swap), as that run builds them."""
        path = self.root / "init" / f"{method}_seed{index}.pt"
        if not path.exists():
            out = self.root / "init" / f"{method}_seed{index}_run"
            run_workload("initial_images", str(path), *self.our_arguments(method, index, out), in_process=self.quick)
            shutil.rmtree(out)
        return path

    def ensure_set(self, method: str, program: str, index: int) -> Path | None:
        """The run's final set (cached); None when the part's time is spent."""
        from mct_plugin.harness.io.atomic import atomic_torch_save

        folder = self.run_folder(method, program, index)
        path = folder / "set.pt"
        if path.exists():
            return path
        if time.time() >= self.deadline:
            return None
        folder.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        if program == "ours":
            made = self.our_distillation(method, index, folder)
        else:
            made = self.public_distillation(method, index, folder, program.partition("+")[2] or None)
        write_json(folder / "run.json", {**made["record"], "seconds": time.perf_counter() - started})
        atomic_torch_save({"images": made["set"]["images"].detach().cpu(), "labels": made["set"]["labels"].cpu(),
                           "lr": float(made["set"]["lr"])}, path)
        return path

    def ensure_evaluation(self, method: str, program: str, index: int, evaluator: str) -> dict | None:
        from .vs_public import launch_public

        folder = self.run_folder(method, program, index)
        path = folder / f"{evaluator}.json"
        if path.exists():
            return json.loads(path.read_text())
        set_path = self.ensure_set(method, program, index)
        if set_path is None or time.time() >= self.deadline:
            return None
        s = self.settings
        if evaluator == "ours_eval":
            saved = torch_load(set_path)
            record = evaluation_record(saved["images"], saved["labels"], saved["lr"], self.data, self.model,
                                       s.num_eval, s.epoch_eval_train, index)
        else:
            result = launch_public(self.repos[method], "evaluate_synset", s.ipc, [
                "--set", str(set_path), "--model", self.model, "--num_eval", str(s.num_eval), "--epoch_eval_train",
                str(s.epoch_eval_train), "--data_path", str(self.data_root())])
            record = {"model": self.model, "num_eval": s.num_eval, "epochs": s.epoch_eval_train, "accs": result["accs"],
                      "mean": mean(result["accs"]), "std": statistics.pstdev(result["accs"]),
                      "seconds": result["seconds"], "peak_rss_mb": result["peak_rss_mb"]}
        write_json(path, record)
        self.log(f"{method} {program} run {index}: {evaluator} {100 * record['mean']:.2f}%")
        return record

    def run(self, methods: list[str], runs: int, swaps: list[str], swap_runs: int) -> bool:
        """Every step in run-index order (each program has a k-th run before any has a (k+1)-th);
        returns whether all are done."""
        complete = True
        for index in range(max(runs, swap_runs if swaps else 0)):
            for method in methods:
                programs = [*(PROGRAMS if index < runs else ()), *(f"public+{s}" for s in swaps if index < swap_runs)]
                for program in programs:
                    for evaluator in EVALUATORS:
                        complete = self.ensure_evaluation(method, program, index, evaluator) is not None and complete
        return complete

    # -- results ---------------------------------------------------------------------------------
    def finished_runs(self, method: str, program: str) -> list[dict]:
        """The runs with both evaluations, in index order: their records and accuracies (in %)."""
        runs = []
        folder = self.root / method / program
        for run in sorted(folder.glob("run*"), key=lambda p: int(p.name[3:])) if folder.exists() else []:
            files = {e: run / f"{e}.json" for e in EVALUATORS}
            if all(f.exists() for f in files.values()):
                evaluations = {e: json.loads(f.read_text()) for e, f in files.items()}
                record = json.loads((run / "run.json").read_text())
                runs.append({"run": int(run.name[3:]), **{k: v for k, v in record.items() if k != "loss"},
                             "loss": record.get("loss", []),
                             **{e: {"accs": evaluations[e]["accs"], "mean": 100 * evaluations[e]["mean"]}
                                for e in EVALUATORS}})
        return runs

    def payload(self, methods: list[str], swaps: list[str]) -> dict:
        s = self.settings
        result = {"benchmark": "parity", "ipc": s.ipc, "quick": self.quick, **provenance(),
                  "settings": s.record(), "model": self.model,
                  "experts": f"{self.experts['num_experts']} x {self.num_epochs} epochs on "
                             f"{self.experts['subset']} images ({self.buffers})",
                  "public_code": {m: code_digest(self.repos[m]) for m in methods},
                  "methods": {}, "differences": {}, "runs": {}, "ablation": {}}
        for method in methods:
            runs = {program: self.finished_runs(method, program) for program in PROGRAMS}
            result["methods"][method] = {program: {e: [r[e]["mean"] for r in runs[program]] for e in EVALUATORS}
                                         for program in PROGRAMS}
            result["runs"][method] = runs
            result["differences"][method] = {
                e: judged(welch_interval(result["methods"][method]["ours"][e], result["methods"][method]["public"][e]))
                for e in EVALUATORS}
            for swap in swaps:
                swapped = self.finished_runs(method, f"public+{swap}")
                values = {e: [r[e]["mean"] for r in swapped] for e in EVALUATORS}
                result["ablation"].setdefault(method, {})[swap] = {
                    **values, "runs": swapped,
                    "swapped_minus_public": {e: welch_interval(values[e], result["methods"][method]["public"][e])
                                             for e in EVALUATORS},
                    "ours_minus_swapped": {e: welch_interval(result["methods"][method]["ours"][e], values[e])
                                           for e in EVALUATORS}}
        return result


def hyper_parameter_flags(plan: dict, separator: str) -> list[str]:
    """The plan's hyper-parameters as command-line flags: ``--syn_steps 20 ...`` (the public scripts,
    ``separator="_"``) or ``--syn-steps 20 ...`` (ours, ``"-"``)."""
    names = ("syn_steps", "expert_epochs", "max_start_epoch", "lr_img", "lr_lr", "lr_teacher")
    return [item for name in names for item in (f"--{name.replace('_', separator)}", str(plan[name]))]


def judged(interval: dict) -> dict:
    """The Welch interval with the issue's target: |ours - public| <= 1 point or ours above, with a
    95% interval of half-width <= 1.5 points."""
    if interval["low"] is None:
        return {**interval, "half_width": None, "target_met": None}
    half = (interval["high"] - interval["low"]) / 2
    return {**interval, "half_width": half,
            "target_met": half <= TARGET_HALF_WIDTH and interval["difference"] >= -TARGET_POINTS}


def torch_load(path):
    import torch

    return torch.load(path, weights_only=True)


def code_digest(repo: Path) -> dict:
    """sha256 (first 12 hex digits) of the public files that ran: which code, without a local path."""
    names = ["distill.py", "utils.py", "networks.py", "distill_compressed.py", COMPRESSION]
    return {name: hashlib.sha256((repo / name).read_bytes()).hexdigest()[:12] for name in names
            if (repo / name).is_file()}


def plot(payload: dict, path: Path) -> None:
    """Per method: every run's final accuracy by program (x), both evaluators (colour)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(payload["methods"])
    fig, axes = plt.subplots(1, len(methods), figsize=(6.5 * len(methods), 4.6), squeeze=False)
    colours = {"ours_eval": "tab:red", "public_eval": "tab:blue"}
    for ax, method in zip(axes[0], methods):
        columns = {"public": payload["methods"][method]["public"]}
        for swap, values in payload["ablation"].get(method, {}).items():
            columns[f"public +\nour {swap}"] = {e: values[e] for e in EVALUATORS}
        columns["ours"] = payload["methods"][method]["ours"]
        for x, (label, values) in enumerate(columns.items()):
            for shift, evaluator in ((-0.12, "ours_eval"), (0.12, "public_eval")):
                ys = values[evaluator]
                if not ys:
                    continue
                xs = [x + shift + 0.04 * ((i % 5) - 2) for i in range(len(ys))]
                ax.scatter(xs, ys, s=16, color=colours[evaluator], alpha=0.75,
                           label=f"{evaluator.replace('_eval', '')} evaluation" if x == 0 else None)
                ax.hlines(mean(ys), x + shift - 0.1, x + shift + 0.1, color=colours[evaluator], lw=2)
        ax.set_xticks(range(len(columns)), list(columns), fontsize=8)
        differences = payload["differences"][method]
        title = [f"{method.upper()}: final accuracy per run"]
        for evaluator, d in differences.items():
            if d["low"] is not None:
                title.append(f"ours - public ({evaluator.replace('_eval', '')} eval.): {d['difference']:+.2f} "
                             f"[{d['low']:+.2f}, {d['high']:+.2f}]")
        ax.set_title("\n".join(title), fontsize=8)
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    save_figure(fig, path)


def measure(repos: dict[str, Path], methods: list[str], runs: int, swaps: list[str], swap_runs: int, hours: float,
            quick: bool, cache: str | None, out: str | None, log: Callable[[str], None]) -> dict:
    """Run (or continue) the parity and the ablation; write parity.json and parity.png."""
    from mct_plugin.harness.io.paths import cache_dir

    settings = SETTINGS["quick" if quick else "cpu"]
    root = Path(cache) if cache else cache_dir() / "benchmarks" / f"parity_{settings.name}"
    root.mkdir(parents=True, exist_ok=True)
    unknown = [s for s in swaps if s not in SWAP_NAMES]
    if unknown:
        raise ValueError(f"unknown swap(s) {', '.join(unknown)}; known: {', '.join(SWAP_NAMES)}")
    parity = Parity(settings, repos, root, time.time() + 3600 * hours, log, quick)
    complete = parity.run(methods, runs, swaps, swap_runs)
    payload = parity.payload(methods, swaps)
    payload["complete"] = complete
    name = "parity_quick" if quick else "parity"
    write_json(output_dir(out) / f"{name}.json", payload)
    plot(payload, output_dir(out) / f"{name}.png")
    for method, differences in payload["differences"].items():
        for evaluator, d in differences.items():
            if d["low"] is not None:
                log(f"{method} ours - public ({evaluator}): {d['difference']:+.2f} [{d['low']:+.2f}, {d['high']:+.2f}] "
                    f"points, {d['n'][0]} vs {d['n'][1]} runs")
    if not complete:
        log("not finished (the time budget is spent): run the same command again to continue")
    log(f"wrote {output_dir(out) / f'{name}.json'}")
    return payload

