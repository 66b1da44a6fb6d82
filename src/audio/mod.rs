//! Audio: the one capture stream and its fan-out, playback, WAV files, the recordings.
//!
//! Everything that touches a sound device goes through [`pcm::AudioBackend`], which has a
//! real ALSA implementation ([`alsa_backend`]) and an in-memory one ([`memory`]) for tests
//! of the threads above it. The ALSA backend itself is tested on machines with no sound
//! card through ALSA's userspace `file` and `null` plugins.
pub mod alsa_backend;
pub mod capture;
pub mod devices;
pub mod library;
pub mod memory;
pub mod pcm;
pub mod playback_window;
pub mod player;
pub mod recorder;
pub mod wav;

pub use pcm::{AudioBackend, AudioError, PcmFormat};

use std::sync::Arc;
use std::time::Instant;

/// A block of captured audio: interleaved S16 samples, shared by every subscriber without
/// copying.
#[derive(Clone, Debug)]
pub struct AudioChunk {
    /// Rate and channel count of `samples`.
    pub format: PcmFormat,
    /// Index (in frames since the capture stream opened) of the first frame in `samples`.
    pub first_frame: u64,
    /// When the first frame was captured (monotonic clock), estimated as "read returned"
    /// minus the chunk's length. It may be late by up to the device buffer (160 ms) when
    /// the reader is behind, never early. The keyword listener compares it with
    /// [`playback_window::PlaybackWindow`] to ignore audio captured while the toy spoke,
    /// however late the chunk is processed.
    pub captured_at: Instant,
    /// Interleaved samples; `samples.len()` is a multiple of `format.channels`.
    pub samples: Arc<[i16]>,
}

impl AudioChunk {
    /// Number of frames in this chunk.
    pub fn frames(&self) -> usize {
        self.samples.len() / usize::from(self.format.channels.max(1))
    }
}
