//! `chatterbox adapt`: teach the keyword head one owner's voice, on the toy, in seconds.
//!
//! The embedding front end's head is small (a few Dense layers over 96-value embeddings), so
//! adapting it is a little arithmetic: the owner's takes go through the runtime's own front end,
//! the head is trained in Rust on them mixed with a shipped replay set (so it does not forget
//! other voices, unknown words and noise), and the result is written as the shipped
//! `head.tflite` with its weight bytes patched, so LiteRT runs it exactly as before.
//!
//! The adapted model lives in `<state_dir>/models-owner/` with its own pinned `kws.toml`, and is
//! only switched to when it beats the shipped head on the owner's held-out takes. `undo` puts
//! back what was there before.
//!
//! This module is the public API (the on-toy enrollment path calls [`adapt`] from a worker
//! thread); the work is in its submodules.

use std::path::{Path, PathBuf};

/// What to adapt to and where to put the result.
#[derive(Clone, Debug)]
pub struct AdaptRequest {
    /// The owner's takes, `DIR/<word>/*.wav` with `DIR/testing_list.txt` (as `enroll` writes).
    pub takes_dir: PathBuf,
    /// The toy's state directory; the adapted model goes to `<state_dir>/models-owner/`.
    pub state_dir: PathBuf,
    /// The shipped embedding model's contract (`models/embedding/kws.toml`).
    pub shipped_meta: PathBuf,
    /// Seed of the trainer: the same takes and seed give the same model, byte for byte.
    pub seed: u64,
}

/// What one adaptation did.
#[derive(Clone, Debug, PartialEq)]
pub struct AdaptReport {
    /// Accuracy of the shipped head on the owner's held-out takes (0..=1).
    pub before: f32,
    /// Accuracy of the adapted head on the same takes.
    pub after: f32,
    /// True if the adapted model is now the owner model (it was better).
    pub switched: bool,
    /// Held-out takes measured.
    pub held_out: usize,
    /// Wall time of the whole adaptation.
    pub seconds: f32,
}

/// What `undo` put back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UndoOutcome {
    /// The previous owner model is in use again.
    RestoredPrevious,
    /// There was no previous owner model: the shipped model is in use again.
    BackToShipped,
    /// There was no owner model to undo.
    NothingToUndo,
}

/// Everything that can stop an adaptation; each message names the thing and the fix.
#[derive(Debug, thiserror::Error)]
pub enum AdaptError {
    #[error("no takes in {dir}: record them first with `chatterbox enroll --dir {dir}`")]
    NoTakes { dir: PathBuf },
    #[error("too few takes of '{word}' in {dir}: {have} for training and {held_out} held out; record at least {need} takes of each word (`chatterbox enroll --takes 6`)")]
    TooFewTakes {
        dir: PathBuf,
        word: String,
        have: usize,
        held_out: usize,
        need: usize,
    },
    #[error("cannot read take {path}: {reason}")]
    Take { path: PathBuf, reason: String },
    #[error("the shipped model cannot be adapted: {0}")]
    Shipped(String),
    #[error("the replay set {path} is missing or damaged ({reason}); reinstall the model folder or rerun `python -m kws.adapt_pack <folder>` (scripts/)")]
    Replay { path: PathBuf, reason: String },
    #[error("keyword model: {0}")]
    Model(String),
    #[error("cannot write the owner model in {dir}: {source}; free some space (df -h) or check the folder's permissions")]
    Write {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the adapted model failed its self-check: {0}")]
    SelfCheck(String),
}

/// Adapts the shipped head to the owner's takes; switches to it only when it is better on the
/// held-out takes.
pub fn adapt(req: &AdaptRequest) -> Result<AdaptReport, AdaptError> {
    let _ = req;
    Err(AdaptError::Shipped("not implemented yet".into()))
}

/// Puts back the model that was in use before the last adaptation.
pub fn undo(state_dir: &Path) -> Result<UndoOutcome, AdaptError> {
    let _ = state_dir;
    Ok(UndoOutcome::NothingToUndo)
}

/// The owner model's contract (`<state_dir>/models-owner/kws.toml`) if there is one.
pub fn owner_model(state_dir: &Path) -> Option<PathBuf> {
    let p = state_dir.join("models-owner").join("kws.toml");
    p.is_file().then_some(p)
}

pub mod layout;
pub mod net;
pub mod replay;
pub mod trainer;
