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

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

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

/// A model name we know about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownModel {
    /// Short name as used by `fetch` (`tiny.en`).
    pub name: &'static str,
    /// File name (`ggml-tiny.en.bin`).
    pub file: &'static str,
    /// Size in bytes of the file in the whisper.cpp repository, where known.
    pub bytes: Option<u64>,
    /// sha256 of that file, where known (checked by `fetch`).
    pub sha256: Option<&'static str>,
    /// English-only model.
    pub english_only: bool,
}

const fn km(
    name: &'static str,
    file: &'static str,
    bytes: Option<u64>,
    sha256: Option<&'static str>,
    english_only: bool,
) -> KnownModel {
    KnownModel {
        name,
        file,
        bytes,
        sha256,
        english_only,
    }
}

/// Known whisper.cpp ggml models (sizes / digests of the files in the upstream repository
/// where we have them; others are fetched without a digest check, which is said at fetch time).
static KNOWN: &[KnownModel] = &[
    km(
        "tiny.en",
        "ggml-tiny.en.bin",
        Some(77_704_715),
        Some("921e4cf8686fdd993dcd081a5da5b6c365bfde1162e72b08d75ac75289920b1f"),
        true,
    ),
    km(
        "tiny",
        "ggml-tiny.bin",
        Some(77_691_713),
        Some("be07e048e1e599ad46341c8d2a135645097a538221678b7acdd1b1919c6e1b21"),
        false,
    ),
    km(
        "base.en",
        "ggml-base.en.bin",
        Some(147_964_211),
        Some("a03779c86df3323075f5e796cb2ce5029f00ec8869eee3fdfb897afe36c6d002"),
        true,
    ),
    km(
        "base",
        "ggml-base.bin",
        Some(147_951_465),
        Some("60ed5bc3dd14eea856493d334349b405782ddcaf0028d4b5df4088345fba2efe"),
        false,
    ),
    km(
        "small.en",
        "ggml-small.en.bin",
        Some(487_614_201),
        None,
        true,
    ),
    km("small", "ggml-small.bin", None, None, false),
    km("medium.en", "ggml-medium.en.bin", None, None, true),
    km("medium", "ggml-medium.bin", None, None, false),
    km("large-v3", "ggml-large-v3.bin", None, None, false),
    km(
        "large-v3-turbo",
        "ggml-large-v3-turbo.bin",
        None,
        None,
        false,
    ),
];

/// The models `earshot model list` shows.
pub fn list() -> &'static [KnownModel] {
    KNOWN
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

/// How `fetch` reports progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// An `indicatif` bar on stderr (hidden automatically when stderr is not a terminal).
    Bar,
    /// Nothing.
    Quiet,
}

/// Download model `name` into `dest_dir` (default: the first data directory) and return its
/// path. Writes `<file>.part` next to the target and renames it into place only after the
/// size and (where known) sha256 check passed, so a crash never leaves a half model behind.
pub async fn fetch(
    name: &str,
    dest_dir: Option<&Path>,
    progress: Progress,
) -> Result<PathBuf, ModelError> {
    let url = download_url(name)?;
    fetch_from(name, &url, dest_dir, progress).await
}

/// [`fetch`] from an explicit URL (a mirror, or a local test server).
pub async fn fetch_from(
    name: &str,
    url: &str,
    dest_dir: Option<&Path>,
    progress: Progress,
) -> Result<PathBuf, ModelError> {
    let (short, file) = normalize_name(name)?;
    let known = KNOWN.iter().find(|k| k.name == short).copied();
    let dir = match dest_dir {
        Some(d) => d.to_path_buf(),
        None => data_dirs()
            .into_iter()
            .next()
            .ok_or(ModelError::NoDataDir)?,
    };
    let dest = dir.join(&file);
    let dl_err = |reason: String| ModelError::Download {
        name: short.clone(),
        url: url.to_string(),
        dest: dest.clone(),
        reason,
    };
    std::fs::create_dir_all(&dir).map_err(|source| ModelError::Io {
        path: dir.clone(),
        source,
    })?;
    let client = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(15))
        .build()
        .map_err(|e| dl_err(e.to_string()))?;
    let mut resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| dl_err(error_chain(&e)))?;
    if !resp.status().is_success() {
        return Err(dl_err(format!("HTTP {}", resp.status())));
    }
    let total = resp.content_length().or(known.and_then(|k| k.bytes));
    let bar = match progress {
        Progress::Bar => {
            let b = indicatif::ProgressBar::new(total.unwrap_or(0));
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            b.set_message(file.clone());
            b
        }
        Progress::Quiet => indicatif::ProgressBar::hidden(),
    };
    let part = dir.join(format!("{file}.part"));
    let io_err = |source: std::io::Error| ModelError::Io {
        path: part.clone(),
        source,
    };
    let mut out = std::fs::File::create(&part).map_err(io_err)?;
    let mut hasher = Sha256::new();
    let mut got: u64 = 0;
    let res: Result<(), ModelError> = async {
        while let Some(chunk) = resp.chunk().await.map_err(|e| dl_err(error_chain(&e)))? {
            hasher.update(&chunk);
            out.write_all(&chunk).map_err(io_err)?;
            got += chunk.len() as u64;
            bar.set_position(got);
        }
        out.sync_all().map_err(io_err)?;
        Ok(())
    }
    .await;
    bar.finish_and_clear();
    drop(out);
    let cleanup = |e: ModelError| {
        let _ = std::fs::remove_file(&part);
        e
    };
    res.map_err(cleanup)?;
    if let Some(t) = total {
        if got != t {
            return Err(cleanup(dl_err(format!("got {got} of {t} bytes"))));
        }
    }
    let actual = hex::encode(hasher.finalize());
    match known.and_then(|k| k.sha256) {
        Some(expected) if expected != actual => {
            return Err(cleanup(ModelError::Checksum {
                name: short,
                expected: expected.to_string(),
                actual,
            }));
        }
        Some(_) => {}
        None => {
            tracing::warn!(model = %short, sha256 = %actual, "no published sha256 for this model; not verified")
        }
    }
    std::fs::rename(&part, &dest).map_err(|source| ModelError::Io {
        path: dest.clone(),
        source,
    })?;
    Ok(dest)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// sha256 of a file (hex), e.g. to check a model placed by hand.
pub fn sha256_file(path: &Path) -> Result<String, ModelError> {
    let mut f = std::fs::File::open(path).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(hex::encode(h.finalize()))
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
}
