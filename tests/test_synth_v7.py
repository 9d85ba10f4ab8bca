"""Generator v7 (v5's songs sung by Festival's HTS voice): valid songs, same bytes for a seed, the same
compositions as v5, singers on the melody's pitch, and a vocal tract that moves the formants and nothing else."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pretty_midi
import pytest
from helpers import assert_valid_song, song_digest

from mss.data.synth import build_song, hts, voice

RATE = 44100
pytestmark = pytest.mark.skipif(
    shutil.which("festival") is None
    or shutil.which("espeak-ng") is None
    or not Path("/usr/share/festival/voices/us", hts.HTS_VOICE).is_dir(),
    reason="festival, its HTS voice or espeak-ng not installed (scripts/setup.sh installs them)",
)


@pytest.fixture(scope="module")
def v7_song():
    return build_song(2, 4, (6.0, 6.0), version=7)  # a lead singer and a backing one


def test_v7_song_passes_the_song_check_and_is_reproducible(v7_song):
    assert_valid_song(v7_song, RATE)
    assert song_digest(build_song(2, 4, (6.0, 6.0), version=7)) == song_digest(v7_song)


def test_v7_sings_v5s_songs_with_the_hts_voice(v7_song):
    v5 = build_song(2, 4, (6.0, 6.0), version=5)
    assert song_digest(v5) != song_digest(v7_song)
    # the same composition: the same parts played, by the same instruments except the singers. (Here every
    # later draw is v5's too; where a song's first phrase starts within about 0.6 s, a breath drawn or not
    # before it can differ, and the draws after the singer with it: 7 of the 336 songs of data/synth-v7s4-8.)
    assert v5.info["instruments"] == v7_song.info["instruments"]
    assert v5.info["sources"].keys() == v7_song.info["sources"].keys()
    for part, source in v7_song.info["sources"].items():
        if part.startswith("vocals:"):
            assert source.startswith(f"festival {hts.HTS_VOICE}") and v5.info["sources"][part].startswith(
                "espeak-ng"
            )
        else:
            assert source == v5.info["sources"][part]


def test_formant_factor_spans_each_registers_range():
    assert hts.formant_factor("female", 35) == pytest.approx(0.94)
    assert hts.formant_factor("female", 70) == pytest.approx(1.06)
    assert hts.formant_factor("male", 0) == pytest.approx(0.78)  # clipped to the range
    assert hts.formant_factor("male", 99) == pytest.approx(0.86)
    assert voice.voice_register(voice.Voice("en-us+f3")) == "female"
    assert voice.voice_register(voice.Voice("en-us+Mike")) == "male"


def _peak_hz(audio: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(audio.size)))
    return float(np.fft.rfftfreq(audio.size, 1 / rate)[np.argmax(spectrum)])


def test_a_longer_vocal_tract_lowers_every_frequency_and_slows_the_speech():
    t = np.arange(hts.HTS_RATE) / hts.HTS_RATE  # one second of a 1-kHz tone at the voice's rate
    tone = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    for formants in (1.0, 0.8, 1.06):
        moved = hts._retract(tone, formants, voice.SPEECH_RATE)
        assert moved.size == pytest.approx(voice.SPEECH_RATE / formants, rel=0.002)
        assert _peak_hz(moved, voice.SPEECH_RATE) == pytest.approx(1000 * formants, abs=2)


def test_the_voice_eq_cuts_the_lows_and_lifts_the_presence_band():
    rate = voice.SPEECH_RATE
    t = np.arange(rate) / rate
    gains = {}
    for hz in (100.0, 1000.0, 3600.0):
        tone = np.sin(2 * np.pi * hz * t).astype(np.float32)
        out = hts._brighten(tone, rate)[rate // 4 :]  # past the filters' start
        gains[hz] = 20 * np.log10(np.sqrt(np.mean(out**2)) / np.sqrt(0.5))
    assert gains[100.0] == pytest.approx(hts.VOICE_EQ.low_shelf_db, abs=1.0)
    assert gains[3600.0] == pytest.approx(hts.VOICE_EQ.presence_db, abs=0.5)
    assert abs(gains[1000.0]) < 2.5


def test_the_hts_voice_speaks_each_word_once():
    plain = voice.spoken_words(["day", "stay", "day"], voice.Voice("en-us+f3", pitch=35), "hts")
    assert list(plain) == ["day", "stay"]
    day = plain["day"]  # trimmed: it starts and ends at its first and last sample above 1% of its peak
    assert day.dtype == np.float32 and 0.2 * voice.SPEECH_RATE < day.size < 1.0 * voice.SPEECH_RATE
    assert min(abs(day[0]), abs(day[-1])) > 0.01 * np.abs(day).max()
    again = hts.speak_words(["day"], 0.94, voice.SPEECH_RATE)["day"]  # female, pitch 35: formants x0.94
    np.testing.assert_array_equal(voice.trim_silence(again), day)  # the same bytes each time
    male = hts.speak_words(["day"], 0.8, voice.SPEECH_RATE)["day"]
    assert male.size / again.size == pytest.approx(0.94 / 0.8, rel=0.002)
    assert hts.speak_words([], 1.0, voice.SPEECH_RATE) == {}


def test_festival_failures_and_odd_words_are_errors(monkeypatch):
    from mss.errors import DatasetError, MissingDependencyError

    with pytest.raises(DatasetError, match="letters only"):
        hts.speak_words(["day", '") (system "ls'], 1.0, voice.SPEECH_RATE)
    with pytest.raises(DatasetError, match="letters only"):
        hts.speak_words([""], 1.0, voice.SPEECH_RATE)
    monkeypatch.setattr(hts, "HTS_VOICE", "no_such_voice_hts")
    with pytest.raises(MissingDependencyError, match="no_such_voice_hts voice failed.*festvox-us-slt-hts"):
        hts.speak_words(["day"], 1.0, voice.SPEECH_RATE)


def _median_f0(audio: np.ndarray, rate: int) -> float:
    import librosa

    f0 = librosa.yin(audio, fmin=80, fmax=800, sr=rate, frame_length=2048)
    return float(np.median(f0))


@pytest.mark.parametrize(("name", "pitch"), [("en-us+f3", 69), ("en-us+m3", 52)])
def test_hts_singers_sing_the_melodys_pitch(name, pitch):
    instrument = pretty_midi.Instrument(0)
    instrument.notes.append(pretty_midi.Note(90, pitch, 0.5, 1.5))
    singer = voice.Voice(name, speed=140, pitch=50, breath_db=-20.0)
    audio = voice.render_vocal(instrument, singer, ["day"], 2 * RATE, RATE, np.random.default_rng(1), "hts")
    assert audio.shape == (2, 2 * RATE) and np.any(audio)
    expected = 440.0 * 2 ** ((pitch - 69) / 12)
    assert _median_f0(audio[0, int(0.7 * RATE) : int(1.3 * RATE)], RATE) == pytest.approx(expected, rel=0.03)


def test_an_unknown_speech_engine_is_refused():
    with pytest.raises(ValueError, match="speech engine"):
        voice.spoken_words(["day"], voice.Voice("en-us+f3"), "mbrola")
