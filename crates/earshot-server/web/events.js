// Live events: the tenant's event stream (`GET /v1/events`, Server-Sent Events) as a
// downstream processor sees it. Read with fetch rather than EventSource, because
// EventSource cannot send the API key as a bearer header; reconnects resume with
// `Last-Event-ID`, so no event is missed or repeated.

import { ApiError, authHeaders, errorFrom } from "./api.js";
import { el } from "./format.js";

const KEEP = 100;
const MAX_BACKOFF_MS = 10000;

const list = document.getElementById("events");
const statusEl = document.getElementById("events-status");
const toggle = document.getElementById("events-toggle");

let lastId = null;
let controller = null;
let running = false;
let attempts = 0;
let hooks = {};

function summary(ev) {
  switch (ev.event_type) {
    case "transcript_segment":
      return `#${ev.seq} ${ev.text}`;
    case "transcript_completed":
      return ev.transcript || "(empty transcript)";
    case "session_started":
      return ev.language || "";
    default:
      return "";
  }
}

function show(id, type, data) {
  let ev = {};
  try {
    ev = JSON.parse(data);
  } catch {
    ev = { event_type: type };
  }
  // Timestamps are UTC, written without a zone (as Python's utcnow().isoformat()).
  const ts = ev.timestamp || "";
  const time = ts ? new Date(/(Z|[+-]\d\d:\d\d)$/i.test(ts) ? ts : `${ts}Z`) : null;
  const item = el(
    "li",
    { "data-testid": "event", "data-event-type": type, "data-id": id },
    el("time", { text: time && !Number.isNaN(time.getTime()) ? time.toLocaleTimeString() : "" }),
    el("span", { class: `badge ${type}`, text: type }),
    el("code", { class: "id", text: ev.session_id || "" }),
    el("span", { class: "text", text: summary(ev) }),
  );
  list.prepend(item);
  while (list.children.length > KEEP) list.lastChild.remove();
  if (hooks.event) hooks.event(type, ev);
}

/** Parses the SSE text stream: blocks separated by a blank line, `field: value` lines. */
async function read(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value.replace(/\r\n?/g, "\n");
    let cut;
    while ((cut = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      let id = null;
      let type = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (!line || line.startsWith(":")) continue;
        const i = line.indexOf(":");
        const field = i < 0 ? line : line.slice(0, i);
        const v = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
        if (field === "id") id = v;
        else if (field === "event") type = v;
        else if (field === "data") data.push(v);
      }
      if (id) lastId = id;
      if (data.length) show(id, type, data.join("\n"));
    }
  }
}

async function run() {
  while (running) {
    controller = new AbortController();
    const headers = authHeaders({ Accept: "text/event-stream" });
    if (lastId) headers["Last-Event-ID"] = lastId;
    try {
      const resp = await fetch("/v1/events", { headers, signal: controller.signal, cache: "no-store" });
      if (!resp.ok) throw await errorFrom(resp);
      attempts = 0;
      statusEl.textContent = "Connected: events of this tenant appear as they happen.";
      await read(resp.body);
      throw new Error("the server closed the event stream");
    } catch (e) {
      if (!running) return;
      if (e instanceof ApiError && e.status === 401) {
        running = false;
        statusEl.textContent = "Stopped: the API key was not accepted.";
        if (hooks.keyRefused) hooks.keyRefused();
        return;
      }
      attempts += 1;
      const delay = Math.min(1000 * 2 ** (attempts - 1), MAX_BACKOFF_MS);
      statusEl.textContent = `Reconnecting in ${Math.round(delay / 1000)} s (${e.message || e})…`;
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/** Starts following events (again); the view resumes where it stopped. */
export function startEvents() {
  if (running) return;
  running = true;
  toggle.textContent = "Pause";
  run();
}

/** Stops following. */
export function stopEvents(text = "Paused.") {
  running = false;
  if (controller) controller.abort();
  toggle.textContent = "Resume";
  statusEl.textContent = text;
}

/** `on.keyRefused()` on 401; `on.event(type, event)` for each event. */
export function initEvents(on) {
  hooks = on;
  toggle.addEventListener("click", () => (running ? stopEvents() : startEvents()));
}
