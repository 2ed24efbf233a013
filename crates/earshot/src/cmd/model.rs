//! `earshot model list|path|fetch`: where models are looked up and how to get one.

use std::path::PathBuf;

use clap::Subcommand;
use earshot_asr::model;

/// `earshot model …`
#[derive(Subcommand, Debug)]
pub enum ModelCommand {
    /// The model file `serve` and `transcribe` would use, and the lookup order.
    Path {
        /// A model name (`tiny.en`, `base`…) instead of the default.
        name: Option<String>,
    },
    /// Known model names, and which are present in the data directories.
    List,
    /// Download a ggml model from the whisper.cpp model repository (checksum verified).
    Fetch {
        /// `tiny.en`, `base.en`, `base`, `small.en`…
        name: String,
        /// Directory to write into (default: the first data directory).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

/// Runs a model subcommand.
pub async fn run(cmd: ModelCommand) -> anyhow::Result<()> {
    match cmd {
        ModelCommand::Path { name } => {
            println!("lookup order: $EARSHOT_MODEL, then in each data directory:");
            for d in model::data_dirs() {
                println!("  {}", d.display());
            }
            let path = model::lookup(name.as_deref())?;
            println!("{}", path.display());
        }
        ModelCommand::List => {
            let dirs = model::data_dirs();
            println!("{:<12} {:>10}  present", "name", "size");
            for m in model::list() {
                let present = dirs.iter().map(|d| d.join(m.file)).find(|p| p.is_file());
                println!(
                    "{:<12} {:>10}  {}",
                    m.name,
                    m.bytes
                        .map(|b| format!("{} MB", b / 1_000_000))
                        .unwrap_or_else(|| "?".into()),
                    present
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|| "-".into())
                );
            }
        }
        ModelCommand::Fetch { name, dir } => {
            let path = model::fetch(&name, dir.as_deref(), model::Progress::Bar).await?;
            println!("{}", path.display());
        }
    }
    Ok(())
}
