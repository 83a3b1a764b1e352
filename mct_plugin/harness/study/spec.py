"""A study file: what to run (arms x grid points, their experts, their evaluation) as data.

The file is YAML (schema: docs/STUDIES.md). :func:`read_study` checks its shape and returns a
frozen :class:`StudySpec`; every problem is one line naming the file and the key
(``study.yaml: arms.mct: unknown key 'recipie' (known: ...)``). Option *values* are checked later,
when the jobs resolve them with the commands' own option resolution
(:func:`~mct_plugin.harness.command_options.resolve_options`), whose errors name the same keys.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..errors import ConfigError
from ..options import key

SETS = ("final", "best")
"""The sets of a run that ``evaluate.sets`` may name (``images.pt`` and ``best/``)."""


@dataclass(frozen=True)
class Arm:
    """One configuration compared in the study: a recipe plus option values (both optional)."""

    name: str
    recipe: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    experts: Mapping[str, Any] = field(default_factory=dict)
    label: str = ""

    @property
    def title(self) -> str:
        return self.label or self.name


@dataclass(frozen=True)
class Grid:
    """Option values crossed with each other (``seed: [0, 1]``, ``ipc: [1, 10]``) for some arms
    (all of them when ``arms`` is empty)."""

    values: Mapping[str, tuple]
    arms: tuple[str, ...] = ()

    def points(self) -> list[dict[str, Any]]:
        """Every combination of the values, in file order (the last key varies fastest)."""
        names = list(self.values)
        return [dict(zip(names, combo)) for combo in itertools.product(*(self.values[n] for n in names))]


@dataclass(frozen=True)
class Evaluation:
    """``dd-harness eval`` of every distillation's ``sets`` with ``options`` (an eval job each)."""

    sets: tuple[str, ...] = ("final",)
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ReportSpec:
    reference: str | None = None


@dataclass(frozen=True)
class StudySpec:
    """A study file, checked for shape (see the module's docstring)."""

    name: str
    path: Path
    folder: Path
    arms: Mapping[str, Arm]
    grids: tuple[Grid, ...]
    options: Mapping[str, Any] = field(default_factory=dict)
    experts: Mapping[str, Any] = field(default_factory=dict)
    evaluate: Evaluation | None = None
    report: ReportSpec = ReportSpec()
    executor: Mapping[str, Any] = field(default_factory=lambda: {"name": "local"})
    search: Mapping[str, Any] | None = None
    description: str = ""

    def where(self, *keys: str) -> str:
        """``FILE: key.subkey``: where a value of this study was given (for error messages)."""
        return f"{self.path}: {'.'.join(keys)}" if keys else str(self.path)


TOP_KEYS = ("name", "description", "folder", "executor", "options", "experts", "arms", "grid", "evaluate", "report",
            "search")
ARM_KEYS = ("recipe", "options", "experts", "label")


def _mapping(value: Any, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: must be a mapping (it holds a {type(value).__name__})")
    return {str(k): v for k, v in value.items()}


def _known(value: Mapping, known: tuple[str, ...], where: str) -> None:
    unknown = [k for k in value if k not in known]
    if unknown:
        raise ConfigError(f"{where}: unknown key '{unknown[0]}' (known: {', '.join(known)})")


def _options(value: Any, where: str) -> dict[str, Any]:
    """A mapping of option names to values, names normalised (``syn-steps`` -> ``syn_steps``)."""
    return {key(k): v for k, v in _mapping(value, where).items()}


def _arms(value: Any, where) -> dict[str, Arm]:
    arms = _mapping(value, where("arms"))
    if not arms:
        raise ConfigError(f"{where('arms')}: a study needs at least one arm")
    out = {}
    for name, body in arms.items():
        body = _mapping(body, where("arms", name))
        _known(body, ARM_KEYS, where("arms", name))
        recipe = body.get("recipe")
        if recipe is not None and not isinstance(recipe, str):
            raise ConfigError(f"{where('arms', name, 'recipe')}: must be a recipe name (see 'dd-harness recipes')")
        out[name] = Arm(name, recipe, _options(body.get("options"), where("arms", name, "options")),
                        _options(body.get("experts"), where("arms", name, "experts")), str(body.get("label", "")))
    return out


def _grids(value: Any, arms: Mapping[str, Arm], where) -> tuple[Grid, ...]:
    """``grid:`` is one mapping or a list of them; each maps options to lists of values and may
    name its ``arms``."""
    if value is None:
        return (Grid({}),)
    entries = value if isinstance(value, list) else [value]
    grids = []
    for index, entry in enumerate(entries):
        here = ("grid", str(index)) if isinstance(value, list) else ("grid",)
        entry = _mapping(entry, where(*here))
        names = entry.pop("arms", None)
        names = [names] if isinstance(names, str) else list(names or [])
        for name in names:
            if name not in arms:
                raise ConfigError(f"{where(*here, 'arms')}: unknown arm '{name}' (arms: {', '.join(arms)})")
        values = {}
        for option, choices in entry.items():
            choices = choices if isinstance(choices, list) else [choices]
            if not choices:
                raise ConfigError(f"{where(*here, option)}: needs at least one value")
            values[key(option)] = tuple(choices)
        grids.append(Grid(values, tuple(names)))
    return tuple(grids)


def _evaluation(value: Any, where) -> Evaluation | None:
    if value is None:
        return None
    body = _mapping(value, where("evaluate"))
    _known(body, ("sets", "options"), where("evaluate"))
    sets = body.get("sets", ["final"])
    sets = [sets] if isinstance(sets, str) else list(sets)
    for name in sets:
        if name not in SETS:
            raise ConfigError(f"{where('evaluate', 'sets')}: unknown set '{name}' (sets: {', '.join(SETS)})")
    return Evaluation(tuple(sets), _options(body.get("options"), where("evaluate", "options")))


def _executor(value: Any, where) -> dict[str, Any]:
    if value is None:
        return {"name": "local"}
    if isinstance(value, str):
        return {"name": value}
    body = _mapping(value, where("executor"))
    if not isinstance(body.get("name", "local"), str):
        raise ConfigError(f"{where('executor', 'name')}: must be an executor name (see 'dd-harness plugins')")
    return {"name": "local", **body}


def read_study(path: str | Path, folder: str | Path | None = None) -> StudySpec:
    """Read and check the study file ``path``.

    :param folder: where its jobs go (default: the file's ``folder``, relative to the file, else
        ``cache_dir()/studies/NAME``).
    :raises ConfigError: the file cannot be read, or a key is unknown, missing or of the wrong shape
        (one line naming the file and the key).
    """
    import yaml

    from ..io.paths import cache_dir

    path = Path(path).expanduser()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such study file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} cannot be read ({exc})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML ({str(exc).splitlines()[0]})") from None
    data = _mapping(data, str(path))

    def where(*keys: str) -> str:
        return f"{path}: {'.'.join(keys)}"

    _known(data, TOP_KEYS, str(path))
    name = data.get("name")
    if not isinstance(name, str) or not name or "/" in name:
        raise ConfigError(f"{where('name')}: a study needs a name (a word, no '/')")
    arms = _arms(data.get("arms"), where)
    report = _mapping(data.get("report"), where("report"))
    _known(report, ("reference",), where("report"))
    reference = report.get("reference")
    if reference is not None and reference not in arms:
        raise ConfigError(f"{where('report', 'reference')}: unknown arm '{reference}' (arms: {', '.join(arms)})")
    if folder is None:
        folder = (path.parent / data["folder"]) if data.get("folder") else cache_dir() / "studies" / name
    return StudySpec(name=name, path=path, folder=Path(folder).expanduser().absolute(), arms=arms,
                     grids=_grids(data.get("grid"), arms, where),
                     options=_options(data.get("options"), where("options")),
                     experts=_options(data.get("experts"), where("experts")),
                     evaluate=_evaluation(data.get("evaluate"), where), report=ReportSpec(reference),
                     executor=_executor(data.get("executor"), where),
                     search=_mapping(data["search"], where("search")) if data.get("search") is not None else None,
                     description=str(data.get("description", "")))
