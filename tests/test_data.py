"""Datasets: Fashion-MNIST from the Debian files, IDX parsing, errors, ImageFolder, ZCA."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from mct_plugin.harness.data import load_dataset
from mct_plugin.harness.data.datasets import DEBIAN_FASHION_MNIST
from mct_plugin.harness.errors import ConfigError, DataNotFoundError, UnknownNameError
from mct_plugin.harness.data.idx import read_idx

from helpers import assert_one_line_error, components, run_cli


def get_dataset_spec(name: str):
    return components().datasets.get(name)


def test_fashion_mnist_loads_offline_from_the_debian_package(fmnist):
    assert fmnist.source == str(DEBIAN_FASHION_MNIST)
    assert fmnist.train_images.shape == (60000, 1, 28, 28) and fmnist.test_images.shape == (10000, 1, 28, 28)
    assert fmnist.train_labels.dtype == torch.int64
    assert fmnist.class_counts() == [6000] * 10
    assert abs(float(fmnist.train_images.mean())) < 0.01 and abs(float(fmnist.train_images.std()) - 1) < 0.01
    assert fmnist.spec.class_names[9] == "Ankle boot"


def test_class_indexed_access_returns_images_of_that_class(fmnist):
    images = fmnist.images_of_class(3, 5, torch.Generator().manual_seed(0))
    assert images.shape == (5, 1, 28, 28)
    index = fmnist.class_indices()[3]
    assert all((fmnist.train_labels[index] == 3).tolist())
    rows = {tuple(img.flatten()[:50].tolist()) for img in fmnist.train_images[index[:6000]]}
    assert all(tuple(img.flatten()[:50].tolist()) in rows for img in images)
    with pytest.raises(ConfigError, match="asked for 6001 images of class 3 but FashionMNIST has only 6000"):
        fmnist.images_of_class(3, 6001)


def test_balanced_subset(fmnist):
    subset = fmnist.train_subset(500, seed=3)
    assert subset.class_counts() == [50] * 10
    assert torch.equal(subset.train_images, fmnist.train_subset(500, seed=3).train_images)
    assert subset.test_images is fmnist.test_images


def test_data_path_is_honoured_and_missing_files_are_explained(tmp_path):
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                 "t10k-labels-idx1-ubyte.gz"):
        src = DEBIAN_FASHION_MNIST / name
        if not src.exists():
            pytest.skip("Fashion-MNIST is not installed")
        shutil.copy(src, tmp_path / name)
    assert load_dataset(get_dataset_spec("FashionMNIST"), tmp_path).source == str(tmp_path)
    with pytest.raises(DataNotFoundError) as info:
        load_dataset(get_dataset_spec("MNIST"), tmp_path / "nowhere")
    message = str(info.value)
    assert str(tmp_path / "nowhere") in message and "--download" in message


def test_truncated_idx_file_is_reported(tmp_path):
    data = gzip.decompress((DEBIAN_FASHION_MNIST / "t10k-labels-idx1-ubyte.gz").read_bytes())
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(data[:500])
    with pytest.raises(DataNotFoundError, match="truncated or corrupt"):
        read_idx(path)
    path.write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(DataNotFoundError, match="bad magic number"):
        read_idx(path)
    assert read_idx(DEBIAN_FASHION_MNIST / "t10k-labels-idx1-ubyte.gz").shape == (10000,)


def test_registered_datasets_and_unknown_names():
    assert {"FashionMNIST", "MNIST", "CIFAR10", "CIFAR100", "SVHN", "Tiny"} <= set(components().datasets.names())
    cifar = get_dataset_spec("CIFAR10")
    assert (cifar.channels, cifar.image_size, cifar.num_classes) == (3, (32, 32), 10) and cifar.marks_no_zca
    with pytest.raises(UnknownNameError, match="unknown dataset 'FMNIST'; registered: CIFAR10"):
        get_dataset_spec("FMNIST")


def test_torchvision_datasets_never_download_unless_asked(tmp_path):
    with pytest.raises(DataNotFoundError, match="CIFAR10 not found under .*--download"):
        load_dataset(get_dataset_spec("CIFAR10"), tmp_path)
    assert not any(tmp_path.iterdir())


def test_tiny_imagenet_layout_is_read_from_image_folders(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for wnid in ("n01", "n02"):
        folder = tmp_path / "train" / wnid / "images"
        folder.mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(folder / f"{wnid}_{i}.JPEG")
    (tmp_path / "val" / "images").mkdir(parents=True)
    lines = []
    for i, wnid in enumerate(("n02", "n01")):
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "val" / "images" / f"val_{i}.JPEG")
        lines.append(f"val_{i}.JPEG\t{wnid}\t0\t0\t64\t64")
    (tmp_path / "val" / "val_annotations.txt").write_text("\n".join(lines))
    raw = get_dataset_spec("Tiny").loader(tmp_path, False)
    assert raw.train_images.shape == (6, 3, 64, 64) and raw.train_images.dtype == torch.uint8
    assert raw.train_labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert raw.test_labels.tolist() == [1, 0]


def test_zca_whitening_decorrelates_the_training_images(fmnist):
    from mct_plugin.harness.data import fit_zca

    def mean_abs_correlation(x: torch.Tensor) -> float:
        x = x.flatten(1)
        x = x[:, x.std(0) > 1e-3]
        corr = torch.corrcoef(x.T)
        return float((corr - torch.diag(torch.diag(corr))).abs().mean())

    pixels = fmnist.train_images[:3000] * 0.353 + 0.286  # back to [0, 1], as the ZCA path sees them
    whitened = fit_zca(pixels)(pixels)
    assert mean_abs_correlation(whitened) < 0.5 * mean_abs_correlation(pixels)


def test_cli_reports_missing_dataset_in_one_line(tmp_path):
    proc = run_cli("experts", "--dataset", "MNIST", "--data-path", str(tmp_path / "none"), "--buffer-path",
                   str(tmp_path / "b"), "--num-experts", "1", "--train-epochs", "1")
    assert_one_line_error(proc, "MNIST files not found", str(tmp_path / "none"))
