"""Import of the public MCT code's own compressed files.

The official MCT code (``exps/trajectory_compression.py``) writes, per buffer file ``n``:

* ``waypoint_buffer[_ipP]_{n}.pt``: ``list[expert]``, each a list of waypoint checkpoints
  (lists of tensors in parameter order);
* ``step_buffer[_ipP]_{n}.pt``: ``list[expert]``; for P = 2 a list of K+1 rows of L scalar
  tensors (beta per row and parameter), for P > 2 a list of such row-lists, one per piece.

Both are pickles and are loaded with ``weights_only=True``.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from mct_plugin.harness.api import BufferFormatError, torch_load_untrusted, validate_trajectory

from .convexified import ConvexifiedTrajectory

WAYPOINT_PATTERN = re.compile(r"^waypoint_buffer(?P<tag>_[A-Za-z0-9]+)?_(?P<n>\d+)\.pt$")


def step_file_for(waypoint_file: Path) -> Path:
    """``waypoint_buffer_ip4_0.pt`` -> ``step_buffer_ip4_0.pt`` in the same folder."""
    return waypoint_file.with_name("step" + waypoint_file.name[len("waypoint"):])


def is_public_waypoint_file(path: Path) -> bool:
    return bool(WAYPOINT_PATTERN.match(path.name))


def public_pairs(directory: Path) -> list[tuple[Path, Path]]:
    """(waypoint file, step file) pairs in ``directory`` whose step file exists."""
    pairs = []
    for path in sorted(directory.iterdir()) if directory.is_dir() else []:
        if is_public_waypoint_file(path) and step_file_for(path).is_file():
            pairs.append((path, step_file_for(path)))
    return pairs


def _rows(piece, where: str) -> torch.Tensor:
    """One piece's (rows, L) table of step sizes, checked: scalars, equal lengths, finite,
    from 0 to 1 and never decreasing."""
    if not isinstance(piece, (list, tuple)) or len(piece) < 2:
        raise BufferFormatError(f"{where}: expected a list of at least 2 step rows")
    rows = []
    for k, row in enumerate(piece):
        if not isinstance(row, (list, tuple)) or not row or not all(
                isinstance(v, torch.Tensor) and v.numel() == 1 and v.layout == torch.strided for v in row):
            raise BufferFormatError(f"{where}, row {k}: expected a list of scalar tensors")
        if len(row) != len(piece[0]):
            raise BufferFormatError(f"{where}, row {k}: {len(row)} step sizes, row 0 has {len(piece[0])}")
        rows.append(torch.stack([v.reshape(()).double() for v in row]))
    table = torch.stack(rows)
    if not torch.isfinite(table).all():
        raise BufferFormatError(f"{where}: step sizes contain NaN or Inf")
    if (table[0].abs() > 1e-5).any() or ((table[-1] - 1).abs() > 1e-4).any():
        raise BufferFormatError(f"{where}: step sizes do not run from 0 to 1")
    decreasing = (table[1:] - table[:-1] < -1e-6).nonzero()
    if len(decreasing):
        k = int(decreasing[0, 0]) + 1
        raise BufferFormatError(f"{where}: step sizes decrease at row {k} (a trajectory that goes backwards)")
    return table


def load_public_pair(waypoint_file: Path, step_file: Path) -> list[ConvexifiedTrajectory]:
    """Read one public MCT waypoint/step file pair into :class:`ConvexifiedTrajectory` objects."""
    waypoints_all = torch_load_untrusted(waypoint_file, mmap=False)
    steps_all = torch_load_untrusted(step_file, mmap=False)
    for path, data in ((waypoint_file, waypoints_all), (step_file, steps_all)):
        if not isinstance(data, (list, tuple)) or not data:
            raise BufferFormatError(f"{path} does not hold a list of experts")
    if len(waypoints_all) != len(steps_all):
        raise BufferFormatError(f"{waypoint_file} holds {len(waypoints_all)} experts but {step_file} holds {len(steps_all)}")
    trajectories = []
    for e, (waypoints, steps) in enumerate(zip(waypoints_all, steps_all)):
        where = f"{step_file}: expert {e}"
        points = validate_trajectory(waypoints, f"{waypoint_file}: expert {e}", what="waypoint")
        if not isinstance(steps, (list, tuple)) or not steps:
            raise BufferFormatError(f"{where} is a {type(steps).__name__}, expected a list of step rows")
        two_point = isinstance(steps[0], (list, tuple)) and steps[0] and isinstance(steps[0][0], torch.Tensor)
        pieces = [steps] if two_point else list(steps)
        if len(pieces) != len(points) - 1:
            raise BufferFormatError(f"{where}: {len(pieces)} step pieces for {len(points)} waypoints")
        tables = [_rows(piece, f"{where}, piece {p}") for p, piece in enumerate(pieces)]
        for p, table in enumerate(tables):
            if table.shape[1] != len(points[0]):
                raise BufferFormatError(f"{where}, piece {p}: {table.shape[1]} step sizes per row for "
                                        f"{len(points[0])} parameter tensors")
        epochs = [0]
        for table in tables:
            epochs.append(epochs[-1] + len(table) - 1)
        beta = torch.zeros(epochs[-1] + 1, tables[0].shape[1], dtype=torch.float64)
        for start, table in zip(epochs[:-1], tables):
            beta[start:start + len(table) - 1] = table[:-1]
        beta[-1] = 1.0
        trajectories.append(ConvexifiedTrajectory(points, epochs, beta.float()))
    return trajectories
