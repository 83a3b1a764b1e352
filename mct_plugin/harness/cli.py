"""The ``dd-harness`` command line.

Sub-commands: ``plugins``, ``models``, ``data``, ``experts``, ``distill``, ``eval``, ``convert``, plus those that
plugins add (``dd_register_commands``; the bundled ``demo`` is one). Known
user errors (:class:`~mct_plugin.harness.errors.HarnessError`) print one line and exit with
status 2; an interrupted run (SIGINT or SIGTERM) exits with 130 after one line saying how to
resume it. Options use the public MTT names with dashes
(``--syn-steps``); the underscore spellings (``--syn_steps``) are accepted too.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import signal
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from .. import __version__
from . import distributed
from .errors import ConfigError, HarnessError

log = logging.getLogger("mct_plugin")
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


class _TqdmHandler(logging.Handler):
    """Log lines that do not break progress bars."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm.auto import tqdm

        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # pragma: no cover
            self.handleError(record)


def _configure_logging(verbose: int) -> None:
    handler = _TqdmHandler()
    handler.setFormatter(logging.Formatter("dd-harness: %(message)s"))
    root = logging.getLogger("mct_plugin")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose > 1 else logging.INFO if verbose == 1 else logging.WARNING)
    root.propagate = False


class _Parser(argparse.ArgumentParser):
    """argparse that also accepts ``--a_b`` for every ``--a-b`` option, and reports a bad command
    line in the same one-line form as every other user error."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(EXIT_USER_ERROR, f"dd-harness: error: {message} (see '{self.prog} --help')\n")

    def add_argument(self, *names, **kwargs):  # type: ignore[override]
        return super().add_argument(*_with_aliases(names), **kwargs)

    def add_argument_group(self, *args, **kwargs):  # type: ignore[override]
        group = super().add_argument_group(*args, **kwargs)
        original = group.add_argument
        group.add_argument = lambda *names, **kw: original(*_with_aliases(names), **kw)  # type: ignore[method-assign]
        return group


def _with_aliases(names: Sequence[str]) -> list[str]:
    out = list(names)
    for name in names:
        if name.startswith("--") and "-" in name[2:]:
            alias = "--" + name[2:].replace("-", "_")
            if alias not in out:
                out.append(alias)
    return out


def _fields_from(cls, args: argparse.Namespace, **extra) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    values = {k: v for k, v in vars(args).items() if k in names}
    values.update(extra)
    return cls(**values)


# ----------------------------------------------------------------------------- plugins
def _cmd_plugins(args: argparse.Namespace) -> int:
    from .gradient_modes import GRADIENT_MODES
    from .plugins import collect_components

    components = collect_components()
    rows = []
    for kind, registry in components.by_kind().items():
        for entry in registry:
            rows.append((kind, entry.name, entry.source, getattr(entry.obj, "description", "")))
    for entry in GRADIENT_MODES:
        rows.append(("gradient mode", entry.name, "mct_plugin (harness)", entry.obj.description))
    for name, source in sorted(PLUGIN_COMMANDS.items()):
        rows.append(("command", name, source, f"dd-harness {name} (added by a plugin)"))
    widths = [max(len(r[i]) for r in rows + [("KIND", "NAME", "FROM", "")]) for i in range(3)]
    print(f"{'KIND':<{widths[0]}}  {'NAME':<{widths[1]}}  {'FROM':<{widths[2]}}  DESCRIPTION")
    for kind, name, source, description in rows:
        print(f"{kind:<{widths[0]}}  {name:<{widths[1]}}  {source:<{widths[2]}}  {description}")
    return 0


# ----------------------------------------------------------------------------- data
def _build_data(sub) -> None:
    p = sub.add_parser("data", help="check that a dataset is readable (and download it if asked)",
                       description="Load a dataset and print where it was found and its size; with --download, "
                                   "fetch a missing torchvision dataset into --data-path or the user cache.")
    p.add_argument("--dataset", default="FashionMNIST")
    p.add_argument("--data-path", default=None)
    p.add_argument("--download", action="store_true")
    p.set_defaults(handler=_cmd_data)


def _cmd_data(args: argparse.Namespace) -> int:
    from .datasets import get_dataset_spec

    spec = get_dataset_spec(args.dataset)
    raw = spec.loader(Path(args.data_path).expanduser() if args.data_path else None, args.download)
    print(f"{spec.name}: {len(raw.train_images)} training and {len(raw.test_images)} test images "
          f"({spec.channels}x{spec.image_size[0]}x{spec.image_size[1]}, {spec.num_classes} classes) from {raw.source}")
    return 0


# ----------------------------------------------------------------------------- experts
def _add_data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="FashionMNIST", help="dataset name (default: FashionMNIST)")
    p.add_argument("--data-path", default=None, help="folder with the dataset files (default: the Debian "
                   "Fashion-MNIST package, then the cache)")
    p.add_argument("--download", action="store_true", help="download the dataset with torchvision if missing")
    p.add_argument("--zca", action="store_true", help="ZCA-whiten the images (kornia, eps 0.1)")


def _build_experts(sub) -> None:
    p = sub.add_parser("experts", help="train expert trajectories and write MTT replay buffers",
                       description="Train expert networks with SGD on real data and record their parameters "
                                   "after every epoch, as MTT replay buffers "
                                   "(BUFFER_PATH/DATASET[_NO_ZCA]/MODEL/replay_buffer_N.pt).")
    _add_data_options(p)
    p.add_argument("--model", default="ConvNet", help="model name (see 'dd-harness models'; default ConvNet)")
    p.add_argument("--num-experts", type=int, default=10)
    p.add_argument("--train-epochs", type=int, default=50)
    p.add_argument("--buffer-path", default="buffers", help="root folder of the buffers (default ./buffers)")
    p.add_argument("--lr-teacher", type=float, default=0.01)
    p.add_argument("--batch-train", type=int, default=256)
    p.add_argument("--momentum", type=float, default=0.0)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--lr-decay", action="store_true", help="x0.1 learning rate after half the epochs (public --decay)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--subset", type=int, default=None, help="train on K class-balanced real images (quick runs)")
    p.add_argument("--save-interval", type=int, default=10, help="experts per replay_buffer file")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda or cuda:N")
    p.add_argument("--augmentation", default="crop_scale_rotate",
                   help="real-data augmentation: crop_scale_rotate (default), dsa or none")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(handler=_cmd_experts)


def _cmd_experts(args: argparse.Namespace) -> int:
    from .experts import ExpertConfig, train_experts

    config = _fields_from(ExpertConfig, args)
    result = train_experts(config, show_progress=not args.quiet)
    if not distributed.context().is_main:
        return 0
    accs = [r.final_test_acc for r in result.records]
    for path in result.files:
        print(path)
    if accs:
        log.info("%d experts trained; final test accuracy %.2f%% (min %.2f%%, max %.2f%%)",
                 len(accs), 100 * sum(accs) / len(accs), 100 * min(accs), 100 * max(accs))
    return 0


# ----------------------------------------------------------------------------- distill
def _build_distill(sub, pm) -> None:
    from .augment import DEFAULT_STRATEGY
    from .gradient_modes import GRADIENT_MODES
    from .plugins import add_plugin_cli_options

    p = sub.add_parser("distill", help="distil a synthetic set by trajectory matching",
                       description="Distil a synthetic dataset by matching expert trajectories. The matcher "
                                   "(--matcher) and sampler (--sampler) come from plugins; see 'dd-harness plugins'.")
    _add_data_options(p)
    p.add_argument("--model", default="ConvNet")
    p.add_argument("--matcher", default="", help="trajectory matcher, e.g. mtt or mct (see 'dd-harness plugins')")
    p.add_argument("--sampler", default=None, help="segment sampler (default: the matcher's own)")
    p.add_argument("--gradient-mode", default="unrolled", choices=GRADIENT_MODES.names(),
                   help="how the loss is differentiated through the student steps")
    p.add_argument("--buffer-path", default="buffers",
                   help="folder of expert buffers, or the public root holding DATASET[_NO_ZCA]/MODEL")
    p.add_argument("--out", default="runs/distill", help="run directory (default runs/distill)")
    p.add_argument("--ipc", type=int, default=1, help="images per class")
    p.add_argument("--syn-steps", type=int, default=20, help="student steps per iteration")
    p.add_argument("--expert-epochs", type=float, default=3, help="epochs between start and target")
    p.add_argument("--max-start-epoch", type=float, default=25, help="upper bound of the start epoch")
    p.add_argument("--min-start-epoch", type=float, default=0, help="lower bound of the start epoch")
    p.add_argument("--lr-img", type=float, default=1000.0)
    p.add_argument("--lr-lr", type=float, default=1e-5)
    p.add_argument("--lr-teacher", type=float, default=0.01, help="initial student step size alpha")
    p.add_argument("--batch-syn", type=int, default=None, help="student minibatch (default: all images)")
    p.add_argument("--pix-init", default="real", choices=["real", "noise"])
    p.add_argument("--iterations", type=int, default=5000)
    p.add_argument("--eval-it", type=int, default=500, help="evaluate every N iterations (0: never)")
    p.add_argument("--num-eval", type=int, default=5)
    p.add_argument("--epoch-eval-train", type=int, default=1000)
    p.add_argument("--batch-train", type=int, default=256)
    p.add_argument("--no-dsa", dest="dsa", action="store_false", help="no differentiable augmentation")
    p.add_argument("--dsa-strategy", default=DEFAULT_STRATEGY)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-files", type=int, default=None)
    p.add_argument("--max-experts", type=int, default=None)
    p.add_argument("--checkpoint-every", type=int, default=50, help="write a checkpoint every N iterations")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda or cuda:N")
    p.add_argument("--overwrite", action="store_true", help="replace the results in --out")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its checkpoint, with the options saved in its config.json")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_cmd_distill, plugin_dests=add_plugin_cli_options("distill", p, pm))


def _plugin_options(args: argparse.Namespace) -> dict:
    return {dest: getattr(args, dest) for dest in getattr(args, "plugin_dests", ()) if hasattr(args, dest)}


def _cmd_distill(args: argparse.Namespace) -> int:
    from .distill import DistillConfig, Distillation

    config = _fields_from(DistillConfig, args, plugin_options=_plugin_options(args))
    if args.resume and (Path(config.out) / "config.json").is_file():
        from .rundir import RunDirectory

        # a resumed run continues with its own options, whatever else the command line says
        config = DistillConfig.from_dict({**RunDirectory(config.out).read_config(), "out": config.out})
    run = Distillation(config, overwrite=args.overwrite, resume=args.resume, show_progress=not args.quiet,
                       report=log.info)
    result = run.run()
    if not distributed.context().is_main:
        return 0
    if result.final_eval is not None:
        log.info("final accuracy (%s, %d networks): %s%%", config.model, len(result.final_eval.accuracies),
                 result.final_eval)
    print(result.run_dir)
    return 0


# ----------------------------------------------------------------------------- eval
def _build_eval(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a distilled set against a random real subset",
                       description="Train fresh networks on the synthetic set of a run directory (and on a random "
                                   "real subset of the same size) and report test accuracy.")
    p.add_argument("--run", "--run-dir", dest="run", required=True,
                   help="run directory holding images.pt, labels.pt, lr.pt, config.json (under torchrun write "
                        "--run-dir: torchrun itself would take --run for its --run-path)")
    p.add_argument("--models", default=None, help="comma-separated architectures (default: the run's model)")
    p.add_argument("--num-eval", type=int, default=5)
    p.add_argument("--epoch-eval-train", type=int, default=None, help="default: the run's value")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-path", default=None)
    p.add_argument("--no-baseline", dest="baseline", action="store_false", help="skip the random real subset")
    p.add_argument("--batched", action="store_true", help="train the num_eval networks together (torch.func.vmap)")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda or cuda:N")
    p.set_defaults(handler=_cmd_eval)


def _cmd_eval(args: argparse.Namespace) -> int:
    from .report import evaluate_run

    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None
    table = evaluate_run(Path(args.run), models=models, num_eval=args.num_eval,
                         epoch_eval_train=args.epoch_eval_train, seed=args.seed, data_path=args.data_path,
                         baseline=args.baseline, batched=args.batched, device=args.device, report=log.info)
    if distributed.context().is_main:
        print(table.to_markdown())
    return 0


# ----------------------------------------------------------------------------- convert
def _build_convert(sub, pm) -> None:
    from .plugins import add_plugin_cli_options

    p = sub.add_parser("convert", help="convert expert buffers with a registered buffer converter (--to NAME)",
                       description="Convert expert-trajectory buffers with a registered buffer converter. "
                                   "Sources are never modified; outputs are written atomically.")
    p.add_argument("--to", required=True, dest="to", help="target format (a registered buffer converter)")
    p.add_argument("sources", nargs="+", help="source files or folders")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(handler=_cmd_convert, plugin_dests=add_plugin_cli_options("convert", p, pm))


def _cmd_convert(args: argparse.Namespace) -> int:
    from .plugins import collect_components

    converter_cls = collect_components().converters.get(args.to)
    converter = converter_cls(_plugin_options(args), report=log.info, show_progress=not args.quiet)
    report = converter.convert([Path(s) for s in args.sources], Path(args.out))
    print(report.to_text())
    return 0


# ----------------------------------------------------------------------------- models
def _build_models(sub) -> None:
    p = sub.add_parser("models", help="list the registered model names")
    p.add_argument("pattern", nargs="?", default="*")
    p.set_defaults(handler=_cmd_models)


def _cmd_models(args: argparse.Namespace) -> int:
    from .models import list_models

    for name in list_models(args.pattern):
        print(name)
    print("timm:<name>  (any timm model, e.g. timm:resnet18, timm:vit_tiny_patch16_224)")
    return 0


# ----------------------------------------------------------------------------- entry point
PLUGIN_COMMANDS: dict[str, str] = {}  # sub-commands added by plugins -> where they came from


def build_parser(pm=None) -> argparse.ArgumentParser:
    from .plugins import default_plugin_manager, register_plugin_commands

    pm = pm or default_plugin_manager()
    parser = _Parser(prog="dd-harness", description="Dataset distillation by trajectory matching; matchers come from plugins.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=1, help="more log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    plugins = sub.add_parser("plugins", help="list registered matchers, samplers, converters and their origin")
    plugins.set_defaults(handler=_cmd_plugins)
    _build_models(sub)
    _build_data(sub)
    _build_experts(sub)
    _build_distill(sub, pm)
    _build_eval(sub)
    _build_convert(sub, pm)
    PLUGIN_COMMANDS.clear()
    PLUGIN_COMMANDS.update(register_plugin_commands(sub, pm))
    return parser


@contextlib.contextmanager
def _sigterm_as_keyboard_interrupt():
    """While the command runs, SIGTERM unwinds like Ctrl-C, so ``finally`` blocks and the
    atomic writers clean up their temporary files (``distill`` installs its own handler)."""

    def handler(signum, frame):
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupted_message(args: argparse.Namespace | None) -> str:
    """The line printed when a command is interrupted: what was kept and how to continue."""
    command = getattr(args, "command", None)
    if command == "experts":
        return "dd-harness: interrupted: finished experts are kept; run the same command again to resume"
    if command == "convert":
        return "dd-harness: interrupted: finished outputs are kept; run the same command again to convert the rest"
    if command == "distill" and args is not None and (Path(args.out).expanduser() / "checkpoint.pt").is_file():
        return (f"dd-harness: interrupted: continue from the last checkpoint with: "
                f"dd-harness distill --resume --out {args.out}")
    return "dd-harness: interrupted"


def main(argv: Sequence[str] | None = None) -> int:
    from .runtime import tune_allocator

    tune_allocator()
    args = None
    succeeded = False
    try:
        with _sigterm_as_keyboard_interrupt():
            parser = build_parser()
            try:
                args = parser.parse_args(argv)
            except SystemExit as exc:  # --help, --version, or a bad command line (already printed)
                return int(exc.code or 0)
            ctx = distributed.context()  # under torchrun: joins the process group
            _configure_logging(args.verbose if ctx.is_main else 0)
            code = int(args.handler(args) or 0)
            succeeded = code == 0
            return code
    except HarnessError as exc:
        from .distill import Interrupted

        print(f"dd-harness: {'interrupted' if isinstance(exc, Interrupted) else 'error'}: {exc}", file=sys.stderr)
        return EXIT_INTERRUPTED if isinstance(exc, Interrupted) else EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(_interrupted_message(args), file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. piped into head
        return 0
    finally:
        distributed.shutdown(together=succeeded)


if __name__ == "__main__":
    sys.exit(main())
