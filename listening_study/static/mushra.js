/* Blind MUSHRA (ITU-R BS.1534-3) and A/B player: Web Audio, sample-synchronous switching.
 *
 * Every stimulus of a trial is decoded into an AudioBuffer; on play, one AudioBufferSourceNode per
 * stimulus is started at the same AudioContext time and offset, each through its own GainNode.
 * Switching between the reference and the conditions only changes the gains (a 5 ms ramp against
 * clicks), so the position never resets and all stimuli stay sample-aligned. A loop region (drag on
 * the waveform) is applied to every source identically.
 *
 * The page only ever sees neutral labels (A, B, C...) and opaque stimulus URLs; the server maps them.
 * Server API (JSON, POST): {api}/start, {api}/resume, {api}/submit (see app.py).
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
  const RAMP_S = 0.005;

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value);
    }
    for (const child of children) {
      if (child == null) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  async function postJson(url, body) {
    const response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
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

  /* ---------------------------------------------------------------- audio engine */
  class Engine {
    constructor() {
      this.context = new (window.AudioContext || window.webkitAudioContext)();
      this.buffers = {}; // key -> AudioBuffer
      this.gains = {}; // key -> GainNode
      this.sources = [];
      this.active = null;
      this.playing = false;
      this.startContextTime = 0;
      this.startOffset = 0;
      this.position = 0; // seconds, while paused
      this.loop = null; // [start_s, end_s] or null
      this.onSwitch = null;
    }
    async load(stimuli) {
      // stimuli: [{key, url}]
      const decoded = await Promise.all(
        stimuli.map(async (s) => {
          const response = await fetch(s.url);
          if (!response.ok) throw new Error("could not load audio (" + response.status + ")");
          const bytes = await response.arrayBuffer();
          return [s.key, await this.context.decodeAudioData(bytes)];
        })
      );
      for (const [key, buffer] of decoded) {
        this.buffers[key] = buffer;
        const gain = this.context.createGain();
        gain.gain.value = 0;
        gain.connect(this.context.destination);
        this.gains[key] = gain;
      }
      this.active = stimuli[0].key;
    }
    get duration() {
      return Math.min(...Object.values(this.buffers).map((b) => b.duration));
    }
    currentTime() {
      if (!this.playing) return this.position;
      let t = this.startOffset + (this.context.currentTime - this.startContextTime);
      if (this.loop) {
        const [a, b] = this.loop;
        if (t >= b) t = a + ((t - a) % (b - a));
      } else if (t >= this.duration) {
        return this.duration;
      }
      return t;
    }
    select(key) {
      this.active = key;
      const now = this.context.currentTime;
      for (const [k, gain] of Object.entries(this.gains)) {
        gain.gain.cancelScheduledValues(now);
        gain.gain.setValueAtTime(gain.gain.value, now);
        gain.gain.linearRampToValueAtTime(k === key ? 1 : 0, now + RAMP_S);
      }
      if (this.onSwitch) this.onSwitch(key);
    }
    async play(offset) {
      if (this.context.state === "suspended") await this.context.resume();
      this._stopSources();
      let start = offset == null ? this.position : offset;
      if (start >= this.duration - 0.01) start = 0;
      if (this.loop && (start < this.loop[0] || start >= this.loop[1])) start = this.loop[0];
      const when = this.context.currentTime + 0.03; // every source starts at the same sample
      for (const [key, buffer] of Object.entries(this.buffers)) {
        const source = this.context.createBufferSource();
        source.buffer = buffer;
        if (this.loop) {
          source.loop = true;
          source.loopStart = this.loop[0];
          source.loopEnd = this.loop[1];
        }
        source.connect(this.gains[key]);
        source.start(when, start);
        this.sources.push(source);
      }
      this.startContextTime = when;
      this.startOffset = start;
      this.playing = true;
      this.select(this.active);
    }
    pause() {
      this.position = this.currentTime();
      this._stopSources();
      this.playing = false;
    }
    seek(t) {
      t = Math.max(0, Math.min(t, this.duration));
      if (this.playing) this.play(t);
      else this.position = t;
    }
    setLoop(region) {
      const t = this.currentTime();
      this.loop = region && region[1] - region[0] > 0.05 ? region : null;
      if (this.playing) this.play(t);
      else if (this.loop) this.position = this.loop[0];
    }
    _stopSources() {
      for (const source of this.sources) {
        try {
          source.stop();
        } catch (error) {
          /* already stopped */
        }
        source.disconnect();
      }
      this.sources = [];
    }
    close() {
      this._stopSources();
      this.context.close();
    }
  }

  /* ---------------------------------------------------------------- waveform + loop bar */
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

  /* ---------------------------------------------------------------- one trial */
  class TrialView {
    constructor(app, trial, options) {
      this.app = app;
      this.trial = trial;
      this.options = options || {};
      this.plays = {};
      this.scores = {};
      this.startedAt = performance.now();
      this.engine = new Engine();
      this.keyHandler = (event) => this._onKey(event);
    }
    labels() {
      return this.trial.conditions.map((c) => c.label);
    }
    async render(container) {
      const trial = this.trial;
      const isAb = trial.mode === "ab";
      container.replaceChildren();
      const status = el("p", { class: "mushra-status" }, "Loading audio...");
      container.append(status);
      const stimuli = [];
      if (trial.reference_url) stimuli.push({ key: "REF", url: trial.reference_url });
      for (const c of trial.conditions) stimuli.push({ key: c.label, url: c.url });
      await this.engine.load(stimuli);
      status.remove();

      // transport + waveform
      this.playButton = el("button", { class: "mushra-play", type: "button", onclick: () => this.togglePlay() }, "Play");
      this.timeLabel = el("span", { class: "mushra-time" }, "0.00 s");
      const clearLoop = el("button", { type: "button", onclick: () => this._setLoop(null) }, "Clear loop");
      this.canvas = el("canvas", { class: "mushra-wave", width: "900", height: "80" });
      this.overlay = el("div", { class: "mushra-overlay" });
      this.loopBox = el("div", { class: "mushra-loop" });
      this.cursor = el("div", { class: "mushra-cursor" });
      this.overlay.append(this.loopBox, this.cursor);
      const wave = el("div", { class: "mushra-wavebox" }, this.canvas, this.overlay);
      container.append(
        el("div", { class: "mushra-transport" }, this.playButton, this.timeLabel, clearLoop,
          el("span", { class: "mushra-hint" }, "Click the waveform to seek, drag to set a loop. Keys: space play/pause, R reference, 1-9 or A-I conditions.")),
        wave
      );
      drawWaveform(this.canvas, this.engine.buffers[stimuli[0].key]);
      this._bindWave(wave);

      // reference + conditions
      this.buttons = {};
      const rows = el("div", { class: isAb ? "mushra-ab" : "mushra-grid" });
      if (trial.reference_url) {
        this.buttons.REF = el("button", { class: "mushra-select mushra-ref", type: "button", "data-key": "REF", onclick: () => this.select("REF") }, "Reference");
        rows.append(el("div", { class: "mushra-col mushra-refcol" }, this.buttons.REF, isAb ? null : this._scaleLegend()));
      }
      for (const c of trial.conditions) {
        this.plays[c.label] = 0;
        this.buttons[c.label] = el("button", { class: "mushra-select", type: "button", "data-key": c.label, onclick: () => this.select(c.label) }, c.label);
        const col = el("div", { class: "mushra-col" }, this.buttons[c.label]);
        if (!isAb) {
          const value = el("output", { class: "mushra-value" }, "50");
          const slider = el("input", { type: "range", min: "0", max: "100", step: "1", value: "50", class: "mushra-slider", "data-label": c.label, "aria-label": "score " + c.label, orient: "vertical" });
          slider.addEventListener("input", () => {
            this.scores[c.label] = Number(slider.value);
            value.textContent = slider.value;
          });
          this.scores[c.label] = 50;
          col.append(slider, value);
        }
        rows.append(col);
      }
      container.append(rows);
      if (isAb) container.append(this._abControls());
      this.comment = el("textarea", { class: "mushra-comment", rows: "2", placeholder: "Optional comment" });
      this.message = el("p", { class: "mushra-message", role: "alert" });
      this.submitButton = el("button", { class: "mushra-submit", type: "button", onclick: () => this.submit() }, this.options.submitText || "Submit and continue");
      container.append(this.comment, el("div", { class: "mushra-actions" }, this.submitButton), this.message);

      this.engine.onSwitch = (key) => this._onSwitch(key);
      this.engine.select(this.engine.active);
      document.addEventListener("keydown", this.keyHandler);
      this._tick();
      this._refresh();
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
      let downX = null;
      const toTime = (event) => {
        const rect = wave.getBoundingClientRect();
        return Math.max(0, Math.min(1, (event.clientX - rect.left) / rect.width)) * this.engine.duration;
      };
      wave.addEventListener("mousedown", (event) => (downX = toTime(event)));
      wave.addEventListener("mouseup", (event) => {
        if (downX == null) return;
        const upX = toTime(event);
        if (Math.abs(upX - downX) < 0.05) this.engine.seek(upX);
        else this._setLoop([Math.min(downX, upX), Math.max(downX, upX)]);
        downX = null;
      });
    }
    _setLoop(region) {
      this.engine.setLoop(region);
      const loop = this.engine.loop;
      const d = this.engine.duration;
      this.loopBox.style.display = loop ? "block" : "none";
      if (loop) {
        this.loopBox.style.left = (100 * loop[0]) / d + "%";
        this.loopBox.style.width = (100 * (loop[1] - loop[0])) / d + "%";
      }
    }
    _tick() {
      if (this.closed) return;
      const t = this.engine.currentTime();
      this.timeLabel.textContent = t.toFixed(2) + " / " + this.engine.duration.toFixed(2) + " s";
      this.cursor.style.left = (100 * t) / this.engine.duration + "%";
      if (this.engine.playing && !this.engine.loop && t >= this.engine.duration) {
        this.engine.pause();
        this.engine.position = 0;
        this._refresh();
      }
      requestAnimationFrame(() => this._tick());
    }
    _onKey(event) {
      const target = event.target;
      if (target && (target.tagName === "TEXTAREA" || (target.tagName === "INPUT" && target.type !== "range"))) return;
      const key = event.key.toUpperCase();
      const labels = this.labels();
      if (event.key === " ") {
        event.preventDefault();
        this.togglePlay();
      } else if (key === "R" && this.trial.reference_url) {
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
      else await this.engine.play();
      this._countPlay(this.engine.active);
      this._refresh();
    }
    async select(key) {
      this.engine.select(key);
      if (!this.engine.playing) await this.engine.play();
      this._countPlay(key);
      this._refresh();
    }
    _onSwitch() {
      this._refresh();
    }
    _countPlay(key) {
      if (this.engine.playing && key in this.plays) this.plays[key] += 1;
    }
    allPlayed() {
      return this.labels().every((label) => this.plays[label] > 0);
    }
    _refresh() {
      if (!this.buttons) return;
      for (const [key, button] of Object.entries(this.buttons)) {
        button.classList.toggle("active", key === this.engine.active);
        button.classList.toggle("played", key === "REF" || this.plays[key] > 0);
      }
      this.playButton.textContent = this.engine.playing ? "Pause" : "Play";
      // Still clickable while blocked: the click explains what is missing instead of doing nothing.
      this.submitButton.classList.toggle("blocked", !this.options.training && !this.allPlayed());
      if (this.allPlayed() && this.message.textContent.startsWith("Please listen")) this.message.textContent = "";
    }
    async submit() {
      if (this.options.training) {
        await this.options.onSubmit({});
        return;
      }
      if (!this.allPlayed()) {
        const missing = this.labels().filter((l) => !(this.plays[l] > 0));
        this.message.textContent = "Please listen to every condition before submitting (not yet played: " + missing.join(", ") + ").";
        return;
      }
      let scores = this.scores;
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
      }
      this.submitButton.disabled = true;
      this.message.textContent = "Saving...";
      try {
        await this.options.onSubmit({
          trial_id: this.trial.trial_id,
          scores: scores,
          plays: this.plays,
          time_ms: Math.round(performance.now() - this.startedAt),
          comment: this.comment.value,
        });
      } catch (error) {
        this.message.textContent = error.message;
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
    }
    mount() {
      this.header = el("div", { class: "mushra-header" });
      this.body = el("div", { class: "mushra-body" });
      this.root.replaceChildren(this.header, this.body);
      this.showStart();
    }
    _closeView() {
      if (this.view) this.view.close();
      this.view = null;
    }
    showStart(error) {
      this._closeView();
      this.header.replaceChildren(el("h3", {}, "Listening test"));
      const participant = el("input", { type: "text", class: "mushra-participant", placeholder: "Participant code (e.g. P07, no real names)", maxlength: "40" });
      const mode = el("select", { class: "mushra-mode" }, el("option", { value: "mushra" }, "MUSHRA (rate every condition)"), el("option", { value: "ab" }, "Quick A/B preference"));
      const resumeId = el("input", { type: "text", class: "mushra-resume-id", placeholder: "Session id", maxlength: "64" });
      const message = el("p", { class: "mushra-message", role: "alert" }, error || "");
      const start = el("button", { type: "button", class: "mushra-start" }, "Start");
      const resume = el("button", { type: "button", class: "mushra-resume" }, "Resume");
      start.addEventListener("click", () => this._call("start", { participant_id: participant.value.trim(), mode: mode.value }, message));
      resume.addEventListener("click", () => this._call("resume", { session_id: resumeId.value.trim() }, message));
      this.body.replaceChildren(
        el("p", {}, "Use headphones in a quiet room. Each page plays a labelled reference and several versions of the same excerpt under neutral letters; rate how close each one is to the reference (0-100). One of them is the reference itself."),
        el("div", { class: "mushra-form" }, el("label", {}, "New session: ", participant, " ", mode, " ", start)),
        el("div", { class: "mushra-form" }, el("label", {}, "Resume a session: ", resumeId, " ", resume)),
        message
      );
    }
    async _call(endpoint, body, message) {
      message.textContent = "Please wait...";
      try {
        this.session = await postJson(this.api + "/" + endpoint, body);
        message.textContent = "";
        if (this.session.training) this.showTraining();
        else this.showTrial();
      } catch (error) {
        message.textContent = error.message;
      }
    }
    _progress() {
      const s = this.session;
      const done = s.n_done, total = s.n_trials;
      return el("div", { class: "mushra-progress" },
        el("span", { class: "mushra-session" }, "Session id: " + s.session_id + " (keep it to resume later)"),
        el("div", { class: "mushra-bar" }, el("div", { class: "mushra-fill", style: "width:" + (100 * done) / Math.max(total, 1) + "%" })),
        el("span", { class: "mushra-count" }, "Trial " + Math.min(done + 1, total) + " of " + total));
    }
    showTraining() {
      this._closeView();
      this.header.replaceChildren(el("h3", {}, "Training"), this._progress());
      const info = el("div", { class: "mushra-training-info" },
        el("p", {}, "This practice page is not recorded. Listen to the reference (R) and to each letter. Switching keeps the playback position, so you can compare the same moment."),
        el("p", {}, "One letter is the hidden reference: give it 100. One is a deliberately degraded low-quality version (the anchor): it should land near the bottom. Rate the others on the scale Bad 0-20, Poor 20-40, Fair 40-60, Good 60-80, Excellent 80-100."));
      const holder = el("div", { class: "mushra-trial" });
      this.body.replaceChildren(info, holder);
      this.view = new TrialView(this, this.session.training, {
        submitText: "Start the test",
        training: true,
        onSubmit: async () => {
          this.session = await postJson(this.api + "/training_done", { session_id: this.session.session_id });
          this.showTrial();
        },
      });
      this.view.render(holder).catch((error) => (holder.textContent = error.message));
    }
    showTrial() {
      this._closeView();
      const s = this.session;
      if (!s.trial) {
        this.header.replaceChildren(el("h3", {}, "Thank you!"), this._progress());
        this.body.replaceChildren(el("p", { class: "mushra-done" }, "All trials are done. Your answers are saved."));
        return;
      }
      this.header.replaceChildren(el("h3", {}, s.mode === "ab" ? "Which version is better?" : "Rate each version against the reference"), this._progress());
      const holder = el("div", { class: "mushra-trial" });
      this.body.replaceChildren(holder);
      this.view = new TrialView(this, s.trial, {
        onSubmit: async (payload) => {
          this.session = await postJson(this.api + "/submit", Object.assign({ session_id: s.session_id }, payload));
          this.showTrial();
        },
      });
      this.view.render(holder).catch((error) => (holder.textContent = error.message));
    }
  }

  window.MushraApp = {
    mount(root, options) {
      const app = new App(root, options || {});
      app.mount();
      window.mushra = {
        app: app,
        currentTime: () => (app.view ? app.view.engine.currentTime() : 0),
        active: () => (app.view ? app.view.engine.active : null),
        playing: () => Boolean(app.view && app.view.engine.playing),
        plays: () => (app.view ? Object.assign({}, app.view.plays) : {}),
        ready: () => Boolean(app.view && app.view.buttons),
      };
      return app;
    },
  };
})();
