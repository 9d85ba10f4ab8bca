"""listening_study.analysis.pipeline on malformed and dirty ratings files: missing columns, non-numeric
values, duplicates, out-of-range and non-numeric scores, each named in one line, nothing lost."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from listening_study.analysis.pipeline import analyze, main
from listening_study.errors import RatingsFileError
from listening_study.sessions.ratings import COLUMNS


def test_malformed_csv_errors(known_csv, tmp_path):
    _, frame = known_csv
    missing = tmp_path / "missing_columns.csv"
    frame.drop(columns=["rating_score", "song"]).to_csv(missing, index=False)
    with pytest.raises(RatingsFileError, match=r"lacks the columns \['song', 'rating_score'\]"):
        analyze(missing)
    bad_number = tmp_path / "non_numeric.csv"
    broken = frame.copy()
    broken["n_plays"] = broken["n_plays"].astype(object)
    broken.loc[5, "n_plays"] = "twice"
    broken.to_csv(bad_number, index=False)
    before = bad_number.read_bytes()
    with pytest.raises(RatingsFileError, match=r"'n_plays' has non-numeric values on lines \[7\]"):
        analyze(bad_number)
    assert bad_number.read_bytes() == before  # nothing lost
    empty = tmp_path / "header_only.csv"
    empty.write_text(",".join(COLUMNS) + "\n")
    result = analyze(empty)
    assert result.n_ratings == 0 and result.summary.empty


def _write_csv(frame: pd.DataFrame, path):
    frame.to_csv(path, index=False)
    return path


def test_duplicates_and_bad_scores_are_excluded_and_reported(known_csv, tmp_path, capsys):
    _, frame = known_csv
    clean = frame[frame["participant_id"] != "BAD"].reset_index(drop=True)
    kept = clean[clean["mode"] == "mushra"]
    reference_mean = kept.loc[kept["rating_stimulus"] == "reference", "rating_score"].mean()
    dirty = clean.copy()
    dirty["rating_score"] = dirty["rating_score"].astype(object)
    reference_rows = dirty.index[(dirty["mode"] == "mushra") & (dirty["rating_stimulus"] == "reference")]
    extra = [dirty.loc[[0]]]  # an exact duplicate of line 2
    extra.append(dirty.loc[[reference_rows[0]]].assign(rating_score=150.0))  # a second reference rating
    dirty.loc[reference_rows[1], "rating_score"] = 150.0  # out of range
    dirty.loc[reference_rows[2], "rating_score"] = "ninety"  # not a number
    dirty.loc[reference_rows[3], "rating_score"] = -1.0  # out of range
    ab_rows = dirty.index[dirty["mode"] == "ab"]
    dirty.loc[ab_rows[0], "rating_score"] = 7.0  # confidence outside 0-3: the whole A/B trial goes
    dirty = pd.concat([dirty, *extra], ignore_index=True)
    path = _write_csv(dirty, tmp_path / "dirty.csv")
    result = analyze(path, out_dir=tmp_path / "out")

    assert result.rejected_counts == {
        "conflicting": 2, "out of range": 3, "duplicate": 1, "not a number": 1, "incomplete A/B trial": 1,
    }  # fmt: skip
    rejected = result.rejected.set_index("line")
    n = len(clean)
    assert rejected.loc[n + 2, "reason"] == "duplicate" and "line 2" in rejected.loc[n + 2, "detail"]
    assert set(rejected.index[rejected["reason"] == "conflicting"]) == {reference_rows[0] + 2, n + 3}
    assert set(rejected.index[rejected["reason"] == "out of range"]) == {
        reference_rows[1] + 2,
        reference_rows[3] + 2,
        ab_rows[0] + 2,
    }
    assert rejected.loc[reference_rows[2] + 2, "reason"] == "not a number"
    assert rejected.loc[ab_rows[1] + 2, "reason"] == "incomplete A/B trial"
    # what is left is counted once, and every score lies within 0-100
    assert result.n_ratings == len(kept) - 4  # the conflicting, the two out-of-range, the non-number
    reference = result.summary.set_index(["target", "condition"]).loc[("all", "reference")]
    assert reference["n"] == 12 * 6 - 4 and reference["mean"] <= 100
    survivors = kept.drop(index=reference_rows[:4])
    assert reference["mean"] == pytest.approx(
        survivors.loc[survivors["rating_stimulus"] == "reference", "rating_score"].mean()
    )
    assert abs(reference["mean"] - reference_mean) < 1
    assert result.ab.set_index("target").loc["all", "n"] == 11  # one A/B decision fewer
    # reported in the summary and a file
    assert "Rows excluded before the analysis: 8 of" in result.markdown and "not a number" in result.markdown
    assert len(pd.read_csv(result.files["rejected"])) == 8

    assert main([str(path), "--out", str(tmp_path / "cli")]) == 0
    captured = capsys.readouterr()
    assert "excluded 8 rows" in captured.err and "1 duplicate" in captured.err


def test_exact_duplicate_is_counted_once(known_csv, tmp_path):
    _, frame = known_csv
    mushra = frame[frame["mode"] == "mushra"]
    path = _write_csv(pd.concat([mushra, mushra.iloc[[10]]], ignore_index=True), tmp_path / "dup.csv")
    result = analyze(path)
    assert result.rejected_counts == {"duplicate": 1}
    assert result.n_ratings == len(mushra[mushra["participant_id"] != "BAD"])
    assert result.summary.set_index(["target", "condition"]).loc[("all", "X"), "n"] == 72


def _bad_inputs(frame: pd.DataFrame, tmp_path):
    """name -> (argv after the ratings path, ratings path, text that the error must contain)."""
    good = _write_csv(frame, tmp_path / "good.csv")
    (tmp_path / "a_file").write_text("x")
    mushra_as_ab = frame.copy()
    trial = (mushra_as_ab["mode"] == "mushra") & (mushra_as_ab["trial_id"] == "song_a-vocals")
    mushra_as_ab.loc[trial & (mushra_as_ab["participant_id"] == "P00"), "mode"] = "ab"
    mixed = frame.copy()
    mixed.loc[0, "mode"] = "ab"
    bad_json = tmp_path / "eval" / "X" / "test" / "song_a.json"
    bad_json.parent.mkdir(parents=True)
    bad_json.write_text(json.dumps({"targets": [{"name": "vocals", "frames": [{"duration": 1.0}]}]}))
    wrong_type = frame.copy()
    wrong_type["excerpt_start_s"] = "soon"
    return {
        "out is a file": (["--out", str(tmp_path / "a_file")], good, "a_file is an existing file"),
        "out inside a file": (["--out", str(tmp_path / "a_file" / "x")], good, "a_file"),
        "ab rows of a MUSHRA trial": (
            [],
            _write_csv(mushra_as_ab, tmp_path / "ab.csv"),
            "an A/B trial has exactly two",
        ),
        "modes mixed in a trial": (
            [],
            _write_csv(mixed, tmp_path / "mixed.csv"),
            "'mode' differs within trial",
        ),
        "missing columns": (
            [],
            _write_csv(frame.drop(columns=["mode"]), tmp_path / "cols.csv"),
            "lacks the columns ['mode']",
        ),
        "wrong type": (
            [],
            _write_csv(wrong_type, tmp_path / "type.csv"),
            "'excerpt_start_s' has non-numeric",
        ),
        "empty file": ([], tmp_path / "empty.csv", "cannot parse"),
        "not CSV": ([], tmp_path / "binary.csv", "cannot parse"),
        "a folder": ([], tmp_path / "eval", "is a folder"),
        "sdr is a file": (["--sdr", str(tmp_path / "a_file")], good, "is not a folder"),
        "bad museval JSON": (["--sdr", str(tmp_path / "eval")], good, "song_a.json is not a museval JSON"),
    }


def test_bad_inputs_give_one_line_errors(known_csv, tmp_path, capsys):
    _, frame = known_csv
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "binary.csv").write_bytes(b"\xff\xfe\x00garbage\n\x80\x81")
    for name, (argv, ratings, expected) in _bad_inputs(frame, tmp_path).items():
        out = [] if "--out" in argv else ["--out", str(tmp_path / "out")]
        code = main([str(ratings), *argv, *out])
        err = capsys.readouterr().err
        assert code == 2, name
        assert err.startswith("error: ") and err.count("\n") == 1, (name, err)
        assert expected in err, (name, err)
