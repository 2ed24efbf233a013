// History: the tenant's sessions newest first, a page at a time; one session's transcript
// with timestamps; downloads in every format; delete.

import { ApiError, getJson, request } from "./api.js";
import { clock, el, when } from "./format.js";

const PAGE = 10;
const EXTENSIONS = { txt: "txt", srt: "srt", vtt: "vtt", json: "json" };

const list = document.getElementById("sessions");
const newer = document.getElementById("history-newer");
const older = document.getElementById("history-older");
const detail = document.getElementById("detail");
const detailId = document.getElementById("detail-id");
const detailMeta = document.getElementById("detail-meta");
const segmentsEl = document.getElementById("detail-segments");
const detailMessage = document.getElementById("detail-message");
const deleteBtn = document.getElementById("delete");

let onKeyRefused = () => {};
/** Cursors of the pages seen so far: `pages[i]` opens page i (null = newest). */
let pages = [null];
let page = 0;
let nextCursor = null;
let shown = null;
let confirmTimer = null;

function report(e, where) {
  if (e instanceof ApiError && e.status === 401) onKeyRefused();
  where.textContent = e.message || String(e);
}

function statusBadge(s) {
  return el("span", { class: `badge ${s}`, text: s === "active" ? "live" : s });
}

/** Loads the current page of sessions. */
export async function refresh() {
  let body;
  try {
    const q = new URLSearchParams({ limit: PAGE });
    if (pages[page]) q.set("cursor", pages[page]);
    body = await getJson(`/v1/sessions?${q}`);
  } catch (e) {
    list.replaceChildren(el("li", { class: "empty" }));
    report(e, list.firstChild);
    return;
  }
  nextCursor = body.next_cursor;
  newer.disabled = page === 0;
  older.disabled = !nextCursor;
  if (body.sessions.length === 0) {
    list.replaceChildren(el("li", { class: "empty", text: "No sessions yet." }));
    return;
  }
  list.replaceChildren(
    ...body.sessions.map((s) => {
      const link = el(
        "a",
        {
          href: `#session=${encodeURIComponent(s.session_id)}`,
          "data-testid": "session-link",
          "data-session-id": s.session_id,
          "aria-current": s.session_id === shown ? "true" : null,
        },
        el("span", { class: "when", text: when(s.started_at) }),
        statusBadge(s.status),
        el("span", { class: "count", text: `${s.segment_count} segment${s.segment_count === 1 ? "" : "s"}` }),
        el("code", { class: "id", text: s.session_id }),
      );
      link.addEventListener("click", (ev) => {
        ev.preventDefault();
        show(s.session_id, true);
      });
      return el("li", {}, link);
    }),
  );
}

/** Shows one session's transcript; `focus` moves keyboard focus to it. */
export async function show(id, focus = false) {
  shown = id;
  resetDelete();
  detail.hidden = false;
  detailId.textContent = id;
  detailMeta.textContent = "Loading…";
  detailMessage.textContent = "";
  segmentsEl.replaceChildren();
  for (const a of list.querySelectorAll("a[aria-current]")) a.removeAttribute("aria-current");
  const link = list.querySelector(`a[data-session-id="${CSS.escape(id)}"]`);
  if (link) link.setAttribute("aria-current", "true");
  if (focus) detail.focus();
  try {
    const path = `/v1/sessions/${encodeURIComponent(id)}`;
    const [s, t] = await Promise.all([getJson(path), getJson(`${path}/transcript`)]);
    if (shown !== id) return;
    const source = s.metadata && s.metadata.source ? ` · ${s.metadata.source}` : "";
    detailMeta.textContent = `${s.status === "active" ? "live" : s.status} · started ${when(s.started_at)} · ${s.segment_count} segments · ${s.language}${source}`;
    if (t.segments.length === 0) {
      segmentsEl.replaceChildren(el("li", { class: "empty", text: "No speech in this session." }));
      return;
    }
    segmentsEl.replaceChildren(
      ...t.segments.map((seg) =>
        el(
          "li",
          { "data-seq": seg.seq },
          el("time", { text: clock(seg.start_ms) }),
          el("span", { text: seg.text }),
        ),
      ),
    );
  } catch (e) {
    detailMeta.textContent = "";
    report(e, detailMessage);
  }
}

async function download(format) {
  if (!shown) return;
  const id = shown;
  try {
    const resp = await request(
      `/v1/sessions/${encodeURIComponent(id)}/transcript?format=${format}`,
    );
    const blob = await resp.blob();
    const url = URL.createObjectURL(blob);
    const a = el("a", { href: url, download: `${id}.${EXTENSIONS[format]}`, hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    detailMessage.textContent = `Downloaded ${id}.${EXTENSIONS[format]}`;
  } catch (e) {
    report(e, detailMessage);
  }
}

function resetDelete() {
  clearTimeout(confirmTimer);
  deleteBtn.textContent = "Delete";
  delete deleteBtn.dataset.confirm;
}

async function remove() {
  if (!shown) return;
  // Two presses, so a stray click or key does not destroy a transcript.
  if (!deleteBtn.dataset.confirm) {
    deleteBtn.dataset.confirm = "1";
    deleteBtn.textContent = "Press again to delete";
    confirmTimer = setTimeout(resetDelete, 5000);
    return;
  }
  resetDelete();
  const id = shown;
  try {
    await request(`/v1/sessions/${encodeURIComponent(id)}`, { method: "DELETE" });
    shown = null;
    detail.hidden = true;
    await refresh();
    list.prepend(el("li", { class: "notice", role: "status", text: `Deleted session ${id}.` }));
  } catch (e) {
    report(e, detailMessage);
  }
}

/** Wires the buttons; `keyRefused()` is called when the server refuses the key. */
export function initHistory(keyRefused) {
  onKeyRefused = keyRefused;
  document.getElementById("history-refresh").addEventListener("click", refresh);
  newer.addEventListener("click", () => {
    if (page > 0) page -= 1;
    refresh();
  });
  older.addEventListener("click", () => {
    if (!nextCursor) return;
    pages = pages.slice(0, page + 1);
    pages.push(nextCursor);
    page += 1;
    refresh();
  });
  for (const b of detail.querySelectorAll("button[data-format]")) {
    b.addEventListener("click", () => download(b.dataset.format));
  }
  deleteBtn.addEventListener("click", remove);
}
