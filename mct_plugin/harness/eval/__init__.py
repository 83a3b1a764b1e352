"""Evaluation: the protocol (fresh networks trained on a set), its vmap-batched variant, the
saved-set reader and the cross-architecture table of ``dd-harness eval``. Names load on first use."""

import importlib

_EXPORTS = {name: ".protocol" for name in ("EvalResult", "evaluate_set", "learning_rate_schedule", "network_seed",
                                           "random_real_subset", "train_and_test")}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):  # PEP 562: the submodule loads on first use
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
