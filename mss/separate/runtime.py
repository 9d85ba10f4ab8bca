"""What a separation does to its model and its process, each put back afterwards: the model in eval mode
on the separation's device, denormal floats flushed to zero, freed heap pages handed back to the OS."""

from __future__ import annotations

import copy
import ctypes
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


@contextmanager
def inference_model(model: nn.Module, device: str | torch.device) -> Iterator[nn.Module]:
    """``model`` ready to separate on ``device``, in eval mode, inside the block.

    Nothing is done to the caller's model behind its back: its training/eval mode is restored afterwards,
    and a model on another device is copied there instead of moved.
    """
    device = torch.device(device)
    runner = model if _same_device(model, device) else copy.deepcopy(model).to(device)
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
