//! The real sound backend: ALSA PCMs through the `alsa` crate.
//!
//! Streams are opened blocking, S16_LE, interleaved read/write access, with ~20 ms periods:
//! short periods keep the player's Stop and the recognizer's latency low, and the Pi's
//! Codec Zero handles them without trouble. Capture gets a deeper buffer (8 periods) than
//! playback (4 periods) because losing microphone audio is worse than a little extra
//! output latency is good.
//!
//! Errors are mapped to [`AudioError`] so the user reads "device 'hw:Zero' is busy" instead of
//! an errno. Unsupported formats are reported with the list of what the device *actually*
//! accepts, found by installing each candidate format on a fresh handle: a device's
//! advertised ranges can lie (a `plug` whose rate converter is missing, or a codec whose
//! clocks only allow one rate), and the classic trap — "this mic only does 16000" — deserves
//! an exact answer.
//!
//! Overruns/underruns (`EPIPE`) and suspends (`ESTRPIPE`) are recovered inside `read`/`write`;
//! anything else ends the stream and the owning thread reopens it.
//!
//! # Troubleshooting
//! * "not found": check the name with `aplay -L` / `arecord -L` (or `chatterbox devices`);
//!   on the Pi the Codec Zero needs `dtoverlay=rpi-codeczero` in `/boot/firmware/config.txt`.
//! * "busy": another program holds the device (`fuser -v /dev/snd/*`).
//! * "permission denied": add the user to the `audio` group.
use std::time::Duration;

use alsa::pcm::{Access, Format, HwParams, PCM};
use alsa::{Direction, ValueOr};

use super::pcm::{AudioBackend, AudioError, CaptureStream, PcmFormat, PlaybackStream};

/// Target period length: low latency without waking up more than 50 times a second.
const PERIOD_US: u32 = 20_000;
/// Periods per buffer for capture (≈160 ms of slack against scheduling hiccups).
const CAPTURE_PERIODS: u32 = 8;
/// Periods per buffer for playback (≈80 ms queued: Stop is instant anyway, via `drop`).
const PLAYBACK_PERIODS: u32 = 4;
/// A capture stream that delivers nothing for this long is treated as lost, so the capture
/// thread reopens it (and can notice its stop flag) instead of blocking forever.
const CAPTURE_IDLE_TIMEOUT: Duration = Duration::from_secs(2);

/// Rates tried when listing what a device supports. Covers every rate a WAV clip or a
/// USB/I2S codec commonly uses.
pub const CANDIDATE_RATES: [u32; 10] = [
    8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000,
];

/// The ALSA backend. Stateless: every stream owns its own PCM handle.
#[derive(Clone, Copy, Debug, Default)]
pub struct AlsaBackend;

impl AudioBackend for AlsaBackend {
    fn open_capture(
        &self,
        device: &str,
        format: PcmFormat,
    ) -> Result<Box<dyn CaptureStream>, AudioError> {
        let pcm = open_exact(device, Direction::Capture, format)?;
        // Start explicitly so `wait` has a running stream to wait on.
        pcm.start().map_err(|e| map_io_error(device, e))?;
        Ok(Box::new(AlsaCapture {
            pcm,
            device: device.to_string(),
            format,
            overruns: 0,
        }))
    }

    fn open_playback(
        &self,
        device: &str,
        preferred: PcmFormat,
    ) -> Result<Box<dyn PlaybackStream>, AudioError> {
        let (pcm, format) = match open_exact(device, Direction::Playback, preferred) {
            Ok(pcm) => (pcm, preferred),
            Err(AudioError::Unsupported { supported, .. }) => {
                let modes = supported_modes(device, Direction::Playback)?;
                let Some(format) = pick_playback_format(preferred, &modes) else {
                    return Err(AudioError::Unsupported {
                        device: device.to_string(),
                        requested: preferred.to_string(),
                        supported,
                    });
                };
                log::info!(
                    "playback device '{device}' cannot do {preferred}; using {format} and converting"
                );
                (open_exact(device, Direction::Playback, format)?, format)
            }
            Err(e) => return Err(e),
        };
        Ok(Box::new(AlsaPlayback {
            pcm,
            device: device.to_string(),
            format,
            needs_prepare: false,
            underruns: 0,
        }))
    }
}

/// Opens `device` and installs exactly `format` (S16_LE interleaved), or explains why not.
fn open_exact(device: &str, dir: Direction, format: PcmFormat) -> Result<PCM, AudioError> {
    let pcm = open_pcm(device, dir)?;
    match install_params(&pcm, dir, format) {
        Ok(()) => Ok(pcm),
        Err(setup) => {
            // Close our handle first: on `hw:` devices a second open would be EBUSY.
            drop(pcm);
            let modes = supported_modes(device, dir).unwrap_or_default();
            if modes.contains(&format) {
                // The format is fine on its own, so this is something else (period sizes,
                // a plugin failing); report it as is.
                Err(AudioError::Other {
                    device: device.to_string(),
                    detail: format!("could not set {format}: {setup}"),
                })
            } else {
                Err(AudioError::Unsupported {
                    device: device.to_string(),
                    requested: format.to_string(),
                    supported: describe_modes(&modes),
                })
            }
        }
    }
}

/// Opens a PCM handle (blocking mode) with errors mapped to what a person can act on.
pub(crate) fn open_pcm(device: &str, dir: Direction) -> Result<PCM, AudioError> {
    if device.is_empty() || device.contains('\0') {
        return Err(AudioError::NotFound {
            device: device.to_string(),
            detail: "the device name is empty or contains a NUL byte".into(),
        });
    }
    PCM::new(device, dir, false).map_err(|e| map_open_error(device, e))
}

/// Why a hw-params installation failed (kept as text: it only ever ends up in a message).
type SetupError = String;

/// Sets access, format, channels, rate and low-latency period/buffer sizes, then installs
/// them. Any failure here means "this device will not do this format".
fn install_params(pcm: &PCM, dir: Direction, format: PcmFormat) -> Result<(), SetupError> {
    let step = |what: &str, e: alsa::Error| format!("{what}: {}", describe_alsa(e));
    let hwp = HwParams::any(pcm).map_err(|e| step("reading hardware parameters", e))?;
    hwp.set_access(Access::RWInterleaved)
        .map_err(|e| step("interleaved access", e))?;
    hwp.set_format(Format::s16())
        .map_err(|e| step("S16_LE sample format", e))?;
    hwp.set_channels(u32::from(format.channels))
        .map_err(|e| step("channel count", e))?;
    hwp.set_rate(format.rate, ValueOr::Nearest)
        .map_err(|e| step("sample rate", e))?;
    let periods = match dir {
        Direction::Capture => CAPTURE_PERIODS,
        Direction::Playback => PLAYBACK_PERIODS,
    };
    // "near" setters cannot fail on a sane device; if one does, the install below decides.
    let _ = hwp.set_period_time_near(PERIOD_US, ValueOr::Nearest);
    let _ = hwp.set_buffer_time_near(PERIOD_US * periods, ValueOr::Nearest);
    pcm.hw_params(&hwp)
        .map_err(|e| step("installing hardware parameters", e))?;
    if let Ok(actual) = pcm.hw_params_current() {
        if actual.get_rate().ok() != Some(format.rate) {
            return Err(format!(
                "the device chose {} Hz instead of {} Hz",
                actual.get_rate().unwrap_or(0),
                format.rate
            ));
        }
    }
    if dir == Direction::Playback {
        // Start as soon as one period is queued: the first sound comes out ~20 ms after the
        // first write instead of after a whole buffer.
        if let (Ok(swp), Ok((_, period))) = (pcm.sw_params_current(), pcm.get_params()) {
            let period = i64::try_from(period).unwrap_or(1).max(1);
            let _ = swp.set_start_threshold(period as alsa::pcm::Frames);
            let _ = pcm.sw_params(&swp);
        }
    }
    Ok(())
}

/// Every S16_LE (rate, channels) combination among [`CANDIDATE_RATES`] × {1, 2, and the
/// device's minimum channel count} that the device really accepts, verified by installing
/// it on a fresh handle. Slow-ish (one open per candidate): only for error paths and
/// `chatterbox devices`.
pub fn supported_modes(device: &str, dir: Direction) -> Result<Vec<PcmFormat>, AudioError> {
    // One refine pass first to skip what the device plainly refuses.
    let (channels, rates) = {
        let pcm = open_pcm(device, dir)?;
        let hwp = HwParams::any(&pcm).map_err(|e| map_io_error(device, e))?;
        if hwp.test_format(Format::s16()).is_err() {
            return Ok(Vec::new());
        }
        let mut channels: Vec<u32> = vec![1, 2];
        if let Ok(min) = hwp.get_channels_min() {
            if min > 2 && min <= 32 {
                channels.push(min);
            }
        }
        channels.retain(|&c| hwp.test_channels(c).is_ok());
        let rates: Vec<u32> = CANDIDATE_RATES
            .iter()
            .copied()
            .filter(|&r| hwp.test_rate(r).is_ok())
            .collect();
        (channels, rates)
    };
    let mut modes = Vec::new();
    for &rate in &rates {
        for &ch in &channels {
            let Ok(ch16) = u16::try_from(ch) else {
                continue;
            };
            let fmt = PcmFormat {
                rate,
                channels: ch16,
            };
            let pcm = open_pcm(device, dir)?;
            if install_params(&pcm, dir, fmt).is_ok() {
                modes.push(fmt);
            }
        }
    }
    Ok(modes)
}

/// Human-readable summary of supported modes: rates sharing the same channel counts are
/// grouped, e.g. `"8000, 16000 Hz (1 or 2 ch); 48000 Hz (2 ch)"`. Empty list → a sentence
/// saying so.
pub fn describe_modes(modes: &[PcmFormat]) -> String {
    if modes.is_empty() {
        return "no S16_LE mode among the common rates (8000-96000 Hz, 1-2 channels)".into();
    }
    let mut rates: Vec<u32> = modes.iter().map(|m| m.rate).collect();
    rates.sort_unstable();
    rates.dedup();
    // (channel counts, rates having exactly those), in order of first rate.
    let mut groups: Vec<(Vec<u16>, Vec<u32>)> = Vec::new();
    for rate in rates {
        let mut chans: Vec<u16> = modes
            .iter()
            .filter(|m| m.rate == rate)
            .map(|m| m.channels)
            .collect();
        chans.sort_unstable();
        chans.dedup();
        match groups.iter_mut().find(|(c, _)| *c == chans) {
            Some((_, rs)) => rs.push(rate),
            None => groups.push((chans, vec![rate])),
        }
    }
    groups
        .iter()
        .map(|(chans, rates)| {
            let rates: Vec<String> = rates.iter().map(|r| r.to_string()).collect();
            let chans: Vec<String> = chans.iter().map(|c| c.to_string()).collect();
            format!("{} Hz ({} ch)", rates.join(", "), chans.join(" or "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Picks the playback format closest to `preferred` among `modes`: same rate if possible
/// (no resampling), then the 48 kHz family, then the highest rate; same channel count if
/// possible, then stereo, then mono.
pub fn pick_playback_format(preferred: PcmFormat, modes: &[PcmFormat]) -> Option<PcmFormat> {
    modes.iter().copied().max_by_key(|m| {
        let rate_score = if m.rate == preferred.rate {
            3
        } else if m.rate % 8000 == 0 && preferred.rate % 8000 == 0 {
            2
        } else if m.rate >= 16000 {
            1
        } else {
            0
        };
        let ch_score = if m.channels == preferred.channels {
            2
        } else if m.channels == 2 {
            1
        } else {
            0
        };
        (rate_score, ch_score, m.rate)
    })
}

/// Short "what went wrong" text for an ALSA error: the OS description and the function.
fn describe_alsa(e: alsa::Error) -> String {
    let errno = e.errno().abs();
    format!(
        "{} ({})",
        std::io::Error::from_raw_os_error(errno),
        e.func()
    )
}

/// Maps an error from `snd_pcm_open`.
pub(crate) fn map_open_error(device: &str, e: alsa::Error) -> AudioError {
    let device = device.to_string();
    let detail = describe_alsa(e);
    match e.errno().abs() {
        libc::ENOENT | libc::ENODEV | libc::ENXIO => AudioError::NotFound {
            detail: match crate::setup_audio::missing_pcm_hint(&device) {
                Some(hint) => format!("ALSA knows no PCM by this name: {hint} [{detail}]"),
                None => format!("ALSA knows no PCM or card by this name, or a file it needs is missing [{detail}]"),
            },
            device,
        },
        libc::EBUSY | libc::EAGAIN => AudioError::Busy { device, detail },
        libc::EACCES | libc::EPERM => AudioError::Other {
            device,
            detail: format!("{detail}; add this user to the 'audio' group (sudo usermod -aG audio $USER) and log in again"),
        },
        _ => AudioError::Other { device, detail },
    }
}

/// Maps an error from an open stream that recovery could not fix.
fn map_io_error(device: &str, e: alsa::Error) -> AudioError {
    let device = device.to_string();
    let detail = describe_alsa(e);
    match e.errno().abs() {
        libc::ENODEV | libc::EBADFD | libc::EIO | libc::ENOTTY | libc::ESHUTDOWN => {
            AudioError::Disconnected { device, detail }
        }
        _ => AudioError::Other { device, detail },
    }
}

/// Is this error one that `snd_pcm_recover` handles (xrun, suspend, signal)?
fn is_recoverable(e: &alsa::Error) -> bool {
    matches!(e.errno().abs(), libc::EPIPE | libc::ESTRPIPE | libc::EINTR)
}

/// The part of a PCM that recovery touches, so the sequence can be tested without a card
/// that overruns on demand.
trait Recoverable {
    fn try_recover(&self, e: alsa::Error, silent: bool) -> alsa::Result<()>;
    fn state(&self) -> alsa::pcm::State;
    fn start(&self) -> alsa::Result<()>;
}

impl Recoverable for PCM {
    fn try_recover(&self, e: alsa::Error, silent: bool) -> alsa::Result<()> {
        PCM::try_recover(self, e, silent)
    }
    fn state(&self) -> alsa::pcm::State {
        PCM::state(self)
    }
    fn start(&self) -> alsa::Result<()> {
        PCM::start(self)
    }
}

/// Recovers a capture stream after `e`. After an overrun (or a failed resume) recovery
/// leaves the stream prepared, and a capture stream must then be started again. After
/// EINTR, or a suspend the card resumed from, it is still running, and `start` would fail
/// with EBADFD and turn a harmless interruption into a reopen.
fn recover_capture(pcm: &impl Recoverable, e: alsa::Error) -> alsa::Result<()> {
    pcm.try_recover(e, true)?;
    if pcm.state() == alsa::pcm::State::Prepared {
        pcm.start()?;
    }
    Ok(())
}

/// An open, running ALSA capture stream.
struct AlsaCapture {
    pcm: PCM,
    device: String,
    format: PcmFormat,
    overruns: u64,
}

impl AlsaCapture {
    fn recover(&mut self, e: alsa::Error) -> Result<(), AudioError> {
        if !is_recoverable(&e) {
            return Err(map_io_error(&self.device, e));
        }
        if e.errno().abs() == libc::EPIPE {
            self.overruns += 1;
            if self.overruns.is_power_of_two() {
                log::warn!(
                    "capture overrun on '{}' (#{}): some microphone audio was lost; the system is too busy to keep up",
                    self.device,
                    self.overruns
                );
            }
        }
        recover_capture(&self.pcm, e).map_err(|e| map_io_error(&self.device, e))
    }
}

impl CaptureStream for AlsaCapture {
    fn format(&self) -> PcmFormat {
        self.format
    }

    fn read(&mut self, buf: &mut [i16]) -> Result<usize, AudioError> {
        let ch = usize::from(self.format.channels.max(1));
        let frames = buf.len() / ch;
        if frames == 0 {
            return Ok(0);
        }
        let timeout_ms = CAPTURE_IDLE_TIMEOUT.as_millis() as u32;
        loop {
            match self.pcm.wait(Some(timeout_ms)) {
                Ok(true) => {}
                Ok(false) => {
                    return Err(AudioError::Disconnected {
                        device: self.device.clone(),
                        detail: format!(
                        "no audio arrived for {} s (is the codec clocked? is the overlay loaded?)",
                        CAPTURE_IDLE_TIMEOUT.as_secs()
                    ),
                    })
                }
                Err(e) => {
                    self.recover(e)?;
                    continue;
                }
            }
            let result = {
                let io = self
                    .pcm
                    .io_i16()
                    .map_err(|e| map_io_error(&self.device, e))?;
                io.readi(&mut buf[..frames * ch])
            };
            match result {
                Ok(0) => continue,
                Ok(n) => return Ok(n),
                Err(e) => self.recover(e)?,
            }
        }
    }
}

/// An open ALSA playback stream. Kept open between clips by the player.
struct AlsaPlayback {
    pcm: PCM,
    device: String,
    format: PcmFormat,
    /// After `drain`/`drop` the PCM is in SETUP state and must be prepared before writing.
    needs_prepare: bool,
    underruns: u64,
}

impl AlsaPlayback {
    fn recover(&mut self, e: alsa::Error) -> Result<(), AudioError> {
        if !is_recoverable(&e) {
            return Err(map_io_error(&self.device, e));
        }
        if e.errno().abs() == libc::EPIPE {
            self.underruns += 1;
            if self.underruns.is_power_of_two() {
                log::warn!(
                    "playback underrun on '{}' (#{}): a gap may be audible",
                    self.device,
                    self.underruns
                );
            }
        }
        self.pcm
            .try_recover(e, true)
            .map_err(|e| map_io_error(&self.device, e))
    }
}

impl PlaybackStream for AlsaPlayback {
    fn format(&self) -> PcmFormat {
        self.format
    }

    fn write(&mut self, samples: &[i16]) -> Result<(), AudioError> {
        if self.needs_prepare {
            self.pcm
                .prepare()
                .map_err(|e| map_io_error(&self.device, e))?;
            self.needs_prepare = false;
        }
        let ch = usize::from(self.format.channels.max(1));
        let usable = samples.len() - samples.len() % ch;
        let mut offset = 0;
        while offset < usable {
            let result = {
                let io = self
                    .pcm
                    .io_i16()
                    .map_err(|e| map_io_error(&self.device, e))?;
                io.writei(&samples[offset..usable])
            };
            match result {
                Ok(frames) => offset += frames * ch,
                Err(e) => self.recover(e)?,
            }
        }
        Ok(())
    }

    fn drain(&mut self) -> Result<(), AudioError> {
        if self.needs_prepare {
            return Ok(());
        }
        let result = self.pcm.drain();
        self.needs_prepare = true;
        match result {
            Ok(()) => Ok(()),
            // An underrun at the very end just means everything was played.
            Err(e) if e.errno().abs() == libc::EPIPE => Ok(()),
            Err(e) => Err(map_io_error(&self.device, e)),
        }
    }

    fn stop(&mut self) -> Result<(), AudioError> {
        if self.needs_prepare {
            return Ok(());
        }
        let result = self.pcm.drop();
        self.needs_prepare = true;
        result.map_err(|e| map_io_error(&self.device, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(rate: u32, channels: u16) -> PcmFormat {
        PcmFormat { rate, channels }
    }

    #[test]
    fn describe_groups_channels_by_rate() {
        let modes = [
            f(48000, 2),
            f(16000, 1),
            f(16000, 2),
            f(8000, 2),
            f(8000, 1),
        ];
        assert_eq!(
            describe_modes(&modes),
            "8000, 16000 Hz (1 or 2 ch); 48000 Hz (2 ch)"
        );
        assert_eq!(describe_modes(&[f(16000, 1)]), "16000 Hz (1 ch)");
        assert!(describe_modes(&[]).contains("no S16_LE mode"));
    }

    #[test]
    fn pick_prefers_same_rate_then_same_channels() {
        let modes = [f(16000, 1), f(48000, 1), f(48000, 2), f(44100, 2)];
        assert_eq!(pick_playback_format(f(48000, 2), &modes), Some(f(48000, 2)));
        assert_eq!(pick_playback_format(f(16000, 2), &modes), Some(f(16000, 1)));
        // 24 kHz is not available: stay in the 8 kHz family, keep stereo.
        assert_eq!(pick_playback_format(f(24000, 2), &modes), Some(f(48000, 2)));
        assert_eq!(pick_playback_format(f(48000, 2), &[]), None);
    }

    #[test]
    fn open_errors_map_to_actionable_variants() {
        let e = map_open_error("hw:9", alsa::Error::new("snd_pcm_open", libc::ENOENT));
        assert!(matches!(e, AudioError::NotFound { ref device, .. } if device == "hw:9"));
        let e = map_open_error("hw:0", alsa::Error::new("snd_pcm_open", -libc::EBUSY));
        assert!(matches!(e, AudioError::Busy { .. }));
        let e = map_open_error("hw:0", alsa::Error::new("snd_pcm_open", libc::EACCES));
        assert!(e.to_string().contains("audio' group"));
    }

    /// A PCM whose recovery leaves it in a given state, and that fails `start` on a
    /// running stream the way ALSA does (EBADFD).
    struct FakePcm {
        after_recover: alsa::pcm::State,
        state: std::cell::Cell<alsa::pcm::State>,
        starts: std::cell::Cell<u32>,
    }

    impl Recoverable for FakePcm {
        fn try_recover(&self, _e: alsa::Error, _silent: bool) -> alsa::Result<()> {
            self.state.set(self.after_recover);
            Ok(())
        }
        fn state(&self) -> alsa::pcm::State {
            self.state.get()
        }
        fn start(&self) -> alsa::Result<()> {
            if self.state.get() != alsa::pcm::State::Prepared {
                return Err(alsa::Error::new("snd_pcm_start", libc::EBADFD));
            }
            self.starts.set(self.starts.get() + 1);
            self.state.set(alsa::pcm::State::Running);
            Ok(())
        }
    }

    fn recover_from(errno: i32, after_recover: alsa::pcm::State) -> (alsa::Result<()>, u32) {
        let pcm = FakePcm {
            after_recover,
            state: std::cell::Cell::new(alsa::pcm::State::XRun),
            starts: std::cell::Cell::new(0),
        };
        let r = recover_capture(&pcm, alsa::Error::new("snd_pcm_readi", errno));
        (r, pcm.starts.get())
    }

    #[test]
    fn recovery_starts_only_a_stream_left_prepared() {
        use alsa::pcm::State;
        // An overrun: recovery prepares the stream, which must be started again.
        let (r, starts) = recover_from(libc::EPIPE, State::Prepared);
        assert!(r.is_ok() && starts == 1, "{r:?}, {starts} starts");
        // EINTR, or a suspend the card resumed from: still running; a start would fail
        // with EBADFD and force a reopen.
        for errno in [libc::EINTR, libc::ESTRPIPE] {
            let (r, starts) = recover_from(errno, State::Running);
            assert!(
                r.is_ok() && starts == 0,
                "errno {errno}: {r:?}, {starts} starts"
            );
        }
    }
}
