"""RESULTS.md sections of the accuracy measurements of issue 20, built from their JSON files:
parity with the public code and its ablation (``parity.json``), the long horizon
(``long_horizon.json``) and cross-architecture on the long-horizon sets (``cross_arch.json``).

Every figure is in % (accuracies) or points (differences), as the JSON files hold them.
"""

from __future__ import annotations

from .make_results import provenance, table
from .public_swaps import SWAP_NAMES
from mct_plugin.harness.study.stats import mean, pstdev

EVALUATOR_NAMES = {"ours_eval": "our evaluation", "public_eval": "public evaluate_synset"}
SWAP_SUMMARY = {  # one line per swap (benchmarks/public_swaps.py says it in full)
    "dsa": "our DSA (sampling and application) instead of the public DiffAugment",
    "init": "the real images our run of the same seed starts from",
    "segment": "start epochs drawn by our sampler (discrete / continuous)",
    "minibatch": "the minibatch order drawn by our schedule",
    "optimizer": "our alpha handling (floor at 1e-3 x lr_teacher) on the public SGD updates",
    "expert-order": "the file and expert shuffles drawn as our ExpertPool draws them",
}
assert set(SWAP_SUMMARY) == set(SWAP_NAMES)


def spread(values: list[float | None]) -> str:
    """mean +- population std of the values that exist, and how many."""
    present = [v for v in values if v is not None]
    if not present:
        return "-"
    return f"{mean(present):.2f} ± {pstdev(present):.2f} (n={len(present)})"


def interval(d: dict | None, key: str = "mean") -> str:
    if not d or d.get("low") is None:
        return "-" if not d or d.get(key) is None else f"{d[key]:+.2f}"
    return f"{d[key]:+.2f} [{d['low']:+.2f}, {d['high']:+.2f}]"


def parity_section(data: dict) -> list[str]:
    st = data["settings"]
    out = ["## Parity with the public code, powered (`vs_public.py --accuracy`)", ""] + provenance(data)
    out += [f"The MCT study's experts ({data['model']}, {data['experts']}), ipc={st['ipc']}, syn_steps "
            f"{st['syn_steps']}, expert_epochs {st['expert_epochs']}, max_start_epoch {st['max_start_epoch']}, lr_img "
            f"{st['lr_img']:g}, lr_lr {st['lr_lr']:g}, lr_teacher {st['lr_teacher']:g}, {st['iterations']} iterations, "
            "the same for both programs. MTT: the public `distill.py` against `--matcher mtt --gradient-mode unrolled`; "
            "MCT: the public `exps/trajectory_compression.py --num_interpolation 4` + `distill_compressed.py` against "
            "`--matcher mct` with the public method (P=4, public spacing and smoothing, first-order gradient). Only "
            "each run's final set is evaluated, by our evaluation and by the public `evaluate_synset` (unmodified, "
            f"through the launcher), each {st['num_eval']} networks x {st['epoch_eval_train']} epochs (the public "
            "protocol trains 1000). The public code cannot be seeded: its runs are repetitions. Difference: ours - "
            "public, 95% Welch interval (Welch-Satterthwaite df); target: |difference| <= 1 point or ours above, with "
            "a half-width <= 1.5 points." + ("" if data.get("complete", True) else
                                             " **Not finished**: the runs finished so far."), ""]
    rows = []
    for method, programs in data["methods"].items():
        runs = data["runs"][method]
        for evaluator in EVALUATOR_NAMES:
            d = data["differences"][method][evaluator]
            met = {True: "met", False: "missed", None: "-"}[d.get("target_met")] if data.get("complete", True) \
                else "pending (unfinished)"
            rows.append([method.upper(), EVALUATOR_NAMES[evaluator], spread(programs["public"][evaluator]),
                         spread(programs["ours"][evaluator]), interval(d, "difference"),
                         "-" if d.get("df") is None else f"{d['df']:.1f}", met])
        seconds = {p: [r["seconds_per_iteration"] for r in runs[p]] for p in ("public", "ours")}
        peaks = {p: [r["peak_rss_mb"] / 1024 for r in runs[p]] for p in ("public", "ours")}
        if seconds["public"] and seconds["ours"]:
            rows.append([method.upper(), "s / it, peak RSS (GB)",
                         f"{mean(seconds['public']):.2f} s, {max(peaks['public']):.2f}",
                         f"{mean(seconds['ours']):.2f} s, {max(peaks['ours']):.2f}", "", "", ""])
    out += table(["method", "judged by", "public (%)", "ours (%)", "ours - public, 95% Welch (pts)", "df",
                  "target"], rows)
    out += ["![final accuracy per run, both programs and evaluators](results/parity.png)", ""]
    return out + ablation_section(data)


def ablation_section(data: dict) -> list[str]:
    ablation = data.get("ablation") or {}
    if not any(ablation.values()):
        return []
    out = ["### Ablation: the public program with one of our components (`vs_public.py --accuracy --swap ...`)", "",
           "Each row runs the public program with one component replaced by ours through an adapter of the launcher "
           "(`benchmarks/public_swaps.py`; the public files are not edited), the same protocol and evaluators as "
           "above. A swap that moves the public program's accuracy to ours (swapped - public negative, ours - "
           "swapped near 0) names the component behind a gap; one that changes nothing rules it out.", ""]
    rows = []
    for method, swaps in ablation.items():
        for swap, result in swaps.items():
            for evaluator in EVALUATOR_NAMES:
                rows.append([method.upper(), swap, SWAP_SUMMARY.get(swap, ""), EVALUATOR_NAMES[evaluator],
                             spread(result[evaluator]), interval(result["swapped_minus_public"][evaluator], "difference"),
                             interval(result["ours_minus_swapped"][evaluator], "difference")])
    return out + table(["method", "swap", "what is ours", "judged by", "public + swap (%)",
                        "swapped - public (pts)", "ours - swapped (pts)"], rows)


def long_horizon_section(data: dict) -> list[str]:
    epochs = data["reeval_epochs"]
    study = data["study"]
    plan = study["plan"]
    out = [f"## The long horizon: MTT against the default MCT over {data['iterations']} iterations "
           "(`long_horizon.py`)", ""] + provenance(data)
    out += [f"Fashion-MNIST, {study['model']}, the MCT study's experts ({study['experts']}) and protocol: ipc="
            f"{data['ipc']}, syn_steps {plan['syn_steps']}, expert_epochs {plan['expert_epochs']}, max_start_epoch "
            f"{plan['max_start_epoch']}, lr_img {plan['lr_img']:g}, lr_lr {plan['lr_lr']:g}; seeds {study['seeds']}; "
            f"evaluated every {data['eval_every']} iterations with {data['num_eval']} networks x "
            f"{data['epoch_eval_train']} epochs. **final**: the set after the last iteration; **best**: the set of "
            "the evaluation point with the highest accuracy (iteration 0 included; the maximum over evaluations, "
            f"what the papers report). Both are re-evaluated with {epochs} epochs (the public protocol; "
            f"{data['num_eval']} networks, the seed's networks for both methods). AUC: the mean accuracy over the run; "
            "largest drop: between two consecutive evaluations, over all seeds. Paired: MCT - MTT per seed, mean and "
            "95% t-interval.", ""]
    keys = [("final", f"final ({data['epoch_eval_train']} ep)"), ("best", f"best ({data['epoch_eval_train']} ep)"),
            (f"final_{epochs}ep", f"final ({epochs} ep)"), (f"best_{epochs}ep", f"best ({epochs} ep)"), ("auc", "AUC")]
    rows = []
    for name, arm in data["arms"].items():
        if not arm["seeds"]:
            continue
        reached = arm.get("iterations_to_mtt_final")
        label = arm["label"] if arm["label"].startswith(name.upper()) else f"{name.upper()} ({arm['label']})"
        rows.append([label, str(len(arm["seeds"]))]
                    + [spread(arm[key]) for key, _ in keys]
                    + [", ".join(map(str, arm["best_iteration"])), "never" if reached is None else str(reached),
                       "-" if arm.get("largest_drop") is None else f"{arm['largest_drop']:.2f}",
                       "-" if arm.get("seconds_per_iteration") is None else f"{arm['seconds_per_iteration']:.2f}"])
    paired = data.get("paired_mct_minus_mtt", {})
    rows.append(["MCT - MTT, paired (pts)", str(max((d["n"] for d in paired.values()), default=0))]
                + [interval(paired.get(key)) for key, _ in keys] + ["", "", "", ""])
    out += table(["arm", "seeds"] + [f"{label} (%)" for _, label in keys]
                 + ["best at iteration", "iterations to MTT's final", "largest drop (pts)", "s / it"], rows)
    if data.get("goal_distance") is not None:
        out += [f"Goal: MCT >= {data['goal']:g}% at ipc=1 (best set, {epochs}-epoch evaluation): "
                f"{data['goal'] - data['goal_distance']:.2f}%, {data['goal_distance']:+.2f} points "
                f"{'short of' if data['goal_distance'] > 0 else 'beyond'} it.", ""]
    return out + ["![accuracy against iteration, mean +- std over seeds](results/long_horizon.png)", ""]


def unfinished_architectures(pending: list[str]) -> str:
    """The sentence an unfinished cross-architecture part ends with: the rows still partial or empty."""
    return " **Not finished**: the sets evaluated so far" + (f"; still to run: {', '.join(pending)}." if pending else ".")


def cross_arch_long_section(data: dict) -> list[str]:
    out = ["## Cross-architecture on the long-horizon sets (`cross_arch.py`)", ""] + provenance(data)
    out += [f"The final and the best set of every seed of MTT and of the default MCT from the long horizon "
            f"({data['iterations']} iterations, ipc={data['ipc']}), each trained on the architecture with its own "
            f"learned step size (the public protocol trains {data['public_epochs']} epochs; the epochs below are what "
            "the CPU allowed). Paired: MCT - MTT per seed (the same networks), mean and 95% t-interval."
            + ("" if data.get("complete", True) else unfinished_architectures(data.get("pending", []))), ""]
    rows = []
    for architecture, row in data["architectures"].items():
        arms, paired = row["arms"], row["paired_mct_minus_mtt"]
        if not any(arm["seeds"] for arm in arms.values()):
            continue  # not started in an unfinished part: named in the sentence above
        rows.append([architecture, f"{row['num_eval']} x {row['epochs']}"]
                    + [spread(arms[arm][which]) for which in ("final", "best") for arm in ("mtt", "mct")]
                    + [interval(paired.get("final")), interval(paired.get("best"))])
    return out + table(["architecture", "networks x epochs", "MTT final (%)", "MCT final (%)", "MTT best (%)",
                        "MCT best (%)", "MCT - MTT final (pts)", "MCT - MTT best (pts)"], rows)


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def search_section(searches: list[dict]) -> list[str]:
    """The hyper-parameter searches on the validation split, and their recipes scored on the test
    split (``search.json``, written by ``python -m benchmarks.search``)."""
    from mct_plugin.harness.study.stats import paired_interval

    out = ["## Hyper-parameter search without the test set (`benchmarks/studies/search-*-ipc1.yaml`)", ""]
    out += provenance(searches[0]) + [searches[0]["protocol"] + ".", ""]
    rows = [[s["study"], f"{s['trials']} ({s['complete']} complete, {s['pruned']} pruned; {s['failed']} failed)",
             f"{s['iterations_run']} of {s['iterations_unpruned']} "
             f"({100 * s['iterations_run'] / max(1, s['iterations_unpruned']):.0f}%)", f"{s['cpu_hours']:.2f}",
             "-" if s["baseline_validation_accuracy"] is None else f"{s['baseline_validation_accuracy']:.2f}",
             "-" if s["best_trial"] is None else f"{s['validation_accuracy']:.2f} (trial {s['best_trial']})"]
            for s in searches]
    out += table(["search", "trials", "iterations run (of unpruned)", "CPU-hours", "today's recipe, validation %",
                  "best trial, validation %"], rows)
    names = sorted({k for s in searches for k in s["space"]})
    rows = [[name, *(f"{_fmt((s['baseline_params'] or {}).get(name, '-'))} → {_fmt((s['best_params'] or {}).get(name, '-'))}"
                     if name in s["space"] else "-" for s in searches)] for name in names]
    out += ["Today's value → the best trial's:", ""] + table(["option", *(s["study"] for s in searches)], rows)
    replays = [s for s in searches if s.get("pruning_replay")]
    if replays:
        rows = [[s["study"], f"top {r['percentile']}%" + (" (the median pruner run)" if r["percentile"] == 50 else ""),
                 f"{100 * r['iterations_share']:.0f}%", "yes" if r["keeps_best"] else "**no**",
                 f"{r['decisions_as_recorded']} of {s['trials']}", str(r["ends_unknown"])]
                for s in replays for r in s["pruning_replay"]]
        out += ["Pruning replayed: the recorded evaluations through Optuna's percentile pruner (the same warm-up "
                "and startup trials), a counterfactual, not a rerun (the sampler's later proposals would differ; "
                "a trial the replay runs past its recorded stop counts as run to the end):", ""]
        out += table(["search", "pruner keeps", "iterations run (of unpruned)", "keeps the best trial",
                      "decisions as recorded", "ends unknown"], rows)
    scored = [s for s in searches if s.get("test")]
    if not scored:
        return out + ["The searched recipes are not scored on the test split yet (search-scoring-ipc1.yaml).", ""]
    rows = []
    for s in scored:
        for set_name in ("final", "best"):
            seeds = [seed for seed, v in s["test"].items() if set_name in v.get("tuned", {}) and
                     set_name in v.get("baseline", {})]
            tuned = [s["test"][seed]["tuned"][set_name] for seed in seeds]
            base = [s["test"][seed]["baseline"][set_name] for seed in seeds]
            rows.append([s["arm"].upper(), set_name, str(len(seeds)), spread(base), spread(tuned),
                         interval(paired_interval([t - b for t, b in zip(tuned, base)]))])
    out += ["Test accuracy (%), mean ± std over seeds; paired difference searched - today's with its 95% t-interval:", ""]
    out += table(["method", "set", "seeds", "today's recipe", "searched recipe", "difference (points)"], rows)
    by_arm = {s["arm"]: s["test"] for s in scored}
    if {"mct", "mtt"} <= set(by_arm):
        rows = []
        for set_name in ("final", "best"):
            seeds = [seed for seed in by_arm["mct"] if seed in by_arm["mtt"]
                     and set_name in by_arm["mct"][seed].get("tuned", {}) and set_name in by_arm["mtt"][seed].get("tuned", {})]
            diff = [by_arm["mct"][seed]["tuned"][set_name] - by_arm["mtt"][seed]["tuned"][set_name] for seed in seeds]
            rows.append([set_name, str(len(seeds)), interval(paired_interval(diff))])
        out += ["Searched MCT - searched MTT, paired by seed (points):", ""] + table(["set", "seeds", "difference"], rows)
    return out
