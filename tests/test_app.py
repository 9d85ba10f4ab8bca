"""The app in headless Chromium: a whole participant session with every rating rule, a failed headphone check,
and the experimenter's views behind their password, empty and then beside the SDR.

One app (app.py's build_app, FastAPI + Gradio, in a thread on a free loopback port) serves a tiny study
for the whole module (``running_app`` in conftest): one song of the ``tiny_dataset`` fixture, two targets (two
graded trials), 3-s excerpts, six conditions (two tiny random-weight systems, the hidden reference, three
anchors), one familiarization page and a minimum listening time of MIN_LISTEN_S per condition. The tests run in
file order: the experimenter's empty state is looked at before anybody has rated anything. The curious
participant is in test_app_curious.py, the window sizes and slow networks in test_app_layout.py.
Screenshots go to $MSS_SCREENSHOT_DIR when it is set (else a temp folder).
"""

from __future__ import annotations

import re

import httpx
import pytest
from app_browser import (
    ANSWERS,
    MIN_LISTEN_S,
    blue_pixels,
    csv_rows,
    current_trial,
    headphone_check,
    listen_to_all,
    login,
    message_text,
    set_score,
    start_session,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]


def test_experimenter_views_need_the_password_and_say_when_empty(running_app, browser, shots):
    url, context = running_app
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(url + "/experimenter", wait_until="domcontentloaded")
    assert page.url.endswith("/experimenter/login")  # sent to the login, on loopback too
    page.screenshot(path=str(shots / "experimenter_1_login.png"), full_page=True)
    login(page, url, "wrong")
    page.wait_for_selector("text=Wrong password", timeout=10_000)
    login(page, url)
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
    start_session(page, url, context, shots)
    assert page.inner_text(".mushra-count") == "Trial 1 of 2"
    assert page.evaluate("() => document.querySelector('.mushra-fill').getBoundingClientRect().width") == 0
    assert "null" not in page.inner_text("body")
    session_id, trial_id, labels = current_trial(page)
    assert labels == ["A", "B", "C", "D", "E", "F"]
    truth = context.sessions.resume(session_id).trials[trial_id].labels  # label -> condition (server only)
    hidden = next(label for label, condition in truth.items() if condition == "reference")
    # Sliders start unrated (no thumb, no value), and only the selected version's slider is active.
    assert page.locator(".mushra-slider.unrated").count() == 6
    assert set(page.locator(".mushra-value").all_inner_texts()) == {"–"}
    # ... and look unrated: no handle and no fill drawn anywhere on the slider (the browser's own slider
    # filled its track to the starting value in blue, which looked like a rating of 50)
    assert blue_pixels(page, ".mushra-slider[data-label='A']") == 0
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
    assert "Please rate every version" in message_text(page)
    # 2. Every slider moved (none at 100) but listened to too briefly.
    for index, label in enumerate(labels):
        set_score(page, label, 20 + 10 * index)
    page.click(".mushra-submit")
    assert f"at least {MIN_LISTEN_S:g} s" in message_text(page)
    page.screenshot(path=str(shots / "participant_6_refused.png"), full_page=True)
    # 3. Heard long enough, but no version at 100.
    listen_to_all(page, labels)
    page.click(".mushra-submit")
    assert "at least one version 100" in message_text(page)
    assert trial_id not in set(csv_rows(context)["trial_id"])
    # A loop shorter than 0.5 s is refused; a longer one is kept, its bounds shown.
    box = page.locator(".mushra-wavebox").bounding_box()
    y = box["y"] + box["height"] / 2

    def drag(start: float, end: float) -> None:
        page.mouse.move(box["x"] + start * box["width"], y)
        page.mouse.down()
        page.mouse.move(box["x"] + end * box["width"], y, steps=4)
        page.mouse.up()

    drag(0.1, 0.2)  # 0.3 s of the 3-s excerpt
    assert "A loop must be at least 0.5 s" in message_text(page)
    assert page.evaluate("() => window.mushra.app.view.engine.loop") is None
    drag(0.1, 0.6)
    loop = page.evaluate("() => window.mushra.app.view.engine.loop")
    assert loop[0] == pytest.approx(0.3, abs=0.05) and loop[1] == pytest.approx(1.8, abs=0.05)
    assert re.fullmatch(r"Loop 0\.\d\d–1\.\d\d s", page.inner_text(".mushra-loop-label"))
    # 4. The hidden reference at 100: accepted.
    set_score(page, hidden, 100)
    assert page.inner_text(".mushra-trial .mushra-message") == ""  # moving a slider clears the refusal
    assert page.locator(".mushra-clear-loop").evaluate("b => getComputedStyle(b).visibility") == "visible"
    # rated: the handle is drawn (blue while selected); another version's handle stays visible, in grey
    assert blue_pixels(page, f".mushra-slider[data-label='{hidden}']") > 50
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
    _, second, _ = current_trial(page)
    assert second != trial_id
    truth = context.sessions.resume(session_id).trials[second].labels
    listen_to_all(page, labels)
    for index, label in enumerate(labels):
        set_score(page, label, 100 if truth[label] == "reference" else 15 + 5 * index)
    page.fill(".mushra-comment", '=HYPERLINK("http://x")')
    before = (page.evaluate("window.mushra.listenMs()"), page.evaluate("window.mushra.plays()"))
    page.wait_for_timeout(1200)  # the draft is saved as things change and every second
    page.reload(wait_until="domcontentloaded")
    page.wait_for_selector("text=Trial 2 of 2", timeout=20_000)
    page.wait_for_function("() => window.mushra && window.mushra.ready()", timeout=20_000)
    assert current_trial(page)[1] == second and page.locator(".mushra-start").count() == 0
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

    rows = csv_rows(context)
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
    session_id = page.evaluate("window.mushra.app.session.session_id")
    design = context.sessions.headphone_design(context.sessions.resume(session_id))
    page.wait_for_selector(".mushra-hp-play:not([disabled])", timeout=20_000)  # sound 1, answered wrong
    page.click(".mushra-hp-play")
    page.wait_for_selector(".mushra-hp-choice:not([disabled])", timeout=20_000)
    page.click(f".mushra-hp-choice[data-position='{design[0].antiphase}']")
    page.click(".mushra-hp-next")
    page.wait_for_selector("text=Sound 2 of 6", timeout=20_000)
    page.wait_for_selector(".mushra-hp-play:not([disabled])", timeout=20_000)
    page.click(".mushra-hp-play")  # and a reload while it plays: the check resumes at sound 2, its play spent
    page.wait_for_function("() => document.querySelector('.mushra-hp-status').textContent === 'Playing...'")
    page.reload(wait_until="domcontentloaded")
    page.wait_for_selector("text=Sound 2 of 6", timeout=20_000)
    page.wait_for_selector(
        "text=You played this sound before the page was reloaded. Please answer.", timeout=20_000
    )
    assert page.locator(".mushra-hp-play[disabled]").count() == 1  # one play per sound, a reload or not
    assert page.locator(".mushra-hp-choice:not([disabled])").count() == 3
    draft = page.evaluate("JSON.parse(localStorage.getItem('mss-mushra-headphones'))")
    assert (draft["key"], draft["answers"], draft["plays"]) == (
        f"{session_id}/headphones",
        [design[0].antiphase],
        1,
    )
    page.go_back()  # Back stays in the test once, and says why
    page.wait_for_selector(".mushra-back-note", timeout=10_000)
    assert "no way back" in page.inner_text(".mushra-back-note")
    page.screenshot(path=str(shots / "participant_3d_back.png"), full_page=True)
    assert page.locator("text=Sound 2 of 6").count() == 1
    page.go_back()  # a second Back leaves ...

    page.wait_for_url("about:blank", timeout=10_000)  # the tab's first page
    page.goto(url, wait_until="domcontentloaded")  # ... and losing nothing: the check goes on at sound 2
    page.wait_for_selector("text=Sound 2 of 6", timeout=20_000)
    page.wait_for_selector(
        "text=You played this sound before the page was reloaded. Please answer.", timeout=20_000
    )
    assert (
        page.inner_text(".mushra-message") == ""
    )  # the spent sound is not fetched again (the server would refuse)
    page.click(f".mushra-hp-choice[data-position='{design[1].antiphase}']")
    page.click(".mushra-hp-next")
    page.wait_for_selector("text=Sound 3 of 6", timeout=20_000)
    headphone_check(page, context, None, wrong=True)  # the rest through the page's API, all wrong
    page.wait_for_selector("text=did not confirm that you are listening over headphones", timeout=20_000)
    assert page.evaluate("localStorage.getItem('mss-mushra-headphones')") is None  # past the check: forgotten
    code = page.inner_text(".mushra-code")
    session_id = page.evaluate("window.mushra.app.session.session_id")
    session = context.sessions.resume(session_id)
    assert context.sessions.step(session) == "screened_out" and code == context.sessions.completion_code(
        session
    )
    page.screenshot(path=str(shots / "participant_3c_screened_out.png"), full_page=True)
    page.reload(wait_until="domcontentloaded")  # it stays ended
    page.wait_for_selector("text=did not confirm", timeout=20_000)
    page.go_back()  # and once the test is over, Back leaves (through the guard left from the check, if any)
    page.wait_for_url("about:blank", timeout=10_000)  # the tab's first page
    page.close()


def test_experimenter_results_beside_sdr(running_app, browser, shots):
    url, context = running_app
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    missing = []
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    login(page, url)
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
