"""Recipes: named, versioned sets of option values shipped by plugins (``--recipe NAME``).

A recipe is a YAML file::

    name: myplugin/cifar10-ipc1
    version: 1
    description: my matcher on CIFAR-10, 1 image per class
    source: the paper or command line the values come from
    notes: ...            # optional: deviations, quirks of the public code
    options:              # any option of the command, by its name (dashes or underscores)
      dataset: CIFAR10
      syn_steps: 60
      ...

Options are applied after the defaults and before a ``--config`` file and the command line
(which override them); ``config.json`` records the recipe's name and version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .options import key, read_config_file


@dataclass(frozen=True)
class Recipe:
    name: str
    version: int
    description: str
    options: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    notes: str = ""
    command: str = "distill"
    path: Path | None = None

    @property
    def where(self) -> str:
        return f"recipe {self.name}" + (f" ({self.path})" if self.path else "")


def read_recipe(path: str | Path) -> Recipe:
    """Read and check one recipe file (a one-line error names the file and the problem)."""
    path = Path(path)
    data = read_config_file(path)
    missing = [k for k in ("name", "version", "options") if k not in data]
    if missing:
        raise ConfigError(f"{path}: a recipe needs {', '.join(missing)}")
    unknown = sorted(set(data) - {"name", "version", "description", "source", "notes", "options", "command"})
    if unknown:
        raise ConfigError(f"{path}: unknown recipe field(s) {', '.join(unknown)}")
    if not isinstance(data["options"], dict):
        raise ConfigError(f"{path}: 'options' must be a mapping of option names to values")
    if not isinstance(data["version"], int) or isinstance(data["version"], bool) or data["version"] < 1:
        raise ConfigError(f"{path}: 'version' must be a positive integer")
    return Recipe(name=str(data["name"]), version=data["version"], description=str(data.get("description", "")),
                  options={key(str(k)): v for k, v in data["options"].items()}, source=str(data.get("source", "")),
                  notes=str(data.get("notes", "")), command=str(data.get("command", "distill")), path=path)


def recipes_in(directory: str | Path) -> list[Recipe]:
    """Every ``*.yaml`` recipe in ``directory`` (a plugin's packaged recipe folder)."""
    return [read_recipe(p) for p in sorted(Path(directory).glob("*.yaml"))]
