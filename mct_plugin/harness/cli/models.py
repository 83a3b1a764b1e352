"""``dd-harness models``: the registered architectures (natural order) and name prefixes."""

from __future__ import annotations

import argparse

from ..components import Components


def build(sub, components: Components) -> None:
    p = sub.add_parser("models", help="list the registered model names")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style pattern, e.g. 'ConvNetW*'")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, components: Components) -> int:
    models = components.models
    for name in models.names(args.pattern):
        print(name)
    if args.pattern == "*":
        for prefix in models.prefixes.names():
            print(f"{prefix}:<name>  (e.g. {prefix}:resnet18, {prefix}:vit_tiny_patch16_224)" if prefix == "timm"
                  else f"{prefix}:<name>")
    return 0
