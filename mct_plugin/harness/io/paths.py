"""Where the project keeps caches (datasets downloaded on request, demo experts), and the check
that a folder option was not given a file."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ConfigError

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


def refuse_a_file(path: Path, option: str, hint: str) -> None:
    """Raise :class:`~..errors.ConfigError` if ``path``, the value of ``option`` (a folder option),
    is a file: one line naming both, then ``hint`` (what to pass instead)."""
    if path.is_file():
        raise ConfigError(f"{option} {path} is a file, not a folder; {hint}")
