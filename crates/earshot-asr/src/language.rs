//! whisper's languages: the codes a request may name, and the names OpenAI's API reports.
//! The list is whisper.cpp's own, so the server accepts exactly what the model can be told.

/// whisper's code for a requested language tag: its primary subtag (`"de"` of `"de-AT"`),
/// case-insensitive; whisper's English names (`"german"`) are accepted too. `None` when
/// whisper does not know it.
pub fn code(tag: &str) -> Option<&'static str> {
    let primary = tag
        .split(['-', '_'])
        .next()
        .unwrap_or(tag)
        .to_ascii_lowercase();
    // whisper.cpp's lookup takes a C string: anything but letters cannot be a language.
    if primary.is_empty() || !primary.bytes().all(|b| b.is_ascii_lowercase()) {
        return None;
    }
    whisper_rs::get_lang_id(&primary).and_then(whisper_rs::get_lang_str)
}

/// whisper's English name of a language code (`"german"` for `"de"`), as OpenAI's
/// `verbose_json` reports it.
pub fn name(code: &str) -> Option<&'static str> {
    let id = whisper_rs::get_lang_id(code)?;
    whisper_rs::get_lang_str_full(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names() {
        assert_eq!(code("de"), Some("de"));
        assert_eq!(code("de-AT"), Some("de"));
        assert_eq!(code("FR"), Some("fr"));
        assert_eq!(code("en-US"), Some("en"));
        assert_eq!(code("german"), Some("de"));
        assert_eq!(code("xx"), None);
        assert_eq!(code("e\0n"), None);
        assert_eq!(code(""), None);
        assert_eq!(name("de"), Some("german"));
        assert_eq!(name("en"), Some("english"));
        assert_eq!(name("zz"), None);
    }
}
