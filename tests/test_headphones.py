"""listening_study.design.headphones: the Woods et al. (2017) antiphase check's sounds, files, design and scoring."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from listening_study.design.headphones import (
    MAX_PLAYS,
    N_TRIALS,
    PASS_MIN,
    SAMPLE_RATE,
    HeadphoneTrial,
    check_json,
    design_check,
    render_trial,
    score_check,
    tone_spans,
    trial_samples,
    trial_wav_bytes,
)
from listening_study.errors import StimulusError, SubmissionError

STATIC = Path(__file__).resolve().parents[1] / "listening_study" / "static"
#: the participant page's scripts, in the order the page loads them (mss_app/participant.py)
SCRIPTS = ("mushra-audio.js", "mushra-trial.js", "mushra-headphones.js", "mushra.js")
#: every arrangement of (quiet, antiphase) over the three positions
ARRANGEMENTS = [HeadphoneTrial(0, q, a) for q, a in itertools.permutations(range(3), 2)]


def write_trial_wav(path: Path, trial: HeadphoneTrial, rng: np.random.Generator) -> Path:
    """The bytes the server sends for one sound of the check, as a file."""
    path.write_bytes(trial_wav_bytes(trial, rng))
    return path


def rms_db(signal: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.asarray(signal, np.float64) ** 2)))


def tones(audio: np.ndarray) -> list[np.ndarray]:
    """The three tones of a trial's (2, T) sound, each (2, T_tone)."""
    return [audio[:, start:end] for start, end in tone_spans(SAMPLE_RATE)]


@pytest.mark.parametrize("trial", ARRANGEMENTS, ids=str)
def test_quiet_tone_is_6_db_below_the_two_others(trial):
    parts = tones(render_trial(trial))
    loud = [rms_db(parts[k]) for k in range(3) if k != trial.quiet]
    assert loud[0] == pytest.approx(loud[1], abs=1e-6)
    assert loud[0] - rms_db(parts[trial.quiet]) == pytest.approx(6.0, abs=0.05)
    for part in parts:  # each tone the same level in both ears
        assert rms_db(part[0]) == pytest.approx(rms_db(part[1]), abs=1e-6)


def test_levels_survive_the_16_bit_file(tmp_path):
    trial = HeadphoneTrial(0, quiet=2, antiphase=0)
    path = write_trial_wav(tmp_path / "t.wav", trial, np.random.default_rng(1))
    audio, rate = sf.read(path, dtype="float64", always_2d=True)
    assert rate == SAMPLE_RATE and audio.shape == (trial_samples(), 2)
    assert sf.info(path).subtype == "PCM_16"
    parts = tones(audio.T)
    assert rms_db(parts[1]) - rms_db(parts[2]) == pytest.approx(6.0, abs=0.05)
    assert np.max(np.abs(audio.T - render_trial(trial))) < 3 / 32768  # rounding + TPDF dither only


@pytest.mark.parametrize("trial", ARRANGEMENTS, ids=str)
def test_antiphase_tone_cancels_in_a_mono_downmix(trial):
    parts = tones(render_trial(trial))
    downmix = [0.5 * (part[0].astype(np.float64) + part[1]) for part in parts]
    assert np.allclose(parts[trial.antiphase][1], -parts[trial.antiphase][0])
    in_phase = [k for k in range(3) if k != trial.antiphase]
    for k in in_phase:
        assert np.array_equal(parts[k][0], parts[k][1])
    cancelled = float(np.mean(downmix[trial.antiphase] ** 2))
    assert cancelled == 0.0 or max(rms_db(downmix[k]) for k in in_phase) - 10 * np.log10(cancelled) >= 40.0


def test_downmix_of_the_written_file_cancels_too(tmp_path):
    """Dither is independent per channel, so the file's antiphase downmix is down at the dither floor."""
    trial = HeadphoneTrial(0, quiet=0, antiphase=1)
    audio, _ = sf.read(write_trial_wav(tmp_path / "t.wav", trial, np.random.default_rng(2)), always_2d=True)
    parts = tones(audio.T)
    downmix = [0.5 * (part[0] + part[1]) for part in parts]
    assert rms_db(downmix[2]) - rms_db(downmix[1]) >= 40.0


def test_tones_are_200_hz():
    for part in tones(render_trial(HeadphoneTrial(0, quiet=1, antiphase=2))):
        for channel in part:
            spectrum = np.abs(np.fft.rfft(channel))
            frequencies = np.fft.rfftfreq(channel.shape[-1], 1 / SAMPLE_RATE)
            assert frequencies[int(np.argmax(spectrum))] == pytest.approx(200.0, abs=1.0)


def test_tones_have_100_ms_raised_cosine_ramps_and_silence_between():
    audio = render_trial(HeadphoneTrial(0, quiet=0, antiphase=1))
    spans = tone_spans(SAMPLE_RATE)
    assert audio.shape == (2, trial_samples()) and audio.dtype == np.float32
    ramp = int(0.1 * SAMPLE_RATE)
    for start, end in spans:
        assert end - start == SAMPLE_RATE  # 1000 ms
        envelope = np.abs(audio[1, start:end])  # a standard or quiet tone: take the peak per 5 ms
        assert (
            np.max(np.abs(audio[:, start])) < 1e-6
            and np.max(np.abs(audio[:, end - 1])) < 0.01 * envelope.max()
        )
        assert np.max(envelope[:220]) < 0.02 * envelope.max()  # first 5 ms: the ramp has barely begun
        crest = round(0.05125 * SAMPLE_RATE)  # the sine's crest just after 50 ms (200 Hz: one per 5 ms)
        expected = 0.5 - 0.5 * np.cos(np.pi * crest / ramp)  # raised cosine: about half way at 50 ms
        assert envelope[crest] == pytest.approx(expected * envelope.max(), rel=0.01)
        assert np.max(envelope[ramp : ramp + 220]) == pytest.approx(envelope.max(), rel=1e-3)
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start - end == SAMPLE_RATE // 2 and not np.any(audio[:, end:start])  # 500 ms of silence
    assert not np.any(audio[:, : spans[0][0]]) and not np.any(audio[:, spans[-1][1] :])


def test_every_trial_file_has_the_same_size_and_header(tmp_path):
    trials = design_check(7)
    paths = [write_trial_wav(tmp_path / f"{t.index}.wav", t, np.random.default_rng(t.index)) for t in trials]
    paths += [
        write_trial_wav(tmp_path / f"all{k}.wav", t, np.random.default_rng(99))
        for k, t in enumerate(ARRANGEMENTS)
    ]
    sizes = {path.stat().st_size for path in paths}
    headers = {path.read_bytes()[:44] for path in paths}
    assert len(sizes) == 1 and len(headers) == 1
    assert sizes == {44 + 4 * trial_samples()}  # a plain 44-byte header, then 2 x 16 bit per sample
    assert next(iter(headers))[:4] == b"RIFF" and next(iter(headers))[36:40] == b"data"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths)  # no temp files left


def test_each_file_has_its_own_dither(tmp_path):
    trial = HeadphoneTrial(0, quiet=0, antiphase=2)
    a = write_trial_wav(tmp_path / "a.wav", trial, np.random.default_rng(1)).read_bytes()
    b = write_trial_wav(tmp_path / "b.wav", trial, np.random.default_rng(2)).read_bytes()
    assert a[:44] == b[:44] and a != b


def test_design_is_reproducible_and_differs_between_seeds():
    assert design_check(12345) == design_check(12345)
    assert len(design_check(12345)) == N_TRIALS
    assert [t.index for t in design_check(3)] == list(range(N_TRIALS))
    assert len({design_check(seed) for seed in range(50)}) > 45
    big = 2**127 + 12345  # the 128-bit seeds of StudyKey.seed
    assert design_check(big) == design_check(big) != design_check(big + 1)
    assert len(design_check(5, n_trials=10)) == 10


def test_design_never_puts_antiphase_on_the_quiet_tone_and_covers_every_arrangement():
    trials = [t for seed in range(300) for t in design_check(seed)]
    assert all(t.antiphase != t.quiet and 0 <= t.quiet <= 2 and 0 <= t.antiphase <= 2 for t in trials)
    counts = {pair: 0 for pair in itertools.permutations(range(3), 2)}
    for t in trials:
        counts[(t.quiet, t.antiphase)] += 1
    assert all(abs(n / len(trials) - 1 / 6) < 0.03 for n in counts.values())  # uniform over the 6


@pytest.mark.parametrize("n_trials", [0, -1, 2.0, True])
def test_design_refuses_a_bad_trial_count(n_trials):
    with pytest.raises(StimulusError):
        design_check(1, n_trials=n_trials)


def test_render_refuses_an_impossible_trial_or_level():
    for trial in (HeadphoneTrial(0, 1, 1), HeadphoneTrial(0, 3, 0), HeadphoneTrial(0, True, 0)):
        with pytest.raises(StimulusError):
            render_trial(trial)
    with pytest.raises(StimulusError, match="0 dBFS"):
        render_trial(HeadphoneTrial(0, 0, 1), level_dbfs=3.0)


def test_score_passes_with_5_of_6_and_fails_with_4():
    trials = design_check(42)
    right = [t.quiet for t in trials]
    wrong = [t.antiphase for t in trials]  # what a loudspeaker listener answers
    assert score_check(trials, right) == score_check(trials, tuple(right))
    result = score_check(trials, right)
    assert (result.n_correct, result.n_trials, result.passed) == (6, 6, True)
    five = right[:5] + wrong[5:]
    assert score_check(trials, five).n_correct == PASS_MIN and score_check(trials, five).passed
    four = right[:4] + wrong[4:]
    assert score_check(trials, four).n_correct == 4 and not score_check(trials, four).passed
    assert not score_check(trials, wrong).passed and score_check(trials, wrong).n_correct == 0


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ([True, 0, 0, 0, 0, 0], "sound 1 must be 0, 1 or 2"),
        ([0, 0, 3, 0, 0, 0], "sound 3 must be 0, 1 or 2"),
        ([0, "1", 0, 0, 0, 0], "sound 2 must be 0, 1 or 2"),
        ([0, 0, 0, 0, 0, -1], "sound 6 must be 0, 1 or 2"),
        ([0, 0, 0, 0, 0, 1.0], "sound 6 must be 0, 1 or 2"),
        ([0, 0, 0, 0, None, 0], "sound 5 must be 0, 1 or 2"),
        ([0, 1, 2, 0, 1], "6 answers are needed, 5 were sent"),
        ([0, 1, 2, 0, 1, 2, 0], "6 answers are needed, 7 were sent"),
        ([], "6 answers are needed, 0 were sent"),
        ("012012", "must be a list"),
        ({"0": 1}, "must be a list"),
        (None, "must be a list"),
    ],
)
def test_score_refuses_malformed_answers_with_a_sentence(answers, message):
    with pytest.raises(SubmissionError, match=message) as error:
        score_check(design_check(1), answers)
    assert str(error.value).endswith(".") and "\n" not in str(error.value)


def test_check_json_gives_urls_and_texts_but_no_answers():
    urls = [f"/mushra/api/audio/s/{k:032x}" for k in range(N_TRIALS)]
    check = check_json(urls)
    assert check["trials"] == [{"url": url} for url in urls]
    assert check["question"] == "Which tone was the quietest?"
    assert check["choices"] == ["First", "Second", "Third"]
    assert (check["n_pass"], check["n_trials"], check["max_plays"]) == (PASS_MIN, N_TRIALS, MAX_PLAYS)
    assert MAX_PLAYS == 1 and "headphones" in check["instructions"].lower()
    text = json.dumps(check)  # what the page gets: no positions, no answer
    assert '"quiet"' not in text and "antiphase" not in text and set(check["trials"][0]) == {"url"}
    for bad in ("/a.wav", ["/a.wav", ""], [None]):
        with pytest.raises(StimulusError):
            check_json(bad)


@pytest.mark.browser
def test_page_scripts_parse_and_load_in_a_browser():
    """Every script of the participant page parses and, loaded in the page's order into an empty page of
    headless Chromium, defines its global without an error (a syntax error in any of them, or a script
    that reads a global loaded after it, fails here and not only in the slower session tests)."""
    from playwright.sync_api import sync_playwright

    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        pytest.fail(f"{chromium} is missing: install chromium (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium), args=["--no-sandbox"], headless=True
        )
        page = browser.new_page()
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.set_content("<!doctype html><main></main>")
        for name in SCRIPTS:
            source = (STATIC / name).read_text()
            assert page.evaluate("(src) => { try { new Function(src); return ''; } catch (e) { return String(e); } }",
                                 source) == "", name  # fmt: skip
            page.add_script_tag(content=source)
        defined = page.evaluate(
            "['MushraAudio', 'MushraTrial', 'MushraHeadphones', 'MushraApp'].map(n => typeof window[n])"
        )
        browser.close()
    assert errors == [] and defined == ["object"] * 4
