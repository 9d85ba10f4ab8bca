"""Random EQ of each training source (``DataConfig.eq_db``): the biquads against their design values, the
random draws' bounds, and the chunks it gives against an EQ applied by hand to the plain chunks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import sosfreqz

from mss.data import DataConfig, TrainChunks, open_db
from mss.data.augment import EQ_PEAK_HZ, eq_params, equalize, high_shelf, low_shelf, peak
from mss.errors import DatasetError
from training.config import TrainConfig
from training.run_data import chunk_config

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
    # a narrower peak (higher Q) leaves an octave away more alone
    assert (
        _gain_db(peak(1000, 6, 2.0, rate), [2000], rate)[0]
        < _gain_db(peak(1000, 6, 0.5, rate), [2000], rate)[0]
    )


@pytest.mark.parametrize("rate", [16000, 22050])
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
    assert EQ_PEAK_HZ[0] < 2000 < EQ_PEAK_HZ[1]


def test_chunks_with_eq_are_the_plain_chunks_equalised(tiny_dataset):
    db = open_db(tiny_dataset, "train")
    values = dict(targets=FOUR, segment_s=0.5, seed=4, samples_per_epoch=8)
    plain, eq = TrainChunks(db, DataConfig(**values)), TrainChunks(db, DataConfig(**values, eq_db=6.0))
    for index in range(3):
        generator = plain.rng(index)
        plain.rng = lambda _index, generator=generator: (
            generator
        )  # the plain draws, then the EQ's from the same stream
        sources, chosen, songs, starts = plain._sources(index)
        expected = sources.copy()
        equalize(expected, eq_params(generator, len(chosen), 6.0, plain.config.sample_rate))
        del plain.rng
        item = eq.draw(index)
        assert [plain.tracks[t].key for t in songs] == item["songs"]
        assert item["starts"] == starts
        np.testing.assert_array_equal(item["sources"], expected)
        assert not np.allclose(item["sources"], sources, atol=1e-3)  # the EQ did something
        np.testing.assert_allclose(
            item["mix"], item["sources"].sum(0), atol=1e-5
        )  # still the sum of its parts
        for k, part in enumerate(chosen):
            if part < len(FOUR):
                np.testing.assert_array_equal(item["targets"][part], item["sources"][k])


def test_eq_setting_is_checked_and_reaches_the_chunks():
    with pytest.raises(DatasetError, match="eq_db"):
        DataConfig(eq_db=-1.0)
    with pytest.raises(ValueError, match="eq_db"):
        TrainConfig(eq_db=30.0)
    assert chunk_config(TrainConfig(eq_db=4.5)).eq_db == 4.5
    assert chunk_config(TrainConfig()).eq_db == 0.0
