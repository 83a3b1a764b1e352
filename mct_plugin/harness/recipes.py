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
    experts:              # optional: the `dd-harness experts` options of the buffers it was made for
      num_experts: 100    # (dataset, model and zca come from `options`)
      train_epochs: 50
      augmentation: dsa

Options are applied after the defaults and before a ``--config`` file and the command line
(which override them); ``config.json`` records the recipe's name and version. ``dd-harness
recipes NAME`` prints the ``experts`` command of the buffers, and ``distill --recipe NAME``
checks the buffers it is given against them (:func:`expert_mismatches`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Mapping

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
    experts: dict[str, Any] = field(default_factory=dict)

    # options of the distillation that are options of the experts too
    SHARED_WITH_EXPERTS: ClassVar[tuple[str, ...]] = ("dataset", "model", "zca")

    @property
    def where(self) -> str:
        return f"recipe {self.name}" + (f" ({self.path})" if self.path else "")

    def expert_options(self) -> dict[str, Any]:
        """The ``dd-harness experts`` options of the buffers the recipe was made for: its dataset,
        model and zca, then its ``experts`` section (empty if the recipe states none)."""
        if not self.experts:
            return {}
        return {**{k: self.options[k] for k in self.SHARED_WITH_EXPERTS if k in self.options}, **self.experts}


def read_recipe(path: str | Path) -> Recipe:
    """Read and check one recipe file (a one-line error names the file and the problem)."""
    path = Path(path)
    data = read_config_file(path)
    missing = [k for k in ("name", "version", "options") if k not in data]
    if missing:
        raise ConfigError(f"{path}: a recipe needs {', '.join(missing)}")
    unknown = sorted(set(data) - {"name", "version", "description", "source", "notes", "options", "command",
                                  "experts"})
    if unknown:
        raise ConfigError(f"{path}: unknown recipe field(s) {', '.join(unknown)}")
    for section in ("options", "experts"):
        if not isinstance(data.get(section, {}), dict):
            raise ConfigError(f"{path}: '{section}' must be a mapping of option names to values")
    if not isinstance(data["version"], int) or isinstance(data["version"], bool) or data["version"] < 1:
        raise ConfigError(f"{path}: 'version' must be a positive integer")
    return Recipe(name=str(data["name"]), version=data["version"], description=str(data.get("description", "")),
                  options={key(str(k)): v for k, v in data["options"].items()}, source=str(data.get("source", "")),
                  notes=str(data.get("notes", "")), command=str(data.get("command", "distill")), path=path,
                  experts={key(str(k)): v for k, v in (data.get("experts") or {}).items()})


def is_recipe_file(name: str) -> bool:
    """Whether a recipe reference names a file (``.yaml``/``.yml``) rather than a registered recipe."""
    return name.endswith((".yaml", ".yml"))


def find_recipe(recipes: Any, name: str, relative_to: Path | None = None) -> Recipe:
    """The registered recipe ``name`` (``recipes``: the recipe registry), or the recipe file it
    names when it ends in ``.yaml``/``.yml`` (a path relative to ``relative_to`` where given: a
    study file's folder), e.g. the recipe a search exported.

    :raises UnknownNameError: no such registered recipe. :raises ConfigError: no such file, or a bad one.
    """
    if not is_recipe_file(name):
        return recipes.get(name)
    path = Path(name).expanduser()
    if not path.is_absolute() and relative_to is not None:
        path = relative_to / path
    if not path.is_file():
        raise ConfigError(f"recipe file {path}: no such file")
    return read_recipe(path)


def recipes_in(directory: str | Path) -> list[Recipe]:
    """Every ``*.yaml`` recipe in ``directory`` (a plugin's packaged recipe folder)."""
    return [read_recipe(p) for p in sorted(Path(directory).glob("*.yaml"))]


# expert options that do not make other experts: how many, how they are filed, which seed (the
# epochs are compared with what the buffers hold, not with what they record)
NOT_COMPARED = frozenset({"num_experts", "save_interval", "seed", "train_epochs"})


def expert_mismatches(recipe: Recipe, run: Mapping[str, Any], num_epochs: int,
                      recorded: Mapping[str, Any] | None) -> list[str]:
    """How the buffers of a run differ from the experts ``recipe`` was made for, one phrase each.

    :param run: the run's options; its dataset, model and zca are what the buffers must have (a
        run may change the recipe's).
    :param num_epochs: the epochs the buffers span (read from them), compared with the recipe's
        ``train_epochs``. Whether they reach ``max_start_epoch + expert_epochs`` is not repeated
        here: the sampler knows how far its segments reach, and says in one line, with the
        values, where it caps the start epoch.
    :param recorded: the expert-training options the buffers record, or None (e.g. buffers of the
        public ``buffer.py``, which records none): then only their length is checked.
    """
    found = []
    wanted = {**recipe.expert_options(), **{k: run[k] for k in Recipe.SHARED_WITH_EXPERTS if k in run}}
    if "train_epochs" in wanted and num_epochs != wanted["train_epochs"]:
        found.append(f"{num_epochs} epochs (the recipe's experts train {wanted['train_epochs']})")
    for name, value in (recorded or {}).items():
        if name in wanted and name not in NOT_COMPARED and value != wanted[name]:
            made_for = "this run" if name in Recipe.SHARED_WITH_EXPERTS else "the recipe"
            found.append(f"{name} {_shown(value)} ({made_for}: {_shown(wanted[name])})")
    return found


def _shown(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) or value is None else str(value)
