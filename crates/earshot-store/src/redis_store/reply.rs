//! Reading raw Redis replies into our types. Written against `redis::Value` directly
//! because the crate's stream helpers put fields in a `HashMap`, losing their order,
//! and because a damaged reply must become `StoreError::Protocol`, never a panic.

use earshot_core::StreamId;
use redis::Value;

use crate::api::{StoreError, StoreResult, StreamEntry};

fn protocol(what: &str, v: &Value) -> StoreError {
    let mut shown = format!("{v:?}");
    shown.truncate(200);
    StoreError::Protocol(format!("expected {what}, got {shown}"))
}

/// A bulk or simple string (numbers are accepted as their decimal form).
pub(super) fn string(v: Value) -> StoreResult<String> {
    match v {
        Value::BulkString(b) => {
            String::from_utf8(b).map_err(|e| StoreError::Protocol(format!("not UTF-8: {e}")))
        }
        Value::SimpleString(s) => Ok(s),
        Value::Okay => Ok("OK".into()),
        Value::Int(i) => Ok(i.to_string()),
        Value::VerbatimString { text, .. } => Ok(text),
        other => Err(protocol("a string", &other)),
    }
}

/// A string, or `None` for nil.
pub(super) fn opt_string(v: Value) -> StoreResult<Option<String>> {
    match v {
        Value::Nil => Ok(None),
        other => string(other).map(Some),
    }
}

/// An integer (or a string holding one).
pub(super) fn int(v: Value) -> StoreResult<i64> {
    match v {
        Value::Int(i) => Ok(i),
        Value::Boolean(b) => Ok(i64::from(b)),
        other => {
            let s = string(other)?;
            s.parse()
                .map_err(|_| StoreError::Protocol(format!("expected an integer, got {s:?}")))
        }
    }
}

/// An array's items (nil reads as empty).
pub(super) fn array(v: Value) -> StoreResult<Vec<Value>> {
    match v {
        Value::Array(items) | Value::Set(items) => Ok(items),
        Value::Nil => Ok(Vec::new()),
        Value::Map(pairs) => Ok(pairs.into_iter().flat_map(|(k, v)| [k, v]).collect()),
        other => Err(protocol("an array", &other)),
    }
}

/// An array of strings.
pub(super) fn strings(v: Value) -> StoreResult<Vec<String>> {
    array(v)?.into_iter().map(string).collect()
}

/// A flat `[k, v, k, v, ...]` array (HGETALL, stream fields, XINFO) as ordered pairs.
pub(super) fn pairs(v: Value) -> StoreResult<Vec<(String, String)>> {
    let items = array(v)?;
    if items.len() % 2 != 0 {
        return Err(StoreError::Protocol(
            "odd number of items in a field list".into(),
        ));
    }
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((string(k)?, opt_string(v)?.unwrap_or_default()));
    }
    Ok(out)
}

/// A stream id.
pub(super) fn stream_id(v: Value) -> StoreResult<StreamId> {
    let s = string(v)?;
    s.parse()
        .map_err(|_| StoreError::Protocol(format!("bad stream id {s:?}")))
}

/// One `[id, [k, v, ...]]` entry; `None` when the fields are nil (a trimmed entry still
/// listed in a pending-entries list).
pub(super) fn entry(v: Value) -> StoreResult<Option<StreamEntry>> {
    let mut parts = array(v)?.into_iter();
    let (Some(id), fields) = (parts.next(), parts.next()) else {
        return Err(StoreError::Protocol("empty stream entry".into()));
    };
    let id = stream_id(id)?;
    match fields {
        None | Some(Value::Nil) => Ok(None),
        Some(f) => Ok(Some(StreamEntry {
            id,
            fields: pairs(f)?,
        })),
    }
}

/// An entry of a consumer's own PEL: one trimmed from the stream comes with no fields.
pub(super) fn entry_or_trimmed(v: Value) -> StoreResult<StreamEntry> {
    let mut parts = array(v)?.into_iter();
    let Some(id) = parts.next() else {
        return Err(StoreError::Protocol("empty stream entry".into()));
    };
    let id = stream_id(id)?;
    let fields = match parts.next() {
        None | Some(Value::Nil) => Vec::new(),
        Some(f) => pairs(f)?,
    };
    Ok(StreamEntry { id, fields })
}

/// A list of entries (XRANGE, one stream of XREAD), trimmed ones skipped.
pub(super) fn entries(v: Value) -> StoreResult<Vec<StreamEntry>> {
    let mut out = Vec::new();
    for item in array(v)? {
        if let Some(e) = entry(item)? {
            out.push(e);
        }
    }
    Ok(out)
}

/// The entries of the first stream of an `XREAD`/`XREADGROUP` reply (nil on timeout).
pub(super) fn read_reply(v: Value) -> StoreResult<Vec<StreamEntry>> {
    let Some(first) = array(v)?.into_iter().next() else {
        return Ok(Vec::new());
    };
    let mut parts = array(first)?.into_iter();
    let _name = parts.next();
    match parts.next() {
        Some(list) => entries(list),
        None => Ok(Vec::new()),
    }
}

/// `field:value` lines of an `INFO` section.
pub(super) fn info_field(info: &str, name: &str) -> Option<u64> {
    info.lines().find_map(|line| {
        let (k, v) = line.trim_end().split_once(':')?;
        (k == name).then(|| v.parse().ok()).flatten()
    })
}

/// `name` summed over an `INFO` reply: one server's text, or on a cluster a map of
/// node address to text (one per primary). Missing fields count as 0.
pub(super) fn info_sum(v: Value, name: &str) -> StoreResult<u64> {
    match v {
        Value::Map(nodes) => nodes
            .into_iter()
            .map(|(_, text)| info_sum(text, name))
            .sum(),
        other => Ok(info_field(&string(other)?, name).unwrap_or(0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn entries_keep_field_order_and_skip_trimmed() {
        let v = Value::Array(vec![
            Value::Array(vec![
                bulk("1-0"),
                Value::Array(vec![bulk("b"), bulk("2"), bulk("a"), bulk("1")]),
            ]),
            Value::Array(vec![bulk("2-0"), Value::Nil]),
        ]);
        let got = entries(v).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(
            got[0].fields,
            vec![("b".into(), "2".into()), ("a".into(), "1".into())]
        );
    }

    #[test]
    fn damaged_replies_are_protocol_errors() {
        assert!(matches!(
            entries(Value::Int(3)),
            Err(StoreError::Protocol(_))
        ));
        assert!(matches!(
            pairs(Value::Array(vec![bulk("a")])),
            Err(StoreError::Protocol(_))
        ));
        assert!(matches!(stream_id(bulk("x")), Err(StoreError::Protocol(_))));
    }

    #[test]
    fn info_fields() {
        let info = "# Memory\r\nused_memory:1024\r\nused_memory_human:1K\r\n";
        assert_eq!(info_field(info, "used_memory"), Some(1024));
        assert_eq!(info_field(info, "evicted_keys"), None);
        let nodes = Value::Map(vec![
            (bulk("a:1"), bulk("used_memory:10\r\n")),
            (bulk("b:2"), bulk("used_memory:5\r\n")),
        ]);
        assert_eq!(info_sum(nodes, "used_memory").unwrap(), 15);
        assert_eq!(info_sum(bulk(info), "used_memory").unwrap(), 1024);
    }
}
