//! The certificates a `rediss://` or `rediss+cluster://` connection trusts and shows,
//! read from the PEM files of [`RedisTls`] once, at connect time, so a missing or
//! unreadable file stops the start with its path rather than failing every call.

use std::path::Path;

use earshot_core::config::RedisTls;
use redis::{ClientTlsConfig, TlsCertificates};

use crate::api::{StoreError, StoreResult};

/// Whether `url` asks for TLS (`rediss://`, `rediss+cluster://`).
pub(super) fn is_tls_url(url: &str) -> bool {
    url.starts_with("rediss://") || url.starts_with("rediss+cluster://")
}

/// The certificates for `url`, or `None` to use the built-in roots. Refuses files set
/// for a URL without TLS (they would be silently unused) and half a client identity.
pub(super) fn certificates(url: &str, tls: &RedisTls) -> StoreResult<Option<TlsCertificates>> {
    if tls == &RedisTls::default() {
        return Ok(None);
    }
    if !is_tls_url(url) {
        return Err(StoreError::Config(
            "Redis TLS files (EARSHOT_REDIS_CA_FILE / EARSHOT_REDIS_CLIENT_CERT) are set but \
             REDIS_URL does not use TLS; use rediss:// or rediss+cluster://"
                .into(),
        ));
    }
    let client_tls = match (&tls.client_cert, &tls.client_key) {
        (Some(cert), Some(key)) => Some(ClientTlsConfig {
            client_cert: read(cert, "EARSHOT_REDIS_CLIENT_CERT")?,
            client_key: read(key, "EARSHOT_REDIS_CLIENT_KEY")?,
        }),
        (None, None) => None,
        _ => {
            return Err(StoreError::Config(
                "EARSHOT_REDIS_CLIENT_CERT and EARSHOT_REDIS_CLIENT_KEY go together".into(),
            ))
        }
    };
    let root_cert = match &tls.ca_file {
        Some(ca) => Some(read(ca, "EARSHOT_REDIS_CA_FILE")?),
        None => None,
    };
    Ok(Some(TlsCertificates {
        client_tls,
        root_cert,
    }))
}

fn read(path: &Path, setting: &str) -> StoreResult<Vec<u8>> {
    let pem = std::fs::read(path)
        .map_err(|e| StoreError::Config(format!("{setting}={}: {e}", path.display())))?;
    if !pem.starts_with(b"-----BEGIN") && !String::from_utf8_lossy(&pem).contains("-----BEGIN") {
        return Err(StoreError::Config(format!(
            "{setting}={}: not a PEM file",
            path.display()
        )));
    }
    Ok(pem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_would_be_silently_ignored() {
        let ca = RedisTls {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..RedisTls::default()
        };
        assert!(certificates("redis://h:1", &RedisTls::default())
            .unwrap()
            .is_none());
        assert!(matches!(
            certificates("redis://h:1", &ca),
            Err(StoreError::Config(_))
        ));
        let e = certificates("rediss://h:1", &ca).err().unwrap().to_string();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
        let half = RedisTls {
            client_cert: Some("/c.pem".into()),
            ..RedisTls::default()
        };
        assert!(matches!(
            certificates("rediss+cluster://h:1", &half),
            Err(StoreError::Config(_))
        ));
    }
}
