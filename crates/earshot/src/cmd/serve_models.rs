//! Which speech models `earshot serve` loads: `EARSHOT_MODEL` (one model, as always) or
//! `EARSHOT_MODELS` (several, `name=path` or a name looked up like `EARSHOT_MODEL`), the
//! default among them, and their schedulers: one model gets the plain scheduler; several
//! share the decode slots, each charged its own measured cost.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::bail;
use earshot_asr::{
    AdmissionConfig, Engine, EngineConfig, Scheduler, SchedulerConfig, SharedSlots, StreamConfig,
};
use earshot_server::{Models, Speech, SpeechStatus};

use super::serve::ServeArgs;

/// One model to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSpec {
    /// What requests call it.
    pub name: String,
    /// Its file.
    pub path: PathBuf,
}

/// Parses `EARSHOT_MODELS`: comma-separated `name=path` or bare names (`tiny.en`,
/// `base-q5_0`), each bare name looked up like `EARSHOT_MODEL` is.
pub fn parse_models(
    raw: &str,
    lookup: &dyn Fn(&str) -> anyhow::Result<PathBuf>,
) -> anyhow::Result<Vec<ModelSpec>> {
    let mut specs: Vec<ModelSpec> = Vec::new();
    for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let spec = match entry.split_once('=') {
            Some((name, path)) => ModelSpec {
                name: valid_name(name.trim())?,
                path: PathBuf::from(path.trim()),
            },
            None => ModelSpec {
                name: valid_name(short_name(entry))?,
                path: lookup(entry)?,
            },
        };
        if specs.iter().any(|s| s.name == spec.name) {
            bail!("EARSHOT_MODELS names {:?} twice", spec.name);
        }
        specs.push(spec);
    }
    if specs.is_empty() {
        bail!("EARSHOT_MODELS is set but names no model (expected e.g. tiny.en=/models/ggml-tiny.en.bin,base=/models/ggml-base.bin)");
    }
    Ok(specs)
}

fn valid_name(name: &str) -> anyhow::Result<String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if !ok {
        bail!("model name {name:?} in EARSHOT_MODELS must be 1-64 of A-Z a-z 0-9 . - _");
    }
    Ok(name.to_owned())
}

/// `ggml-tiny.en.bin` (a file name or path) → `tiny.en`.
fn short_name(file: &str) -> &str {
    let base = file.rsplit(['/', '\\']).next().unwrap_or(file);
    let base = base.strip_suffix(".bin").unwrap_or(base);
    base.strip_prefix("ggml-").unwrap_or(base)
}

/// The models to load from the flags, or `Err(reason)` when none can be found (the server
/// then runs without speech and says why).
fn specs(args: &ServeArgs) -> anyhow::Result<Result<Vec<ModelSpec>, String>> {
    let lookup = |n: &str| earshot_asr::model::lookup(Some(n)).map_err(anyhow::Error::from);
    if let Some(raw) = args.models.as_deref().filter(|m| !m.trim().is_empty()) {
        if args.model.is_some() {
            bail!("set EARSHOT_MODELS (several models) or EARSHOT_MODEL (one), not both");
        }
        return match parse_models(raw, &lookup) {
            Ok(specs) => Ok(Ok(specs)),
            // A name that is not installed: like a missing EARSHOT_MODEL, not a bad config.
            Err(e) if e.downcast_ref::<earshot_asr::model::ModelError>().is_some() => {
                Ok(Err(e.to_string()))
            }
            Err(e) => Err(e),
        };
    }
    if args.default_model.is_some() {
        bail!("EARSHOT_DEFAULT_MODEL needs EARSHOT_MODELS");
    }
    let path = match &args.model {
        Some(p) => p.clone(),
        None => match earshot_asr::model::lookup(None) {
            Ok(p) => p,
            Err(e) => return Ok(Err(e.to_string())),
        },
    };
    let name = short_name(&path.to_string_lossy()).to_owned();
    Ok(Ok(vec![ModelSpec { name, path }]))
}

/// Loads the models once for the whole process. A missing or broken model does not stop
/// the server (text segments still work); `/readyz` and the speech routes say why. A
/// configuration that cannot be meant (both variables, a bad list) stops it.
pub async fn load_speech(args: &ServeArgs) -> anyhow::Result<SpeechStatus> {
    if args.no_asr {
        tracing::info!("speech recognition disabled (--no-asr)");
        return Ok(SpeechStatus::Disabled);
    }
    let specs = match specs(args)? {
        Ok(s) => s,
        Err(why) => {
            tracing::warn!("no speech model: {why}");
            return Ok(SpeechStatus::Unavailable(why));
        }
    };
    if let Some(d) = &args.default_model {
        if !specs.iter().any(|s| &s.name == d) {
            bail!(
                "EARSHOT_DEFAULT_MODEL={d} is not in EARSHOT_MODELS ({})",
                specs
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    let mut engines = Vec::new();
    for spec in &specs {
        match load_engine(&spec.path, args.asr_threads).await {
            Ok(e) => engines.push(e),
            Err(why) => return Ok(SpeechStatus::Unavailable(why)),
        }
    }
    let mut cfg = SchedulerConfig::for_threads(args.asr_threads.max(1));
    if let Some(n) = args.decode_slots {
        cfg.decode_slots = n.max(1);
        cfg.max_streams = SchedulerConfig::MAX_STREAMS_PER_SLOT * n.max(1);
    }
    if let Some(t) = args.admission_target {
        cfg.admission.target = t.clamp(0.05, 1.0);
    }
    if let Some(n) = args.max_streams {
        cfg.max_streams = n.max(1);
    }
    let speech = |scheduler: Scheduler, name: &str| Speech {
        scheduler,
        stream: StreamConfig {
            early_final: args.early_final,
            commit_at_pause: args.commit_at_pause,
            ..StreamConfig::default()
        },
        idle_timeout: args.stream_idle_timeout,
        model_name: name.to_owned(),
    };
    if specs.len() == 1 {
        let (spec, engine) = (&specs[0], engines.remove(0));
        let cfg = SchedulerConfig {
            admission: admission_for(&cfg.admission, &spec.path),
            ..cfg
        };
        log_loaded(spec, &cfg);
        let sched = Scheduler::with_config(engine, cfg);
        return Ok(SpeechStatus::Ready(Arc::new(speech(sched, &spec.name))));
    }
    let shared = SharedSlots::new(cfg.decode_slots, cfg.max_streams);
    let mut list = Vec::new();
    for (spec, engine) in specs.iter().zip(engines) {
        let admission = admission_for(&cfg.admission, &spec.path);
        log_loaded(
            spec,
            &SchedulerConfig {
                admission: admission.clone(),
                ..cfg.clone()
            },
        );
        let sched = Scheduler::with_shared(engine, &shared, admission, &spec.name);
        list.push(speech(sched, &spec.name));
    }
    let models = Models::new(list, args.default_model.as_deref()).map_err(anyhow::Error::msg)?;
    tracing::info!(
        default = %models.default_model().model_name,
        decode_slots = cfg.decode_slots,
        "{} speech models share the decode slots",
        models.list().len()
    );
    Ok(SpeechStatus::Models(Arc::new(models)))
}

async fn load_engine(path: &Path, threads: usize) -> Result<Arc<Engine>, String> {
    let mut cfg = EngineConfig::new(path);
    cfg.threads = threads.max(1);
    let shown = path.display().to_string();
    match tokio::task::spawn_blocking(move || Engine::load(cfg)).await {
        Ok(Ok(engine)) => Ok(engine),
        Ok(Err(e)) => {
            tracing::warn!(model = %shown, "model failed to load: {e}");
            Err(format!("{shown}: {e}"))
        }
        Err(e) => Err(format!("model loader crashed: {e}")),
    }
}

/// The admission prior scaled by the model's size: before a model's decodes are measured,
/// a base stream is assumed to cost what base's larger matrices cost relative to tiny,
/// so a burst of new base streams is not admitted at tiny's price.
fn admission_for(default: &AdmissionConfig, path: &Path) -> AdmissionConfig {
    let scale = earshot_ggml::read_hparams(path)
        .map(|i| i.relative_compute())
        .unwrap_or(1.0)
        .clamp(0.25, 64.0);
    AdmissionConfig {
        prior_cost: default.prior_cost * scale,
        ..default.clone()
    }
}

fn log_loaded(spec: &ModelSpec, cfg: &SchedulerConfig) {
    tracing::info!(
        model = %spec.name,
        path = %spec.path.display(),
        decode_slots = cfg.decode_slots,
        max_streams = cfg.max_streams,
        prior_cost = cfg.admission.prior_cost,
        "speech model loaded"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_lookup(n: &str) -> anyhow::Result<PathBuf> {
        Ok(PathBuf::from(format!("/data/ggml-{n}.bin")))
    }

    #[test]
    fn models_parse_as_pairs_or_names() {
        let specs = parse_models(" tiny.en=/m/ggml-tiny.en.bin , base-q5_0 ,", &no_lookup).unwrap();
        assert_eq!(
            specs,
            vec![
                ModelSpec {
                    name: "tiny.en".into(),
                    path: "/m/ggml-tiny.en.bin".into()
                },
                ModelSpec {
                    name: "base-q5_0".into(),
                    path: "/data/ggml-base-q5_0.bin".into()
                },
            ]
        );
        assert_eq!(short_name("/a/b/ggml-base.en.bin"), "base.en");
    }

    #[test]
    fn bad_lists_are_refused_with_the_reason() {
        let e = parse_models("a=/x,a=/y", &no_lookup).unwrap_err();
        assert!(e.to_string().contains("twice"), "{e}");
        let e = parse_models("bad name=/x", &no_lookup).unwrap_err();
        assert!(e.to_string().contains("must be 1-64"), "{e}");
        let e = parse_models(" , ", &no_lookup).unwrap_err();
        assert!(e.to_string().contains("names no model"), "{e}");
    }
}
