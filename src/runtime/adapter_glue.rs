//! The seam between the toy and the on-device trainer (`chatterbox adapt`).
//!
//! The toy only needs one thing from the trainer: "learn from the takes in this folder, and
//! tell me how the owner's held-out takes scored before and after, and whether the new model
//! is now in use". [`VoiceAdapter`] is that; [`ClosureAdapter`] turns any function into one,
//! so wiring the real trainer is one line where the runtime is started (see
//! [`ClosureAdapter`]'s docs), and tests use a fake.

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

/// A [`VoiceAdapter`] made of a function. **The integrator wires the real trainer here**
/// (in `cli.rs`'s `run`, where the [`EnrollmentSetup`](super::enroller::EnrollmentSetup) is
/// built), with `state_dir` and `shipped_meta` the toy's state folder and
/// `cfg.keywords.model`:
///
/// ```text
/// let adapter = ClosureAdapter::new(move |takes_dir| crate::adapt::adapt(&crate::adapt::AdaptRequest { takes_dir: takes_dir.to_path_buf(), state_dir: state_dir.clone(), shipped_meta: shipped_meta.clone(), seed: 0 }).map(|r| AdaptOutcome { before: r.before, after: r.after, switched: r.switched }).map_err(|e| e.to_string()));
/// ```
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

/// Until the trainer is merged: says so, and keeps the shipped model.
pub struct NoAdapter;

impl VoiceAdapter for NoAdapter {
    fn adapt(&self, takes_dir: &Path) -> Result<AdaptOutcome, String> {
        Err(format!(
            "this build cannot learn on the toy yet; the takes are saved in {} for `chatterbox adapt` or scripts/train_kws.py --finetune",
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
        let e = NoAdapter.adapt(Path::new("/x")).unwrap_err();
        assert!(e.contains("/x"), "{e}");
    }
}
