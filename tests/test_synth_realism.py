"""The realism parts of the generator: sung vocals (PSOLA), recorded drum kits, the bus limiter, banks."""

from __future__ import annotations

import shutil

import librosa
import numpy as np
import pretty_midi
import pytest
import soundfile as sf

from mss.data.synth import kits, mix, render, voice

RATE = voice.SPEECH_RATE


def _vowel(f0: float, formants: tuple[float, ...], seconds: float = 0.6) -> np.ndarray:
    """A glottal pulse train at ``f0`` through resonators at ``formants``: a crude sustained vowel."""
    from scipy import signal

    n = int(seconds * RATE)
    pulses = np.zeros(n)
    pulses[:: int(round(RATE / f0))] = 1.0
    out = pulses
    for formant in formants:
        r = np.exp(-np.pi * 80 / RATE)
        out = signal.lfilter([1 - r], [1, -2 * r * np.cos(2 * np.pi * formant / RATE), r * r], out)
    return (out / np.abs(out).max() * 0.5).astype(np.float32)


def _median_f0(audio: np.ndarray, rate: int) -> float:
    f0 = librosa.yin(audio, fmin=60, fmax=800, sr=rate, frame_length=2048)
    return float(np.median(f0[len(f0) // 4 : -len(f0) // 4]))


def _spectral_peak(audio: np.ndarray, rate: int, low: float, high: float) -> float:
    """Frequency of the strongest smoothed-spectrum peak between ``low`` and ``high`` Hz (the formant)."""
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(audio.size)))
    freqs = np.fft.rfftfreq(audio.size, 1 / rate)
    smooth = np.convolve(spectrum, np.hanning(301) / 150, mode="same")  # wider than the harmonic spacing
    band = (freqs > low) & (freqs < high)
    return float(freqs[band][np.argmax(smooth[band])])


@pytest.mark.parametrize("target_hz", [110.0, 220.0, 330.0])
def test_psola_moves_the_pitch_and_keeps_the_formant(target_hz):
    """A 150-Hz vowel with a 700-Hz formant sung at another pitch: f0 follows, the formant stays."""
    vowel = _vowel(150.0, (700.0, 1800.0))
    syllable = voice.analyse(vowel)
    assert syllable.voiced_start < 0.05 * RATE and syllable.voiced_end > 0.5 * RATE
    np.testing.assert_allclose(np.median(syllable.periods), RATE / 150.0, rtol=0.03)
    length = int(1.0 * RATE)  # stretched from 0.6 s to 1 s
    sung = voice.sing(syllable, np.full(length, target_hz), length)
    assert sung.shape == (length,)
    assert _median_f0(sung, RATE) == pytest.approx(target_hz, rel=0.02)
    assert _spectral_peak(sung, RATE, 400, 1200) == pytest.approx(700.0, rel=0.15)
    # loudness within 8 dB of the spoken vowel's for pitch ratios of 0.73 to 2.2 (grains are scaled by
    # the period ratio: higher notes come out softer, -7 dB at 2.2x; the part is normalised afterwards)
    ratio_db = 20 * np.log10(np.sqrt(np.mean(sung**2)) / np.sqrt(np.mean(vowel**2)))
    assert abs(ratio_db) < 8.0


def test_pitch_contour_follows_notes_and_bends():
    instrument = pretty_midi.Instrument(0)
    instrument.notes.append(pretty_midi.Note(90, 69, 0.1, 0.5))
    instrument.notes.append(pretty_midi.Note(90, 57, 0.6, 1.0))
    instrument.pitch_bends.append(pretty_midi.PitchBend(4096, 0.8))  # +1 semitone from 0.8 s
    f0 = voice.pitch_contour(instrument, RATE, RATE, np.random.default_rng(0))
    assert f0[int(0.3 * RATE)] == pytest.approx(440.0, rel=0.01)  # slow drift: ~8 cents
    assert f0[int(0.7 * RATE)] == pytest.approx(220.0, rel=0.01)
    assert f0[int(0.9 * RATE)] == pytest.approx(220.0 * 2 ** (1 / 12), rel=0.01)


@pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng not installed (scripts/setup.sh installs it)"
)
def test_sung_notes_have_the_pitch_of_the_melody_and_consonants():
    instrument = pretty_midi.Instrument(0)
    instrument.notes.append(pretty_midi.Note(90, 69, 0.5, 1.5))  # A4 for a second
    instrument.notes.append(pretty_midi.Note(90, 64, 1.7, 2.7))  # E4
    rng = np.random.default_rng(1)
    singer = voice.Voice("en-us+f3", speed=140, pitch=50, breath_db=-20.0)
    audio = voice.render_vocal(instrument, singer, ["sky", "stay"], 3 * 44100, 44100, rng)
    assert audio.shape == (2, 3 * 44100) and audio.dtype == np.float32
    np.testing.assert_array_equal(audio[0], audio[1])
    mono = audio[0]
    assert _median_f0(mono[int(0.7 * 44100) : int(1.3 * 44100)], 44100) == pytest.approx(440.0, rel=0.03)
    assert _median_f0(mono[int(1.9 * 44100) : int(2.5 * 44100)], 44100) == pytest.approx(329.6, rel=0.03)
    # "sky": the /s/ is sung ahead of the beat, and it is a fricative (mostly above 3 kHz)
    before = mono[int(0.38 * 44100) : int(0.5 * 44100)]
    assert np.sqrt(np.mean(before**2)) > 0.01 * np.abs(mono).max()
    spectrum = np.abs(np.fft.rfft(before))
    freqs = np.fft.rfftfreq(before.size, 1 / 44100)
    assert spectrum[freqs > 3000].sum() > spectrum[freqs < 1000].sum()
    # a breath before the first phrase: quiet, but there
    breath = mono[int(0.05 * 44100) : int(0.3 * 44100)]
    assert (
        0
        < np.sqrt(np.mean(breath**2))
        < 0.3 * np.sqrt(np.mean(mono[int(0.7 * 44100) : int(1.3 * 44100)] ** 2))
    )


def _write_kit(folder, namespaced: bool = True):
    """A two-instrument Hydrogen kit: a kick with soft/hard layers and an open hat."""
    folder.mkdir()
    rate = 44100
    for name, value in (("kick_soft.wav", 0.2), ("kick_hard.wav", 0.8), ("hat.wav", 0.5)):
        sf.write(folder / name, np.full((rate // 2, 2), value, dtype=np.float32), rate, subtype="FLOAT")
    ns = ' xmlns="http://www.hydrogen-music.org/drumkit"' if namespaced else ""
    (folder / "drumkit.xml").write_text(
        f"""<?xml version="1.0"?><drumkit_info{ns}><name>Test Kit</name><instrumentList>
        <instrument><name>Big Kick</name><volume>1</volume>
          <layer><filename>kick_soft.wav</filename><min>0</min><max>0.5</max><gain>1</gain></layer>
          <layer><filename>kick_hard.wav</filename><min>0.5</min><max>1</max><gain>0.5</gain></layer></instrument>
        <instrument><name>Snare Roll</name><volume>1</volume>
          <layer><filename>hat.wav</filename><min>0</min><max>1</max><gain>1</gain></layer></instrument>
        <instrument><name>Hat Open</name><volume>1</volume>
          <layer><filename>hat.wav</filename><min>0</min><max>1</max><gain>1</gain></layer></instrument>
        </instrumentList></drumkit_info>"""
    )


@pytest.mark.parametrize("namespaced", [True, False])
def test_hydrogen_kit_maps_names_layers_and_chokes(tmp_path, namespaced):
    _write_kit(tmp_path / "kit", namespaced)
    kit = kits.load_kit(tmp_path / "kit")
    assert kit.name == "Test Kit"
    assert set(kit.keys) == {35, 36, 46}  # kick on both kick keys, the open hat; a snare roll is no snare
    sampler = kits.Sampler(kit, 44100)
    notes = [
        pretty_midi.Note(32, 36, 0.0, 0.1),  # soft layer: 0.2 * (32/127)^1.2
        pretty_midi.Note(120, 36, 1.0, 1.1),  # hard layer: 0.8 * 0.5 gain * (120/127)^1.2
        pretty_midi.Note(100, 46, 2.0, 2.2),  # open hat, choked by the closed hat at 2.1 s
        pretty_midi.Note(100, 42, 2.1, 2.2),  # closed hat: not in this kit
    ]
    out, missing = sampler.render(notes, 3 * 44100)
    assert [n.pitch for n in missing] == [42]
    assert out[0, 100] == pytest.approx(0.2 * (32 / 127) ** 1.2, rel=1e-5)
    assert out[1, 44100 + 100] == pytest.approx(0.8 * 0.5 * (120 / 127) ** 1.2, rel=1e-5)
    assert out[0, int(2.05 * 44100)] == pytest.approx(0.5 * (100 / 127) ** 1.2, rel=1e-5)
    assert out[0, int(2.12 * 44100)] == 0.0  # choked 10 ms after the closed hat
    assert not out[:, int(1.6 * 44100) : int(2.0 * 44100)].any()  # the kick samples last 0.5 s


def test_installed_kits_play_kick_snare_and_hat():
    found = kits.find_kits()
    if not found:
        pytest.skip("hydrogen-drumkits not installed (scripts/setup.sh installs it)")
    for kit in found:
        assert {36, 38, 42} <= set(kit.keys)
        assert kits.load_kit(kit.path).keys == kit.keys


def test_bus_limiter_keeps_the_sum_and_limits_the_peaks():
    rng = np.random.default_rng(0)
    rate, n = 44100, 44100 * 2
    stems = {
        name: (rng.standard_normal((2, n)) * 0.05).astype(np.float32)
        for name in ("vocals", "drums", "bass", "other")
    }
    stems["drums"][:, ::11025] = 0.9  # transients
    stems["piano"] = stems["other"] * np.float32(0.5)
    before = sum(stems[name] for name in ("vocals", "drums", "bass", "other"))
    piano_ratio = stems["piano"] / np.where(stems["other"] == 0, 1, stems["other"])
    mix.limit_bus(stems, before, 6.0, rate)
    after = stems["vocals"] + stems["drums"] + stems["bass"] + stems["other"]
    threshold = np.abs(before).max() * 10 ** (-6 / 20)
    assert np.abs(after).max() <= threshold * (1 + 1e-5)  # the limit holds at every sample
    gain = np.abs(after).max(axis=0) / np.maximum(np.abs(before).max(axis=0), 1e-9)
    assert gain.max() <= 1 + 1e-5
    assert np.median(gain) > 0.99  # only the peaks' neighbourhoods are turned down
    assert np.abs(np.diff(gain[np.abs(before).max(axis=0) > 0.05])).max() < 0.05  # smooth: no steps
    np.testing.assert_allclose(
        stems["piano"] / np.where(stems["other"] == 0, 1, stems["other"]), piano_ratio, rtol=1e-5
    )


def test_several_soundfonts_and_a_missing_one(monkeypatch, tmp_path):
    found = render.find_soundfonts()
    assert found and all(path.is_file() for path in found)
    monkeypatch.setenv("MSS_SOUNDFONT", str(tmp_path / "none.sf2"))
    with pytest.raises(Exception, match="no General MIDI SoundFont"):
        render.find_soundfonts()
