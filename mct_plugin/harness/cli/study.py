"""``dd-harness study run | status | report FILE``: a study file's jobs, where they stand, its results.

See :mod:`mct_plugin.harness.study` and docs/STUDIES.md for the file.
"""

from __future__ import annotations

import argparse
import logging

from ..components import Components
from ..errors import ConfigError

log = logging.getLogger("mct_plugin")


def _key_value(text: str) -> tuple[str, object]:
    import yaml

    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return name.strip().replace("-", "_"), yaml.safe_load(value)


def build(sub, components: Components) -> None:
    p = sub.add_parser("study", help="run a study file (arms x grid, their experts and evaluations), see where it "
                                     "stands, report its results",
                       description="A study file (YAML, docs/STUDIES.md) lists arms (a recipe plus options), a grid "
                                   "(seeds, ipc, any option) and the evaluation; every job is an ordinary "
                                   "'dd-harness experts | distill | eval' run directory under the study's folder, "
                                   "keyed by the fingerprint of its resolved options.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", parser_class=type(p))
    actions.required = True
    for name, help_text in (("run", "run the jobs that are not done (the same command continues an interrupted study)"),
                            ("status", "each job: done, running, pending or failed (with its error line)"),
                            ("report", "the results as CSV and JSON lines, paired differences, curves.png, report.md"),
                            ("search", "run the file's Optuna search on its validation split (the same command "
                                       "continues it); export the best trial as a recipe")):
        action = actions.add_parser(name, help=help_text, description=help_text)
        action.add_argument("file", metavar="FILE", help="the study file (YAML)")
        action.add_argument("--folder", default=None, metavar="DIR",
                            help="the study's folder (default: the file's 'folder', else the user cache's "
                                 "studies/NAME)")
        action.set_defaults(handler=run, interrupted=interrupted)
    run_parser = actions.choices["run"]
    run_parser.add_argument("--hours", type=float, default=None,
                            help="the part's length: no job starts after this many hours, and the jobs still going "
                                 "then are stopped (a distillation is checkpointed); the same command continues")
    run_parser.add_argument("--executor", default=None,
                            choices=[*components.executors.names()],
                            help="how the jobs run (default: the file's 'executor', else local)")
    run_parser.add_argument("--workers", type=int, default=None, help="local: commands run side by side")
    run_parser.add_argument("--executor-option", type=_key_value, action="append", default=[], metavar="KEY=VALUE",
                            help="an option of the executor, e.g. slurm_partition=cpu or timeout_min=110 (repeatable)")
    search_parser = actions.choices["search"]
    search_parser.add_argument("--hours", type=float, default=None,
                               help="stop starting trials after this many hours (the file's 'hours' too: the "
                                    "smaller); the trial in flight is checkpointed and runs again next time")
    search_parser.add_argument("--threads", type=int, default=2, help="torch threads of each trial")
    actions.choices["report"].add_argument("--out", default=None, metavar="DIR",
                                           help="where the report goes (default: STUDY_FOLDER/report)")


def interrupted(args: argparse.Namespace) -> str:
    if getattr(args, "action", None) in ("run", "search"):
        return f"finished jobs are kept; continue with: dd-harness study {args.action} {args.file}"
    return ""


def run(args: argparse.Namespace, components: Components) -> int:
    from ..study.runner import Study

    study = Study.from_file(args.file, components, folder=args.folder, report=log.info)
    if args.action == "status":
        return show_status(study)
    if args.action == "report":
        from pathlib import Path

        from ..study.report import write_report

        study.require_finished()
        paths = write_report(study, Path(args.out) if args.out else None)
        print(paths["report.md"].read_text(encoding="utf-8"))
        for path in paths.values():
            print(path)
        return 0
    if args.action == "search":
        from ..study.search import Search

        search = Search(study)
        optuna_study = search.run(hours=args.hours, threads=args.threads)
        print(search.summary(optuna_study))
        return 0
    options = dict(args.executor_option)
    if args.workers is not None:
        options["workers"] = args.workers
    outcome = study.run(hours=args.hours, executor=args.executor, executor_options=options)
    if outcome.failed:
        return 1
    if outcome.remaining:
        print(f"the part's time is spent: {outcome.remaining} job(s) to go; continue with: dd-harness study run "
              f"{args.file}")
    return 0


def show_status(study) -> int:
    from collections import Counter

    states = study.status()
    for state in states:
        detail = f": {state.detail}" if state.detail else ""
        print(f"{state.state:8s} {state.job.kind:8s} {state.job.describe()}{detail}")
    counts = Counter(s.state for s in states)
    print(f"{study.spec.name}: " + ", ".join(f"{counts[k]} {k}" for k in ("done", "running", "pending", "failed")
                                             if counts[k]) + f" of {len(states)} jobs ({study.folder})")
    if study.spec.search is not None:
        show_search(study)
    return 0


def show_search(study) -> None:
    """The file's search: its trials so far and the best one, or that it has not started."""
    try:
        from ..study.search import Search

        search = Search(study)
    except ConfigError as exc:  # optuna missing: the jobs above are still the status
        print(f"search: {exc}")
        return
    stored = search.stored()
    print("search: not started (dd-harness study search FILE)" if stored is None else "search: " + search.summary(stored))
