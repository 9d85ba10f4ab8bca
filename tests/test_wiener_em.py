"""The fast Wiener EM (mss.models.wiener_em) against norbert, the field's reference implementation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mss.models import wiener_em
from mss.models.wiener_em import expectation_maximization

norbert = pytest.importorskip("norbert")


def _problem(sources: int, channels: int, bins: int = 33, frames: int = 40, seed: int = 0):
    """Magnitudes (S, C, F, N) float32 and a mixture (C, F, N) complex64 with the awkward cases: nearly and
    exactly mono bins (a mixture covariance whose determinant cancels), silent frames, zero magnitudes."""
    rng = np.random.default_rng(seed)
    x = (
        rng.standard_normal((channels, bins, frames)) + 1j * rng.standard_normal((channels, bins, frames))
    ) * 30
    if channels == 2:
        x[1] = 0.9 * x[0] + 0.1 * x[1]  # nearly mono
        x[:, :, :6] = x[0, :, :6]  # exactly mono frames
    x[:, :, 10:12] = 0  # digital silence: no phase
    v = np.abs(rng.standard_normal((sources, channels, bins, frames))) * 20
    v[:, :, :, 15:17] = 0  # no source estimated
    return v.astype(np.float32), x.astype(np.complex64)


def _norbert(v: np.ndarray, x: np.ndarray, iterations: int) -> np.ndarray:
    """norbert.wiener in our layout: (S, C, F, N), (C, F, N) -> (S, C, F, N)."""
    y = norbert.wiener(
        v.transpose(3, 2, 1, 0).astype(np.float64), x.transpose(2, 1, 0).astype(np.complex128),
        iterations=iterations, use_softmask=False,
    )  # fmt: skip
    return y.transpose(3, 2, 1, 0)


@pytest.mark.parametrize(
    ("sources", "channels", "iterations"),
    [(4, 2, 1), (5, 2, 3), (4, 2, 0), (2, 1, 1), (3, 1, 2), (3, 3, 1)],
)
def test_matches_norbert(sources, channels, iterations):
    """A batch of two problems, the second 1000 times louder (norbert scales each to a peak of 10 on its own),
    against norbert on each."""
    v, x = _problem(sources, channels)
    quiet, loud = _problem(sources, channels, seed=9)
    batch_v, batch_x = np.stack([v, quiet * 1000]), np.stack([x, loud * 1000])
    got = expectation_maximization(torch.from_numpy(batch_v), torch.from_numpy(batch_x), iterations)
    assert got.shape == batch_v.shape and got.dtype == torch.complex64
    assert torch.isfinite(torch.view_as_real(got)).all()
    for item in range(2):
        expected = _norbert(batch_v[item], batch_x[item], iterations)
        error = np.abs(got[item].numpy() - expected).max() / np.abs(expected).max()
        assert error < 1e-6, error  # float32 output of a float64 computation
        # and bin by bin, against the mixture's magnitude there (quiet bins are checked too)
        scale = np.abs(batch_x[item]).max(axis=0) + 1e-3 * np.abs(batch_x[item]).max()  # (F, N)
        assert (np.abs(got[item].numpy() - expected) / scale).max() < 1e-5


def test_the_split_over_threads_changes_nothing(monkeypatch):
    v, x = _problem(4, 2, bins=65, frames=30, seed=1)
    results = []
    for threads in (1, 2, 7):
        monkeypatch.setattr(torch, "get_num_threads", lambda t=threads: t)
        results.append(expectation_maximization(torch.from_numpy(v[None]), torch.from_numpy(x[None]), 2))
    assert torch.equal(results[0], results[1]) and torch.equal(results[0], results[2])
    assert wiener_em._bands(5, 2) == [(0, 2), (2, 5)] and wiener_em._bands(1, 4) == [(0, 1)]


def test_sources_of_a_loud_mixture_add_up_to_it():
    """Filters of all sources add up to the identity (up to the diagonal loading), whatever the level:
    norbert's scaling to a peak of 10 is undone. Where no source is estimated, nothing comes out."""
    v, x = _problem(4, 2, seed=2)
    x = x * 1000
    total = (
        expectation_maximization(torch.from_numpy(v[None] * 1000), torch.from_numpy(x[None]), 1)[0]
        .sum(0)
        .numpy()
    )
    estimated = np.ones(x.shape[-1], bool)
    estimated[15:17] = False  # _problem's frames without any source
    assert np.abs(total - x)[..., estimated].max() / np.abs(x).max() < 1e-5
    assert np.abs(total[..., ~estimated]).max() == 0


def test_shapes_are_checked_and_bf16_magnitudes_accepted():
    v, x = _problem(4, 2, seed=4)
    v, x = torch.from_numpy(v)[None], torch.from_numpy(x)[None]
    for bad_v, bad_x in ((v[:, :, :1], x), (v[..., :20, :], x), (v[0], x[0]), (v, x[:, :1])):
        with pytest.raises(ValueError, match=r"magnitudes \(B, S, C, F, N\) and a mixture"):
            expectation_maximization(bad_v, bad_x, 1)
    half = expectation_maximization(v.to(torch.bfloat16), x, 1)
    full = expectation_maximization(v.to(torch.bfloat16).float(), x, 1)
    assert torch.equal(half, full)
    assert torch.equal(expectation_maximization(v, x.conj().conj(), 1), expectation_maximization(v, x, 1))


def test_nothing_estimated_gives_silence_not_nan():
    _, x = _problem(3, 2, seed=3)
    got = expectation_maximization(torch.zeros(1, 3, 2, 33, 40), torch.from_numpy(x[None]), 1)
    assert torch.equal(got, torch.zeros_like(got))
