// The caption box: finals are appended once each (keyed by their seq, so a replay after a
// reconnect never shows one twice) and never change; the unstable tail is one greyed
// element replaced in place by each newer partial.

import { clock, el } from "./format.js";

export class Captions {
  constructor(root) {
    this.root = root;
    this.seqs = new Set();
    this.rev = -1;
    this.partialEl = null;
  }

  /** Empties the box for a new session. */
  reset() {
    this.root.replaceChildren();
    this.seqs.clear();
    this.partialEl = null;
    this.rev = -1;
  }

  /** A new connection numbers its partials from the start again. */
  newConnection() {
    this.rev = -1;
    this.clearPartial();
  }

  /** The highest seq shown, or null before the first final. */
  lastSeq() {
    let max = null;
    for (const s of this.seqs) if (max === null || s > max) max = s;
    return max;
  }

  /** Shows a final; returns false if that seq is already shown. */
  final(seq, text, startMs, endMs) {
    if (this.seqs.has(seq)) return false;
    this.seqs.add(seq);
    const span = el("span", {
      class: "final",
      "data-testid": "final",
      "data-seq": seq,
      "data-start-ms": startMs,
      "data-end-ms": endMs,
      title: `${clock(startMs)} – ${clock(endMs)}`,
    });
    span.append(text, " ");
    // Keep seq order even when a replayed or fetched final arrives after a newer one.
    let before = this.partialEl;
    for (const f of this.root.querySelectorAll('[data-testid="final"]')) {
      if (Number(f.dataset.seq) > seq) {
        before = f;
        break;
      }
    }
    this.root.insertBefore(span, before);
    // The partial covered audio this final now settles.
    this.clearPartial();
    this.follow();
    return true;
  }

  /** Replaces the unstable tail with revision `rev`, unless a newer one is shown. */
  partial(rev, text) {
    if (rev < this.rev) return;
    this.rev = rev;
    const t = (text || "").trim();
    if (!t) {
      this.clearPartial();
      return;
    }
    if (!this.partialEl) {
      this.partialEl = el("span", { class: "partial", "data-testid": "partial" });
      this.root.append(this.partialEl);
    }
    this.partialEl.textContent = t;
    this.follow();
  }

  clearPartial() {
    if (this.partialEl) this.partialEl.remove();
    this.partialEl = null;
  }

  /** The text of every final, in order. */
  text() {
    return [...this.root.querySelectorAll('[data-testid="final"]')]
      .map((f) => f.textContent.trim())
      .join(" ");
  }

  /** Keeps the newest words in view unless the reader scrolled up. */
  follow() {
    const r = this.root;
    if (r.scrollHeight - r.scrollTop - r.clientHeight < 80) r.scrollTop = r.scrollHeight;
  }
}
