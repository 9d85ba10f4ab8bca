"""The app in headless Chromium: a blind MUSHRA trial end to end, the spectrogram browser, the results tab.

Starts app.py's FastAPI+Gradio app on a free loopback port in a thread, on a one-trial study built on the
``tiny_dataset`` fixture with tiny random-weight checkpoints, and drives it with Playwright.
Screenshots go to /work/notes/ (or $MSS_SCREENSHOT_DIR).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd
import pytest
from helpers import load_app_module, make_tiny_checkpoints

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

REPO_ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required",
]  # fmt: skip
#: screenshots of the pages for a person to look at; by default beside the test's temp files
SCREENSHOTS = Path(os.environ["MSS_SCREENSHOT_DIR"]) if os.environ.get("MSS_SCREENSHOT_DIR") else None
PASSWORD = "letmein-42"


@pytest.fixture(scope="module")
def screenshot_dir(tmp_path_factory) -> Path:
    """Where the page screenshots go: $MSS_SCREENSHOT_DIR when set (to look at them), else a temp folder."""
    folder = SCREENSHOTS or tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def running_app(tiny_dataset, tmp_path_factory):
    app_module = load_app_module()
    folder = tmp_path_factory.mktemp("app")
    checkpoints = make_tiny_checkpoints(folder)
    config = app_module.AppConfig(
        dataset=str(tiny_dataset), study_dir=folder / "study", checkpoints=tuple(checkpoints.items()),
        eval_dir=folder / "no-eval", password=PASSWORD, n_songs=1, targets=("vocals",),
    )  # fmt: skip
    context = app_module.load_study_context(config)
    assert context.error is None, context.error
    with app_module.BackgroundServer(app_module.build_app(config, context)) as url:
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


FORBIDDEN_SCAN = """(names) => {
    const root = document.querySelector('#mushra-root');
    const found = [];
    const text = document.body.innerText.toLowerCase();
    const attributes = [];
    for (const node of root.querySelectorAll('*')) {
        for (const attribute of node.attributes) attributes.push(attribute.value.toLowerCase());
    }
    const urls = performance.getEntriesByType('resource').map((entry) => entry.name.toLowerCase());
    for (const name of names) {
        if (text.includes(name)) found.push('visible text: ' + name);
        if (attributes.some((value) => value.includes(name))) found.push('attribute: ' + name);
        if (urls.some((value) => value.includes(name))) found.push('url: ' + name);
    }
    return found;
}"""


def test_blind_mushra_trial_in_chromium(running_app, browser, screenshot_dir):
    url, context = running_app
    study = context.study
    hidden_names = [*study.system_names, *study.anchors]  # true names that must never reach the page
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_selector("#mushra-root .mushra-start", timeout=30_000)

    page.fill(".mushra-participant", "P07")
    page.click(".mushra-start")
    page.wait_for_selector("text=This practice page is not recorded", timeout=20_000)
    page.wait_for_function("window.mushra.ready()", timeout=20_000)
    assert page.evaluate(FORBIDDEN_SCAN, hidden_names) == []
    page.click(".mushra-submit")  # "Start the test" on the training page

    page.wait_for_selector("text=Rate each version against the reference", timeout=20_000)
    page.wait_for_function("window.mushra.ready()", timeout=20_000)
    session_id = page.evaluate("window.mushra.app.session.session_id")
    trial_id = page.evaluate("window.mushra.app.session.trial.trial_id")
    labels = page.evaluate("window.mushra.app.session.trial.conditions.map(c => c.label)")
    assert labels == [chr(ord("A") + i) for i in range(len(study.conditions))]

    # Submitting before every condition was played is refused in the page, nothing is written.
    page.click(".mushra-submit")
    assert "not yet played" in page.inner_text(".mushra-trial .mushra-message")
    assert trial_id not in set(pd.read_csv(context.ratings_csv)["trial_id"])

    # Play A with the keyboard, then switch: the Web Audio position keeps running and never resets.
    page.keyboard.press("1")
    page.wait_for_function("window.mushra.playing() && window.mushra.currentTime() > 0.3", timeout=10_000)
    before = page.evaluate("window.mushra.currentTime()")
    page.click(".mushra-select[data-key='B']")
    after = page.evaluate("window.mushra.currentTime()")
    assert page.evaluate("window.mushra.active()") == "B"
    assert after >= before > 0.3
    previous = after
    for label in labels[2:]:
        page.keyboard.press(label.lower())  # letter shortcuts
        now = page.evaluate("window.mushra.currentTime()")
        assert page.evaluate("window.mushra.active()") == label
        assert now >= previous, f"switching to {label} moved the position back ({now} < {previous})"
        previous = now
    page.keyboard.press("r")
    assert page.evaluate("window.mushra.active()") == "REF"
    time.sleep(0.3)
    assert page.evaluate("window.mushra.currentTime()") > previous
    plays = page.evaluate("window.mushra.plays()")
    assert all(plays[label] >= 1 for label in labels), plays

    # A loop region dragged on the waveform keeps the position inside it.
    box = page.locator(".mushra-wavebox").bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + 0.1 * box["width"], y)
    page.mouse.down()
    page.mouse.move(box["x"] + 0.4 * box["width"], y, steps=5)
    page.mouse.up()
    loop = page.evaluate("window.mushra.app.view.engine.loop")
    duration = page.evaluate("window.mushra.app.view.engine.duration")
    assert loop is not None and abs(loop[0] - 0.1 * duration) < 0.1 and abs(loop[1] - 0.4 * duration) < 0.1
    time.sleep(0.2)
    position = page.evaluate("window.mushra.currentTime()")
    assert loop[0] - 0.01 <= position <= loop[1] + 0.01
    assert page.evaluate(FORBIDDEN_SCAN, hidden_names) == []

    # Move every slider to a distinct score; the hidden reference (known to the server only) gets 100 so
    # that this participant passes the BS.1534-3 post-screening and the Results tab has data to plot.
    truth = context.sessions.resume(session_id).trials[trial_id].labels  # label -> true condition
    wanted = {
        label: 100 if truth[label] == "reference" else 10 + 7 * index for index, label in enumerate(labels)
    }
    for label, score in wanted.items():
        page.evaluate(
            """([label, score]) => {
                const slider = document.querySelector(`.mushra-slider[data-label='${label}']`);
                slider.value = String(score);
                slider.dispatchEvent(new Event('input', {bubbles: true}));
            }""",
            [label, score],
        )
    page.fill(".mushra-comment", "bass too loud")
    page.screenshot(path=str(screenshot_dir / "app_trial.png"), full_page=True)
    page.click(".mushra-submit")
    page.wait_for_selector("text=All trials are done", timeout=20_000)

    rows = pd.read_csv(context.ratings_csv)
    rows = rows[(rows["session_uuid"] == session_id) & (rows["trial_id"] == trial_id)]
    assert len(rows) == len(labels)
    assert sorted(rows["screen_label"]) == labels
    assert sorted(rows["rating_stimulus"]) == sorted(study.conditions)
    assert dict(zip(rows["screen_label"], rows["rating_score"], strict=True)) == pytest.approx(wanted)
    assert set(rows["participant_id"]) == {"P07"} and set(rows["mode"]) == {"mushra"}
    assert (rows["n_plays"] >= 1).all() and set(rows["rating_comment"]) == {"bass too loud"}
    assert errors == []
    page.close()


def test_spectrogram_and_results_tabs(running_app, browser, screenshot_dir):
    url, context = running_app
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(url, wait_until="domcontentloaded")
    page.get_by_role("tab", name="Spectrogram browser").click()
    page.get_by_role("button", name="Show").click()
    page.wait_for_selector("text=SDR (dB)", timeout=90_000)
    page.wait_for_selector("img, svg.main-svg, canvas", timeout=30_000)
    time.sleep(1.0)
    page.screenshot(path=str(screenshot_dir / "app_spectrogram.png"), full_page=True)
    sdr_text = page.inner_text("body")
    for name in context.study.system_names:
        assert name in sdr_text

    page.get_by_role("tab", name="Results").click()
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Show results").click()
    page.wait_for_selector("text=Wrong password", timeout=20_000)
    assert page.locator("text=Ratings CSV").count() == 0
    page.reload(wait_until="domcontentloaded")
    page.get_by_role("tab", name="Results").click()
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Show results").click()
    page.wait_for_selector("text=Ratings CSV", timeout=60_000)
    page.wait_for_selector("text=Scores per condition", timeout=10_000)
    time.sleep(1.5)
    page.screenshot(path=str(screenshot_dir / "app_results.png"), full_page=True)
    page.close()
