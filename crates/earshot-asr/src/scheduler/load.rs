//! Admission from measured cost: how many live streams the decode slots can carry.
//!
//! A fixed streams-per-slot number is only right for the audio it was measured on: longer
//! utterances, a bigger model or a slower machine make every stream dearer. What a stream
//! must get in time is its commit decodes (the ones that produce finals); partials are
//! optional and shrink under load. So the meter learns the commit cost per second of
//! stream audio from the decodes themselves (decayed sums, smoothed towards a prior while
//! little has been measured), adds the measured upload load, and admits a new stream only
//! while the predicted load stays under `target` of the slots.
//!
//! Metrics: `earshot_asr_stream_cost` (commit core-s per audio-s),
//! `earshot_asr_decode_load` (predicted slots used by admitted streams and uploads),
//! `earshot_asr_capacity_headroom` (slots left under the target) and
//! `earshot_asr_headroom_streams` (further streams that would be admitted now).

use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::slots::Priority;

/// Half-life of the measurements: recent audio counts most.
const HALF_LIFE: Duration = Duration::from_secs(60);
/// Weight of the prior, in seconds of stream audio. Streams begin with audio that has cost
/// nothing yet (a commit comes at the end of an utterance), so a light prior would let a
/// burst of new streams in on their first seconds; after five minutes of stream audio the
/// measurement dominates.
const PRIOR_WEIGHT_S: f64 = 300.0;

/// Admission settings.
#[derive(Debug, Clone)]
pub struct AdmissionConfig {
    /// Fraction of the slots that admitted streams' commit decodes and uploads may use;
    /// the rest absorbs bursts (several utterances ending at once) and partials.
    pub target: f64,
    /// Commit cost per stream audio second assumed before anything is measured.
    pub prior_cost: f64,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        AdmissionConfig {
            target: 0.5,
            prior_cost: 0.16,
        }
    }
}

struct State {
    streams: usize,
    /// Decayed seconds of commit decoding.
    commit_busy: f64,
    /// Decayed seconds of stream audio.
    stream_audio: f64,
    /// Decayed seconds of upload decoding and of wall time, for the upload rate.
    batch_busy: f64,
    wall: f64,
    last: Instant,
}

impl State {
    fn decay(&mut self, now: Instant) {
        let dt = now.duration_since(self.last).as_secs_f64();
        if dt <= 0.0 {
            return;
        }
        let k = 0.5f64.powf(dt / HALF_LIFE.as_secs_f64());
        self.commit_busy *= k;
        self.stream_audio *= k;
        self.batch_busy *= k;
        self.wall = self.wall * k + dt;
        self.last = now;
    }
}

/// The meter shared by every stream and upload of one scheduler (one model).
pub struct LoadMeter {
    state: Mutex<State>,
    slots: f64,
    cfg: AdmissionConfig,
    max_streams: usize,
    /// With several models sharing the slots: this meter's model, a label on its gauges.
    model: Option<String>,
}

/// What the other models sharing the slots use now: their load counts against this
/// model's headroom and their streams against the hard cap.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Others {
    /// Predicted slots in use by their streams and uploads.
    pub load: f64,
    /// Their admitted streams.
    pub streams: usize,
}

/// What the meter says now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadSnapshot {
    /// Streams admitted.
    pub streams: usize,
    /// Commit decode seconds per stream audio second.
    pub stream_cost: f64,
    /// Predicted slots in use by the admitted streams and uploads.
    pub load: f64,
    /// Slots left under the target (negative when over it).
    pub headroom: f64,
    /// Further streams that would be admitted now.
    pub headroom_streams: usize,
}

impl LoadMeter {
    /// A meter for `slots` decode slots, admitting at most `max_streams`.
    pub fn new(slots: usize, max_streams: usize, cfg: AdmissionConfig) -> Self {
        LoadMeter {
            state: Mutex::new(State {
                streams: 0,
                commit_busy: 0.0,
                stream_audio: 0.0,
                batch_busy: 0.0,
                wall: 0.0,
                last: Instant::now(),
            }),
            slots: slots.max(1) as f64,
            cfg,
            max_streams: max_streams.max(1),
            model: None,
        }
    }

    /// The same meter, its gauges labelled `model` (several models share the slots).
    pub fn for_model(mut self, model: &str) -> Self {
        self.model = Some(model.to_owned());
        self
    }

    /// Admit one more stream if the prediction allows it.
    pub fn try_admit(&self) -> bool {
        self.try_admit_beside(Others::default())
    }

    /// Admit one more stream if the prediction allows it, with `others` on the same slots.
    pub fn try_admit_beside(&self, others: Others) -> bool {
        let mut st = self.state.lock();
        st.decay(Instant::now());
        let snap = self.snapshot_of(&st, others);
        let ok = snap.headroom_streams > 0;
        if ok {
            st.streams += 1;
        }
        let snap = self.snapshot_of(&st, others);
        drop(st);
        self.publish(&snap);
        ok
    }

    /// What this meter's streams and uploads use, for the other models' admission.
    pub fn own(&self) -> Others {
        let snap = self.snapshot();
        Others {
            load: snap.load,
            streams: snap.streams,
        }
    }

    /// A stream ended.
    pub fn release(&self) {
        let mut st = self.state.lock();
        st.streams = st.streams.saturating_sub(1);
        let snap = self.snapshot_of(&st, Others::default());
        drop(st);
        self.publish(&snap);
    }

    /// A stream took in `secs` of audio.
    pub fn stream_audio(&self, secs: f64) {
        let mut st = self.state.lock();
        st.decay(Instant::now());
        st.stream_audio += secs;
    }

    /// A decode of `priority` kept a slot busy for `busy`.
    pub fn decoded(&self, priority: Priority, busy: Duration) {
        let mut st = self.state.lock();
        st.decay(Instant::now());
        match priority {
            Priority::Commit => st.commit_busy += busy.as_secs_f64(),
            Priority::Batch => st.batch_busy += busy.as_secs_f64(),
            Priority::Partial => {}
        }
        let snap = self.snapshot_of(&st, Others::default());
        drop(st);
        self.publish(&snap);
    }

    /// The current figures.
    pub fn snapshot(&self) -> LoadSnapshot {
        self.snapshot_beside(Others::default())
    }

    /// The current figures with `others` on the same slots (their load included).
    pub fn snapshot_beside(&self, others: Others) -> LoadSnapshot {
        let mut st = self.state.lock();
        st.decay(Instant::now());
        self.snapshot_of(&st, others)
    }

    fn snapshot_of(&self, st: &State, others: Others) -> LoadSnapshot {
        let cost = (st.commit_busy + self.cfg.prior_cost * PRIOR_WEIGHT_S)
            / (st.stream_audio + PRIOR_WEIGHT_S);
        let batch_rate = if st.wall > 1.0 {
            (st.batch_busy / st.wall).min(self.slots)
        } else {
            0.0
        };
        let load = st.streams as f64 * cost + batch_rate;
        let headroom = self.slots * self.cfg.target - load - others.load;
        let by_cost = if headroom > 0.0 && cost > 0.0 {
            (headroom / cost).floor() as usize
        } else {
            0
        };
        LoadSnapshot {
            streams: st.streams,
            stream_cost: cost,
            load,
            headroom,
            headroom_streams: by_cost
                .min(self.max_streams.saturating_sub(st.streams + others.streams)),
        }
    }

    /// With one model the gauges are unlabelled. With several, each model's own cost, load
    /// and streams carry `model`, and the headroom gauges are left out: a meter does not
    /// see the other models' load when it publishes (the scheduler's `load()` does).
    fn publish(&self, s: &LoadSnapshot) {
        let Some(model) = &self.model else {
            metrics::gauge!("earshot_asr_stream_cost").set(s.stream_cost);
            metrics::gauge!("earshot_asr_decode_load").set(s.load);
            metrics::gauge!("earshot_asr_capacity_headroom").set(s.headroom);
            metrics::gauge!("earshot_asr_headroom_streams").set(s.headroom_streams as f64);
            metrics::gauge!("earshot_asr_streams_admitted").set(s.streams as f64);
            return;
        };
        let m = model.clone();
        metrics::gauge!("earshot_asr_stream_cost", "model" => m.clone()).set(s.stream_cost);
        metrics::gauge!("earshot_asr_decode_load", "model" => m.clone()).set(s.load);
        metrics::gauge!("earshot_asr_streams_admitted", "model" => m).set(s.streams as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admission_follows_the_measured_cost() {
        let m = LoadMeter::new(2, 100, AdmissionConfig::default());
        // Prior 0.16 s per audio s, target 0.5 of 2 slots: 6 streams.
        assert_eq!(m.snapshot().headroom_streams, 6);
        // Streams turn out three times dearer than the prior: far fewer fit.
        m.stream_audio(600.0);
        m.decoded(Priority::Commit, Duration::from_secs(216));
        let s = m.snapshot();
        assert!((s.stream_cost - 0.293).abs() < 0.01, "{s:?}");
        assert_eq!(s.headroom_streams, 3);
        assert!(m.try_admit() && m.try_admit() && m.try_admit());
        assert!(!m.try_admit(), "a fourth would make the others late");
        m.release();
        assert!(m.try_admit(), "a place was freed");
    }

    #[test]
    fn the_hard_cap_still_holds() {
        let m = LoadMeter::new(2, 1, AdmissionConfig::default());
        assert!(m.try_admit());
        assert!(!m.try_admit());
    }
}
