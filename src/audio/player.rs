//! The player thread: plays WAV clips on the speaker, stoppable mid-clip.
//!
//! Commands arrive on a channel; reports go back on another. Every `Play` gets exactly one
//! `Finished` (Completed, Stopped or Failed); `Started` is sent once the first slice of audio
//! has been handed to the device, so a clip that fails before making a sound gets only
//! `Finished { Failed }`.
//!
//! Audio is written in ~20 ms slices and the command channel is checked between slices, so
//! `Stop` (or a new `Play`, which replaces the current clip) takes effect within one slice;
//! the device's queue is then dropped at once (`PlaybackStream::stop`).
//!
//! # Latency from `Play` to the first frame
//! The per-play work before the first write is: open the file and check its header (format,
//! and that the file really holds the data it promises), set up a streaming [`Converter`],
//! decode and convert the *first slice only*, write it. Decoding and conversion of the rest
//! happen slice by slice while earlier audio plays, so clip length does not delay the start.
//!
//! Measured with `cargo bench --bench player_latency` (release build, busy 2-core VM):
//! Play → first write median 0.1-0.2 ms (up to ~2 ms in a noisy run), p90 ≤ 6 ms, max ≤ 8 ms
//! over several runs, for 5 s clips at 48 kHz stereo S16,
//! 16 kHz mono float (resampled ×3) and 44.1 kHz stereo (resampled 147:160). Decoding the
//! whole clip up front, as a first version did, cost 14-27 ms median — over the 20 ms
//! budget — hence the streaming.
//!
//! The playback device is opened when the thread starts (so a missing speaker shows up at
//! boot, not at the first button press) and **kept open between clips**
//! (drained at the end of a clip, prepared again before the next). Through ALSA's file
//! plugin a reopen costs only ~0.02 ms (same bench), so this machine cannot decide the
//! question; on the Pi, opening `hw:`/`plughw:` goes through the kernel driver, where an
//! ASoC codec may power its path up on open, and another program could grab the card
//! between clips. Keeping it open avoids both, at the price of holding the sound card while
//! chatterbox runs — which is what a toy that owns its sound card wants. After a device
//! error the stream is closed and the next `Play` reopens it (logged).
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TryRecvError};

use super::pcm::{AudioBackend, AudioError, DeviceStatus, PcmFormat, PlaybackStream};
use super::wav::{open_clip, Converter};

/// Where and how to play.
#[derive(Clone, Debug)]
pub struct PlayerConfig {
    /// ALSA PCM name of the speaker, e.g. `default`, `plughw:CARD=Zero`.
    pub device: String,
    /// Format to ask the device for; if it cannot, the nearest it can do is used and clips
    /// are converted to it.
    pub preferred: PcmFormat,
    /// Clips longer than this are cut (protects against a huge file on the SD card).
    pub max_clip_seconds: f32,
    /// Close the speaker after this long with nothing to play, so the DAC and amplifier
    /// power down (no hiss while the toy sits idle); the next clip opens it again. `None`
    /// keeps it open, which starts clips a little sooner.
    pub idle_close: Option<Duration>,
}

/// What the player can be told to do.
#[derive(Clone, Debug, PartialEq)]
pub enum PlayerCommand {
    /// Play the WAV at `path`, replacing whatever is playing. `id` comes back in reports.
    Play { id: u64, path: PathBuf },
    /// Stop the current clip now (no-op when idle).
    Stop,
    /// Output gain, 1.0 = unchanged; clamped to 0..=8. Applies from the next slice.
    SetGain(f32),
    /// Stop any clip, close the device, end the thread.
    Shutdown,
}

/// What the player tells the rest of the program.
#[derive(Clone, Debug, PartialEq)]
pub enum PlayerReport {
    /// The first audio of clip `id` reached the device.
    Started { id: u64 },
    /// Clip `id` is over; exactly one per `Play`.
    Finished { id: u64, outcome: PlayOutcome },
    /// The speaker came up or went down.
    Device(DeviceStatus),
}

/// How a clip ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlayOutcome {
    Completed,
    /// Stopped by `Stop`, a newer `Play`, or `Shutdown`.
    Stopped,
    /// The file or the device failed; the text says which and what to do.
    Failed(String),
}

/// Length of one write: the granularity at which Stop takes effect.
pub const SLICE_MS: u32 = 20;
/// Highest accepted gain (×8 ≈ +18 dB); anything louder is a configuration mistake.
pub const MAX_GAIN: f32 = 8.0;

/// Starts the player thread. It ends on `Shutdown` or when `commands` is disconnected.
pub fn spawn_player(
    backend: Arc<dyn AudioBackend>,
    cfg: PlayerConfig,
    commands: Receiver<PlayerCommand>,
    reports: Sender<PlayerReport>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("player".into())
        .spawn(move || {
            let mut player = Player {
                backend,
                cfg,
                reports,
                stream: None,
                gain: 1.0,
                device_up: None,
            };
            // Open the speaker right away: a missing speaker is reported at start-up rather
            // than at the first button press, and the first clip starts without the open.
            // A failure here is only reported; the next Play retries.
            let _ = player.ensure_stream();
            player.run(&commands);
        })
}

/// Clamps a requested gain to something sane; NaN and negatives mean "mute".
pub fn sanitize_gain(g: f32) -> f32 {
    if g.is_nan() {
        0.0
    } else {
        g.clamp(0.0, MAX_GAIN)
    }
}

struct Player {
    backend: Arc<dyn AudioBackend>,
    cfg: PlayerConfig,
    reports: Sender<PlayerReport>,
    stream: Option<Box<dyn PlaybackStream>>,
    gain: f32,
    /// Last reported device state (None = never reported).
    device_up: Option<bool>,
}

/// What interrupted a clip and must be handled after it.
enum Next {
    Idle,
    Command(PlayerCommand),
}

impl Player {
    fn report(&self, r: PlayerReport) {
        // Nobody listening is not the player's problem; it keeps playing.
        let _ = self.reports.send(r);
    }

    fn finish(&self, id: u64, outcome: PlayOutcome) {
        self.report(PlayerReport::Finished { id, outcome });
    }

    fn run(&mut self, commands: &Receiver<PlayerCommand>) {
        let mut pending: Option<PlayerCommand> = None;
        loop {
            let cmd = match pending.take() {
                Some(c) => c,
                None => match self.next_command(commands) {
                    Some(c) => c,
                    None => break,
                },
            };
            match cmd {
                PlayerCommand::Play { id, path } => {
                    crate::supervise::test_panic_point("player");
                    if let Next::Command(c) = self.play(id, path, commands) {
                        pending = Some(c);
                    }
                }
                PlayerCommand::Stop => {}
                PlayerCommand::SetGain(g) => self.gain = sanitize_gain(g),
                PlayerCommand::Shutdown => break,
            }
        }
        // Closing the PCM (drop) releases the sound card.
        self.stream = None;
    }

    /// Waits for the next command; with an idle close set and the speaker open, closes the
    /// speaker once that long has passed without one. `None` when the controller is gone.
    fn next_command(&mut self, commands: &Receiver<PlayerCommand>) -> Option<PlayerCommand> {
        if let (Some(idle), true) = (self.cfg.idle_close, self.stream.is_some()) {
            match commands.recv_timeout(idle) {
                Ok(c) => return Some(c),
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return None,
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    log::debug!(
                        "speaker '{}' closed after {:.0} s idle",
                        self.cfg.device,
                        idle.as_secs_f64()
                    );
                    self.stream = None;
                }
            }
        }
        commands.recv().ok()
    }

    /// Makes sure the device is open, reporting transitions.
    fn ensure_stream(&mut self) -> Result<(), AudioError> {
        if self.stream.is_some() {
            return Ok(());
        }
        if self.device_up == Some(false) {
            log::info!("speaker '{}': trying to open it again", self.cfg.device);
        }
        match self
            .backend
            .open_playback(&self.cfg.device, self.cfg.preferred)
        {
            Ok(stream) => {
                let format = stream.format();
                log::info!("speaker '{}' open: {format}", self.cfg.device);
                self.stream = Some(stream);
                self.device_up = Some(true);
                self.report(PlayerReport::Device(DeviceStatus::Up {
                    device: self.cfg.device.clone(),
                    format,
                }));
                Ok(())
            }
            Err(e) => {
                self.device_down(&e);
                Err(e)
            }
        }
    }

    fn device_down(&mut self, e: &AudioError) {
        self.stream = None;
        // One error per episode, like the microphone; each failed retry is only debug.
        if self.device_up == Some(false) {
            log::debug!("speaker still unavailable: {e}");
        } else {
            log::error!("speaker unavailable: {e}. Will retry on the next clip");
            self.device_up = Some(false);
            self.report(PlayerReport::Device(DeviceStatus::Down {
                device: self.cfg.device.clone(),
                error: e.to_string(),
            }));
        }
    }

    fn play(&mut self, id: u64, path: PathBuf, commands: &Receiver<PlayerCommand>) -> Next {
        let clip = match open_clip(&path, self.cfg.max_clip_seconds) {
            Ok(c) => c,
            Err(e) => {
                log::warn!("cannot play clip: {e}");
                self.finish(id, PlayOutcome::Failed(e.to_string()));
                return Next::Idle;
            }
        };
        if let Err(e) = self.ensure_stream() {
            self.finish(id, PlayOutcome::Failed(e.to_string()));
            return Next::Idle;
        }
        let Some(format) = self.stream.as_ref().map(|s| s.format()) else {
            return Next::Idle;
        };
        let mut conv = match Converter::from_source(Box::new(clip), format) {
            Ok(c) => c,
            Err(e) => {
                let msg = format!("{e} (file '{}')", path.display());
                log::warn!("cannot play clip: {msg}");
                self.finish(id, PlayOutcome::Failed(msg));
                return Next::Idle;
            }
        };
        let slice_frames = (format.rate * SLICE_MS / 1000).max(1) as usize;
        let mut block: Vec<i16> = Vec::with_capacity(slice_frames * usize::from(format.channels));
        let mut started = false;
        loop {
            block.clear();
            match conv.next_block(slice_frames, self.gain, &mut block) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    self.stop_stream();
                    self.finish(
                        id,
                        PlayOutcome::Failed(format!("{e} (file '{}')", path.display())),
                    );
                    return Next::Idle;
                }
            }
            let written = match self.stream.as_mut() {
                Some(s) => s.write(&block),
                None => return Next::Idle,
            };
            if let Err(e) = written {
                self.device_down(&e);
                self.finish(id, PlayOutcome::Failed(e.to_string()));
                return Next::Idle;
            }
            if !started {
                started = true;
                self.report(PlayerReport::Started { id });
            }
            // Between slices: anything to obey?
            loop {
                match commands.try_recv() {
                    Ok(PlayerCommand::SetGain(g)) => self.gain = sanitize_gain(g),
                    Ok(PlayerCommand::Stop) => {
                        self.stop_stream();
                        self.finish(id, PlayOutcome::Stopped);
                        return Next::Idle;
                    }
                    Ok(other) => {
                        // A new Play replaces this clip; Shutdown ends it.
                        self.stop_stream();
                        self.finish(id, PlayOutcome::Stopped);
                        return Next::Command(other);
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        self.stop_stream();
                        self.finish(id, PlayOutcome::Stopped);
                        return Next::Command(PlayerCommand::Shutdown);
                    }
                }
            }
        }
        let drained = match self.stream.as_mut() {
            Some(s) => s.drain(),
            None => Ok(()),
        };
        match drained {
            Ok(()) => {
                if !started {
                    // An empty clip: nothing reached the device, but it did "play".
                    self.report(PlayerReport::Started { id });
                }
                self.finish(id, PlayOutcome::Completed);
            }
            Err(e) => {
                self.device_down(&e);
                self.finish(id, PlayOutcome::Failed(e.to_string()));
            }
        }
        Next::Idle
    }

    /// Drops whatever is queued on the device; a failure here means the device is gone.
    fn stop_stream(&mut self) {
        let result = match self.stream.as_mut() {
            Some(s) => s.stop(),
            None => Ok(()),
        };
        if let Err(e) = result {
            self.device_down(&e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gain_is_clamped_and_nan_mutes() {
        assert_eq!(sanitize_gain(f32::NAN), 0.0);
        assert_eq!(sanitize_gain(-1.0), 0.0);
        assert_eq!(sanitize_gain(100.0), MAX_GAIN);
        assert_eq!(sanitize_gain(0.5), 0.5);
    }
}
