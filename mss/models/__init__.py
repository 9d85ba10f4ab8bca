"""Separation models: registry, presets, construction and loading.

Every model maps ``mix (B, C, T) -> stems (B, S, C, T)`` and carries ``.config``, ``.sources``,
``.sample_rate``, ``.audio_channels`` and ``.segment_s``. Checkpoint files (their dict, atomic writes)
belong to ``mss.checkpoint``, which imports nothing from here; this package rebuilds models from them.
"""

from __future__ import annotations

import dataclasses
import os

import torch
from torch import nn

from mss import parse_flag
from mss.checkpoint import load_checkpoint
from mss.errors import CheckpointError
from mss.models.demucs import Demucs, DemucsConfig
from mss.models.presets import MODEL_PRESETS
from mss.models.unet import UNet, UNetConfig

#: architecture name -> (model class, config class)
REGISTRY: dict[str, tuple[type[nn.Module], type]] = {
    "unet": (UNet, UNetConfig),
    "demucs": (Demucs, DemucsConfig),
}

__all__ = [
    "REGISTRY",
    "MODEL_PRESETS",
    "UNet",
    "UNetConfig",
    "Demucs",
    "DemucsConfig",
    "model_preset",
    "build_model",
    "config_from_dict",
    "load_model",
    "model_from_checkpoint",
    "count_parameters",
    "parse_model_settings",
]


def _check_arch(arch: str) -> None:
    if arch not in REGISTRY:
        raise ValueError(f"unknown architecture {arch!r}; known: {', '.join(REGISTRY)}")


def model_preset(arch: str, name: str, **overrides):
    """Config of the named size (``tiny|small|large``) of ``arch``, with field ``overrides``."""
    _check_arch(arch)
    if name not in MODEL_PRESETS[arch]:
        raise ValueError(f"unknown {arch} preset {name!r}; known: {', '.join(MODEL_PRESETS[arch])}")
    config_cls = REGISTRY[arch][1]
    known = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown {config_cls.__name__} field(s) {unknown}; known: {sorted(known)}")
    if "sources" in overrides:
        overrides["sources"] = tuple(overrides["sources"])
    return config_cls(**{**MODEL_PRESETS[arch][name], **overrides})


def parse_model_settings(arch: str, items: tuple[str, ...] | list[str]) -> dict:
    """``("context=3", "lstm_residual=1")`` -> ``{"context": 3, "lstm_residual": 1}``, each value parsed as
    the type of the ``arch`` config field's default (int, float, bool: on/off/true/false/1/0, str). ValueError
    naming the item for a malformed one, an unknown field, a field without a scalar default, or a bad value."""
    _check_arch(arch)
    defaults = {f.name: f.default for f in dataclasses.fields(REGISTRY[arch][1])}
    settings: dict = {}
    for item in items:
        key, sep, text = item.partition("=")
        key, text = key.strip().replace("-", "_"), text.strip()
        if not sep or not key or not text:
            raise ValueError(f"model setting {item!r}: expected field=value")
        if key not in defaults:
            raise ValueError(
                f"model setting {item!r}: {arch} has no field {key!r}; known: {sorted(defaults)}"
            )
        kind = type(defaults[key])
        if kind not in (int, float, bool, str):
            raise ValueError(f"model setting {item!r}: field {key!r} cannot be set from the command line")
        if kind is bool:
            if (flag := parse_flag(text)) is None:
                raise ValueError(f"model setting {item!r}: {key} expects on/off")
            settings[key] = flag
            continue
        try:
            settings[key] = kind(text)
        except ValueError:
            raise ValueError(f"model setting {item!r}: {key} expects a {kind.__name__}") from None
    return settings


def build_model(arch: str, config) -> nn.Module:
    """Instantiate ``arch`` from its config (a config object, or a dict of its fields)."""
    _check_arch(arch)
    model_cls, config_cls = REGISTRY[arch]
    if isinstance(config, dict):
        config = config_from_dict(arch, config)
    if not isinstance(config, config_cls):
        raise TypeError(f"{arch} needs a {config_cls.__name__}, got {type(config).__name__}")
    return model_cls(config)


def config_from_dict(arch: str, values: dict):
    """Rebuild a frozen config from ``asdict`` output; lists (tuples after a save) become tuples again."""
    _check_arch(arch)
    config_cls = REGISTRY[arch][1]
    known = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown {config_cls.__name__} field(s) {unknown}")
    return config_cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def load_model(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a model (eval mode) from a checkpoint written by ``mss.checkpoint.save_checkpoint``."""
    return model_from_checkpoint(load_checkpoint(path, map_location=map_location), path, map_location)


def model_from_checkpoint(
    checkpoint: dict, source: str | os.PathLike = "checkpoint", map_location: str | torch.device = "cpu"
) -> nn.Module:
    """Rebuild a model (eval mode) from an already loaded checkpoint dict; ``source`` names it in errors."""
    arch = checkpoint["arch"]
    if arch not in REGISTRY:
        raise CheckpointError(f"{source}: unknown architecture {arch!r} (known: {', '.join(REGISTRY)})")
    try:
        config = config_from_dict(arch, checkpoint["model_config"])
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{source}: its stored {arch} config is not valid: {exc}") from exc
    try:
        model = build_model(arch, config)
        model.load_state_dict(checkpoint["state_dict"])
    except (TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{source}: weights do not match the stored {arch} config: {exc}") from exc
    return model.to(map_location).eval()


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
