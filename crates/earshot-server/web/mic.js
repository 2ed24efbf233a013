// The microphone: getUserMedia into an AudioWorklet (capture-worklet.js) that hands back
// 16 kHz pcm_s16le frames and level readings.

const WORKLET = "/app/capture-worklet.js";

/** Why the microphone could not start, for a person. */
function explain(e) {
  switch (e && e.name) {
    case "NotAllowedError":
    case "SecurityError":
      return "microphone permission was denied; allow it in the browser's site settings and press Start again";
    case "NotFoundError":
    case "OverconstrainedError":
      return "no microphone was found";
    case "NotReadableError":
      return "the microphone is in use by another program or cannot be read";
    default:
      return `the microphone could not start (${(e && e.message) || e})`;
  }
}

export class Mic {
  /**
   * Starts capturing. `onAudio(ArrayBuffer)` gets 100 ms frames of 16 kHz pcm_s16le,
   * `onLevel(rms, peak)` a reading every 50 ms. Throws an Error with a readable message.
   */
  async start(onAudio, onLevel) {
    if (!window.isSecureContext || !navigator.mediaDevices || !window.AudioWorkletNode) {
      throw new Error(
        "this page cannot use the microphone here: open earshot over https:// or at http://localhost",
      );
    }
    // The audio graph is ready before the microphone opens, so its first words are kept.
    try {
      this.ctx = new AudioContext();
      await this.ctx.audioWorklet.addModule(WORKLET);
      this.node = new AudioWorkletNode(this.ctx, "earshot-capture", {
        numberOfInputs: 1,
        numberOfOutputs: 1,
        outputChannelCount: [1],
      });
      this.node.port.onmessage = (ev) => {
        const m = ev.data;
        if (m.type === "audio") onAudio(m.pcm);
        else if (m.type === "level") onLevel(m.rms, m.peak);
        else if (m.type === "flushed" && this.flushed) this.flushed();
      };
      // The node writes silence; being connected keeps it pulled by the audio graph.
      this.node.connect(this.ctx.destination);
      await this.ctx.resume();
    } catch (e) {
      await this.stop();
      throw new Error(`audio capture could not start (${e.message || e})`);
    }
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({
        audio: {
          channelCount: 1,
          echoCancellation: true,
          // Whisper copes with noise better than with a suppressor's artefacts.
          noiseSuppression: false,
          autoGainControl: true,
        },
      });
    } catch (e) {
      await this.stop();
      throw new Error(explain(e));
    }
    try {
      this.source = this.ctx.createMediaStreamSource(this.stream);
      this.source.connect(this.node);
    } catch (e) {
      await this.stop();
      throw new Error(`audio capture could not start (${e.message || e})`);
    }
  }

  /** Sends what the worklet still holds, then releases the microphone. */
  async stop() {
    if (this.node) {
      await new Promise((resolve) => {
        this.flushed = resolve;
        this.node.port.postMessage("flush");
        setTimeout(resolve, 500);
      });
      this.node.port.onmessage = null;
      this.node.disconnect();
    }
    if (this.source) this.source.disconnect();
    if (this.stream) this.stream.getTracks().forEach((t) => t.stop());
    if (this.ctx) await this.ctx.close().catch(() => {});
    this.node = this.source = this.stream = this.ctx = null;
  }
}
