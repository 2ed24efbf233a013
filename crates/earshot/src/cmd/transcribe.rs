//! `earshot transcribe FILE…`: local transcription, no server and no Redis. Shows a
//! progress bar on a terminal; writes txt, json, srt or vtt to stdout or next to a
//! chosen output directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use earshot_asr::batch::{transcribe_detailed, BatchOptions};
use earshot_asr::engine::AUTO_LANGUAGE;
use earshot_asr::{Engine, EngineConfig};
use earshot_core::format::{to_srt, to_vtt};
use earshot_core::{Segment, Transcript};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Output formats of `transcribe`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Txt,
    Json,
    Srt,
    Vtt,
}

/// Flags of `earshot transcribe`.
#[derive(Args, Debug)]
pub struct TranscribeArgs {
    /// Audio files (WAV, MP3, FLAC, Ogg Vorbis).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Output format.
    #[arg(long, short, value_enum, default_value = "txt")]
    pub format: Format,
    /// Write `<file stem>.<format>` into this directory instead of stdout.
    #[arg(long, short = 'o')]
    pub output_dir: Option<PathBuf>,
    /// ggml model file (default: the `earshot model path` lookup).
    #[arg(long, env = "EARSHOT_MODEL")]
    pub model: Option<PathBuf>,
    /// CPU threads for the decoder.
    #[arg(long, env = "EARSHOT_ASR_THREADS", default_value_t = 2)]
    pub threads: usize,
    /// Longest audio a file may hold, in seconds; a longer file fails as soon as decoding
    /// passes it (its samples would need 64 KB per second of memory).
    #[arg(long, env = "EARSHOT_MAX_AUDIO_SECONDS", default_value_t = earshot_asr::audio::MAX_DECODED_SECONDS)]
    pub max_seconds: u64,
    /// Never show a progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Spoken language (ISO 639-1, e.g. `de`); without it a multilingual model detects it
    /// from the first speech of each file (reported on stderr).
    #[arg(long)]
    pub language: Option<String>,
    /// Write English whatever the spoken language (multilingual models).
    #[arg(long)]
    pub translate: bool,
    /// Text that biases the decoder toward its words: names, jargon, spelling.
    #[arg(long)]
    pub prompt: Option<String>,
}

/// Loads the model once and transcribes every file.
pub async fn run(args: TranscribeArgs) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || run_blocking(args)).await?
}

fn run_blocking(args: TranscribeArgs) -> anyhow::Result<()> {
    let model = match &args.model {
        Some(p) => p.clone(),
        None => earshot_asr::model::lookup(None)?,
    };
    let mut cfg = EngineConfig::new(&model);
    cfg.threads = args.threads.max(1);
    let engine = Engine::load(cfg).with_context(|| format!("loading model {}", model.display()))?;
    if engine.is_english_only() {
        if args.translate {
            bail!(
                "translation needs a multilingual model; {} is English-only",
                model.display()
            );
        }
        if let Some(l) = args
            .language
            .as_deref()
            .filter(|l| earshot_asr::language::code(l) != Some("en"))
        {
            bail!(
                "{} is English-only and cannot transcribe {l:?}",
                model.display()
            );
        }
    }
    if let Some(l) = &args.language {
        if earshot_asr::language::code(l).is_none() {
            bail!("unknown language {l:?}: use an ISO 639-1 code such as de, fr or es");
        }
    }
    if let Some(dir) = &args.output_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut failures = 0;
    for file in &args.files {
        match transcribe_one(&engine, file, &args) {
            Ok(()) => {}
            Err(e) => {
                failures += 1;
                eprintln!("earshot: {}: {e:#}", file.display());
            }
        }
    }
    if failures > 0 {
        bail!("{failures} of {} files failed", args.files.len());
    }
    Ok(())
}

fn transcribe_one(engine: &Arc<Engine>, file: &Path, args: &TranscribeArgs) -> anyhow::Result<()> {
    let audio = earshot_asr::audio::decode_file_limited(file, args.max_seconds.max(1))?;
    let total_ms = (audio.duration_secs() * 1000.0) as u64;
    let bar = ProgressBar::new(total_ms.max(1));
    if args.quiet {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {percent}% ({elapsed} elapsed, ~{eta} left)",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(
        file.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    );
    let opts = BatchOptions {
        language: Some(
            match args
                .language
                .as_deref()
                .and_then(earshot_asr::language::code)
            {
                Some(code) => code,
                None => AUTO_LANGUAGE,
            }
            .to_owned(),
        ),
        translate: args.translate,
        prompt: args.prompt.clone(),
        ..BatchOptions::default()
    };
    let result = transcribe_detailed(engine, &audio.samples, &opts, &mut |done, _| {
        bar.set_position(done)
    })?;
    bar.finish_and_clear();
    if let Some(d) = &result.detected_language {
        eprintln!(
            "{}: language {} (p = {:.2})",
            file.display(),
            d.code,
            d.probability
        );
    }
    let segments = result.segments;
    let segments: Vec<Segment> = segments
        .into_iter()
        .filter(|s| !s.text.trim().is_empty())
        .enumerate()
        .map(|(i, s)| Segment {
            seq: i as u64,
            text: s.text.trim().to_owned(),
            start_ms: Some(s.start_ms),
            end_ms: Some(s.end_ms),
            words: earshot_server::service::words_from_asr(&s.words),
        })
        .collect();
    let rendered = render(file, audio.duration_secs(), &segments, args.format);
    match &args.output_dir {
        Some(dir) => {
            let stem = file.file_stem().unwrap_or_default().to_string_lossy();
            let ext = format!("{:?}", args.format).to_lowercase();
            let out = dir.join(format!("{stem}.{ext}"));
            std::fs::write(&out, rendered).with_context(|| format!("writing {}", out.display()))?;
            eprintln!("{} -> {}", file.display(), out.display());
        }
        None => print!("{rendered}"),
    }
    Ok(())
}

/// Renders one file's transcript in the chosen format.
pub fn render(file: &Path, duration_s: f64, segments: &[Segment], format: Format) -> String {
    let text =
        Transcript::join_chunks(&segments.iter().map(|s| s.text.as_str()).collect::<Vec<_>>());
    match format {
        Format::Txt => format!("{text}\n"),
        Format::Srt => to_srt(segments),
        Format::Vtt => to_vtt(segments),
        Format::Json => {
            let v = serde_json::json!({
                "file": file.display().to_string(),
                "duration": duration_s,
                "text": text,
                "segments": segments,
            });
            format!("{v}\n")
        }
    }
}
