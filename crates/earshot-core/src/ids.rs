//! Validated identifiers. A `SessionId` can only be built from `[A-Za-z0-9_-]{1,64}`, so
//! a hostile id (`..`, `%2F`, unicode, 65+ chars) never reaches a Redis key name.

use std::fmt;

/// Why an id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("session_id must be 1 to 64 characters")]
    Length,
    #[error("session_id may contain only A-Z, a-z, 0-9, '_' and '-'")]
    Charset,
    #[error("tenant id must be 1 to 64 characters of A-Z, a-z, 0-9, '_', '-' or '.'")]
    Tenant,
}

/// A session id as accepted by the API: `[A-Za-z0-9_-]{1,64}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(String);

impl SessionId {
    /// Validates `raw` against the session id pattern.
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        if raw.is_empty() || raw.len() > 64 {
            return Err(IdError::Length);
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(IdError::Charset);
        }
        Ok(Self(raw.to_owned()))
    }

    /// A fresh random id (32 lowercase hex characters, like the original's `uuid4().hex`).
    pub fn random() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A tenant id, taken from the `EARSHOT_API_KEYS` configuration.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(String);

impl TenantId {
    /// Validates a tenant name (it becomes part of a Redis key).
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        let ok = !raw.is_empty()
            && raw.len() <= 64
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(IdError::Tenant)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_session_ids_are_refused() {
        for bad in ["", "..", "a/b", "%2F", "a b", "é", "a:b", "x*"] {
            assert!(SessionId::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(SessionId::parse(&"a".repeat(65)), Err(IdError::Length));
        assert!(SessionId::parse(&"a".repeat(64)).is_ok());
        assert!(SessionId::parse("call_2026-11-26").is_ok());
    }

    #[test]
    fn random_ids_are_valid() {
        let id = SessionId::random();
        assert_eq!(id.as_str().len(), 32);
        assert!(SessionId::parse(id.as_str()).is_ok());
        assert_ne!(id, SessionId::random());
    }
}
