"""The searches of issue 31 (item 6) as one results file: ``benchmarks/results/search.json``.

Reads each search study's Optuna storage (``benchmarks/studies/search-*-ipc1.yaml``: trials,
pruning, CPU time, the best trial and today's recipe, which each search tried first, on the
validation split; and a replay of the recorded evaluations under stricter percentile pruners, the
counterfactual the pruning target asks about) and the test-split scoring of the best recipes
(``search-scoring-ipc1.yaml``'s report, ``benchmarks/results/studies/search-scoring-ipc1``): per
seed, the final and best set of the searched recipe and of today's (``baseline``). With
``--export`` it first copies each search's ``best-recipe.yaml`` to
``benchmarks/studies/searched/NAME.yaml``, the recipes the scoring study runs. Not a timing: it
reads what the runs recorded.

Usage: ``python -m benchmarks.search [--export] [--folder STUDY_FOLDER]``
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mct_plugin.harness.io.atomic import atomic_write_text

from ._common import RESULTS, ROOT, provenance, write_json
from .workloads import components

STUDIES = Path(__file__).resolve().parent / "studies"
SEARCHES = ("search-mct-ipc1", "search-mtt-ipc1")
SCORING = "search-scoring-ipc1"


def search_record(name: str, folder: str | None) -> dict:
    """What a search's storage says: trials by state, iterations against as many unpruned trials,
    CPU-hours (each trial's wall time x its threads), the best trial and today's recipe (the
    search's first ``enqueue`` point)."""
    import optuna
    from optuna.trial import TrialState

    from mct_plugin.harness.api import Study
    from mct_plugin.harness.study.search import Search

    study = Study.from_file(STUDIES / f"{name}.yaml", components=components(), folder=folder)
    search = Search(study)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    trials = optuna.load_study(study_name=f"{study.spec.name}/{search.spec.arm}", storage=search.storage).get_trials()
    probe = search.trial_job({}).options
    ended = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    seconds = sum((t.datetime_complete - t.datetime_start).total_seconds() * t.user_attrs.get("threads", 1)
                  for t in trials if t.datetime_complete is not None and t.datetime_start is not None)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = max(complete, key=lambda t: t.value) if complete else None
    today = dict(search.spec.enqueue[0]) if search.spec.enqueue else None  # each search tries today's recipe first
    first = next((t for t in complete if today is not None and t.params == today), None)
    return {"study": name, "arm": probe["matcher"], "ipc": probe["ipc"], "iterations": probe["iterations"],
            "trials": len(ended), "complete": len(complete),
            "pruned": sum(t.state == TrialState.PRUNED for t in trials),
            "failed": sum(t.state == TrialState.FAIL for t in trials),
            "iterations_run": sum(max(t.intermediate_values, default=0) for t in ended),
            "iterations_unpruned": probe["iterations"] * len(ended),
            "cpu_hours": round(seconds / 3600, 3),
            "validation": {"size": search.spec.validation_size, "seed": search.spec.validation_seed},
            "space": {d.name: {d.kind: list(d.values)} for d in search.spec.space},
            "best_trial": None if best is None else best.number,
            "best_params": None if best is None else best.params,
            "validation_accuracy": None if best is None else round(100 * best.value, 2),
            "baseline_params": None if first is None else first.params,
            "baseline_validation_accuracy": None if first is None else round(100 * first.value, 2),
            "history": [{"trial": t.number, "state": t.state.name.lower(), "params": t.params,
                         "value": None if t.value is None else round(100 * t.value, 2),
                         "iterations": max(t.intermediate_values, default=0)} for t in trials],
            "pruning_replay": pruning_replay(ended, every=probe["eval_it"], iterations=probe["iterations"]),
            "recipe": str(search.folder / "best-recipe.yaml")}


REPLAY_PERCENTILES = (50, 33, 25)  # Optuna keeps the top p%: smaller is stricter


def pruning_replay(trials, every: int, iterations: int, percentiles=REPLAY_PERCENTILES) -> list[dict]:
    """The recorded trials (complete and pruned, in order) replayed through Optuna's
    ``PercentilePruner`` at each of ``percentiles`` (50 is the median pruner the searches ran, with
    their settings: two startup trials, no pruning before iteration ``every``): the share of the
    unpruned iterations it would have run, whether it keeps the best trial, how many of its
    decisions agree with the recorded ones (a trial pruned at its last evaluation ran to its end), and
    the trials it would have run past where they were really stopped (their end is unknown: counted
    as run to the end, and not as complete). A counterfactual, not a rerun: the sampler's later
    proposals would have differed, and a trial continued from a checkpoint in a later part reported
    its earlier evaluations without asking the pruner."""
    import optuna
    from optuna.trial import TrialState

    best = max((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.value, default=None)
    rows = []
    for percentile in percentiles:
        replay = optuna.create_study(direction="maximize", pruner=optuna.pruners.PercentilePruner(
            percentile, n_startup_trials=2, n_warmup_steps=max(1, every)))
        run = agree = unknown = 0
        kept_best = False
        for recorded in trials:
            trial = replay.ask()
            steps = sorted(s for s in recorded.intermediate_values if 0 < s < iterations and s % every == 0)
            stopped = None
            for step in steps:
                trial.report(recorded.intermediate_values[step], step)
                if trial.should_prune():
                    stopped = step
                    break
            last = max(recorded.intermediate_values, default=0)
            pruned = recorded.state == TrialState.PRUNED
            real_stop = last if pruned and last < iterations else None  # pruned at the end: ran to the end
            agree += stopped == real_stop
            if stopped is not None:
                run += stopped
                replay.tell(trial, state=TrialState.PRUNED)
            elif pruned:  # not complete in the record, so not in the replay's median either
                run += iterations
                unknown += real_stop is not None  # the replay would have gone on: the end is unknown
                replay.tell(trial, state=TrialState.FAIL)
            else:
                run += iterations
                kept_best |= recorded is best
                replay.tell(trial, recorded.value)
        rows.append({"percentile": percentile, "iterations_share": round(run / (iterations * len(trials)), 3),
                     "keeps_best": kept_best, "decisions_as_recorded": agree, "ends_unknown": unknown})
    return rows


def test_scores(arm: str, rows: list[dict]) -> dict | None:
    """Per seed: the final and best set of ``ARM-tuned`` (``tuned``) and ``ARM`` (``baseline``),
    test accuracy in % from the scoring study's evaluations."""
    scores: dict = {}
    for row in rows:
        if row["source"] != "eval" or row["metric"] != "accuracy" or row["set"] not in ("final", "best"):
            continue
        role = {arm: "baseline", f"{arm}-tuned": "tuned"}.get(row["arm"])
        if role is not None:
            scores.setdefault(str(row["seed"]), {}).setdefault(role, {})[row["set"]] = row["value"]
    return scores or None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", default=None, help="the searches' study folder (default: their files')")
    parser.add_argument("--export", action="store_true",
                        help="copy each search's best-recipe.yaml to benchmarks/studies/searched/NAME.yaml first")
    parser.add_argument("--scoring-report", default=str(RESULTS / "studies" / SCORING / "results.jsonl"),
                        help="the scoring study's results.jsonl (dd-harness study report)")
    parser.add_argument("--out", default=str(RESULTS / "search.json"))
    args = parser.parse_args(argv)
    searches = [search_record(name, args.folder) for name in SEARCHES]
    if args.export:
        for record in searches:
            target = STUDIES / "searched" / f"{record['study']}.yaml"
            target.parent.mkdir(exist_ok=True)
            text = Path(record["recipe"]).read_text(encoding="utf-8")
            for local in (f"{ROOT}/benchmarks/studies/../../", f"{ROOT}/"):  # no path of this machine in the repo
                text = text.replace(local, "")
            atomic_write_text(target, text)
            print(f"wrote {target}")
    report = Path(args.scoring_report)
    rows = [json.loads(line) for line in report.read_text().splitlines()] if report.is_file() else []
    for record in searches:
        record["recipe"] = f"benchmarks/studies/searched/{record['study']}.yaml"
        record["test"] = test_scores(record["arm"], rows)
    protocol = ("searched on a class-balanced validation split of the training images (the test split never "
                "read); scored on the test split by benchmarks/studies/search-scoring-ipc1.yaml (4 seeds, 5 "
                "ConvNetW32 networks x 1000 epochs per set)")
    payload = [{**record, "protocol": protocol, **provenance()} for record in searches]  # a list of searches
    write_json(Path(args.out), payload)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
