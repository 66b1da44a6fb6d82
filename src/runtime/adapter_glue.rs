//! The seam between the toy and the on-device trainer (`chatterbox adapt`).
//!
//! The toy only needs one thing from the trainer: "learn from the takes in this folder, and
//! tell me how the owner's held-out takes scored before and after, and whether the new model
//! is now in use". [`VoiceAdapter`] is that; [`ClosureAdapter`] turns any function into one,
//! so `cli.rs` wraps the real trainer (`crate::adapt::adapt`) in one, and tests use a fake.

use std::path::Path;

use crate::core::AdaptOutcome;

/// Learns the owner's voice from a folder of takes in the enroll layout
/// (`DIR/<word>/owner_nohash_*.wav` + `DIR/testing_list.txt`). Runs on the enroller thread;
/// it may take seconds. An `Err` is shown to the owner as it is: one sentence, with the fix.
pub trait VoiceAdapter: Send {
    fn adapt(&self, takes_dir: &Path) -> Result<AdaptOutcome, String>;
}

/// Boxed adapter function.
pub type AdaptFn = Box<dyn Fn(&Path) -> Result<AdaptOutcome, String> + Send>;

/// A [`VoiceAdapter`] made of a function (`cli.rs` wraps `crate::adapt::adapt` in one).
pub struct ClosureAdapter {
    f: AdaptFn,
}

impl ClosureAdapter {
    pub fn new(f: impl Fn(&Path) -> Result<AdaptOutcome, String> + Send + 'static) -> Self {
        ClosureAdapter { f: Box::new(f) }
    }
}

impl VoiceAdapter for ClosureAdapter {
    fn adapt(&self, takes_dir: &Path) -> Result<AdaptOutcome, String> {
        (self.f)(takes_dir)
    }
}

/// When the trainer cannot start (no speech-embedding model installed, say): takes are
/// still kept, and every session ends with this reason instead of a model.
pub struct CannotLearn(pub String);

impl VoiceAdapter for CannotLearn {
    fn adapt(&self, takes_dir: &Path) -> Result<AdaptOutcome, String> {
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
        let a = ClosureAdapter::new(|dir| {
            assert_eq!(dir, Path::new("/state/enroll"));
            Ok(AdaptOutcome {
                before: 0.5,
                after: 0.9,
                switched: true,
            })
        });
        let boxed: Box<dyn VoiceAdapter> = Box::new(a);
        assert_eq!(boxed.adapt(Path::new("/state/enroll")).unwrap().after, 0.9);
        let e = CannotLearn("no model".into())
            .adapt(Path::new("/x"))
            .unwrap_err();
        assert!(e.contains("no model") && e.contains("/x"), "{e}");
    }
}
