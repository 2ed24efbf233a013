//! Several models on one machine: one [`Scheduler`](super::Scheduler) per model, all
//! drawing on one pool of decode slots (the cores are shared), each with its own
//! [`LoadMeter`] (what a stream costs depends on the model: a base stream is charged
//! base's measured cost, a tiny one tiny's).
//!
//! A new stream on model `m` is admitted while `m`'s predicted load plus every other
//! model's stays under the target share of the slots, and the streams of all models stay
//! under the hard cap. Admissions are serialised so two models cannot both take the last
//! place.

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use parking_lot::Mutex;

use super::load::{AdmissionConfig, LoadMeter, Others};
use super::slots::Slots;

/// Decode slots and admission shared by the schedulers of several models (cheap to clone).
#[derive(Clone)]
pub struct SharedSlots {
    group: Arc<Group>,
}

struct Group {
    slots: Slots,
    decode_slots: usize,
    max_streams: usize,
    meters: Mutex<Vec<Arc<LoadMeter>>>,
    admit: Mutex<()>,
    /// Uploads in flight over all models: they share the slots.
    uploads: Arc<AtomicUsize>,
}

impl std::fmt::Debug for SharedSlots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedSlots")
            .field("decode_slots", &self.group.decode_slots)
            .field("max_streams", &self.group.max_streams)
            .finish()
    }
}

impl SharedSlots {
    /// `decode_slots` concurrent decodes over all models; at most `max_streams` streams of
    /// all models together.
    pub fn new(decode_slots: usize, max_streams: usize) -> Self {
        let decode_slots = decode_slots.max(1);
        SharedSlots {
            group: Arc::new(Group {
                slots: Slots::new(decode_slots),
                decode_slots,
                max_streams: max_streams.max(1),
                meters: Mutex::new(Vec::new()),
                admit: Mutex::new(()),
                uploads: Arc::new(AtomicUsize::new(0)),
            }),
        }
    }

    /// Concurrent decodes over all models.
    pub fn decode_slots(&self) -> usize {
        self.group.decode_slots
    }

    /// Streams of all models together, at most.
    pub fn max_streams(&self) -> usize {
        self.group.max_streams
    }

    pub(super) fn slots(&self) -> Slots {
        self.group.slots.clone()
    }

    /// The upload count every model's scheduler admits against.
    pub(super) fn uploads(&self) -> Arc<AtomicUsize> {
        self.group.uploads.clone()
    }

    /// A meter for one more model.
    pub(super) fn join(&self, admission: AdmissionConfig, model: &str) -> Arc<LoadMeter> {
        let meter = Arc::new(
            LoadMeter::new(self.group.decode_slots, self.group.max_streams, admission)
                .for_model(model),
        );
        self.group.meters.lock().push(meter.clone());
        meter
    }

    /// What the models other than `me` use now.
    pub(super) fn others(&self, me: &Arc<LoadMeter>) -> Others {
        let meters = self.group.meters.lock().clone();
        meters
            .iter()
            .filter(|m| !Arc::ptr_eq(m, me))
            .map(|m| m.own())
            .fold(Others::default(), |a, o| Others {
                load: a.load + o.load,
                streams: a.streams + o.streams,
            })
    }

    /// Admit one stream on `me`'s model if the shared slots have room for its cost.
    pub(super) fn try_admit(&self, me: &Arc<LoadMeter>) -> bool {
        let _one_at_a_time = self.group.admit.lock();
        me.try_admit_beside(self.others(me))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::scheduler::Priority;

    /// Teaches `m` that its commits cost `cost` core-seconds per audio second (10 minutes of
    /// audio, enough to outweigh the prior).
    fn measured(m: &LoadMeter, cost: f64) {
        m.stream_audio(600.0);
        m.decoded(Priority::Commit, Duration::from_secs_f64(600.0 * cost));
    }

    #[test]
    fn each_model_is_charged_its_own_cost_against_the_shared_slots() {
        let shared = SharedSlots::new(2, 100);
        let tiny = shared.join(AdmissionConfig::default(), "tiny.en");
        let base = shared.join(AdmissionConfig::default(), "base");
        measured(&tiny, 0.1);
        measured(&base, 0.3);
        // Target 0.5 of 2 slots = 1 slot. Alone, base fits 3 streams (3 × ~0.27 with the
        // prior's pull), tiny 8.
        assert_eq!(
            shared.others(&base),
            Others {
                load: 0.0,
                streams: 0
            }
        );
        for _ in 0..2 {
            assert!(shared.try_admit(&base));
        }
        // Two base streams use ~0.55 slot: tiny's headroom shrinks by base's cost, not by
        // two tiny streams' worth.
        let o = shared.others(&tiny);
        assert_eq!(o.streams, 2);
        assert!((o.load - 2.0 * base.snapshot().stream_cost).abs() < 1e-9);
        let tiny_room = tiny.snapshot_beside(o).headroom_streams;
        let alone = tiny.snapshot().headroom_streams;
        assert!(tiny_room < alone, "{tiny_room} vs {alone}");
        let mut admitted = 0;
        while shared.try_admit(&tiny) {
            admitted += 1;
        }
        assert_eq!(admitted, tiny_room);
        // The slots are full now: base cannot take a third stream.
        assert!(!shared.try_admit(&base));
        // A base stream ending frees base's cost, enough for about two tiny streams.
        base.release();
        assert!(shared.try_admit(&tiny) && shared.try_admit(&tiny));
    }

    #[test]
    fn the_hard_cap_counts_every_models_streams() {
        let shared = SharedSlots::new(8, 3);
        let a = shared.join(AdmissionConfig::default(), "a");
        let b = shared.join(AdmissionConfig::default(), "b");
        assert!(shared.try_admit(&a) && shared.try_admit(&b) && shared.try_admit(&a));
        assert!(!shared.try_admit(&b), "three streams in all");
        a.release();
        assert!(shared.try_admit(&b));
    }
}
