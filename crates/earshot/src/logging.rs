//! `tracing` set-up: `RUST_LOG` filters (default `info`, whisper.cpp's own chatter at
//! `warn`), text or JSON lines.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber once.
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,whisper_rs=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
