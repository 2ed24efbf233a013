//! earshot's domain vocabulary, free of any I/O.
//!
//! Every other crate speaks in these types: validated ids, the session and segment
//! records, the events published on `transcription_events`, stream ids, and the one
//! module that names Redis keys. Keeping them here means the HTTP layer, the stores,
//! the worker and the speech engine cannot drift apart on a field name.

pub mod config;
pub mod event;
pub mod format;
pub mod ids;
pub mod keys;
pub mod session;
pub mod stream_id;
pub mod time;

pub use event::{Event, EventKind, EventParseError};
pub use ids::{IdError, SessionId, TenantId};
pub use session::{NewSegment, NewSession, Segment, Session, SessionStatus, Transcript, Word};
pub use stream_id::{StreamId, StreamIdError};
