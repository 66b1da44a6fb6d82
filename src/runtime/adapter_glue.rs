//! The seam between the toy and the on-device trainer (`chatterbox adapt`).
//!
//! The toy only needs one thing from the trainer: "learn from the takes in this folder, and
//! tell me how the owner's held-out takes scored before and after, and whether the new model
//! is now in use". [`VoiceAdapter`] is that; [`ClosureAdapter`] turns any function into one,
//! so `cli.rs` wraps the real trainer (`crate::adapt::adapt`) in one, and tests use a fake.

use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use crate::core::AdaptOutcome;

/// The toy's word to a running adapter that it has stopped waiting (its watchdog fired and
/// the screen says "Not learned"), and the adapter's claim that it is switching models: one
/// atomic, so exactly one of the two wins. Shared between the controller (which stops, and
/// clears it before each learning) and the enroller thread's adapter (which checks it and
/// claims the switch). A later session cannot clear it under an older learning: the enroller
/// is one thread taking commands in order, and a session reaches `Adapt` only after its
/// takes, which the enroller records after the older learning has returned.
#[derive(Clone, Debug, Default)]
pub struct StopFlag(Arc<AtomicU8>);

const RUNNING: u8 = 0;
const STOPPED: u8 = 1;
const SWITCHING: u8 = 2;

impl StopFlag {
    /// The toy stopped waiting. `false` when the adapter had already claimed the switch (the
    /// new model goes into use all the same).
    pub fn request(&self) -> bool {
        self.0
            .compare_exchange(RUNNING, STOPPED, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
            || self.0.load(Ordering::SeqCst) == STOPPED
    }

    /// Whether the toy stopped waiting (since the last [`StopFlag::clear`]).
    pub fn requested(&self) -> bool {
        self.0.load(Ordering::SeqCst) == STOPPED
    }

    /// The adapter is about to switch models: `true` if it may (no stop came first), and from
    /// then on a stop comes too late.
    pub fn claim_switch(&self) -> bool {
        self.0
            .compare_exchange(RUNNING, SWITCHING, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    /// A new learning starts.
    pub fn clear(&self) {
        self.0.store(RUNNING, Ordering::SeqCst);
    }
}

/// Learns the owner's voice from a folder of takes in the enroll layout
/// (`DIR/<word>/owner_nohash_*.wav` + `DIR/testing_list.txt`). Runs on the enroller thread;
/// it may take seconds. An `Err` is shown to the owner as it is (one sentence, with the fix)
/// while the toy still waits, and logged after. Once `stop` is requested it must not switch
/// models: the real trainer checks it between its steps and claims the switch with
/// [`StopFlag::claim_switch`].
pub trait VoiceAdapter: Send {
    fn adapt(&self, takes_dir: &Path, stop: &StopFlag) -> Result<AdaptOutcome, String>;
}

/// Boxed adapter function.
pub type AdaptFn = Box<dyn Fn(&Path, &StopFlag) -> Result<AdaptOutcome, String> + Send>;

/// A [`VoiceAdapter`] made of a function (`cli.rs` wraps `crate::adapt::adapt_unless` in one).
pub struct ClosureAdapter {
    f: AdaptFn,
}

impl ClosureAdapter {
    pub fn new(
        f: impl Fn(&Path, &StopFlag) -> Result<AdaptOutcome, String> + Send + 'static,
    ) -> Self {
        ClosureAdapter { f: Box::new(f) }
    }
}

impl VoiceAdapter for ClosureAdapter {
    fn adapt(&self, takes_dir: &Path, stop: &StopFlag) -> Result<AdaptOutcome, String> {
        (self.f)(takes_dir, stop)
    }
}

/// When the trainer cannot start (no speech-embedding model installed, say): takes are
/// still kept, and every session ends with this reason instead of a model.
pub struct CannotLearn(pub String);

impl VoiceAdapter for CannotLearn {
    fn adapt(&self, takes_dir: &Path, _stop: &StopFlag) -> Result<AdaptOutcome, String> {
        Err(format!(
            "{}; the takes are saved in {} for `chatterbox adapt`",
            self.0,
            takes_dir.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_and_a_switch_claim_exclude_each_other() {
        let f = StopFlag::default();
        assert!(!f.requested());
        assert!(f.request(), "a stop before the switch wins");
        assert!(f.requested());
        assert!(!f.claim_switch(), "no switch after a stop");
        assert!(f.request(), "asking again still reports the stop");
        f.clear();
        assert!(f.claim_switch(), "a new learning may switch");
        assert!(!f.request(), "a stop after the claim comes too late");
        assert!(!f.requested());
    }

    #[test]
    fn a_closure_adapter_passes_the_folder_and_the_answer_through() {
        let a = ClosureAdapter::new(|dir, _| {
            assert_eq!(dir, Path::new("/state/enroll"));
            Ok(AdaptOutcome {
                before: 0.5,
                after: 0.9,
                switched: true,
            })
        });
        let boxed: Box<dyn VoiceAdapter> = Box::new(a);
        let stop = StopFlag::default();
        assert_eq!(
            boxed
                .adapt(Path::new("/state/enroll"), &stop)
                .unwrap()
                .after,
            0.9
        );
        let e = CannotLearn("no model".into())
            .adapt(Path::new("/x"), &stop)
            .unwrap_err();
        assert!(e.contains("no model") && e.contains("/x"), "{e}");
    }
}
