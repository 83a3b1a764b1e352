"""Lifecycle events of a command, and the experiment trackers that listen to them.

:class:`RunEvents` wraps one ``distill``, ``experts`` or ``convert`` run: on entry it creates the
trackers the user selected (``--track``), registers them with the plugin manager and calls
``dd_run_start``; the command reports its progress through it (``dd_iteration``,
``dd_evaluation``, ``dd_expert_trained``, ``dd_file_converted``); on exit it calls ``dd_run_end``
with ``finished``, ``interrupted`` or ``failed`` and unregisters the trackers. Under torchrun
only rank 0 emits events (the run's :class:`~.runtime.distributed.DistContext` says which rank
this is). Every hook goes through ``pm.hook``, so any plugin can listen too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

from .components import ComponentContext
from .errors import Interrupted
from .options import NoOptions
from .runtime.distributed import SINGLE_PROCESS, DistContext

if TYPE_CHECKING:
    import torch


@dataclass
class RunInfo:
    """What a listener knows about the run: the command, its typed config and output folder."""

    command: str
    config: Any
    out: Path
    resumed: bool = False
    world_size: int = 1


@dataclass
class Evaluation:
    """The result of one evaluation during distillation.

    :param results: :class:`~mct_plugin.harness.eval.EvalResult` per architecture; the first is
        the architecture the set is distilled for.
    """

    iteration: int
    results: dict[str, Any]
    images: torch.Tensor
    labels: torch.Tensor
    lr: float

    @property
    def main(self):
        return next(iter(self.results.values()))


class Tracker:
    """Base class of experiment trackers (``dd_register_trackers``).

    The harness creates one instance per run when the user selects it with ``--track NAME`` and
    registers it as a plugin for the run's duration: implement the lifecycle hooks you need as
    methods marked with ``@hookimpl`` (``dd_run_start``, ``dd_iteration``, ``dd_evaluation``,
    ``dd_run_end``, ...). Raise :class:`~mct_plugin.harness.errors.ConfigError` from
    ``__init__`` if the tracker cannot work (a missing package), before any work starts.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    Options: ClassVar[type] = NoOptions

    def __init__(self, options: Any, context: ComponentContext) -> None:
        self.options = options
        self.run: RunInfo = context.run


class RunEvents:
    """Emits one run's lifecycle hooks and hosts its trackers (a context manager)."""

    def __init__(self, components, info: RunInfo, track: Sequence[str] = (), *,
                 dist: DistContext = SINGLE_PROCESS) -> None:
        self.pm, self.components = components.pm, components
        self.info = info
        self.active = dist.is_main
        components.check_names(trackers=track)  # unknown names fail here
        self.track = tuple(track)
        self.trackers: list = []
        self.summary: dict = {}

    def __enter__(self) -> "RunEvents":
        if self.active:
            try:
                context = ComponentContext(self.info.config, self.components, run=self.info)
                for name in self.track:
                    tracker = self.components.build("tracker", name, context)
                    self.pm.register(tracker, name=f"tracker:{name}:{id(tracker)}")
                    self.trackers.append(tracker)
                self.pm.hook.dd_run_start(run=self.info)
            except BaseException:
                self._unregister()
                raise
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if self.active:
            try:
                if exc_type is None:
                    status = "finished"
                elif issubclass(exc_type, (Interrupted, KeyboardInterrupt)):
                    status = "interrupted"
                else:
                    status = "failed"
                self.pm.hook.dd_run_end(run=self.info, status=status,
                                        summary=self.summary if status != "failed" else {})
            finally:
                self._unregister()
        return False

    def _unregister(self) -> None:
        for tracker in self.trackers:
            self.pm.unregister(tracker)
        self.trackers = []

    def iteration(self, row: dict) -> None:
        if self.active:
            self.pm.hook.dd_iteration(run=self.info, row=row)

    def evaluation(self, evaluation: Evaluation) -> None:
        if self.active:
            self.pm.hook.dd_evaluation(run=self.info, evaluation=evaluation)

    def expert(self, record) -> None:
        if self.active:
            self.pm.hook.dd_expert_trained(run=self.info, expert=record)

    def file(self, row: dict) -> None:
        if self.active:
            self.pm.hook.dd_file_converted(run=self.info, row=row)
