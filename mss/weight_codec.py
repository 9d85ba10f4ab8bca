"""How a checkpoint stores its weights: float32, float16, or int8 with a scale per row.

int8 (``encode(..., "int8")``) is symmetric per-row quantisation of the weight matrices and kernels (every
floating-point tensor of 2 or more dimensions with at least ``MIN_ROW`` values per row, a row being a slice
along the first dimension: a conv's or a linear layer's output units, an LSTM's gates, a transposed conv's
input channels): row ``r`` is stored as int8 values
``q`` in [-127, 127] and one float32 scale ``s_r = max |w_r| / 127``, and read back as ``q * s_r``. The
rounding error of a weight is at most ``s_r / 2``, 0.4% of its row's largest. Everything else (biases,
normalisation statistics, per-bin vectors) stays float16. A committed checkpoint stored this way is half its
float16 size; what it costs in separation quality is measured, not assumed (``mss.evaluate`` on both files).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import Tensor

# torch is imported in the functions (as in mss.checkpoint, which app.py reads before torch is needed).

WEIGHT_DTYPES: tuple[str, ...] = ("float32", "float16", "int8")
#: a tensor is quantised only if each of its rows holds at least this many values (a (F, 1) vector is not)
MIN_ROW = 8
INT8_MAX = 127


def quantisable(tensor: Tensor) -> bool:
    """Whether ``encode(..., "int8")`` stores ``tensor`` as int8 rows."""
    return tensor.is_floating_point() and tensor.ndim >= 2 and tensor.numel() >= MIN_ROW * tensor.shape[0] > 0


def encode(state_dict: dict[str, Tensor], dtype: str) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Detached CPU copies of ``state_dict`` stored as ``dtype`` (one of WEIGHT_DTYPES) -> (weights, scales):
    ``scales`` holds a (rows,) float32 tensor for each weight stored as int8 (empty unless ``dtype`` is int8).
    Non-floating tensors (counters) are kept as they are. ValueError naming the weight if one is not finite
    (an inf or NaN would silently zero or scramble an int8 row, and float16 turns values beyond 65504 to inf)."""
    import torch

    if dtype not in WEIGHT_DTYPES:
        raise ValueError(f"unknown weight dtype {dtype!r}; known: {', '.join(WEIGHT_DTYPES)}")
    weights, scales = {}, {}
    for key, value in state_dict.items():
        value = value.detach().cpu().clone()
        if value.is_floating_point() and dtype != "float32" and not bool(torch.isfinite(value.float()).all()):
            raise ValueError(f"weight {key!r} holds inf or NaN values: it cannot be stored as {dtype}")
        if not value.is_floating_point() or dtype == "float32":
            weights[key] = value.float() if value.is_floating_point() else value
        elif dtype == "int8" and quantisable(value):
            weights[key], scales[key] = quantise_rows(value)
        else:
            weights[key] = value.half()
    return weights, scales


def decode(weights: dict[str, Tensor], scales: dict[str, Tensor]) -> dict[str, Tensor]:
    """The float weights of an ``encode`` result: int8 rows times their scales (float32); the rest as stored.
    ValueError naming the weight when a scale is missing or does not fit its rows, or a scale has no weight."""
    orphans = sorted(set(scales) - set(weights))
    if orphans:
        raise ValueError(f"int8 scales without weights: {orphans}")
    decoded = {}
    for key, value in weights.items():
        if key in scales:
            decoded[key] = dequantise_rows(value, scales[key], key)
        elif value.dtype == _int8():
            raise ValueError(f"weight {key!r} is int8 but has no scales")
        else:
            decoded[key] = value
    return decoded


def quantise_rows(tensor: Tensor) -> tuple[Tensor, Tensor]:
    """(R, ...) float -> (int8 values (R, ...), float32 scales (R,)): symmetric, per row; a zero row gets scale 0."""
    import torch

    rows = tensor.detach().float().reshape(tensor.shape[0], -1)  # (R, K)
    scales = rows.abs().amax(dim=1) / INT8_MAX  # (R,)
    safe = torch.where(scales > 0, scales, torch.ones_like(scales))
    values = torch.round(rows / safe[:, None]).clamp(-INT8_MAX, INT8_MAX).to(torch.int8)
    return values.reshape(tensor.shape), scales


def dequantise_rows(values: Tensor, scales: Tensor, key: str = "weight") -> Tensor:
    """int8 (R, ...) and float (R,) scales -> float32 (R, ...)."""
    if values.dtype != _int8() or scales.ndim != 1 or values.ndim < 1 or scales.shape[0] != values.shape[0]:
        raise ValueError(
            f"weight {key!r}: expected int8 rows and one scale per row, got {values.dtype} {tuple(values.shape)} "
            f"and scales {tuple(scales.shape)}"
        )
    shape = (-1,) + (1,) * (values.ndim - 1)
    return values.float() * scales.float().reshape(shape)


def _int8():
    import torch

    return torch.int8
