"""Evaluation: the protocol (fresh networks trained on a set), its vmap-batched variant, and the
cross-architecture table of ``dd-harness eval``."""

from .protocol import EvalResult, evaluate_set, learning_rate_schedule, network_seed, random_real_subset, train_and_test

__all__ = ["EvalResult", "evaluate_set", "learning_rate_schedule", "network_seed", "random_real_subset",
           "train_and_test"]
