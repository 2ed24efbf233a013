//! Downloading a model: progress, size and sha256 checks, and an atomic rename so a crash
//! never leaves half a model where lookup would find it.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{data_dirs, download_url, list, normalize_name, ModelError};

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
    let known = list().iter().find(|k| k.name == short).copied();
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
