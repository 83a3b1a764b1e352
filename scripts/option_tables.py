"""Regenerate the README's option tables from the option declarations (``--check``: exit 1 when
they differ; the tests run that check).

A table sits between ``<!-- options: MODULE:CLASS -->`` and ``<!-- end options -->`` and is
:func:`mct_plugin.harness.options.option_table` of that class.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
REGION = re.compile(r"(<!-- options: ([\w.]+):(\w+) -->\n)(.*?)(<!-- end options -->)", re.S)


def regenerate(text: str) -> str:
    """``text`` with every option table region rendered from its declaration."""
    from mct_plugin.harness.options import option_table

    def render(match: re.Match) -> str:
        cls = getattr(importlib.import_module(match.group(2)), match.group(3))
        return f"{match.group(1)}{option_table(cls)}\n{match.group(5)}"

    return REGION.sub(render, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report whether the tables are up to date")
    args = parser.parse_args(argv)
    text = README.read_text(encoding="utf-8")
    fresh = regenerate(text)
    if args.check:
        if fresh != text:
            print(f"{README}: the option tables differ from the declarations; run python scripts/option_tables.py")
            return 1
        return 0
    README.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
