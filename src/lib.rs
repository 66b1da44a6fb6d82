//! chatterbox — firmware for a Raspberry Pi + Codec Zero talking toy.
//!
//! The crate is a library with a thin binary on top (`src/main.rs`). The shape, from the
//! middle out:
//!
//! * [`core`] — pure logic: the chatter-box state machine and the voice-command map. No
//!   threads, no I/O, no clocks: time arrives inside each event, so tests use a fake clock.
//! * [`kws`] — the keyword recognizer: scipy-exact STFT features, the detector, the model.
//! * [`audio`] — ALSA capture (one stream, fanned out), playback, WAV handling, the library
//!   of recordings.
//! * [`hw`] — GPIO button and LEDs, the OLED, each behind a small trait with a real
//!   backend and a simulated one.
//! * [`ui`] — what the screen shows, as a pure function of a small state value.
//! * [`runtime`] — the threads and channels that tie it together for `run`, `sim`, `listen`.
//! * [`supervise`] and [`instance`] — keeping one toy running: restarts after a crash, and a
//!   lock so a second copy cannot drive the same button.
pub mod adapt;
pub mod audio;
pub mod cli;
pub mod clock;
pub mod config;
pub mod core;
pub mod enroll;
pub mod hw;
pub mod instance;
pub mod kws;
pub mod runtime;
pub mod setup_audio;
pub mod shipped;
pub mod supervise;
pub mod ui;
