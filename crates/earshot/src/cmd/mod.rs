//! One module per subcommand.

pub mod model;
pub mod redis_tls_args;
pub mod serve;
pub mod serve_models;
pub mod sink_args;
pub mod transcribe;
pub mod worker;
