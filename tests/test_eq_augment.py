"""Random EQ of each training source (``DataConfig.eq_db``): the biquads against their design values, the
random draws' bounds, and the chunks it gives against an EQ applied by hand to the plain chunks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchaudio.functional as AF
from scipy.signal import sosfilt, sosfreqz

from mss.data import DataConfig, TrainChunks, open_db
from mss.data.augment import EQ_PREROLL, eq_params, equalize, high_shelf, low_shelf, peak
from mss.data.tracks import read_part
from mss.errors import DatasetError
from training.config import TrainConfig, parse_value
from training.run_data import chunk_config

SLOPE_ONE_Q = 1 / np.sqrt(2)  # a shelf of slope 1 is torchaudio's shelf of Q 1/sqrt(2)
pytestmark = pytest.mark.usefixtures("one_torch_thread")
FOUR = ("vocals", "drums", "bass", "other")


def _gain_db(sections: np.ndarray, freqs_hz, rate: int) -> np.ndarray:
    """Magnitude response in dB of ``sections (n, 6)`` or ``(6,)`` at ``freqs_hz``."""
    _, response = sosfreqz(np.atleast_2d(sections), worN=np.asarray(freqs_hz, dtype=float), fs=rate)
    return 20 * np.log10(np.abs(response))


@pytest.mark.parametrize("rate", [16000, 22050, 44100])
def test_biquads_meet_their_design(rate):
    nyquist = rate / 2
    # shelves: the full gain on their side, half of it (in dB) at the corner, none on the far side
    np.testing.assert_allclose(
        _gain_db(low_shelf(150, 6, rate), [2, 150, nyquist - 1], rate), [6, 3, 0], atol=0.02
    )
    np.testing.assert_allclose(
        _gain_db(high_shelf(3000, -9, rate), [2, 3000, nyquist - 1], rate), [0, -4.5, -9], atol=0.05
    )
    # a peak: its gain at the centre, none far from it, and a cut mirrors a boost
    np.testing.assert_allclose(
        _gain_db(peak(1000, 6, 1.0, rate), [1000, 2, nyquist - 1], rate), [6, 0, 0], atol=0.02
    )
    np.testing.assert_allclose(
        _gain_db(peak(1000, -6, 1.0, rate), [500, 1000], rate),
        -_gain_db(peak(1000, 6, 1.0, rate), [500, 1000], rate),
    )
    # the same filters as torchaudio's (SoX's) bass, treble and equalizer biquads, at every frequency
    noise = torch.from_numpy(
        np.random.default_rng(0).standard_normal((1, 3000)) * 0.05
    )  # inside lfilter's clamp
    for ours, theirs in (
        (low_shelf(150, 6, rate), AF.bass_biquad(noise, rate, 6.0, 150, SLOPE_ONE_Q)),
        (high_shelf(3000, -6, rate), AF.treble_biquad(noise, rate, -6.0, 3000, SLOPE_ONE_Q)),
        (peak(1000, 6, 1.3, rate), AF.equalizer_biquad(noise, rate, 1000, 6.0, 1.3)),
    ):
        np.testing.assert_allclose(sosfilt(ours, noise.numpy()), theirs.numpy(), atol=1e-9)
    # a narrower peak (higher Q) leaves an octave away more alone
    assert (
        _gain_db(peak(1000, 6, 2.0, rate), [2000], rate)[0]
        < _gain_db(peak(1000, 6, 0.5, rate), [2000], rate)[0]
    )


@pytest.mark.parametrize("rate", [8000, 16000, 22050])
def test_random_eq_is_bounded_stable_and_seeded(rate):
    sections = eq_params(np.random.default_rng(0), 200, 6.0, rate)  # (200, 3, 6)
    assert sections.shape == (200, 3, 6)
    np.testing.assert_array_equal(sections, eq_params(np.random.default_rng(0), 200, 6.0, rate))
    freqs = np.geomspace(20, rate / 2 - 1, 200)
    responses = np.stack([_gain_db(s, freqs, rate) for s in sections])  # (200, F)
    assert np.all(np.abs(responses) <= 18 + 1e-6)  # three bands of at most 6 dB each
    assert np.abs(responses).max() > 6  # and they do reach past one band's gain
    poles = np.concatenate([np.roots(s[3:]) for s in sections.reshape(-1, 6)])
    assert np.all(np.abs(poles) < 1)  # every section is stable, even with its corner near Nyquist
    # a 0-dB EQ passes the audio through
    audio = np.random.default_rng(1).standard_normal((3, 2, 500)).astype(np.float32)
    flat = audio.copy()
    equalize(flat, eq_params(np.random.default_rng(2), 3, 0.0, rate))
    np.testing.assert_allclose(flat, audio, atol=1e-6)
    with pytest.raises(ValueError, match="max_db"):
        eq_params(np.random.default_rng(0), 2, -1.0, rate)


def test_equalize_shapes_noise_as_designed():
    rate = 22050
    noise = np.random.default_rng(3).standard_normal((1, 1, 4 * rate))
    shaped = noise.copy()
    equalize(shaped, peak(2000, 9, 1.0, rate)[None, None])
    spectrum = np.abs(np.fft.rfft(shaped[0, 0])) / np.abs(np.fft.rfft(noise[0, 0]))
    freqs = np.fft.rfftfreq(4 * rate, 1 / rate)
    near = (freqs > 1950) & (freqs < 2050)
    far = (freqs > 8000) & (freqs < 9000)
    assert 20 * np.log10(np.median(spectrum[near])) == pytest.approx(9, abs=0.5)
    assert abs(20 * np.log10(np.median(spectrum[far]))) < 0.5


def _scale_and_order(augmented: np.ndarray, raw: np.ndarray) -> tuple[float, np.ndarray]:
    """The gain (with its sign) and channel order that turn ``raw (C, T)`` into ``augmented (C, T)``."""
    best = None
    for order in (np.arange(raw.shape[0]), np.arange(raw.shape[0])[::-1]):
        candidate = raw[order].astype(np.float64)
        scale = float(np.sum(augmented * candidate) / np.sum(candidate * candidate))
        error = float(np.abs(augmented - scale * candidate).max())
        if best is None or error < best[0]:
            best = (error, scale, order)
    assert best[0] < 1e-5
    return best[1], best[2]


def test_chunks_with_eq_are_slices_of_the_whole_song_equalised(tiny_dataset):
    """Each source of an EQ'd chunk equals the same samples of its whole (augmented) part filtered from the
    song's first sample: the EQ's draws come after the plain ones, and the chunk has no start-up transient."""
    db = open_db(tiny_dataset, "train")
    values = dict(targets=FOUR, segment_s=0.5, seed=4, samples_per_epoch=8)
    plain, eq = TrainChunks(db, DataConfig(**values)), TrainChunks(db, DataConfig(**values, eq_db=6.0))
    rate, checked = plain.config.sample_rate, 0
    for index in range(4):
        generator = plain.rng(index)
        plain.rng = lambda _index, generator=generator: generator  # the plain draws, then the EQ's
        sources, chosen, songs, starts, _, _ = plain._sources(index)
        sections = eq_params(generator, len(chosen), 6.0, rate)
        del plain.rng
        item = eq.draw(index)
        assert [plain.tracks[t].key for t in songs] == item["songs"] and item["starts"] == starts
        assert not np.allclose(item["sources"], sources, atol=1e-3)  # the EQ did something
        np.testing.assert_array_equal(item["mix"], item["sources"].sum(0))  # still the sum of its parts
        for k, (part, track, start) in enumerate(zip(chosen, songs, starts, strict=True)):
            raw = plain._read(part, track, start)
            if np.abs(raw).max() < 1e-4:
                continue  # a silent part: no gain or channel order to recover
            scale, order = _scale_and_order(sources[k], raw)
            song = read_part(plain.all_parts[part], plain.songs[track].read, 0, start + plain.segment)
            whole = sosfilt(sections[k], scale * song[order].astype(np.float64), axis=-1)  # from sample 0
            np.testing.assert_allclose(item["sources"][k], whole[:, start:], atol=2e-5)
            checked += start > 0
            if part < len(FOUR):
                np.testing.assert_array_equal(item["targets"][part], item["sources"][k])
    assert checked >= 4


def test_equalize_continues_a_song_without_a_transient():
    rate = 22050
    time = np.arange(3 * rate) / rate
    song = np.stack(
        [0.5 * np.sin(2 * np.pi * 80 * time), 0.2 * np.sin(2 * np.pi * 1234 * time + 1.0)]
    )  # (2, T)
    sections = np.stack([low_shelf(60, 12, rate), peak(1000, -9, 1.0, rate), high_shelf(3000, 6, rate)])[None]
    whole = sosfilt(sections[0], song, axis=-1)
    start, length = rate + 777, 4410
    with_past = song[None, :, start : start + length].copy()
    equalize(with_past, sections, [song[:, start - EQ_PREROLL : start]])
    np.testing.assert_allclose(with_past[0], whole[:, start : start + length], atol=1e-6)
    from_silence = song[None, :, start : start + length].copy()
    equalize(from_silence, sections)  # the filters start from rest: a transient, gone within 50 ms
    error = np.abs(from_silence[0] - whole[:, start : start + length])
    assert error[:, :220].max() > 0.05 and error[:, rate // 20 :].max() < 1e-3
    at_start = song[None, :, :length].copy()
    equalize(at_start, sections, [song[:, :0]])  # at a song's first sample silence is the true past
    np.testing.assert_allclose(at_start[0], whole[:, :length], atol=1e-12)


def test_eq_setting_is_checked_and_reaches_the_chunks():
    with pytest.raises(DatasetError, match="eq_db"):
        DataConfig(eq_db=-1.0)
    with pytest.raises(ValueError, match="eq_db"):
        TrainConfig(eq_db=30.0)
    assert chunk_config(TrainConfig(eq_db=4.5)).eq_db == 4.5
    assert chunk_config(TrainConfig()).eq_db == 0.0
    assert parse_value("eq_db", "6") == 6.0  # --set eq_db=6
    with pytest.raises(ValueError, match="eq_db"):
        parse_value("eq_db", "loud")
