"""Generator v6 (v5's production; busier bass and accompaniment, a melodic lead in "other"): valid songs,
same bytes for a seed, v3-v5's songs untouched, busier parts than the same part composed without ``busy``, a
lead that solos where nobody sings and answers in the singer's rests, and a guitar lead whose bends reach the
amplifier."""

from __future__ import annotations

import hashlib

import numpy as np
import pretty_midi
import pytest
from helpers import assert_valid_song, song_digest

from mss.data.synth import bass, build_song, harmony
from mss.data.synth.compose import LEAD_CHANCE, compose_song
from mss.data.synth.form import plan_song
from mss.data.synth.lead import LEAD_KINDS, LEADS
from mss.data.synth.parts import new_part
from mss.data.synth.players import Band
from mss.data.synth.render import Renderer

RATE = 44100
STYLES = ("rock", "pop", "funk", "ballad", "electronic", "shuffle")


@pytest.fixture(scope="module")
def v6_song():
    return build_song(2, 7, (6.0, 6.0), version=6)  # a rock song whose "other" has a guitar lead


def test_v6_song_passes_the_song_check_and_is_reproducible(v6_song):
    assert_valid_song(v6_song, RATE)
    assert "other:guitar_lead" in v6_song.audio.sources  # a part that played (sources lists only those)
    assert song_digest(build_song(2, 7, (6.0, 6.0), version=6)) == song_digest(v6_song)
    assert song_digest(build_song(2, 7, (6.0, 6.0), version=5)) != song_digest(v6_song)


def _composition_digest(guitar_led: bool) -> str:
    """Everything the renderer reads of 12 composed songs: parts, mix settings, notes, bends, the room and the
    random stream's state after composing."""
    digest = hashlib.sha256()
    for seed in range(12):
        rng = np.random.default_rng(seed)
        song = compose_song(rng, STYLES[seed % 6], 20.0, seed % 2 == 0, guitar_led)
        for p in song.parts:
            digest.update(
                f"{p.role}{p.kind}{p.program}{p.level_db:.6f}{p.pan:.6f}{p.reverb_send:.6f}{p.highpass_hz:.6f}"
                f"{p.shelf_db}{p.compress_ratio}{p.echo}{sorted(p.sections)}{p.words}".encode()
            )
            for n in p.instrument.notes:
                digest.update(f"{n.pitch},{n.velocity},{n.start:.6f},{n.end:.6f};".encode())
            for b in p.instrument.pitch_bends:
                digest.update(f"{b.pitch},{b.time:.6f};".encode())
        digest.update(f"{song.reverb_s:.9f}{rng.random():.12f}".encode())
    return digest.hexdigest()[:16]


def test_v3_to_v5_compose_the_songs_they_composed_before_v6():
    # Digests taken with the code of commit f6defd8, before v6 existed.
    assert _composition_digest(guitar_led=False) == "c91cfba66d0346db"  # v3 and v4
    assert _composition_digest(guitar_led=True) == "93fd237d24f65bc1"  # v5


def _onsets(part) -> int:
    return len({round(n.start, 2) for n in part.instrument.notes})


@pytest.mark.parametrize("style", STYLES)
def test_busy_parts_play_more_notes_than_the_same_parts_without_it(style, monkeypatch):
    monkeypatch.setattr(bass, "BUSY_SHARE", 1.0)
    monkeypatch.setattr(harmony, "PULSE_CHANCE", 1.0)
    onsets = {False: dict.fromkeys(("bass", "guitar_strum", "guitar_power", "piano"), 0)}
    onsets[True] = dict(onsets[False])
    for seed in range(8):  # the same 8 song plans, each part composed with and without busy
        plan = plan_song(np.random.default_rng(seed), style, 30.0)
        for busy in (False, True):
            for name in onsets[busy]:
                part = new_part("bass" if name == "bass" else "other", name, 0 if name == "piano" else 33)
                part.sections = frozenset(s.index for s in plan.sections if s.name in ("verse", "chorus"))
                if name == "bass":
                    bass.compose_bass(part, plan, np.random.default_rng(seed + 1), busy)
                    for note in part.instrument.notes:  # roots E1..A2, octaves, approach notes, fills inside
                        assert 27 <= note.pitch <= 57 and note.end > note.start
                else:
                    harmony.compose_other(part, plan, np.random.default_rng(seed + 1), busy)
                onsets[busy][name] += _onsets(part)
    ratio = {name: onsets[True][name] / onsets[False][name] for name in onsets[True]}
    assert ratio["bass"] > 1.2
    if style == "shuffle":  # swung: no 16th strums or gallops (a swung off-beat 16th hits the next one)
        assert ratio["guitar_strum"] == ratio["guitar_power"] == 1.0
    else:
        assert ratio["guitar_strum"] > 1.5 and ratio["guitar_power"] > 1.15
    if style in ("rock", "pop", "shuffle"):  # block-chord pianos pulse; the others comp, arpeggiate or skank
        assert ratio["piano"] > 1.15
    else:
        assert ratio["piano"] == 1.0


def _v6_songs(n: int):
    return [
        compose_song(np.random.default_rng(s), STYLES[s % 6], 30.0, s % 3 == 0, True, True) for s in range(n)
    ]


def test_v6_lead_solos_where_nobody_sings_and_answers_in_the_singers_rests():
    songs = _v6_songs(60)
    leads = [[p for p in s.parts if p.kind in LEAD_KINDS] for s in songs]
    assert all(len(found) <= 1 for found in leads) and all(
        p.instrument.notes for found in leads for p in found
    )
    assert abs(np.mean([bool(found) for found in leads]) - LEAD_CHANCE) < 0.2
    v5 = [compose_song(np.random.default_rng(s), STYLES[s % 6], 30.0, False, True) for s in range(12)]
    assert not any(p.kind in LEAD_KINDS for song in v5 for p in song.parts)
    solo = lick = 0
    for song, found in zip(songs, leads, strict=True):
        if not found:
            continue
        lead, plan = found[0], song.plan
        singer = next(p for p in song.parts if p.role == "vocals" and p.kind == "lead")
        low, high = next(
            (lo, hi) for k, prog, lo, hi in LEADS[plan.style.name] if (k, prog) == (lead.kind, lead.program)
        )
        notes = sorted(lead.instrument.notes, key=lambda n: n.start)
        for note, following in zip(notes, notes[1:], strict=False):
            assert note.end <= following.start  # monophonic
        for note in notes:
            assert low <= note.pitch <= high
            section = plan.section_at(int((note.start + 0.03) // plan.bar_s))
            assert section.index in lead.sections
            if section.index in singer.sections:  # an answer: it never plays over the singer
                sung = [v for v in singer.instrument.notes if v.start < note.end and note.start < v.end]
                assert not sung, (note, sung)
                lick += 1
            else:
                solo += 1
    assert solo > 50 and lick > 50


def test_a_guitar_leads_bends_reach_its_clean_take():
    renderer = Renderer()
    band = None
    try:
        band = Band(renderer, np.random.default_rng(0))
        part = new_part("other", "guitar_lead", 29)
        part.instrument.notes.append(pretty_midi.Note(100, 64, 0.1, 0.9))
        plain, _ = band._guitar_take(part, part.instrument.notes, RATE, 0, np.random.default_rng(1))
        part.instrument.pitch_bends += [pretty_midi.PitchBend(-8192, 0.0), pretty_midi.PitchBend(0, 0.5)]
        bent, _ = band._guitar_take(part, part.instrument.notes, RATE, 0, np.random.default_rng(1))
    finally:
        if band is not None:
            band.close()
        renderer.close()
    first, second = slice(int(0.15 * RATE), int(0.45 * RATE)), slice(int(0.55 * RATE), int(0.85 * RATE))

    def peak_hz(audio: np.ndarray, window: slice) -> float:
        x = audio.mean(axis=0)[window]
        spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)), 8 * len(x)))
        low = int(150 * 8 * len(x) / RATE)  # above any rumble; the note is E4 (330 Hz), bent down D4
        return (low + int(np.argmax(spectrum[low:]))) * RATE / (8 * len(x))

    # The same partial of the same take, two semitones lower while the bend holds, back after it.
    assert abs(peak_hz(bent, first) / peak_hz(plain, first) - 2 ** (-2 / 12)) < 0.02
    assert abs(peak_hz(bent, second) / peak_hz(plain, second) - 1) < 0.02
