//! Where whisper.cpp ggml model files come from: lookup, the list of known models, and
//! `fetch` (download from the whisper.cpp model repository with a progress bar, sha256 check
//! and an atomic write).
//!
//! Lookup order (what `earshot model path` prints):
//!
//! 1. `$EARSHOT_MODEL`: a path to a file (used as is, it must exist), or a bare model name
//!    (`tiny.en`, `ggml-base.bin`) looked up in the directories below;
//! 2. `$XDG_DATA_HOME/earshot/models/<file>` (when `XDG_DATA_HOME` is set);
//! 3. `$HOME/.local/share/earshot/models/<file>`;
//! 4. `./models/<file>` (relative to the working directory).
//!
//! The default file is [`DEFAULT_MODEL`] (`ggml-tiny.en.bin`). `fetch` writes into the first
//! data directory (2 or 3).

mod catalog;
mod fetch;

use std::path::PathBuf;

pub use catalog::{list, local_quantization, KnownModel};
pub use fetch::{fetch, fetch_from, sha256_file, Progress};

/// The model used when nothing else is asked for.
pub const DEFAULT_MODEL: &str = "ggml-tiny.en.bin";
/// Environment variable naming a model file (or name).
pub const MODEL_ENV: &str = "EARSHOT_MODEL";
/// Where `fetch` downloads from (`{name}` = `tiny.en`, ...).
pub const DOWNLOAD_URL_TEMPLATE: &str =
    "https://huggingface.co/ggerganov/whisper.cpp/resolve/main/ggml-{name}.bin";

/// Model lookup/download failures, each with a message that tells the user what to do.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// No file found anywhere.
    #[error("model {file} not found; looked in: {}. Put the file in one of these directories, set EARSHOT_MODEL=/path/to/{file}, or run `earshot model fetch {name}`", .searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    NotFound {
        /// Short name (`tiny.en`).
        name: String,
        /// File name (`ggml-tiny.en.bin`).
        file: String,
        /// Every path tried, in order.
        searched: Vec<PathBuf>,
    },
    /// `EARSHOT_MODEL` points at a path that does not exist.
    #[error("EARSHOT_MODEL={0} does not exist")]
    EnvPathMissing(PathBuf),
    /// A name that is not a whisper ggml model name.
    #[error("unknown model name {0:?}; known: {known}", known = list().iter().map(|m| m.name).collect::<Vec<_>>().join(", "))]
    UnknownName(String),
    /// No data directory could be determined to download into.
    #[error("no data directory: set XDG_DATA_HOME or HOME, or pass a directory")]
    NoDataDir,
    /// The download failed (offline, DNS, HTTP error).
    #[error("cannot download {url}: {reason}. Without network access, download ggml-{name}.bin elsewhere and put it at {dest} (or set EARSHOT_MODEL to its path)")]
    Download {
        /// Short name.
        name: String,
        /// The URL tried.
        url: String,
        /// Where the file would have been written.
        dest: PathBuf,
        /// Why.
        reason: String,
    },
    /// The downloaded bytes do not have the published sha256.
    #[error("checksum mismatch for {name}: expected sha256 {expected}, got {actual}; the file was not installed")]
    Checksum {
        /// Short name.
        name: String,
        /// Published digest.
        expected: String,
        /// Digest of what arrived.
        actual: String,
    },
    /// Local file system error.
    #[error("model file I/O error at {path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Normalise `tiny.en` / `ggml-tiny.en.bin` / `ggml-tiny.en` to (`tiny.en`, `ggml-tiny.en.bin`).
pub fn normalize_name(name: &str) -> Result<(String, String), ModelError> {
    let n = name.trim();
    let short = n
        .strip_prefix("ggml-")
        .unwrap_or(n)
        .strip_suffix(".bin")
        .unwrap_or(n.strip_prefix("ggml-").unwrap_or(n));
    let valid = !short.is_empty()
        && short.len() <= 64
        && short
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        && !short.starts_with('.');
    if !valid {
        return Err(ModelError::UnknownName(name.chars().take(80).collect()));
    }
    Ok((short.to_string(), format!("ggml-{short}.bin")))
}

/// The data directories searched (and `fetch`'s target, the first), given an environment.
pub fn data_dirs_with(env: &dyn Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(x) = env("XDG_DATA_HOME").filter(|s| !s.is_empty()) {
        dirs.push(PathBuf::from(x).join("earshot").join("models"));
    }
    if let Some(h) = env("HOME").filter(|s| !s.is_empty()) {
        let p = PathBuf::from(h).join(".local/share/earshot/models");
        if !dirs.contains(&p) {
            dirs.push(p);
        }
    }
    dirs.push(PathBuf::from("models"));
    dirs
}

/// [`data_dirs_with`] on the process environment.
pub fn data_dirs() -> Vec<PathBuf> {
    data_dirs_with(&|k| std::env::var(k).ok())
}

/// Every candidate path for `name` (default model when `None`), in lookup order.
pub fn candidates_with(
    name: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<PathBuf>, ModelError> {
    let (_, file) = normalize_name(name.unwrap_or(DEFAULT_MODEL))?;
    Ok(data_dirs_with(env)
        .into_iter()
        .map(|d| d.join(&file))
        .collect())
}

/// Find a model file. `name` overrides `EARSHOT_MODEL`; `None` means `EARSHOT_MODEL`, else the
/// default model, through the lookup order in the module docs.
pub fn lookup_with(
    name: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<PathBuf, ModelError> {
    let wanted: Option<String> = match name {
        Some(n) => Some(n.to_string()),
        None => env(MODEL_ENV).filter(|s| !s.trim().is_empty()),
    };
    if let Some(w) = &wanted {
        // A path (absolute, relative with a separator, or an existing file) is used as is.
        let p = PathBuf::from(w);
        if p.is_file() {
            return Ok(p);
        }
        if w.contains(std::path::MAIN_SEPARATOR) || p.is_absolute() {
            return Err(ModelError::EnvPathMissing(p));
        }
    }
    let (short, file) = normalize_name(wanted.as_deref().unwrap_or(DEFAULT_MODEL))?;
    let searched = candidates_with(Some(&file), env)?;
    for c in &searched {
        if c.is_file() {
            return Ok(c.clone());
        }
    }
    Err(ModelError::NotFound {
        name: short,
        file,
        searched,
    })
}

/// [`lookup_with`] on the process environment.
pub fn lookup(name: Option<&str>) -> Result<PathBuf, ModelError> {
    lookup_with(name, &|k| std::env::var(k).ok())
}

/// The download URL of a model name.
pub fn download_url(name: &str) -> Result<String, ModelError> {
    let (short, _) = normalize_name(name)?;
    Ok(DOWNLOAD_URL_TEMPLATE.replace("{name}", &short))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_normalise() {
        assert_eq!(
            normalize_name("tiny.en").unwrap(),
            ("tiny.en".into(), "ggml-tiny.en.bin".into())
        );
        assert_eq!(
            normalize_name("ggml-tiny.en.bin").unwrap(),
            ("tiny.en".into(), "ggml-tiny.en.bin".into())
        );
        assert!(normalize_name("../etc/passwd").is_err());
        assert!(normalize_name("").is_err());
    }

    #[test]
    fn quantized_variants_are_known_or_made_locally() {
        let q = list().iter().find(|m| m.name == "tiny.en-q8_0").unwrap();
        assert_eq!(
            (q.weights(), q.f16_name(), q.english_only),
            ("q8_0", "tiny.en", true)
        );
        assert_eq!(
            list().iter().find(|m| m.name == "base").unwrap().weights(),
            "f16"
        );
        // Every published variant's f16 model is known too.
        for m in list() {
            assert!(list().iter().any(|k| k.name == m.f16_name()), "{}", m.name);
        }
        let (from, kind) = local_quantization("ggml-base-q5_0.bin").unwrap();
        assert_eq!((from.name, kind), ("base", "q5_0"));
        assert!(
            local_quantization("base-q8_0").is_none(),
            "published: fetch it"
        );
        assert!(local_quantization("base-q4_0").is_none());
    }
}
