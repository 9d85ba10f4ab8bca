"""The browser side of the app's tests (test_app*.py): Chromium's path and flags, the study's settings, and a
participant's and an experimenter's steps through the pages, as a person takes them. The fixtures that serve
the app and start the browser (``running_app``, ``browser``, ``shots``) are in conftest."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required",
]  # fmt: skip
SCREENSHOTS = Path(os.environ["MSS_SCREENSHOT_DIR"]) if os.environ.get("MSS_SCREENSHOT_DIR") else None
PASSWORD = "letmein-42"
MIN_LISTEN_S = 0.3
ANSWERS = {"age": "25-34", "experience": "some", "headphones": "closed"}


def message_text(page) -> str:
    page.wait_for_function(
        "() => [...document.querySelectorAll('.mushra-message')].some(m => m.textContent.trim() "
        "&& m.textContent !== 'Saving...' && m.textContent !== 'Please wait...')",
        timeout=10_000,
    )
    return " ".join(page.locator(".mushra-message").all_inner_texts())


def headphone_check(page, context, shots: Path | None, wrong: bool = False) -> None:
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


def start_session(page, url: str, context, shots: Path | None = None) -> None:
    """Consent, questionnaire, volume, headphone check, familiarization, instructions: up to the first
    graded trial. With ``shots``, also checks what each page refuses and takes its screenshot."""
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_selector(".mushra-start", timeout=30_000)
    if shots:
        page.screenshot(path=str(shots / "participant_1_consent.png"), full_page=True)
        assert "This study is run by the research team" in page.inner_text(".mushra-contact")
        page.click(".mushra-start")
        assert "agree to take part" in message_text(page)
    page.check(".mushra-consent")
    page.click(".mushra-start")
    page.wait_for_selector("text=A few questions", timeout=20_000)
    if shots:  # every unanswered question named at once, and marked
        page.click(".mushra-next")
        assert message_text(page) == (
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
        assert "play the example" in message_text(page)
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
    headphone_check(page, context, shots)
    page.wait_for_selector("text=Practice: excerpt 1 of 1", timeout=20_000)
    page.wait_for_function("() => window.mushra && window.mushra.ready()", timeout=20_000)
    # practice sliders (webMUSHRA's training page has them), never sent: unrated until moved or clicked
    assert page.locator(".mushra-slider.unrated").count() == 6 and page.locator(".mushra-legend").count() == 1
    assert re.fullmatch(
        r"The reference is the excerpt's (vocals|drums) alone\.", page.inner_text(".mushra-target")
    )
    if shots:  # a practice page goes on only once everything on it was played
        page.click(".mushra-submit")
        assert "(not played yet: Reference, A, B, C, D, E, F)" in message_text(page)
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
    play_everything(page)
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


def play_everything(page) -> None:
    """Play the reference, then select each version in turn, as a listener going through a page does."""
    page.click(".mushra-select[data-key='REF']")
    page.wait_for_function("() => window.mushra.listenMs().REF > 0")
    for label in page.evaluate("window.mushra.app.view.labels()"):
        page.click(f".mushra-select[data-key='{label}']")
        page.wait_for_function(f"() => window.mushra.plays()['{label}'] > 0")


def set_score(page, label: str, score: int) -> None:
    """Select a version (its slider becomes active) and move its slider, as a listener does."""
    page.click(f".mushra-select[data-key='{label}']")
    page.locator(f".mushra-slider[data-label='{label}']").fill(str(score))


def listen_to_all(page, labels) -> None:
    for label in labels:
        page.click(f".mushra-select[data-key='{label}']")
        page.wait_for_function(
            f"() => window.mushra.listenMs()['{label}'] >= {1000 * MIN_LISTEN_S + 60}", timeout=10_000
        )


def blue_pixels(page, selector: str) -> int:
    """Pixels of the rated handle's blue (#2f5fb3) in a screenshot of one element."""
    import io

    import numpy as np
    from PIL import Image

    image = np.asarray(Image.open(io.BytesIO(page.locator(selector).screenshot())).convert("RGB")).astype(int)
    return int((np.abs(image - np.array([0x2F, 0x5F, 0xB3])).sum(axis=2) < 40).sum())


def current_trial(page) -> tuple[str, str, list[str]]:
    session = page.evaluate("window.mushra.app.session")
    return (
        session["session_id"],
        session["trial"]["trial_id"],
        [c["label"] for c in session["trial"]["conditions"]],
    )


def csv_rows(context) -> pd.DataFrame:
    return pd.read_csv(context.ratings_csv, keep_default_na=False)


def login(page, url: str, password: str = PASSWORD) -> None:
    page.goto(url + "/experimenter/login", wait_until="domcontentloaded")
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
