//! An in-memory sound backend for testing the threads above [`AudioBackend`] without ALSA.
//!
//! * Capture hands out the samples a test fed with [`MemoryBackend::feed_capture`], then
//!   silence. When nothing is fed, a read sleeps for the length of the buffer it fills (like a
//!   real device), so a capture thread under test does not spin a core.
//! * Playback appends everything written to a shared buffer ([`MemoryBackend::played`]); it
//!   can optionally take real time like a device ([`MemoryBackend::set_playback_realtime`]),
//!   which lets tests stop a clip mid-way.
//! * Opens can be made to fail (missing or busy device), formats can be restricted (a mic
//!   that only does 16 kHz), and an open capture stream can be "unplugged".
//!
//! Clones share state, so a test keeps one handle and gives an `Arc` of another to a thread.
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::pcm::{AudioBackend, AudioError, CaptureStream, PcmFormat, PlaybackStream};

/// Which failure an open should simulate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailKind {
    NotFound,
    Busy,
}

#[derive(Default)]
struct State {
    feed: VecDeque<i16>,
    capture_formats: Option<Vec<PcmFormat>>,
    playback_format: Option<PcmFormat>,
    capture_failures: VecDeque<FailKind>,
    playback_failures: VecDeque<FailKind>,
    played: Vec<i16>,
    playback_realtime: bool,
    capture_opens: usize,
    playback_opens: usize,
    playback_writes: usize,
    stops: usize,
    /// The next this many capture streams opened deliver nothing: their first read fails
    /// as a real one does after its idle timeout (a codec that opens but is not clocked).
    stalled_opens: usize,
    /// Capture streams opened in a generation below this one read as disconnected.
    lost_below: u64,
    generation: u64,
    /// Playback streams opened in a generation below this one fail their writes.
    playback_lost_below: u64,
    playback_generation: u64,
}

/// See the module docs. Cheap to clone; clones share state.
#[derive(Clone, Default)]
pub struct MemoryBackend {
    state: Arc<Mutex<State>>,
}

impl MemoryBackend {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not hide the real failure behind a poison error.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues interleaved samples for capture streams to deliver (before any silence).
    pub fn feed_capture(&self, samples: &[i16]) {
        self.lock().feed.extend(samples.iter().copied());
    }

    /// Samples fed but not yet read.
    pub fn capture_pending(&self) -> usize {
        self.lock().feed.len()
    }

    /// Restricts capture to these formats; others fail with `Unsupported`.
    pub fn set_capture_formats(&self, formats: Vec<PcmFormat>) {
        self.lock().capture_formats = Some(formats);
    }

    /// Makes playback devices do only this format (the caller must convert).
    pub fn set_playback_format(&self, format: PcmFormat) {
        self.lock().playback_format = Some(format);
    }

    /// When true, playback writes take as long as the audio they contain.
    pub fn set_playback_realtime(&self, realtime: bool) {
        self.lock().playback_realtime = realtime;
    }

    /// The next `count` capture opens fail with `kind`.
    pub fn fail_capture_opens(&self, count: usize, kind: FailKind) {
        self.lock()
            .capture_failures
            .extend(std::iter::repeat_n(kind, count));
    }

    /// The next `count` playback opens fail with `kind`.
    pub fn fail_playback_opens(&self, count: usize, kind: FailKind) {
        self.lock()
            .playback_failures
            .extend(std::iter::repeat_n(kind, count));
    }

    /// The next `count` capture streams open fine but their first read fails with
    /// `Disconnected` ("no audio arrived"), like an unclocked codec.
    pub fn stall_capture_opens(&self, count: usize) {
        self.lock().stalled_opens += count;
    }

    /// Every capture stream open right now fails its next read with `Disconnected`
    /// (the USB mic was pulled). Streams opened afterwards work.
    pub fn disconnect_capture(&self) {
        let mut s = self.lock();
        s.lost_below = s.generation + 1;
    }

    /// Every playback stream open right now fails its next write with `Disconnected`.
    pub fn disconnect_playback(&self) {
        let mut s = self.lock();
        s.playback_lost_below = s.playback_generation + 1;
    }

    /// Everything written to playback streams so far (interleaved).
    pub fn played(&self) -> Vec<i16> {
        self.lock().played.clone()
    }

    /// Number of samples written to playback so far.
    pub fn played_len(&self) -> usize {
        self.lock().played.len()
    }

    /// Successful capture opens so far.
    pub fn capture_opens(&self) -> usize {
        self.lock().capture_opens
    }

    /// Successful playback opens so far.
    pub fn playback_opens(&self) -> usize {
        self.lock().playback_opens
    }

    /// Calls to `PlaybackStream::write` so far.
    pub fn playback_writes(&self) -> usize {
        self.lock().playback_writes
    }

    /// Calls to `PlaybackStream::stop` so far.
    pub fn stops(&self) -> usize {
        self.lock().stops
    }
}

fn failure(kind: FailKind, device: &str) -> AudioError {
    let device = device.to_string();
    match kind {
        FailKind::NotFound => AudioError::NotFound {
            device,
            detail: "simulated: no such device".into(),
        },
        FailKind::Busy => AudioError::Busy {
            device,
            detail: "simulated: device in use".into(),
        },
    }
}

fn duration_of(samples: usize, format: PcmFormat) -> Duration {
    let frames = samples / usize::from(format.channels.max(1));
    Duration::from_secs_f64(frames as f64 / f64::from(format.rate.max(1)))
}

impl AudioBackend for MemoryBackend {
    fn open_capture(
        &self,
        device: &str,
        format: PcmFormat,
    ) -> Result<Box<dyn CaptureStream>, AudioError> {
        let mut s = self.lock();
        if let Some(kind) = s.capture_failures.pop_front() {
            return Err(failure(kind, device));
        }
        if let Some(formats) = &s.capture_formats {
            if !formats.contains(&format) {
                return Err(AudioError::Unsupported {
                    device: device.to_string(),
                    requested: format.to_string(),
                    supported: super::alsa_backend::describe_modes(formats),
                });
            }
        }
        s.capture_opens += 1;
        s.generation += 1;
        let stalled = s.stalled_opens > 0;
        s.stalled_opens = s.stalled_opens.saturating_sub(1);
        Ok(Box::new(MemoryCapture {
            backend: self.clone(),
            device: device.to_string(),
            format,
            generation: s.generation,
            stalled,
        }))
    }

    fn open_playback(
        &self,
        device: &str,
        preferred: PcmFormat,
    ) -> Result<Box<dyn PlaybackStream>, AudioError> {
        let mut s = self.lock();
        if let Some(kind) = s.playback_failures.pop_front() {
            return Err(failure(kind, device));
        }
        s.playback_opens += 1;
        s.playback_generation += 1;
        Ok(Box::new(MemoryPlayback {
            backend: self.clone(),
            device: device.to_string(),
            format: s.playback_format.unwrap_or(preferred),
            generation: s.playback_generation,
        }))
    }
}

struct MemoryCapture {
    backend: MemoryBackend,
    device: String,
    format: PcmFormat,
    generation: u64,
    stalled: bool,
}

impl CaptureStream for MemoryCapture {
    fn format(&self) -> PcmFormat {
        self.format
    }

    /// Fed samples are handed out at once, like ALSA's `file` plugin: not hardware-clocked.
    fn paced_by_device(&self) -> Option<bool> {
        Some(false)
    }

    fn read(&mut self, buf: &mut [i16]) -> Result<usize, AudioError> {
        let ch = usize::from(self.format.channels.max(1));
        let frames = buf.len() / ch;
        if frames == 0 {
            return Ok(0);
        }
        if self.stalled {
            return Err(AudioError::Disconnected {
                device: self.device.clone(),
                detail: "simulated: no audio arrived".into(),
            });
        }
        {
            let mut s = self.backend.lock();
            if self.generation < s.lost_below {
                return Err(AudioError::Disconnected {
                    device: self.device.clone(),
                    detail: "simulated: device unplugged".into(),
                });
            }
            let available = s.feed.len() / ch;
            if available > 0 {
                let n = available.min(frames);
                for (dst, src) in buf[..n * ch].iter_mut().zip(s.feed.drain(..n * ch)) {
                    *dst = src;
                }
                return Ok(n);
            }
        }
        // Nothing fed: behave like a device delivering silence in real time.
        std::thread::sleep(duration_of(frames * ch, self.format));
        buf[..frames * ch].fill(0);
        Ok(frames)
    }
}

struct MemoryPlayback {
    backend: MemoryBackend,
    device: String,
    format: PcmFormat,
    generation: u64,
}

impl PlaybackStream for MemoryPlayback {
    fn format(&self) -> PcmFormat {
        self.format
    }

    fn write(&mut self, samples: &[i16]) -> Result<(), AudioError> {
        let realtime = {
            let mut s = self.backend.lock();
            if self.generation < s.playback_lost_below {
                return Err(AudioError::Disconnected {
                    device: self.device.clone(),
                    detail: "simulated: device unplugged".into(),
                });
            }
            s.playback_writes += 1;
            s.played.extend_from_slice(samples);
            s.playback_realtime
        };
        if realtime {
            std::thread::sleep(duration_of(samples.len(), self.format));
        }
        Ok(())
    }

    fn drain(&mut self) -> Result<(), AudioError> {
        Ok(())
    }

    fn stop(&mut self) -> Result<(), AudioError> {
        self.backend.lock().stops += 1;
        Ok(())
    }
}
