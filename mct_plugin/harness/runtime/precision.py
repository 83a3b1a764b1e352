"""The precision networks train in: ``fp32`` or ``bf16``, one setting per part (the experts'
``--precision``, the evaluation's ``--eval-precision``, the distillation student's
``--student-precision``), applied here and nowhere else.

``bf16`` runs the forward passes (network and loss) under ``torch.autocast(device_type,
dtype=torch.bfloat16)``; the backward passes follow in the dtypes autocast chose. Parameters,
optimiser state, synthetic images, alpha and every file written stay float32 (the MTT buffer
format does not change). On CUDA, TF32 matmuls and convolutions are allowed inside a bf16 forward
(what it leaves in float32 may round like TF32: the user asked for reduced precision there); under
``fp32`` nothing changes, torch's TF32 defaults included, so fp32 numbers are those of before.

A device without native bf16 (a CPU without AVX512_BF16 or AMX instructions, a GPU older than
Ampere) **falls back to fp32 with one log line** rather than refusing: there autocast emulates
bf16, several times slower than fp32 and no more accurate, so the user would lose what bf16 is
for and gain nothing; a refusal would instead stop every run on such a machine once a part's
default is bf16. The precision that ran is what the run records (:func:`resolve_precision`), so
``config.json``, the experts' record and ``eval.json`` never claim a bf16 that did not happen.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Callable, Iterator

if TYPE_CHECKING:
    import torch


FP32, BF16 = "fp32", "bf16"
PRECISIONS = (FP32, BF16)
PRECISION_HELP = ("fp32 (plain float32) or bf16 (forward passes under bfloat16 autocast, on CUDA with TF32 for what "
                  "stays float32; parameters, optimiser state and every file stay float32; a device without native "
                  "bf16 runs fp32, with one log line)")

log = logging.getLogger(__name__)


def bf16_autocast_supported(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 natively: a CUDA GPU of compute capability 8 or more
    (Ampere and newer; torch's ``is_bf16_supported`` also counts emulation), a ROCm GPU, a CPU with
    AVX512_BF16 or AMX instructions. torch before 2.3 cannot say which instructions a CPU has:
    counted as no."""
    import torch

    if device.type == "cuda":
        return bool(torch.version.hip) or torch.cuda.get_device_capability(device)[0] >= 8
    if device.type != "cpu":
        return False
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, check, lambda: False)() for check in checks)


def resolve_precision(precision: str, device: torch.device, option: str,
                      report: Callable[[str], None] = log.info) -> str:
    """The precision that runs on ``device`` when ``precision`` is asked for: ``bf16`` where the
    device has it natively, else ``fp32`` and one ``report`` line naming ``option`` (the flag)."""
    if precision == BF16 and not bf16_autocast_supported(device):
        report(f"{option} bf16: device {device} has no native bfloat16 (autocast would emulate it, slower than "
               f"fp32), so this part runs in fp32 and is recorded so")
        return FP32
    return precision


@contextlib.contextmanager
def autocast(precision: str, device: torch.device) -> Iterator[None]:
    """The context of a forward pass at ``precision`` on ``device``: bfloat16 autocast for ``bf16``
    (with TF32 allowed on CUDA for its duration), nothing at all for ``fp32``."""
    import torch

    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r} (one of {', '.join(PRECISIONS)})")
    if precision == FP32:
        yield
        return
    if device.type != "cuda":
        with torch.autocast(device.type, dtype=torch.bfloat16):
            yield
        return
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
