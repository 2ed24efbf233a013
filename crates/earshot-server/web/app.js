// Entry point: wires the key prompt, the live captions, history, upload and events.

import { Captions } from "./captions.js";
import { initEvents, startEvents, stopEvents } from "./events.js";
import { initHistory, refresh, show } from "./history.js";
import { initKeys, keyRefused } from "./keys.js";
import { LiveSession } from "./live.js";
import { initUpload } from "./upload.js";

const startBtn = document.getElementById("start");
const stopBtn = document.getElementById("stop");
const retryBtn = document.getElementById("retry");
const statusEl = document.getElementById("status");
const sessionEl = document.getElementById("session-id");
const levelEl = document.getElementById("level");
const levelBar = levelEl.querySelector(".bar");

let access = false;

const live = new LiveSession(new Captions(document.getElementById("transcript")), {
  status(state, text) {
    statusEl.textContent = text;
    statusEl.dataset.state = state;
    document.body.dataset.live = state;
    const running = live.active;
    startBtn.disabled = !access || running;
    stopBtn.disabled = !running;
    stopBtn.textContent = state === "finishing" ? "Stop now" : "Stop";
  },
  level(rms) {
    // -60 dBFS (silence) .. 0 dBFS (full scale), as a percentage.
    const db = rms > 0 ? 20 * Math.log10(rms) : -100;
    const pct = Math.round(Math.max(0, Math.min(1, (db + 60) / 60)) * 100);
    levelBar.style.width = `${pct}%`;
    levelEl.setAttribute("aria-valuenow", String(pct));
  },
  session(id) {
    sessionEl.textContent = id;
  },
  created() {
    refresh();
  },
  discarded() {
    refresh();
  },
  completed(id) {
    refresh().then(() => show(id));
  },
  keyRefused,
  retryable(on) {
    retryBtn.hidden = !on;
    if (on) retryBtn.focus();
  },
});

function onAccess(ok) {
  access = ok;
  startBtn.disabled = !ok || live.active;
  if (ok) {
    refresh();
    startEvents();
  } else {
    stopEvents("Waiting for a valid API key.");
  }
}

startBtn.addEventListener("click", () => live.start());
stopBtn.addEventListener("click", () => live.stop());
retryBtn.addEventListener("click", () => {
  retryBtn.hidden = true;
  live.start(live.id);
});

initHistory(keyRefused);
initUpload({
  uploaded(id) {
    refresh();
  },
  keyRefused,
});
initEvents({ keyRefused });
initKeys(onAccess);
