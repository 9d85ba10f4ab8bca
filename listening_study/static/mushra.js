/* Blind MUSHRA (ITU-R BS.1534-3) and A/B listening test: the whole participant page.
 *
 * Session flow (the server keeps the step in progress; a reload resumes it from localStorage):
 *   welcome + consent -> questionnaire -> volume -> familiarization (not graded) -> instructions
 *   -> graded trials -> finish (completion code).
 *
 * The audio engine (fades, loops, sample-aligned switching, the 44.1 kHz AudioContext) is in
 * mushra-audio.js, loaded before this file (window.MushraAudio).
 *
 * The page sees neutral labels (A, B, C...) and opaque per-session audio URLs only. Server API (JSON):
 * GET {api}/info; POST {api}/start, /resume, /questionnaire, /step, /submit (see mss_app/api.py).
 * The server checks the rules (every slider moved, every version heard for min_listen_s, one 100) and
 * answers with a message that this page shows.
 */
(function () {
  "use strict";

  const BANDS = [
    [80, "Excellent"],
    [60, "Good"],
    [40, "Fair"],
    [20, "Poor"],
    [0, "Bad"],
  ];
  const { Engine, makeAudioContext, STIMULUS_RATE } = window.MushraAudio;
  const STORAGE_KEY = "mss-mushra-session";

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value == null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children) {
      if (child == null) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

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

  const storage = {
    get() {
      try { return window.localStorage.getItem(STORAGE_KEY); } catch (error) { return null; }
    },
    set(value) {
      try { window.localStorage.setItem(STORAGE_KEY, value); } catch (error) { /* private mode: no resume */ }
    },
    clear() {
      try { window.localStorage.removeItem(STORAGE_KEY); } catch (error) { /* nothing stored */ }
    },
  };

  /* ---------------------------------------------------------------- waveform */
  function drawWaveform(canvas, buffer) {
    const ctx = canvas.getContext("2d");
    const { width, height } = canvas;
    ctx.clearRect(0, 0, width, height);
    const data = buffer.getChannelData(0);
    const step = Math.max(1, Math.floor(data.length / width));
    ctx.fillStyle = "#7a8aa6";
    for (let x = 0; x < width; x++) {
      let lo = 1, hi = -1;
      for (let i = x * step; i < Math.min(data.length, (x + 1) * step); i++) {
        if (data[i] < lo) lo = data[i];
        if (data[i] > hi) hi = data[i];
      }
      ctx.fillRect(x, ((1 - hi) / 2) * height, 1, Math.max(1, ((hi - lo) / 2) * height));
    }
  }

  /* ---------------------------------------------------------------- one page with a player */
  class TrialView {
    /* options: {graded, rules, onSubmit(payload), submitText, context} */
    constructor(trial, options) {
      this.trial = trial;
      this.options = options;
      this.rules = options.rules || {};
      this.plays = {};
      this.scores = {}; // label -> score, only for sliders that were moved
      this.startedAt = performance.now();
      this.engine = new Engine(options.context);
      this.keyHandler = (event) => this._onKey(event);
      this.lastBars = 0;
    }
    labels() {
      return this.trial.conditions.map((c) => c.label);
    }
    get graded() {
      return Boolean(this.options.graded);
    }
    async render(container) {
      const trial = this.trial;
      const isAb = trial.mode === "ab";
      container.replaceChildren();
      const status = el("p", { class: "mushra-status" }, "Loading audio...");
      container.append(status);
      const stimuli = [{ key: "REF", url: trial.reference_url }];
      for (const c of trial.conditions) stimuli.push({ key: c.label, url: c.url });
      await this.engine.load(stimuli);
      status.remove();

      // transport + waveform with the loop region
      this.playButton = el("button", { class: "mushra-play", type: "button", onclick: () => this.togglePlay() }, "Play");
      this.timeLabel = el("span", { class: "mushra-time" }, "0.00 s");
      this.loopLabel = el("span", { class: "mushra-loop-label" }, "No loop");
      const clearLoop = el("button", { type: "button", class: "mushra-clear-loop", onclick: () => this._setLoop(null) }, "Clear loop");
      this.canvas = el("canvas", { class: "mushra-wave", width: "900", height: "80" });
      this.overlay = el("div", { class: "mushra-overlay" });
      this.loopBox = el("div", { class: "mushra-loop" });
      this.cursor = el("div", { class: "mushra-cursor" });
      this.overlay.append(this.loopBox, this.cursor);
      const wave = el("div", { class: "mushra-wavebox" }, this.canvas, this.overlay);
      const minLoop = this.rules.min_loop_s || 0.5;
      container.append(
        el("div", { class: "mushra-transport" }, this.playButton, this.timeLabel, this.loopLabel, clearLoop),
        wave,
        el("p", { class: "mushra-hint" },
          "Click the waveform to jump, drag across it to loop a passage (at least " + minLoop + " s). " +
          "Keys: space play/pause, R reference, 1-9 or A-I versions.")
      );
      drawWaveform(this.canvas, this.engine.buffers.REF);
      this._bindWave(wave);

      // reference + conditions
      this.buttons = {};
      this.bars = {};
      this.sliders = {};
      this.values = {};
      const rows = el("div", { class: isAb ? "mushra-ab" : "mushra-grid" });
      this.buttons.REF = el("button", { class: "mushra-select mushra-ref", type: "button", "data-key": "REF", onclick: () => this.select("REF") }, "Reference");
      rows.append(el("div", { class: "mushra-col mushra-refcol" }, this.buttons.REF, this.graded && !isAb ? this._scaleLegend() : null));
      for (const c of trial.conditions) {
        this.plays[c.label] = 0;
        this.buttons[c.label] = el("button", { class: "mushra-select", type: "button", "data-key": c.label, onclick: () => this.select(c.label) }, c.label);
        const bar = el("span", { class: "mushra-heard-fill" });
        this.bars[c.label] = bar;
        const col = el("div", { class: "mushra-col" }, this.buttons[c.label]);
        if (this.graded && this.rules.min_listen_s > 0) col.append(el("span", { class: "mushra-heard", title: "listened" }, bar));
        if (this.graded && !isAb) col.append(...this._slider(c.label));
        rows.append(col);
      }
      container.append(rows);
      if (this.graded && isAb) container.append(this._abControls());
      this.message = el("p", { class: "mushra-message", role: "alert" });
      this.submitButton = el("button", { class: "mushra-submit", type: "button", onclick: () => this.submit() }, this.options.submitText || "Submit and continue");
      if (this.graded) {
        this.comment = el("textarea", { class: "mushra-comment", rows: "2", maxlength: "1000", placeholder: "Optional comment" });
        container.append(this.comment);
      }
      container.append(el("div", { class: "mushra-actions" }, this.submitButton), this.message);

      document.addEventListener("keydown", this.keyHandler);
      this._tick();
      this._refresh();
    }
    _slider(label) {
      const value = el("output", { class: "mushra-value" }, "–");
      const slider = el("input", {
        type: "range", min: "0", max: "100", step: "1", value: "50", class: "mushra-slider unrated",
        "data-label": label, "aria-label": "score " + label,
      });
      slider.addEventListener("input", () => {
        if (!this._sliderEnabled(label)) return; // belt and braces: a disabled slider takes no input
        this.scores[label] = Number(slider.value);
        slider.classList.remove("unrated");
        if (this.message) this.message.textContent = ""; // a refusal's message is about the ratings before this move
        value.textContent = slider.value;
      });
      this.sliders[label] = slider;
      this.values[label] = value;
      return [slider, value];
    }
    _sliderEnabled(label) {
      return !this.rules.active_slider_only || this.engine.active === label;
    }
    _scaleLegend() {
      return el("div", { class: "mushra-legend" }, ...BANDS.map(([low, name]) => el("div", { class: "mushra-band" }, name + " " + (low + 20) + "-" + low)));
    }
    _abControls() {
      this.abChoice = null;
      const choices = el("div", { class: "mushra-ab-choice" }, el("span", {}, "Which is better?"));
      for (const c of this.trial.conditions) {
        const input = el("input", { type: "radio", name: "ab-choice", value: c.label, id: "ab-" + c.label });
        input.addEventListener("change", () => (this.abChoice = c.label));
        choices.append(el("label", { for: "ab-" + c.label }, input, " " + c.label));
      }
      this.abConfidence = null;
      const sure = el("div", { class: "mushra-ab-confidence" }, el("span", {}, "How sure are you?"));
      [[1, "slightly"], [2, "clearly"], [3, "certain"]].forEach(([value, text]) => {
        const input = el("input", { type: "radio", name: "ab-confidence", value: String(value), id: "ab-conf-" + value });
        input.addEventListener("change", () => (this.abConfidence = value));
        sure.append(el("label", { for: "ab-conf-" + value }, input, " " + text));
      });
      return el("div", { class: "mushra-ab-controls" }, choices, sure);
    }
    _bindWave(wave) {
      let downAt = null;
      const toTime = (event) => {
        const rect = wave.getBoundingClientRect();
        return Math.max(0, Math.min(1, (event.clientX - rect.left) / rect.width)) * this.engine.duration;
      };
      wave.addEventListener("mousedown", (event) => (downAt = toTime(event)));
      wave.addEventListener("mouseup", (event) => {
        if (downAt == null) return;
        const upAt = toTime(event);
        if (Math.abs(upAt - downAt) < 0.05) this.engine.seek(upAt);
        else this._setLoop([Math.min(downAt, upAt), Math.max(downAt, upAt)]);
        downAt = null;
      });
    }
    _setLoop(region) {
      const minimum = this.rules.min_loop_s || 0.5;
      if (!this.engine.setLoop(region, minimum)) {
        const length = region[1] - region[0];
        this.message.textContent = "A loop must be at least " + minimum + " s long (that one was " + length.toFixed(2) + " s).";
        return;
      }
      if (this.message.textContent.startsWith("A loop must")) this.message.textContent = "";
      const loop = this.engine.loop;
      const d = this.engine.duration;
      this.loopBox.style.display = loop ? "block" : "none";
      if (loop) {
        this.loopBox.style.left = (100 * loop[0]) / d + "%";
        this.loopBox.style.width = (100 * (loop[1] - loop[0])) / d + "%";
        this.loopLabel.textContent = "Loop " + loop[0].toFixed(2) + "–" + loop[1].toFixed(2) + " s";
      } else {
        this.loopLabel.textContent = "No loop";
      }
    }
    _tick() {
      if (this.closed) return;
      const t = this.engine.currentTime();
      this.timeLabel.textContent = t.toFixed(2) + " / " + this.engine.duration.toFixed(2) + " s";
      this.cursor.style.left = (100 * t) / this.engine.duration + "%";
      if (this.engine.playing && !this.engine.loop && this.engine.context.currentTime >= this.engine.endTime) {
        this.engine.pause();
        this.engine.position = 0;
        this._refresh();
      }
      const now = performance.now();
      if (now - this.lastBars > 100) {
        this.lastBars = now;
        this._bars();
      }
      requestAnimationFrame(() => this._tick());
    }
    _bars() {
      const minimum = this.rules.min_listen_s || 0;
      if (!minimum) return;
      const heard = this.engine.listenMs();
      for (const [label, bar] of Object.entries(this.bars)) {
        const fraction = Math.min(1, heard[label] / (1000 * minimum));
        bar.style.width = 100 * fraction + "%";
        bar.classList.toggle("done", fraction >= 1);
      }
    }
    _onKey(event) {
      const target = event.target;
      if (target && (target.tagName === "TEXTAREA" || (target.tagName === "INPUT" && target.type !== "range"))) return;
      const key = event.key.toUpperCase();
      const labels = this.labels();
      if (event.key === " ") {
        event.preventDefault();
        this.togglePlay();
      } else if (key === "R") {
        this.select("REF");
      } else if (/^[1-9]$/.test(key) && Number(key) <= labels.length) {
        this.select(labels[Number(key) - 1]);
      } else if (/^[A-I]$/.test(key) && labels.includes(key)) {
        this.select(key);
      } else {
        return;
      }
      event.preventDefault();
    }
    async togglePlay() {
      if (this.engine.playing) this.engine.pause();
      else {
        await this.engine.play();
        this._countPlay(this.engine.active);
      }
      this._refresh();
    }
    async select(key) {
      this.engine.select(key);
      if (!this.engine.playing) await this.engine.play();
      this._countPlay(key);
      this._refresh();
    }
    _countPlay(key) {
      if (this.engine.playing && key in this.plays) this.plays[key] += 1;
    }
    _refresh() {
      if (!this.buttons) return;
      for (const [key, button] of Object.entries(this.buttons)) {
        button.classList.toggle("active", key === this.engine.active);
        button.classList.toggle("played", key === "REF" || this.plays[key] > 0);
      }
      for (const [label, slider] of Object.entries(this.sliders)) slider.disabled = !this._sliderEnabled(label);
      this.playButton.textContent = this.engine.playing ? "Pause" : "Play";
    }
    async submit() {
      if (!this.graded) {
        await this.options.onSubmit({});
        return;
      }
      const labels = this.labels();
      let scores = {};
      if (this.trial.mode === "ab") {
        if (!this.abChoice) {
          this.message.textContent = "Please choose which one is better.";
          return;
        }
        if (!this.abConfidence) {
          this.message.textContent = "Please say how sure you are.";
          return;
        }
        scores = { choice: this.abChoice, confidence: this.abConfidence };
      } else {
        for (const label of labels) scores[label] = label in this.scores ? this.scores[label] : null; // null: never moved
      }
      const heard = this.engine.listenMs();
      const listen = {};
      for (const label of labels) listen[label] = heard[label];
      this.submitButton.disabled = true;
      this.message.textContent = "Saving...";
      try {
        await this.options.onSubmit({
          trial_id: this.trial.trial_id,
          scores: scores,
          plays: this.plays,
          listen_ms: listen,
          time_ms: Math.round(performance.now() - this.startedAt),
          comment: this.comment ? this.comment.value : "",
        });
      } catch (error) {
        this.message.textContent = error.message; // the server's reason, e.g. a slider not yet moved
        this.submitButton.disabled = false;
      }
    }
    close() {
      this.closed = true;
      document.removeEventListener("keydown", this.keyHandler);
      this.engine.close();
    }
  }

  /* ---------------------------------------------------------------- the whole test */
  class App {
    constructor(root, options) {
      this.root = root;
      this.api = options.api || "/mushra/api";
      this.view = null;
      this.session = null;
      this.context = null;
      const mode = new URLSearchParams(window.location.search).get("mode");
      this.mode = mode === "ab" ? "ab" : "mushra";
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
        try {
          this.session = await request(this.api + "/resume", { session_id: saved });
          this.show();
          return;
        } catch (error) {
          storage.clear(); // an old or unknown session: start afresh
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
      if (step === "questionnaire") this.showQuestionnaire();
      else if (step === "volume") this.showVolume();
      else if (step === "familiarization") this.showFamiliarization(0);
      else if (step === "instructions") this.showInstructions();
      else if (step === "trial") this.showTrial();
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
          "The test has " + info.n_trials + " pages and takes about " + info.minutes + " minutes. Please use headphones in a quiet room."),
        el("h3", {}, "Your consent"),
        el("ul", { class: "mushra-consent-text" },
          el("li", {}, "Taking part is voluntary. You can stop at any time by closing this page; what you rated so far is kept unless you ask the experimenter to delete it."),
          el("li", {}, "We store your ratings, optional comments, the answers to three short questions (age range, listening experience, what you listen with) and the time you took. We do not ask for your name; do not type it anywhere."),
          el("li", {}, "The data are used for research on audio quality and published only as summaries.")),
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
          form.append(el("label", { class: "mushra-field" }, el("span", {}, question.text), select));
        } else {
          const input = el("input", { type: "text", class: "mushra-question", "data-key": question.key, maxlength: "80", autocomplete: "off" });
          fields[question.key] = input;
          form.append(el("label", { class: "mushra-field" }, el("span", {}, question.text), input));
        }
      }
      const next = el("button", { type: "button", class: "mushra-next" }, "Continue");
      next.addEventListener("click", () => {
        const answers = {};
        for (const [key, field] of Object.entries(fields)) answers[key] = field.value;
        this._advance("questionnaire", { session_id: this.session.session_id, answers: answers }, message).catch(() => {});
      });
      this._page("A few questions", el("p", {}, "These answers help us describe who took part. They are stored with your ratings, without your name."),
        form, el("div", { class: "mushra-actions" }, next), message);
    }
    showVolume() {
      const message = el("p", { class: "mushra-message", role: "alert" });
      const engine = new Engine(this.audioContext());
      let loaded = false, played = false;
      const play = el("button", { type: "button", class: "mushra-play" }, "Play");
      play.addEventListener("click", async () => {
        if (!loaded) return;
        if (engine.playing) engine.pause();
        else {
          engine.setLoop([0, engine.duration], 0);
          await engine.play(0);
          played = true;
        }
        play.textContent = engine.playing ? "Stop" : "Play";
      });
      const next = el("button", { type: "button", class: "mushra-next" }, "Continue");
      next.addEventListener("click", () => {
        if (!played) {
          message.textContent = "Please play the example and set your volume first.";
          return;
        }
        engine.close();
        this._advance("step", { session_id: this.session.session_id, step: "volume" }, message).catch(() => {});
      });
      this._page("Set your volume",
        this._rateWarning(),
        el("p", {}, "Put on your headphones. Press Play: an excerpt of the kind you will hear plays in a loop. " +
          "Set the volume of your computer to a comfortable level, as loud as you would like to listen to music for a while, but not louder."),
        el("p", {}, "Please do not change the volume during the test."),
        el("div", { class: "mushra-actions" }, play, next), message);
      this.view = { close: () => engine.close() };
      engine.load([{ key: "REF", url: this.session.volume_url }]).then(() => (loaded = true),
        (error) => (message.textContent = error.message));
    }
    showFamiliarization(index) {
      const pages = this.session.familiarization;
      const last = index === pages.length - 1;
      const holder = el("div", { class: "mushra-trial" });
      this._page("Familiarization: excerpt " + (index + 1) + " of " + pages.length,
        this._rateWarning(),
        el("div", { class: "mushra-info" },
          el("p", {}, "Before the test, listen to a few examples to get to know the kind of differences you will hear. " +
            "Play the reference and each lettered version; switching keeps the position, so you can compare the same moment. " +
            "Nothing on these pages is rated.")),
        holder);
      this.view = new TrialView(pages[index], {
        graded: false,
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
          (rules.active_slider_only ? " A version's slider can be moved while that version is selected." : "")),
      ];
      if (rules.min_listen_s > 0) items.push(el("li", {}, "Listen to every version for at least " + rules.min_listen_s + " s; the bar under each letter fills while you listen."));
      items.push(el("li", {}, "You can switch between the reference and the versions at any time, and loop a passage by dragging across the waveform."));
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
        this._rateWarning(), holder);
      this.header.append(this._progress());
      this.view = new TrialView(s.trial, {
        graded: true,
        rules: s.rules,
        context: this.audioContext(),
        onSubmit: async (payload) => {
          this.session = await request(this.api + "/submit", Object.assign({ session_id: s.session_id }, payload));
          this.show();
        },
      });
      this.view.render(holder).catch((error) => (holder.textContent = error.message));
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
