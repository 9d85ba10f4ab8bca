"""Exponential moving average of a model's weights (Polyak averaging)."""

from __future__ import annotations

import copy

import torch
from torch import nn


class ModelEMA:
    """Keeps ``shadow``, a frozen copy of ``model`` whose parameters track an EMA of the live ones.

    The effective decay ramps up as min(decay, (1 + n) / (10 + n)) after n updates (as in TF's
    ExponentialMovingAverage with num_updates), so early averages are not dominated by the random init.
    Buffers (e.g. BatchNorm statistics) are copied, not averaged.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.updates = 0
        self.shadow = copy.deepcopy(model).eval()
        for param in self.shadow.parameters():
            param.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for shadow, live in zip(self.shadow.parameters(), model.parameters(), strict=True):
            shadow.lerp_(live.detach().to(shadow.dtype), 1.0 - decay)
        for shadow, live in zip(self.shadow.buffers(), model.buffers(), strict=True):
            shadow.copy_(live)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "updates": self.updates, "state_dict": self.shadow.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.decay = float(state["decay"])
        self.updates = int(state["updates"])
        self.shadow.load_state_dict(state["state_dict"])
