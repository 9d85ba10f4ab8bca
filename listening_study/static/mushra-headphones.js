/* The headphone screening before the trials: the antiphase loudness test of Woods et al. (2017)
 * (listening_study/headphones.py has the stimuli, the design and the scoring).
 *
 *   window.MushraHeadphones.render(container, check, onSubmit, options) -> HeadphoneCheck
 *
 * check, from the server (listening_study.design.headphones.check_json):
 *   {trials: [{url}], question, n_pass, choices?: ["First", "Second", "Third"], instructions?,
 *    n_trials?, max_plays?: 1}
 * window.MushraHeadphones.clearDraft(): forget a check's draft (the page calls it once past the check).
 * onSubmit({answers: [0-2, ...]}) -> Promise, called once after the last answer (one answer per trial,
 *   in trial order; 0 = first tone); a rejected promise's message is shown with a "Try again" button.
 * options: {context?: AudioContext, draftKey?: string}: the page's context (otherwise one is made and closed
 *   at the end); with a draftKey, the answers so far and the current sound's plays are kept in localStorage,
 *   so a reload resumes the check at the sound it left (a sound played before the reload still counts as
 *   played: its plays are not given back, and it can be answered), and the draft is cleared once the
 *   answers are saved.
 *
 * One sound at a time: Play (the WAV decoded with AudioContext.decodeAudioData, played once through an
 * AudioBufferSourceNode), then the three answer buttons, enabled once the sound has played to its end,
 * then Next. Each sound can be played max_plays times (1, as in Woods et al.; the server may allow 2).
 * Answers stay in the page (and, with a draftKey, in its draft) until the last one. Loaded after
 * mushra-trial.js, whose `el` and `localStore` helpers it uses.
 */
(function () {
  "use strict";

  const STIMULUS_RATE = 44100;
  const START_DELAY_S = 0.05; // the source starts this far ahead of the context's clock
  const DEFAULT_CHOICES = ["First", "Second", "Third"];
  function defaultInstructions(maxPlays) {
    return "Put on headphones. Each sound has three tones; which tone was the quietest? " +
      (maxPlays > 1 ? "You can play each sound at most twice." : "You can play each sound only once, so listen carefully.");
  }

  const { el, localStore } = window.MushraTrial; // the page's helpers (mushra-trial.js is loaded first)
  const DRAFT_KEY = "mss-mushra-headphones"; // one check at a time: the session's, by its draftKey

  /* The check in progress: {key, answers: [0-2...], plays, heard} of the sound at answers.length. */
  const drafts = {
    read(key) {
      try {
        const draft = JSON.parse(localStore.get(DRAFT_KEY) || "null");
        const valid = draft && draft.key === key && Array.isArray(draft.answers) &&
          draft.answers.every((answer) => answer === 0 || answer === 1 || answer === 2);
        return valid ? draft : null;
      } catch (error) {
        return null; // a damaged entry: nothing to restore
      }
    },
    write(draft) {
      localStore.set(DRAFT_KEY, JSON.stringify(draft));
    },
    clear() {
      localStore.remove(DRAFT_KEY);
    },
  };

  function makeContext() {
    if (window.MushraAudio && window.MushraAudio.makeAudioContext) return window.MushraAudio.makeAudioContext();
    const Context = window.AudioContext || window.webkitAudioContext;
    try {
      return new Context({ sampleRate: STIMULUS_RATE, latencyHint: "interactive" });
    } catch (error) {
      return new Context(); // resamples
    }
  }

  /* decodeAudioData in both forms: the promise one and the older callback one (Safari < 14.1). */
  function decode(context, bytes) {
    return new Promise((resolve, reject) => {
      const promise = context.decodeAudioData(bytes, resolve, reject);
      if (promise && promise.then) promise.then(resolve, reject);
    });
  }

  class HeadphoneCheck {
    constructor(container, check, onSubmit, options) {
      if (!check || !Array.isArray(check.trials) || !check.trials.length) throw new Error("the headphone check has no sounds");
      this.container = container;
      this.check = check;
      this.onSubmit = onSubmit;
      this.ownContext = !(options && options.context);
      this.context = this.ownContext ? makeContext() : options.context;
      this.maxPlays = Math.max(1, Math.min(2, Number(check.max_plays) || 1));
      this.choices = Array.isArray(check.choices) && check.choices.length === 3 ? check.choices : DEFAULT_CHOICES;
      this.draftKey = (options && options.draftKey) || null;
      this.answers = [];
      this.index = 0;
      this.closed = false;
      this.source = null;
    }
    get nTrials() {
      return this.check.trials.length;
    }
    /* ---------------------------------------------------------------- one sound */
    showTrial(index, restored) {
      this.index = index;
      this.buffer = null;
      this.plays = restored ? Math.min(this.maxPlays, Math.max(0, Number(restored.plays) || 0)) : 0;
      // played before a reload: heard, even if the reload cut it short (its plays are spent)
      this.heard = Boolean(restored && (restored.heard || this.plays >= this.maxPlays));
      this.selected = null;
      const last = index === this.nTrials - 1;
      this.playButton = el("button", { type: "button", class: "mushra-play mushra-hp-play", disabled: true, onclick: () => this.play() }, "Play");
      this.status = el("span", { class: "mushra-hp-status" }, "Loading the sound...");
      this.choiceButtons = this.choices.map((text, position) =>
        el("button", {
          type: "button", class: "mushra-select mushra-hp-choice", disabled: true, "data-position": String(position),
          "aria-pressed": "false", onclick: () => this.choose(position),
        }, text));
      this.nextButton = el("button", { type: "button", class: "mushra-next mushra-hp-next", disabled: true, onclick: () => this.next() },
        last ? "Finish" : "Next");
      this.message = el("p", { class: "mushra-message", role: "alert" });
      this.body.replaceChildren(
        el("p", { class: "mushra-hp-count" }, "Sound " + (index + 1) + " of " + this.nTrials),
        el("div", { class: "mushra-transport" }, this.playButton, this.status),
        el("p", { class: "mushra-hp-question" }, this.check.question || "Which tone was the quietest?"),
        el("div", { class: "mushra-hp-choices" }, ...this.choiceButtons),
        el("div", { class: "mushra-actions" }, this.nextButton),
        this.message
      );
      if (this.heard) for (const button of this.choiceButtons) button.disabled = false;
      if (this.plays >= this.maxPlays) { // spent before a reload: not fetched again (the server sends it twice at most)
        this.status.textContent = "You played this sound before the page was reloaded. Please answer.";
        return;
      }
      this._load(this.check.trials[index].url, index);
    }
    _saveDraft() {
      if (this.draftKey && !this.closed) {
        drafts.write({ key: this.draftKey, answers: this.answers, plays: this.plays, heard: this.heard });
      }
    }
    async _load(url, index) {
      try {
        const response = await fetch(url);
        if (response.status === 404) { // sent twice already (reloads while it loaded): answer without it
          if (this.closed || index !== this.index) return;
          this.status.textContent = "";
          this.message.textContent = "This sound cannot be sent again after the page was reloaded. " +
            (this.heard ? "Please answer." : "Please answer with your best guess.");
          this.heard = true;
          for (const button of this.choiceButtons) button.disabled = false;
          this._saveDraft();
          return;
        }
        if (!response.ok) throw new Error("could not load the sound (" + response.status + ")");
        const buffer = await decode(this.context, await response.arrayBuffer());
        if (this.closed || index !== this.index) return;
        this.buffer = buffer;
        this.playButton.disabled = false; // loaded only while a play is left (showTrial)
        this.status.textContent = !this.plays ? "Press Play when you are ready."
          : "You played this sound before the page was reloaded. You can play it once more.";
      } catch (error) {
        if (this.closed || index !== this.index) return;
        this.status.textContent = "";
        this.message.textContent = error.message || "could not load the sound";
      }
    }
    async play() {
      if (!this.buffer || this.source || this.plays >= this.maxPlays) return;
      this.playButton.disabled = true;
      if (this.context.state !== "running") await this.context.resume();
      if (this.context.state !== "running") {
        this.playButton.disabled = false; // not counted: nothing was heard
        this.message.textContent = "Your browser did not start the sound. Please press Play again.";
        return;
      }
      this.message.textContent = "";
      const source = this.context.createBufferSource();
      source.buffer = this.buffer;
      source.connect(this.context.destination);
      source.onended = () => this._ended(source);
      this.source = source;
      this.plays += 1;
      this._saveDraft(); // a reload from here on finds this play spent
      this.status.textContent = "Playing...";
      source.start(this.context.currentTime + START_DELAY_S);
    }
    _ended(source) {
      source.disconnect();
      if (this.closed || source !== this.source) return;
      this.source = null;
      this.heard = true;
      this._saveDraft();
      const left = this.maxPlays - this.plays;
      this.playButton.disabled = left <= 0;
      this.status.textContent = left > 0 ? "You can play it once more." : "";
      for (const button of this.choiceButtons) button.disabled = false;
    }
    choose(position) {
      if (!this.heard) return;
      this.selected = position;
      this.choiceButtons.forEach((button, k) => {
        button.classList.toggle("selected", k === position);
        button.setAttribute("aria-pressed", k === position ? "true" : "false");
      });
      this.nextButton.disabled = false;
    }
    next() {
      if (this.selected == null || this.source) return;
      this.answers.push(this.selected);
      if (this.answers.length < this.nTrials) {
        this.showTrial(this.answers.length);
        this._saveDraft();
      } else this.submit();
    }
    /* ---------------------------------------------------------------- the end */
    async submit() {
      const message = el("p", { class: "mushra-message", role: "alert" }, "Saving...");
      const retry = el("button", { type: "button", class: "mushra-next mushra-hp-retry", hidden: true, onclick: () => this.submit() }, "Try again");
      this.body.replaceChildren(el("p", {}, "Thank you: that was the last sound."), el("div", { class: "mushra-actions" }, retry), message);
      try {
        this._saveDraft(); // every answer kept until the server has them
        await this.onSubmit({ answers: this.answers.slice() });
        if (this.draftKey) drafts.clear();
        message.textContent = "";
        this.close();
      } catch (error) {
        message.textContent = (error && error.message) || "The answers could not be saved.";
        retry.hidden = false;
      }
    }
    render() {
      this.body = el("div", { class: "mushra-hp-body" });
      this.container.replaceChildren(
        el("div", { class: "mushra-headphones" },
          el("div", { class: "mushra-info mushra-hp-instructions" },
            el("p", {}, this.check.instructions || defaultInstructions(this.maxPlays)),
            el("p", {}, "There are " + this.nTrials + " sounds. Answer with: " + this.choices.join(" / ") + ".")),
          this.body)
      );
      const draft = this.draftKey ? drafts.read(this.draftKey) : null;
      if (draft && draft.answers.length >= this.nTrials) {
        this.answers = draft.answers.slice(0, this.nTrials); // answered in full; only the saving was cut short
        this.submit();
      } else if (draft) {
        this.answers = draft.answers.slice();
        this.showTrial(this.answers.length, draft);
      } else this.showTrial(0);
      return this;
    }
    close() {
      if (this.closed) return;
      this.closed = true;
      if (this.source) {
        try {
          this.source.stop();
        } catch (error) {
          /* already stopped */
        }
        this.source = null;
      }
      if (this.ownContext && this.context.close) this.context.close().catch(() => {});
    }
  }

  window.MushraHeadphones = {
    HeadphoneCheck,
    /* Forget the check in progress (the session is past it, however its answers were saved). */
    clearDraft() {
      drafts.clear();
    },
    render(container, check, onSubmit, options) {
      return new HeadphoneCheck(container, check, onSubmit, options).render();
    },
  };
})();
