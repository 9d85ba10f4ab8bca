"""What a separation does to its model and its process, each put back afterwards: the model in eval mode
on the separation's device (with the Wiener post-filter asked for), denormal floats flushed to zero, freed heap
pages handed back to the OS."""

from __future__ import annotations

import copy
import ctypes
import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


def denormals_flushed() -> bool:
    """Whether this thread's CPU flushes denormal floats to zero now (a denormal times one gives zero)."""
    return bool((torch.tensor([1e-40], dtype=torch.float32) * 1.0).item() == 0.0)


@contextmanager
def flushed_denormals() -> Iterator[None]:
    """Denormals flushed to zero inside the block, the caller's setting restored after it.

    LSTM cell states decaying through small forget gates reach denormal floats, which x86 CPUs process many
    times slower than normal ones. The setting is the CPU's (per thread), so it is put back as it was.
    """
    previous = denormals_flushed()
    if previous or not torch.set_flush_denormal(True):  # already on, or a CPU without the setting
        yield
        return
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def _same_device(model: nn.Module, device: torch.device) -> bool:
    current = next(model.parameters(), torch.empty(0)).device
    return current.type == device.type and (device.index is None or device.index == current.index)


def with_wiener(model: nn.Module, iterations: int | None) -> nn.Module:
    """``model`` separating with ``iterations`` EM iterations of its Wiener post-filter: ``model`` itself when
    ``iterations`` is None or already its own, else a copy with that config (the same weights, dtype, device and
    mode; copied, so no random initialisation draws from torch's generator). ValueError for iterations > 0 asked
    of a model without the post-filter."""
    config = getattr(model, "config", None)
    current = getattr(config, "wiener_iterations", None)
    if iterations is None or iterations == (current or 0):
        return model
    if current is None:
        raise ValueError(
            f"{type(model).__name__} has no Wiener post-filter (asked for {iterations} iterations)"
        )
    copied = copy.deepcopy(model)
    copied.config = dataclasses.replace(config, wiener_iterations=iterations)
    return copied


@contextmanager
def inference_model(
    model: nn.Module, device: str | torch.device, wiener_iterations: int | None = None
) -> Iterator[nn.Module]:
    """``model`` ready to separate on ``device``, in eval mode, inside the block; ``wiener_iterations``: its
    Wiener post-filter's EM iterations (None: the model's own; ``with_wiener``).

    Nothing is done to the caller's model behind its back: its training/eval mode is restored afterwards,
    and a model on another device, or with another post-filter, is copied instead of changed.
    """
    device = torch.device(device)
    runner = with_wiener(model, wiener_iterations)
    if not _same_device(runner, device):
        runner = (copy.deepcopy(runner) if runner is model else runner).to(device)
    was_training = model.training
    runner.eval()  # batch norm / dropout in inference mode
    try:
        yield runner
    finally:
        model.train(was_training)


def release_freed_memory() -> None:
    """Hand freed heap pages back to the OS between blocks (glibc only).

    Without it, glibc keeps the freed block buffers as fragmented heap, and the resident size of a
    long song creeps up with its number of blocks instead of staying flat.
    """
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to do
        pass
