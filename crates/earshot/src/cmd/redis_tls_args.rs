//! The TLS flags shared by every command that connects to Redis (`serve`, `worker`).

use std::path::PathBuf;

use clap::Args;
use earshot_core::config::RedisTls;

/// PEM files for `rediss://` and `rediss+cluster://`.
#[derive(Args, Debug, Clone, Default)]
pub struct RedisTlsArgs {
    /// CA certificate(s) (PEM) that sign the Redis servers' certificates, trusted
    /// instead of the Mozilla roots built into the binary; for a private CA.
    #[arg(long, env = "EARSHOT_REDIS_CA_FILE")]
    pub redis_ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for Redis servers that require one (`tls-auth-clients`).
    #[arg(long, env = "EARSHOT_REDIS_CLIENT_CERT", requires = "redis_client_key")]
    pub redis_client_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, env = "EARSHOT_REDIS_CLIENT_KEY", requires = "redis_client_cert")]
    pub redis_client_key: Option<PathBuf>,
}

impl RedisTlsArgs {
    pub fn config(&self) -> RedisTls {
        RedisTls {
            ca_file: self.redis_ca_file.clone(),
            client_cert: self.redis_client_cert.clone(),
            client_key: self.redis_client_key.clone(),
        }
    }
}
