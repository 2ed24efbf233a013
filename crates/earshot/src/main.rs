//! The `earshot` command line: `serve`, `worker`, `transcribe`, `model`.
//! Only wiring lives here: flags and environment → library calls. Every flag also
//! reads an environment variable.

mod cmd;
mod logging;
mod secret;
mod signals;
mod store_select;

use clap::{Parser, Subcommand};

/// earshot: real-time speech transcription with durable, fanned-out transcripts.
#[derive(Parser)]
#[command(name = "earshot", version, about)]
struct Cli {
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, env = "EARSHOT_LOG_JSON", global = true)]
    log_json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP + WebSocket API server.
    Serve(Box<cmd::serve::ServeArgs>),
    /// Consume transcription_events in a consumer group and deliver to a sink.
    Worker(cmd::worker::WorkerArgs),
    /// Transcribe audio files locally (no server, no Redis).
    Transcribe(cmd::transcribe::TranscribeArgs),
    /// Where models are looked up; download one.
    #[command(subcommand)]
    Model(cmd::model::ModelCommand),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    logging::init(cli.log_json);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => cmd::serve::run(*args).await,
            Command::Worker(args) => cmd::worker::run(args).await,
            Command::Transcribe(args) => cmd::transcribe::run(args).await,
            Command::Model(cmd) => cmd::model::run(cmd).await,
        }
    })
}
