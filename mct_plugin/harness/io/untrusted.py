"""Loading files from strangers: pickles through ``torch.load(..., weights_only=True)`` only.

A payload that would import arbitrary objects is refused (never executed), and every failure
becomes one :class:`~mct_plugin.harness.errors.BufferFormatError` naming the file.
"""

from __future__ import annotations

import pickle
import re
import warnings
from pathlib import Path

import torch

from ..errors import BufferFormatError


def torch_load_untrusted(path: str | Path, *, mmap: bool = True):
    """``torch.load(path, weights_only=True)``, memory-mapped where the file allows it.

    :raises BufferFormatError: truncated/corrupt files and pickles that reference anything but
        tensors and plain containers (refused by the weights-only unpickler, never executed).
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise BufferFormatError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if size == 0:
        raise BufferFormatError(f"{path} is empty (0 bytes)")
    attempts = [True, False] if mmap else [False]  # legacy (non-zip) files cannot be mmapped
    last: Exception | None = None
    for use_mmap in attempts:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return torch.load(path, map_location="cpu", weights_only=True, mmap=use_mmap)
        except pickle.UnpicklingError as exc:
            if "Weights only load failed" in str(exc):
                raise BufferFormatError(
                    f"{path}: refused to load - the pickle references {_refused_global(str(exc))} "
                    f"(loaded with weights_only=True; nothing was executed)"
                ) from None
            last = exc
        except PermissionError as exc:
            raise BufferFormatError(f"cannot read {path}: permission denied") from exc
        except Exception as exc:  # a corrupt pickle fails in many ways (KeyError, IndexError, ...); none runs code
            last = exc
    raise BufferFormatError(f"{path} is truncated or not a torch file ({_first_line(last)})")


def _first_line(exc: Exception | None) -> str:
    if exc is None:
        return "unknown error"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:160] if text else type(exc).__name__


def _refused_global(message: str) -> str:
    match = re.search(r"GLOBAL ([\w.]+)", message)
    return f"{match.group(1)!r}, not just tensors" if match else "objects other than tensors"
