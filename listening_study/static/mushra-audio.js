/* The audio engine of the listening test (Web Audio), used by mushra.js as window.MushraAudio.
 *
 * One AudioContext at 44.1 kHz, the stimuli's rate (makeAudioContext; a browser that cannot run at that
 * rate resamples, and the page says so). Every stimulus of a page is decoded into an AudioBuffer.
 * Playback runs in "passes": for each pass, one AudioBufferSourceNode per stimulus starts at the same
 * context time and offset, each through an envelope GainNode with raised-cosine fades (FADE_S) at both
 * ends of the pass, then through the stimulus's selection GainNode. A loop is a chain of passes over the
 * loop region, so every wrap fades out and in; pause and seek fade the running pass out before stopping
 * it; switching between stimuli crossfades the selection gains (raised cosine, FADE_S) and keeps the
 * position. All stimuli stay sample-aligned. The engine also measures how long each stimulus was heard
 * while selected (listenMs), which the page reports and the server checks. drawWaveform(canvas, buffer) draws
 * a buffer's first channel, scaled to its peak (the trial page's waveform).
 *
 * Files are downloaded by `download` (progress in bytes, for the page to show) and can be fetched ahead
 * with `prefetch(urls)` (the next trial's, while this one is rated); Engine.load takes a prefetched
 * download where there is one.
 */
(function () {
  "use strict";

  const STIMULUS_RATE = 44100; // the rate of every stimulus file
  const FADE_S = 0.005; // raised-cosine fades on every switch, loop wrap, pause and seek
  const FADE_STEPS = 16; // breakpoints of the raised cosine (linear ramps between them)
  const START_DELAY_S = 0.03; // sources of a pass are scheduled this far ahead, all at the same time
  const LOOKAHEAD_S = 2.0; // loop passes are scheduled this far ahead (timers are slow in background tabs)

  /* ---------------------------------------------------------------- downloads */
  const prefetched = new Map(); // url -> download started ahead of its page

  /* {promise: ArrayBuffer, loaded, total}: bytes so far and the Content-Length (0 while unknown). */
  function startDownload(url) {
    const entry = { loaded: 0, total: 0 };
    entry.promise = (async () => {
      const response = await fetch(url);
      if (!response.ok) throw new Error("could not load the audio (" + response.status + ")");
      entry.total = Number(response.headers.get("Content-Length")) || 0;
      if (!response.body || !response.body.getReader) {
        const whole = await response.arrayBuffer();
        entry.loaded = whole.byteLength;
        return whole;
      }
      const reader = response.body.getReader();
      const chunks = [];
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        chunks.push(value);
        entry.loaded += value.length;
      }
      const bytes = new Uint8Array(entry.loaded);
      let offset = 0;
      for (const chunk of chunks) {
        bytes.set(chunk, offset);
        offset += chunk.length;
      }
      return bytes.buffer;
    })();
    return entry;
  }

  /* The download of `url`: the one prefetched (handed over once: its bytes are decoded, then gone), or a new one. */
  function download(url) {
    const entry = prefetched.get(url);
    prefetched.delete(url);
    return entry || startDownload(url);
  }

  /* Start downloading `urls` now (e.g. the next trial's); a failed prefetch is simply fetched again later. */
  function prefetch(urls) {
    for (const url of urls || []) {
      if (prefetched.has(url)) continue;
      const entry = startDownload(url);
      prefetched.set(url, entry);
      entry.promise.catch(() => prefetched.get(url) === entry && prefetched.delete(url));
    }
  }

  /* ---------------------------------------------------------------- audio engine */
  function raisedCosine(i) {
    return 0.5 - 0.5 * Math.cos((Math.PI * i) / FADE_STEPS); // 0 -> 1 over i = 0..FADE_STEPS
  }

  /* From the parameter's current value to `target` over `length` seconds from `start`. */
  function fadeTo(param, target, start, length) {
    const from = param.value;
    if (param.cancelAndHoldAtTime) param.cancelAndHoldAtTime(start);
    else {
      param.cancelScheduledValues(start);
      param.setValueAtTime(from, start);
    }
    for (let i = 1; i <= FADE_STEPS; i++) {
      param.linearRampToValueAtTime(from + (target - from) * raisedCosine(i), start + (length * i) / FADE_STEPS);
    }
  }

  /* A pass's envelope: 0 -> 1 at its start, 1 -> 0 at its end. */
  function envelope(param, start, duration, fade) {
    param.setValueAtTime(0, start);
    for (let i = 1; i <= FADE_STEPS; i++) param.linearRampToValueAtTime(raisedCosine(i), start + (fade * i) / FADE_STEPS);
    param.setValueAtTime(1, start + duration - fade);
    for (let i = 1; i <= FADE_STEPS; i++) {
      param.linearRampToValueAtTime(1 - raisedCosine(i), start + duration - fade + (fade * i) / FADE_STEPS);
    }
  }

  function makeAudioContext() {
    const Context = window.AudioContext || window.webkitAudioContext;
    let context = null;
    try {
      context = new Context({ sampleRate: STIMULUS_RATE, latencyHint: "interactive" });
    } catch (error) {
      context = new Context(); // this browser cannot run at 44.1 kHz: it resamples (warned on the page)
    }
    return context;
  }

  class Engine {
    constructor(context) {
      this.context = context;
      this.output = context.createGain();
      this.output.connect(context.destination);
      this.buffers = {}; // key -> AudioBuffer
      this.gains = {}; // key -> selection GainNode
      this.passes = []; // {start, offset, duration, nodes: [[source, envelope], ...]}
      this.active = null;
      this.playing = false;
      this.position = 0; // seconds, while paused
      this.loop = null; // [start_s, end_s] or null
      this.loopAll = false; // true: without a loop region the whole excerpt loops (webMUSHRA's default)
      this.listened = {}; // key -> seconds heard while selected
      this.mark = null; // context time up to which listening was counted
      this.endTime = Infinity; // context time where playback without a loop ends
      this.timer = null;
    }
    /* stimuli: [{key, url}]; onProgress(loaded bytes, total bytes or 0), every 100 ms while downloading */
    async load(stimuli, onProgress) {
      const downloads = stimuli.map((s) => download(s.url));
      const report = () => onProgress && onProgress(
        downloads.reduce((sum, d) => sum + d.loaded, 0),
        downloads.every((d) => d.total) ? downloads.reduce((sum, d) => sum + d.total, 0) : 0);
      const timer = setInterval(report, 100);
      let decoded;
      try {
        decoded = await Promise.all(
          stimuli.map(async (s, i) => [s.key, await this.context.decodeAudioData(await downloads[i].promise)])
        );
      } finally {
        clearInterval(timer);
      }
      report();
      for (const [key, buffer] of decoded) {
        this.buffers[key] = buffer;
        const gain = this.context.createGain();
        gain.gain.value = 0;
        gain.connect(this.output);
        this.gains[key] = gain;
        this.listened[key] = 0;
      }
      this.active = stimuli[0].key;
      this.gains[this.active].gain.value = 1;
    }
    get duration() {
      return Math.min(...Object.values(this.buffers).map((b) => b.duration));
    }
    currentTime() {
      if (!this.playing) return this.position;
      const now = this.context.currentTime;
      for (const pass of this.passes) {
        if (now >= pass.start && now < pass.start + pass.duration) return pass.offset + (now - pass.start);
      }
      if (this.passes.length && now < this.passes[0].start) return this.passes[0].offset;
      const region = this._region();
      return region ? region[0] : this.duration;
    }
    /* What plays in a loop: the loop region, else the whole excerpt with loopAll, else nothing. */
    _region() {
      return this.loop || (this.loopAll ? [0, this.duration] : null);
    }
    _account() {
      if (!this.playing || this.mark == null) return;
      const now = Math.min(this.context.currentTime, this.endTime);
      if (now > this.mark) {
        this.listened[this.active] += now - this.mark;
        this.mark = now;
      }
    }
    listenMs() {
      this._account();
      const out = {};
      for (const [key, seconds] of Object.entries(this.listened)) out[key] = Math.round(1000 * seconds);
      return out;
    }
    select(key) {
      this._account();
      this.active = key;
      const now = this.context.currentTime;
      for (const [k, gain] of Object.entries(this.gains)) fadeTo(gain.gain, k === key ? 1 : 0, now, FADE_S);
    }
    async play(offset) {
      if (this.context.state !== "running") await this.context.resume();
      this._account();
      let start = offset == null ? this.position : offset;
      if (start >= this.duration - 0.01) start = 0;
      const region = this._region();
      if (region && (start < region[0] || start >= region[1] - 0.01)) start = region[0];
      const now = this.context.currentTime;
      const when = this._stopPasses(now) + START_DELAY_S;
      this.playing = true;
      this.nextStart = when;
      this.nextOffset = start;
      this.endTime = Infinity;
      this.mark = when;
      this._schedule();
      if (!this.timer) this.timer = setInterval(() => this._schedule(), 250);
    }
    _schedule() {
      if (!this.playing) return;
      const horizon = this.context.currentTime + LOOKAHEAD_S;
      const region = this._region();
      while (this.nextStart < horizon) {
        const end = region ? region[1] : this.duration;
        const length = end - this.nextOffset;
        if (length <= 0.002) {
          if (!region) break;
          this.nextOffset = region[0];
          continue;
        }
        this._startPass(this.nextStart, this.nextOffset, length);
        this.nextStart += length;
        if (region) this.nextOffset = region[0];
        else {
          this.nextOffset = this.duration;
          this.endTime = this.nextStart;
        }
      }
      const now = this.context.currentTime;
      this.passes = this.passes.filter((pass) => pass.start + pass.duration > now - 0.5);
    }
    _startPass(start, offset, duration) {
      const fade = Math.min(FADE_S, duration / 2);
      const pass = { start, offset, duration, nodes: [] };
      for (const [key, buffer] of Object.entries(this.buffers)) {
        const source = this.context.createBufferSource();
        source.buffer = buffer;
        const gain = this.context.createGain();
        gain.gain.value = 0;
        envelope(gain.gain, start, duration, fade);
        source.connect(gain);
        gain.connect(this.gains[key]);
        source.onended = () => {
          source.disconnect();
          gain.disconnect();
        };
        source.start(start, offset, duration);
        pass.nodes.push([source, gain]);
      }
      this.passes.push(pass);
    }
    /* Fade out whatever sounds, stop everything; returns the context time when it is silent. */
    _stopPasses(now) {
      let silent = now;
      for (const pass of this.passes) {
        const sounding = pass.start < now && now < pass.start + pass.duration;
        for (const [source, gain] of pass.nodes) {
          try {
            if (sounding) {
              fadeTo(gain.gain, 0, now, FADE_S);
              source.stop(now + FADE_S);
            } else {
              source.stop();
            }
          } catch (error) {
            /* already stopped */
          }
        }
        if (sounding) silent = now + FADE_S;
      }
      this.passes = [];
      return silent;
    }
    pause() {
      if (!this.playing) return;
      this._account();
      this.position = this.currentTime();
      this._stopPasses(this.context.currentTime);
      this.playing = false;
      this.mark = null;
      clearInterval(this.timer);
      this.timer = null;
    }
    seek(t) {
      t = Math.max(0, Math.min(t, this.duration));
      if (this.playing) this.play(t);
      else this.position = t;
    }
    /* region: [start_s, end_s] or null; false (and nothing changes) for a loop shorter than minimum_s. */
    setLoop(region, minimum_s) {
      if (region && region[1] - region[0] < minimum_s) return false;
      const t = this.currentTime();
      this.loop = region;
      if (this.playing) this.play(t);
      else if (this.loop && (this.position < this.loop[0] || this.position >= this.loop[1])) this.position = this.loop[0];
      return true;
    }
    close() {
      this.pause();
      for (const gain of Object.values(this.gains)) gain.disconnect();
      this.output.disconnect();
    }
  }

  /* ---------------------------------------------------------------- waveform of a buffer */
  function drawWaveform(canvas, buffer) {
    const ctx = canvas.getContext("2d");
    const { width, height } = canvas;
    ctx.clearRect(0, 0, width, height);
    const data = buffer.getChannelData(0);
    const step = Math.max(1, Math.floor(data.length / width));
    // Drawn to the excerpt's own peak: levelled to -23 LUFS it would be a thin strip, of no help in finding
    // a passage to loop. (Only the reference is drawn: the scale says nothing about any version.)
    let peak = 0;
    for (let i = 0; i < data.length; i++) peak = Math.max(peak, Math.abs(data[i]));
    const scale = peak > 0 ? 0.95 / peak : 1;
    ctx.fillStyle = "#3d4f78";
    for (let x = 0; x < width; x++) {
      let lo = 1, hi = -1;
      for (let i = x * step; i < Math.min(data.length, (x + 1) * step); i++) {
        if (data[i] < lo) lo = data[i];
        if (data[i] > hi) hi = data[i];
      }
      if (hi < lo) continue; // past the end of the data
      lo *= scale;
      hi *= scale;
      ctx.fillRect(x, ((1 - hi) / 2) * height, 1, Math.max(1, ((hi - lo) / 2) * height));
    }
  }

  window.MushraAudio = { Engine, makeAudioContext, prefetch, drawWaveform, STIMULUS_RATE, FADE_S };
})();
