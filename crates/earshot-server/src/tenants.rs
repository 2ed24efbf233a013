//! Which API keys exist and whose they are. Keys come from `EARSHOT_API_KEYS`
//! (`tenant:key,...`); with no keys configured every request belongs to the tenant
//! `default` (allowed only on a loopback listen address, which the binary enforces).
//! Keys are compared in constant time and never logged.

use std::net::SocketAddr;

use earshot_core::TenantId;
use subtle::ConstantTimeEq;

/// The configured keys, or open access for the single tenant `default`.
#[derive(Clone)]
pub struct Tenants {
    keys: Vec<(Vec<u8>, TenantId)>,
}

/// Why `EARSHOT_API_KEYS` was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeysError {
    #[error("EARSHOT_API_KEYS entry #{0} is not tenant_id:key")]
    Malformed(usize),
    #[error("EARSHOT_API_KEYS entry #{0}: {1}")]
    BadTenant(usize, earshot_core::IdError),
    #[error("EARSHOT_API_KEYS entry #{0}: keys must be at least 8 characters")]
    ShortKey(usize),
    #[error("EARSHOT_API_KEYS entry #{0}: the same key is configured twice")]
    Duplicate(usize),
}

impl Tenants {
    /// No keys: everything is the tenant `default`.
    pub fn open() -> Self {
        Self { keys: Vec::new() }
    }

    /// Parses `tenant_a:key1,tenant_b:key2`.
    pub fn parse(raw: &str) -> Result<Self, KeysError> {
        let mut keys: Vec<(Vec<u8>, TenantId)> = Vec::new();
        for (i, pair) in raw.split(',').map(str::trim).enumerate() {
            if pair.is_empty() {
                continue;
            }
            let (tenant, key) = pair.split_once(':').ok_or(KeysError::Malformed(i + 1))?;
            let tenant =
                TenantId::parse(tenant.trim()).map_err(|e| KeysError::BadTenant(i + 1, e))?;
            let key = key.trim();
            if key.len() < 8 {
                return Err(KeysError::ShortKey(i + 1));
            }
            if keys.iter().any(|(k, _)| k == key.as_bytes()) {
                return Err(KeysError::Duplicate(i + 1));
            }
            keys.push((key.as_bytes().to_vec(), tenant));
        }
        Ok(Self { keys })
    }

    /// True when no key is configured (single open tenant).
    pub fn is_open(&self) -> bool {
        self.keys.is_empty()
    }

    /// The tenant a presented key belongs to. Every configured key is compared, in
    /// constant time, whatever matches, so timing does not reveal key prefixes.
    pub fn tenant_for(&self, presented: Option<&str>) -> Option<TenantId> {
        if self.is_open() {
            return TenantId::parse("default").ok();
        }
        let presented = presented?.as_bytes();
        let mut found = None;
        for (key, tenant) in &self.keys {
            if bool::from(key.as_slice().ct_eq(presented)) {
                found = Some(tenant.clone());
            }
        }
        found
    }

    /// How many tenants are configured (for the start-up log, never the keys).
    pub fn tenant_count(&self) -> usize {
        let mut t: Vec<&TenantId> = self.keys.iter().map(|(_, t)| t).collect();
        t.sort();
        t.dedup();
        t.len()
    }
}

/// Whether open access is acceptable on this listen address.
pub fn open_access_allowed(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_keys_and_finds_tenants() {
        let t = Tenants::parse("acme:key-acme-1, globex:key-globex-1").unwrap();
        assert_eq!(t.tenant_for(Some("key-acme-1")).unwrap().as_str(), "acme");
        assert_eq!(
            t.tenant_for(Some("key-globex-1")).unwrap().as_str(),
            "globex"
        );
        assert!(t.tenant_for(Some("key-acme-")).is_none());
        assert!(t.tenant_for(None).is_none());
        assert_eq!(t.tenant_count(), 2);
    }

    #[test]
    fn refuses_bad_key_lists() {
        assert_eq!(
            Tenants::parse("nocolon").err(),
            Some(KeysError::Malformed(1))
        );
        assert!(matches!(
            Tenants::parse("a b:12345678"),
            Err(KeysError::BadTenant(1, _))
        ));
        assert_eq!(
            Tenants::parse("a:short").err(),
            Some(KeysError::ShortKey(1))
        );
        assert_eq!(
            Tenants::parse("a:12345678,b:12345678").err(),
            Some(KeysError::Duplicate(2))
        );
    }

    #[test]
    fn open_tenancy_is_default() {
        let t = Tenants::open();
        assert_eq!(t.tenant_for(None).unwrap().as_str(), "default");
        assert!(open_access_allowed(&"127.0.0.1:8080".parse().unwrap()));
        assert!(open_access_allowed(&"[::1]:8080".parse().unwrap()));
        assert!(!open_access_allowed(&"0.0.0.0:8080".parse().unwrap()));
    }
}
