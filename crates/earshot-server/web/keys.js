// The API key prompt: finds out whether the server wants a key, asks for one, checks it
// before keeping it in local storage, and says clearly when a key is refused.

import { ApiError, key, request, storeKey, storedKey } from "./api.js";

const form = document.getElementById("key-form");
const input = document.getElementById("api-key");
const message = document.getElementById("key-message");
const forget = document.getElementById("key-forget");

let onAccess = () => {};

/** Whether the server accepts the key in use: "ok", "unauthorized" or "unreachable". */
async function probe() {
  try {
    await request("/v1/sessions?limit=1");
    return "ok";
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return "unauthorized";
    return "unreachable";
  }
}

function say(text, kind = "info") {
  message.textContent = text;
  message.dataset.kind = kind;
}

function ask(text) {
  form.hidden = false;
  forget.hidden = !storedKey();
  say(text, "error");
  onAccess(false);
  input.focus();
}

/** Shows the prompt again after an API call was refused with 401. */
export function keyRefused() {
  ask(
    key()
      ? "The API key was not accepted by this server. Enter a valid key."
      : "This server needs an API key. Enter the key you were given.",
  );
}

/** Checks access at start-up; `ready(ok)` is called whenever access is gained or lost. */
export async function initKeys(ready) {
  onAccess = ready;
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const candidate = input.value.trim();
    if (!candidate) {
      ask("Enter an API key first.");
      return;
    }
    const previous = key();
    storeKey(candidate);
    const result = await probe();
    if (result === "ok") {
      forget.hidden = false;
      say("Key accepted and kept in this browser.", "ok");
      onAccess(true);
    } else {
      storeKey(previous);
      if (result === "unauthorized") {
        input.select();
        ask("Wrong API key: the server did not accept it (401). Check it and try again.");
      } else {
        say("The server cannot be reached; try again in a moment.", "error");
      }
    }
  });
  forget.addEventListener("click", () => {
    storeKey("");
    input.value = "";
    ask("Key forgotten. Enter a key to continue.");
  });

  // Without keys the server answers anyone: then the prompt stays hidden.
  let info;
  try {
    info = await (await fetch("/app/server.json", { cache: "no-store" })).json();
  } catch {
    say("The server cannot be reached. Reload the page when it is back.", "error");
    return;
  }
  if (!info.keys_required) {
    onAccess(true);
    return;
  }
  form.hidden = false;
  const result = key() ? await probe() : "unauthorized";
  if (result === "ok") {
    forget.hidden = false;
    input.value = key();
    onAccess(true);
  } else if (result === "unauthorized") {
    if (key()) {
      input.value = key();
      ask("The key kept in this browser is no longer accepted. Enter a valid key.");
    } else {
      ask("This server needs an API key. Enter the key you were given.");
    }
  } else {
    say("The server cannot be reached. Reload the page when it is back.", "error");
  }
}
