"""Datasets: per-dataset shape, classes, normalisation and a raw loader (:class:`DatasetSpec`).

Each loader returns uint8 image tensors (N, C, H, W) and int64 labels for the train and test
splits, plus a description of where the files came from; a spec's ``train_loader`` reads the train
split alone (``--validation K`` scores held-out training images and never opens the test files).
Fashion-MNIST (the default) is read from the Debian ``dataset-fashion-mnist`` files when they
exist, so it works offline; torchvision datasets download only when ``download=True``. The built-in specs
(:data:`BUILTIN_DATASETS`) reach the registry through the harness's default plugin
(``dd_register_datasets``), like a third-party plugin's; a run finds its spec in its components
(``components.datasets.get(name)``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Callable, NamedTuple

import numpy as np

if TYPE_CHECKING:
    import torch

from ..errors import ConfigError, DamagedDataError, DataNotFoundError
from ..io.paths import default_data_root
from .idx import find_idx_file, read_idx

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


class RawSplits(NamedTuple):
    train_images: torch.Tensor  # uint8 (N, C, H, W)
    train_labels: torch.Tensor  # int64 (N,)
    test_images: torch.Tensor | None  # None: read without its test split (DatasetSpec.load(test=False))
    test_labels: torch.Tensor | None
    source: str


Loader = Callable[[Path | None, bool], RawSplits]


@dataclass(frozen=True)
class DatasetSpec:
    """Static facts about a dataset; ``loader(data_path, download)`` reads its files, and
    ``train_loader`` (the same signature; optional for a plugin's dataset, which then cannot hold
    out a validation split) its train split alone, with no test tensors."""

    name: str
    channels: int
    image_size: tuple[int, int]
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    loader: Loader = field(repr=False, compare=False)
    class_names: tuple[str, ...] = ()
    # MTT buffer folders carry "_NO_ZCA" only for these datasets (public buffer.py rule)
    marks_no_zca: bool = False
    train_loader: Loader | None = field(default=None, repr=False, compare=False)

    def load(self, data_path: Path | None = None, download: bool = False, *, test: bool = True) -> RawSplits:
        """The raw splits (``test=False``: the train split alone, the test files never opened),
        checked against the spec: uint8 (N, C, H, W) images of the spec's size, one int64 label per
        image in ``0..num_classes-1`` (a one-line error names the source).

        :raises ConfigError: ``test=False`` for a dataset without a ``train_loader``."""
        if not test and self.train_loader is None:
            raise ConfigError(f"--validation: dataset {self.name} cannot read its training images alone (its "
                              f"DatasetSpec has no train_loader), so its test split would be read too")
        raw = self.loader(data_path, download) if test else self.train_loader(data_path, download)
        for split in ("train", "test") if test else ("train",):
            images, labels = getattr(raw, f"{split}_images"), getattr(raw, f"{split}_labels")
            expected = (self.channels, *self.image_size)
            if images.dim() != 4 or tuple(images.shape[1:]) != expected:
                raise DamagedDataError(f"{raw.source}: the {split} images are {tuple(images.shape[1:])}, "
                                       f"{self.name} has {expected}")
            if labels.dim() != 1 or len(labels) != len(images) or len(images) == 0:
                raise DamagedDataError(f"{raw.source}: {len(images)} {split} images but {len(labels)} labels")
            if int(labels.min()) < 0 or int(labels.max()) >= self.num_classes:
                raise DamagedDataError(f"{raw.source}: {split} labels run {int(labels.min())}..{int(labels.max())}, "
                                       f"{self.name} has classes 0..{self.num_classes - 1}")
        return raw

    def buffer_subdir(self, model: str, zca: bool) -> Path:
        """``{dataset}[_NO_ZCA]/{model}``, the folder the public code uses below its buffer root."""
        return Path(self.name + ("_NO_ZCA" if self.marks_no_zca and not zca else "")) / model


# ----------------------------------------------------------------------------- MNIST family
_TRAIN_STEMS = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte"}
_TEST_STEMS = {"test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}


def _idx_files_in(directory: Path, with_test: bool, partial_ok: bool) -> dict[str, Path] | None:
    """The IDX files of the train split (and of the test split, ``with_test``) in ``directory``;
    None where some are missing.

    :raises DataNotFoundError: ``directory`` holds some of the files but not all those wanted
        (unless ``partial_ok``: a download is about to complete them); names the first missing one.
    """
    stems = {**_TRAIN_STEMS, **(_TEST_STEMS if with_test else {})}
    found = {key: find_idx_file(directory, stem) for key, stem in stems.items()}
    if all(found.values()):
        return found  # type: ignore[return-value]
    holds_some = any(find_idx_file(directory, stem) for stem in {**_TRAIN_STEMS, **_TEST_STEMS}.values())
    if holds_some and not partial_ok:
        key = next(key for key, path in found.items() if path is None)
        why = (" (the test split; with --validation K evaluations score held-out training images and no test "
               "file is read)" if key in _TEST_STEMS else " (the train split)")
        raise DataNotFoundError(f"{directory} has no {stems[key]}[.gz]{why}")
    return None


def _read_idx_splits(files: dict[str, Path], source: str) -> RawSplits:
    import torch  # loading data needs torch; declaring the dataset does not

    arrays = {key: read_idx(path) for key, path in files.items()}
    splits = ("train", "test") if "test_images" in files else ("train",)
    for split in splits:
        n_img, n_lab = len(arrays[f"{split}_images"]), len(arrays[f"{split}_labels"])
        if n_img != n_lab:
            raise DataNotFoundError(
                f"{files[f'{split}_images']} holds {n_img} images but "
                f"{files[f'{split}_labels']} holds {n_lab} labels"
            )

    def images(key: str) -> torch.Tensor:
        return torch.from_numpy(np.array(arrays[key], dtype=np.uint8)).unsqueeze(1)

    def labels(key: str) -> torch.Tensor:
        return torch.from_numpy(np.array(arrays[key], dtype=np.int64))

    test = (images("test_images"), labels("test_labels")) if "test" in splits else (None, None)
    return RawSplits(images("train_images"), labels("train_labels"), *test, source)


def _mnist_family_loader(torchvision_name: str, debian_dir: Path | None, debian_package: str | None) -> Loader:
    def load(data_path: Path | None, download: bool, with_test: bool = True) -> RawSplits:
        root = data_path or default_data_root()
        candidates = []
        if data_path is not None:
            candidates += [data_path, data_path / torchvision_name / "raw"]
        if debian_dir is not None:
            candidates.append(debian_dir)
        candidates.append(default_data_root() / torchvision_name / "raw")
        for directory in candidates:
            files = _idx_files_in(directory, with_test, partial_ok=download)
            if files:
                try:
                    return _read_idx_splits(files, str(directory))
                except DamagedDataError as exc:
                    if directory == debian_dir:
                        fix = f"reinstall the Debian package (apt-get install --reinstall {debian_package})"
                    else:  # e.g. an interrupted download left a partial file
                        fix = (f"delete the broken file and fetch it again (dd-harness data --dataset "
                               f"{torchvision_name} --data-path {root} --download)")
                    raise DamagedDataError(f"{exc}; {fix}, or pass --data-path DIR holding intact IDX files") from exc
        if download:
            import torchvision

            try:
                for train in (True, False) if with_test else (True,):
                    getattr(torchvision.datasets, torchvision_name)(str(root), train=train, download=True)
            except Exception as exc:
                raise DataNotFoundError(f"downloading {torchvision_name} into {root} failed: {exc}") from exc
            files = _idx_files_in(root / torchvision_name / "raw", with_test, partial_ok=False)
            if files:
                return _read_idx_splits(files, str(root / torchvision_name / "raw"))
        looked = ", ".join(str(c) for c in candidates)
        hint = f"install the Debian package {debian_package} (apt-get install {debian_package}), " if debian_package else ""
        raise DataNotFoundError(
            f"{torchvision_name} files not found (looked in: {looked}); {hint}pass --data-path DIR "
            f"holding the {'four' if with_test else 'two training'} IDX files, or add --download"
        )

    return load


# ----------------------------------------------------------------------------- torchvision
def _torchvision_loader(name: str, train_kw: dict, test_kw: dict, fields: Callable) -> Loader:
    def load(data_path: Path | None, download: bool, with_test: bool = True) -> RawSplits:
        import torchvision

        root = data_path or default_data_root()
        cls = getattr(torchvision.datasets, name)
        try:
            train = cls(str(root), download=download, **train_kw)
            test = cls(str(root), download=download, **test_kw) if with_test else None
        except ImportError as exc:
            raise DataNotFoundError(f"{name} needs an extra package: {exc}") from exc
        except Exception as exc:  # torchvision raises RuntimeError for missing/corrupt files
            if download:
                raise DataNotFoundError(f"downloading {name} into {root} failed: {exc}") from exc
            raise DataNotFoundError(
                f"{name} not found under {root}; pass --data-path DIR holding torchvision's "
                f"{name} files, or add --download"
            ) from exc
        return RawSplits(*fields(train), *(fields(test) if with_test else (None, None)), str(root))

    return load


def _hwc_fields(ds) -> tuple[torch.Tensor, torch.Tensor]:
    import torch  # loading data needs torch; declaring the dataset does not

    images = torch.from_numpy(np.ascontiguousarray(ds.data)).permute(0, 3, 1, 2).contiguous()
    return images, torch.as_tensor(np.asarray(ds.targets), dtype=torch.int64)


def _svhn_fields(ds) -> tuple[torch.Tensor, torch.Tensor]:
    import torch  # loading data needs torch; declaring the dataset does not

    return torch.from_numpy(np.ascontiguousarray(ds.data)), torch.as_tensor(ds.labels, dtype=torch.int64)


# ----------------------------------------------------------------------------- ImageFolder
def _read_image_folder(directory: Path, class_to_idx: dict[str, int], size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    import torch  # loading data needs torch; declaring the dataset does not

    from PIL import Image

    images, labels = [], []
    for class_name, index in sorted(class_to_idx.items()):
        for path in sorted((directory / class_name).rglob("*")):
            if path.suffix.lower() not in {".jpeg", ".jpg", ".png", ".bmp"}:
                continue
            with Image.open(path) as img:
                img = img.convert("RGB").resize((size[1], size[0]))
                images.append(torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1))
            labels.append(index)
    if not images:
        raise DataNotFoundError(f"no images found under {directory}")
    return torch.stack(images), torch.tensor(labels, dtype=torch.int64)


def _tiny_validation(val_dir: Path, class_to_idx: dict[str, int], size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    import torch  # loading data needs torch; declaring the dataset does not

    """Tiny-ImageNet's val split: class folders, or the official images/ + annotations file."""
    if all((val_dir / c).is_dir() for c in class_to_idx):
        return _read_image_folder(val_dir, class_to_idx, size)
    annotations = val_dir / "val_annotations.txt"
    if not annotations.is_file():
        raise DataNotFoundError(f"{val_dir} has neither class folders nor val_annotations.txt")
    from PIL import Image

    images, labels = [], []
    for line in annotations.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) < 2 or parts[1] not in class_to_idx:
            continue
        with Image.open(val_dir / "images" / parts[0]) as img:
            img = img.convert("RGB").resize((size[1], size[0]))
            images.append(torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1))
        labels.append(class_to_idx[parts[1]])
    return torch.stack(images), torch.tensor(labels, dtype=torch.int64)


def _tiny_loader(data_path: Path | None, download: bool, with_test: bool = True) -> RawSplits:
    root = data_path or default_data_root() / "tiny-imagenet-200"
    train_dir = root / "train"
    if not train_dir.is_dir():
        raise DataNotFoundError(
            f"Tiny-ImageNet not found: {train_dir} does not exist; pass --data-path DIR holding "
            f"train/ and val/ in the tiny-imagenet-200 layout (no automatic download)"
        )
    classes = sorted(p.name for p in train_dir.iterdir() if p.is_dir())
    class_to_idx = {c: i for i, c in enumerate(classes)}
    size = TINY_SIZE
    train_x, train_y = _read_image_folder(train_dir, class_to_idx, size)
    test = _tiny_validation(root / "val", class_to_idx, size) if with_test else (None, None)
    return RawSplits(train_x, train_y, *test, str(root))


# ----------------------------------------------------------------------------- registrations
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")

_CIFAR_MEAN, _CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)
TINY_SIZE = (64, 64)


def _builtin(name: str, channels: int, image_size: tuple[int, int], num_classes: int, mean: tuple[float, ...],
             std: tuple[float, ...], loader: Callable[..., RawSplits], **facts) -> DatasetSpec:
    """A built-in spec: ``loader(data_path, download, with_test=True)`` reads both splits, and
    with ``with_test=False`` (the spec's ``train_loader``) the train split alone."""
    return DatasetSpec(name, channels, image_size, num_classes, mean, std, loader,
                       train_loader=partial(loader, with_test=False), **facts)


BUILTIN_DATASETS = [
    _builtin(
        "FashionMNIST", 1, (28, 28), 10, (0.2861,), (0.3530,),
        _mnist_family_loader("FashionMNIST", DEBIAN_FASHION_MNIST, "dataset-fashion-mnist"),
        class_names=FASHION_CLASSES,
    ),
    _builtin(
        "MNIST", 1, (28, 28), 10, (0.1307,), (0.3081,),
        _mnist_family_loader("MNIST", None, None), class_names=tuple(str(i) for i in range(10)),
    ),
    _builtin(
        "CIFAR10", 3, (32, 32), 10, _CIFAR_MEAN, _CIFAR_STD,
        _torchvision_loader("CIFAR10", {"train": True}, {"train": False}, _hwc_fields), marks_no_zca=True,
    ),
    _builtin(
        "CIFAR100", 3, (32, 32), 100, _CIFAR_MEAN, _CIFAR_STD,
        _torchvision_loader("CIFAR100", {"train": True}, {"train": False}, _hwc_fields), marks_no_zca=True,
    ),
    _builtin(
        "SVHN", 3, (32, 32), 10, (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970),
        _torchvision_loader("SVHN", {"split": "train"}, {"split": "test"}, _svhn_fields),
    ),
    _builtin(
        "Tiny", 3, TINY_SIZE, 200, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), _tiny_loader,
    ),
]
