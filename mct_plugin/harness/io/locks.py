"""One writer per output folder: an exclusive lock held for the life of a command.

``OutputLock(folder)`` takes an advisory ``flock`` on ``folder/.dd-harness.lock`` (creating the
folder if needed) and writes the holder's pid and command into it. A second writer fails at once
with a one-line :class:`~mct_plugin.harness.errors.OutputInUseError` naming that pid. The kernel
drops the lock when its process dies, so the lock of a killed command is recovered by the next
one (the stale file is simply taken over). On release the lock file is removed, and so is the
folder if this lock created it and nothing else was written into it - a command that fails
before producing anything leaves no empty folder behind.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
from pathlib import Path

from ..errors import OutputError, OutputInUseError
from .atomic import ensure_directory

LOCK_NAME = ".dd-harness.lock"


class OutputLock:
    """Exclusive lock of ``folder`` (a context manager; :meth:`acquire` / :meth:`release`)."""

    def __init__(self, folder: str | os.PathLike, command: str = "dd-harness") -> None:
        self.folder = Path(folder).expanduser()
        self.command = command
        self.path = self.folder / LOCK_NAME
        self._fd: int | None = None
        self._created: list[Path] = []  # folders this lock created, deepest first

    def acquire(self) -> "OutputLock":
        missing = self.folder
        while not missing.exists() and missing.parent != missing:
            self._created.append(missing)
            missing = missing.parent
        ensure_directory(self.folder)
        for _ in range(5):  # the file can be replaced between open and flock: retry on a new inode
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                self._remove_created_folder()
                raise OutputError(f"cannot write into {self.folder}: {exc.strerror or exc}") from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                holder = self._holder(fd)
                os.close(fd)
                if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise OutputInUseError(f"{self.folder} is in use by another dd-harness process ({holder}); wait "
                                           f"for it to finish or stop it") from None
                raise OutputError(f"cannot lock {self.folder}: {exc.strerror or exc}") from exc
            if os.path.exists(self.path) and os.fstat(fd).st_ino == os.stat(self.path).st_ino:
                break
            os.close(fd)
        else:  # pragma: no cover - a lock file replaced five times in a row
            raise OutputInUseError(f"{self.folder} is in use by another dd-harness process")
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "command": self.command}).encode())
        self._fd = fd
        return self

    @staticmethod
    def _holder(fd: int) -> str:
        try:
            info = json.loads(os.pread(fd, 4096, 0) or b"{}")
            return f"pid {info['pid']} on {info.get('host', '?')}, {info.get('command', 'dd-harness')}"
        except (OSError, ValueError, KeyError, TypeError):
            return "pid unknown"

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.unlink(self.path)
        except OSError:
            pass
        os.close(self._fd)  # closing drops the flock
        self._fd = None
        self._remove_created_folder()

    def _remove_created_folder(self) -> None:
        for folder in self._created:  # only empty ones: what a command wrote is never deleted here
            try:
                folder.rmdir()
            except OSError:
                break
        self._created = []

    def __enter__(self) -> "OutputLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def is_locked(folder: str | os.PathLike) -> bool:
    """Whether a live process holds the lock of ``folder`` (a stale lock file of a killed command
    is not held). Reads only: creates nothing."""
    path = Path(folder).expanduser() / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False
