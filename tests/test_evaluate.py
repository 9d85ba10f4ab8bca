"""museval scoring, oracle baselines, result tables, rerun and crash behaviour of mss.evaluate.

BSS Eval v4 costs seconds per (method, song) even for short songs (it solves a 512-tap projection
system per source), so these tests score one tiny song against one target (vocals + the residual
source: two sources) with one random-weight tiny model and two baselines, once per module.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import museval
import numpy as np
import pandas as pd
import pytest
import simplejson
from helpers import make_tiny_checkpoints
from jsonschema import validate

import mss.evaluation as ev
from mss.errors import CheckpointError, DatasetError
from mss.evaluation import cli, driver
from mss.evaluation.methods import provenance
from mss.evaluation.oracles import ideal_ratio_mask, mixture_estimates, oracle_estimates
from mss.evaluation.scoring import RESIDUAL
from mss.evaluation.tables import aggregate


def make_checkpoints(folder: Path, archs=("unet", "demucs")) -> list[Path]:
    """Random-weight tiny checkpoints (the untrained models of the ``tiny`` preset)."""
    return list(make_tiny_checkpoints(folder, archs).values())


@pytest.fixture(scope="module")
def songs(tiny_dataset) -> list[str]:
    from mss.data import open_db

    return sorted(t.name for t in open_db(tiny_dataset, subset="test").tracks)


@pytest.fixture(scope="module")
def evaluated(tiny_dataset, songs, tmp_path_factory):
    """One evaluation: tiny UNet + IRM1 + MIX on the first test song, target vocals."""
    folder = tmp_path_factory.mktemp("eval")
    (checkpoint,) = make_checkpoints(folder, ("unet",))
    out = folder / "out"
    table = ev.evaluate(
        [checkpoint], tiny_dataset, "test", ["vocals"], 1, out_dir=out, oracles=("IRM1", "MIX"),
        tracks=songs[:1], progress=False,
    ).table  # fmt: skip
    return {"out": out, "table": table, "song": songs[0], "root": tiny_dataset, "checkpoint": checkpoint}


# ------------------------------------------------------------------------------------------ oracles (fast)


def test_ideal_ratio_masks_partition_the_mixture():
    rng = np.random.default_rng(0)
    sources = rng.standard_normal((3, 2, 20000)).astype(np.float32)  # (S, C, T)
    mixture = sources.sum(0)
    for alpha in (1.0, 2.0):
        estimates = ideal_ratio_mask(mixture, sources, alpha)
        assert estimates.shape == sources.shape
        # masks sum to one (up to eps), so the estimates add back up to the mixture
        np.testing.assert_allclose(estimates.sum(0), mixture, atol=1e-4)
    # a single source gets a mask of one: the mixture itself
    np.testing.assert_allclose(ideal_ratio_mask(mixture, mixture[None], 2.0)[0], mixture, atol=1e-4)
    np.testing.assert_array_equal(mixture_estimates(mixture, sources)[2], mixture)
    with pytest.raises(ValueError, match="unknown oracle"):
        oracle_estimates("IBM", mixture, sources)


def write_hq_song(root: Path, name: str, stems: dict[str, np.ndarray], rate: int = 44100) -> Path:
    """One song in the MUSDB18-HQ layout (with the generator's setup.yaml, which declares piano);
    stems: {name: (C, T)}; mixture = the sum of the four MUSDB stems."""
    import soundfile as sf
    import yaml

    from mss.data.synth.writer import setup_config

    folder = root / "test" / name
    folder.mkdir(parents=True, exist_ok=True)
    for stem, audio in stems.items():
        sf.write(folder / f"{stem}.wav", audio.T, rate, subtype="FLOAT")
    mixture = sum(stems[s] for s in ("vocals", "drums", "bass", "other"))
    sf.write(folder / "mixture.wav", mixture.T, rate, subtype="FLOAT")
    (root / "setup.yaml").write_text(yaml.safe_dump(setup_config([])))
    return root


def test_scored_sources_drop_silent_targets_and_add_residual(tmp_path):
    from mss.evaluation.scoring import SongAudio, reference_reader, scored_sources

    rng = np.random.default_rng(1)
    stems = {n: (0.1 * rng.standard_normal((2, 5000))).astype(np.float32) for n in ev.SOURCES}
    stems["drums"][:] = 0.0  # drums silent in this song
    stems["piano"] = 0.5 * stems["other"]  # piano is a part of other
    root = write_hq_song(tmp_path, "song", stems)
    song = SongAudio.open(root, "test", "song", ev.SOURCES)
    found = scored_sources(song)
    assert found.names == ("vocals", "bass", "other") and found.silent == ("drums",) and not found.residual
    # piano alone: scored against the rest of the mixture
    song = SongAudio.open(root, "test", "song", ("piano",))
    found = scored_sources(song)
    assert found.names == ("piano", RESIDUAL)
    sources = reference_reader(song, found)(0, song.length)
    np.testing.assert_allclose(sources.sum(0), song.mixture(0, song.length), atol=1e-6)
    stems["piano"][:] = 0.0
    write_hq_song(tmp_path, "song", stems)
    found = scored_sources(SongAudio.open(root, "test", "song", ("piano",)))
    assert found.names == () and found.silent == ("piano",)


# ------------------------------------------------------------------------------------------ evaluation


def test_irm1_far_above_mixture_and_sdri(evaluated):
    table = evaluated["table"].set_index(["method", "target"])
    assert set(table.index.get_level_values(0)) == {"unet", "IRM1", "MIX"}
    gain = table.loc[("IRM1", "average"), "SDR"] - table.loc[("MIX", "average"), "SDR"]
    assert gain > 6.0
    assert table.loc[("IRM1", "average"), "SDRi"] == pytest.approx(gain)
    assert table.loc[("MIX", "vocals"), "SDRi"] == pytest.approx(0.0)
    for name in ("results.csv", "results.md", "tracks.csv", "methods.json"):
        assert (evaluated["out"] / name).is_file()
    assert "| IRM1 | vocals |" in (evaluated["out"] / "results.md").read_text()
    assert pd.read_csv(evaluated["out"] / "results.csv").shape[0] == 6  # 3 methods x (vocals, average)


@pytest.mark.parametrize("method", ["MIX", "IRM1"])
def test_streamed_scores_equal_museval_on_the_whole_song(evaluated, method):
    """The evaluation streams the song (span-by-span IRM, mss.bsseval); museval.evaluate on the whole
    arrays must give the same frames: within 0.01 dB, except ratios above 100 dB (e.g. the SAR of the
    mixture, which has no artifacts: a signal over rounding noise, which no two implementations share)."""
    mixture, references = ev.load_song(evaluated["root"], "test", evaluated["song"], ["vocals"])
    sources = np.stack([references[0], mixture - references[0]])  # vocals and the residual, (S, C, T)
    estimates = oracle_estimates(method, mixture, sources)
    refs = sources.transpose(0, 2, 1).astype(np.float64)  # (S, T, C): museval's layout
    sdr, isr, sir, sar = museval.evaluate(
        refs, estimates.transpose(0, 2, 1).astype(np.float64), win=44100, hop=44100
    )
    data = simplejson.loads(
        (evaluated["out"] / method / "test" / f"{evaluated['song']}.json").read_text(), allow_nan=True
    )
    (target,) = data["targets"]
    assert target["name"] == "vocals" and len(target["frames"]) == sdr.shape[1]
    for metric, direct in (("SDR", sdr), ("SIR", sir), ("SAR", sar), ("ISR", isr)):
        stored = np.array([float(f["metrics"][metric]) for f in target["frames"]])
        expected = direct[0]
        assert np.isfinite(stored).all() and np.isfinite(expected).all()
        huge = expected > 100.0
        assert np.all(stored[huge] > 100.0), metric
        np.testing.assert_allclose(stored[~huge], expected[~huge], atol=0.01, err_msg=metric)
    if method == "MIX":
        np.testing.assert_allclose(
            [float(f["metrics"]["SDR"]) for f in target["frames"]], sdr[0], atol=1e-4
        )  # SDR does not depend on the projection filters: exact


def test_json_follows_museval_schema_and_loads_in_museval(evaluated):
    schema = json.loads((Path(museval.__path__[0]) / "musdb.schema.json").read_text())
    paths = sorted(evaluated["out"].glob("*/test/*.json"))
    assert {p.parent.parent.name for p in paths} == {"unet", "IRM1", "MIX"}
    for path in paths:
        validate(simplejson.loads(path.read_text(), allow_nan=True), schema)
    store = museval.MethodStore()
    for method in ("unet", "IRM1", "MIX"):
        store.add_eval_dir(evaluated["out"] / method)
    medians = store.agg_frames_tracks_scores()
    table = evaluated["table"].set_index(["method", "target"])
    for method in ("unet", "IRM1", "MIX"):
        flagged = table.loc[(method, "vocals"), "validity"] != ""
        for metric in ("SDR", "SIR", "SAR", "ISR"):
            value = table.loc[(method, "vocals"), metric]
            if flagged and metric != "SDR":  # not presented as a number (test_invalid_metrics_are_flagged)
                assert np.isnan(value)
            else:
                assert value == pytest.approx(medians[(method, "vocals", metric)])
    irm = table.loc[("IRM1", "vocals")]  # the generator's noise floor makes the oracle rows valid, SiSEC-like
    assert irm["validity"] == "" and irm["SIR"] > irm["SDR"] and irm["SAR"] > irm["SDR"]


def test_aggregated_medians_match_hand_computation(evaluated):
    table = aggregate(evaluated["out"], flag=False).set_index(["method", "target"])
    for method in ("unet", "IRM1", "MIX"):
        data = json.loads((evaluated["out"] / method / "test" / f"{evaluated['song']}.json").read_text())
        frames = data["targets"][0]["frames"]
        for metric in ("SDR", "SIR", "SAR", "ISR"):
            by_hand = np.nanmedian([float(f["metrics"][metric]) for f in frames])
            assert table.loc[(method, "vocals"), metric] == pytest.approx(by_hand, abs=1e-6)
            assert table.loc[(method, "average"), metric] == pytest.approx(by_hand, abs=1e-6)
    per_track = pd.read_csv(evaluated["out"] / "tracks.csv")
    assert list(per_track.columns) == ["method", "track", "target", "SDR", "SIR", "SAR", "ISR", "SDRi"]
    assert len(per_track) == 3


def test_rerun_scores_and_separates_nothing(evaluated, monkeypatch):
    paths = sorted(evaluated["out"].glob("*/test/*.json"))
    mtimes = [p.stat().st_mtime_ns for p in paths]
    calls = []
    monkeypatch.setattr(driver, "score_song", lambda *a, **k: calls.append("score"))
    monkeypatch.setattr(driver, "separate_to_cache", lambda *a, **k: calls.append("separate"))
    result = ev.evaluate(
        [evaluated["checkpoint"]], evaluated["root"], "test", ["vocals"], 1, out_dir=evaluated["out"],
        oracles=("IRM1", "MIX"), tracks=[evaluated["song"]], progress=False,
    )  # fmt: skip
    assert calls == [] and result.scored == 0 and result.errors == ()
    assert [p.stat().st_mtime_ns for p in paths] == mtimes
    pd.testing.assert_frame_equal(result.table, evaluated["table"])
    # the separated audio is cached under the checkpoint's content hash
    (cached,) = (evaluated["out"] / ".cache").glob("unet-*/test/*/vocals.wav")
    assert cached.parent.name == evaluated["song"]


def test_retrained_checkpoint_is_rescored_not_shown_stale(tiny_dataset, songs, tmp_path):
    """Retraining into the same run folder must give the new model's scores in the same --out."""
    import shutil

    from training.run import main as train_main

    run_dir = tmp_path / "runs" / "unet"
    checkpoint = run_dir / "best.pt"

    def train(seed: int) -> None:  # python -m training.run, tiny: 2 steps at 16 kHz, another seed each time
        shutil.rmtree(run_dir, ignore_errors=True)
        argv = [
            "--model", "unet", "--dataset", str(tiny_dataset), "--out", str(run_dir), "--epochs", "1",
            "--targets", "vocals", "--sample-rate", "16000", "--set", "model_preset=tiny",
            "--set", "segment_s=1.0", "--set", "samples_per_epoch=8", "--set", "batch_size=4",
            "--set", "valid_max_s=2", "--set", "threads=1", "--set", "progress=off", "--set", f"seed={seed}",
        ]  # fmt: skip
        assert train_main(argv) == 0 and checkpoint.is_file()

    def run(out: Path) -> ev.EvaluationResult:
        return ev.evaluate(
            [checkpoint], tiny_dataset, "test", ["vocals"], 1, out_dir=out, oracles=(), tracks=songs[:1],
            progress=False,
        )  # fmt: skip

    train(0)
    first = run(tmp_path / "eval")
    train(1)
    second = run(tmp_path / "eval")  # same folder, same method name, new content
    fresh = run(tmp_path / "fresh")  # what the new model scores in an empty folder
    assert second.scored == 1
    first, second, fresh = first.table, second.table, fresh.table
    assert float(second.SDR.iloc[0]) != float(first.SDR.iloc[0])
    assert float(second.SDR.iloc[0]) == pytest.approx(float(fresh.SDR.iloc[0]), abs=1e-6)
    name = str(second.method.iloc[0])  # "best": the file stem, unique here
    provenance = json.loads((tmp_path / "eval" / name / "provenance-test.json").read_text())
    assert provenance["checkpoint_hash"] == ev.file_hash(checkpoint)


def test_checkpoints_sharing_a_file_name_get_distinct_method_names(tmp_path):
    for arch in ("unet", "demucs"):
        (tmp_path / "runs" / arch).mkdir(parents=True)
    paths = make_tiny_checkpoints(tmp_path, ("unet", "demucs"))
    best = []
    for arch, path in paths.items():
        target = tmp_path / "runs" / arch / "best.pt"
        Path(path).rename(target)
        best.append(target)
    methods, _ = ev.describe_checkpoints(best, wiener=True)
    assert [m.name for m in methods] == ["unet-best", "unet-best-wiener", "demucs-best", "demucs-best-wiener"]


def test_each_model_row_separates_with_its_checkpoints_shifts_and_shifts_n_adds_a_row(tmp_path):
    """A model's own row separates as its checkpoint says (its config's ``shifts``); ``--shifts N [M ...]`` adds
    a ``-shiftsN`` row for each number that differs from a model's own (0: one plain pass), none where it is the same;
    the number is part of each row's provenance (its scores) and of its audio cache's key (its separations)."""
    from mss.checkpoint import main as checkpoint_main

    paths = make_tiny_checkpoints(tmp_path, ("unet", "demucs"))
    shifted = tmp_path / "demucs-s2.pt"
    assert checkpoint_main([str(paths["demucs"]), str(shifted), "--shifts", "2"]) == 0
    methods, _ = ev.describe_checkpoints([paths["unet"], shifted], wiener=False)
    assert [(m.name, m.shifts) for m in methods] == [("unet", 0), ("demucs-s2", 2)]
    methods, _ = ev.describe_checkpoints([paths["unet"], shifted], wiener=False, shifts=[2])
    assert [(m.name, m.shifts) for m in methods] == [("unet", 0), ("unet-shifts2", 2), ("demucs-s2", 2)]
    methods, _ = ev.describe_checkpoints([shifted], wiener=True, shifts=[0, 2, 0])
    assert [(m.name, m.shifts, m.wiener) for m in methods] == [
        ("demucs-s2", 2, False), ("demucs-s2-wiener", 2, True), ("demucs-s2-shifts0", 0, False),
    ]  # fmt: skip
    records = [provenance(m, tmp_path, "test", ["vocals"])["shifts"] for m in methods]
    assert records == [2, 2, 0]
    plain, _ = ev.describe_checkpoints([paths["demucs"]], wiener=False, shifts=2)  # one int is one N
    assert [(m.name, m.shifts) for m in plain] == [("demucs", 0), ("demucs-shifts2", 2)]
    # the separated-audio cache is keyed by the shifts too: the same weights with 0 and 2 shifts never share it
    assert len({m.cache_key for m in plain}) == 2 and "-shifts2-" in plain[1].cache_key
    for bad in ([17], [-1], [1.5]):
        with pytest.raises(ValueError, match=r"shifts must be an integer in \[0, 16\]"):
            ev.describe_checkpoints([paths["demucs"]], wiener=False, shifts=bad)
    with pytest.raises(SystemExit):
        ev.main(["--dataset", "default", "--shifts", "17", "--out", str(tmp_path / "x")])
    assert not (tmp_path / "x").exists()


def test_a_model_filtering_by_default_gets_a_nowiener_row(tmp_path):
    """A checkpoint with the Wiener post-filter on by default: its own row filters, and ``--wiener`` adds its
    row without (``-nowiener``), built with the post-filter off; a plain checkpoint's ``-wiener`` row has it on."""
    from mss.checkpoint import main as checkpoint_main

    paths = make_tiny_checkpoints(tmp_path, ("unet",))
    filtering = tmp_path / "unet-w.pt"
    assert checkpoint_main([str(paths["unet"]), str(filtering), "--wiener", "1"]) == 0
    methods, models = ev.describe_checkpoints([filtering, paths["unet"]], wiener=True)
    assert [(m.name, m.wiener) for m in methods] == [
        ("unet-w", True), ("unet-w-nowiener", False), ("unet", False), ("unet-wiener", True),
    ]  # fmt: skip
    assert models["unet-w"].wiener_iterations == 1 and models["unet-w-nowiener"] is None
    assert [m.variant_of for m in methods] == [None, "unet-w", None, "unet"]
    assert ev.load_checkpoint_model(filtering, wiener=False).wiener_iterations == 0
    assert ev.load_checkpoint_model(paths["unet"], wiener=True).wiener_iterations == 1
    assert ev.load_checkpoint_model(filtering).wiener_iterations == 1
    records = [provenance(m, tmp_path, "test", ["vocals"])["wiener"] for m in methods]
    assert records == [True, False, False, True]
    assert len({m.cache_key for m in methods}) == 4
    # the number format the models ran in is recorded too: bf16 separations never reuse fp32 ones
    half, _ = ev.describe_checkpoints([filtering], wiener=False, precision="bf16")
    assert half[0].precision == "bf16" and methods[0].precision == "fp32"
    assert half[0].cache_key.endswith("-bf16") and half[0].cache_key != methods[0].cache_key
    assert provenance(half[0], tmp_path, "test", ["vocals"])["precision"] == "bf16"
    oracle = ev.Method(name="MIX", kind="oracle")
    assert "precision" not in provenance(oracle, tmp_path, "test", ["vocals"])  # oracle scores stay valid


def test_crash_in_one_song_keeps_the_others(tiny_dataset, songs, tmp_path, monkeypatch, capsys):
    from mss.evaluation.scoring import SongAudio

    real = SongAudio.references
    bad = songs[0]

    def flaky(self, start, stop):
        if self.name == bad:
            raise RuntimeError("simulated crash")
        return real(self, start, stop)

    monkeypatch.setattr(SongAudio, "references", flaky)
    out = tmp_path / "out"
    base = ["--dataset", str(tiny_dataset), "--targets", "vocals", "--out", str(out), "--oracles-only"]
    assert ev.main([*base, "--no-oracles"]) == 2  # nothing to evaluate without checkpoints or oracles
    code = ev.main([*base, "--oracles", "MIX"])
    assert code == 1
    assert "simulated crash" in capsys.readouterr().err
    assert not (out / "MIX" / "test" / f"{bad}.json").exists()
    good = [s for s in songs if s != bad]
    assert good and all(ev.is_scored(out / "MIX" / "test" / f"{s}.json") for s in good)
    assert aggregate(out)["tracks"].tolist() == [len(good)] * 2
    assert "simulated crash" in (out / "errors.txt").read_text()
    assert not list(out.glob("*/test/.*.tmp"))


def test_bad_inputs_give_clear_errors(tiny_dataset, tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        ev.evaluate([tmp_path / "missing.pt"], tiny_dataset, out_dir=tmp_path / "a", progress=False)
    with pytest.raises(DatasetError, match="unknown target 'kazoo'"):
        ev.evaluate([], tiny_dataset, targets=["kazoo"], out_dir=tmp_path / "b", progress=False)
    with pytest.raises(DatasetError, match="not found"):
        ev.evaluate([], tmp_path / "nowhere", out_dir=tmp_path / "c", progress=False)
    (vocals_only,) = make_checkpoints(tmp_path, ("unet",))
    with pytest.raises(CheckpointError, match="does not separate 'piano'"):
        ev.evaluate([vocals_only], tiny_dataset, targets=["piano"], out_dir=tmp_path / "d", progress=False)
    assert os.listdir(tmp_path / "d") == []  # nothing scored


def test_cli_defaults_to_the_committed_checkpoints(tmp_path, monkeypatch, capsys):
    import pandas as pd

    import mss.checkpoint

    seen = []

    def fake_evaluate(checkpoints, *args, **kwargs):
        seen.append(list(checkpoints))
        return ev.EvaluationResult(pd.DataFrame(), (), (), 0, ())

    monkeypatch.setattr(cli, "evaluate", fake_evaluate)  # where the command line looks it up
    present = make_checkpoints(tmp_path / "ck", ("unet",))[0]
    monkeypatch.setattr(
        mss.checkpoint, "DEFAULT_CHECKPOINTS", {"unet": present, "demucs": tmp_path / "no.pt"}
    )
    assert ev.main(["--out", str(tmp_path / "e")]) == 0
    assert ev.main(["--out", str(tmp_path / "e"), "--oracles-only"]) == 0
    assert seen == [[str(present)], []]
    monkeypatch.setattr(mss.checkpoint, "DEFAULT_CHECKPOINTS", {"unet": tmp_path / "no.pt"})
    assert ev.main(["--out", str(tmp_path / "e")]) == 2
    assert "no default checkpoint" in capsys.readouterr().err


@pytest.mark.parametrize("alpha", [1.0, 2.0])
def test_irm_by_spans_equals_the_whole_song_irm(alpha):
    from mss.evaluation.oracles import ideal_ratio_mask, ideal_ratio_mask_span

    rng = np.random.default_rng(3)
    length = 44100 * 2 + 777
    sources = (rng.standard_normal((3, 2, length)) * [[[0.3]], [[0.1]], [[0.02]]]).astype(np.float32)
    mixture = sources.sum(0)
    whole = ideal_ratio_mask(mixture, sources, alpha)

    def read(a, b):
        return mixture[:, a:b], sources[..., a:b]

    for start, stop in [(0, 5000), (5000, 44100), (44100, length), (0, length), (12345, 12400)]:
        span = ideal_ratio_mask_span(read, length, start, stop, alpha)
        np.testing.assert_allclose(span, whole[..., start:stop], atol=1e-6)


def test_stem_mp4_oracles_are_scored(tmp_path):
    """MUSDB18 .stem.mp4: AAC padding makes the mixture stream longer than the stems; the scorer aligns
    them (one decode per song, into the decoded-audio cache) and the oracles score."""
    import stempeg

    from mss.evaluation.scoring import SongAudio

    clip = Path(stempeg.example_stem_path())
    (tmp_path / "data" / "test").mkdir(parents=True)
    (tmp_path / "data" / "test" / clip.name).symlink_to(clip)
    song = SongAudio.open(tmp_path / "data", "test", clip.name[: -len(".stem.mp4")], ev.SOURCES)
    assert song.mixture(0, song.length).shape == song.references(0, song.length).shape[1:]
    result = ev.evaluate(
        [], tmp_path / "data", "test", ["vocals", "drums", "bass", "other"], 1, out_dir=tmp_path / "out",
        oracles=("IRM2", "MIX"), progress=False,
    )  # fmt: skip
    assert result.errors == ()
    table = result.table
    irm = table[(table.method == "IRM2") & (table.target == "average")]
    mix = table[(table.method == "MIX") & (table.target == "average")]
    assert float(irm.SDR.iloc[0]) > float(mix.SDR.iloc[0]) + 8.0  # the ideal mask is far above the mixture
    timings = pd.read_csv(tmp_path / "out" / "timings.csv")
    assert {"IRM2", "MIX", "(shared)"} <= set(timings.method)


def test_invalid_metrics_are_flagged(tmp_path):
    """A noise-free band-limited reference (ill-conditioned projection) gets its SIR/SAR/ISR blanked and
    flagged, SDR kept. (The generated songs, with their noise floor, are valid: see the IRM1 row checked
    in test_json_follows_museval_schema_and_loads_in_museval.)"""
    rate, seconds = 44100, 4
    t = np.arange(rate * seconds) / rate
    rng = np.random.default_rng(0)

    def tone(*freqs):  # band-limited, noise-free: a sum of low harmonics with a slow tremolo
        wave = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) / (k + 1) for k, f in enumerate(freqs))
        wave = wave * (0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t))
        return (0.1 * np.stack([wave, 0.8 * wave])).astype(np.float32)

    stems = {
        "vocals": tone(220, 440, 660),
        "drums": tone(80, 160),
        "bass": tone(55, 110),
        "other": tone(330, 495),
    }
    stems["piano"] = np.zeros_like(stems["other"])
    root = write_hq_song(tmp_path / "data", "song", stems)
    table = ev.evaluate(
        [], root, "test", None, 1, out_dir=tmp_path / "out", oracles=("IRM2", "MIX"), progress=False
    ).table.set_index(["method", "target"])
    conditions = json.loads((tmp_path / "out" / "conditioning.json").read_text())["test"]
    assert conditions["song"] is None or conditions["song"] > 1e12
    irm = table.loc[("IRM2", "vocals")]
    assert "ill-conditioned" in irm["validity"]
    assert np.isnan(irm[["SIR", "SAR", "ISR"]].astype(float)).all() and np.isfinite(irm["SDR"])
    assert "flagged" in table.loc[("IRM2", "average"), "validity"]
    markdown = (tmp_path / "out" / "results.md").read_text()
    assert "| validity |" in markdown and "ill-conditioned" in markdown


def test_a_failed_separation_on_a_full_disk_says_how_much_space_is_left(
    tiny_dataset, songs, tmp_path, monkeypatch
):
    """libsndfile reports a full disk as "System error."; the errors say how little space was left, and the
    other songs are still scored."""
    from collections import namedtuple

    checkpoint = make_tiny_checkpoints(tmp_path / "ckpt", archs=("unet",), sources=("vocals",))["unet"]
    real_separate = driver.separate_to_cache
    bad = songs[0]

    def full_disk(method, model, song, out_dir, device="cpu"):
        if song.name == bad:
            raise RuntimeError("System error.")
        return real_separate(method, model, song, out_dir, device)

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(driver, "separate_to_cache", full_disk)
    monkeypatch.setattr(
        driver.shutil, "disk_usage", lambda path: usage(10**11, 10**11 - 38 * 10**6, 38 * 10**6)
    )
    out = tmp_path / "out"
    ev.evaluate([checkpoint], tiny_dataset, "test", ["vocals"], 1, out_dir=out, oracles=(), tracks=songs[:2],
                progress=False)  # fmt: skip
    errors = (out / "errors.txt").read_text()
    assert f"{bad}: separation failed: System error. (only 38 MB free on the file system of " in errors
    assert aggregate(out)["tracks"].tolist() == [1, 1]  # the other song is scored (vocals, average)
    monkeypatch.setattr(driver.shutil, "disk_usage", lambda path: usage(10**11, 0, 10**11))
    assert driver.low_disk_note(tmp_path / "missing" / "deeper") == ""
