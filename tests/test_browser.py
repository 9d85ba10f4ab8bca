"""mss.browser: a view reads, separates and scores only its window; evaluation JSON reuse; bad input;
a bounded cache. Runs on the session's ``tiny_dataset`` (6-8 s songs) with tiny random-weight models."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import soundfile as sf
from helpers import make_tiny_checkpoints

from mss.bench.browser import benchmark
from mss.browser import BrowserConfig, BrowserError, SpectrogramBrowser
from mss.chunking import chunk_span
from mss.errors import DatasetError, MSSError

RATE = 44100


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    return make_tiny_checkpoints(tmp_path_factory.mktemp("browser-checkpoints"))


@pytest.fixture(scope="module")
def eval_dir(tmp_path_factory):
    """An evaluation folder holding nothing yet (tests plant JSON files in it)."""
    return tmp_path_factory.mktemp("browser-eval")


@pytest.fixture(scope="module")
def browser(tiny_dataset, checkpoints, eval_dir, one_torch_thread):
    return SpectrogramBrowser(tiny_dataset, checkpoints, eval_dir)


def _wav(browser, song: str, name: str) -> np.ndarray:
    """(C, T) of one of a song's wav files, read whole (the test's ground truth)."""
    from mss.data import find_track, track_info

    audio, rate = sf.read(
        track_info(find_track(browser.db, song)).file(name), dtype="float32", always_2d=True
    )
    assert rate == RATE
    return audio.T


def _plant(eval_dir, system: str, song: str, target: str, sdrs) -> None:
    """A museval per-track JSON with SDR ``sdrs`` on 1-s frames (None is written as NaN)."""
    frames = [
        {"time": float(i), "duration": 1.0, "metrics": {"SDR": v, "SIR": 0.0, "ISR": 0.0, "SAR": 0.0}}
        for i, v in enumerate(sdrs)
    ]
    path = eval_dir / system / "test" / f"{song}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"targets": [{"name": target, "frames": frames}]}).replace("null", "NaN"))


def test_view_is_the_window_of_whole_song_separation(browser):

    song = browser.songs()[0]
    view = browser.view(song, "vocals", browser.systems(), 2.2, 4.7)
    length = round(2.5 * RATE)
    assert (view.start_s, view.end_s) == pytest.approx((2.2, 4.7))
    assert view.mixture.shape == view.reference.shape == (2, length)
    assert all(estimate.shape == (2, length) for estimate in view.estimates.values())
    lo = round(2.2 * RATE)
    mixture = _wav(browser, song, "mixture")
    np.testing.assert_array_equal(view.mixture, mixture[:, lo : lo + length])
    np.testing.assert_array_equal(view.reference, _wav(browser, song, "vocals")[:, lo : lo + length])
    # The span separated is made of the whole song's own chunks (chunk_span), so the window matches the
    # whole-song separation except for resampling edge effects at the span's borders, > 0.25 s away.
    _assert_window_is_whole_song_separation(browser, view, mixture, lo)
    assert len(view.figure.axes) >= 2 + 2 * len(browser.systems())
    view.figure.canvas.draw()
    bottom = [axis for axis in view.figure.axes if axis.get_xlabel() == "time (s)"][0]
    labels = [float(t.get_text()) for t in bottom.get_xticklabels() if t.get_text()]
    assert labels and 2.2 <= min(labels) and max(labels) <= 4.7  # song time, not window time


def _assert_window_is_whole_song_separation(browser, view, mixture: np.ndarray, lo: int) -> None:
    from mss.separate import separate

    length = view.mixture.shape[-1]
    for name, model in browser.models.items():
        whole = separate(model, mixture, RATE, stems=[view.target])[view.target][:, lo : lo + length]
        error = whole - view.estimates[name]
        snr_db = 10 * np.log10(np.sum(whole**2) / max(np.sum(error**2), 1e-30))
        assert snr_db > 60.0, f"{name}: window estimate differs from whole-song separation ({snr_db:.1f} dB)"


def test_a_shifting_models_view_is_the_window_of_its_whole_song_separation(
    tiny_dataset, checkpoints, eval_dir, tmp_path, one_torch_thread
):
    """Models whose default is the shift trick: the view separates a span wider by whole chunk hops covering
    the largest delay, so the delayed copies read the song's audio near the window, as in the whole song."""
    from mss.checkpoint import main as checkpoint_main

    shifted = {}
    for arch, path in checkpoints.items():
        shifted[arch] = tmp_path / f"{arch}-shifts2.pt"
        assert checkpoint_main([str(path), str(shifted[arch]), "--shifts", "2"]) == 0
    browser = SpectrogramBrowser(tiny_dataset, shifted, eval_dir)
    assert all(model.shifts == 2 for model in browser.models.values())
    song = browser.songs()[0]
    view = browser.view(song, "vocals", browser.systems(), 2.2, 4.7)
    lo = round(2.2 * RATE)
    _assert_window_is_whole_song_separation(browser, view, _wav(browser, song, "mixture"), lo)


def test_chunk_span_covers_the_chunks_touching_the_window(browser):
    model = browser.models["unet"]  # tiny: segments of 1 s at 22.05 kHz
    segment, hop = 22050, 16538  # hop = round(segment * (1 - 0.25)) samples at 22.05 kHz

    def span(lo, hi, length):
        return chunk_span(lo, hi, length, RATE, model.sample_rate, model.segment_s)

    a, b = span(round(2.2 * RATE), round(4.7 * RATE), 7 * RATE)
    # Chunk 1 (0.75-1.75 s) ends before 2.2 s; chunks 2 to 6 (1.5-2.5 s ... 4.5-5.5 s) touch the window.
    assert (a, b) == (2 * (2 * hop), 2 * (6 * hop + segment))
    assert span(0, RATE, 7 * RATE)[0] == 0
    assert span(6 * RATE, 7 * RATE, 7 * RATE)[1] == 7 * RATE  # clamped to the song
    # a margin (the shift trick's largest delay, 0.5 s) adds whole hops on each side: one here (0.75 s)
    wide = chunk_span(round(2.2 * RATE), round(4.7 * RATE), 7 * RATE, RATE, model.sample_rate, model.segment_s,
                      margin=11025)  # fmt: skip
    assert wide == (2 * (1 * hop), 2 * (7 * hop + segment))
    assert chunk_span(0, RATE, 7 * RATE, RATE, model.sample_rate, model.segment_s, margin=11025)[0] == 0


def test_window_sdr_is_museval_on_the_window(browser):
    import museval

    song = browser.songs()[0]
    view = browser.view(song, "vocals", browser.systems(), 2.2, 4.7)  # cached by the test above
    for row in view.rows:
        estimate = view.estimates[row.system]
        sdr, _, _, _ = museval.evaluate(
            view.reference.T[None], estimate.T[None], win=RATE, hop=RATE, mode="v4"
        )  # (1, N) over the window's 1-s frames
        assert row.window_source == "scored" and row.song_sdr_db is None
        assert row.window_frames == np.isfinite(sdr).sum() == 2
        # the filter-free SDR (window_sdr_frames) against museval's own
        assert row.window_sdr_db == pytest.approx(float(np.nanmedian(sdr)), abs=1e-4)
    assert any("python -m mss.evaluate" in note for note in view.notes)


def test_evaluation_json_is_reused(browser, eval_dir):
    song = browser.songs()[1]
    planted = [1.0, 2.0, None, 8.0, 3.0, -1.0, 5.0]  # a NaN frame (silent reference) is skipped
    _plant(eval_dir, "unet", song, "vocals", planted)
    view = browser.view(song, "vocals", ["unet", "demucs"], 2.0, 5.5)
    unet, demucs = view.rows
    assert unet.window_source == "evaluation"
    assert unet.song_sdr_db == pytest.approx(np.median([1.0, 2.0, 8.0, 3.0, -1.0, 5.0]))
    assert unet.window_frames == 2 and unet.window_sdr_db == pytest.approx(np.median([8.0, 3.0]))  # 3 s, 4 s
    assert unet.as_dict()["song SDR (dB)"] == pytest.approx(2.5)
    assert demucs.window_source == "scored" and demucs.song_sdr_db is None
    assert demucs.as_dict()["song SDR (dB)"] == "not available"
    assert [note for note in view.notes if note.startswith("demucs")] and not [
        note for note in view.notes if note.startswith("unet")
    ]


def test_a_song_that_is_no_valid_song_is_refused_with_its_figures(tiny_dataset, tmp_path):
    """The browser reads through mss.data.TrackReader, which refuses a song failing its check: here a test
    song whose mixture was cut to 614 samples (its stems keep their length)."""
    import shutil

    from mss.errors import InvalidSongError

    data = tmp_path / "data"
    shutil.copytree(tiny_dataset, data)
    song = sorted(p for p in (data / "test").iterdir() if p.is_dir())[0]
    audio, rate = sf.read(song / "mixture.wav", dtype="float32", always_2d=True)
    sf.write(song / "mixture.wav", audio[:614], rate, subtype="FLOAT")
    browser = SpectrogramBrowser(data, {}, None)
    with pytest.raises(InvalidSongError, match=r"mixture.wav: not a valid song .* has 614 samples"):
        browser.view(song.name, "vocals", [], 0, 2)


def test_bad_input_is_refused_clearly(browser):
    song = browser.songs()[0]
    duration = browser.duration(song)
    with pytest.raises(DatasetError, match="unknown track"):
        browser.view("No Such Song", "vocals", ["unet"], 0, 2)
    with pytest.raises(BrowserError, match="unknown target 'piano'"):
        browser.view(song, "piano", ["unet"], 0, 2)
    with pytest.raises(BrowserError, match=r"unknown system\(s\) \['wavenet'\]"):
        browser.view(song, "vocals", ["wavenet"], 0, 2)
    with pytest.raises(BrowserError, match="must be after start"):
        browser.view(song, "vocals", ["unet"], 3, 3)
    with pytest.raises(BrowserError, match=">= 0"):
        browser.view(song, "vocals", ["unet"], -1, 2)
    with pytest.raises(BrowserError, match="past the end"):
        browser.view(song, "vocals", ["unet"], duration + 1, duration + 3)
    with pytest.raises(BrowserError, match="shorter than 1 s"):
        browser.view(song, "vocals", ["unet"], duration - 0.5, duration + 3)
    with pytest.raises(BrowserError, match="numbers of seconds"):
        browser.view(song, "vocals", ["unet"], math.nan, 2)
    small = SpectrogramBrowser(browser.db, {}, None, BrowserConfig(max_window_s=2.0))
    with pytest.raises(BrowserError, match="longer than 2 s"):
        small.view(song, "vocals", [], 0, 2.5)
    assert issubclass(BrowserError, MSSError) and issubclass(BrowserError, ValueError)
    # A window running past the song's end is clamped to it; no systems: mixture and reference only.
    view = small.view(song, "vocals", [], duration - 1.5, duration + 30)
    assert view.end_s == pytest.approx(duration) and abs(view.mixture.shape[-1] - 1.5 * RATE) <= 1
    assert view.rows == () and view.estimates == {}


def test_cache_is_bounded(tiny_dataset, checkpoints, tmp_path, one_torch_thread):
    eval_dir, config = tmp_path / "eval", BrowserConfig(cache_items=2)
    browser = SpectrogramBrowser(tiny_dataset, {"unet": checkpoints["unet"]}, eval_dir, config)
    song = browser.songs()[0]
    _plant(eval_dir, "unet", song, "vocals", [0.0] * 6)  # window SDR from the JSON: no scoring needed
    for start_s in (0.0, 1.0, 2.0, 3.0, 4.0):
        view = browser.view(song, "vocals", ["unet"], start_s, start_s + 1.0)
        assert browser.cache_size <= 2
    again = browser.view(song, "vocals", ["unet"], 4.0, 5.0)  # the most recent view is a cache hit
    assert again.estimates["unet"] is view.estimates["unet"]
    assert browser.cache_size == 2


def test_benchmark_reports_latency_and_memory(tiny_dataset, checkpoints, one_torch_thread):
    lines = []
    result = benchmark(
        tiny_dataset, views=2, view_s=1.5, checkpoints={"unet": checkpoints["unet"]}, out=lines.append
    )
    assert len(result["latency_s"]) == len(result["rss_mb"]) == 2
    assert result["max_latency_s"] >= result["median_latency_s"] > 0
    assert result["rss_first_mb"] > 0 and result["rss_last_mb"] > 0
    assert len(lines) == 4 and "RSS" in lines[1] and "median" in lines[-1]


def test_window_sdr_frames_follow_museval_framing_and_silence():
    import museval

    from mss.evaluation.frame_sdr import window_sdr_frames

    rng = np.random.default_rng(4)
    reference = rng.standard_normal((2, 3 * RATE + 500))
    reference[:, RATE : 2 * RATE] = 0.0  # a silent frame: NaN in museval
    estimate = reference + 0.3 * rng.standard_normal(reference.shape)
    ours = window_sdr_frames(reference, estimate)
    sdr, _, _, _ = museval.evaluate(reference.T[None], estimate.T[None], win=RATE, hop=RATE, mode="v4")
    assert ours.shape == sdr[0].shape == (3,)
    assert np.isnan(ours[1]) and np.isnan(sdr[0][1])
    np.testing.assert_allclose(ours[[0, 2]], sdr[0][[0, 2]], atol=1e-6)
