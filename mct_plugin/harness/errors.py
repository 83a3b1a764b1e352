"""Exceptions for user errors.

Everything a user can cause (a missing file, an unknown name, a broken buffer, a bad option)
raises a subclass of :class:`HarnessError` whose message is one line naming the offending file
or value. The CLI prints that line and exits with status 2; any other exception is a bug and
keeps its traceback.
"""

from __future__ import annotations


class HarnessError(Exception):
    """Base class of errors caused by user input; the message is shown without a traceback."""


class UnknownNameError(HarnessError, KeyError):
    """A dataset, model, plugin component or option value that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ConfigError(HarnessError, ValueError):
    """An option value, or a combination of values, that cannot work."""


class DuplicateNameError(ConfigError):
    """A component registered under a name that is already taken; ``first`` is where the taken
    one came from, ``second`` where the refused one came from."""

    def __init__(self, message: str, kind: str, name: str, first: str, second: str) -> None:
        super().__init__(message)
        self.kind, self.name, self.first, self.second = kind, name, first, second


class DataNotFoundError(HarnessError, FileNotFoundError):
    """Dataset files are missing; the message says where we looked and how to get them."""


class DamagedDataError(DataNotFoundError):
    """A dataset file that exists but is truncated or corrupt (e.g. left by an interrupted download)."""


class BufferFormatError(HarnessError, ValueError):
    """An expert-trajectory file that is unreadable, malformed or does not fit the model."""


class RunDirectoryError(HarnessError):
    """A run directory that is missing, incomplete, or would be overwritten."""


class OutputError(HarnessError, OSError):
    """An output that could not be written (full disk, permissions); nothing partial is left."""


class Interrupted(HarnessError):
    """SIGINT/SIGTERM arrived; what was finished is kept and the command can be resumed."""


class OutputInUseError(HarnessError):
    """Another dd-harness process holds the lock of the output folder."""


class DivergenceError(HarnessError):
    """The distillation diverged (non-finite or exploding loss, step size or images)."""
