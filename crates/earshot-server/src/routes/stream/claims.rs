//! What a live stream holds while it runs: its session's lock, its decode admission and
//! its tenant's stream slot. They are given back before the client is sent the close
//! frame, so a client that opens its next stream (or reconnects to the same session) the
//! moment it hears the stream ended finds them free instead of a 409, 429 or 1013.

use earshot_asr::Permit;

use super::lock::StreamLock;
use crate::tenant_streams::StreamSlot;

pub struct Claims {
    pub lock: StreamLock,
    /// `None` when the decoder had no room: the stream is refused with 1013.
    pub permit: Option<Permit>,
    pub tenant_slot: StreamSlot,
}

impl Claims {
    pub async fn release(self) {
        drop(self.permit);
        tokio::join!(self.tenant_slot.release(), self.lock.release());
    }
}
