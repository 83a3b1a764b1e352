"""The full-data accuracy that DD-Ranking's HLR needs, cached between ``dd-harness eval`` runs.

``eval --full-data`` trains the evaluation networks on the whole real training set under the run's
protocol and stores their test accuracy in ``cache_dir()/full_data/``, one JSON file per key: the
dataset (its name, ZCA, and a digest of the loaded train and test tensors, so a ``--data-path``
subset or other copy never shares an entry), the architecture, the training protocol (epochs,
batch, learning rate, momentum, weight decay, augmentation, precision) and the subset:
``--full-data-subset K`` trains on K // classes class-balanced training images instead (always
the same ones: drawn with seed 0), a cheap approximation that is keyed apart and labelled "full
data (subset of K)" wherever it is shown. A later ``eval`` with the same key reads it back. The
number of networks and their seed are recorded, not keyed: they change the estimate, not what is
estimated.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import EvalSettings
from ..errors import RunDirectoryError
from ..io.atomic import atomic_write_json, ensure_directory
from ..io.paths import cache_dir

if TYPE_CHECKING:
    from ..data import RealDataset

FORMAT = 1


def default_cache() -> Path:
    """``cache_dir()/full_data``."""
    return cache_dir() / "full_data"


def data_digest(data: "RealDataset") -> str:
    """SHA-256 (16 hex digits) of the loaded train and test images and labels, as the networks see them."""
    digest = hashlib.sha256()
    for tensor in (data.train_images, data.train_labels, data.test_images, data.test_labels):
        array = tensor.detach().cpu().contiguous().numpy()
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class FullDataKey:
    """What a full-data accuracy depends on (see the module docstring)."""

    dataset: str
    model: str
    zca: bool
    data: str
    train_images: int
    epoch_eval_train: int
    batch_train: int
    lr: float
    momentum: float
    weight_decay: float
    dsa: bool
    dsa_strategy: str
    precision: str
    subset: int | None  # the images of a class-balanced subset (--full-data-subset); None: all of them

    @classmethod
    def of(cls, data: "RealDataset", model: str, protocol: EvalSettings, lr: float, *, zca: bool,
           subset: int | None = None, digest: str | None = None) -> "FullDataKey":
        """The key of ``model`` trained on all of ``data`` (or on its ``subset``) with ``protocol`` at
        step size ``lr``."""
        return cls(data.spec.name, model, zca, digest or data_digest(data), len(data.train_images),
                   protocol.epoch_eval_train, protocol.batch_train, float(lr), protocol.momentum,
                   protocol.weight_decay, protocol.dsa, protocol.dsa_strategy if protocol.dsa else "",
                   protocol.eval_precision, subset)

    def file(self, root: Path) -> Path:
        """``root/DATASET-MODEL-HASH.json`` (the model name made safe for a file name)."""
        text = json.dumps(asdict(self), sort_keys=True)
        model = re.sub(r"[^A-Za-z0-9._-]", "_", self.model)
        return root / f"{self.dataset}-{model}-{hashlib.sha256(text.encode()).hexdigest()[:16]}.json"


@dataclass(frozen=True)
class FullDataAccuracy:
    """Test accuracies (fractions of 1) of networks trained on the whole real training set."""

    accuracies: tuple[float, ...]
    source: str  # where the number came from (and, for a subset, which), for the report

    @property
    def mean(self) -> float:
        return math.fsum(self.accuracies) / len(self.accuracies)


def full_data_label(subset: int | None) -> str:
    """``full data``, or ``full data (subset of K)`` for the approximation on K images."""
    return "full data" if subset is None else f"full data (subset of {subset})"


def source(subset: int | None, how: str) -> str:
    """``how`` (``cached, 2 networks``), preceded by ``subset of K; `` for the approximation."""
    return how if subset is None else f"subset of {subset}; {how}"


def networks(count: int) -> str:
    return f"{count} network{'s' if count != 1 else ''}"


def _is_accuracy(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1  # NaN fails too


def write_full_data_accuracy(key: FullDataKey, accuracies: list[float], seed: int, root: Path) -> Path:
    """Store the accuracies of ``key`` under ``root`` (atomically; an older entry is replaced)."""
    target = key.file(ensure_directory(root))
    atomic_write_json(target, {"format": FORMAT, "key": asdict(key), "accuracies": list(accuracies),
                               "mean": math.fsum(accuracies) / len(accuracies), "networks": len(accuracies),
                               "seed": seed})
    return target


def read_full_data_accuracy(key: FullDataKey, root: Path) -> FullDataAccuracy | None:
    """The accuracies of ``key`` cached under ``root``, or None when there are none.

    :raises RunDirectoryError: the cache file exists but is not a record of this key (edited,
        truncated, from another version); the message names the file.
    """
    path = key.file(root)
    if not path.is_file():
        return None
    fix = "delete it or run 'dd-harness eval --full-data' again"
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunDirectoryError(f"cannot read the full-data accuracy cache {path} ({exc}); {fix}") from exc
    if not isinstance(record, dict) or record.get("format") != FORMAT or record.get("key") != asdict(key):
        raise RunDirectoryError(f"{path} is not a full-data accuracy record of {key.dataset}/{key.model} "
                                f"under this protocol; {fix}")
    accuracies = record.get("accuracies")
    if not isinstance(accuracies, list) or not accuracies or not all(map(_is_accuracy, accuracies)):
        raise RunDirectoryError(f"{path} holds no accuracies in [0, 1]; {fix}")
    return FullDataAccuracy(tuple(float(a) for a in accuracies),
                            source(key.subset, f"cached, {networks(len(accuracies))}"))


class FullDataCache:
    """The cache entries of one dataset, protocol and subset (None: the whole training set), for
    any architecture and step size (the data digest is computed once, on first use)."""

    def __init__(self, data: "RealDataset", protocol: EvalSettings, *, zca: bool, subset: int | None = None,
                 root: Path | None = None) -> None:
        self.data, self.protocol, self.zca, self.subset = data, protocol, zca, subset
        self.root = root if root is not None else default_cache()
        self._digest: str | None = None

    def key(self, model: str, lr: float) -> FullDataKey:
        self._digest = self._digest or data_digest(self.data)
        return FullDataKey.of(self.data, model, self.protocol, lr, zca=self.zca, subset=self.subset,
                              digest=self._digest)

    def read(self, model: str, lr: float) -> FullDataAccuracy | None:
        return read_full_data_accuracy(self.key(model, lr), self.root)

    def write(self, model: str, lr: float, accuracies: list[float], seed: int) -> FullDataAccuracy:
        """Store a measured accuracy; returns it as the report shows it."""
        write_full_data_accuracy(self.key(model, lr), accuracies, seed, self.root)
        return FullDataAccuracy(tuple(accuracies), source(self.subset, f"measured, {networks(len(accuracies))}"))
