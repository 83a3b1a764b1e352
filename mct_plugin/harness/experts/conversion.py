"""The plugin-facing interface of buffer converters (``dd-harness convert --to NAME``)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

from ..components import ComponentContext, Components
from ..options import NoOptions

@dataclass
class ConversionReport:
    """A summary table (one row per converted file) plus free-form notes."""

    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_text(self) -> str:
        table = [self.columns] + self.rows
        widths = [max(len(str(r[i])) for r in table) for i in range(len(self.columns))]
        lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in table]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines + self.notes)


class BufferConverter(ABC):
    """Converts expert buffers into the format called ``name``; built as every component,
    ``cls(options, context)``.

    ``self.options`` holds the converter's own options (an instance of its ``Options``, whose
    fields ``dd-harness convert`` offers); the context gives the registries of the command
    (datasets and models, e.g. to know the parameter shapes of the experts), the report function,
    whether to show progress, and ``on_file``, called with each finished file's summary row
    (``column -> value``; the CLI forwards it to the ``dd_file_converted`` hook).
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    Options: ClassVar[type] = NoOptions

    def __init__(self, options: Any, context: ComponentContext) -> None:
        self.options = options
        self.components: Components = context.components
        self.report: Callable[[str], None] = context.report
        self.show_progress = context.show_progress
        self.on_file = context.on_file

    def file_done(self, summary: ConversionReport, row: list[str]) -> None:
        """Add ``row`` to the summary table and tell ``on_file``."""
        summary.rows.append(row)
        if self.on_file is not None:
            self.on_file(dict(zip(summary.columns, row)))

    @abstractmethod
    def convert(self, sources: list[Path], out: Path) -> ConversionReport:
        """Convert ``sources`` (files or folders) into ``out``; never modify the sources.

        :raises HarnessError: unreadable/invalid sources or unusable output path; no partial output.
        """
