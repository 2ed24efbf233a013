//! The web app at `/`, in a real headless Chromium with a fake microphone playing speech,
//! driven only through the page's `data-testid` hooks and checked on what a person sees:
//! live captions, history, downloads, upload, events, keys, a live stream that survives
//! a server restart or crash, and an overloaded server's refusal with *Retry*.
//! Screenshots of each stage go to `/tmp/webapp-shots/` (or `$EARSHOT_SHOTS_DIR`).
//!
//! - `page`: what the tests share (the set-up, reading the captions and the status line);
//! - `captions`, `keys`, `restart`, `overload`: the tests, one job each;
//! - `browser`, `serve`, `clip`: Chromium over WebDriver, the server process, the speech.
//!
//! The tests run one at a time: each drives a browser and a server decoding in real time,
//! and two at once on a 2-core machine would only measure the machine.

mod browser;
mod captions;
mod clip;
mod keys;
mod overload;
mod page;
mod restart;
mod serve;
