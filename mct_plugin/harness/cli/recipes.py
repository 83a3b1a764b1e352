"""``dd-harness recipes``: the named option sets that plugins ship (``distill --recipe NAME``)."""

from __future__ import annotations

import argparse
import shlex

from ..components import Components
from ..config import ExpertConfig
from ..errors import ConfigError
from ..options import command_line
from ..recipes import Recipe


def build(sub, components: Components) -> None:
    p = sub.add_parser("recipes", help="list the recipes plugins ship, or show one (dd-harness recipes NAME)")
    p.add_argument("name", nargs="?", default=None, help="a recipe to show with all its values")
    p.set_defaults(handler=run)


def experts_command(recipe: Recipe) -> str:
    """The ``dd-harness experts`` command of the buffers ``recipe`` was made for (validated), or a
    line saying that the recipe does not state them."""
    wanted = recipe.expert_options()
    if not wanted:
        return "experts: the recipe does not say which buffers it was made for"
    try:
        ExpertConfig.from_dict(wanted)  # validated: a bad value is a one-line error naming the recipe
        arguments = command_line(ExpertConfig, wanted)
    except ConfigError as exc:
        raise ConfigError(f"{recipe.where}, experts: {exc}") from None
    return "experts it was made for:\n  " + shlex.join(["dd-harness", "experts", *arguments, "--buffer-path", "buffers"])


def run(args: argparse.Namespace, components: Components) -> int:
    recipes = components.recipes
    if args.name:
        entry = recipes.entry(args.name)
        recipe = entry.obj
        print(f"{recipe.name} (version {recipe.version}, from {entry.source}): {recipe.description}")
        if recipe.source:
            print(f"source: {recipe.source}")
        if recipe.notes:
            print(f"notes: {recipe.notes}")
        for key, value in recipe.options.items():
            print(f"  {key}: {value}")
        print(experts_command(recipe))
        return 0
    rows = [(e.name, f"v{e.obj.version}", e.source, e.obj.description) for e in recipes.declared()]
    if not rows:
        print("no recipes registered")
        return 0
    widths = [max(len(r[i]) for r in rows + [("NAME", "VERSION", "FROM", "")]) for i in range(3)]
    print(f"{'NAME':<{widths[0]}}  {'VERSION':<{widths[1]}}  {'FROM':<{widths[2]}}  DESCRIPTION")
    for row in rows:
        print(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:<{widths[2]}}  {row[3]}")
    return 0
