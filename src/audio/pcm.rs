//! The device traits: what capture and playback need from a sound backend.
//! (Contract fixed by the skeleton; bodies are filled in by the audio work.)
use std::fmt;

/// Interleaved signed 16-bit PCM at `rate` Hz with `channels` channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PcmFormat {
    pub rate: u32,
    pub channels: u16,
}

impl fmt::Display for PcmFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} Hz, {} ch, S16_LE", self.rate, self.channels)
    }
}

/// A capture stream that is open and running.
pub trait CaptureStream: Send {
    /// The format the device actually delivers.
    fn format(&self) -> PcmFormat;
    /// Blocks until at least one frame is available, fills `buf` (interleaved) and returns
    /// the number of *frames* read. Recovers from overruns by itself where it can.
    fn read(&mut self, buf: &mut [i16]) -> Result<usize, AudioError>;
    /// Whether reads are held back by the device's own clock (a sound card: a read waits
    /// until the audio exists), `Some(false)` for a source that delivers at once, `None`
    /// when the backend cannot tell. The capture thread paces only sources that are not
    /// clocked by hardware; see `capture::Pacing`.
    fn paced_by_device(&self) -> Option<bool> {
        None
    }
}

/// A playback stream that is open.
pub trait PlaybackStream: Send {
    fn format(&self) -> PcmFormat;
    /// Writes all of `samples` (interleaved, a whole number of frames), blocking as needed.
    /// Recovers from underruns by itself where it can.
    fn write(&mut self, samples: &[i16]) -> Result<(), AudioError>;
    /// Waits until everything written has been played.
    fn drain(&mut self) -> Result<(), AudioError>;
    /// Discards whatever is queued, at once (used to stop a clip mid-way).
    fn stop(&mut self) -> Result<(), AudioError>;
}

/// A source of sound devices: ALSA on real machines, memory in unit tests.
pub trait AudioBackend: Send + Sync {
    /// Opens the named capture device (e.g. `default`, `hw:Zero`) in `format`.
    fn open_capture(
        &self,
        device: &str,
        format: PcmFormat,
    ) -> Result<Box<dyn CaptureStream>, AudioError>;
    /// Opens the named playback device. The backend may pick a different rate/channel
    /// count if the device cannot do `preferred`; callers convert to `stream.format()`.
    fn open_playback(
        &self,
        device: &str,
        preferred: PcmFormat,
    ) -> Result<Box<dyn PlaybackStream>, AudioError>;
}

/// Everything that can go wrong with a sound device. Each message names the device and
/// says what to do.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("audio device '{device}' not found: {detail}. Run `chatterbox devices` to list devices and set the name in the config")]
    NotFound { device: String, detail: String },
    #[error("audio device '{device}' is busy (another program has it open): {detail}. Stop that program (`fuser -v /dev/snd/*` shows it) and chatterbox will retry")]
    Busy { device: String, detail: String },
    #[error("audio device '{device}' cannot do {requested}; it supports {supported}. Change the rate/channels in the config to one of those")]
    Unsupported {
        device: String,
        requested: String,
        supported: String,
    },
    #[error("audio device '{device}' was lost: {detail}")]
    Disconnected { device: String, detail: String },
    #[error("audio device '{device}': {detail}")]
    Other { device: String, detail: String },
}

impl AudioError {
    /// The device the error is about, for status reports and log lines.
    pub fn device(&self) -> &str {
        match self {
            AudioError::NotFound { device, .. }
            | AudioError::Busy { device, .. }
            | AudioError::Unsupported { device, .. }
            | AudioError::Disconnected { device, .. }
            | AudioError::Other { device, .. } => device,
        }
    }
}

/// What the capture and player threads tell the rest of the program about their device.
/// Sent once per change (not once per retry), so a listener can show "no microphone" on the
/// screen without being flooded while the thread keeps retrying.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceStatus {
    /// The device is open and delivering/accepting audio in `format`.
    Up { device: String, format: PcmFormat },
    /// The device could not be opened or was lost; `error` is the human-readable reason.
    /// The owning thread keeps retrying (capture) or retries on the next clip (player).
    Down { device: String, error: String },
}
