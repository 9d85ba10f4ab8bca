"""The app in headless Chromium: a whole participant session with every rating rule, a curious participant
looking for the conditions behind the letters, and the experimenter's views behind their password.

One app (app.py's build_app, FastAPI + Gradio, in a thread on a free loopback port) serves a tiny study
for the whole module: one song of the ``tiny_dataset`` fixture, two targets (two graded trials), 3-s
excerpts, six conditions (two tiny random-weight systems, the hidden reference, three anchors), one
familiarization page and a minimum listening time of MIN_LISTEN_S per condition. The tests run in file
order: the experimenter's empty state is looked at before anybody has rated anything.
Screenshots go to $MSS_SCREENSHOT_DIR when it is set (else a temp folder).
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
from pathlib import Path

import httpx
import pandas as pd
import pytest
from helpers import load_app_module, make_tiny_checkpoints, step_audio_urls

from mss_app.context import load_study_context
from mss_app.server import BackgroundServer, build_app

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required",
]  # fmt: skip
SCREENSHOTS = Path(os.environ["MSS_SCREENSHOT_DIR"]) if os.environ.get("MSS_SCREENSHOT_DIR") else None
PASSWORD = "letmein-42"
MIN_LISTEN_S = 0.3
ANSWERS = {"age": "25-34", "experience": "some", "headphones": "closed"}


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = SCREENSHOTS or tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def running_app(tiny_dataset, tmp_path_factory):
    app_module = load_app_module()
    folder = tmp_path_factory.mktemp("app")
    checkpoints = make_tiny_checkpoints(folder)
    settings = (("min_listen_s", MIN_LISTEN_S), ("familiarization_excerpts", 1), ("excerpt_s", 3.0))
    config = app_module.AppConfig(
        dataset=str(tiny_dataset), study_dir=folder / "study", checkpoints=tuple(checkpoints.items()),
        eval_dir=folder / "no-eval", password=PASSWORD, n_songs=1, targets=("vocals", "drums"),
        study_settings=settings,
    )  # fmt: skip
    context = load_study_context(config)
    assert context.error is None, context.error
    with BackgroundServer(build_app(config, context)) as url:
        yield url, context


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install chromium (apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


# ----------------------------------------------------------------------------------------------- helpers
def _message(page) -> str:
    page.wait_for_function(
        "() => [...document.querySelectorAll('.mushra-message')].some(m => m.textContent.trim() "
        "&& m.textContent !== 'Saving...' && m.textContent !== 'Please wait...')",
        timeout=10_000,
    )
    return " ".join(page.locator(".mushra-message").all_inner_texts())


def _headphone_check(page, context, shots: Path | None, wrong: bool = False) -> None:
    """The headphone check, answered right (or all ``wrong``). With ``shots`` through its page, as a
    listener does (each sound plays once, about 4.5 s); otherwise through the API the page uses (fetch
    the six sounds, send the answers) from the page, to keep the suite's time down."""
    page.wait_for_selector("text=Headphone check", timeout=20_000)
    session_id = page.evaluate("window.mushra.app.session.session_id")
    store = context.sessions
    design = store.headphone_design(store.resume(session_id))
    right = [t.antiphase if wrong else t.quiet for t in design]
    if not shots:
        page.evaluate(
            """async ([api, answers]) => {
                const session = window.mushra.app.session;
                for (const trial of session.headphones.trials) await (await fetch(trial.url)).arrayBuffer();
                const response = await fetch(api + "/headphones", {method: "POST", headers: {"Content-Type": "application/json"},
                    body: JSON.stringify({session_id: session.session_id, answers: answers})});
                if (!response.ok) throw new Error(await response.text());
                window.mushra.app.session = await response.json();  // what the page does with an answer
                window.mushra.app.show();
            }""",
            ["/mushra/api", right],
        )
        return
    page.screenshot(path=str(shots / "participant_3b_headphones.png"), full_page=True)
    for index, position in enumerate(right):
        page.wait_for_selector(f"text=Sound {index + 1} of 6", timeout=20_000)
        page.wait_for_selector(".mushra-hp-play:not([disabled])", timeout=20_000)
        page.click(".mushra-hp-play")
        assert page.locator(".mushra-hp-choice:not([disabled])").count() == 0  # not before the sound ended
        page.wait_for_selector(".mushra-hp-choice:not([disabled])", timeout=20_000)
        page.click(f".mushra-hp-choice[data-position='{position}']")
        page.click(".mushra-hp-next")
    page.wait_for_selector("text=Practice: excerpt", timeout=20_000)
    result = store.resume(session_id).headphones
    assert (result["n_correct"], result["passed"], result["answers"]) == (6, True, right)


def _start_session(page, url: str, context, shots: Path | None = None) -> None:
    """Consent, questionnaire, volume, headphone check, familiarization, instructions: up to the first
    graded trial. With ``shots``, also checks what each page refuses and takes its screenshot."""
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_selector(".mushra-start", timeout=30_000)
    if shots:
        page.screenshot(path=str(shots / "participant_1_consent.png"), full_page=True)
        assert "This study is run by the research team" in page.inner_text(".mushra-contact")
        page.click(".mushra-start")
        assert "agree to take part" in _message(page)
    page.check(".mushra-consent")
    page.click(".mushra-start")
    page.wait_for_selector("text=A few questions", timeout=20_000)
    if shots:  # every unanswered question named at once, and marked
        page.click(".mushra-next")
        assert _message(page) == (
            "Please answer: Your age; Your experience with listening critically to audio; What are you listening with?"
        )
        assert page.locator(".mushra-missing").count() == 3
        page.select_option("select[data-key='age']", ANSWERS["age"])  # one answered: it leaves the list
        assert page.inner_text(".mushra-message") == (
            "Please answer: Your experience with listening critically to audio; What are you listening with?"
        )
    if shots:  # "Loudspeakers" with a headphone check ahead: the page says so before the check would
        page.select_option("select[data-key='headphones']", "speakers")
        assert "This test needs headphones" in page.inner_text(".mushra-note")
    for key, value in ANSWERS.items():
        page.select_option(f"select[data-key='{key}']", value)
    if shots:
        assert page.inner_text(".mushra-note") == ""  # headphones chosen: the note is gone
        assert (
            page.inner_text(".mushra-message") == "" and page.locator(".mushra-missing").count() == 0
        )  # no stale message
        page.screenshot(path=str(shots / "participant_2_questionnaire.png"), full_page=True)
    page.click(".mushra-next")
    page.wait_for_selector("text=Set your volume", timeout=20_000)
    if shots:
        page.click(".mushra-next")
        assert "play the example" in _message(page)
        page.screenshot(path=str(shots / "participant_3_volume.png"), full_page=True)
    page.wait_for_timeout(300)  # the example loads
    page.click(".mushra-play")
    page.wait_for_function("() => document.querySelector('.mushra-play').textContent === 'Pause'")
    if shots:
        assert page.inner_text(".mushra-message") == ""  # pressing Play answered the request above
    page.focus(".mushra-next")  # Space pauses and plays, as on a trial, even where it would press Continue
    page.keyboard.press(" ")
    page.wait_for_function("() => document.querySelector('.mushra-play').textContent === 'Play'")
    assert page.locator("text=Set your volume").count() == 1  # still here
    page.keyboard.press(" ")
    page.wait_for_function("() => document.querySelector('.mushra-play').textContent === 'Pause'")
    page.click(".mushra-next")
    page.wait_for_selector("text=Headphone check", timeout=20_000)
    page.keyboard.press(
        " "
    )  # the volume page's Space is gone with it (a leaked one would play a closed engine)
    _headphone_check(page, context, shots)
    page.wait_for_selector("text=Practice: excerpt 1 of 1", timeout=20_000)
    page.wait_for_function("() => window.mushra && window.mushra.ready()", timeout=20_000)
    # practice sliders (webMUSHRA's training page has them), never sent: unrated until moved or clicked
    assert page.locator(".mushra-slider.unrated").count() == 6 and page.locator(".mushra-legend").count() == 1
    assert re.fullmatch(
        r"The reference is the excerpt's (vocals|drums) alone\.", page.inner_text(".mushra-target")
    )
    if shots:  # a practice page goes on only once everything on it was played
        page.click(".mushra-submit")
        assert "(not played yet: Reference, A, B, C, D, E, F)" in _message(page)
    if shots:
        page.click(".mushra-select[data-key='A']")
        # a click on the middle of an unrated slider, its resting value: no "input" event fires, and it
        # used to leave the slider unrated; it rates 50
        slider = page.locator(".mushra-slider[data-label='A']")
        box = slider.bounding_box()
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        assert page.evaluate("window.mushra.app.view.scores") == {"A": 50}
        assert page.inner_text(".mushra-value >> nth=0") == "50" and "unrated" not in slider.get_attribute(
            "class"
        )
        # another version's unrated slider: a mouse click, or an arrow key on it, selects that version and
        # leaves it unrated (the press that unlocked it must not rate it 50 as it ends)
        b_box = page.locator(".mushra-slider[data-label='B']").bounding_box()
        page.mouse.click(b_box["x"] + b_box["width"] / 2, b_box["y"] + b_box["height"] / 2)
        page.wait_for_function("() => window.mushra.app.view.engine.active === 'B'")
        page.wait_for_timeout(200)
        page.locator(".mushra-slider[data-label='C']").focus()
        page.keyboard.press("ArrowUp")
        page.wait_for_function("() => window.mushra.app.view.engine.active === 'C'")
        page.wait_for_timeout(200)
        assert page.evaluate("window.mushra.app.view.scores") == {"A": 50}
        page.click(".mushra-select[data-key='A']")
        # no listening bars on a practice page: the scale's labels sit level with the sliders all the same
        legend = page.locator(".mushra-legend").bounding_box()
        assert abs(legend["y"] - box["y"]) <= 2 and abs(legend["height"] - box["height"]) <= 2
        page.wait_for_timeout(400)
        page.screenshot(path=str(shots / "participant_4_familiarization.png"), full_page=True)
    _play_everything(page)
    if shots:  # the refusal followed the listening: nothing is left to play, so it is gone
        page.wait_for_function(
            "() => document.querySelector('.mushra-trial .mushra-message').textContent === ''"
        )
    page.click(".mushra-submit")  # "Continue"
    page.wait_for_selector("text=Instructions", timeout=20_000)
    instructions = page.inner_text(".mushra-instructions").lower()
    assert "anchor" not in instructions and "should" not in instructions  # neutral: no expected scores
    page.click(".mushra-next")
    page.wait_for_selector("text=Rate each version against the reference", timeout=20_000)
    page.wait_for_function("() => window.mushra && window.mushra.ready()", timeout=20_000)


def _play_everything(page) -> None:
    """Play the reference, then select each version in turn, as a listener going through a page does."""
    page.click(".mushra-select[data-key='REF']")
    page.wait_for_function("() => window.mushra.listenMs().REF > 0")
    for label in page.evaluate("window.mushra.app.view.labels()"):
        page.click(f".mushra-select[data-key='{label}']")
        page.wait_for_function(f"() => window.mushra.plays()['{label}'] > 0")


def _set_score(page, label: str, score: int) -> None:
    """Select a version (its slider becomes active) and move its slider, as a listener does."""
    page.click(f".mushra-select[data-key='{label}']")
    page.locator(f".mushra-slider[data-label='{label}']").fill(str(score))


def _listen_to_all(page, labels) -> None:
    for label in labels:
        page.click(f".mushra-select[data-key='{label}']")
        page.wait_for_function(
            f"() => window.mushra.listenMs()['{label}'] >= {1000 * MIN_LISTEN_S + 60}", timeout=10_000
        )


def _blue_pixels(page, selector: str) -> int:
    """Pixels of the rated handle's blue (#2f5fb3) in a screenshot of one element."""
    import io

    import numpy as np
    from PIL import Image

    image = np.asarray(Image.open(io.BytesIO(page.locator(selector).screenshot())).convert("RGB")).astype(int)
    return int((np.abs(image - np.array([0x2F, 0x5F, 0xB3])).sum(axis=2) < 40).sum())


def _trial(page) -> tuple[str, str, list[str]]:
    session = page.evaluate("window.mushra.app.session")
    return (
        session["session_id"],
        session["trial"]["trial_id"],
        [c["label"] for c in session["trial"]["conditions"]],
    )


def _csv_rows(context) -> pd.DataFrame:
    return pd.read_csv(context.ratings_csv, keep_default_na=False)


def _login(page, url: str, password: str = PASSWORD) -> None:
    page.goto(url + "/experimenter/login", wait_until="domcontentloaded")
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


# ----------------------------------------------------------------------------------------------- tests
def test_experimenter_views_need_the_password_and_say_when_empty(running_app, browser, shots):
    url, context = running_app
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(url + "/experimenter", wait_until="domcontentloaded")
    assert page.url.endswith("/experimenter/login")  # sent to the login, on loopback too
    page.screenshot(path=str(shots / "experimenter_1_login.png"), full_page=True)
    _login(page, url, "wrong")
    page.wait_for_selector("text=Wrong password", timeout=10_000)
    _login(page, url)
    page.wait_for_selector("text=No ratings yet", timeout=60_000)
    text = page.inner_text("body")
    assert "0 session(s) started" in text and "Friedman" not in text and "/tmp" not in text
    page.screenshot(path=str(shots / "experimenter_2_results_empty.png"), full_page=True)
    page.close()


def test_participant_session_with_every_rule(running_app, browser, shots):
    url, context = running_app
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    errors, missing = [], []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    _start_session(page, url, context, shots)
    assert page.inner_text(".mushra-count") == "Trial 1 of 2"
    assert page.evaluate("() => document.querySelector('.mushra-fill').getBoundingClientRect().width") == 0
    assert "null" not in page.inner_text("body")
    session_id, trial_id, labels = _trial(page)
    assert labels == ["A", "B", "C", "D", "E", "F"]
    truth = context.sessions.resume(session_id).trials[trial_id].labels  # label -> condition (server only)
    hidden = next(label for label, condition in truth.items() if condition == "reference")
    # Sliders start unrated (no thumb, no value), and only the selected version's slider is active.
    assert page.locator(".mushra-slider.unrated").count() == 6
    assert set(page.locator(".mushra-value").all_inner_texts()) == {"–"}
    # ... and look unrated: no handle and no fill drawn anywhere on the slider (the browser's own slider
    # filled its track to the starting value in blue, which looked like a rating of 50)
    assert _blue_pixels(page, ".mushra-slider[data-label='A']") == 0
    assert page.locator(".mushra-clear-loop").evaluate("b => getComputedStyle(b).visibility") == "hidden"
    assert page.locator(".mushra-select.active").count() == 0  # nothing looks selected before anything plays
    page.click(".mushra-select[data-key='A']")
    assert page.locator(".mushra-select.active").all_inner_texts() == ["A"]
    locked = page.evaluate(
        "[...document.querySelectorAll('.mushra-slider')].map(s => s.classList.contains('locked'))"
    )
    assert locked == [False, True, True, True, True, True]
    # a screen reader hears what a locked slider's first key press does
    assert page.get_attribute(".mushra-slider[data-label='A']", "aria-label") == "score A"
    assert (
        page.get_attribute(".mushra-slider[data-label='B']", "aria-label")
        == "score B, select version B to rate it"
    )
    # the page says what the reference is (the trial's target)
    assert re.fullmatch(
        r"The reference is the excerpt's (vocals|drums) alone\.", page.inner_text(".mushra-target")
    )
    assert page.evaluate("window.mushra.app.view.engine.context.sampleRate") == 44100

    # The whole excerpt loops by default: near the end it wraps to the start instead of stopping.
    duration = page.evaluate("window.mushra.app.view.engine.duration")
    page.evaluate(f"window.mushra.app.view.engine.seek({duration - 0.3})")
    page.wait_for_timeout(900)
    assert page.evaluate("window.mushra.app.view.engine.playing")
    assert page.evaluate("window.mushra.app.view.engine.currentTime()") < 1.0
    assert page.inner_text(".mushra-loop-label") == "Looping the whole excerpt"

    # 1. Untouched sliders: refused with a message, nothing written.
    page.click(".mushra-submit")
    assert "Please rate every version" in _message(page)
    # 2. Every slider moved (none at 100) but listened to too briefly.
    for index, label in enumerate(labels):
        _set_score(page, label, 20 + 10 * index)
    page.click(".mushra-submit")
    assert f"at least {MIN_LISTEN_S:g} s" in _message(page)
    page.screenshot(path=str(shots / "participant_6_refused.png"), full_page=True)
    # 3. Heard long enough, but no version at 100.
    _listen_to_all(page, labels)
    page.click(".mushra-submit")
    assert "at least one version 100" in _message(page)
    assert trial_id not in set(_csv_rows(context)["trial_id"])
    # A loop shorter than 0.5 s is refused; a longer one is kept, its bounds shown.
    box = page.locator(".mushra-wavebox").bounding_box()
    y = box["y"] + box["height"] / 2

    def drag(start: float, end: float) -> None:
        page.mouse.move(box["x"] + start * box["width"], y)
        page.mouse.down()
        page.mouse.move(box["x"] + end * box["width"], y, steps=4)
        page.mouse.up()

    drag(0.1, 0.2)  # 0.3 s of the 3-s excerpt
    assert "A loop must be at least 0.5 s" in _message(page)
    assert page.evaluate("() => window.mushra.app.view.engine.loop") is None
    drag(0.1, 0.6)
    loop = page.evaluate("() => window.mushra.app.view.engine.loop")
    assert loop[0] == pytest.approx(0.3, abs=0.05) and loop[1] == pytest.approx(1.8, abs=0.05)
    assert re.fullmatch(r"Loop 0\.\d\d–1\.\d\d s", page.inner_text(".mushra-loop-label"))
    # 4. The hidden reference at 100: accepted.
    _set_score(page, hidden, 100)
    assert page.inner_text(".mushra-trial .mushra-message") == ""  # moving a slider clears the refusal
    assert page.locator(".mushra-clear-loop").evaluate("b => getComputedStyle(b).visibility") == "visible"
    # rated: the handle is drawn (blue while selected); another version's handle stays visible, in grey
    assert _blue_pixels(page, f".mushra-slider[data-label='{hidden}']") > 50
    other = next(label for label in labels if label != hidden)
    assert page.locator(f".mushra-slider[data-label='{other}']").evaluate(
        "s => s.classList.contains('locked')"
    )
    assert (
        page.locator(f".mushra-slider[data-label='{other}']").evaluate("s => getComputedStyle(s).opacity")
        == "1"
    )
    # A click on another version's slider selects that version (it plays from the same moment) and moves
    # nothing; the next move rates it.
    third = next(label for label in labels if label not in (hidden, other))
    before = page.evaluate("window.mushra.app.view.scores")[third]
    box = page.locator(f".mushra-slider[data-label='{third}']").bounding_box()
    page.mouse.click(
        box["x"] + box["width"] / 2, box["y"] + 0.1 * box["height"]
    )  # a move there would rate ~90
    page.wait_for_function(f"() => window.mushra.app.view.engine.active === '{third}'")
    assert page.evaluate("window.mushra.app.view.scores")[third] == before
    page.wait_for_function(
        f"() => !document.querySelector(\".mushra-slider[data-label='{third}']\").classList.contains('locked')"
    )
    # By keyboard: an arrow on another version's slider selects that version and moves nothing, as a click
    # does; the next press rates it, heard.
    before = page.evaluate("window.mushra.app.view.scores")[other]
    page.locator(f".mushra-slider[data-label='{other}']").focus()
    page.keyboard.press("ArrowUp")
    page.wait_for_function(f"() => window.mushra.app.view.engine.active === '{other}'")
    assert page.evaluate("window.mushra.app.view.scores")[other] == before
    page.wait_for_function(
        f"() => !document.querySelector(\".mushra-slider[data-label='{other}']\").classList.contains('locked')"
    )
    page.keyboard.press("ArrowUp")
    assert page.evaluate("window.mushra.app.view.scores")[other] == before + 1
    page.locator(f".mushra-slider[data-label='{other}']").fill("35")
    assert page.evaluate("window.mushra.app.view.scores")[other] == 35
    assert page.locator(f".mushra-slider[data-label='{hidden}']").evaluate(
        "s => s.classList.contains('locked')"
    )
    page.screenshot(path=str(shots / "participant_5_trial.png"), full_page=True)
    page.click(".mushra-submit")
    page.wait_for_selector("text=Trial 2 of 2", timeout=20_000)
    page.wait_for_function("() => window.mushra && window.mushra.ready()", timeout=20_000)

    # A reload in the middle resumes at the trial in progress, nothing to type again, and nothing to do
    # again: the sliders, listening times, plays and comment come back.
    _, second, _ = _trial(page)
    assert second != trial_id
    truth = context.sessions.resume(session_id).trials[second].labels
    _listen_to_all(page, labels)
    for index, label in enumerate(labels):
        _set_score(page, label, 100 if truth[label] == "reference" else 15 + 5 * index)
    page.fill(".mushra-comment", '=HYPERLINK("http://x")')
    before = (page.evaluate("window.mushra.listenMs()"), page.evaluate("window.mushra.plays()"))
    page.wait_for_timeout(1200)  # the draft is saved as things change and every second
    page.reload(wait_until="domcontentloaded")
    page.wait_for_selector("text=Trial 2 of 2", timeout=20_000)
    page.wait_for_function("() => window.mushra && window.mushra.ready()", timeout=20_000)
    assert _trial(page)[1] == second and page.locator(".mushra-start").count() == 0
    assert page.evaluate("() => document.querySelector('.mushra-fill').getBoundingClientRect().width") > 0
    assert page.locator(".mushra-value").all_inner_texts() == [
        "100" if truth[label] == "reference" else str(15 + 5 * index) for index, label in enumerate(labels)
    ]
    restored = page.evaluate("window.mushra.listenMs()")
    assert all(restored[label] >= before[0][label] - 1 for label in labels), (restored, before[0])
    assert page.evaluate("window.mushra.plays()") == before[1]
    assert page.input_value(".mushra-comment") == '=HYPERLINK("http://x")'
    page.click(".mushra-submit")

    page.wait_for_selector("text=Thank you", timeout=20_000)
    code = page.inner_text(".mushra-code")
    assert re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}", code)
    assert "Trial" not in page.inner_text("body")
    page.screenshot(path=str(shots / "participant_7_finish.png"), full_page=True)
    page.reload(wait_until="domcontentloaded")  # the finished session stays finished
    page.wait_for_selector("text=Thank you", timeout=20_000)

    rows = _csv_rows(context)
    rows = rows[rows["session_uuid"] == session_id]
    assert len(rows) == 12 and set(rows["trial_id"]) == {trial_id, second}
    # what the server measured: every file sent (at least once; the reload sent the second trial's again),
    # and the rating time by its own clock, beside the page's
    assert (rows["n_fetches"] >= 1).all() and (rows[rows["trial_id"] == second]["n_fetches"] == 2).all()
    assert (rows["rating_time"] > 0).all() and (rows["page_time_ms"] > 0).all()
    first_rows = rows[rows["trial_id"] == trial_id].set_index("screen_label")["rating_score"]
    assert first_rows.to_dict() == {  # ``other`` last rated by touching its slider while another was selected
        label: 100.0 if label == hidden else 35.0 if label == other else 20.0 + 10 * i
        for i, label in enumerate(labels)
    }
    assert set(rows[rows["trial_id"] == second]["rating_comment"]) == {'\'=HYPERLINK("http://x")'}
    table = context.sessions.sessions_table().set_index("session_id").loc[session_id]
    assert (table["age"], table["experience"], table["headphones"]) == tuple(ANSWERS.values())
    assert (table["step"], table["completion_code"]) == ("finished", code)
    assert table["headphone_check"] == "6/6 passed"
    assert errors == [] and missing == []  # no 404: the favicon is there
    page.close()


#: hash functions a curious participant tries on the public inputs
HASHES = (hashlib.md5, hashlib.sha1, hashlib.sha256)


def _public_guesses(public: list[str], conditions) -> dict[str, str]:
    """Every hex digest of '/'-, ':'- or ''-joined public inputs ending in a condition name -> the name."""
    guesses = {}
    for condition in conditions:
        for size in range(0, 4):
            for parts in itertools.permutations(public, size):
                for separator in ("/", ":", ""):
                    text = separator.join([*parts, condition]).encode()
                    for digest in HASHES:
                        guesses[digest(text).hexdigest()] = condition
    return guesses


def test_curious_participant_learns_nothing(running_app, browser, shots):
    from listening_study.design.study import study_hash

    url, context = running_app
    study = context.study
    secret_names = [*study.system_names, *study.anchors]  # what must never reach a participant
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    bodies = []
    page.on("response", lambda r: bodies.append(r) if "/mushra/api/" in r.url else None)
    _start_session(page, url, context)
    session_id, trial_id, labels = _trial(page)
    session = page.evaluate("window.mushra.app.session")
    trial = session["trial"]
    urls = {"REF": trial["reference_url"], **{c["label"]: c["url"] for c in trial["conditions"]}}
    tokens = {label: link.rsplit("/", 1)[1] for label, link in urls.items()}

    # 1. Ids recomputed from every public input (study hash and id, session id, trial id, page, label).
    public = [study_hash(study), study.study_id, session_id, trial_id, "trial", *labels, "REF"]
    guesses = _public_guesses(public[:5], study.conditions)
    for token in tokens.values():
        assert not any(guess.startswith(token) or token.startswith(guess[:16]) for guess in guesses)
    server_ids = {path.stem for path in Path(context.stimuli.root).rglob("*.wav")}
    assert not set(tokens.values()) & server_ids  # the page never sees a stimulus id
    with httpx.Client(base_url=url, timeout=30) as client:
        for guess in list(guesses)[:200]:  # guessed tokens of this session: none is served
            assert client.get(f"/mushra/audio/{session_id}/{guess[:32]}").status_code == 404
        # Another session: other tokens for the same trials and labels.
        other = client.post("/mushra/api/start", json={"consent": True}).json()
        other_id = other["session_id"]
        other = client.post(
            "/mushra/api/questionnaire", json={"session_id": other_id, "answers": ANSWERS}
        ).json()
        for link in step_audio_urls(other):
            assert client.get(link).status_code == 200
        other = client.post("/mushra/api/step", json={"session_id": other_id, "step": "volume"}).json()
        for sound in other["headphones"]["trials"]:
            assert client.get(sound["url"]).status_code == 200
        right = [t.quiet for t in context.sessions.headphone_design(context.sessions.resume(other_id))]
        other = client.post("/mushra/api/headphones", json={"session_id": other_id, "answers": right}).json()
        for step in ("familiarization", "instructions"):
            for link in step_audio_urls(other):
                assert client.get(link).status_code == 200
            other = client.post("/mushra/api/step", json={"session_id": other_id, "step": step}).json()
        other_links = [other["trial"]["reference_url"], *(c["url"] for c in other["trial"]["conditions"])]
        assert other["step"] == "trial" and other_id != session_id
        assert not {link.rsplit("/", 1)[1] for link in other_links} & set(tokens.values())
        # A token of one session does not open anything in another.
        assert client.get(f"/mushra/audio/{other_id}/{tokens['A']}").status_code == 404

    # 2. Headers and bytes: every file of the trial looks the same from outside; the hidden reference is
    # not the open reference byte for byte.
    responses = {label: page.request.get(url + link) for label, link in urls.items()}
    contents = {label: response.body() for label, response in responses.items()}
    header_sets = set()
    for response in responses.values():
        headers = {k.lower(): v for k, v in response.headers.items()}
        assert response.status == 200 and "etag" not in headers and "last-modified" not in headers
        assert headers["cache-control"] == "no-store"
        header_sets.add(tuple(sorted((k, v) for k, v in headers.items() if k != "date")))
    assert len(header_sets) == 1  # identical headers, Content-Length included
    assert len({len(body) for body in contents.values()}) == 1
    assert (
        len({body[:44] for body in contents.values()}) == 1 and contents["A"][:4] == b"RIFF"
    )  # one WAV header
    # The browser decodes to exactly this session's copy of the WAV the analysis reads (within 1 LSB of it).
    import hashlib as _hashlib

    import numpy as np
    import soundfile as sf

    from listening_study.delivery.wav import session_pcm

    stimulus_of = context.sessions.resume(session_id).trials[trial_id].stimuli
    for label in ("A", "REF"):
        digest = page.evaluate(
            """async (link) => {
                const bytes = await (await fetch(link)).arrayBuffer();
                const decoded = await new OfflineAudioContext(2, 44100, 44100).decodeAudioData(bytes);
                const pcm = new Int16Array(decoded.length * 2);
                for (let c = 0; c < 2; c++) {
                    const data = decoded.getChannelData(c);
                    // Chromium's 16-bit to float: positive samples / 32767, negative / 32768 (WAV alike)
                    for (let i = 0; i < data.length; i++) {
                        pcm[c * data.length + i] = Math.round(data[i] * (data[i] > 0 ? 32767 : 32768));
                    }
                }
                const hash = await crypto.subtle.digest("SHA-256", pcm.buffer);
                return [...new Uint8Array(hash)].map((b) => b.toString(16).padStart(2, "0")).join("");
            }""",
            urls[label],
        )
        stimulus = (
            context.sessions.resume(session_id).trials[trial_id].reference
            if label == "REF"
            else stimulus_of[label]
        )
        wav, _ = sf.read(context.stimuli.path(stimulus), dtype="int16")
        seed = context.sessions.delivery_seed(session_id, "trial", trial_id, label)
        expected = session_pcm(np.ascontiguousarray(wav.T), seed)
        assert digest == _hashlib.sha256(np.ascontiguousarray(expected).tobytes()).hexdigest(), label
    assert len(set(contents.values())) == len(contents)  # no two files alike, hidden reference included
    truth = context.sessions.resume(session_id).trials[trial_id].labels
    hidden = next(label for label, condition in truth.items() if condition == "reference")
    assert contents[hidden] != contents["REF"]

    # 3. Nothing the participant's page or API says names a condition (text, attributes, URLs, JSON).
    page_text = page.content() + "".join(
        page.request.get(f"{url}/mushra/static/{name}").text()
        for name in ("mushra.js", "mushra-trial.js", "mushra-audio.js")
    )
    api_text = " ".join(r.text() for r in bodies if r.ok)
    for name in secret_names:
        assert name not in page_text.lower() and name not in api_text, name
    for server_id in server_ids:
        assert server_id not in api_text

    # 4. The experimenter's views without the password: the login, 401 or 404, never their content.
    with httpx.Client(base_url=url, timeout=30, follow_redirects=False) as client:
        assert client.get("/experimenter/").headers["location"] == "/experimenter/login"
        for path in ("/experimenter/config", "/experimenter/gradio_api/info", "/experimenter/theme.css",
                     f"/experimenter/gradio_api/file={context.ratings_csv}"):  # fmt: skip
            assert client.get(path).status_code == 401, path
        assert client.post("/experimenter/gradio_api/queue/join", json={}).status_code == 401
        for path in ("/config", "/gradio_api/info", "/docs", "/openapi.json", "/results",
                     f"/gradio_api/file={next(Path(context.stimuli.root).rglob('trial.json'))}"):  # fmt: skip
            assert client.get(path).status_code == 404, path
        forged = {"mss_experimenter": "9999999999.0000"}
        assert client.get("/experimenter/config", cookies=forged).status_code == 401
        # Hostile bodies: bounded, and refused with a sentence naming the field.
        huge = client.post("/mushra/api/submit", content=b"{" + b" " * 40_000 + b"}",
                           headers={"content-type": "application/json"})  # fmt: skip
        assert huge.status_code == 413 and "too large" in huge.json()["detail"]
        bad = client.post("/mushra/api/submit", json={"session_id": session_id, "trial_id": trial_id,
                          "scores": dict.fromkeys(labels, True), "plays": dict.fromkeys(labels, 1),
                          "listen_ms": dict.fromkeys(labels, 5000)})  # fmt: skip
        assert bad.status_code == 400 and "rating of A must be a finite number" in bad.json()["detail"]
        malformed = client.post("/mushra/api/submit", json={"session_id": session_id})
        assert malformed.status_code == 422 and "trial_id" in malformed.json()["detail"]
    page.close()


def test_failed_headphone_check_ends_the_test_with_a_code(running_app, browser, shots):
    """A participant whose check does not confirm headphones is told so, thanked and given a code at
    once, instead of rating every trial to be left out of the analysis; the start page said so."""
    url, context = running_app
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_selector(".mushra-start", timeout=30_000)
    assert "the test ends there, with a completion code" in page.inner_text("body")
    page.check(".mushra-consent")
    page.click(".mushra-start")
    page.wait_for_selector("text=A few questions", timeout=20_000)
    for key, value in ANSWERS.items():
        page.select_option(f"select[data-key='{key}']", value)
    page.click(".mushra-next")
    page.wait_for_selector("text=Set your volume", timeout=20_000)
    page.wait_for_timeout(300)
    page.click(".mushra-play")
    page.click(".mushra-next")
    page.wait_for_selector("text=Headphone check", timeout=20_000)
    assert "the test ends after it" in page.inner_text(".mushra-hp-instructions")
    _headphone_check(page, context, None, wrong=True)
    page.wait_for_selector("text=did not confirm that you are listening over headphones", timeout=20_000)
    code = page.inner_text(".mushra-code")
    session_id = page.evaluate("window.mushra.app.session.session_id")
    session = context.sessions.resume(session_id)
    assert context.sessions.step(session) == "screened_out" and code == context.sessions.completion_code(
        session
    )
    page.screenshot(path=str(shots / "participant_3c_screened_out.png"), full_page=True)
    page.reload(wait_until="domcontentloaded")  # it stays ended
    page.wait_for_selector("text=did not confirm", timeout=20_000)
    page.close()


def test_experimenter_results_beside_sdr(running_app, browser, shots):
    url, context = running_app
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    missing = []
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    _login(page, url)
    page.wait_for_selector("text=rating rows", timeout=60_000)
    page.wait_for_selector("text=Kendall tau", timeout=30_000)
    # nothing here is shared with Hugging Face: no Gradio "share" button on the confidential views
    assert page.locator("button[aria-label='Share'], button[title='Share']").count() == 0
    text = page.inner_text("body")
    assert "Significance not reported" in text  # one participant
    # which objective metric predicts the listeners: named in the headline, the table in the report
    assert "The metric that best predicts these listeners" in text
    assert "Which objective metric predicts these listeners?" in text and "MRSTFT" in text
    assert "The low-pass anchors by cutoff" in text  # each anchor's cutoff, from the stimuli's trial.json
    # boxplots and the SDR scatter, both loaded
    page.wait_for_function(
        "() => [...document.querySelectorAll('img')].filter(i => i.complete && i.naturalWidth > 0).length >= 2",
        timeout=30_000,
    )
    page.wait_for_timeout(500)
    page.screenshot(path=str(shots / "experimenter_3_results.png"), full_page=True)
    # the sessions, loaded with the page (no button to press), headers in words
    page.get_by_role("tab", name="Sessions").click()
    visible = "(text) => [...document.querySelectorAll('td, th, span, div')].some(e => e.offsetParent && e.children.length == 0 && e.textContent.trim() == text)"
    page.wait_for_function(visible, arg="6/6 passed", timeout=30_000)
    assert page.evaluate(visible, "Headphone check") and page.evaluate(visible, "Code's sessions")
    # every session on the page, none hidden in an inner scroll box, no word broken mid-word
    for _ in range(12):  # more sessions than the table used to show without scrolling (6)
        context.sessions.start(consent=True)
    page.get_by_role("button", name="Refresh sessions").click()
    n_sessions = len(context.sessions.sessions_table())
    page.wait_for_function(
        "(n) => document.querySelectorAll('.mss-sessions .virtual-row').length >= n",
        arg=n_sessions,
        timeout=20_000,
    )
    rows = page.evaluate(
        "() => [...document.querySelectorAll('.mss-sessions .virtual-row')].filter(r => r.offsetParent).length"
    )
    assert rows == n_sessions, (rows, n_sessions)
    scrolls = page.evaluate(
        "() => [...document.querySelectorAll('.mss-sessions *')].some(e => e.scrollHeight > e.clientHeight + 2 && ['auto', 'scroll'].includes(getComputedStyle(e).overflowY))"
    )
    assert not scrolls
    breaks = page.evaluate(
        "() => [...document.querySelectorAll('.mss-sessions span')].map(e => getComputedStyle(e).wordBreak + '/' + getComputedStyle(e).overflowWrap)"
    )
    assert breaks and set(breaks) == {"normal/normal"}, set(breaks)
    page.screenshot(path=str(shots / "experimenter_5_sessions.png"), full_page=True)
    page.get_by_role("tab", name="Spectrogram browser").click()
    page.get_by_role("button", name="Show").click()
    page.wait_for_selector("text=SDR (dB)", timeout=120_000)
    page.wait_for_timeout(1500)
    page.screenshot(path=str(shots / "experimenter_4_spectrograms.png"), full_page=True)
    assert all(name in page.inner_text("body") for name in context.study.system_names)
    assert page.locator("button[aria-label='Share'], button[title='Share']").count() == 0
    # logging out revokes the cookie: a copy of it no longer opens anything
    cookie = next(c for c in page.context.cookies() if c["name"] == "mss_experimenter")
    page.goto(url + "/experimenter/logout", wait_until="domcontentloaded")
    with httpx.Client(base_url=url, timeout=30) as client:
        assert (
            client.get("/experimenter/config", cookies={cookie["name"]: cookie["value"]}).status_code == 401
        )
    assert missing == [], missing  # no 404 (the favicon used to be one on every page)
    page.close()


def test_a_laptop_window_shows_the_scores_above_the_submit_bar(running_app, browser, shots):
    """On a 1366 x 660 window the sliders are shorter, so that the scores under them clear the Submit bar stuck
    to the bottom of the window; the scale stays level with the sliders."""
    url, context = running_app
    page = browser.new_page(viewport={"width": 1366, "height": 660})
    _start_session(page, url, context)
    page.evaluate("window.scrollTo(0, 0)")
    slider = page.locator(".mushra-slider[data-label='A']").bounding_box()
    legend = page.locator(".mushra-legend").bounding_box()
    assert (
        slider["height"] == 160 and abs(legend["y"] - slider["y"]) <= 2 and abs(legend["height"] - 160) <= 2
    )
    scores = page.locator(".mushra-value").first.bounding_box()
    submit = page.locator(".mushra-trial .mushra-actions").bounding_box()
    assert scores["y"] + scores["height"] <= submit["y"] and submit["y"] + submit["height"] <= 660
    page.screenshot(path=str(shots / "participant_5b_laptop.png"))  # as a 1366 x 660 laptop shows it
    page.close()


def test_phone_width_keeps_one_row_of_sliders_beside_the_scale(running_app, browser, shots):
    """At a phone's width (390 px) the sliders stay in one row, level with the Bad-Excellent scale beside
    the first of them (they used to wrap into two rows, the second without a scale), all on screen."""
    url, context = running_app
    page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    _start_session(page, url, context)
    sliders = [
        page.locator(".mushra-slider").nth(i).bounding_box()
        for i in range(page.locator(".mushra-slider").count())
    ]
    legend = page.locator(".mushra-legend").bounding_box()
    assert len(sliders) == 6 and len({round(box["y"]) for box in sliders}) == 1  # one row
    assert legend["x"] + legend["width"] <= sliders[0]["x"] + 1  # the scale stands beside the first slider
    assert abs(legend["y"] - sliders[0]["y"]) < 15 and abs(legend["height"] - sliders[0]["height"]) < 15
    assert max(box["x"] + box["width"] for box in sliders) <= 390  # no sideways scrolling needed
    _set_score(page, "B", 70)
    # touch: a finger dragged sideways over the waveform loops that passage (as the hint says); no
    # keyboard shortcuts are offered on a touch screen
    assert not page.locator(".mushra-keys").is_visible() and "Tap or click" in page.inner_text(".mushra-hint")
    box = page.locator(".mushra-wavebox").bounding_box()
    y = box["y"] + box["height"] / 2
    cdp = page.context.new_cdp_session(page)
    for kind, fraction in (("touchStart", 0.2), ("touchMove", 0.4), ("touchMove", 0.6), ("touchEnd", 0.6)):
        points = [] if kind == "touchEnd" else [{"x": box["x"] + fraction * box["width"], "y": y}]
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})
    loop = page.evaluate("() => window.mushra.app.view.engine.loop")
    duration = page.evaluate("window.mushra.app.view.engine.duration")
    assert loop == [pytest.approx(0.2 * duration, abs=0.05), pytest.approx(0.6 * duration, abs=0.05)]
    # the screen as the phone shows it (a full-page screenshot drops the touch emulation, key hint and all)
    page.evaluate("window.scrollTo(0, 0)")
    # Submit is on screen without scrolling: it sticks to the bottom of the window
    submit = page.locator(".mushra-submit").bounding_box()
    assert submit["y"] >= 0 and submit["y"] + submit["height"] <= 844
    page.screenshot(path=str(shots / "participant_8_phone.png"))
    assert not errors


def test_loading_shows_progress_and_the_next_trial_is_fetched_ahead(running_app, browser, shots):
    """At 10 Mbit/s: a trial's page says how much audio has loaded, and the next trial's files come while
    the current one is rated, so it is usable at once after a submission."""
    url, context = running_app
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 20,
             "downloadThroughput": 10e6 / 8, "uploadThroughput": 10e6 / 8})  # fmt: skip
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_selector(".mushra-start", timeout=30_000)
    # straight to the first trial through the API (the steps are tested above), then a reload shows it
    session_id = page.evaluate("""async (answers) => {
        const post = async (path, body) => (await fetch("/mushra/api/" + path, {method: "POST",
            headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)})).json();
        let s = await post("start", {consent: true});
        localStorage.setItem("mss-mushra-session", s.session_id);
        s = await post("questionnaire", {session_id: s.session_id, answers: answers});
        return s.session_id;
    }""", ANSWERS)  # fmt: skip
    store = context.sessions
    session = store.resume(session_id)
    store.serve_audio(session_id, store.audio_token(session, "volume", session.volume_trial, "REF"))
    store.complete_step(session_id, "volume")
    right = [t.quiet for t in store.headphone_design(session)]
    for t in store.headphone_design(session):
        store.serve_audio(session_id, store.audio_token(session, "headphones", str(t.index), "HP"))
    store.answer_headphones(session_id, right)
    session = store.resume(session_id)
    for index, fam in enumerate(session.familiarization):
        for label in ["REF", *fam.screen_labels]:
            store.serve_audio(session_id, store.audio_token(session, f"fam{index}", fam.trial_id, label))
    store.complete_step(session_id, "familiarization")
    store.complete_step(session_id, "instructions")
    page.reload(wait_until="domcontentloaded")
    page.wait_for_selector(".mushra-loading", timeout=20_000)
    page.wait_for_selector("text=/Loading audio: [0-9.]+ of [0-9.]+ MB/", timeout=20_000)
    page.screenshot(path=str(shots / "participant_9_loading.png"), full_page=True)
    started = page.evaluate("performance.now()")
    page.wait_for_function("() => window.mushra && window.mushra.ready()", timeout=30_000)
    first_ms = page.evaluate("performance.now()") - started
    _, trial_id, labels = _trial(page)
    truth = store.resume(session_id).trials[trial_id].labels
    _listen_to_all(page, labels)
    for index, label in enumerate(labels):
        _set_score(page, label, 100 if truth[label] == "reference" else 10 + index)
    page.wait_for_timeout(4000)  # rating takes a while: the next trial's files arrive meanwhile
    page.click(".mushra-submit")
    page.wait_for_selector("text=Trial 2 of 2", timeout=20_000)
    started = page.evaluate("performance.now()")
    page.wait_for_function("() => window.mushra && window.mushra.ready()", timeout=30_000)
    second_ms = page.evaluate("performance.now()") - started
    trial_bytes = sum(len(store.serve_audio(session_id, store.audio_token(store.resume(session_id), "trial", trial_id, key)))
                      for key in ["REF", *labels])  # fmt: skip
    assert trial_bytes / (10e6 / 8) > 2.0  # a few MB: seconds at 10 Mbit/s, had it not been fetched ahead
    assert second_ms < 1000, (first_ms, second_ms)
    page.close()
