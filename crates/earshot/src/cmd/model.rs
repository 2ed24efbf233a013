//! `earshot model list|path|fetch|quantize`: where models are looked up, how to get one,
//! and how to make a smaller quantized one from an f16 model offline.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Subcommand;
use earshot_asr::model;
use earshot_ggml::QuantType;

/// `earshot model …`
#[derive(Subcommand, Debug)]
pub enum ModelCommand {
    /// The model file `serve` and `transcribe` would use, and the lookup order.
    Path {
        /// A model name (`tiny.en`, `base`…) instead of the default.
        name: Option<String>,
    },
    /// Known model names (quantized variants included), and which are present in the data
    /// directories, with any other ggml file found there.
    List,
    /// Download a ggml model from the whisper.cpp model repository (checksum verified).
    Fetch {
        /// `tiny.en`, `base.en`, `base`, `small.en`…
        name: String,
        /// Directory to write into (default: the first data directory).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Make a quantized model from an f16 one, offline (whisper.cpp's q8_0 / q5_0 rules):
    /// `earshot model quantize ggml-base.bin ggml-base-q5_0.bin --type q5_0`.
    Quantize {
        /// The f16 model: a path, or a name looked up like `earshot model path`.
        input: String,
        /// The file to write (written as `<output>.part`, renamed when complete).
        output: PathBuf,
        /// `q8_0` (about 0.55× the f16 size, same text in our measurements) or `q5_0`
        /// (about 0.37×, loses some accuracy on small models).
        #[arg(long = "type", value_parser = parse_type)]
        kind: QuantType,
    },
}

fn parse_type(s: &str) -> Result<QuantType, String> {
    QuantType::parse(s).ok_or_else(|| format!("{s:?} is not q8_0 or q5_0"))
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
        ModelCommand::List => list(),
        ModelCommand::Fetch { name, dir } => {
            if let Some((from, kind)) = model::local_quantization(&name) {
                bail!(
                    "{name} is not published by the whisper.cpp model repository; make it \
                     from the f16 model: `earshot model fetch {from}` then `earshot model \
                     quantize {from} ggml-{from}-{kind}.bin --type {kind}`",
                    from = from.name
                );
            }
            let path = model::fetch(&name, dir.as_deref(), model::Progress::Bar).await?;
            println!("{}", path.display());
        }
        ModelCommand::Quantize {
            input,
            output,
            kind,
        } => {
            let input = if Path::new(&input).is_file() {
                PathBuf::from(input)
            } else {
                model::lookup(Some(&input))?
            };
            let (src, dst) = (input.clone(), output.clone());
            let report =
                tokio::task::spawn_blocking(move || earshot_ggml::quantize_file(&src, &dst, kind))
                    .await
                    .context("the quantizer stopped")?
                    .with_context(|| format!("quantizing {}", input.display()))?;
            println!(
                "{}: {} of {} tensors quantized to {}, {} -> {} bytes",
                output.display(),
                report.quantized,
                report.tensors,
                kind.name(),
                report.in_bytes,
                report.out_bytes
            );
        }
    }
    Ok(())
}

/// Known names with their weights and where each is present, then other ggml files of the
/// data directories (quantized locally, converted...) with what their headers say.
fn list() {
    let dirs = model::data_dirs();
    println!("{:<22} {:>8} {:>8}  present", "name", "weights", "size");
    for m in model::list() {
        let present = dirs.iter().map(|d| d.join(m.file)).find(|p| p.is_file());
        println!(
            "{:<22} {:>8} {:>8}  {}",
            m.name,
            m.weights(),
            m.bytes
                .map(|b| format!("{} MB", b / 1_000_000))
                .unwrap_or_else(|| "?".into()),
            present
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "-".into())
        );
    }
    let known = |file: &str| model::list().iter().any(|m| m.file == file);
    for dir in &dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("ggml-") && n.ends_with(".bin") && !known(n))
            })
            .collect();
        files.sort();
        for p in files {
            let name = p
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix("ggml-"))
                .and_then(|n| n.strip_suffix(".bin"))
                .unwrap_or_default()
                .to_owned();
            let (weights, size) = match earshot_ggml::read_hparams(&p) {
                Ok(i) => (i.weights.name(), format!("{} MB", i.file_bytes / 1_000_000)),
                Err(_) => ("not ggml".to_owned(), "?".to_owned()),
            };
            println!("{name:<22} {weights:>8} {size:>8}  {} (local)", p.display());
        }
    }
}
