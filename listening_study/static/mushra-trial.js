/* Blind MUSHRA (ITU-R BS.1534-3) and A/B listening test: one page with a player (TrialView), the
 * graded trial and the ungraded pages alike (volume, familiarization): the Play/Stop and version
 * buttons, the waveform with its loop, and one slider per version on the Bad-Excellent scale.
 *
 * Loaded after mushra-audio.js (window.MushraAudio) and before mushra.js, which builds the session flow
 * on it; exports window.MushraTrial = {TrialView, el, localStore (localStorage that never throws)}.
 *
 * options of a TrialView: {graded, practice (ungraded sliders: the familiarization's practice with the
 * scale, never sent), rules, onSubmit(payload), submitText, context, draftKey}. With a draftKey, the
 * sliders, plays, listening times and comment are kept in localStorage as they change and restored when
 * the same trial is shown again (a reload), and dropped once it is submitted.
 */
(function () {
  "use strict";
  const PRACTICE_PROMPT = "Please listen first:"; // a practice page's refusal, rechecked as the listener plays

  const BANDS = [
    [80, "Excellent"],
    [60, "Good"],
    [40, "Fair"],
    [20, "Poor"],
    [0, "Bad"],
  ];
  const { Engine, drawWaveform } = window.MushraAudio;
  const DRAFT_KEY = "mss-mushra-draft"; // one draft at a time: the trial in progress

  /* localStorage that never throws (private mode, storage switched off): null, or nothing stored. */
  const localStore = {
    get(key) {
      try { return window.localStorage.getItem(key); } catch (error) { return null; }
    },
    set(key, value) {
      try { window.localStorage.setItem(key, value); } catch (error) { /* no storage: nothing kept */ }
    },
    remove(key) {
      try { window.localStorage.removeItem(key); } catch (error) { /* nothing stored */ }
    },
  };

  const drafts = {
    read(key) {
      try {
        const draft = JSON.parse(localStore.get(DRAFT_KEY) || "null");
        return draft && draft.key === key ? draft : null;
      } catch (error) {
        return null; // a damaged entry: nothing to restore
      }
    },
    write(draft) {
      localStore.set(DRAFT_KEY, JSON.stringify(draft));
    },
    clear(key) {
      if (this.read(key)) localStore.remove(DRAFT_KEY); // only this trial's: the next page may have saved its own
    },
  };

  function megabytes(bytes) {
    return (bytes / 1e6).toFixed(1);
  }

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

  /* ---------------------------------------------------------------- one page with a player */
  class TrialView {
    /* options: {graded, rules, onSubmit(payload), submitText, context} */
    constructor(trial, options) {
      this.trial = trial;
      this.options = options;
      this.rules = options.rules || {};
      this.plays = {};
      this.started = false; // nothing looks selected before the first play (the reference is merely first in line)
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
    /* Sliders on the page: graded trials, and the familiarization's practice (never sent). */
    get hasSliders() {
      return this.trial.mode !== "ab" && (this.graded || Boolean(this.options.practice));
    }
    async render(container) {
      const trial = this.trial;
      const isAb = trial.mode === "ab";
      container.replaceChildren();
      const bar = el("progress", { class: "mushra-loading", max: "1", value: "0" });
      const status = el("p", { class: "mushra-status", role: "status" }, "Loading audio...", el("br"), bar);
      container.append(status);
      const stimuli = [{ key: "REF", url: trial.reference_url }];
      for (const c of trial.conditions) stimuli.push({ key: c.label, url: c.url });
      await this.engine.load(stimuli, (loaded, total) => {
        if (!total) return;
        bar.value = loaded / total;
        status.firstChild.textContent = "Loading audio: " + megabytes(loaded) + " of " + megabytes(total) + " MB";
      });
      this.engine.loopAll = true; // the whole excerpt loops unless a passage is dragged (webMUSHRA's default)
      status.remove();

      // transport + waveform with the loop region
      this.playButton = el("button", { class: "mushra-play", type: "button", onclick: () => this.togglePlay() }, "Play");
      this.timeLabel = el("span", { class: "mushra-time" }, "0.00 s");
      this.loopLabel = el("span", { class: "mushra-loop-label" }, "Looping the whole excerpt");
      // hidden (keeping its place, so nothing shifts) while there is no loop to clear; a class, not a style
      // attribute: the page's Content-Security-Policy allows no inline styles
      this.clearLoop = el("button", { type: "button", class: "mushra-clear-loop no-loop", onclick: () => this._setLoop(null) }, "Clear loop");
      const clearLoop = this.clearLoop;
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
          "The excerpt plays in a loop. Tap or click the waveform to jump, drag across it to loop a passage (at least " + minLoop + " s).",
          this.hasSliders && this.rules.active_slider_only ? " A click or tap on another version's slider selects it; the next move rates it." : "",
          el("span", { class: "mushra-keys" }, " Keys: space play/pause, R reference, " + this._keyRange() + " versions."))
      );
      drawWaveform(this.canvas, this.engine.buffers.REF);
      this._bindWave(wave);

      // reference + conditions
      this.buttons = {};
      this.bars = {};
      this.sliders = {};
      this.values = {};
      const heardBars = this.graded && this.rules.min_listen_s > 0; // a bar under each letter: the sliders sit lower
      const rows = el("div", { class: (isAb ? "mushra-ab" : "mushra-grid") + (heardBars ? "" : " no-heard") });
      this.buttons.REF = el("button", { class: "mushra-select mushra-ref", type: "button", "data-key": "REF", onclick: () => this.select("REF") }, "Reference");
      rows.append(el("div", { class: "mushra-col mushra-refcol" }, this.buttons.REF, this.hasSliders ? this._scaleLegend() : null));
      for (const c of trial.conditions) {
        this.plays[c.label] = 0;
        this.buttons[c.label] = el("button", { class: "mushra-select", type: "button", "data-key": c.label, onclick: () => this.select(c.label) }, c.label);
        const bar = el("span", { class: "mushra-heard-fill" });
        this.bars[c.label] = bar;
        const col = el("div", { class: "mushra-col" }, this.buttons[c.label]);
        if (heardBars) col.append(el("span", { class: "mushra-heard", title: "listened" }, bar));
        if (this.hasSliders) col.append(...this._slider(c.label));
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
      this._restoreDraft();
      this._tick();
      this._refresh();
    }
    /* ------------------------------------------------ the draft of a graded trial (localStorage) */
    _restoreDraft() {
      const draft = this.options.draftKey ? drafts.read(this.options.draftKey) : null;
      if (!draft) return;
      for (const [label, score] of Object.entries(draft.scores || {})) {
        if (this.sliders[label] && Number.isInteger(score)) this._rate(label, score);
      }
      for (const [label, count] of Object.entries(draft.plays || {})) {
        if (label in this.plays && Number.isInteger(count)) this.plays[label] = count;
      }
      for (const [key, seconds] of Object.entries(draft.listened || {})) {
        if (key in this.engine.listened && Number.isFinite(seconds)) this.engine.listened[key] = seconds;
      }
      if (this.comment && typeof draft.comment === "string") this.comment.value = draft.comment;
    }
    _saveDraft() {
      if (!this.options.draftKey || this.closed || this.submitted) return;
      this.engine.listenMs(); // brings the listening times up to now
      drafts.write({ key: this.options.draftKey, scores: this.scores, plays: this.plays,
        listened: this.engine.listened, comment: this.comment ? this.comment.value : "" });
    }
    _slider(label) {
      const value = el("output", { class: "mushra-value" }, "–");
      const slider = el("input", {
        type: "range", min: "0", max: "100", step: "1", value: "50", class: "mushra-slider unrated",
        "data-label": label, "aria-label": "score " + label,
      });
      const rate = () => {
        if (!this._sliderEnabled(label)) {
          // by keyboard: an arrow on another version's slider selects that version and moves nothing, as a
          // click does; the next press rates it, heard
          this.select(label);
          slider.value = label in this.scores ? String(this.scores[label]) : "50";
          return;
        }
        this._rate(label, Number(slider.value));
        if (this.message) this.message.textContent = ""; // a refusal's message is about the ratings before this move
        this._saveDraft();
      };
      slider.addEventListener("input", rate);
      // A click or tap on the resting value (50) moves nothing, so no "input" fires: rate it all the same. Only a
      // press or key that began on this slider while it was unlocked: the press that selected a locked one ends
      // on it unlocked, and must not rate it.
      let pressed = false;
      let keyed = false;
      slider.addEventListener("pointerdown", () => (pressed = true));
      slider.addEventListener("pointerup", () => {
        if (pressed && !(label in this.scores)) rate();
        pressed = false;
      });
      slider.addEventListener("keydown", () => (keyed = this._sliderEnabled(label)));
      slider.addEventListener("keyup", (event) => keyed && !(label in this.scores) && event.key.startsWith("Arrow") && rate());
      // Another version's slider is "locked" (its input takes no pointer, see mushra.css): a mouse press on it,
      // or a tap, selects that version, which plays from the same moment, and moves nothing, so a rating is
      // only ever given to the version being heard. A tap is a click, so a swipe that scrolls a phone's page
      // over it selects nothing and changes no rating; a mouse press selects at once, even if the drag then
      // leaves the slider.
      const slot = el("span", { class: "mushra-slot" }, slider);
      const choose = () => !this._sliderEnabled(label) && this.select(label);
      slot.addEventListener("pointerdown", (event) => event.pointerType === "mouse" && choose());
      slot.addEventListener("click", choose);
      this.sliders[label] = slider;
      this.values[label] = value;
      return [slot, value];
    }
    _rate(label, score) {
      const slider = this.sliders[label];
      slider.value = String(score);
      this.scores[label] = score;
      slider.classList.remove("unrated");
      this.values[label].textContent = String(score);
    }
    _sliderEnabled(label) {
      return !this.rules.active_slider_only || this.engine.active === label;
    }
    _keyRange() {
      const n = this.labels().length; // up to 12 (study.py): digits reach 9, letters A-L
      const digits = n > 1 ? "1-" + Math.min(n, 9) : "1";
      return digits + " or " + (n > 1 ? "A-" + String.fromCharCode(64 + n) : "A");
    }
    _say(text) {
      this.message.textContent = text;
      this.message.scrollIntoView({ block: "nearest" }); // below the fold on a short screen otherwise
    }
    _scaleLegend() {
      return el("div", { class: "mushra-legend" }, ...BANDS.map(([low, name]) =>
        el("div", { class: "mushra-band" }, name, el("span", { class: "mushra-band-range" }, " " + (low + 20) + "-" + low))));
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
      // Pointer events: mouse, pen and touch alike (the box's CSS lets a vertical swipe scroll the page, a
      // sideways drag is ours). Captured, so a drag that ends beyond the box still ends here.
      wave.addEventListener("pointerdown", (event) => {
        if (!event.isPrimary || event.button > 0) return;
        downAt = toTime(event);
        if (wave.setPointerCapture) wave.setPointerCapture(event.pointerId);
      });
      wave.addEventListener("pointerup", (event) => {
        if (downAt == null || !event.isPrimary) return;
        const upAt = toTime(event);
        if (Math.abs(upAt - downAt) < 0.05) this.engine.seek(upAt);
        else this._setLoop([Math.min(downAt, upAt), Math.max(downAt, upAt)]);
        downAt = null;
      });
      wave.addEventListener("pointercancel", () => (downAt = null));
    }
    _setLoop(region) {
      const minimum = this.rules.min_loop_s || 0.5;
      if (!this.engine.setLoop(region, minimum)) {
        const length = region[1] - region[0];
        this._say("A loop must be at least " + minimum + " s long (that one was " + length.toFixed(2) + " s).");
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
        this.loopLabel.textContent = "Looping the whole excerpt";
      }
      this.clearLoop.classList.toggle("no-loop", !loop);
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
        this._recheckPractice();
      }
      if (now - (this.lastDraft || 0) > 1000) {
        this.lastDraft = now;
        this._saveDraft(); // listening times and plays survive a reload (to the last second)
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
      } else if (/^[A-L]$/.test(key) && labels.includes(key)) {
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
        this.started = true;
        this._countPlay(this.engine.active);
      }
      this._refresh();
    }
    async select(key) {
      this.engine.select(key);
      if (!this.engine.playing) await this.engine.play();
      this.started = true;
      this._countPlay(key);
      this._refresh();
    }
    /* A practice page's "Please listen first" follows the listening: it names what is still left, and goes
     * once nothing is (the Reference counts once heard, the letters once played). */
    _recheckPractice() {
      if (!this.options.practice || !this.message.textContent.startsWith(PRACTICE_PROMPT)) return;
      const unheard = this._unheard();
      this.message.textContent = unheard.length ? this._practicePrompt(unheard) : "";
      if (!unheard.length) this._refresh(); // the Reference button's border, now that it was heard
    }
    _practicePrompt(unheard) {
      return PRACTICE_PROMPT + " play the reference and every version before you go on (not played yet: " + unheard.join(", ") + ").";
    }
    /* What a practice page has not played yet: "Reference" and the letters, in screen order. */
    _unheard() {
      const heard = this.engine.listenMs();
      const missing = heard.REF > 0 ? [] : ["Reference"];
      return missing.concat(this.labels().filter((label) => !(this.plays[label] > 0)));
    }
    _countPlay(key) {
      if (this.engine.playing && key in this.plays) this.plays[key] += 1;
      this._saveDraft();
    }
    _refresh() {
      if (!this.buttons) return;
      for (const [key, button] of Object.entries(this.buttons)) {
        button.classList.toggle("active", this.started && key === this.engine.active);
        button.classList.toggle("played", key === "REF" ? this.engine.listenMs().REF > 0 : this.plays[key] > 0);
      }
      for (const [label, slider] of Object.entries(this.sliders)) {
        const locked = !this._sliderEnabled(label);
        slider.classList.toggle("locked", locked);
        // a screen reader hears what a locked slider does: its first key press selects the version, not rates it
        slider.setAttribute("aria-label", locked ? "score " + label + ", select version " + label + " to rate it" : "score " + label);
      }
      this.playButton.textContent = this.engine.playing ? "Pause" : "Play";
    }
    async submit() {
      if (!this.graded) {
        const unheard = this._unheard();
        if (this.options.practice && unheard.length) {
          this._say(this._practicePrompt(unheard));
          return;
        }
        await this.options.onSubmit({});
        return;
      }
      const labels = this.labels();
      let scores = {};
      if (this.trial.mode === "ab") {
        if (!this.abChoice) {
          this._say("Please choose which one is better.");
          return;
        }
        if (!this.abConfidence) {
          this._say("Please say how sure you are.");
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
      this._saveDraft();
      try {
        await this.options.onSubmit({
          trial_id: this.trial.trial_id,
          scores: scores,
          plays: this.plays,
          listen_ms: listen,
          time_ms: Math.round(performance.now() - this.startedAt),
          comment: this.comment ? this.comment.value : "",
        });
        this.submitted = true;
        drafts.clear(this.options.draftKey); // stored on the server: nothing left to restore
      } catch (error) {
        this._say(error.message); // the server's reason, e.g. a slider not yet moved
        this.submitButton.disabled = false;
      }
    }
    close() {
      this._saveDraft();
      this.closed = true;
      document.removeEventListener("keydown", this.keyHandler);
      this.engine.close();
    }
  }

  /* ---------------------------------------------------------------- the whole test */
  window.MushraTrial = { TrialView, el, localStore };
})();
