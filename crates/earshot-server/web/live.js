// One live-captions session: microphone → WebSocket → caption box. Survives a dropped
// connection or a server that died: it reconnects with `resume_after_seq`, so the server
// replays exactly the finals this page has not shown, and resends the audio no stored
// final covers yet (kept-audio.js), so the words said around the failure are neither
// lost nor doubled.

import { ApiError, getJson, request, streamUrl } from "./api.js";
import { KeptAudio } from "./kept-audio.js";
import { Mic } from "./mic.js";

const RATE = 16000;
/** Audio kept for sending (again): a minute at 16 kHz s16le, the oldest dropped past it. */
const MAX_KEPT_BYTES = 60 * RATE * 2;
const MAX_BACKOFF_MS = 5000;
const BUSY =
  "Error: the server is busy (overloaded): every decoding slot is taken by streams already running. Nothing was lost; press Retry in a few seconds.";

/** Close codes after which retrying the same request cannot help. */
const FATAL_CODES = new Set([1008, 1009]);

export class LiveSession {
  /**
   * `captions`: a Captions view; `on.status(state, text)`, `on.level(fraction)`,
   * `on.session(id)`, `on.created(id)`, `on.discarded(id)`, `on.completed(id)`, `on.keyRefused()`,
   * `on.retryable(bool)`.
   */
  constructor(captions, on) {
    this.captions = captions;
    this.on = on;
    this.state = "idle";
    this.ws = null;
    this.mic = null;
    this.kept = new KeptAudio(RATE, MAX_KEPT_BYTES);
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
    // A session refused before it ever ran was deleted (see `closed`): Retry creates it
    // again under the same id.
    this.creates = !resumeId || this.discarded === resumeId;
    this.discarded = null;
    this.kept = new KeptAudio(RATE, MAX_KEPT_BYTES);
    // Where the next connection starts sending: a position in `kept`, or null for "at
    // the session's last stored final" (after a connection that ended abnormally).
    this.resumeFrom = 0;
    // A session this page has just created has no finals: its first connection starts
    // the time line at 0 without reading the transcript.
    this.fresh = this.creates;
    this.lostSamples = 0;
    this.attempts = 0;
    this.connections = 0;
    this.heard = false;
    this.finishing = false;
    this.completed = false;
    this.on.retryable(false);
    if (!resumeId) this.captions.reset();
    this.on.session(this.id);
    this.status("connecting", "Connecting…");
    try {
      if (this.creates) {
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
    if (this.sending()) {
      this.sendKept();
      this.ws.send(JSON.stringify({ type: "finalize" }));
    }
    // Otherwise the next connection sends it once the kept audio is through.
  }

  /** Whether audio goes out now: connected, the time line known, and not draining. */
  sending() {
    return this.ready && !this.draining && this.ws && this.ws.readyState === WebSocket.OPEN;
  }

  audio(pcm) {
    this.kept.record(pcm);
    if (this.sending()) this.sendKept();
  }

  sendKept() {
    for (const pcm of this.kept.unsent()) this.ws.send(pcm);
  }

  connect() {
    const last = this.captions.lastSeq();
    const params = { sample_rate: RATE, encoding: "pcm_s16le" };
    if (last !== null) params.resume_after_seq = last;
    const ws = new WebSocket(streamUrl(this.id, params));
    this.connections += 1;
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.opened = false;
    this.ready = false;
    this.draining = false;
    this.lastError = null;
    ws.onopen = () => {
      this.opened = true;
      this.captions.newConnection();
      if (this.fresh) this.begin(ws, 0);
      else this.timeline(ws);
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
        if (Number.isFinite(m.end_ms)) this.kept.settle(m.end_ms);
        break;
      case "draining":
        // The server is going away: what it has read is transcribed; the rest waits in
        // `kept` for the next connection. `flush` tells it nothing more is coming.
        this.draining = true;
        if (this.ws) this.ws.send(JSON.stringify({ type: "flush" }));
        break;
      case "completed":
        this.completed = true;
        this.captions.clearPartial();
        break;
      case "error":
        this.lastError = m;
        // The server says so right after the handshake, and closes once it has given back
        // what the stream held: the page stops saying "Live" (and listening) at once, and
        // offers Retry at the close.
        if (this.refused(m)) {
          this.releaseMic();
          this.status("error", BUSY);
        }
        break;
      default:
        break; // speech_started / utterance_end
    }
  }

  /**
   * A connection to a session that may already have finals: where does its time line
   * start? The connection holds the session's lock, so the stored transcript is complete
   * (finals stored but never shown are among it, and are shown now); the server continues
   * after the last final's `end_ms`, which is where the resent audio must start.
   */
  async timeline(ws) {
    let t;
    try {
      t = await getJson(`/v1/sessions/${encodeURIComponent(this.id)}/transcript`);
    } catch (e) {
      if (ws !== this.ws) return;
      // Without it the audio could be sent twice or not at all: try a new connection.
      this.lastError = { message: `the stored transcript could not be read (${e.message || e})` };
      ws.close();
      return;
    }
    if (ws !== this.ws) return;
    let endMs = 0;
    for (const s of t.segments) {
      this.captions.final(s.seq, s.text, s.start_ms, s.end_ms);
      if (Number.isFinite(s.end_ms)) endMs = Math.max(endMs, s.end_ms);
    }
    this.begin(ws, endMs);
  }

  /** The connection's time line starts at `ms`: send the kept audio from where it belongs. */
  begin(ws, ms) {
    const from = this.resumeFrom ?? this.kept.positionOf(ms);
    this.lostSamples += this.kept.rewind(from, ms);
    this.fresh = false;
    this.ready = true;
    if (!this.draining) this.sendKept();
    if (this.finishing) {
      if (!this.draining) ws.send(JSON.stringify({ type: "finalize" }));
      this.status("finishing", "Finishing…");
    } else {
      const lost = this.kept.seconds(this.lostSamples);
      this.status("live", lost ? `Live (${lost.toFixed(1)} s of audio were lost while offline)` : "Live");
    }
  }

  async closed(ws, ev) {
    if (ws !== this.ws) return;
    this.ws = null;
    if (this.ready) {
      // After a graceful restart (`draining`, close 1012) the old server transcribed all
      // it read: send only what it never got. After anything else, what it read but did
      // not finalize may be gone with it: resend from the session's last stored final.
      this.resumeFrom = this.draining && ev.code === 1012 ? this.kept.sent : null;
      this.ready = false;
    }
    const err = this.lastError;
    if (this.completed) {
      this.teardown();
      this.status("completed", "Completed");
      this.on.completed(this.id);
      return;
    }
    if (this.refused(err, ev.code)) {
      this.teardown();
      this.status("error", BUSY);
      // A session this page created for a stream that never ran holds nothing: it is not
      // left in history as a live session with no segments. Retry creates it again.
      const id = this.id;
      if (this.creates && this.connections === 1 && (await this.discard(id))) {
        if (this.id !== id) return; // Start was pressed meanwhile: a new session runs
        this.discarded = id;
      }
      this.on.retryable(true);
      return;
    }
    if (!this.active) return;
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

  /** Whether `err` (and the close `code`) refuse the stream for want of room before it ran. */
  refused(err, code) {
    return Boolean(err) && (err.code === "overloaded" || code === 1013) && !this.heard && !this.finishing;
  }

  /** Deletes session `id`; whether it is gone. */
  async discard(id) {
    try {
      await request(`/v1/sessions/${encodeURIComponent(id)}`, { method: "DELETE" });
    } catch {
      return false; // it stays, and Retry continues it
    }
    this.on.discarded(id);
    return true;
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

  releaseMic() {
    const mic = this.mic;
    this.mic = null;
    if (mic) mic.stop();
    this.on.level(0);
  }

  /** Releases the microphone and the socket. */
  teardown() {
    this.releaseMic();
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.onclose = null;
      ws.close();
    }
    this.ready = false;
    this.kept = new KeptAudio(RATE, MAX_KEPT_BYTES);
  }

  fail(e) {
    this.teardown();
    if (e instanceof ApiError && e.status === 401) this.on.keyRefused();
    this.status("error", `Error: ${e.message || e}`);
  }
}
