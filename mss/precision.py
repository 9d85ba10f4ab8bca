"""The number format a separation runs its model in: float32, or bfloat16 autocast where the hardware computes
it natively.

    resolve_precision("auto", device) -> "bf16" | "fp32"
    with autocast_for(precision, device): ...

The committed models trained under bf16 autocast on a CPU with AVX-512 BF16 units (``training.trainer``), and
separate there in bf16 by default too: about 1.5x (UNet) and 2x (Demucs) faster model passes, estimates within
about 40 dB SNR of float32 ones, the same SDR to a hundredth of a dB (checkpoints/history.md). Elsewhere PyTorch
emulates bf16 and it is slower, so ``auto`` keeps float32 there, and on CUDA. The STFTs, the Wiener
post-filter and the overlap-add stay float32 (autocast changes convolutions, matrix products and LSTMs only).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

#: ``auto``: bf16 on a CPU with native bf16 units (``cpu_has_bf16``), else fp32; ``fp32``; ``bf16``: always
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16")


@functools.cache
def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX-512 BF16 or AMX): there bf16 autocast is faster
    than float32; elsewhere PyTorch emulates it and it is slower. Read once per process (the hardware does not
    change; ``resolve_precision`` asks on every separated block)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def precision_problem(value, name: str = "precision") -> str | None:
    """What is wrong with a separation precision, or None (one of ``PRECISIONS``)."""
    if value not in PRECISIONS:
        return f"{name} must be one of {', '.join(PRECISIONS)}, got {value!r}"
    return None


def resolve_precision(precision: str, device: str | torch.device = "cpu") -> str:
    """``fp32`` or ``bf16``: what ``precision`` means on ``device`` (``auto``: bf16 on a CPU with native bf16
    units, fp32 elsewhere, CUDA included). ValueError for an unknown precision."""
    if (problem := precision_problem(precision)) is not None:
        raise ValueError(problem)
    if precision != "auto":
        return precision
    return "bf16" if torch.device(device).type == "cpu" and cpu_has_bf16() else "fp32"


@contextmanager
def autocast_for(precision: str, device: str | torch.device = "cpu") -> Iterator[None]:
    """bf16 autocast on ``device`` inside the block when ``precision`` resolves to bf16; nothing otherwise."""
    if resolve_precision(precision, device) == "bf16":
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16):
            yield
    else:
        yield
