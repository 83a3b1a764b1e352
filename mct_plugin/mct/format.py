"""The compact MCT trajectory file: safetensors, self-describing, pickle-free.

One ``*.mct.safetensors`` file per converted source file. Tensors, per expert ``e``:

* ``expert{e}.waypoint{p}.param{l}`` - parameter tensor ``l`` of waypoint ``p`` (float32,
  float16 or bfloat16);
* ``expert{e}.beta`` - the ``(K+1, L)`` float32 beta table (see :mod:`.convexified`);
* ``expert{e}.epochs`` - the ``(P,)`` int64 epochs of the waypoints.

String metadata (JSON values): ``format`` (``"mct_plugin.convexified"``), ``format_version``
(``1``), ``num_experts``, ``num_epochs``, ``param_shapes``, ``param_names`` (or null),
``dtype``, ``waypoints``, ``spacing``, ``smoothing``, ``pacing`` (absent in older files: ``distance``), ``source`` (file name),
``source_bytes``, ``source_sha256``, ``dataset`` and ``model`` (or null), ``training`` (the
source buffer's training record, see ``dd-harness experts``, or null), ``created_by``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from mct_plugin import __version__
from mct_plugin.harness.api import BufferFormatError, atomic_write_bytes, check_distinct_points

from .convexified import ConvexifiedTrajectory
from .options import ConvexifyOptions

FORMAT_NAME = "mct_plugin.convexified"
FORMAT_VERSION = 1
SUFFIX = ".mct.safetensors"
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
# each convexify option and the metadata key that records it
CONVERSION_KEYS = {"waypoints": "waypoints_requested", "smooth": "smoothing", "waypoint_spacing": "spacing",
                   "pacing": "pacing"}
_BEFORE_THE_KEY = {"pacing": "distance"}  # what files written before the key existed were converted with


def conversion_settings(options: ConvexifyOptions) -> dict[str, Any]:
    """The values of the convexify options in ``options``, by option name."""
    return {name: getattr(options, name) for name in CONVERSION_KEYS}


def conversion_metadata(options: ConvexifyOptions) -> dict[str, Any]:
    """The metadata entries that record how ``options`` convexified a file."""
    return {CONVERSION_KEYS[name]: value for name, value in conversion_settings(options).items()}


def recorded_conversion(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The convexify options, by option name, that a file's metadata records it was converted with
    (an option that an older file does not record is left out)."""
    recorded = {name: meta.get(key, _BEFORE_THE_KEY.get(key)) for name, key in CONVERSION_KEYS.items()}
    return {name: value for name, value in recorded.items() if value is not None}


def output_name(source: Path) -> str:
    """``replay_buffer_3.pt`` -> ``replay_buffer_3.mct.safetensors``."""
    return source.name[: -len(source.suffix)] + SUFFIX if source.suffix else source.name + SUFFIX


def sha256_of(path: Path, chunk: int = 1 << 22) -> str:
    """Hex SHA-256 of the file ``path``; :class:`BufferFormatError` if it cannot be read."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while block := handle.read(chunk):
                digest.update(block)
    except OSError as exc:
        raise BufferFormatError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return digest.hexdigest()


def write_mct_file(path: Path, trajectories: Sequence[ConvexifiedTrajectory], metadata: dict[str, Any]) -> None:
    """Write ``trajectories`` (already in their storage dtype) with ``metadata``, atomically."""
    from safetensors.torch import save

    tensors: dict[str, torch.Tensor] = {}
    for e, trajectory in enumerate(trajectories):
        for p, waypoint in enumerate(trajectory.waypoints):
            for l, tensor in enumerate(waypoint):
                tensors[f"expert{e}.waypoint{p}.param{l}"] = tensor.detach().contiguous().clone()
        tensors[f"expert{e}.beta"] = trajectory.beta.to(torch.float32).contiguous().clone()
        tensors[f"expert{e}.epochs"] = torch.tensor(trajectory.epochs, dtype=torch.int64)
    first = trajectories[0]
    header = {
        "format": FORMAT_NAME, "format_version": FORMAT_VERSION, "num_experts": len(trajectories),
        "num_epochs": first.num_epochs, "param_shapes": [list(t.shape) for t in first.waypoints[0]],
        "dtype": str(first.waypoints[0][0].dtype).replace("torch.", ""), "created_by": f"mct_plugin {__version__}",
        **metadata,
    }
    # serialised in memory and written by Python, so a full disk raises OSError (safetensors'
    # own file writer reports it as an opaque SafetensorError); outputs are ~P/(E+1) of the source
    data = save(tensors, metadata={k: json.dumps(v) for k, v in header.items()})
    atomic_write_bytes(path, _canonical_header(data))


def _canonical_header(data: bytes) -> bytes:
    """The same safetensors file with its JSON header's keys sorted.

    safetensors writes the metadata in hash-map order, which changes from process to process;
    sorted keys make the same conversion produce the same bytes. Readers locate tensors by
    their offsets, so the order of the entries does not matter.
    """
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + size])
    canonical = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if len(canonical) > size:  # never expected (same content); keep safetensors' own bytes
        return data
    return data[:8] + canonical.ljust(size, b" ") + data[8 + size:]


def read_metadata(path: Path) -> dict[str, Any]:
    """The decoded metadata of an MCT file (cheap: reads the header only)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            raw = handle.metadata() or {}
    except Exception as exc:  # SafetensorError, OSError: truncated or not safetensors
        raise BufferFormatError(f"{path} is not a readable safetensors file ({str(exc).splitlines()[0][:120]})") from exc
    try:
        meta = {k: json.loads(v) for k, v in raw.items()}
    except json.JSONDecodeError as exc:
        raise BufferFormatError(f"{path}: metadata is not valid JSON ({exc})") from exc
    if meta.get("format") != FORMAT_NAME:
        raise BufferFormatError(f"{path} is not an MCT trajectory file (format {meta.get('format')!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise BufferFormatError(f"{path} has format version {meta.get('format_version')}; this mct_plugin reads "
                                f"version {FORMAT_VERSION}")
    _check_metadata_types(meta, path)
    return meta


def _is_count(value, minimum: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _check_metadata_types(meta: dict[str, Any], path: Path) -> None:
    """The fields the reader relies on, with the right JSON types (a one-line error otherwise)."""
    if not _is_count(meta.get("num_experts"), 1):
        raise BufferFormatError(f"{path}: metadata num_experts must be a positive integer (got {meta.get('num_experts')!r})")
    if not _is_count(meta.get("num_epochs"), 1):
        raise BufferFormatError(f"{path}: metadata num_epochs must be a positive integer (got {meta.get('num_epochs')!r})")
    shapes = meta.get("param_shapes")
    if not isinstance(shapes, list) or not shapes or not all(
            isinstance(shape, list) and all(_is_count(d) for d in shape) for shape in shapes):
        raise BufferFormatError(f"{path}: metadata param_shapes must be a list of shapes (lists of sizes)")
    if meta.get("dtype") not in DTYPES:
        raise BufferFormatError(f"{path}: metadata dtype must be one of {', '.join(DTYPES)} (got {meta.get('dtype')!r})")
    for key in ("dataset", "model"):
        if meta.get(key) is not None and not isinstance(meta.get(key), str):
            raise BufferFormatError(f"{path}: metadata {key} must be a name or null (got {meta.get(key)!r})")


def _check_beta(beta: torch.Tensor, epochs: list[int], where: str) -> None:
    if not torch.isfinite(beta).all() or beta.min() < -1e-6 or beta.max() > 1 + 1e-6:
        raise BufferFormatError(f"{where}: beta values outside [0, 1]")
    for start, end in zip(epochs[:-1], epochs[1:]):
        piece = torch.cat([beta[start:end], torch.ones_like(beta[:1])])
        if (piece[1:] - piece[:-1] < -1e-6).any():
            raise BufferFormatError(f"{where}: beta decreases inside the piece [{start}, {end}]")


def read_mct_file(path: Path, shapes: Sequence[tuple] | None = None) -> tuple[list[ConvexifiedTrajectory], dict[str, Any]]:
    """Load and validate every expert of an MCT file (waypoints converted to float32).

    :param shapes: the target model's parameter shapes, checked against the file.
    :raises BufferFormatError: naming the file, expert and parameter at fault.
    """
    from safetensors.torch import load_file

    meta = read_metadata(path)
    file_shapes = [tuple(s) for s in meta.get("param_shapes", [])]
    if shapes is not None and [tuple(s) for s in shapes] != file_shapes:
        mismatch = next((i for i, (a, b) in enumerate(zip(shapes, file_shapes)) if tuple(a) != b), min(len(shapes), len(file_shapes)))
        raise BufferFormatError(
            f"{path}: parameter {mismatch} has shape {file_shapes[mismatch] if mismatch < len(file_shapes) else 'missing'}, "
            f"the model expects {tuple(shapes[mismatch]) if mismatch < len(shapes) else 'nothing'} "
            f"({len(file_shapes)} vs {len(shapes)} parameters)")
    try:
        tensors = load_file(str(path))
    except Exception as exc:
        raise BufferFormatError(f"{path} is truncated or corrupt ({str(exc).splitlines()[0][:120]})") from exc
    trajectories = []
    for e in range(meta["num_experts"]):
        where = f"{path}: expert {e}"
        try:
            epochs_tensor = tensors[f"expert{e}.epochs"]
            beta = tensors[f"expert{e}.beta"]
            waypoint_count = len(epochs_tensor) if epochs_tensor.dim() == 1 else 0
            waypoints = [[tensors[f"expert{e}.waypoint{p}.param{l}"] for l in range(len(file_shapes))]
                         for p in range(waypoint_count)]
        except KeyError as exc:
            raise BufferFormatError(f"{where}: tensor {exc.args[0]} is missing") from None
        if epochs_tensor.dim() != 1 or epochs_tensor.dtype != torch.int64:
            raise BufferFormatError(f"{where}: the waypoint epochs must be a 1-d int64 tensor "
                                    f"(got {epochs_tensor.dtype}, shape {tuple(epochs_tensor.shape)})")
        epochs = epochs_tensor.tolist()
        if (len(epochs) < 2 or epochs[0] != 0 or epochs[-1] != meta["num_epochs"]
                or any(b <= a for a, b in zip(epochs, epochs[1:]))):
            raise BufferFormatError(f"{where}: waypoint epochs {epochs} must increase from 0 to num_epochs "
                                    f"{meta['num_epochs']}")
        if not beta.is_floating_point() or tuple(beta.shape) != (meta["num_epochs"] + 1, len(file_shapes)):
            raise BufferFormatError(f"{where}: the beta table has shape {tuple(beta.shape)} ({beta.dtype}), expected "
                                    f"{(meta['num_epochs'] + 1, len(file_shapes))} floats")
        beta = beta.float()
        for p, waypoint in enumerate(waypoints):
            for l, tensor in enumerate(waypoint):
                if tuple(tensor.shape) != file_shapes[l]:
                    raise BufferFormatError(f"{where}, waypoint {p}, parameter {l}: shape {tuple(tensor.shape)}, "
                                            f"metadata says {file_shapes[l]}")
                if not tensor.is_floating_point() or not torch.isfinite(tensor).all():
                    raise BufferFormatError(f"{where}, waypoint {p}, parameter {l} contains NaN or Inf"
                                            if tensor.is_floating_point() else
                                            f"{where}, waypoint {p}, parameter {l} has dtype {tensor.dtype}")
        _check_beta(beta, epochs, where)
        points = [[t.float() for t in w] for w in waypoints]
        check_distinct_points(points, where, "waypoint", epochs)
        trajectories.append(ConvexifiedTrajectory(points, epochs, beta))
    return trajectories, meta
