// AudioWorklet processor: takes the microphone at the context's rate, low-passes and
// resamples it to 16 kHz mono, and posts 100 ms frames of pcm_s16le plus a level reading.
// Runs on the audio thread, so it allocates only when a frame is full.

const OUT_RATE = 16000;
const FRAME_SAMPLES = 1600; // 100 ms at 16 kHz
const LEVEL_EVERY = 800; // output samples between level readings (50 ms)

/** Hamming-windowed sinc low-pass with cutoff `fc` (cycles per input sample). */
function lowPass(fc, taps) {
  const h = new Float32Array(taps);
  const m = (taps - 1) / 2;
  let sum = 0;
  for (let n = 0; n < taps; n++) {
    const x = n - m;
    const sinc = x === 0 ? 2 * fc : Math.sin(2 * Math.PI * fc * x) / (Math.PI * x);
    h[n] = sinc * (0.54 - 0.46 * Math.cos((2 * Math.PI * n) / (taps - 1)));
    sum += h[n];
  }
  for (let n = 0; n < taps; n++) h[n] /= sum;
  return h;
}

class Capture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = sampleRate / OUT_RATE;
    // Cut below 8 kHz (16 kHz Nyquist) so the resampled audio does not alias; a
    // 16 kHz context needs no filter.
    const taps = this.step > 1 ? (Math.ceil(this.step * 8) | 1) : 1;
    this.taps = this.step > 1 ? lowPass((0.45 * OUT_RATE) / sampleRate, taps) : new Float32Array([1]);
    this.ring = new Float32Array(this.taps.length);
    this.ri = 0;
    this.n = 0; // index of the next filtered input sample
    this.t = 0; // position (in input samples) of the next output sample
    this.prev = 0; // previous filtered sample
    this.frame = new Int16Array(FRAME_SAMPLES);
    this.fi = 0;
    this.sumSq = 0;
    this.peak = 0;
    this.levelCount = 0;
    this.port.onmessage = (ev) => {
      if (ev.data === "flush") {
        this.post();
        this.port.postMessage({ type: "flushed" });
      }
    };
  }

  post() {
    if (this.fi === 0) return;
    const out = this.frame.slice(0, this.fi);
    this.port.postMessage({ type: "audio", pcm: out.buffer }, [out.buffer]);
    this.fi = 0;
  }

  emit(v) {
    const s = v < -1 ? -1 : v > 1 ? 1 : v;
    this.frame[this.fi++] = s < 0 ? s * 0x8000 : s * 0x7fff;
    if (this.fi === FRAME_SAMPLES) this.post();
    this.sumSq += s * s;
    const a = Math.abs(s);
    if (a > this.peak) this.peak = a;
    if (++this.levelCount === LEVEL_EVERY) {
      this.port.postMessage({
        type: "level",
        rms: Math.sqrt(this.sumSq / LEVEL_EVERY),
        peak: this.peak,
      });
      this.sumSq = 0;
      this.peak = 0;
      this.levelCount = 0;
    }
  }

  process(inputs) {
    const input = inputs[0];
    const ch = input && input[0];
    if (!ch) return true;
    const { taps, ring } = this;
    const len = taps.length;
    for (let i = 0; i < ch.length; i++) {
      // Mix down: average every channel the source has.
      let x = ch[i];
      for (let c = 1; c < input.length; c++) x += input[c][i];
      x /= input.length;
      ring[this.ri] = x;
      this.ri = (this.ri + 1) % len;
      let y = 0;
      for (let k = 0, j = this.ri; k < len; k++, j = (j + 1) % len) y += taps[k] * ring[j];
      // Output samples whose position falls between the previous input sample and this one.
      while (this.t <= this.n) {
        const frac = this.t - (this.n - 1);
        this.emit(this.prev + (y - this.prev) * frac);
        this.t += this.step;
      }
      this.prev = y;
      this.n++;
    }
    return true;
  }
}

registerProcessor("earshot-capture", Capture);
