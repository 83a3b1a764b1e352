"""Real data: dataset specs and raw loaders, the IDX reader, in-memory normalised datasets.

Names load on first use (PEP 562): the dataset specs are declared without importing torch.
"""

import importlib

_EXPORTS = {"BUILTIN_DATASETS": ".datasets", "DatasetSpec": ".datasets", "RawSplits": ".datasets",
            "RealDataset": ".real", "fit_zca": ".real", "load_dataset": ".real"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):  # PEP 562: the submodule loads on first use
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
