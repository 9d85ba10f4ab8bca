"""Chunked overlap-add, resampling/channel handling, streaming files and the separation CLI."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from torch import nn

from mss import MAX_SHIFTS, MAX_WIENER_ITERATIONS
from mss.audio import load_audio, resample
from mss.checkpoint import save_checkpoint
from mss.chunking import OVERLAP, SHIFTED_OVERLAP, apply_overlap_add
from mss.errors import AudioError
from mss.models import build_model, model_preset
from mss.separate import main, separate, separate_file, shift_average, song_name, with_wiener

REPO_ROOT = Path(__file__).resolve().parents[1]
SEGMENT = 1000


class Identity(nn.Module):
    """Returns the mix as S copies: overlap-add must give the input back exactly."""

    sources = ("a", "b", "c")
    audio_channels = 2
    segment_s = 0.1

    def __init__(self, sample_rate: int = 10000):
        super().__init__()
        self.sample_rate = sample_rate
        self.calls: list[tuple[int, ...]] = []

    def forward(self, mix):
        self.calls.append(tuple(mix.shape))
        return mix[:, None].expand(-1, len(self.sources), -1, -1) * 1.0  # (B, S, C, T)


def signal(channels: int, length: int, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal((channels, length))).astype(np.float32)


@pytest.mark.parametrize("length", [1, 17, SEGMENT - 1, SEGMENT, 3 * SEGMENT + 17, 10 * SEGMENT + 3])
@pytest.mark.parametrize("batch_size", [1, 3])
def test_overlap_add_identity(length, batch_size):
    mix = torch.from_numpy(signal(2, length, seed=length))
    shapes = []

    def fn(chunks):
        shapes.append(tuple(chunks.shape))
        return torch.stack([chunks, 2 * chunks], dim=1)  # (b, 2, C, segment)

    out = apply_overlap_add(fn, mix, SEGMENT, 0.25, batch_size)
    assert out.shape == (2, 2, length)
    assert torch.allclose(out[0], mix, atol=1e-6) and torch.allclose(out[1], 2 * mix, atol=1e-6)
    assert all(s[0] <= batch_size and s[-1] == SEGMENT for s in shapes)  # never more than a batch at once
    if length > SEGMENT:
        assert len(shapes) > 1


def test_overlap_add_rejects_bad_arguments():
    with pytest.raises(ValueError):
        apply_overlap_add(lambda c: c[:, None], torch.zeros(2, 10), 0, 0.25, 1)
    with pytest.raises(ValueError):
        apply_overlap_add(lambda c: c[:, None], torch.zeros(2, 10), 5, 1.0, 1)


@pytest.mark.parametrize("length", [1, 500, 1000, 3456])
@pytest.mark.parametrize("batch_size", [1, 3])
def test_separate_identity_model(length, batch_size):
    model = Identity()
    mix = signal(2, length, seed=1)
    out = separate(model, mix, 10000, batch_size=batch_size)
    assert list(out) == ["a", "b", "c"]
    for stem in out.values():
        assert stem.shape == (2, length) and stem.dtype == np.float32
        np.testing.assert_allclose(stem, mix, atol=1e-6)
    assert max(shape[0] for shape in model.calls) <= batch_size


class Pointwise(Identity):
    """A time-invariant model whose output does not depend on where chunk edges fall: each source is a
    different memoryless (and, for two of them, nonlinear) function of the mix."""

    def forward(self, mix):
        return torch.stack([mix, torch.tanh(3 * mix), mix * mix.abs()], dim=1)  # (B, S, C, T)


def test_shifts_off_is_the_plain_separation_bit_for_bit():
    torch.manual_seed(0)
    model = build_model("demucs", model_preset("demucs", "tiny", sample_rate=8000)).eval()
    mix = signal(2, 8000 * 3 + 17, seed=7)
    plain = separate(model, mix, 8000)
    assert all(np.array_equal(plain[k], v) for k, v in separate(model, mix, 8000, shifts=0).items())
    # one shift of zero samples is the plain separation too: the shift path adds no rounding of its own
    chunks = torch.from_numpy(mix)
    once = lambda piece: apply_overlap_add(lambda c: model(c), piece, 8000, 0.25, 4)  # noqa: E731
    with torch.inference_mode():
        assert torch.equal(shift_average(once, chunks, shifts=1, max_shift=0), once(chunks))
        # and shifts really change a model whose output depends on where chunk edges fall
        shifted = separate(model, mix, 8000, shifts=2)
    assert not np.allclose(shifted["vocals"], plain["vocals"], atol=1e-5)


def _same_weights(arch: str, **changes):
    """(config, model, the same weights under the config with ``changes``): a tiny ``arch`` at 8 kHz, seed 0."""
    torch.manual_seed(0)
    config = model_preset(arch, "tiny", sample_rate=8000)
    model = build_model(arch, config).eval()
    changed = build_model(arch, dataclasses.replace(config, **changes)).eval()
    changed.load_state_dict(model.state_dict())
    return config, model, changed


def test_a_model_separates_with_its_own_default_shifts_unless_told_otherwise():
    """A config's ``shifts`` is the default of separate(): the same output as asking for that many shifts, bit
    for bit; shifts=0 still gives the plain pass; a module without a ``shifts`` attribute separates plainly;
    a number of shifts outside [0, MAX_SHIFTS] is refused by name."""
    config, plain_model, shifted_model = _same_weights("demucs", shifts=2)
    assert (plain_model.shifts, shifted_model.shifts) == (0, 2)
    mix = signal(2, 8000 * 3 + 17, seed=7)
    by_default = separate(shifted_model, mix, 8000)
    asked = separate(plain_model, mix, 8000, shifts=2)
    plain = separate(plain_model, mix, 8000)
    for name in plain_model.sources:
        np.testing.assert_array_equal(by_default[name], asked[name])
        np.testing.assert_array_equal(separate(shifted_model, mix, 8000, shifts=0)[name], plain[name])
    assert not np.allclose(by_default["vocals"], plain["vocals"], atol=1e-5)
    # chunks overlap by 1/8 with the shift trick and by 1/4 in one plain pass, unless told
    for name, stem in separate(plain_model, mix, 8000, shifts=2, overlap=SHIFTED_OVERLAP).items():
        np.testing.assert_array_equal(by_default[name], stem)
    np.testing.assert_array_equal(
        separate(plain_model, mix, 8000, overlap=OVERLAP)["vocals"], plain["vocals"]
    )
    told = separate(shifted_model, mix, 8000, overlap=OVERLAP)["vocals"]
    np.testing.assert_array_equal(told, separate(plain_model, mix, 8000, shifts=2, overlap=OVERLAP)["vocals"])
    assert not np.array_equal(told, by_default["vocals"])
    assert not hasattr(Pointwise(), "shifts")
    pointwise = Pointwise()
    np.testing.assert_array_equal(
        separate(pointwise, mix, 8000)["a"], separate(pointwise, mix, 8000, shifts=0)["a"]
    )
    for bad in (-1, MAX_SHIFTS + 1, 1.5, True):
        with pytest.raises(ValueError, match=r"shifts must be an integer in \[0, 16\]"):
            separate(plain_model, mix, 8000, shifts=bad)
        with pytest.raises(ValueError, match="DemucsConfig.shifts must be an integer"):
            dataclasses.replace(config, shifts=bad)


def test_a_model_separates_with_its_own_wiener_post_filter_unless_told_otherwise():
    """A config's ``wiener_iterations`` is the default of separate() and separate_file(): the same output as
    asking for it, bit for bit; 0 switches it off; the caller's model is never changed; a model without the
    post-filter separates as it is with 0 and refuses more; a bad number is refused by name."""
    config, plain_model, filtering = _same_weights("unet", wiener_iterations=1)
    assert (plain_model.wiener_iterations, filtering.wiener_iterations) == (0, 1)
    mix = signal(2, 8000 * 3 + 17, seed=8)
    by_default = separate(filtering, mix, 8000)
    plain = separate(plain_model, mix, 8000)
    for name in plain_model.sources:
        np.testing.assert_array_equal(
            separate(plain_model, mix, 8000, wiener_iterations=1)[name], by_default[name]
        )
        np.testing.assert_array_equal(separate(filtering, mix, 8000, wiener_iterations=0)[name], plain[name])
    assert not np.allclose(by_default["drums"], plain["drums"], atol=1e-4)
    assert plain_model.wiener_iterations == 0 and filtering.wiener_iterations == 1  # untouched
    # the copy with another post-filter keeps the weights' dtype and draws nothing from torch's generator
    state = torch.random.get_rng_state()
    switched = with_wiener(filtering.to(torch.float16), 0)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert switched.wiener_iterations == 0 and next(switched.parameters()).dtype == torch.float16
    assert filtering.wiener_iterations == 1 and with_wiener(filtering, 1) is filtering
    filtering.float()
    # two iterations are another filter again
    assert not np.allclose(separate(filtering, mix, 8000, wiener_iterations=2)["drums"], by_default["drums"])
    pointwise = Pointwise()
    np.testing.assert_array_equal(
        separate(pointwise, mix, 8000)["a"], separate(pointwise, mix, 8000, wiener_iterations=0)["a"]
    )
    with pytest.raises(ValueError, match="Pointwise has no Wiener post-filter"):
        separate(pointwise, mix, 8000, wiener_iterations=1)
    for bad in (-1, MAX_WIENER_ITERATIONS + 1, 1.5, True):
        with pytest.raises(ValueError, match=r"wiener_iterations must be an integer in \[0, 8\]"):
            separate(plain_model, mix, 8000, wiener_iterations=bad)
        with pytest.raises(ValueError, match="UNetConfig.wiener_iterations must be an integer"):
            dataclasses.replace(config, wiener_iterations=bad)


def test_progress_counts_the_chunks_of_every_shifted_pass():
    """The progress callback of a shifted separation runs over all passes' chunks: it only grows, and it
    ends at shifts x the chunks of one pass (a plain pass reports those chunks alone)."""
    from mss.separate import SeparationOptions, separate_array

    torch.manual_seed(0)
    model = build_model("demucs", model_preset("demucs", "tiny", sample_rate=8000)).eval()
    mix = signal(2, 8000 * 3 + 17, seed=7)
    calls = {0: [], 3: []}
    for shifts, seen in calls.items():
        options = SeparationOptions(shifts=shifts)
        separate_array(model, mix, 8000, options, on_batch=lambda d, t, s=seen: s.append((d, t)))
    plain_total = calls[0][-1][1]
    assert calls[0][-1] == (plain_total, plain_total) and plain_total > 1
    totals = {total for _, total in calls[3]}
    assert len(totals) == 1  # one total from the first report on: every pass's chunks
    (total,) = totals
    assert total % 3 == 0 and total // 3 >= plain_total  # a delayed copy is up to 0.5 s longer
    done = [d for d, _ in calls[3]]
    assert done == sorted(done) and done[-1] == total and len(done) % 3 == 0  # each pass reports alike


def test_shifted_separation_of_a_time_invariant_model_equals_the_unshifted():
    model = Pointwise()
    mix = signal(2, 4321, seed=3)
    plain = separate(model, mix, 10000)
    shifted = separate(model, mix, 10000, shifts=4)
    for name in model.sources:
        np.testing.assert_allclose(shifted[name], plain[name], atol=1e-5)
    offsets = np.random.default_rng(0).integers(0, 5000, size=4)
    assert len(set(offsets.tolist())) == 4  # four distinct delays were averaged, not one four times


def test_separate_mono_and_stem_subset():
    model = Identity()
    mono = signal(1, 2500, seed=2)[0]
    out = separate(model, mono, 10000, stems=["b"])
    assert list(out) == ["b"] and out["b"].shape == (2500,)
    np.testing.assert_allclose(out["b"], mono, atol=1e-6)
    out = separate(model, mono[None], 10000)
    assert out["a"].shape == (1, 2500)
    with pytest.raises(ValueError, match="unknown stem"):
        separate(model, mono, 10000, stems=["vocals"])


def test_separate_resamples_to_model_rate_and_back():
    model = Identity(sample_rate=22050)
    t = np.arange(44100 + 123) / 44100
    mix = np.stack([np.sin(2 * np.pi * 440 * t), 0.5 * np.sin(2 * np.pi * 1000 * t)]).astype(np.float32)
    out = separate(model, mix, 44100, full_band=False)
    assert out["a"].shape == mix.shape
    expected = resample(resample(mix, 44100, 22050), 22050, 44100)[:, : mix.shape[1]]
    np.testing.assert_allclose(out["a"], expected, atol=1e-5)
    np.testing.assert_allclose(
        out["a"][:, 200:-200], mix[:, 200:-200], atol=1e-2
    )  # band-limited tones survive
    # full band (the default): the band above 8.6 kHz comes from the mix, which also mends the resampler's
    # errors at the ends of the signal (the identity's estimate gets closer to the mix, never further)
    full = separate(model, mix, 44100)["a"]
    assert np.abs(full - mix).max() < np.abs(out["a"] - mix).max()
    assert np.abs(full - mix)[:, 200:-200].max() < 2e-3
    tiny = build_model("demucs", model_preset("demucs", "tiny")).train()
    stems = separate(tiny, mix[:, :30001], 44100)
    assert tiny.training  # separate() runs in eval mode and restores the caller's mode
    assert set(stems) == set(tiny.sources) and all(s.shape == (2, 30001) for s in stems.values())


@pytest.mark.parametrize(
    "audio, message",
    [
        (np.zeros((2, 0), np.float32), "empty"),
        (np.full((2, 100), np.nan, np.float32), "NaN"),
        (np.zeros((2, 100), np.float32), "silent"),
    ],
)
def test_separate_bad_input(audio, message):
    with pytest.raises(AudioError, match=message):
        separate(Identity(), audio, 10000)


def test_separate_file_streams_blocks(tmp_path):
    mix = signal(1, 25000, seed=3)
    sf.write(tmp_path / "song.flac", mix.T, 10000, subtype="PCM_24")
    original, _ = load_audio(tmp_path / "song.flac")
    written = separate_file(
        Identity(), tmp_path / "song.flac", tmp_path / "out", block_s=0.7, stems=["c", "a"]
    )
    assert sorted(written) == ["a", "c"]
    for path in written.values():
        audio, rate = load_audio(path)
        assert rate == 10000 and audio.shape == (1, 25000)
        np.testing.assert_allclose(audio, original, atol=1e-6)  # block borders leave no trace
    assert sorted(p.name for p in (tmp_path / "out" / "song").iterdir()) == ["a.wav", "c.wav"]


def test_separate_file_bad_inputs(tmp_path):
    for name, audio in [
        ("silent", np.zeros((100, 2))),
        ("nan", np.full((100, 2), np.nan)),
        ("empty", np.zeros((0, 2))),
    ]:
        sf.write(tmp_path / f"{name}.wav", audio, 10000, subtype="FLOAT")
        with pytest.raises(AudioError):
            separate_file(Identity(), tmp_path / f"{name}.wav", tmp_path / "out")
    assert (
        song_name("x/Music Delta - 80s Rock.stem.mp4") == "Music Delta - 80s Rock"
        and song_name("a.b.wav") == "a.b"
    )


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory, musdb_sample_root):
    """One CLI run over [real MUSDB clip, corrupt file, short wav] with a tiny random-weight Demucs."""
    tmp = tmp_path_factory.mktemp("cli")
    torch.manual_seed(0)
    checkpoint = save_checkpoint(tmp / "tiny.pt", build_model("demucs", model_preset("demucs", "tiny")))
    clip = next(Path(musdb_sample_root).rglob("*.stem.mp4"))
    (tmp / "corrupt.wav").write_bytes(b"RIFF....WAVEfmt garbage" * 20)
    sf.write(tmp / "short.wav", signal(1, 12345, seed=4).T, 16000)
    songs = [str(clip), str(tmp / "corrupt.wav"), str(tmp / "short.wav")]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mss.separate",
            *songs,
            "--checkpoint",
            str(checkpoint),
            "--out",
            str(tmp / "out"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=300,
    )
    return result, clip, tmp


def test_cli_separates_real_clip(cli_run):
    result, clip, tmp = cli_run
    reference, rate = load_audio(clip)  # the mixture (stem 0)
    folder = tmp / "out" / song_name(clip)
    assert sorted(p.name for p in folder.iterdir()) == ["bass.wav", "drums.wav", "other.wav", "vocals.wav"]
    for path in folder.iterdir():
        info = sf.info(path)
        assert (info.samplerate, info.channels, info.frames) == (rate, reference.shape[0], reference.shape[1])
        audio, _ = load_audio(path)
        assert np.abs(audio).max() > 0


def test_cli_failure_keeps_other_songs(cli_run):
    result, _, tmp = cli_run
    assert result.returncode == 1
    assert "corrupt.wav" in result.stderr and "1 of 3 song(s) failed" in result.stderr
    short = sf.info(tmp / "out" / "short" / "vocals.wav")
    assert (short.samplerate, short.channels, short.frames) == (16000, 1, 12345)
    assert not (tmp / "out" / "corrupt").exists()  # a failed song leaves no (empty) folder


def test_cli_missing_checkpoint(tmp_path, capsys):
    sf.write(tmp_path / "a.wav", signal(2, 1000).T, 16000)
    assert (
        main([str(tmp_path / "a.wav"), "--checkpoint", str(tmp_path / "none.pt"), "--out", str(tmp_path)])
        == 2
    )
    assert "checkpoint not found" in capsys.readouterr().err


def test_output_names_never_collide():
    from mss.separate import output_names

    assert song_name("/data/musdb18hq/test/Song A/mixture.wav") == "Song A"
    assert song_name("x/Song B.stem.mp4") == "Song B" and song_name("x/take.wav") == "take"
    hq = ["/r/test/Song A/mixture.wav", "/r/test/Song B/mixture.wav"]
    assert output_names(hq) == ["Song A", "Song B"]
    assert output_names(["/m/dirA/song.wav", "/m/dirB/song.wav", "/m/dirB/other.wav"]) == [
        "dirA-song",
        "dirB-song",
        "other",
    ]
    assert output_names(["/x/a/b/song.wav", "/y/a/b/song.wav"]) == ["x-a-b-song", "y-a-b-song"]


def test_cli_writes_each_hq_song_to_its_own_folder(tmp_path):
    torch.manual_seed(0)
    checkpoint = save_checkpoint(tmp_path / "tiny.pt", build_model("demucs", model_preset("demucs", "tiny")))
    songs = []
    for index, name in enumerate(["First Song", "Second Song"]):
        (tmp_path / "test" / name).mkdir(parents=True)
        sf.write(
            tmp_path / "test" / name / "mixture.wav", signal(2, 8000 + 1000 * index, seed=index).T, 16000
        )
        songs.append(str(tmp_path / "test" / name / "mixture.wav"))
    assert main([*songs, "--checkpoint", str(checkpoint), "--out", str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["First Song", "Second Song"]
    for index, name in enumerate(["First Song", "Second Song"]):
        assert sf.info(tmp_path / "out" / name / "vocals.wav").frames == 8000 + 1000 * index


def test_cli_wiener_switches_the_post_filter(tmp_path, capsys):
    """``--wiener N`` of the CLI: the files are those of separate_file with that many EM iterations (0: the
    checkpoint's post-filter off); a bad number is a usage error naming the option."""
    torch.manual_seed(0)
    model = build_model("unet", model_preset("unet", "tiny", wiener_iterations=1))
    checkpoint = save_checkpoint(tmp_path / "tiny.pt", model)
    sf.write(tmp_path / "a.wav", signal(2, 16000 * 2, seed=3).T, 16000)
    outputs = {}
    for iterations in ("0", "1"):
        out = tmp_path / f"out{iterations}"
        assert (
            main(
                [
                    str(tmp_path / "a.wav"),
                    "--checkpoint",
                    str(checkpoint),
                    "--out",
                    str(out),
                    "--wiener",
                    iterations,
                ]
            )
            == 0
        )
        outputs[iterations] = sf.read(out / "a" / "drums.wav")[0]
    plain = separate_file(model.eval(), tmp_path / "a.wav", tmp_path / "api", wiener_iterations=0)
    np.testing.assert_array_equal(outputs["0"], sf.read(plain["drums"])[0])
    assert not np.allclose(outputs["0"], outputs["1"], atol=1e-4)
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                str(tmp_path / "a.wav"),
                "--checkpoint",
                str(checkpoint),
                "--out",
                str(tmp_path),
                "--wiener",
                "9",
            ]
        )
    assert exit_info.value.code == 2
    assert "argument --wiener: --wiener must be an integer in [0, 8]" in capsys.readouterr().err
