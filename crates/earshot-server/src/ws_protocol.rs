//! The WebSocket audio protocol's messages, apart from the socket handling
//! so they can be tested and fuzzed on their own.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A text frame from the client.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Finalize everything heard so far, keep the stream open.
    Flush,
    /// Flush, complete the session, close.
    Finalize,
    /// Change per-session settings mid-stream.
    Configure {
        /// Silence (ms) after which an utterance ends.
        #[serde(default)]
        endpointing_ms: Option<u32>,
        /// Whether to send partials at all.
        #[serde(default)]
        partials: Option<bool>,
        /// A prompt for every following decode (`""` clears it).
        #[serde(default)]
        prompt: Option<String>,
        /// A vocabulary for every following decode, as a prompt (`[]` clears it).
        #[serde(default)]
        vocabulary: Option<Vec<String>>,
        /// Output English from now on (`true`) or the spoken language (`false`).
        #[serde(default)]
        translate: Option<bool>,
    },
    /// No-op that resets the idle timer.
    Keepalive,
}

/// Why a client text frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("text frames must be JSON objects with a \"type\": {0}")]
    Malformed(String),
    #[error("endpointing_ms must be between {min} and {max}")]
    Endpointing { min: u32, max: u32 },
    #[error("send either prompt or vocabulary, not both")]
    PromptAndVocabulary,
}

/// Accepted endpointing silence range, ms.
pub const ENDPOINTING_RANGE: (u32, u32) = (100, 10_000);

impl ClientMessage {
    /// Parses and validates a text frame.
    pub fn parse(text: &str) -> Result<Self, MessageError> {
        // serde's message quotes the client's text: cut it by characters, not bytes
        // (`String::truncate` inside a multi-byte character panics; found by fuzzing).
        let msg: ClientMessage = serde_json::from_str(text)
            .map_err(|e| MessageError::Malformed(crate::error::truncate(&e.to_string(), 200)))?;
        if let ClientMessage::Configure {
            endpointing_ms,
            prompt,
            vocabulary,
            ..
        } = &msg
        {
            let (min, max) = ENDPOINTING_RANGE;
            if endpointing_ms.is_some_and(|ms| !(min..=max).contains(&ms)) {
                return Err(MessageError::Endpointing { min, max });
            }
            if prompt.is_some() && vocabulary.is_some() {
                return Err(MessageError::PromptAndVocabulary);
            }
        }
        Ok(msg)
    }
}

/// A text frame to the client.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    SpeechStarted {
        at_ms: u64,
    },
    UtteranceEnd {
        at_ms: u64,
    },
    /// The language detected from the stream's first speech (whisper's code), kept for
    /// the rest of the stream; sent before the first final.
    LanguageDetected {
        language: String,
        probability: f32,
    },
    Partial {
        rev: u64,
        text: String,
        start_ms: u64,
    },
    Final {
        seq: u64,
        text: String,
        start_ms: i64,
        end_ms: i64,
        /// Always present (empty only for text stored without words), so a client can
        /// rely on the field.
        words: Vec<earshot_core::Word>,
    },
    Completed {
        session: Value,
        transcript: String,
    },
    Error {
        code: String,
        message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    /// The server is about to close this stream (it is shutting down): stop sending audio,
    /// keep it for the next connection, and send `flush` after the last frame sent. Every
    /// frame before that `flush` is still transcribed and its finals delivered.
    Draining {
        /// How long the server keeps reading before it stops waiting for the `flush`.
        grace_ms: u64,
    },
}

impl ServerMessage {
    /// The frame's JSON text.
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"type":"error","code":"internal","message":"unserializable message"}"#.to_owned()
        })
    }

    /// An error frame.
    pub fn error(code: &str, message: impl Into<String>) -> Self {
        Self::Error {
            code: code.to_owned(),
            message: message.into(),
            retry_after_ms: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_client_messages() {
        assert_eq!(
            ClientMessage::parse(r#"{"type":"flush"}"#),
            Ok(ClientMessage::Flush)
        );
        assert_eq!(
            ClientMessage::parse(r#"{"type":"finalize"}"#),
            Ok(ClientMessage::Finalize)
        );
        assert_eq!(
            ClientMessage::parse(r#"{"type":"keepalive"}"#),
            Ok(ClientMessage::Keepalive)
        );
        assert_eq!(
            ClientMessage::parse(r#"{"type":"configure","endpointing_ms":800}"#),
            Ok(ClientMessage::Configure {
                endpointing_ms: Some(800),
                partials: None,
                prompt: None,
                vocabulary: None,
                translate: None,
            })
        );
        assert!(ClientMessage::parse(r#"{"type":"configure","endpointing_ms":5}"#).is_err());
        assert_eq!(
            ClientMessage::parse(
                r#"{"type":"configure","vocabulary":["Ana","Luz"],"translate":true}"#
            ),
            Ok(ClientMessage::Configure {
                endpointing_ms: None,
                partials: None,
                prompt: None,
                vocabulary: Some(vec!["Ana".into(), "Luz".into()]),
                translate: Some(true),
            })
        );
        assert_eq!(
            ClientMessage::parse(r#"{"type":"configure","prompt":"a","vocabulary":["b"]}"#),
            Err(MessageError::PromptAndVocabulary)
        );
        for bad in [
            "",
            "flush",
            "{}",
            r#"{"type":"dance"}"#,
            r#"{"type":5}"#,
            "[]",
            r#"{"type":"configure","endpointing_ms":-1}"#,
        ] {
            assert!(ClientMessage::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn errors_quoting_multibyte_text_do_not_panic() {
        // 22 bytes of `invalid type: string "` then 3-byte characters: byte 200 falls
        // inside one.
        for text in [
            format!("\"{}\"", "€".repeat(100)),
            format!(r#"{{"type":"{}"}}"#, "€".repeat(100)),
        ] {
            match ClientMessage::parse(&text) {
                Err(MessageError::Malformed(m)) => assert!(m.chars().count() <= 201, "{m}"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn server_messages_have_the_documented_shape() {
        let f = ServerMessage::Final {
            seq: 2,
            text: "hi".into(),
            start_ms: 0,
            end_ms: 900,
            words: vec![earshot_core::Word {
                word: "hi".into(),
                start_ms: 120,
                end_ms: 880,
                probability: 0.75,
            }],
        };
        assert_eq!(
            f.to_text(),
            r#"{"type":"final","seq":2,"text":"hi","start_ms":0,"end_ms":900,"words":[{"word":"hi","start_ms":120,"end_ms":880,"probability":0.75}]}"#
        );
        let p = ServerMessage::Partial {
            rev: 3,
            text: "h".into(),
            start_ms: 10,
        };
        assert_eq!(
            p.to_text(),
            r#"{"type":"partial","rev":3,"text":"h","start_ms":10}"#
        );
        let e = ServerMessage::error("overloaded", "busy");
        assert_eq!(
            e.to_text(),
            r#"{"type":"error","code":"overloaded","message":"busy"}"#
        );
        assert_eq!(
            ServerMessage::SpeechStarted { at_ms: 5 }.to_text(),
            r#"{"type":"speech_started","at_ms":5}"#
        );
    }
}
