//! The always-on keyword recognizer.
//!
//! * [`meta`] — the feature contract (`models/kws.toml`) shared with the Python trainer.
//! * [`features`] — scipy-exact magnitude STFT plus the declared transform.
//! * [`ln`] — the transform's logarithm, vectorized.
//! * [`sliding`] — the features of a sliding window, recomputing only the columns that changed.
//! * [`embedding`] — the speech-embedding front end (mel frames → embeddings → a ring).
//! * [`front_end`] — the front end the contract names (STFT or embedding), behind one type.
//! * [`frontend`] — downmix + resample the capture to 16 kHz mono, keep a 1 s window, hop.
//! * [`detector`] — posterior smoothing, threshold, refractory period (pure).
//! * [`model`] — the classifier trait and its LiteRT backend.
//! * [`listener`] — all of the above on one thread, fed by the capture fan-out.
pub mod detector;
pub mod either_detector;
pub mod embedding;
pub mod evaluate;
pub mod features;
pub mod front_end;
pub mod frontend;
pub mod head;
pub mod listener;
pub mod ln;
pub mod meta;
pub mod model;
pub mod sliding;
