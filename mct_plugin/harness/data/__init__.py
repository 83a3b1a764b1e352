"""Real data: dataset specs and raw loaders, the IDX reader, in-memory normalised datasets.

Names load on first use (PEP 562): the dataset specs are declared without importing torch.
"""

from .._registry import lazy_exports

_EXPORTS = {"BUILTIN_DATASETS": ".datasets", "DatasetSpec": ".datasets", "RawSplits": ".datasets",
            "RealDataset": ".real", "ValidationSplit": ".validation", "fit_zca": ".real", "load_dataset": ".real"}
__all__ = sorted(_EXPORTS)


__getattr__ = lazy_exports(__name__, _EXPORTS, globals())  # PEP 562: a submodule loads on first use
