"""What a run sets in torch for the whole process, set for the run only: the intra-op thread count and
the default random generators. Each is a context manager that puts the process back as it found it, so
``training.loop.train`` (or the bench) leaves its caller's torch exactly as it was."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """torch's intra-op threads set to ``count`` inside the block (0: left as they are), restored after."""
    if count <= 0:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextmanager
def seeded_rng(seed: int) -> Iterator[None]:
    """torch's default generators (CPU and every CUDA device) seeded with ``seed`` inside the block and
    restored after (``torch.random.fork_rng``).

    Inside, the initial weights, dropout and the DataLoader's base seed draw from one stream that starts at
    ``seed``: the same seed gives the same run, on every rank, whatever the caller drew before.
    """
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield
