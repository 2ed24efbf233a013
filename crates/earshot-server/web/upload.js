// File transcription: a picked or dropped file goes to the OpenAI-compatible
// `/v1/audio/transcriptions` with upload progress; the text appears below it.

import { authHeaders, errorFrom } from "./api.js";
import { bytes, el } from "./format.js";

const input = document.getElementById("upload");
const drop = document.getElementById("drop");
const bar = document.getElementById("upload-progress");
const statusEl = document.getElementById("upload-status");
const result = document.getElementById("upload-result");

let hooks = {};
let busy = false;

/** POSTs the form with XMLHttpRequest, the one browser API that reports upload progress. */
function send(form, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/v1/audio/transcriptions");
    for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
    xhr.responseType = "blob";
    xhr.upload.onprogress = (ev) => onProgress(ev.loaded, ev.lengthComputable ? ev.total : 0);
    xhr.upload.onload = () => onProgress(-1, 0);
    xhr.onload = () => resolve(xhr);
    xhr.onerror = () => reject(new Error("The server cannot be reached."));
    xhr.send(form);
  });
}

async function upload(file) {
  if (busy || !file) return;
  busy = true;
  input.disabled = true;
  result.replaceChildren();
  bar.hidden = false;
  bar.value = 0;
  statusEl.textContent = `Uploading ${file.name} (${bytes(file.size)})…`;
  const form = new FormData();
  form.append("file", file, file.name);
  form.append("model", "whisper-1");
  form.append("response_format", "json");
  try {
    const xhr = await send(form, (loaded, total) => {
      if (loaded < 0) {
        // Sent: now the server decodes and transcribes; no figure to show.
        bar.removeAttribute("value");
        statusEl.textContent = `Transcribing ${file.name}…`;
      } else if (total) {
        bar.value = loaded / total;
        statusEl.textContent = `Uploading ${file.name}: ${Math.round((100 * loaded) / total)}%`;
      }
    });
    const resp = new Response(xhr.response, { status: xhr.status, statusText: xhr.statusText });
    if (xhr.status < 200 || xhr.status >= 300) {
      const e = await errorFrom(resp);
      if (e.status === 401 && hooks.keyRefused) hooks.keyRefused();
      throw e;
    }
    const body = await resp.json();
    const text = (body.text || "").trim();
    const id = xhr.getResponseHeader("X-Earshot-Session-Id");
    result.replaceChildren(el("p", { class: "text", text: text || "(no speech found)" }));
    statusEl.textContent = `Done: ${file.name}`;
    bar.value = 1;
    if (id && hooks.uploaded) hooks.uploaded(id);
  } catch (e) {
    bar.hidden = true;
    statusEl.textContent = `Upload failed: ${e.message || e}`;
  } finally {
    busy = false;
    input.disabled = false;
    input.value = "";
  }
}

/** `on.uploaded(sessionId)` after a transcription, `on.keyRefused()` on 401. */
export function initUpload(on) {
  hooks = on;
  input.addEventListener("change", () => upload(input.files[0]));
  drop.addEventListener("dragover", (ev) => {
    ev.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (ev) => {
    ev.preventDefault();
    drop.classList.remove("over");
    const file = ev.dataTransfer && ev.dataTransfer.files[0];
    if (file) upload(file);
  });
}
