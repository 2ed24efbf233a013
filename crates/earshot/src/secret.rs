//! A configuration string that must never reach a log or a panic message: API keys,
//! Redis URLs (which may carry a password), webhook secrets. The flag structs derive
//! `Debug`; holding these values as [`Secret`] makes any `{:?}` of them print
//! `<redacted>`, and there is deliberately no `Display`, so `%secret` does not compile.

use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;

/// A string that prints as `<redacted>`; read it with [`Secret::expose`].
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// The value itself, for the one place that needs it (parsing keys, connecting).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl FromStr for Secret {
    type Err = Infallible;

    fn from_str(s: &str) -> Result<Self, Infallible> {
        Ok(Self(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cmd::serve::ServeArgs;
    use crate::cmd::worker::WorkerArgs;

    #[derive(Parser, Debug)]
    struct Serve {
        #[command(flatten)]
        args: ServeArgs,
    }

    #[derive(Parser, Debug)]
    struct Worker {
        #[command(flatten)]
        args: WorkerArgs,
    }

    #[test]
    fn debug_never_shows_the_value() {
        let s: Secret = "hunter2-key".parse().unwrap();
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(format!("{:?}", Some(s.clone())), "Some(<redacted>)");
        assert_eq!(s.expose(), "hunter2-key");
    }

    #[test]
    fn flag_structs_do_not_print_keys_passwords_or_secrets() {
        let serve = Serve::try_parse_from([
            "serve",
            "--api-keys",
            "acme:sup3r-s3cret-key",
            "--redis-url",
            "redis://:p4ssw0rd@db:6379",
            "--webhook-secret",
            "w3bh00k-s3cret",
        ])
        .unwrap();
        let worker = Worker::try_parse_from([
            "worker",
            "--group",
            "g",
            "--sink",
            "stdout",
            "--redis-url",
            "redis://:p4ssw0rd@db:6379",
            "--webhook-secret",
            "w3bh00k-s3cret",
        ])
        .unwrap();
        for printed in [
            format!("{serve:?}"),
            format!("{serve:#?}"),
            format!("{worker:?}"),
        ] {
            for secret in ["sup3r-s3cret-key", "p4ssw0rd", "w3bh00k-s3cret"] {
                assert!(!printed.contains(secret), "{secret} leaked: {printed}");
            }
            assert!(printed.contains("<redacted>"));
        }
        assert_eq!(
            serve.args.api_keys.as_ref().map(Secret::expose),
            Some("acme:sup3r-s3cret-key")
        );
    }
}
