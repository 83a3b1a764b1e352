"""Real data: dataset specs and raw loaders, the IDX reader, in-memory normalised datasets."""

from .datasets import BUILTIN_DATASETS, DatasetSpec, RawSplits
from .real import RealDataset, fit_zca, load_dataset

__all__ = ["BUILTIN_DATASETS", "DatasetSpec", "RawSplits", "RealDataset", "fit_zca", "load_dataset"]
