"""Reader for the IDX files of the MNIST family (plain or ``.gz``), with gzip + numpy.

torchvision's MNIST classes insist on their own folder layout and md5 sums, which the Debian
``dataset-fashion-mnist`` copies do not match, so we read the files directly.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from ..errors import DamagedDataError, DataNotFoundError

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """Array stored in the IDX file ``path`` (gzip-compressed if the name ends in ``.gz``)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except EOFError as exc:  # gzip stream cut short: typically an interrupted download
        raise DamagedDataError(f"{path} is truncated (the compressed data ends early)") from exc
    except (gzip.BadGzipFile, zlib.error) as exc:
        raise DamagedDataError(f"{path} is corrupt ({exc})") from exc
    except OSError as exc:
        raise DataNotFoundError(f"cannot read IDX file {path}: {exc.strerror or exc}") from exc
    if not data:
        raise DamagedDataError(f"{path} is empty")
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise DamagedDataError(f"{path} is not an IDX file (bad magic number)")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_DTYPES[data[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != expected:
        raise DamagedDataError(
            f"{path} is truncated or corrupt: {len(data) - header} bytes of data, {expected} expected"
        )
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)


def find_idx_file(directory: Path, stem: str) -> Path | None:
    """``directory/stem.gz`` or ``directory/stem`` (also the ``stem`` with '-idx' as '.idx')."""
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx") + ".gz", stem.replace("-idx", ".idx")):
        candidate = directory / name
        if candidate.is_file():
            return candidate
    return None
