"""The app in headless Chromium at other sizes and speeds: a laptop's short window, a phone's width, and a
10 Mbit/s network (progress while a trial loads, the next trial fetched ahead); an app of its own
(``running_app`` in conftest)."""

from __future__ import annotations

import pytest
from app_browser import (
    ANSWERS,
    current_trial,
    listen_to_all,
    set_score,
    start_session,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]


def test_a_laptop_window_shows_the_scores_above_the_submit_bar(running_app, browser, shots):
    """On a 1366 x 660 window the sliders are shorter, so that the scores under them clear the Submit bar stuck
    to the bottom of the window; the scale stays level with the sliders."""
    url, context = running_app
    page = browser.new_page(viewport={"width": 1366, "height": 660})
    start_session(page, url, context)
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
    start_session(page, url, context)
    sliders = [
        page.locator(".mushra-slider").nth(i).bounding_box()
        for i in range(page.locator(".mushra-slider").count())
    ]
    legend = page.locator(".mushra-legend").bounding_box()
    assert len(sliders) == 6 and len({round(box["y"]) for box in sliders}) == 1  # one row
    assert legend["x"] + legend["width"] <= sliders[0]["x"] + 1  # the scale stands beside the first slider
    assert abs(legend["y"] - sliders[0]["y"]) < 15 and abs(legend["height"] - sliders[0]["height"]) < 15
    assert max(box["x"] + box["width"] for box in sliders) <= 390  # no sideways scrolling needed
    set_score(page, "B", 70)
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
    _, trial_id, labels = current_trial(page)
    truth = store.resume(session_id).trials[trial_id].labels
    listen_to_all(page, labels)
    for index, label in enumerate(labels):
        set_score(page, label, 100 if truth[label] == "reference" else 10 + index)
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
