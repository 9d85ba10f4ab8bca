"""Growing a trained Demucs into a larger one that computes what it did (function-preserving growth, as in
Chen et al. 2016, "Net2Net"), so fine-tuning the larger model starts where the smaller one stood.

Three ways to grow (``GROWABLE``), in any combination:

- ``channels``: wider levels. Every weight keeps its old block; a new unit (channel, GLU pair, LSTM cell)
  gets the larger model's own random initialisation for what flows into it, and zero for what flows from it
  into an old unit. Old units therefore see only old units, and the output (whose channels do not change)
  is the old one; the new units start to count as soon as training moves those zeros.
- ``context``: the decoder's GLU conv gets a wider kernel; the old 1x1 kernel is its centre tap, the other taps
  0 (for new units too).
- ``lstm_residual``: residual BiLSTM blocks after the first, whose zero-initialised output layer adds nothing.

Weight layouts, per parameter (``_layout``): a channel dimension is ``(role, blocks)``: ``role`` "out" (the
layer's output units) or "in" (its inputs), ``blocks`` the number of equal blocks it holds (2 for a GLU conv's
values and gates, 4 for an LSTM's gates, 2 for a BiLSTM's two directions feeding the next layer).
"""

from __future__ import annotations

import re

import torch
from torch import Tensor

from mss.models.blocks import INFERENCE_ONLY, differing_fields
from mss.models.demucs import Demucs, DemucsConfig, level_widths

#: DemucsConfig fields a trained model can grow in; a larger value keeps what it computes
GROWABLE: tuple[str, ...] = ("channels", "context", "lstm_residual")

#: (role, blocks) of one channel dimension; None: a dimension whose size does not depend on the widths
Dim = tuple[str, int] | None


def grow_state_dict(state: dict[str, Tensor], old: DemucsConfig, model: Demucs) -> dict[str, Tensor]:
    """Weights of a Demucs with config ``old`` (``state``) mapped onto ``model``, a larger Demucs that differs
    only in GROWABLE fields (and inference-only ones), so that ``model`` computes what the old one did, up to
    rounding. What is new comes from ``model``'s own initialisation (see the module docstring). ValueError if
    ``model`` is smaller in a GROWABLE field, differs in another field, or ``state`` lacks a weight."""
    new = model.config
    smaller = [f for f in GROWABLE if getattr(new, f) < getattr(old, f)]
    differ = differing_fields(old, new, ignore=GROWABLE + INFERENCE_ONLY)
    if smaller or differ:
        raise ValueError(f"cannot grow a Demucs into a smaller or different one (fields {smaller + differ})")
    old_widths, new_widths = level_widths(old), level_widths(new)
    grown = {}
    for key, value in model.state_dict().items():
        fresh = value.detach().cpu()  # grown on the CPU; load_state_dict copies to the model's device
        if key not in state:
            block = re.match(r"lstm_extra\.(\d+)\.", key)
            if block is None or int(block.group(1)) < old.lstm_residual:
                raise ValueError(f"cannot grow a Demucs: the smaller model has no weight {key!r}")
            grown[key] = fresh  # a residual block of its own: its zero output layer adds nothing
            continue
        layout = _layout(key, len(new_widths))
        grown[key] = _grow(state[key].to("cpu", fresh.dtype), fresh, layout, old_widths, new_widths, key)
    return grown


def _layout(key: str, depth: int) -> tuple[tuple[Dim, int | None], ...]:
    """Per dimension of parameter ``key``: its channel dimension (or None) and the level whose width it has
    (-1: the bottleneck's, the last level; None: a fixed size such as the audio channels or the stems)."""
    if match := re.fullmatch(r"encoder\.(\d+)\.(\d)\.(weight|bias)", key):
        level, layer = int(match.group(1)), int(match.group(2))
        if layer == 0:  # Conv1d(w_{i-1} -> w_i, kernel 8, stride 4); level 0 reads the audio channels
            return (("out", 1), level), (("in", 1) if level else None, level - 1 if level else None)
        return (("out", 2), level), (("in", 1), level)  # Conv1d(w_i -> 2 w_i, 1) then GLU
    if match := re.fullmatch(r"decoder\.(\d+)\.(\d)\.(weight|bias)", key):
        level, layer = depth - 1 - int(match.group(1)), int(match.group(2))  # run deepest first
        if layer == 0:  # Conv1d(w_i -> 2 w_i, context) then GLU
            return (("out", 2), level), (("in", 1), level)
        # ConvTranspose1d(w_i -> w_{i-1}), weight (in, out, k); level 0 writes the stems' audio channels
        if match.group(3) == "bias":
            return ((("out", 1) if level else None, level - 1 if level else None),)
        return (("in", 1), level), (("out", 1) if level else None, level - 1 if level else None)
    if match := re.fullmatch(
        r"(lstm|lstm_extra\.\d+)\.lstm\.(weight_ih|weight_hh|bias_ih|bias_hh)_l(\d+)(_reverse)?", key
    ):
        kind, layer = match.group(2), int(match.group(3))
        if kind.startswith("bias"):
            return ((("out", 4), -1),)
        inputs = 2 if kind == "weight_ih" and layer > 0 else 1  # deeper layers read both directions
        return (("out", 4), -1), (("in", inputs), -1)
    if match := re.fullmatch(r"(lstm|lstm_extra\.\d+)\.linear\.(weight|bias)", key):
        return ((("out", 1), -1),) if match.group(2) == "bias" else ((("out", 1), -1), (("in", 2), -1))
    raise ValueError(f"cannot grow a Demucs: no known layout for weight {key!r}")


def _grow(
    old: Tensor,
    fresh: Tensor,
    layout: tuple[tuple[Dim, int | None], ...],
    old_widths: list[int],
    new_widths: list[int],
    key: str,
) -> Tensor:
    """``fresh`` with ``old`` in its old units and zero from every new input into an old output."""
    index: list[Tensor | slice] = []
    new_inputs: Tensor | None = None
    in_dim = None
    for dim, (channel, level) in enumerate(layout[: old.dim()]):  # a bias has the first only
        if channel is None:
            if old.shape[dim] != fresh.shape[dim]:
                raise ValueError(f"cannot grow a Demucs: {key!r} changes a fixed size ({tuple(old.shape)})")
            index.append(torch.arange(fresh.shape[dim]))
            continue
        role, blocks = channel
        n_old, n_new = old_widths[level], new_widths[level]
        if (old.shape[dim], fresh.shape[dim]) != (blocks * n_old, blocks * n_new):
            raise ValueError(f"cannot grow a Demucs: {key!r} has shape {tuple(old.shape)}, not its layout's")
        kept = torch.cat([torch.arange(b * n_new, b * n_new + n_old) for b in range(blocks)])
        index.append(kept)
        if role == "in":
            in_dim = dim
            mask = torch.ones(fresh.shape[dim], dtype=torch.bool)
            mask[kept] = False
            new_inputs = mask.nonzero().flatten()
    grown = fresh.clone()
    if new_inputs is not None and len(new_inputs):  # new inputs into old (or fixed) outputs
        zero = list(index)
        zero[in_dim] = new_inputs
        grown[_mesh(zero)] = 0
    if old.dim() == 3 and old.shape[2] != fresh.shape[2]:  # a wider kernel: the old one is its centre
        if old.shape[2] > fresh.shape[2] or (fresh.shape[2] - old.shape[2]) % 2:
            raise ValueError(f"cannot grow a Demucs: {key!r} kernel {old.shape[2]} into {fresh.shape[2]}")
        start = (fresh.shape[2] - old.shape[2]) // 2
        grown[..., :start] = 0
        grown[..., start + old.shape[2] :] = 0
        index.append(torch.arange(start, start + old.shape[2]))
    elif old.dim() == 3:
        index.append(torch.arange(old.shape[2]))
    grown[_mesh(index)] = old
    return grown


def _mesh(index: list[Tensor]) -> tuple[Tensor, ...]:
    """Advanced indices selecting the outer product of one index list per dimension."""
    return torch.meshgrid(*index, indexing="ij")
