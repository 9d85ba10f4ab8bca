"""The bad-input catalogue, walked end to end through the commands a user runs.

Each case: the exit status, a message that names the file (or field) and the reason, no traceback, and
the good songs' results present beside the bad ones. Evaluation: corrupt, 0-sample, NaN mixture, NaN
and infinite stems, mono, 8 kHz. Training: a NaN stem and a corrupt mixture among the training songs.
Separation: corrupt, 0-sample, NaN and same-named inputs. Analysis: duplicated rows, out-of-range and
non-numeric scores, an --out that is a file. The listening test's HTTP API against bad and hostile requests:
test_bad_requests.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from helpers import make_tiny_checkpoints, read_metrics

import mss.evaluation as ev
from mss import separate as separation

SECONDS = 3.0  # every planted song is the first 3 s of a generated one


def _crop_song(source: Path, dest: Path, transform=None, rate: int = 44100) -> None:
    """Copy the song folder ``source`` to ``dest``, each wav cropped to SECONDS and optionally transformed."""
    dest.mkdir(parents=True)
    for wav in sorted(source.glob("*.wav")):
        audio, native = sf.read(wav, dtype="float32", frames=int(SECONDS * 44100), always_2d=True)
        if transform is not None:
            audio, rate = transform(wav.name, audio, native)
        sf.write(dest / wav.name, audio, rate, subtype="FLOAT")


def _nan_in(name):
    def transform(file, audio, rate):
        if file == name:
            audio = audio.copy()
            audio[4410:4420] = np.nan
        return audio, rate

    return transform


def _inf_in(name):
    def transform(file, audio, rate):
        if file == name:
            audio = audio.copy()
            audio[100, 0] = np.inf
        return audio, rate

    return transform


def _cut(name, frames):
    def transform(file, audio, rate):
        return (audio[:frames] if file == name else audio), rate

    return transform


def _cut_at_8k(name):
    def transform(file, audio, rate):
        audio, rate = _at_8k(file, audio, rate)
        return (audio[: len(audio) // 3] if file == name else audio), rate

    return transform


def _mono(file, audio, rate):
    return audio.mean(axis=1, keepdims=True), rate


def _at_8k(file, audio, rate):
    import librosa

    return librosa.resample(audio.T, orig_sr=rate, target_sr=8000).T, 8000


@pytest.fixture(scope="module")
def catalogue(tiny_dataset, tmp_path_factory):
    """A test subset: one good song, then one song per bad case (all 3 s long)."""
    root = tmp_path_factory.mktemp("catalogue") / "data"
    good = sorted(p for p in (tiny_dataset / "test").iterdir() if p.is_dir())[0]
    test = root / "test"
    _crop_song(good, test / "good")
    _crop_song(good, test / "nan_mixture", _nan_in("mixture.wav"))
    _crop_song(good, test / "nan_stem", _nan_in("vocals.wav"))
    _crop_song(good, test / "inf_stem", _inf_in("bass.wav"))
    _crop_song(good, test / "mono", _mono)
    _crop_song(good, test / "rate8k", _at_8k)
    _crop_song(good, test / "corrupt")
    (test / "corrupt" / "mixture.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" * 8)
    _crop_song(good, test / "empty")
    for wav in (test / "empty").glob("*.wav"):
        sf.write(wav, np.zeros((0, 2), np.float32), 44100, subtype="FLOAT")
    _crop_song(good, test / "no_vocals")
    (test / "no_vocals" / "vocals.wav").unlink()
    # songs whose files read fine but make no valid song (mss.data.song_check)
    _crop_song(good, test / "short_mixture", _cut("mixture.wav", 614))
    _crop_song(good, test / "short_drums", _cut("drums.wav", int(SECONDS * 44100) // 2))
    _crop_song(good, test / "short_bass_8k", _cut_at_8k("bass.wav"))  # read through the resampling cache
    other = sorted(p for p in (tiny_dataset / "test").iterdir() if p.is_dir())[1]
    _crop_song(good, test / "wrong_mixture")
    _crop_song(other, test / "other_song")
    shutil.move(test / "other_song" / "mixture.wav", test / "wrong_mixture" / "mixture.wav")
    shutil.rmtree(test / "other_song")
    (root / "train").mkdir()
    return root


EXPECTED_ERRORS = {  # song -> what its error must say (the file and the reason)
    "nan_mixture": "nan_mixture/mixture.wav: NaN or infinite samples",
    "nan_stem": "nan_stem/vocals.wav: NaN or infinite samples",
    "inf_stem": "inf_stem/bass.wav: NaN or infinite samples",
    "corrupt": "corrupt/mixture.wav: not a readable wav file",
    "empty": "empty/mixture.wav: empty (0 samples)",
    "no_vocals": "missing stem file(s) vocals.wav",
    "short_mixture": "short_mixture/mixture.wav: not a valid song (test/short_mixture): the mixture (mixture.wav) "
    "has 614 samples (0.014 s), the other streams 132,300 (3.000 s): lengths differ by 2.986 s",
    "short_drums": "the drums stem (drums.wav) has 66,150 samples (1.500 s), the other streams 132,300",
    "short_bass_8k": "short_bass_8k/mixture.wav: not a valid song (test/short_bass_8k): the bass stem (bass.wav)",
    "wrong_mixture": "wrong_mixture/mixture.wav: not a valid song (test/wrong_mixture): the mixture is not the "
    "sum of its stems: ||mix - sum(stems)|| / ||mix|| = ",
}


def test_evaluation_names_every_bad_song_and_scores_the_others(catalogue, tmp_path, capsys):
    checkpoints = make_tiny_checkpoints(tmp_path / "ck", ("unet",))
    out = tmp_path / "eval"
    argv = ["--dataset", str(catalogue), "--targets", "vocals", "bass", "--out", str(out),
            "--checkpoint", str(checkpoints["unet"]), "--oracles", "MIX", "IRM1"]  # fmt: skip
    code = ev.main(argv)
    err = capsys.readouterr().err
    assert code == 1  # some songs failed, the run finished
    assert "Traceback" not in err
    errors = (out / "errors.txt").read_text()
    for song, expected in EXPECTED_ERRORS.items():
        for method in ("unet", "MIX", "IRM1"):
            lines = [line for line in errors.splitlines() if line.startswith(f"{method} / {song}:")]
            assert lines and expected in lines[0], (method, song, errors)
            assert not (out / method / "test" / f"{song}.json").exists()
    # the good song and the mono and 8 kHz ones are scored by every method, models and oracles alike
    tracks = pd.read_csv(out / "tracks.csv")
    for method in ("unet", "MIX", "IRM1"):
        scored = set(tracks[tracks.method == method].track)
        assert scored == {"good", "mono", "rate8k"}, (method, scored)
    irm = tracks[(tracks.method == "IRM1") & (tracks.target == "vocals")].set_index("track").SDR
    assert irm["good"] > 8 and irm["mono"] > 8 and irm["rate8k"] > 8  # really separated, not NaN frames
    notes = (out / "notes.txt").read_text()
    assert "rate8k: the files are at 8000 Hz; resampled once to 44100 Hz" in notes
    assert "mono: mono" in notes
    results = pd.read_csv(out / "results.csv")
    assert set(results.tracks) == {3}  # medians over the three scored songs only
    # every opened song's check is recorded beside conditioning.json, the refused ones with their figures
    checks = json.loads((out / "song_checks.json").read_text())["test"]
    assert (
        checks["good"]["ok"] and checks["good"]["residual"] < 1e-4 and checks["good"]["length_spread_s"] == 0
    )
    assert not checks["wrong_mixture"]["ok"] and checks["wrong_mixture"]["residual"] > 0.9
    assert checks["short_mixture"]["lengths"]["mixture"] == 614 and not checks["short_mixture"]["ok"]
    assert checks["short_drums"]["lengths"]["drums"] == 66150 and not checks["short_drums"]["ok"]
    assert len(errors.splitlines()) == 3 * len(EXPECTED_ERRORS)  # one line per (method, song) failure
    # the pace and the MUSDB18 estimate come from the songs scored (3 s each), not from the refused ones
    timings = pd.read_csv(out / "timings.csv")
    shared = timings[timings.method == "(shared)"]
    assert set(shared.track) == {"good", "mono", "rate8k"} and np.allclose(shared.audio_s, SECONDS, atol=0.01)
    # a rerun scores nothing new and refuses the same songs again (their cache entries exist by now),
    # and a bad song's scores left by an older run are removed, not shown
    stale = out / "unet" / "test" / "wrong_mixture.json"
    stale.write_text((out / "unet" / "test" / "good.json").read_text())
    assert ev.main(argv) == 1
    assert (out / "errors.txt").read_text() == errors and not stale.exists()
    assert pd.read_csv(out / "results.csv").equals(results)


def test_training_skips_bad_songs_with_their_names(tiny_dataset, tmp_path, capsys):
    from training.run import main

    root = tmp_path / "data"
    shutil.copytree(tiny_dataset, root)
    first = sorted(p for p in (root / "train").iterdir() if p.is_dir())[0]
    _crop_song(first, root / "train" / "nan_train", _nan_in("drums.wav"))
    _crop_song(first, root / "train" / "cut_train", _cut("bass.wav", int(SECONDS * 44100) // 10))
    _crop_song(first, root / "train" / "corrupt_train")
    (root / "train" / "corrupt_train" / "mixture.wav").write_bytes(b"junk" * 64)
    argv = [
        "--model", "unet", "--dataset", str(root), "--out", str(tmp_path / "run"), "--epochs", "1",
        "--sample-rate", "16000", "--set", "model_preset=tiny", "--set", "segment_s=1.0",
        "--set", "samples_per_epoch=8", "--set", "batch_size=4", "--set", "valid_max_s=3",
        "--set", "threads=1", "--set", "progress=off", "--set", f"cache_dir={tmp_path / 'cache'}",
    ]  # fmt: skip
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "skipping corrupt_train" in err and "corrupt_train/mixture.wav: not a readable wav file" in err
    assert "nan_train/drums.wav" in err and "NaN or infinite samples" in err
    assert "skipping train/cut_train" in err and "cut_train/mixture.wav: not a valid song" in err
    assert "the bass stem (bass.wav) has" in err and "more than codec padding" in err
    [record] = read_metrics(tmp_path / "run")
    assert np.isfinite(record["train_loss"]) and (tmp_path / "run" / "best.pt").is_file()


def test_separation_names_bad_inputs_and_never_overwrites(tmp_path, capsys):
    checkpoint = make_tiny_checkpoints(tmp_path / "ck", ("demucs",))["demucs"]
    rng = np.random.default_rng(0)
    inputs = tmp_path / "in"
    for folder in ("dirA", "dirB"):
        (inputs / folder).mkdir(parents=True)
        sf.write(inputs / folder / "song.wav", rng.uniform(-0.3, 0.3, (16000, 2)).astype(np.float32), 16000)
    sf.write(inputs / "mono8k.wav", rng.uniform(-0.3, 0.3, 8000).astype(np.float32), 8000)
    nan = rng.uniform(-0.3, 0.3, (16000, 2)).astype(np.float32)
    nan[500] = np.nan
    sf.write(inputs / "nan.wav", nan, 16000, subtype="FLOAT")
    (inputs / "corrupt.wav").write_bytes(b"RIFF----WAVEjunk" * 4)
    sf.write(inputs / "empty.wav", np.zeros((0, 2), np.float32), 16000)
    names = ["dirA/song.wav", "dirB/song.wav", "mono8k.wav", "nan.wav", "corrupt.wav", "empty.wav"]
    out = tmp_path / "out"
    code = separation.main(
        [*(str(inputs / n) for n in names), "--checkpoint", str(checkpoint), "--out", str(out)]
    )
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert "3 of 6 song(s) failed" in err
    for name in ("nan.wav", "corrupt.wav", "empty.wav"):
        assert str(inputs / name) in err, (name, err)
    assert "NaN" in err and "empty" in err
    assert sorted(p.name for p in out.iterdir()) == [
        "dirA-song",
        "dirB-song",
        "mono8k",
    ]  # no half-written folders
    mono = sf.info(out / "mono8k" / "vocals.wav")
    assert (mono.samplerate, mono.channels, mono.frames) == (
        8000,
        1,
        8000,
    )  # back at the input's rate and layout


def test_analysis_refuses_or_reports_bad_rows(tmp_path, capsys):
    from listening_study.analysis.pipeline import main
    from listening_study.sessions.ratings import COLUMNS

    rows = []
    for participant in ("P1", "P2"):
        for trial in ("t1", "t2"):
            for label, condition, score in (("A", "reference", 100), ("B", "X", 60), ("C", "Y", 30)):
                rows.append({
                    "session_test_id": "s", "participant_id": participant, "session_uuid": participant * 16,
                    "trial_id": trial, "song": "song", "target": "vocals", "excerpt_start_s": 0.0,
                    "excerpt_end_s": 5.0, "rating_stimulus": condition, "screen_label": label,
                    "rating_score": score, "rating_time": 1000, "n_plays": 1, "rating_comment": "",
                    "timestamp": "2026-01-01T00:00:00+00:00", "app_version": "0", "mode": "mushra",
                })  # fmt: skip
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    bad = pd.concat([frame, frame.iloc[[1]]], ignore_index=True)  # one duplicated row
    bad.loc[2, "rating_score"] = 150  # out of range
    path = tmp_path / "ratings.csv"
    bad.to_csv(path, index=False)
    assert main([str(path), "--out", str(tmp_path / "report")]) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    rejected = pd.read_csv(tmp_path / "report" / "rejected.csv")
    assert len(rejected) == 2 and rejected.rating_score.max() == 150
    (tmp_path / "file").write_text("x")
    assert main([str(path), "--out", str(tmp_path / "file")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "file" in err and "Traceback" not in err
