"""The generator versions' table (``mss.data.synth.versions``): every row names chains and a singer the
generator has, versions that share a composition compose the same songs, unknown versions are refused before
anything renders, and a new row is a new version without touching the code that renders."""

from __future__ import annotations

from types import MappingProxyType

import pytest
from helpers import assert_valid_song

from mss.data.synth import __main__ as synth_cli
from mss.data.synth import build_song, generate_dataset, production, versions, voice, writer
from mss.data.synth.versions import GENERATORS, GeneratorVersion, generator
from mss.errors import DatasetError


def test_every_row_names_chains_and_a_singer_the_generator_has():
    assert versions.VERSIONS == (3, 4, 5, 6, 7) and versions.DEFAULT_VERSION in GENERATORS
    for number, row in GENERATORS.items():
        assert row.number == number
        assert row.production is None or row.production in production.VOICINGS
        assert row.singer in voice.SPEECH_ENGINES
    assert GENERATORS[3].production is None  # v3: the hand-written effects
    assert [GENERATORS[v].production for v in (4, 5, 6, 7)] == [4, 5, 5, 5]
    assert [GENERATORS[v].singer for v in (3, 4, 5, 6, 7)] == ["espeak"] * 4 + ["hts"]


def test_the_versions_that_share_a_composition():
    """The rows' fields (test_synth_v4 and test_synth_v7 check that such versions do compose the same songs)."""
    assert GENERATORS[3].composition == GENERATORS[4].composition == (False, False)
    assert GENERATORS[5].composition == GENERATORS[7].composition == (True, False)
    assert GENERATORS[6].composition == (True, True)
    assert [i for i in range(10) if GENERATORS[5].has_piano(i)] == [0, 3, 6, 8]  # 4 in 10 when guitar-led
    assert [i for i in range(10) if GENERATORS[3].has_piano(i)] == [0, 1, 3, 4, 6, 7, 9]


def test_an_unknown_version_is_refused_before_anything_renders(tmp_path, monkeypatch, capsys):
    for bad in (2, 8, "7", None):
        with pytest.raises(DatasetError, match=r"unknown generator version .*versions \(3, 4, 5, 6, 7\)"):
            generator(bad)
    monkeypatch.setattr(writer, "_render_songs", lambda *args, **kwargs: pytest.fail("songs were rendered"))
    with pytest.raises(DatasetError, match="unknown generator version 9"):
        generate_dataset(tmp_path / "set", preset="tiny", seed=0, version=9, progress=False)
    assert not (tmp_path / "set").exists()
    with pytest.raises(SystemExit) as exit_info:
        synth_cli.main([str(tmp_path / "cli"), "--version", "8"])
    assert exit_info.value.code == 2 and "invalid choice: 8" in capsys.readouterr().err


def test_only_the_production_chains_sing_with_the_hts_voice():
    with pytest.raises(ValueError, match="only the production chains sing with 'hts'"):
        GeneratorVersion(9, "v3 sung by HTS", None, guitar_led=False, busy=False, singer="hts")


def test_the_help_lists_every_version(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")  # argparse wraps lines at hyphens too
    with pytest.raises(SystemExit):
        synth_cli.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for row in GENERATORS.values():
        assert f"{row.number}: {' '.join(row.summary.split())}" in text


def test_a_new_row_is_a_new_version(monkeypatch):
    """v5's composition through v4's chains, as a row the code has never seen: a valid song, v5's song."""
    row = GeneratorVersion(8, "test", 4, guitar_led=True, busy=False, singer="espeak")
    monkeypatch.setattr(versions, "GENERATORS", MappingProxyType({**GENERATORS, 8: row}))
    new = build_song(3, 0, (6.0, 6.0), version=8)
    assert_valid_song(new)
    v5 = build_song(3, 0, (6.0, 6.0), version=5)
    assert new.info["instruments"] == v5.info["instruments"] and new.info["key"] == v5.info["key"]
    assert new.title == v5.title
    assert (new.audio.stems["mixture"] != v5.audio.stems["mixture"]).any()  # v4's voicing, not v5's
