// One live-captions session: microphone → WebSocket → caption box. Survives
// a dropped connection: audio is kept while offline and sent after reconnecting with
// `resume_after_seq`, so the server replays exactly the finals this page has not shown.

import { ApiError, getJson, request, streamUrl } from "./api.js";
import { Mic } from "./mic.js";

const RATE = 16000;
/** Audio kept while the connection is down: a minute at 16 kHz s16le. */
const MAX_PENDING_BYTES = 60 * RATE * 2;
const MAX_BACKOFF_MS = 5000;

/** Close codes after which retrying the same request cannot help. */
const FATAL_CODES = new Set([1008, 1009]);

export class LiveSession {
  /**
   * `captions`: a Captions view; `on.status(state, text)`, `on.level(fraction)`,
   * `on.session(id)`, `on.created(id)`, `on.completed(id)`, `on.keyRefused()`, `on.retryable(bool)`.
   */
  constructor(captions, on) {
    this.captions = captions;
    this.on = on;
    this.state = "idle";
    this.ws = null;
    this.mic = null;
  }

  get active() {
    return !["idle", "completed", "error"].includes(this.state);
  }

  status(state, text) {
    this.state = state;
    this.on.status(state, text);
  }

  /** Starts a new session, or continues `resumeId` (after an `overloaded` refusal). */
  async start(resumeId) {
    if (this.active) return;
    this.id = resumeId || `live-${crypto.randomUUID()}`;
    this.pending = [];
    this.pendingBytes = 0;
    this.droppedBytes = 0;
    this.attempts = 0;
    this.heard = false;
    this.finishing = false;
    this.completed = false;
    this.on.retryable(false);
    if (!resumeId) this.captions.reset();
    this.on.session(this.id);
    this.status("connecting", "Connecting…");
    try {
      if (!resumeId) {
        await request("/v1/sessions", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ session_id: this.id, metadata: { source: "web" } }),
        });
        this.on.created(this.id);
      }
    } catch (e) {
      this.fail(e);
      return;
    }
    this.mic = new Mic();
    try {
      await this.mic.start(
        (pcm) => this.audio(pcm),
        (rms) => this.on.level(rms),
      );
    } catch (e) {
      this.mic = null;
      this.fail(e);
      return;
    }
    this.connect();
  }

  /** Finalizes the session: the last audio is sent, then `finalize`. */
  async stop() {
    if (!this.active) return;
    if (this.finishing) {
      // A second press while the server is unreachable: give up waiting.
      this.teardown();
      this.status("error", "Stopped before the server confirmed: the finals shown are saved, the last words may be missing");
      return;
    }
    this.finishing = true;
    this.status("finishing", "Finishing…");
    const mic = this.mic;
    this.mic = null;
    if (mic) await mic.stop();
    this.on.level(0);
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.sendPending();
      this.ws.send(JSON.stringify({ type: "finalize" }));
    }
    // Otherwise the next connection sends it once the kept audio is through.
  }

  audio(pcm) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN && !this.draining && this.pending.length === 0) {
      this.ws.send(pcm);
      return;
    }
    this.pending.push(pcm);
    this.pendingBytes += pcm.byteLength;
    while (this.pendingBytes > MAX_PENDING_BYTES) {
      const old = this.pending.shift();
      this.pendingBytes -= old.byteLength;
      this.droppedBytes += old.byteLength;
    }
  }

  sendPending() {
    for (const pcm of this.pending) this.ws.send(pcm);
    this.pending = [];
    this.pendingBytes = 0;
  }

  connect() {
    const last = this.captions.lastSeq();
    const params = { sample_rate: RATE, encoding: "pcm_s16le" };
    if (last !== null) params.resume_after_seq = last;
    const reconnect = this.attempts > 0;
    const ws = new WebSocket(streamUrl(this.id, params));
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.opened = false;
    this.draining = false;
    this.lastError = null;
    ws.onopen = () => {
      this.opened = true;
      this.captions.newConnection();
      this.sendPending();
      if (this.finishing) {
        ws.send(JSON.stringify({ type: "finalize" }));
        this.status("finishing", "Finishing…");
      } else {
        this.status("live", this.droppedBytes ? `Live (${(this.droppedBytes / RATE / 2).toFixed(0)} s of audio were lost while offline)` : "Live");
      }
      // With no final shown yet there is no seq to resume after: fetch what the last
      // connection stored (the new one holds the session's lock, so that is complete).
      if (reconnect && last === null) this.fetchStored();
    };
    ws.onmessage = (ev) => this.message(ev.data);
    ws.onclose = (ev) => this.closed(ws, ev);
  }

  message(data) {
    if (typeof data !== "string") return;
    let m;
    try {
      m = JSON.parse(data);
    } catch {
      return;
    }
    switch (m.type) {
      case "partial":
        this.heard = true;
        this.attempts = 0;
        this.captions.partial(m.rev, m.text);
        break;
      case "final":
        this.heard = true;
        this.attempts = 0;
        this.captions.final(m.seq, m.text, m.start_ms, m.end_ms);
        break;
      case "draining":
        // The server is going away: what it has read is transcribed; the rest waits in
        // `pending` for the next connection. `flush` tells it nothing more is coming.
        this.draining = true;
        if (this.ws) this.ws.send(JSON.stringify({ type: "flush" }));
        break;
      case "completed":
        this.completed = true;
        this.captions.clearPartial();
        break;
      case "error":
        this.lastError = m;
        break;
      default:
        break; // speech_started / utterance_end
    }
  }

  async fetchStored() {
    try {
      const t = await getJson(`/v1/sessions/${encodeURIComponent(this.id)}/transcript`);
      for (const s of t.segments) this.captions.final(s.seq, s.text, s.start_ms, s.end_ms);
    } catch {
      // The live connection carries on; a later reconnect tries again.
    }
  }

  async closed(ws, ev) {
    if (ws !== this.ws) return;
    this.ws = null;
    const err = this.lastError;
    if (this.completed) {
      this.teardown();
      this.status("completed", "Completed");
      this.on.completed(this.id);
      return;
    }
    if (!this.active) return;
    if (err && (err.code === "overloaded" || ev.code === 1013) && !this.heard && !this.finishing) {
      this.teardown();
      this.status(
        "error",
        "Error: the server is busy (overloaded): every decoding slot is taken by streams already running. Nothing was lost; press Retry in a few seconds.",
      );
      this.on.retryable(true);
      return;
    }
    if (err && FATAL_CODES.has(ev.code)) {
      this.teardown();
      this.status("error", `Error: ${err.message} (${err.code})`);
      return;
    }
    if (err && err.code === "idle_timeout") {
      this.teardown();
      this.status("error", `Error: ${err.message}`);
      return;
    }
    this.attempts += 1;
    let why = err ? err.message : "the connection was lost";
    if (!this.opened) {
      // The handshake failed; the browser does not say why, the API does.
      const verdict = await this.probe();
      if (verdict) {
        this.teardown();
        this.status("error", `Error: ${verdict}`);
        return;
      }
      why = "waiting for the server";
    }
    const backoff = Math.min(500 * 2 ** (this.attempts - 1), MAX_BACKOFF_MS);
    const delay = err && err.retry_after_ms ? Math.max(err.retry_after_ms, backoff) : backoff;
    this.status("reconnecting", `Reconnecting… (attempt ${this.attempts}): ${why}`);
    setTimeout(() => {
      if (this.active && !this.ws) this.connect();
    }, delay);
  }

  /** After a failed handshake: a reason that makes retrying pointless, or null. */
  async probe() {
    try {
      const s = await getJson(`/v1/sessions/${encodeURIComponent(this.id)}`);
      if (s.status === "completed") return "the session was completed elsewhere";
      return null;
    } catch (e) {
      if (!(e instanceof ApiError)) return null;
      if (e.status === 401) {
        this.on.keyRefused();
        return e.message;
      }
      if (e.status === 404) return "the session no longer exists (it was deleted)";
      return null; // unreachable, restarting, store outage: keep trying
    }
  }

  /** Releases the microphone and the socket. */
  teardown() {
    const mic = this.mic;
    this.mic = null;
    if (mic) mic.stop();
    this.on.level(0);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.onclose = null;
      ws.close();
    }
    this.pending = [];
    this.pendingBytes = 0;
  }

  fail(e) {
    this.teardown();
    if (e instanceof ApiError && e.status === 401) this.on.keyRefused();
    this.status("error", `Error: ${e.message || e}`);
  }
}
