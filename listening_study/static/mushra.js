/* Blind MUSHRA (ITU-R BS.1534-3) and A/B listening test: the whole participant page.
 *
 * Session flow (the server keeps the step in progress; a reload resumes it from localStorage):
 *   welcome + consent -> questionnaire -> volume -> headphone check (mushra-headphones.js, when the
 *   study has one; failing it ends the session: screened out, with a code) -> familiarization (practice
 *   sliders, not graded) -> instructions -> graded trials -> finish (code). The next trial's files are
 *   fetched while the instructions are read and while each trial is rated (session.prefetch).
 *
 * The audio engine (fades, loops, sample-aligned switching, the 44.1 kHz AudioContext) is in
 * mushra-audio.js and the player page in mushra-trial.js (TrialView), both loaded before this file.
 *
 * The page sees neutral labels (A, B, C...) and opaque per-session audio URLs only. Server API (JSON):
 * GET {api}/info; POST {api}/start, /resume, /questionnaire, /step, /headphones, /submit (mss_app/api.py).
 * The server checks the rules (every slider moved, every version heard for min_listen_s, one 100) and
 * answers with a message that this page shows.
 */
(function () {
  "use strict";

  const { Engine, makeAudioContext, prefetch, STIMULUS_RATE } = window.MushraAudio;
  const { TrialView, el, localStore } = window.MushraTrial;
  const STORAGE_KEY = "mss-mushra-session";

  /* How a page names its target where its stem name alone would not say it (MUSDB18's "other"). */
  const TARGET_NAMES = { other: ["other instruments", " (everything but the vocals, drums and bass)"] };

  async function request(url, body) {
    const options = body === undefined ? {} : {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    };
    const response = await fetch(url, options);
    let data = null;
    try {
      data = await response.json();
    } catch (error) {
      data = { detail: response.statusText };
    }
    if (!response.ok) {
      const detail = data && data.detail;
      throw new Error(typeof detail === "string" ? detail : JSON.stringify(detail || response.statusText));
    }
    return data;
  }

  const storage = { // the session id, so that a reload resumes the session
    get: () => localStore.get(STORAGE_KEY),
    set: (value) => localStore.set(STORAGE_KEY, value),
    clear: () => localStore.remove(STORAGE_KEY),
  };

  class App {
    constructor(root, options) {
      this.root = root;
      this.api = options.api || "/mushra/api";
      this.view = null;
      this.session = null;
      this.context = null;
      const mode = new URLSearchParams(window.location.search).get("mode");
      this.mode = mode === "ab" ? "ab" : "mushra";
      this.resuming = false; // while a saved session is being resumed (mount)
      window.addEventListener("popstate", (event) => this._onBack(event));
    }
    audioContext() {
      if (!this.context) this.context = makeAudioContext();
      return this.context;
    }
    async mount() {
      this.header = el("div", { class: "mushra-header" });
      this.body = el("div", { class: "mushra-body" });
      this.root.replaceChildren(this.header, this.body);
      const saved = storage.get();
      if (saved) {
        this.resuming = true; // a Back while the session comes back stays, as on its page (_running)
        try {
          this.session = await request(this.api + "/resume", { session_id: saved });
          this.show();
          return;
        } catch (error) {
          storage.clear(); // an old or unknown session: start afresh
        } finally {
          this.resuming = false;
        }
      }
      this.showWelcome();
    }
    _closeView() {
      if (this.view) this.view.close();
      this.view = null;
    }
    _page(title, ...children) {
      this._closeView();
      this.header.replaceChildren(el("h2", {}, title));
      this.body.replaceChildren(...children.filter((child) => child != null)); // null: an optional part left out
      window.scrollTo(0, 0);
      this._guardBack();
    }
    /* The browser's Back button. The test has no way back (each page is saved when the participant goes on),
     * and leaving it by mistake is easy. While a session runs, the page's history entry is marked "base" and a
     * "guard" entry is pushed above it (history.state says which, across reloads too): Back lands on the base,
     * stays on this page and says so; a second Back on the same page leaves (nothing is lost: opening the page
     * again in this browser resumes the session). The next page arms the guard again. Once the test is over,
     * Back leaves at once. */
    _running() {
      if (!this.session) return Boolean(this.resuming);
      return !["finished", "screened_out"].includes(this.session.step);
    }
    _guardBack() {
      const state = window.history.state;
      if (!this._running() || (state && state.mushra === "guard")) return; // not needed, or in place
      window.history.replaceState({ mushra: "base" }, "");
      window.history.pushState({ mushra: "guard" }, "");
    }
    _onBack(event) {
      if (event.state && event.state.mushra === "guard") { // Forward onto the guard: armed again, the note is stale
        const note = this.body.querySelector(".mushra-back-note");
        if (note) note.remove();
        return;
      }
      if (!event.state || event.state.mushra !== "base") return; // not ours
      if (!this._running()) { // the test is over: Back leaves at once
        window.history.back();
        return;
      }
      const old = this.body.querySelector(".mushra-back-note");
      if (old) old.remove();
      this.body.prepend(el("p", { class: "mushra-warning mushra-back-note", role: "status" },
        "This test has no way back to earlier pages: each page is saved when you go on. To take a break, close " +
        "this page; opening it again in this browser continues where you left off. Pressing Back again leaves the test."));
      window.scrollTo(0, 0);
    }
    /* What the reference of a page is: the instrument the versions are separations of. */
    _targetLine(page) {
      if (!page || !page.target) return null;
      const [name, note] = TARGET_NAMES[page.target] || [page.target, ""];
      return el("p", { class: "mushra-target" }, "The reference is the excerpt's ", el("strong", {}, name), " alone" + note + ".");
    }
    _rateWarning() {
      const rate = this.audioContext().sampleRate;
      if (rate === STIMULUS_RATE) return null;
      return el("p", { class: "mushra-warning" },
        "Your browser plays audio at " + rate + " Hz instead of " + STIMULUS_RATE + " Hz, so it resamples the test audio. " +
        "If you can, use a current Chrome, Edge or Firefox on a computer.");
    }
    async _advance(endpoint, body, message) {
      if (message) message.textContent = "Please wait...";
      try {
        this.session = await request(this.api + "/" + endpoint, body);
      } catch (error) {
        if (message) message.textContent = error.message;
        throw error;
      }
      storage.set(this.session.session_id);
      this.show();
    }
    show() {
      const step = this.session.step;
      if (step !== "headphones" && window.MushraHeadphones) window.MushraHeadphones.clearDraft(); // past it
      if (step === "questionnaire") this.showQuestionnaire();
      else if (step === "volume") this.showVolume();
      else if (step === "headphones") this.showHeadphones();
      else if (step === "familiarization") this.showFamiliarization(0);
      else if (step === "instructions") this.showInstructions();
      else if (step === "trial") this.showTrial();
      else if (step === "screened_out") this.showScreenedOut();
      else this.showFinish();
    }
    async showWelcome() {
      let info = null;
      try {
        info = await request(this.api + "/info");
      } catch (error) {
        this._page("Listening test", el("p", { class: "mushra-message" }, "The listening test is not available right now. Please try again later."));
        return;
      }
      const agree = el("input", { type: "checkbox", class: "mushra-consent", id: "mushra-consent" });
      const participant = el("input", { type: "text", class: "mushra-participant", placeholder: "optional", maxlength: "32", autocomplete: "off" });
      const message = el("p", { class: "mushra-message", role: "alert" });
      const start = el("button", { type: "button", class: "mushra-start" }, "Start");
      start.addEventListener("click", () => {
        this._advance("start", { participant_id: participant.value.trim(), mode: this.mode, consent: agree.checked }, message).catch(() => {});
      });
      this._page(
        "Listening test",
        info.description ? el("p", {}, info.description) : null,
        el("p", {}, "You will listen to short music excerpts and rate how close several versions of each excerpt sound to a reference. " +
          "The test has " + info.n_trials + " pages to rate and takes about " + info.minutes + " minutes. Please use headphones in a quiet room." +
          (info.headphone_check ? " It begins with a one-minute headphone check; if the check does not confirm headphones, the test ends there, with a completion code." : "")),
        el("h3", {}, "Your consent"),
        el("ul", { class: "mushra-consent-text" },
          el("li", {}, "Taking part is voluntary. You can stop at any time by closing this page; what you rated so far is kept unless you ask the experimenter to delete it."),
          el("li", {}, "We store your ratings, optional comments, the answers to a few short questions (age range, listening experience, what you listen with and, if you say, its make and model), " + (info.headphone_check ? "the result of a short headphone check, " : "") + "which sounds your browser loaded and the time you took. We do not ask for your name; do not type it anywhere."),
          el("li", {}, "The data are used for research on audio quality and published only as summaries.")),
        el("p", { class: "mushra-contact" }, "This study is run by " + (info.experimenter || "the experimenter") + "." +
          (info.contact ? " Questions, or a request to delete your data: " + info.contact + "."
            : " Questions, or a request to delete your data: ask the person who invited you (quote your completion code if you finished).")),
        el("p", {}, el("label", { for: "mushra-consent" }, agree, " I have read the above and agree to take part.")),
        el("p", {}, el("label", {}, "Participant code, if the experimenter gave you one: ", participant)),
        el("div", { class: "mushra-actions" }, start),
        message
      );
    }
    showQuestionnaire() {
      const message = el("p", { class: "mushra-message", role: "alert" });
      const fields = {};
      const form = el("div", { class: "mushra-questions" });
      for (const question of this.session.questions) {
        if (question.choices.length) {
          const select = el("select", { class: "mushra-question", "data-key": question.key },
            el("option", { value: "" }, "Please choose"),
            ...question.choices.map((c) => el("option", { value: c.value }, c.text)));
          fields[question.key] = select;
          const note = question.key === "headphones" && this.session.headphone_check ? this._speakerNote(select) : null;
          form.append(el("label", { class: "mushra-field" }, el("span", {}, question.text), select, note));
        } else {
          const input = el("input", { type: "text", class: "mushra-question", "data-key": question.key, maxlength: "80", autocomplete: "off" });
          fields[question.key] = input;
          form.append(el("label", { class: "mushra-field" }, el("span", {}, question.text), input));
        }
      }
      const next = el("button", { type: "button", class: "mushra-next" }, "Continue");
      const unanswered = () => this.session.questions.filter((q) => q.required && !fields[q.key].value);
      const ask = (missing) => { // every unanswered question at once (the server checks them too, one by one)
        const list = missing.map((q) => q.text).join("; ");
        message.textContent = missing.length ? "Please answer: " + list + (list.endsWith("?") ? "" : ".") : "";
      };
      for (const field of Object.values(fields)) { // an answer given clears its mark and leaves its name out
        field.addEventListener("change", () => {
          field.classList.remove("mushra-missing");
          if (message.textContent.startsWith("Please answer:")) ask(unanswered());
        });
      }
      next.addEventListener("click", () => {
        const missing = unanswered();
        for (const q of missing) fields[q.key].classList.add("mushra-missing");
        if (missing.length) {
          ask(missing);
          return;
        }
        const answers = {};
        for (const [key, field] of Object.entries(fields)) answers[key] = field.value;
        this._advance("questionnaire", { session_id: this.session.session_id, answers: answers }, message).catch(() => {});
      });
      this._page("A few questions", el("p", {}, "These answers help us describe who took part. They are stored with your ratings, without your name."),
        form, el("div", { class: "mushra-actions" }, next), message);
    }
    /* Shown while "Loudspeakers" is chosen: the headphone check would end the test, so say it before it does. */
    _speakerNote(select) {
      const note = el("span", { class: "mushra-note", role: "status" }); // inside the field: no gap while empty
      select.addEventListener("change", () => {
        note.textContent = select.value === "speakers"
          ? "This test needs headphones. If you have some, please put them on and choose them here: the next steps check " +
            "for them, and over loudspeakers the test ends after that check (you still get a completion code)."
          : "";
      });
      return note;
    }
    showVolume() {
      const message = el("p", { class: "mushra-message", role: "alert" });
      const engine = new Engine(this.audioContext());
      let loaded = false, played = false;
      const play = el("button", { type: "button", class: "mushra-play" }, "Play");
      const toggle = async () => {
        if (!loaded) return;
        if (engine.playing) engine.pause();
        else {
          engine.setLoop([0, engine.duration], 0);
          await engine.play(0);
          played = true;
          if (message.textContent.startsWith("Please play")) message.textContent = ""; // done: no longer true
        }
        play.textContent = engine.playing ? "Pause" : "Play"; // as on the trial pages
      };
      play.addEventListener("click", toggle);
      const onKey = (event) => { // Space plays and pauses, as on the trial pages (even with a button focused)
        const target = event.target;
        if (event.key !== " " || (target && (target.tagName === "TEXTAREA" || target.tagName === "INPUT"))) return;
        event.preventDefault();
        if (!event.repeat) toggle();
      };
      document.addEventListener("keydown", onKey);
      const next = el("button", { type: "button", class: "mushra-next" }, "Continue");
      next.addEventListener("click", () => {
        if (!played) {
          message.textContent = "Please play the example and set your volume first.";
          return;
        }
        if (engine.playing) engine.pause(); // the next page closes the engine; the example stops now
        play.textContent = "Play";
        this._advance("step", { session_id: this.session.session_id, step: "volume" }, message).catch(() => {});
      });
      this._page("Set your volume",
        this._rateWarning(),
        el("p", {}, "Put on your headphones. Press Play (or Space): an excerpt of the kind you will hear plays in a loop. " +
          "Set the volume of your computer to a comfortable level, as loud as you would like to listen to music for a while, but not louder."),
        el("p", {}, "Please do not change the volume during the test."),
        el("div", { class: "mushra-actions" }, play, next), message);
      this.view = { close: () => { document.removeEventListener("keydown", onKey); engine.close(); } };
      engine.load([{ key: "REF", url: this.session.volume_url }]).then(() => (loaded = true),
        (error) => (message.textContent = error.message));
    }
    showHeadphones() {
      const holder = el("div", { class: "mushra-headphones" });
      this._page("Headphone check", holder);
      const check = window.MushraHeadphones.render(holder, this.session.headphones, (result) =>
        this._advance("headphones", { session_id: this.session.session_id, answers: result.answers }),
        { context: this.audioContext(), draftKey: this.session.session_id + "/headphones" }); // a reload resumes it
      this.view = { close: () => check && check.close && check.close() };
    }
    showFamiliarization(index) {
      const pages = this.session.familiarization;
      const last = index === pages.length - 1;
      const holder = el("div", { class: "mushra-trial" });
      this._page("Practice: excerpt " + (index + 1) + " of " + pages.length,
        this._targetLine(pages[index]),
        this._rateWarning(),
        el("div", { class: "mushra-info" },
          el("p", {}, "Before the test, listen to a few examples to get to know the kind of differences you will hear. " +
            "Play the reference and each lettered version; switching keeps the position, so you can compare the same moment. " +
            "Try the sliders too, to get used to the scale: these practice ratings are not stored. " +
            "In the test, one version is always identical to the reference; the next page explains how to rate.")),
        holder);
      if (!last) prefetch([pages[index + 1].reference_url, ...pages[index + 1].conditions.map((c) => c.url)]);
      this.view = new TrialView(pages[index], {
        graded: false,
        practice: true,
        rules: this.session.rules,
        context: this.audioContext(),
        submitText: last ? "Continue" : "Next excerpt",
        onSubmit: async () => {
          if (!last) this.showFamiliarization(index + 1);
          else await this._advance("step", { session_id: this.session.session_id, step: "familiarization" });
        },
      });
      this.view.render(holder).catch((error) => (holder.textContent = error.message));
    }
    showInstructions() {
      const rules = this.session.rules;
      const message = el("p", { class: "mushra-message", role: "alert" });
      const items = [
        el("li", {}, "Each page plays a reference and several versions of the same excerpt, labelled with letters in a random order."),
        el("li", {}, "Rate how close each version sounds to the reference, from 0 to 100 (Bad, Poor, Fair, Good, Excellent). Judge all differences you hear."),
        el("li", {}, "One of the versions is identical to the reference. " + (rules.require_100 ? "Rate at least one version 100." : "")),
        el("li", {}, "Every slider starts unrated: move each one to give your rating." +
          (rules.active_slider_only ? " To rate another version, select it (its letter, its key, or a click on its slider), then move its slider: you always rate the version you hear." : "")),
      ];
      if (rules.min_listen_s > 0) items.push(el("li", {}, "Listen to every version for at least " + rules.min_listen_s + " s; the bar under each letter fills while you listen."));
      items.push(el("li", {}, "You can switch between the reference and the versions at any time, and loop a passage by dragging across the waveform."));
      prefetch(this.session.prefetch); // the first trial loads while this page is read
      const next = el("button", { type: "button", class: "mushra-next" }, "Start the test");
      next.addEventListener("click", () =>
        this._advance("step", { session_id: this.session.session_id, step: "instructions" }, message).catch(() => {}));
      const text = this.session.mode === "ab"
        ? [el("li", {}, "Each page plays a reference and two versions, A and B. Choose the one closer to the reference and say how sure you are."),
          el("li", {}, rules.min_listen_s > 0 ? "Listen to both for at least " + rules.min_listen_s + " s." : "Listen to both.")]
        : items;
      this._page("Instructions", el("ul", { class: "mushra-instructions" }, ...text),
        el("p", {}, "Your progress is saved after every page: if you close this page, opening it again in the same browser continues where you left off."),
        el("div", { class: "mushra-actions" }, next), message);
    }
    _progress() {
      const s = this.session;
      const fill = el("div", { class: "mushra-fill" });
      // set through the CSSOM: the page's Content-Security-Policy (no 'unsafe-inline') ignores style attributes
      fill.style.width = (100 * s.n_done) / Math.max(s.n_trials, 1) + "%";
      return el("div", { class: "mushra-progress" },
        el("div", { class: "mushra-bar" }, fill),
        el("span", { class: "mushra-count" }, "Trial " + (s.n_done + 1) + " of " + s.n_trials));
    }
    showTrial() {
      const s = this.session;
      const holder = el("div", { class: "mushra-trial" });
      this._page(s.mode === "ab" ? "Which version is closer to the reference?" : "Rate each version against the reference",
        this._targetLine(s.trial), this._rateWarning(), holder);
      this.header.append(this._progress());
      this.view = new TrialView(s.trial, {
        graded: true,
        rules: s.rules,
        context: this.audioContext(),
        draftKey: s.session_id + "/" + s.trial.trial_id, // a reload keeps the sliders and listening times
        onSubmit: async (payload) => {
          this.session = await request(this.api + "/submit", Object.assign({ session_id: s.session_id }, payload));
          this.show();
        },
      });
      this.view.render(holder).then(() => prefetch(s.prefetch), // the next trial loads while this one is rated
        (error) => (holder.textContent = error.message));
    }
    showScreenedOut() {
      this._page("Thank you!",
        el("p", { class: "mushra-done" }, "The headphone check did not confirm that you are listening over headphones, " +
          "which this test needs, so the test ends here. Thank you for your time."),
        el("p", {}, "Your completion code: ", el("strong", { class: "mushra-code" }, this.session.completion_code || "")),
        el("p", {}, "Keep it: the experimenter may ask for it. You can close this page now."));
    }
    showFinish() {
      this._page("Thank you!",
        el("p", { class: "mushra-done" }, "You have finished the test. Your answers are saved."),
        el("p", {}, "Your completion code: ", el("strong", { class: "mushra-code" }, this.session.completion_code || "")),
        el("p", {}, "Keep it: the experimenter may ask for it. You can close this page now."));
    }
  }

  window.MushraApp = {
    mount(root, options) {
      const app = new App(root, options || {});
      app.mount();
      window.mushra = {
        app: app,
        currentTime: () => (app.view && app.view.engine ? app.view.engine.currentTime() : 0),
        active: () => (app.view && app.view.engine ? app.view.engine.active : null),
        playing: () => Boolean(app.view && app.view.engine && app.view.engine.playing),
        plays: () => (app.view && app.view.plays ? Object.assign({}, app.view.plays) : {}),
        listenMs: () => (app.view && app.view.engine ? app.view.engine.listenMs() : {}),
        sampleRate: () => app.audioContext().sampleRate,
        ready: () => Boolean(app.view && app.view.buttons),
      };
      return app;
    },
  };

  // The participant page (mss_app/participant.py) has no inline script (its CSP forbids one): mount here.
  function autoMount() {
    const root = document.querySelector("[data-mushra-api]");
    if (root) window.MushraApp.mount(root, { api: root.getAttribute("data-mushra-api") });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", autoMount);
  else autoMount();
})();
