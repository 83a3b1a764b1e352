"""Options from one source: a dataclass field carries an option's name, type, default, valid
range and help, and everything else is generated from it.

* :func:`option` declares a field (``lr_img: float = option(1000.0, "...", above=0)``);
* :func:`validate_fields` checks every field of an instance once (types, finiteness, ranges,
  choices) and raises :class:`~mct_plugin.harness.errors.ConfigError` naming the option as it is
  spelt on the command line (``--lr-img must be a finite number (got nan)``);
* :func:`add_options` adds the fields to an ``argparse`` parser (defaults suppressed, so that the
  options a user typed can be told apart from defaults), :func:`normalise_argv` lets
  ``--syn_steps`` stand for ``--syn-steps``;
* :func:`from_mapping` builds a config from one mapping of values (a ``config.json``, a layer of
  the command line), coerced to the field types and validated (the CLI merges the layers
  defaults < recipe < ``--config`` file < command line, see ``cli/_options.py``);
* :func:`option_table` renders the fields as the README's Markdown tables.

Config files, recipes, the command line and a run's ``config.json`` all go through this module,
so an option has one spelling, one default and one range everywhere.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import types
import typing
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence, TypeVar, Union

from .errors import ConfigError

C = TypeVar("C")
MAX_INT = 2**63 - 1
_MISSING = dataclasses.MISSING


@dataclasses.dataclass(frozen=True)
class NoOptions:
    """The options of a component that has none (the default ``Options`` of every component kind)."""


def option(default: Any = _MISSING, help: str = "", *, minimum: float | None = None, above: float | None = None,
           maximum: float | None = None, choices: Sequence[str] | None = None, allow_inf: bool = False,
           negative: str | None = None, negative_help: str | None = None, metavar: str | None = None,
           cli: bool = True) -> Any:
    """A dataclass field that is also a command-line option.

    :param minimum: smallest allowed value (inclusive); ``above``: exclusive lower bound.
    :param maximum: largest allowed value (inclusive). Integers are always at most 2**63 - 1.
    :param choices: the allowed strings.
    :param allow_inf: accept ``inf`` for a float (NaN is never accepted).
    :param negative: for a bool that defaults to True (or to None: unset, both flags are offered),
        the flag that turns it off (``--no-dsa``).
    :param negative_help: what that flag does, in its own words ("do not ...", "skip ..."); without
        it the flag's help is ``help`` prefixed with "turn off:" (``help`` describes the option
        itself, as config files and recipes set it).
    :param cli: False keeps the field out of the command line (set by code or config files).
    """
    metadata = {"help": help, "minimum": minimum, "above": above, "maximum": maximum,
                "choices": tuple(choices) if choices else None, "allow_inf": allow_inf, "negative": negative,
                "negative_help": negative_help, "metavar": metavar, "cli": cli}
    if isinstance(default, (dict, list)):
        return dataclasses.field(default_factory=lambda d=default: type(d)(d), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def flag(name: str) -> str:
    """``lr_img`` -> ``--lr-img``."""
    return "--" + name.replace("_", "-")


def negative_flag(name: str, meta: Mapping[str, Any]) -> tuple[str, str]:
    """The flag that turns off a bool option that defaults to True, and its help: what the flag
    does, never the description of what it turns off."""
    return (meta.get("negative") or flag("no_" + name),
            meta.get("negative_help") or f"turn off: {meta.get('help', '') or name.replace('_', ' ')}")


def key(name: str) -> str:
    """``lr-img`` / ``--lr-img`` / ``lr_img`` -> ``lr_img``."""
    return name.lstrip("-").replace("-", "_")


# -- field types --------------------------------------------------------------------------
@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    """``typing.get_type_hints(cls)``, evaluated once per class (every command resolves its options
    through it hundreds of times)."""
    return typing.get_type_hints(cls)


def _field_type(cls: type, field: dataclasses.Field) -> tuple[type, bool]:
    """(base type, optional) of a field: ``int | None`` -> (int, True); ``tuple[str, ...]`` -> (tuple, False)."""
    hint = _type_hints(cls)[field.name]
    optional = False
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional, hint = True, args[0]
        origin = typing.get_origin(hint)
    if origin in (tuple, list):
        return tuple, optional
    if origin is dict or hint is dict:
        return dict, optional
    return hint, optional


def base_type(cls: type, name: str) -> type:
    """The type of field ``name`` of ``cls`` without ``None``/containers' arguments (``int | None`` -> int)."""
    return _field_type(cls, fields_of(cls)[name])[0]


def fields_of(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def _describe(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def coerce(cls: type, name: str, value: Any, where: str = "") -> Any:
    """``value`` (from YAML, JSON or a string) as the type of field ``name`` of ``cls``."""
    field = fields_of(cls)[name]
    base, optional = _field_type(cls, field)
    at = f"{where}: " if where else ""
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{at}{flag(name)} needs a value (got nothing)")
    if base is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise ConfigError(f"{at}{flag(name)} must be true or false (got {_describe(value)})")
    if base is int:
        if isinstance(value, bool) or not isinstance(value, (int, str, float)):
            raise ConfigError(f"{at}{flag(name)} must be an integer (got {_describe(value)})")
        if isinstance(value, float):
            if not value.is_integer():
                raise ConfigError(f"{at}{flag(name)} must be an integer (got {value})")
            return int(value)
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"{at}{flag(name)} must be an integer (got {_describe(value)})") from None
    if base is float:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ConfigError(f"{at}{flag(name)} must be a number (got {_describe(value)})")
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"{at}{flag(name)} must be a number (got {_describe(value)})") from None
    if base is tuple:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)) or not all(isinstance(v, str) for v in items):
            raise ConfigError(f"{at}{flag(name)} must be a list of names (got {_describe(value)})")
        return tuple(v.strip() for v in items if v.strip())
    if base is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{at}{name} must be a mapping (got {_describe(value)})")
        return dict(value)
    if base is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{at}{flag(name)} must be a string (got {_describe(value)})")
        return str(value)
    return value


# -- validation -----------------------------------------------------------------------------
def check_value(cls: type, name: str, value: Any) -> None:
    """Raise :class:`ConfigError` unless ``value`` is valid for field ``name`` of ``cls``."""
    field = fields_of(cls)[name]
    meta = field.metadata
    base, optional = _field_type(cls, field)
    spelt = flag(name)
    if value is None:
        if not optional:
            raise ConfigError(f"{spelt} needs a value")
        return
    if base is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{spelt} must be an integer (got {_describe(value)})")
        if abs(value) > MAX_INT:
            raise ConfigError(f"{spelt} {value} is out of range (at most 2**63 - 1 in magnitude)")
    elif base is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{spelt} must be a number (got {_describe(value)})")
        if math.isnan(value) or (math.isinf(value) and not meta.get("allow_inf")):
            raise ConfigError(f"{spelt} must be a finite number (got {value})")
    elif base is str and not isinstance(value, str):
        raise ConfigError(f"{spelt} must be a string (got {_describe(value)})")
    elif base is bool and not isinstance(value, bool):
        raise ConfigError(f"{spelt} must be true or false (got {_describe(value)})")
    if base in (int, float):
        low, strict, high = meta.get("minimum"), meta.get("above"), meta.get("maximum")
        if low is not None and value < low:
            raise ConfigError(f"{spelt} must be at least {low:g} (got {value:g})")
        if strict is not None and not value > strict:
            raise ConfigError(f"{spelt} must be greater than {strict:g} (got {value:g})")
        if high is not None and value > high:
            raise ConfigError(f"{spelt} must be at most {high:g} (got {value:g})")
    choices = meta.get("choices")
    if choices and value not in choices:
        raise ConfigError(f"{spelt} must be one of {', '.join(choices)} (got {_describe(value)})")


def validate_fields(instance: Any) -> None:
    """Check every field of a config dataclass (see :func:`check_value`)."""
    for name in fields_of(type(instance)):
        check_value(type(instance), name, getattr(instance, name))


def values_for(cls: type, values: Mapping[str, Any], where: str = "") -> dict[str, Any]:
    """The entries of ``values`` that are fields of ``cls``, coerced to the field types."""
    known = fields_of(cls)
    return {name: coerce(cls, name, value, where) for name, value in values.items() if name in known}


def from_mapping(cls: type[C], values: Mapping[str, Any], where: str = "") -> C:
    """``cls(**values)`` for the known keys, coerced and validated (unknown keys are ignored)."""
    instance = cls(**values_for(cls, values, where))
    try:
        validate_fields(instance)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}" if where else str(exc)) from None
    return instance


# -- argparse --------------------------------------------------------------------------------
def _argparse_type(cls: type, name: str):
    def parse(text: str) -> Any:
        try:
            return coerce(cls, name, text)
        except ConfigError as exc:  # argparse turns ArgumentTypeError into "argument --x: message"
            raise argparse.ArgumentTypeError(str(exc).split(": ", 1)[-1] if ": " in str(exc) else str(exc)) from None

    parse.__name__ = _field_type(cls, fields_of(cls)[name])[0].__name__
    return parse


CONFIG_FILE_HELP = "YAML (or JSON) file of option values; the command line overrides them"


def add_options(parser, cls: type, *, skip: Iterable[str] = (), defaults: Mapping[str, Any] | None = None,
                choices: Mapping[str, Sequence[str]] | None = None, config_file: bool = False) -> list[str]:
    """Add the command-line fields of ``cls`` to ``parser`` (or an argument group).

    Defaults are *suppressed* in the namespace (a field appears only when typed); the help text
    shows the field default (or ``defaults[name]``). ``choices`` gives the allowed values of
    fields whose choices are only known at run time (registered names). With ``config_file``,
    ``--config FILE`` is added too (read by :func:`~.command_options.options_from_command_line`). Returns the
    names added.
    """
    if config_file:
        parser.add_argument("--config", metavar="FILE", default=None, help=CONFIG_FILE_HELP)
    added = []
    for name, field in fields_of(cls).items():
        meta = field.metadata
        if name in skip or meta.get("cli") is False:
            continue
        base, _ = _field_type(cls, field)
        default = (defaults or {}).get(name, field.default if field.default is not _MISSING else None)
        text = meta.get("help", "")
        if base is bool:
            if default is None:  # unset: the default comes from elsewhere (a run's config), both flags set it
                parser.add_argument(flag(name), dest=name, action="store_true", default=argparse.SUPPRESS, help=text)
            if default is None or default:
                spelt, text = negative_flag(name, meta)
                parser.add_argument(spelt, dest=name, action="store_false", default=argparse.SUPPRESS, help=text)
            else:
                parser.add_argument(flag(name), dest=name, action="store_true", default=argparse.SUPPRESS, help=text)
        else:
            shown = ",".join(default) if isinstance(default, tuple) else default
            suffix = f" (default: {shown})" if shown not in (None, "", ()) else ""
            allowed = (choices or {}).get(name) or meta.get("choices")
            parser.add_argument(flag(name), dest=name, type=_argparse_type(cls, name), default=argparse.SUPPRESS,
                                choices=allowed, metavar=None if allowed else meta.get("metavar") or name.upper(),
                                help=text + suffix)
        added.append(name)
    return added


def command_line(cls: type, values: Mapping[str, Any]) -> list[str]:
    """The arguments that set ``values`` (field name -> value) of ``cls``, in their order: the
    inverse of parsing (a bool is its flag, or nothing where the value is the default).

    :raises ConfigError: a name that is not a command-line field of ``cls``.
    """
    fields = fields_of(cls)
    arguments: list[str] = []
    for name, value in values.items():
        if name not in fields or fields[name].metadata.get("cli") is False:
            raise ConfigError(f"{flag(name)} is not an option of {cls.__name__}")
        meta, (base, _) = fields[name].metadata, _field_type(cls, fields[name])
        if base is bool:
            default = fields[name].default is True
            if bool(value) != default:
                arguments.append(negative_flag(name, meta)[0] if default else flag(name))
        elif value is not None:
            arguments += [flag(name), ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)]
    return arguments


def typed_on_command_line(namespace: argparse.Namespace, names: Iterable[str]) -> dict[str, Any]:
    """The options among ``names`` that the user typed (defaults are suppressed)."""
    given = vars(namespace)
    return {name: given[name] for name in names if name in given}


def normalise_argv(argv: Sequence[str]) -> list[str]:
    """``--syn_steps 20`` -> ``--syn-steps 20`` (option names only; values are left alone)."""
    out = []
    for token in argv:
        if token.startswith("--") and len(token) > 2:
            name, eq, value = token.partition("=")
            token = "--" + name[2:].replace("_", "-") + eq + value
        out.append(token)
    return out


# -- config files ------------------------------------------------------------------------------
def read_config_file(path: str | Path) -> dict[str, Any]:
    """A YAML (or JSON) mapping of option names to values, keys normalised to field names."""
    import yaml

    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"--config {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--config {path} cannot be read ({exc})") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{path} is not valid YAML ({first})") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path} must hold a mapping of option names to values (it holds a {type(data).__name__})")
    return {key(str(k)): v for k, v in data.items()}


# -- documentation ---------------------------------------------------------------------------
def option_table(cls: type) -> str:
    """The command-line fields of ``cls`` as a Markdown table (option, default, meaning): what the
    README shows, generated from the declarations so that it cannot drift from them."""
    rows = ["| option | default | meaning |", "|---|---|---|"]
    for name, field in fields_of(cls).items():
        meta = field.metadata
        if meta.get("cli") is False:
            continue
        base, _ = _field_type(cls, field)
        default = field.default if field.default is not _MISSING else None
        text = meta.get("help", "")
        if base is bool:
            spelt, text = negative_flag(name, meta) if default else (flag(name), text)
            shown = "on" if default else "off"
        else:
            values = "\\|".join(meta["choices"]) if meta.get("choices") else meta.get("metavar") or name.upper()
            spelt = f"{flag(name)} {values}"
            shown = ",".join(default) if isinstance(default, tuple) else ("-" if default is None else str(default))
        rows.append(f"| `{spelt}` | {shown} | {text} |")
    return "\n".join(rows)
