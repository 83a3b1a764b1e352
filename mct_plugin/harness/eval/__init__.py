"""Evaluation: the protocol (fresh networks trained on a set), its vmap-batched variant, the
saved-set reader and the cross-architecture table of ``dd-harness eval``. Names load on first use."""

from .._registry import lazy_exports

_EXPORTS = {name: ".protocol" for name in ("EvalResult", "evaluate_set", "learning_rate_schedule", "network_seed",
                                           "random_real_subset", "train_and_test")}
__all__ = sorted(_EXPORTS)


__getattr__ = lazy_exports(__name__, _EXPORTS, globals())  # PEP 562: a submodule loads on first use
