"""Convexified expert trajectories (Zhong et al., "Matching Convexified Trajectory", CVPR 2025).

An SGD trajectory ``theta_0 .. theta_K`` is replaced by straight segments between ``P``
waypoints that keep the pace of the original. Per parameter tensor ``l`` and epoch ``k`` of the
piece ``[e_p, e_{p+1}]`` containing it::

    d_{k,l}    = ||theta_{k,l} - theta_{k-1,l}||_2
    beta_{k,l} = sum_{e_p < j <= k} d_{j,l} / sum_{e_p < j <= e_{p+1}} d_{j,l}   (1 if the sum is 0)
    theta^_{k,l} = (1 - beta_{k,l}) * w_{p,l} + beta_{k,l} * w_{p+1,l}

so only the waypoints ``w`` and the ``(K+1) x L`` table ``beta`` are stored. Row ``k`` of the
table holds beta of the piece that *starts* at or before ``k``: at an interior waypoint the row
is 0 (start of the next piece), the end of every piece is implicitly 1, and the last row is 1.
Any real epoch ``s`` in ``[0, K]`` is reached by interpolating beta linearly between
``floor(s)`` and ``floor(s) + 1`` inside its piece.

Options that reproduce the public MCT code (``exps/trajectory_compression.py``):

* ``spacing="public"``: waypoint indices ``range(0, K+1, (K+1) // (P-1))`` plus ``K`` if missing
  (this can give more than P waypoints); ``"even"`` (default) uses ``round(p K / (P-1))``.
* ``smoothing="public"``: for P > 2 only, after beta is computed, each interior waypoint is
  replaced by the mean of its two neighbours and the final point by the mean of the last two
  checkpoints (in that order). ``"interior"``, ``"end"`` and ``"all"`` apply these smoothings
  for any P; ``"none"`` (default) keeps the recorded checkpoints, so the start and end are exact.

Pacing (how beta advances along a piece; the paper's ablation of beta, ``--abl_*_points`` in the
public code):

* ``"distance"`` (MCT): the cumulative per-layer step norms above;
* ``"uniform"``: ``beta_k = (k - e_p) / (e_{p+1} - e_p)``, the same for every layer;
* ``"decreasing"``: increments proportional to ``n, n-1, ..., 1`` over the ``n`` steps of a
  piece (fast early, slow late). The public code's version starts at ``beta_0 = (n+1)/S`` instead
  of 0 (it adds the first increment to the start point); here beta runs from exactly 0 to 1;
* ``"projected"``: ``beta_k = <theta_k - w_p, w_{p+1} - w_p> / ||w_{p+1} - w_p||^2`` over all
  parameters (one value per checkpoint, as the public code). The public code keeps the raw
  projections, which can leave [0, 1] or go backwards; here they are clipped to [0, 1] and made
  non-decreasing (running maximum), so every point lies on the segment and the pace never
  reverses (what the file format requires).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Sequence

import torch

from mct_plugin.harness.api import BufferFormatError, ConfigError

from .options import PACINGS, SMOOTHINGS, SPACINGS, ConvexifyOptions



def waypoint_epochs(num_epochs: int, waypoints: int, spacing: str = "even") -> list[int]:
    """Epoch indices of the waypoints of a trajectory with ``num_epochs + 1`` checkpoints."""
    if waypoints < 2:
        raise ConfigError(f"--waypoints must be at least 2 (got {waypoints})")
    if waypoints > num_epochs + 1:
        raise ConfigError(f"--waypoints {waypoints} is larger than the {num_epochs + 1} checkpoints of the trajectory")
    if spacing == "even":
        return sorted({round(p * num_epochs / (waypoints - 1)) for p in range(waypoints)})
    if spacing == "public":
        if waypoints == 2:
            return [0, num_epochs]
        indices = list(range(0, num_epochs + 1, (num_epochs + 1) // (waypoints - 1)))
        return indices if indices[-1] == num_epochs else indices + [num_epochs]
    raise ConfigError(f"unknown waypoint spacing {spacing!r}; known: {', '.join(SPACINGS)}")


def _segment_norms(checkpoints: Sequence[Sequence[torch.Tensor]]) -> torch.Tensor:
    """(K, L) table of ``||theta_k,l - theta_{k-1},l||_2`` in float64."""
    rows = []
    for previous, current in zip(checkpoints[:-1], checkpoints[1:]):
        rows.append(torch.stack([torch.linalg.vector_norm((c.double() - p.double()).reshape(-1))
                                 for p, c in zip(previous, current)]))
    return torch.stack(rows)


def _mean(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    return [(x + y) / 2 for x, y in zip(a, b)]


def _cumulative_progress(increments: torch.Tensor) -> torch.Tensor:
    """(n, L) non-negative increments -> progress after each of them, ending at 1 (1 if all 0)."""
    cumulative = torch.cumsum(increments, dim=0)
    total = cumulative[-1]
    safe_total = torch.where(total > 0, total, torch.ones_like(total))
    return torch.where(total > 0, cumulative / safe_total, torch.ones_like(cumulative))


def _projected_progress(checkpoints: Sequence[Sequence[torch.Tensor]], start: int, end: int) -> torch.Tensor:
    """(n,) projections of checkpoints start+1..end onto the chord, clipped and non-decreasing."""
    def flat(k: int) -> torch.Tensor:
        return torch.cat([t.double().reshape(-1) for t in checkpoints[k]])

    origin = flat(start)
    chord = flat(end) - origin
    squared = float(chord.dot(chord))
    if squared == 0:
        return torch.ones(end - start, dtype=torch.float64)
    raw = torch.stack([(flat(k) - origin).dot(chord) / squared for k in range(start + 1, end + 1)])
    progress = torch.cummax(raw.clamp(0.0, 1.0), dim=0).values
    progress[-1] = 1.0
    return progress


def beta_table(checkpoints: Sequence[Sequence[torch.Tensor]], epochs: Sequence[int],
               pacing: str = "distance") -> torch.Tensor:
    """The (K+1, L) float64 beta table for waypoints at ``epochs`` (see module docstring)."""
    if pacing not in PACINGS:
        raise ConfigError(f"unknown pacing {pacing!r}; known: {', '.join(PACINGS)}")
    num_epochs, layers = len(checkpoints) - 1, len(checkpoints[0])
    norms = _segment_norms(checkpoints) if pacing == "distance" else None  # row j-1 holds d_j
    table = torch.zeros(num_epochs + 1, layers, dtype=torch.float64)
    for start, end in zip(epochs[:-1], epochs[1:]):
        steps = end - start
        if pacing == "distance":
            progress = _cumulative_progress(norms[start:end])  # d_{start+1} .. d_end
        elif pacing == "projected":
            progress = _projected_progress(checkpoints, start, end).unsqueeze(1).expand(steps, layers)
        else:
            weights = torch.ones(steps) if pacing == "uniform" else torch.arange(steps, 0, -1)
            progress = _cumulative_progress(weights.double().unsqueeze(1).expand(steps, layers))
        table[start + 1:end] = progress[:-1]  # rows start+1 .. end-1; row `start` stays 0
    table[-1] = 1.0
    return table


def smooths_interior(smoothing: str, num_waypoints: int) -> bool:
    """Does ``smoothing`` replace the interior waypoints by their neighbours' mean?"""
    return smoothing in ("interior", "all") or (smoothing == "public" and num_waypoints > 2)


def smooths_end(smoothing: str, num_waypoints: int) -> bool:
    """Does ``smoothing`` move the end (the mean of the last two checkpoints replaces it)?"""
    return smoothing in ("end", "all") or (smoothing == "public" and num_waypoints > 2)


@dataclass
class ConvexifiedTrajectory:
    """Waypoints (``P`` lists of ``L`` tensors) at ``epochs`` and the ``(K+1, L)`` beta table."""

    waypoints: list[list[torch.Tensor]]
    epochs: list[int]
    beta: torch.Tensor

    def __post_init__(self) -> None:
        if len(self.waypoints) != len(self.epochs) or len(self.epochs) < 2:
            raise BufferFormatError(f"{len(self.waypoints)} waypoints for {len(self.epochs)} waypoint epochs")
        if self.epochs[0] != 0 or self.epochs[-1] != self.beta.shape[0] - 1 or sorted(set(self.epochs)) != self.epochs:
            raise BufferFormatError(f"waypoint epochs {self.epochs} do not span the beta table of "
                                    f"{self.beta.shape[0]} rows")
        if self.beta.dim() != 2 or self.beta.shape[1] != len(self.waypoints[0]):
            raise BufferFormatError(f"beta table of shape {tuple(self.beta.shape)} does not match "
                                    f"{len(self.waypoints[0])} parameter tensors")

    # construction ----------------------------------------------------------------------
    @classmethod
    def from_checkpoints(cls, checkpoints: Sequence[Sequence[torch.Tensor]],
                         options: ConvexifyOptions = ConvexifyOptions()) -> "ConvexifiedTrajectory":
        """Convexify an expert trajectory (``K + 1`` checkpoints of ``L`` tensors each) as ``options``
        say (the defaults of ``--waypoints``, ``--smooth``, ``--waypoint-spacing``, ``--pacing``)."""
        waypoints, smoothing, spacing, pacing = (options.waypoints, options.smooth, options.waypoint_spacing,
                                                 options.pacing)
        if smoothing not in SMOOTHINGS:
            raise ConfigError(f"unknown smoothing {smoothing!r}; known: {', '.join(SMOOTHINGS)}")
        if len(checkpoints) < 2:
            raise BufferFormatError(f"a trajectory needs at least 2 checkpoints (got {len(checkpoints)})")
        num_epochs = len(checkpoints) - 1
        epochs = waypoint_epochs(num_epochs, waypoints, spacing)
        beta = beta_table(checkpoints, epochs, pacing)
        points = [list(c) for c in checkpoints]  # shallow copy; smoothing replaces whole checkpoints
        if smooths_interior(smoothing, len(epochs)):
            for k in epochs[1:-1]:
                points[k] = _mean(points[k - 1], points[k + 1])
        if smooths_end(smoothing, len(epochs)):
            points[-1] = _mean(points[-2], points[-1])
        stored = [[t.detach().to(torch.float32).clone() for t in points[k]] for k in epochs]
        return cls(stored, epochs, beta.to(torch.float32))

    # evaluation ------------------------------------------------------------------------
    @property
    def num_epochs(self) -> int:
        """K: the trajectory spans epochs 0..K."""
        return self.beta.shape[0] - 1

    def piece_of(self, epoch: float) -> int:
        """Index p of the piece ``[epochs[p], epochs[p+1]]`` that contains ``epoch``."""
        if not 0 <= epoch <= self.num_epochs:
            raise ValueError(f"epoch {epoch} outside [0, {self.num_epochs}]")
        return min(bisect.bisect_right(self.epochs, epoch) - 1, len(self.epochs) - 2)

    def beta_at(self, epoch: float) -> tuple[int, torch.Tensor]:
        """(piece, beta of every parameter tensor at real-valued ``epoch``)."""
        piece = self.piece_of(epoch)
        end = self.epochs[piece + 1]
        low = int(epoch) if epoch < end else end - 1
        frac = float(epoch) - low

        def row(k: int) -> torch.Tensor:
            return torch.ones_like(self.beta[0]) if k >= end else self.beta[k]

        return piece, torch.lerp(row(low), row(low + 1), frac) if frac else row(low)

    def point_at(self, epoch: float) -> list[torch.Tensor]:
        """Parameters of the convexified trajectory at real-valued ``epoch`` (float32)."""
        piece, beta = self.beta_at(epoch)
        start, end = self.waypoints[piece], self.waypoints[piece + 1]
        return [torch.lerp(s.float(), e.float(), b.item()) for s, e, b in zip(start, end, beta)]

    def flat_point_at(self, epoch: float) -> torch.Tensor:
        return torch.cat([t.reshape(-1) for t in self.point_at(epoch)])

    def to(self, dtype: torch.dtype) -> "ConvexifiedTrajectory":
        """A copy whose waypoints are stored in ``dtype`` (beta stays float32)."""
        return ConvexifiedTrajectory([[t.to(dtype) for t in w] for w in self.waypoints], list(self.epochs), self.beta)
