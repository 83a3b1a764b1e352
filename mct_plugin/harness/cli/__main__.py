"""``python -m mct_plugin.harness.cli`` (what ``torchrun -m`` runs)."""

from . import entry

entry()
