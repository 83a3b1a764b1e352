"""``python -m mct_plugin.harness.cli`` (what ``torchrun -m`` runs)."""

import sys

from . import main

sys.exit(main())
