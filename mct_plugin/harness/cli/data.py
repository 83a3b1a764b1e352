"""``dd-harness data``: where a dataset is found (and a torchvision download if asked)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import DataOptions
from ..components import Components
from ._options import add_command_options, resolved


def build(sub, components: Components) -> None:
    p = sub.add_parser("data", help="check that a dataset is readable (and download it if asked)",
                       description="Load a dataset and print where it was found and its size; with --download, "
                                   "fetch a missing torchvision dataset into --data-path or the user cache.")
    add_command_options(p, "data", DataOptions, components, skip=("zca",))
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, components: Components) -> int:
    options = resolved(args, components)
    spec = components.datasets.get(options.dataset)
    raw = spec.load(Path(options.data_path).expanduser() if options.data_path else None, options.download)
    print(f"{spec.name}: {len(raw.train_images)} training and {len(raw.test_images)} test images "
          f"({spec.channels}x{spec.image_size[0]}x{spec.image_size[1]}, {spec.num_classes} classes) from {raw.source}")
    return 0
