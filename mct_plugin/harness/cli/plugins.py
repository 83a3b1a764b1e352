"""``dd-harness plugins``: every registered component, where it came from, and skipped plugins."""

from __future__ import annotations

import argparse

from ..components import Components


def build(sub, components: Components) -> None:
    p = sub.add_parser("plugins", help="list registered components (matchers, samplers, converters, gradient modes, "
                                       "recipes, trackers, datasets) and the plugin each came from")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, components: Components) -> int:
    rows = []
    for kind, registry in components.by_kind().items():
        if kind == "model":
            continue  # listed by 'dd-harness models'
        for entry in registry.declared():  # a Lazy declaration carries its description: no import
            rows.append((kind, entry.name, entry.source, getattr(entry.obj, "description", "") or ""))
    rows.append(("models", str(len(components.models.models)), "", "architectures: see 'dd-harness models'"))
    for name, source in sorted(getattr(args, "plugin_commands", {}).items()):
        rows.append(("command", name, source, f"dd-harness {name} (added by a plugin)"))
    widths = [max(len(r[i]) for r in rows + [("KIND", "NAME", "FROM", "")]) for i in range(3)]
    print(f"{'KIND':<{widths[0]}}  {'NAME':<{widths[1]}}  {'FROM':<{widths[2]}}  DESCRIPTION")
    for kind, name, source, description in rows:
        print(f"{kind:<{widths[0]}}  {name:<{widths[1]}}  {source:<{widths[2]}}  {description}".rstrip())
    for problem in components.pm.problems:
        print(f"problem: {problem}")  # each says what was skipped
    return 0
