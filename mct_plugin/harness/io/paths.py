"""Where the project keeps caches (datasets downloaded on request, demo experts)."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "MCT_PLUGIN_CACHE"


def cache_dir() -> Path:
    """``$MCT_PLUGIN_CACHE``, else ``$XDG_CACHE_HOME/mct_plugin``, else ``~/.cache/mct_plugin``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "mct_plugin"


def default_data_root() -> Path:
    """Folder for datasets that torchvision downloads when ``--download`` is given."""
    return cache_dir() / "data"
