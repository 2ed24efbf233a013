// The microphone audio a live session may still have to send (again). A node that dies
// (crash, SIGKILL, network loss) takes with it the audio it had read but not yet turned
// into a final, so sending each frame once is not enough: the page keeps everything
// after the last final it has shown and, on the next connection, resends from the
// `end_ms` of the session's last stored final. The new stream's time line starts at that
// `end_ms` (the server continues the session there), so nothing is missing and nothing
// doubled. After a graceful restart (`draining`, then close 1012) the old server has
// transcribed all it read: the next connection sends only what it never got.
//
// Positions are sample counts since the microphone started (16 kHz, 2 bytes each); an
// anchor ties one position to a time of the session's line, so a final's `end_ms` says
// which audio it settled.

const BYTES_PER_SAMPLE = 2;

export class KeptAudio {
  /** `rate`: samples per second; `maxBytes`: the most kept, the oldest dropped past it. */
  constructor(rate, maxBytes) {
    this.perMs = rate / 1000;
    this.maxBytes = maxBytes;
    /** `{ at, pcm }`, oldest first, contiguous: `at` is the position of the first sample. */
    this.chunks = [];
    this.bytes = 0;
    this.start = 0;
    this.end = 0;
    /** Audio before this position was sent on the current connection (or needs no sending). */
    this.sent = 0;
    // Position `anchorAt` is time `anchorMs` of the session's line.
    this.anchorAt = 0;
    this.anchorMs = 0;
  }

  /** Keeps a frame of the microphone; past the bound the oldest audio goes. */
  record(pcm) {
    const n = pcm.byteLength / BYTES_PER_SAMPLE;
    this.chunks.push({ at: this.end, pcm });
    this.end += n;
    this.bytes += pcm.byteLength;
    while (this.bytes > this.maxBytes && this.chunks.length > 1) {
      const old = this.chunks.shift();
      this.bytes -= old.pcm.byteLength;
      this.start = this.chunks[0].at;
    }
  }

  /** The position of time `ms` of the session's line. */
  positionOf(ms) {
    return this.anchorAt + Math.round((ms - this.anchorMs) * this.perMs);
  }

  /** A final ending at `endMs` was shown: the audio before it will never be sent again. */
  settle(endMs) {
    this.dropBefore(Math.min(this.positionOf(endMs), this.sent));
  }

  /**
   * A new connection whose time line starts at `ms` (the session's last stored final),
   * to be sent the audio from position `from`. Returns the samples that are no longer
   * kept (dropped past the bound), which the server will never hear.
   */
  rewind(from, ms) {
    const at = Math.min(Math.max(from, this.start), this.end);
    const lost = Math.max(0, this.start - from);
    this.dropBefore(at);
    this.sent = at;
    this.anchorAt = at;
    this.anchorMs = ms;
    return lost;
  }

  /** The frames not sent on this connection yet, marked as sent. */
  unsent() {
    const out = [];
    for (const c of this.chunks) {
      const n = c.pcm.byteLength / BYTES_PER_SAMPLE;
      if (c.at + n <= this.sent) continue;
      const skip = Math.max(0, this.sent - c.at);
      out.push(skip ? c.pcm.slice(skip * BYTES_PER_SAMPLE) : c.pcm);
    }
    this.sent = this.end;
    return out;
  }

  /** Forgets the audio before position `pos`. */
  dropBefore(pos) {
    while (this.chunks.length) {
      const c = this.chunks[0];
      const n = c.pcm.byteLength / BYTES_PER_SAMPLE;
      if (c.at + n <= pos) {
        this.chunks.shift();
        this.bytes -= c.pcm.byteLength;
        continue;
      }
      if (c.at < pos) {
        const cut = (pos - c.at) * BYTES_PER_SAMPLE;
        this.bytes -= cut;
        c.pcm = c.pcm.slice(cut);
        c.at = pos;
      }
      break;
    }
    this.start = this.chunks.length ? this.chunks[0].at : this.end;
  }

  /** Seconds of audio in `samples`. */
  seconds(samples) {
    return samples / this.perMs / 1000;
  }
}
