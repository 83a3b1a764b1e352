"""Crash-safe file writing: write to a temporary file in the target directory, fsync, rename.

A reader (or a resumed run) therefore sees either the old file or the complete new one, never
a half-written file. On failure (including a full disk) the temporary file is removed and an
:class:`~mct_plugin.harness.errors.OutputError` names the target. Temporary files are named
``.tmp-<target name>.<random>``; a writer killed outright (SIGKILL, power loss) can leave one
behind, and every command removes those in its output folder when it starts
(:func:`remove_stale_temporaries`).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

from ..errors import OutputError

TEMP_PREFIX = ".tmp-"


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success it is renamed onto ``target``.

    The caller writes the whole file to the yielded path. If the block raises, the temporary
    file is deleted and ``target`` is left as it was.
    """
    target = Path(target)
    ensure_directory(target.parent)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=TEMP_PREFIX + target.name + ".", dir=target.parent)
    except OSError as exc:
        raise OutputError(f"could not write {target}: {_reason(exc)}") from exc
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_current_umask())  # mkstemp makes 0600 files; outputs follow the umask
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        _fsync_directory(target.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"could not write {target}: {_reason(exc)}") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _reason(exc: OSError) -> str:
    return "disk full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))


def ensure_directory(directory: str | os.PathLike) -> Path:
    """Create ``directory`` (and its parents) if needed.

    :raises OutputError: it cannot be created (permissions, a file in the way, a full disk).
    """
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:
        raise OutputError(f"cannot create folder {directory}: {exc.filename} exists and is not a folder") from exc
    except OSError as exc:
        raise OutputError(f"cannot create folder {directory}: {_reason(exc)}") from exc
    return directory


def atomic_write_bytes(target: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)


def atomic_write_text(target: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``target`` atomically."""
    atomic_write_bytes(target, text.encode("utf-8"))


def atomic_write_json(target: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``target`` atomically."""
    atomic_write_text(target, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


class _WriteErrorRecorder:
    """A file wrapper that remembers the first OSError of ``write``.

    ``torch.save`` turns a failed write (full disk, file-size limit) into an opaque
    ``RuntimeError`` from its zip writer; the recorded OSError says what really happened.
    """

    def __init__(self, handle) -> None:
        self.handle = handle
        self.error: OSError | None = None

    def write(self, data) -> int:
        try:
            return self.handle.write(data)
        except OSError as exc:
            self.error = self.error or exc
            raise

    def flush(self) -> None:
        self.handle.flush()


def atomic_torch_save(obj: Any, target: str | os.PathLike) -> None:
    """``torch.save(obj, target)`` through a temporary file, so ``target`` is never partial."""
    import torch

    with atomic_path(target) as tmp:
        with open(tmp, "wb") as handle:
            recorder = _WriteErrorRecorder(handle)
            try:
                torch.save(obj, recorder)
            except RuntimeError:
                if recorder.error is not None:
                    raise recorder.error from None
                raise


def remove_stale_temporaries(directory: str | os.PathLike) -> list[Path]:
    """Delete temporary files left by a crashed writer in ``directory``; return what was removed."""
    directory = Path(directory)
    removed = []
    if directory.is_dir():
        for path in directory.glob(TEMP_PREFIX + "*"):
            with contextlib.suppress(OSError):
                path.unlink()
                removed.append(path)
    return removed
