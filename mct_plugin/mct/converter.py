"""``dd-harness convert --to mct``: MTT replay buffers (or public MCT files) -> MCT safetensors.

Streams: one source file is loaded (memory-mapped) at a time, its experts are convexified and
written to ``OUT/<source stem>.mct.safetensors`` atomically before the next file is read. The
sources are never modified. Re-running after a crash skips the outputs that are already
complete (same source checksum and options) and converts the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from mct_plugin.harness.api import (BufferConverter, BufferFormatError, ConfigError, ConversionReport, FunctionalModel,
                                    OutputError, check_link_target,
                                    ensure_directory, remove_stale_temporaries)

from .convexified import ConvexifiedTrajectory, smooths_end
from .format import (DTYPES, conversion_metadata, conversion_settings, output_name, read_metadata, recorded_conversion,
                     sha256_of, write_mct_file)
from .options import ConvertOptions
from .readers import CONVERTED, ExpertReader, Expected, reader_of_file


@dataclass(frozen=True)
class EndpointCheck:
    """How a converted file reproduces the start and end of its experts (the summary's last columns).

    :param exact: the stored start and end equal the recorded checkpoints (in float32).
    :param error: max |stored - recorded| over both endpoints of every expert.
    :param smoothing_shift: max |smoothed end - recorded end|, where the smoothing moves the end on
        purpose (``--smooth public`` with P > 2, ``end``, ``all``); None where it does not.
    :param storage_error: max |stored - convexified| over both endpoints: the error of the file
        itself, without the smoothing (0 in float32).
    """

    exact: bool
    error: float
    smoothing_shift: float | None
    storage_error: float

    COLUMNS = ("start/end exact", "max |end error|", "end moved by smoothing", "error w/o smoothing")

    def cells(self) -> list[str]:
        shift = "-" if self.smoothing_shift is None else f"{self.smoothing_shift:.3g}"
        return ["yes" if self.exact else "no", f"{self.error:.3g}", shift, f"{self.storage_error:.3g}"]


def _max_difference(a: list[torch.Tensor], b: list[torch.Tensor]) -> tuple[bool, float]:
    """(bit-equal in float32, max abs difference) of two checkpoints."""
    return (all(torch.equal(x.float(), y.float()) for x, y in zip(a, b)),
            max(float((x.float() - y.float()).abs().max()) for x, y in zip(a, b)))


SMOOTHING_NOTE = ("start/end exact is 'no' where --smooth moves the end on purpose ({smooth}: the end becomes the mean "
                  "of the last two checkpoints{when}): 'end moved by smoothing' is that move, 'error w/o smoothing' "
                  "the file's own endpoint error (0 in float32); --smooth none keeps the recorded end")


@dataclass(frozen=True)
class Source:
    """One unit of conversion: an MTT replay buffer, or a public MCT waypoint/step pair."""

    reader: ExpertReader
    files: tuple[Path, ...]  # the file that names the unit, then the rest of it

    @classmethod
    def of(cls, reader: ExpertReader, path: Path) -> "Source":
        return cls(reader, reader.parts(path))

    @property
    def path(self) -> Path:
        return self.files[0]

    @property
    def bytes(self) -> int:
        return sum(f.stat().st_size for f in self.files)


def discover_sources(arguments: list[Path]) -> list[Source]:
    """Expand folders into their replay buffers and public MCT pairs; check files exist."""
    sources: list[Source] = []
    for arg in arguments:
        if arg.is_dir():
            found = [Source.of(reader, path) for reader in CONVERTED for path in reader.files(arg)]
            if not found:
                raise BufferFormatError(f"{arg} holds no {' or '.join(reader.pattern for reader in CONVERTED)} files")
            sources += found
        elif arg.is_file():
            sources.append(Source.of(reader_of_file(arg, CONVERTED), arg))
        else:
            if arg.is_symlink():
                check_link_target(arg)
            raise BufferFormatError(f"{arg} does not exist")
    return sources


def infer_dataset_model(path: Path, components) -> tuple[str | None, str | None]:
    """Dataset and model from the public layout ``.../DATASET[_NO_ZCA]/MODEL/file`` if both are
    registered in ``components``."""
    model, dataset = path.parent.name, path.parent.parent.name.removesuffix("_NO_ZCA")
    if dataset in components.datasets and components.models.is_model(model):
        return dataset, model
    return None, None


def model_shapes(dataset: str | None, model: str | None, components) -> tuple[list[tuple], list[str]] | None:
    if not (dataset and model):
        return None
    spec = components.datasets.get(dataset)
    functional = FunctionalModel(components.models.create(model, spec.channels, spec.num_classes, spec.image_size))
    return functional.shapes, functional.names


class MCTConverter(BufferConverter):
    """Options: :class:`~.options.ConvertOptions` (declared with the converter in the plugin module)."""

    def __init__(self, options: ConvertOptions, context) -> None:
        super().__init__(options, context)
        if bool(self.options.dataset) != bool(self.options.model):
            given, missing = ("--dataset", "--model") if self.options.dataset else ("--model", "--dataset")
            raise ConfigError(f"{given} needs {missing} too: the parameter shapes depend on both")

    # planning --------------------------------------------------------------------------
    def _plan(self, sources: list[Source], out: Path) -> list[tuple[Source, Path]]:
        if out.exists() and not out.is_dir():
            raise OutputError(f"--out {out} exists and is not a folder")
        plan, targets = [], {}
        source_files = {f.resolve() for s in sources for f in s.files}
        for source in sources:
            target = out / output_name(source.path)
            if target.resolve() in source_files:
                raise OutputError(f"output {target} would overwrite the source {target}")
            if target in targets:
                raise OutputError(f"{source.path} and {targets[target].path} would both be written to {target}; "
                                  f"convert them into different --out folders")
            targets[target] = source
            plan.append((source, target))
        return plan

    def _already_done(self, target: Path, checksum: str) -> bool:
        if not target.exists():
            return False
        try:
            meta = read_metadata(target)
        except BufferFormatError:
            meta = {}
        same = (meta.get("source_sha256") == checksum and meta.get("dtype") == self.options.dtype
                and recorded_conversion(meta) == conversion_settings(self.options))
        if same:
            return True
        if not self.options.overwrite:
            raise OutputError(f"{target} already exists (from another source or other options); pass --overwrite "
                              f"to replace it")
        return False

    # conversion ------------------------------------------------------------------------
    def convert(self, sources: list[Path], out: Path) -> ConversionReport:
        s = self.options
        units = discover_sources(sources)
        plan = self._plan(units, out)
        ensure_directory(out)
        remove_stale_temporaries(out)
        report = ConversionReport(["source", "experts", "epochs", "P", "dtype", "MB in", "MB out", "ratio",
                                   *EndpointCheck.COLUMNS])
        smoothed = False
        keeps_every_checkpoint = []  # sources whose waypoints are all their checkpoints: nothing saved
        total_in = total_out = 0
        bar = tqdm(plan, desc="convert", unit="file", disable=None if self.show_progress else True)
        for source, target in bar:
            checksum = sha256_of(source.path)
            if self._already_done(target, checksum):
                report.notes.append(f"skipped {source.path.name}: {target.name} is already complete")
                size_in, size_out = source.bytes, target.stat().st_size
                total_in, total_out = total_in + size_in, total_out + size_out
                continue
            dataset, model = (s.dataset, s.model) if (s.dataset and s.model) else infer_dataset_model(source.path, self.components)
            shapes_names = model_shapes(dataset, model, self.components)
            loaded = source.reader.load(source.path, Expected(*shapes_names) if shapes_names else Expected(), s)
            stored = [t.to(DTYPES[s.dtype]) for t in loaded.trajectories]
            check = self._reconstruction(stored, loaded.checkpoints, loaded.trajectories)
            smoothed |= check.smoothing_shift is not None
            if len(stored[0].epochs) == stored[0].num_epochs + 1:
                keeps_every_checkpoint.append(f"{source.path.name} ({len(stored[0].epochs)} checkpoints)")
            metadata = {
                "source": source.path.name, "source_bytes": source.bytes, "source_sha256": checksum,
                **conversion_metadata(s), "waypoints": stored[0].epochs, "dataset": dataset, "model": model,
                "param_names": shapes_names[1] if shapes_names else None,
                "training": source.reader.training(source.path), **source.reader.provenance,
            }
            write_mct_file(target, stored, metadata)
            size_in, size_out = source.bytes, target.stat().st_size
            total_in, total_out = total_in + size_in, total_out + size_out
            self.file_done(report, [source.path.name, str(len(stored)), str(stored[0].num_epochs),
                                    str(len(stored[0].epochs)), s.dtype, f"{size_in / 1e6:.2f}",
                                    f"{size_out / 1e6:.3f}", f"{100 * size_out / size_in:.2f}%", *check.cells()])
            del loaded, stored
        if total_in:
            report.rows.append(["total", "", "", "", "", f"{total_in / 1e6:.2f}", f"{total_out / 1e6:.3f}",
                                f"{100 * total_out / total_in:.2f}%", *[""] * len(EndpointCheck.COLUMNS)])
        if keeps_every_checkpoint:
            self.report(f"warning: --waypoints {s.waypoints} keeps every checkpoint of {', '.join(keeps_every_checkpoint)}"
                        f", so the MCT files save nothing over their sources; MCT saves space with fewer waypoints than "
                        f"checkpoints")
        if smoothed:
            report.notes.append(SMOOTHING_NOTE.format(smooth=s.smooth, when=" when P > 2" if s.smooth == "public" else ""))
        report.notes.append(f"written to {out}")
        return report

    def _reconstruction(self, stored: list[ConvexifiedTrajectory], experts: list | None,
                        full: list[ConvexifiedTrajectory]) -> EndpointCheck:
        """Stored start and end against the recorded checkpoints (``experts``; for imported files,
        the float32 waypoints as read), the smoothing's move of the end, and the file's own error."""
        exact, error, shift, storage = True, 0.0, 0.0, 0.0
        for e, trajectory in enumerate(stored):
            ends = (trajectory.point_at(0.0), trajectory.point_at(float(trajectory.num_epochs)))
            intended = (full[e].waypoints[0], full[e].waypoints[-1])
            recorded = (experts[e][0], experts[e][-1]) if experts is not None else intended
            for point, original, meant in zip(ends, recorded, intended):
                equal, difference = _max_difference(point, original)
                exact, error = exact and equal, max(error, difference)
                storage = max(storage, _max_difference(point, meant)[1])
            if experts is not None:
                shift = max(shift, _max_difference(full[e].waypoints[-1], experts[e][-1])[1])
        moves_end = experts is not None and smooths_end(self.options.smooth, len(stored[0].epochs))
        return EndpointCheck(exact, error, shift if moves_end else None, storage)
