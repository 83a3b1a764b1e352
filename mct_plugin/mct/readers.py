"""The expert file formats MCT reads, one reader each, for the matcher and the converter alike.

* :data:`MCT_FILES`: ``*.mct.safetensors`` (``dd-harness convert --to mct``), convexified already;
* :data:`PUBLIC_FILES`: the public MCT code's ``waypoint_buffer*``/``step_buffer*`` pairs,
  convexified already;
* :data:`REPLAY_BUFFERS`: raw MTT replay buffers, convexified when read, as the options say.

A reader knows which files of a folder are its own, how to load one into
:class:`~.convexified.ConvexifiedTrajectory` objects checked against the model, and what the
files record of their conversion and of their source's training. The matcher reads the first
format of :data:`READERS` that a folder holds; the converter reads those of :data:`CONVERTED`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Collection, Sequence

from mct_plugin.harness.api import BufferFormatError, load_replay_buffer, read_training_record, replay_buffer_files

from .convexified import ConvexifiedTrajectory
from .format import CONVERSION_KEYS, SUFFIX, conversion_settings, read_mct_file, read_metadata, recorded_conversion
from .options import ConvexifyOptions
from .public_format import is_public_waypoint_file, load_public_pair, public_pairs, step_file_for


@dataclass(frozen=True)
class Expected:
    """What loaded experts must fit (None: not checked): the model's parameter ``shapes`` and
    ``names``, and the run's ``dataset`` and ``model`` (checked where a file records them)."""

    shapes: Sequence[tuple] | None = None
    names: Sequence[str] | None = None
    dataset: str | None = None
    model: str | None = None


@dataclass(frozen=True)
class LoadedExperts:
    """The experts of one file: their convexified ``trajectories`` and the recorded ``checkpoints``
    these were convexified from (None where the file holds convexified trajectories)."""

    trajectories: list[ConvexifiedTrajectory]
    checkpoints: list | None = None


def _flag(option_name: str) -> str:
    return "--" + option_name.replace("_", "-")


class ExpertReader(ABC):
    """One file format of expert trajectories."""

    pattern: ClassVar[str]  # its file names, for messages
    description: ClassVar[str]  # how the log names a folder's files
    provenance: ClassVar[dict[str, Any]] = {}  # what a converted file records of where it came from

    @abstractmethod
    def files(self, directory: Path) -> list[Path]:
        """The files of this format in ``directory`` in reading order, one per unit ([] if none)."""

    @abstractmethod
    def claims(self, path: Path) -> bool:
        """Whether the name of ``path`` makes it a file of this format."""

    def parts(self, path: Path) -> tuple[Path, ...]:
        """Every file of the unit that ``path`` names (``path`` first).

        :raises BufferFormatError: a file of the unit is missing."""
        return (path,)

    @abstractmethod
    def load(self, path: Path, expected: Expected, options: ConvexifyOptions) -> LoadedExperts:
        """Load and validate the experts of ``path`` (convexified as ``options`` say where the file
        holds recorded checkpoints).

        :raises BufferFormatError: the file is unreadable or does not fit ``expected``."""

    def conversion(self, path: Path) -> dict[str, Any]:
        """The convexify options, by option name, that ``path`` records it was converted with ({}
        where it records none)."""
        return {}

    def conversion_note(self, directory: Path, files: Sequence[Path], requested: ConvexifyOptions,
                        asked: Collection[str]) -> str | None:
        """What to tell a user who asked for the options named in ``asked`` (their values are those
        of ``requested``, which holds the defaults of the others) for the ``files`` in
        ``directory``, where the files keep a conversion of their own (None: what was asked for
        applies, or nothing was)."""
        return None

    def training(self, path: Path) -> dict | None:
        """The training record of the experts of ``path`` (``dd-harness experts`` writes one beside
        every replay buffer), or None."""
        return read_training_record(path)


class MCTFiles(ExpertReader):
    pattern = "*" + SUFFIX
    description = "file(s) of MCT files"

    def files(self, directory: Path) -> list[Path]:
        return sorted(p for p in directory.glob(self.pattern) if p.is_file()) if directory.is_dir() else []

    def claims(self, path: Path) -> bool:
        return path.name.endswith(SUFFIX)

    def load(self, path: Path, expected: Expected, options: ConvexifyOptions) -> LoadedExperts:
        trajectories, meta = read_mct_file(path, expected.shapes)
        for key, value in (("dataset", expected.dataset), ("model", expected.model)):
            if value is not None and meta.get(key) and meta[key] != value:
                raise BufferFormatError(f"{path} holds experts of {key} {meta[key]} but --{key} is {value}")
        return LoadedExperts(trajectories)

    def conversion(self, path: Path) -> dict[str, Any]:
        return recorded_conversion(read_metadata(path))

    def conversion_note(self, directory: Path, files: Sequence[Path], requested: ConvexifyOptions,
                        asked: Collection[str]) -> str | None:
        used, wanted = self.conversion(files[0]), conversion_settings(requested)
        differ = [name for name, value in used.items() if name in asked and wanted[name] != value]
        if not differ:
            return None
        return (f"the MCT files in {directory} were converted with " + ", ".join(f"{k}={used[k]!r}" for k in differ)
                + "; the requested " + ", ".join(f"{_flag(k)} {wanted[k]!r}" for k in differ)
                + " do not apply to converted files (config.json records what is used)")

    def training(self, path: Path) -> dict | None:
        training = read_metadata(path).get("training")
        return training if isinstance(training, dict) else None


class PublicMCTFiles(ExpertReader):
    pattern = "waypoint_buffer*/step_buffer*"
    description = "file(s) of public MCT waypoint/step files"
    provenance = {"imported_from": "public MCT code"}

    def files(self, directory: Path) -> list[Path]:
        return [waypoint_file for waypoint_file, _ in public_pairs(directory)]

    def claims(self, path: Path) -> bool:
        return is_public_waypoint_file(path)

    def parts(self, path: Path) -> tuple[Path, ...]:
        if not step_file_for(path).is_file():
            raise BufferFormatError(f"{path} has no matching {step_file_for(path).name}")
        return path, step_file_for(path)

    def load(self, path: Path, expected: Expected, options: ConvexifyOptions) -> LoadedExperts:
        trajectories = load_public_pair(path, step_file_for(path))
        if expected.shapes is not None:
            wanted = [tuple(s) for s in expected.shapes]
            got = [tuple(t.shape) for t in trajectories[0].waypoints[0]]
            if got != wanted:
                raise BufferFormatError(f"{path}: parameter shapes {got} do not fit the model {wanted}")
        return LoadedExperts(trajectories)

    def conversion_note(self, directory: Path, files: Sequence[Path], requested: ConvexifyOptions,
                        asked: Collection[str]) -> str | None:
        if not set(asked) & set(CONVERSION_KEYS):
            return None
        flags = [_flag(name) for name in CONVERSION_KEYS]
        return (f"the public MCT files in {directory} keep their own waypoints and step sizes "
                f"({', '.join(flags[:-1])} and {flags[-1]} apply to MTT buffers only)")


class ReplayBuffers(ExpertReader):
    pattern = "replay_buffer_*.pt"
    description = "file(s) of MTT replay buffers, convexified on the fly in memory"

    def files(self, directory: Path) -> list[Path]:
        return replay_buffer_files(directory)

    def claims(self, path: Path) -> bool:
        return True  # a buffer saved by torch.save may carry any name: list this format last

    def load(self, path: Path, expected: Expected, options: ConvexifyOptions) -> LoadedExperts:
        checkpoints = load_replay_buffer(path, expected.shapes, expected.names)
        return LoadedExperts([ConvexifiedTrajectory.from_checkpoints(e, options) for e in checkpoints], checkpoints)


MCT_FILES, PUBLIC_FILES, REPLAY_BUFFERS = MCTFiles(), PublicMCTFiles(), ReplayBuffers()
READERS = (MCT_FILES, PUBLIC_FILES, REPLAY_BUFFERS)  # what the matcher reads, by preference
CONVERTED = (PUBLIC_FILES, REPLAY_BUFFERS)  # what ``convert --to mct`` reads


def reader_of_folder(directory: Path, readers: Sequence[ExpertReader] = READERS) -> ExpertReader | None:
    """The first of ``readers`` that has files in ``directory``, or None."""
    return next((reader for reader in readers if reader.files(directory)), None)


def reader_of_file(path: Path, readers: Sequence[ExpertReader]) -> ExpertReader:
    """The first of ``readers`` whose files are named like ``path`` (:data:`REPLAY_BUFFERS`, which
    claims every name, belongs last)."""
    return next(reader for reader in readers if reader.claims(path))
