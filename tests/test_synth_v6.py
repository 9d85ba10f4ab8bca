"""Generator v6 (v5's production; busier bass and accompaniment, a melodic lead in "other"): valid songs,
same bytes for a seed, busier parts than v5's compositions, a lead that solos where nobody sings and answers
in the singer's rests, and a guitar lead whose bends reach the amplifier."""

from __future__ import annotations

import hashlib

import numpy as np
import pretty_midi
import pytest
from helpers import song_digest

from mss import SOURCES
from mss.data.synth import build_song
from mss.data.synth.compose import LEAD_CHANCE, compose_song
from mss.data.synth.lead import LEAD_KINDS, LEADS
from mss.data.synth.mix import MAX_PEAK, check_song
from mss.data.synth.parts import new_part
from mss.data.synth.players import CLEAN_PROGRAM, Band
from mss.data.synth.render import Renderer

RATE = 44100
STYLES = ("rock", "pop", "funk", "ballad", "electronic", "shuffle")


@pytest.fixture(scope="module")
def v6_song():
    return build_song(3, 1, (6.0, 6.0), version=6)  # a shuffle whose "other" has a guitar lead


def test_v6_song_passes_the_song_check_and_is_reproducible(v6_song):
    stems = v6_song.audio.stems
    assert check_song(stems, RATE) == v6_song.audio.active_stems
    assert set(SOURCES) <= set(v6_song.audio.active_stems)
    np.testing.assert_array_equal(stems["mixture"], stems["vocals"] + stems["drums"] + stems["bass"] + stems["other"])
    assert max(float(np.abs(a).max()) for a in stems.values()) <= MAX_PEAK
    assert len(v6_song.info["instruments"]["other"]) == 3  # power chords, strums and the lead
    assert song_digest(build_song(3, 1, (6.0, 6.0), version=6)) == song_digest(v6_song)
    assert song_digest(build_song(3, 1, (6.0, 6.0), version=5)) != song_digest(v6_song)


def _songs(busy: bool, n: int = 24, seconds: float = 30.0):
    return [
        compose_song(np.random.default_rng(seed), STYLES[seed % 6], seconds, seed % 3 == 0, True, busy)
        for seed in range(n)
    ]


def _composition_digest(guitar_led: bool) -> str:
    digest = hashlib.sha256()
    for seed in range(12):
        song = compose_song(np.random.default_rng(seed), STYLES[seed % 6], 20.0, seed % 2 == 0, guitar_led)
        for p in song.parts:
            digest.update(f"{p.role}{p.kind}{p.program}{p.level_db:.6f}{p.pan:.6f}{sorted(p.sections)}".encode())
            for n in p.instrument.notes:
                digest.update(f"{n.pitch},{n.velocity},{n.start:.6f},{n.end:.6f};".encode())
    return digest.hexdigest()[:16]


def test_v3_to_v5_compose_the_songs_they_composed_before_v6():
    # Digests of the parts, levels, pans, sections and notes of 12 songs, taken before v6's code existed.
    assert _composition_digest(guitar_led=False) == "b0d9dbbef801c258"  # v3 and v4
    assert _composition_digest(guitar_led=True) == "7cf93f72890f0439"  # v5


def _onsets_per_s(songs, role: str, seconds: float = 30.0) -> float:
    """Distinct note onsets (10-ms grid) per second of the parts of ``role`` that are not leads."""
    counts = []
    for song in songs:
        starts = {
            round(note.start, 2)
            for part in song.parts
            if part.role == role and part.kind not in LEAD_KINDS
            for note in part.instrument.notes
        }
        counts.append(len(starts) / seconds)
    return float(np.mean(counts))


def test_v6_bass_and_accompaniment_are_busier_than_v5s():
    v5, v6 = _songs(False), _songs(True)
    assert _onsets_per_s(v6, "bass") > 1.15 * _onsets_per_s(v5, "bass")
    assert _onsets_per_s(v6, "other") > 1.05 * _onsets_per_s(v5, "other")
    for song in v6:  # E1..A3: roots E1..A2 and their octaves; fills walk the key's scale
        bass = next(p for p in song.parts if p.role == "bass")
        assert all(21 <= n.pitch <= 57 and n.end > n.start for n in bass.instrument.notes)


def test_v6_lead_solos_where_nobody_sings_and_answers_in_the_singers_rests():
    songs = _songs(True, n=60)
    leads = [[p for p in s.parts if p.kind in LEAD_KINDS] for s in songs]
    assert all(len(found) <= 1 for found in leads)
    share = np.mean([bool(found) for found in leads])
    assert abs(share - LEAD_CHANCE) < 0.2
    assert all(not any(p.kind in LEAD_KINDS for p in s.parts) for s in _songs(False, n=12))  # v5: none
    solo = lick = 0
    for song, found in zip(songs, leads, strict=True):
        if not found:
            continue
        lead, plan = found[0], song.plan
        vocal_sections = next(p for p in song.parts if p.kind == "lead" and p.role == "vocals").sections
        phrase_bars = 2 if plan.bar_s < 2.8 else 1
        assert (lead.kind, lead.program) in {(kind, program) for kind, program, *_ in LEADS[plan.style.name]}
        notes = sorted(lead.instrument.notes, key=lambda n: n.start)
        for note, following in zip(notes, notes[1:], strict=False):
            assert note.end <= following.start  # monophonic
        for note in notes:
            bar = int((note.start + 0.03) // plan.bar_s)
            section = plan.section_at(bar)
            assert section.index in lead.sections
            if section.index in vocal_sections:  # an answer: the last ~quarter of the singer's phrase
                phrase_start = (section.start_bar + (bar - section.start_bar) // phrase_bars * phrase_bars) * plan.bar_s
                assert (note.start - phrase_start) / (phrase_bars * plan.bar_s) > 0.65
                lick += 1
            else:
                solo += 1
    assert solo > 50 and lick > 50


def test_a_guitar_leads_bends_reach_its_clean_take():
    renderer = Renderer()
    try:
        band = Band(renderer, np.random.default_rng(0))
        part = new_part("other", "guitar_lead", 29)
        part.instrument.notes.append(pretty_midi.Note(100, 64, 0.1, 0.9))
        plain, _ = band._guitar_take(part, part.instrument.notes, RATE, 0, np.random.default_rng(1))
        part.instrument.pitch_bends += [pretty_midi.PitchBend(-8192, 0.0), pretty_midi.PitchBend(0, 0.5)]
        bent, _ = band._guitar_take(part, part.instrument.notes, RATE, 0, np.random.default_rng(1))
        band.close()
    finally:
        renderer.close()
    assert CLEAN_PROGRAM == 27
    first, second = slice(int(0.15 * RATE), int(0.45 * RATE)), slice(int(0.55 * RATE), int(0.85 * RATE))

    def peak_hz(audio: np.ndarray, window: slice) -> float:
        x = audio.mean(axis=0)[window]
        spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)), 8 * len(x)))
        low = int(150 * 8 * len(x) / RATE)  # above any rumble; the note is E4 (330 Hz), bent down D4
        return (low + int(np.argmax(spectrum[low:]))) * RATE / (8 * len(x))

    # The same partial of the same take, two semitones lower while the bend holds, back after it.
    assert abs(peak_hz(bent, first) / peak_hz(plain, first) - 2 ** (-2 / 12)) < 0.02
    assert abs(peak_hz(bent, second) / peak_hz(plain, second) - 1) < 0.02
