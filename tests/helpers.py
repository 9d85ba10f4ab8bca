"""Helpers shared by several test modules (tests/ is on sys.path under pytest's default import mode)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import torch

from mss.models import build_model, model_preset
from training.distributed import DistContext

REPO_ROOT = Path(__file__).resolve().parents[1]
#: one process on the CPU, as a run on this machine trains
CPU = DistContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))


def make_tiny_checkpoints(
    folder: Path, archs=("unet", "demucs"), seed: int = 0, sources: tuple[str, ...] | None = None
) -> dict[str, Path]:
    """Random-weight checkpoints of the ``tiny`` presets, seeded, as ``{arch: path}``; ``sources``: the
    models' targets (default: the preset's four stems), e.g. ``("piano",)``."""
    from mss.checkpoint import save_checkpoint
    from mss.models import build_model, model_preset

    folder.mkdir(parents=True, exist_ok=True)
    overrides = {"sources": sources} if sources else {}
    paths = {}
    for arch in archs:
        torch.manual_seed(seed)
        model = build_model(arch, model_preset(arch, "tiny", **overrides))
        paths[arch] = save_checkpoint(folder / f"{arch}.pt", model)
    return paths


def load_app_module():
    """app.py is a script at the repository root, not a package module. It is loaded under its own name
    ("mss_app_entry"): the app's code lives in the package ``mss_app``, which must stay importable."""
    spec = importlib.util.spec_from_file_location("mss_app_entry", REPO_ROOT / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


def step_audio_urls(session: dict) -> list[str]:
    """The audio URLs the page of a session's step plays (session JSON from the participant API): the
    volume example, or every familiarization page's files. The server refuses "Continue" on those steps
    until it has sent them."""
    urls = [session["volume_url"]] if session.get("step") == "volume" else []
    for page in session.get("familiarization", []) if session.get("step") == "familiarization" else []:
        urls += [page["reference_url"], *(c["url"] for c in page["conditions"])]
    return urls


def tiny_args(dataset: Path, out: Path, model: str = "unet", epochs: int = 1, *extra: str) -> list[str]:
    """A run of 2 steps per epoch: tiny model, 1-s chunks at 16 kHz, 3 s of each validation song."""
    return [
        "--model", model, "--dataset", str(dataset), "--out", str(out), "--epochs", str(epochs),
        "--sample-rate", "16000",
        "--set", "model_preset=tiny", "--set", "segment_s=1.0", "--set", "samples_per_epoch=8",
        "--set", "batch_size=4", "--set", "valid_max_s=3", "--set", "threads=1", "--set", "progress=off",
        "--set", "lr_schedule=constant", "--set", "warmup_steps=0", "--set", "ema_decay=0.9",
        "--set", "real_clips=off",  # scored in tests/test_real_clips.py
        *extra,
    ]  # fmt: skip


def read_metrics(out: Path) -> list[dict]:
    """The rows of a training run's ``metrics.jsonl`` in folder ``out``, one dict per epoch."""
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def assert_valid_song(song, rate: int = 44100) -> None:
    """A generated ``RenderedSong`` keeps the generator's invariants: the song check finds the stems the song
    says are active, all four sources among them, mixture == the exact sum of the four, no sample over
    ``MAX_PEAK``."""
    from mss import SOURCES
    from mss.data.synth.mix import MAX_PEAK, check_song

    stems = song.audio.stems
    assert check_song(stems, rate) == song.audio.active_stems
    assert set(SOURCES) <= set(song.audio.active_stems)
    np.testing.assert_array_equal(
        stems["mixture"], stems["vocals"] + stems["drums"] + stems["bass"] + stems["other"]
    )
    assert max(float(np.abs(a).max()) for a in stems.values()) <= MAX_PEAK


def song_digest(song) -> str:
    """SHA-256 of a ``RenderedSong``'s stems (names and float32 bytes): equal iff the same audio, bit for bit."""
    import hashlib

    digest = hashlib.sha256()
    for name in sorted(song.audio.stems):
        digest.update(name.encode() + song.audio.stems[name].tobytes())
    return digest.hexdigest()


def pink_noise(seed: int, seconds: float, rate: int = 44100) -> np.ndarray:
    """(2, T) float64 noise with a 1/f power spectrum, like music: most energy low, little above a few kHz."""
    n = int(seconds * rate)
    spectrum = np.fft.rfft(np.random.default_rng(seed).standard_normal((2, n)), axis=-1)
    spectrum /= np.sqrt(np.maximum(np.fft.rfftfreq(n, 1 / rate), 20.0))
    return np.fft.irfft(spectrum, n=n, axis=-1)


def shift_batch_norm_statistics(model: torch.nn.Module) -> torch.nn.Module:
    """Move every floating-point buffer (batch-norm running statistics) by 0.1, away from the identity, as in a
    trained model: eval and train mode then differ, and a checkpoint must carry them. Returns the model."""
    with torch.no_grad():
        for buffer in model.buffers():
            if buffer.dtype.is_floating_point:
                buffer.add_(0.1)
    return model


def tiny_model(arch: str, **overrides) -> torch.nn.Module:
    """The tiny preset of ``arch`` (``overrides`` on top) with seed-0 weights, in eval mode."""
    torch.manual_seed(0)
    return build_model(arch, model_preset(arch, "tiny", **overrides)).eval()


def trained_looking_tiny(arch: str, **overrides) -> torch.nn.Module:
    """The tiny preset of ``arch`` (``overrides`` on top) with seed-0 weights, in eval mode, its batch-norm
    statistics moved as in a trained model (:func:`shift_batch_norm_statistics`)."""
    return shift_batch_norm_statistics(tiny_model(arch, **overrides))


def perturbed_tiny(arch: str, seed: int = 0, **overrides) -> torch.nn.Module:
    """The tiny preset of ``arch`` at 16 kHz (``overrides`` on top), in eval mode, with every weight moved off
    its initialisation by 0.05 x N(0, 1) drawn after seeding ``seed``, so all are non-zero (as after training)."""
    torch.manual_seed(seed)
    model = build_model(arch, model_preset(arch, "tiny", **{"sample_rate": 16000, **overrides})).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    return model
