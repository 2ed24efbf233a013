// The one way the app talks to the server: same-origin fetches with the API key as a
// bearer header, and errors turned into messages a person can act on.

const KEY_STORAGE = "earshot.apiKey";

/** The key kept in this browser, or "" when none. */
export function storedKey() {
  try {
    return localStorage.getItem(KEY_STORAGE) || "";
  } catch {
    return "";
  }
}

/** Keeps `key` in this browser's local storage ("" forgets it). */
export function storeKey(key) {
  try {
    if (key) localStorage.setItem(KEY_STORAGE, key);
    else localStorage.removeItem(KEY_STORAGE);
  } catch {
    // Storage may be disabled (private mode): the key then lasts for this page only.
  }
  current = key;
}

let current = storedKey();

/** The key in use now. */
export function key() {
  return current;
}

/** An API error, with the server's `code` and a message for a person. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Headers for a request, with the key when there is one. */
export function authHeaders(extra = {}) {
  const h = { ...extra };
  if (current) h.Authorization = `Bearer ${current}`;
  return h;
}

/** Reads an error response in the API's error shape `{"error":{"code","message"}}`. */
export async function errorFrom(resp) {
  let code = `http_${resp.status}`;
  let message = `the server answered ${resp.status} ${resp.statusText}`;
  try {
    const body = await resp.json();
    if (body && body.error) {
      code = body.error.code || code;
      message = body.error.message || message;
    }
  } catch {
    // Not JSON (a proxy's page): keep the status line.
  }
  if (resp.status === 401) {
    message = current
      ? "The API key was not accepted by this server. Check it and enter it again."
      : "This server needs an API key.";
  }
  return new ApiError(resp.status, code, message);
}

/** A fetch to the API that throws [`ApiError`] on any non-2xx answer. */
export async function request(path, { method = "GET", body, headers = {}, signal } = {}) {
  let resp;
  try {
    resp = await fetch(path, {
      method,
      body,
      headers: authHeaders(headers),
      signal,
      cache: "no-store",
    });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, "network", "The server cannot be reached.");
  }
  if (!resp.ok) throw await errorFrom(resp);
  return resp;
}

/** GET a JSON document. */
export async function getJson(path, opts) {
  return (await request(path, opts)).json();
}

/** The WebSocket URL of a session's audio stream; the key rides in the query string
 * because browsers cannot set headers on a WebSocket. */
export function streamUrl(sessionId, params) {
  const q = new URLSearchParams(params);
  if (current) q.set("api_key", current);
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/v1/sessions/${encodeURIComponent(sessionId)}/stream?${q}`;
}
