"""listening_study.analysis.metrics and listening_study.analysis.correlations: metrics with known answers, the
study's own stimuli scored end to end, and correlations against hand-made ratings."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from helpers import pink_noise

from listening_study.analysis.correlations import CORRELATION_COLUMNS, best_metrics, metric_correlations
from listening_study.analysis.metrics import (
    CACHE_NAME,
    METRICS,
    bss_sir_sar,
    mrstft_distance_db,
    scale_invariant,
    study_excerpt_metrics,
)
from listening_study.delivery.processing import lowpass
from listening_study.delivery.stimuli import prepare_stimuli
from listening_study.design.study import ExcerptSpec, StudyConfig, SystemSpec
from listening_study.errors import StimulusError
from mss.evaluation.frame_sdr import window_sdr_frames
from mss.evaluation.museval_format import median_sdr

RATE = 44100


def _noise(seed: int, seconds: float = 3.0, channels: int = 2) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((channels, int(seconds * RATE)))


def _sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    return median_sdr(window_sdr_frames(reference, estimate, RATE))


# ------------------------------------------------------------------------------------- metrics, known answers


def test_sir_of_a_known_interference_gain_and_sar_of_none():
    """estimate = reference + g * interference: BSS Eval v4's SIR is the energy ratio of the two, frame by
    frame (1-s frames, median), within 0.1 dB; no artifacts, so SAR is very high."""
    reference, interference, gain = _noise(0), _noise(1), 0.3
    (sir, sar), *_ = bss_sir_sar(
        reference, interference, {"e": reference + gain * interference}, RATE
    ).values()
    frames = [
        10
        * np.log10(
            np.sum(reference[:, a : a + RATE] ** 2) / np.sum((gain * interference[:, a : a + RATE]) ** 2)
        )
        for a in range(0, reference.shape[-1], RATE)
    ]
    assert sir == pytest.approx(float(np.median(frames)), abs=0.1)
    assert sir == pytest.approx(20 * np.log10(1 / gain), abs=0.2)
    assert sar > 100


def test_sir_sar_are_nan_where_bss_eval_has_no_answer():
    reference = _noise(0)
    silent = np.zeros_like(reference)
    assert all(map(math.isnan, bss_sir_sar(reference, silent, {"e": reference}, RATE)["e"]))
    assert all(map(math.isnan, bss_sir_sar(reference, _noise(1), {"e": silent}, RATE)["e"]))


def test_scale_invariance_and_the_si_decomposition():
    """A scaled reference has an infinite SI-SDR, but its SDR (not scale invariant) is that of the gain:
    0.5 s leaves an error of 0.5 s, 6.02 dB. SI-SIR and SI-SAR split SI-SDR's error in two orthogonal parts:
    1/SI-SDR = 1/SI-SIR + 1/SI-SAR as linear ratios."""
    reference, interference, artifact = _noise(0), _noise(1), _noise(2)
    si_sdr, si_sir, si_sar = scale_invariant(reference, 0.5 * reference)
    assert si_sdr > 100 and math.isnan(si_sir) and math.isnan(si_sar)
    assert _sdr(reference, 0.5 * reference) == pytest.approx(20 * np.log10(2), abs=1e-9)

    estimate = reference + 0.2 * interference + 0.05 * artifact
    si_sdr, si_sir, si_sar = scale_invariant(reference, estimate, interference)
    assert 10 ** (-si_sdr / 10) == pytest.approx(10 ** (-si_sir / 10) + 10 ** (-si_sar / 10), rel=1e-9)
    assert si_sir == pytest.approx(20 * np.log10(1 / 0.2), abs=0.1)
    assert si_sar == pytest.approx(20 * np.log10(1 / 0.05), abs=0.1)
    assert scale_invariant(reference, 3.0 * estimate, interference) == pytest.approx((si_sdr, si_sir, si_sar))
    assert all(map(math.isnan, scale_invariant(np.zeros_like(reference), estimate)))


def test_mrstft_sees_the_missing_band_that_sdr_does_not():
    """A 3.5 kHz low-pass and a broadband noise of the same error energy have the same SDR; the spectral
    distance of the low-pass is much larger (its upper band is gone)."""
    reference = pink_noise(0, 3.0, RATE)
    low_passed = lowpass(reference, RATE, 3500.0)
    noise = _noise(5)
    noise *= np.sqrt(np.sum((low_passed - reference) ** 2) / np.sum(noise**2))
    noisy = reference + noise
    assert _sdr(reference, low_passed) == pytest.approx(_sdr(reference, noisy), abs=0.2)
    assert mrstft_distance_db(reference, low_passed) > 2 * mrstft_distance_db(reference, noisy)
    assert mrstft_distance_db(reference, reference) == 0.0
    assert mrstft_distance_db(reference, 0.5 * reference) == pytest.approx(20 * np.log10(2), abs=0.1)
    assert math.isnan(mrstft_distance_db(np.zeros_like(reference), reference))


# ----------------------------------------------------------------------------- a study's stimuli, end to end


def _write_song(folder, seed: int) -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    stems = {}
    for k, name in enumerate(("vocals", "drums", "bass", "other")):
        mono = 0.05 * rng.standard_normal(5 * RATE) + 0.1 * np.sin(
            2 * np.pi * (220 * (k + 1)) * np.arange(5 * RATE) / RATE
        )
        stems[name] = np.stack([mono, 0.7 * mono + 0.01 * rng.standard_normal(mono.size)], axis=1)
        sf.write(folder / f"{name}.wav", stems[name].astype(np.float32), RATE, subtype="FLOAT")
    sf.write(folder / "mixture.wav", sum(stems.values()).astype(np.float32), RATE, subtype="FLOAT")


def _half_mixture(system, mix, rate, target):
    """A fake separator: half the mixture (so, to scale-invariant and level-matched metrics, the mixture)."""
    return 0.5 * mix


def _render(root, anchors):
    if not (root / "dataset").exists():
        _write_song(root / "dataset" / "test" / "song_a", seed=0)
    study = StudyConfig(
        "metrics", str(root / "dataset"), (ExcerptSpec("song_a", 1.0, 4.0),), ("vocals",),
        (SystemSpec("half", root / "half.pt"),), anchors=anchors,
    )  # fmt: skip
    return prepare_stimuli(study, root / f"cache-{len(anchors)}", separator=_half_mixture)


@pytest.fixture(scope="module")
def stimuli(tmp_path_factory):
    return _render(tmp_path_factory.mktemp("metrics"), ("anchor35", "mixture"))


def test_study_excerpt_metrics_of_the_stimuli(stimuli):
    table = study_excerpt_metrics(stimuli)
    conditions = ("half", "reference", "anchor35", "mixture")
    assert len(table) == len(conditions) * len(METRICS)
    value = table.set_index(["condition", "metric"])["value"]
    assert all(value["reference", m] == math.inf for m in METRICS if m != "MRSTFT")
    assert value["reference", "MRSTFT"] == 0.0
    assert table.loc[table["condition"] != "reference", "value"].map(math.isfinite).all()
    song = stimuli.root.parents[1] / "dataset" / "test" / "song_a"
    mix, vocals = (
        sf.read(song / f"{name}.wav", always_2d=True)[0][RATE : 4 * RATE].T for name in ("mixture", "vocals")
    )
    # SDR: the mixture against the planted vocals on the excerpt, BSS Eval v4 frames (16-bit files: 0.05 dB)
    assert value["mixture", "SDR"] == pytest.approx(median_sdr(window_sdr_frames(vocals, mix)), abs=0.05)
    expected = scale_invariant(vocals, mix, mix - vocals)
    assert value["mixture", "SI-SDR"] == pytest.approx(expected[0], abs=0.05)
    assert value["mixture", "SI-SIR"] == pytest.approx(expected[1], abs=0.05)
    (sir, _), *_ = bss_sir_sar(vocals, mix - vocals, {"mix": mix}, RATE).values()
    assert value["mixture", "SIR"] == pytest.approx(sir, abs=0.05)
    # half the mixture: another SDR (0 dB: the four stems have equal energies; the mixture's is
    # 10 log10(1/3) = -4.8 dB), but the same SI-SDR, SIR and heard spectrum as the mixture
    assert value["half", "SDR"] == pytest.approx(value["mixture", "SDR"] + 10 * np.log10(3), abs=0.5)
    for metric in ("SI-SDR", "SIR", "MRSTFT"):
        assert value["half", metric] == pytest.approx(value["mixture", metric], abs=0.05), metric
    assert value["anchor35", "MRSTFT"] < 0 and value["anchor35", "SI-SIR"] > value["mixture", "SI-SIR"]


def test_excerpt_metrics_are_cached_beside_the_stimuli(stimuli):
    study_excerpt_metrics(stimuli)
    cache = stimuli.root / CACHE_NAME
    header, _, body = cache.read_text().partition("\n")
    assert header == "# excerpt_metrics format 1"
    lines = body.splitlines()
    lines[1] = ",".join([*lines[1].split(",")[:-1], "99.5"])  # a value planted in the cache is read back
    cache.write_text("\n".join([header, *lines]) + "\n")
    assert study_excerpt_metrics(stimuli)["value"].iloc[0] == 99.5
    cache.write_text("# excerpt_metrics format 0\n" + body)  # another format: computed again
    assert study_excerpt_metrics(stimuli)["value"].iloc[0] != 99.5


def test_without_the_mixture_anchor_sir_and_sar_are_nan(tmp_path):
    table = study_excerpt_metrics(_render(tmp_path, ("anchor35",)))
    needs_mixture = table["metric"].isin(["SIR", "SAR", "SI-SIR", "SI-SAR"])
    assert table.loc[needs_mixture, "value"].map(math.isnan).all()
    assert table.loc[~needs_mixture & (table["condition"] != "reference"), "value"].map(math.isfinite).all()


def test_an_unreadable_stimulus_is_a_stimulus_error_naming_the_file(tmp_path):
    stimuli = _render(tmp_path, ("mixture",))
    trial = stimuli.trials[0]
    broken = stimuli.path(trial.conditions["half"])
    broken.write_bytes(b"not a wav file")
    with pytest.raises(StimulusError, match=re.escape(str(broken))):
        study_excerpt_metrics(stimuli)
    assert not (stimuli.root / CACHE_NAME).exists()


# ------------------------------------------------------------------------------------------ correlations


CONDITIONS = {"reference": 0, "anchor35": 1, "unet": 2, "demucs": 3, "mixture": 4}


def _tables(excerpts=(("s1", "vocals"), ("s2", "vocals"), ("s1", "drums"), ("s2", "drums")), listeners=3):
    """Metric "A" rises with the condition and the excerpt; every listener rates exp(A) plus their own
    offset (monotone in A, not linear); metric "B" is unrelated noise. The hidden reference gets a
    metric far below every other and the top rating: if it were a point, no correlation could be 1."""
    rng = np.random.default_rng(0)
    metrics, ratings = [], []
    for e, (song, target) in enumerate(excerpts):
        keys = {
            "trial_id": f"t{e}",
            "song": song,
            "target": target,
            "excerpt_start_s": 1.0 + e / 3,
            "excerpt_end_s": 9.0,
        }
        for condition, k in CONDITIONS.items():
            a = -50.0 if condition == "reference" else 2.0 * k + 0.5 * e
            for metric, value in (("A", a), ("B", rng.normal()), ("SIR", float("nan"))):
                metrics.append({**keys, "condition": condition, "metric": metric, "value": value})
            for listener in range(listeners):
                score = 100.0 if condition == "reference" else min(95.0, np.exp(a / 3) + 5 * listener)
                ratings.append({**keys, "session_uuid": f"u{listener}", "participant_id": f"p{listener}",
                                "rating_stimulus": condition, "rating_score": score,
                                "mode": "mushra"})  # fmt: skip
        # an A/B row of the same excerpt (its score is a confidence) must be ignored
        ratings.append({**keys, "session_uuid": "u0", "participant_id": "p0", "rating_stimulus": "unet",
                        "rating_score": 3.0, "mode": "ab"})  # fmt: skip
    return pd.DataFrame(ratings), pd.DataFrame(metrics)


def test_a_metric_the_ratings_are_monotone_in_correlates_perfectly():
    ratings, metrics = _tables()
    table = metric_correlations(ratings, metrics)
    assert list(table.columns) == CORRELATION_COLUMNS
    assert list(table["metric"].unique()) == ["A", "B", "SIR"]
    assert list(table["target"].unique()) == ["drums", "vocals", "all"]
    a = table[table["metric"] == "A"].set_index("target")
    assert (a["n"] == [8, 8, 16]).all()  # 2 excerpts (4) x 4 conditions, the hidden reference left out
    for column in ("spearman_rho", "kendall_tau", "listener_kendall_tau_median"):
        assert a[column].tolist() == pytest.approx([1.0, 1.0, 1.0]), column
    assert (a["n_listeners"] == 3).all()
    assert (a["pearson_r"] > 0.8).all() and (a["pearson_r"] < 1.0).all()  # monotone, not linear
    sir = table[table["metric"] == "SIR"]  # all NaN (no mixture anchor): no points, no crash
    assert (sir["n"] == 0).all() and sir["spearman_rho"].isna().all() and (sir["n_listeners"] == 0).all()
    best = best_metrics(table)
    assert list(best.columns) == ["target", "metric", "spearman_rho"]
    assert list(best["metric"]) == ["A", "A", "A"] and best["spearman_rho"].tolist() == pytest.approx(
        [1, 1, 1]
    )


def test_systems_only_and_too_few_points():
    ratings, metrics = _tables()
    systems = metric_correlations(ratings, metrics, anchors=False)
    assert systems.loc[(systems["metric"] == "A") & (systems["target"] == "all"), "n"].item() == 8
    # one excerpt, systems only: 2 points per metric, fewer than 3 -> NaN, no crash
    ratings, metrics = _tables(excerpts=(("s1", "vocals"),), listeners=2)
    table = metric_correlations(ratings, metrics, anchors=False)
    assert (table.loc[table["metric"] == "A", "n"] == 2).all()
    assert (
        table[["pearson_r", "spearman_rho", "kendall_tau", "listener_kendall_tau_median"]].isna().all().all()
    )
    assert (table["n_listeners"] == 0).all()
    assert best_metrics(table)["metric"].isna().all()
