//! The seam between the toy and the on-device trainer (`chatterbox adapt`).
//!
//! The toy only needs one thing from the trainer: "learn from the takes in this folder, and
//! tell me how the owner's held-out takes scored before and after, and whether the new model
//! is now in use". [`VoiceAdapter`] is that; [`ClosureAdapter`] turns any function into one,
//! so `cli.rs` wraps the real trainer (`crate::adapt::adapt`) in one, and tests use a fake.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::core::AdaptOutcome;

/// The toy's word to a running adapter that it has stopped waiting (its watchdog fired and
/// the screen says "Not learned"): shared between the controller, which requests the stop,
/// and the enroller thread, whose adapter checks it and must then not switch models.
#[derive(Clone, Debug, Default)]
pub struct StopLearning(Arc<AtomicBool>);

impl StopLearning {
    /// The toy stopped waiting.
    pub fn request(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether it did (since the last [`StopLearning::clear`]).
    pub fn requested(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// A new learning starts.
    pub fn clear(&self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// Learns the owner's voice from a folder of takes in the enroll layout
/// (`DIR/<word>/owner_nohash_*.wav` + `DIR/testing_list.txt`). Runs on the enroller thread;
/// it may take seconds. An `Err` is shown to the owner as it is: one sentence, with the fix.
/// Once `stop` is requested it must not switch models (the real trainer checks it between
/// its steps and just before the switch).
pub trait VoiceAdapter: Send {
    fn adapt(&self, takes_dir: &Path, stop: &StopLearning) -> Result<AdaptOutcome, String>;
}

/// Boxed adapter function.
pub type AdaptFn = Box<dyn Fn(&Path, &StopLearning) -> Result<AdaptOutcome, String> + Send>;

/// A [`VoiceAdapter`] made of a function (`cli.rs` wraps `crate::adapt::adapt` in one).
pub struct ClosureAdapter {
    f: AdaptFn,
}

impl ClosureAdapter {
    pub fn new(
        f: impl Fn(&Path, &StopLearning) -> Result<AdaptOutcome, String> + Send + 'static,
    ) -> Self {
        ClosureAdapter { f: Box::new(f) }
    }
}

impl VoiceAdapter for ClosureAdapter {
    fn adapt(&self, takes_dir: &Path, stop: &StopLearning) -> Result<AdaptOutcome, String> {
        (self.f)(takes_dir, stop)
    }
}

/// When the trainer cannot start (no speech-embedding model installed, say): takes are
/// still kept, and every session ends with this reason instead of a model.
pub struct CannotLearn(pub String);

impl VoiceAdapter for CannotLearn {
    fn adapt(&self, takes_dir: &Path, _stop: &StopLearning) -> Result<AdaptOutcome, String> {
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
        let stop = StopLearning::default();
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
