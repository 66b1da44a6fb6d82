//! The one capture thread — the only code that opens the microphone — and its fan-out.
//!
//! ALSA `hw:` capture devices can be opened once, and the recognizer and the recorder both
//! want the microphone, so a single thread reads it and hands every chunk to a
//! [`CaptureHub`]. Consumers [`subscribe`](CaptureHub::subscribe) with a bounded queue of
//! their own: the keyword recognizer stays subscribed for the life of the program, the
//! recorder subscribes only while recording (dropping its [`Subscription`] unsubscribes).
//!
//! Fan-out uses `try_send`: a subscriber that falls behind loses *its own* chunks (counted in
//! [`Subscription::dropped`], logged once per episode) and never delays the microphone or
//! the other subscribers. Chunks share their samples (`Arc<[i16]>`), so fan-out costs one
//! reference count per subscriber, not a copy.
//!
//! When the device is missing, busy or lost, the thread logs once, reports
//! [`DeviceStatus::Down`], and retries with exponential backoff (0.5 s doubling to 8 s);
//! when it opens again it reports [`DeviceStatus::Up`]. Subscriptions survive reopening.
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use super::pcm::{AudioBackend, AudioError, DeviceStatus, PcmFormat};
use super::AudioChunk;

/// First retry delay after the device fails.
pub const BACKOFF_START: Duration = Duration::from_millis(500);
/// Longest delay between retries.
pub const BACKOFF_MAX: Duration = Duration::from_secs(8);

struct Subscriber {
    id: u64,
    name: String,
    tx: Sender<AudioChunk>,
    dropped: Arc<AtomicU64>,
    /// Chunks dropped in the current "not keeping up" episode (0 = keeping up).
    episode: u64,
}

#[derive(Default)]
struct HubInner {
    next_id: u64,
    subscribers: Vec<Subscriber>,
}

/// The fan-out point between the capture thread and its consumers. Cheap to clone; clones
/// share subscribers.
#[derive(Clone, Default)]
pub struct CaptureHub {
    inner: Arc<Mutex<HubInner>>,
}

/// One consumer's queue of chunks. Dropping it unsubscribes.
pub struct Subscription {
    id: u64,
    hub: CaptureHub,
    rx: Receiver<AudioChunk>,
    dropped: Arc<AtomicU64>,
}

impl CaptureHub {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HubInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Subscribes `name` (used in log lines) with room for `capacity` chunks (at least 1).
    /// Size it for the longest pause the consumer may take: e.g. 50 chunks of 20 ms = 1 s.
    pub fn subscribe(&self, name: &str, capacity: usize) -> Subscription {
        let (tx, rx) = crossbeam_channel::bounded(capacity.max(1));
        let dropped = Arc::new(AtomicU64::new(0));
        let mut inner = self.lock();
        inner.next_id += 1;
        let id = inner.next_id;
        inner.subscribers.push(Subscriber {
            id,
            name: name.to_string(),
            tx,
            dropped: dropped.clone(),
            episode: 0,
        });
        Subscription {
            id,
            hub: self.clone(),
            rx,
            dropped,
        }
    }

    /// Number of live subscriptions.
    pub fn subscriber_count(&self) -> usize {
        self.lock().subscribers.len()
    }

    /// Hands `chunk` to every subscriber without ever blocking. Public so that simulations
    /// can inject audio without a device; in the program only the capture thread calls it.
    ///
    /// Log lines are written after the hub lock is released: a blocked stderr (a full pipe,
    /// a stalled journal) may delay this thread but never a `subscribe`/`unsubscribe` on
    /// another thread waiting for the lock.
    pub fn publish(&self, chunk: AudioChunk) {
        let mut notes: Vec<(log::Level, String)> = Vec::new();
        {
            let mut inner = self.lock();
            inner.subscribers.retain_mut(|sub| {
                match sub.tx.try_send(chunk.clone()) {
                    Ok(()) => {
                        if sub.episode > 0 {
                            notes.push((
                                log::Level::Info,
                                format!(
                                    "audio subscriber '{}' is keeping up again after losing {} chunk(s)",
                                    sub.name, sub.episode
                                ),
                            ));
                            sub.episode = 0;
                        }
                        true
                    }
                    Err(TrySendError::Full(_)) => {
                        sub.dropped.fetch_add(1, Ordering::Relaxed);
                        if sub.episode == 0 {
                            notes.push((
                                log::Level::Warn,
                                format!(
                                    "audio subscriber '{}' is not keeping up; dropping its chunks until it catches up",
                                    sub.name
                                ),
                            ));
                        }
                        sub.episode += 1;
                        true
                    }
                    // Cannot happen while the Subscription lives (it owns the receiver), but a
                    // dead queue must not be kept around.
                    Err(TrySendError::Disconnected(_)) => false,
                }
            });
        }
        for (level, text) in notes {
            log::log!(level, "{text}");
        }
    }

    fn unsubscribe(&self, id: u64) {
        self.lock().subscribers.retain(|s| s.id != id);
    }
}

impl Subscription {
    /// The queue to receive chunks from (use it in `select!` beside other channels).
    pub fn receiver(&self) -> &Receiver<AudioChunk> {
        &self.rx
    }

    /// Chunks this subscriber lost because its queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.unsubscribe(self.id);
    }
}

/// Whether the capture thread slows reading down to the wall clock (`audio.pace_capture`).
///
/// A sound card paces itself: a read blocks until the card's own oscillator has produced
/// the audio. Pacing such a device against the Pi's clock as well is harmful: the two
/// clocks never agree exactly, and when the card runs ε fast the reader falls behind by ε
/// per second until the 160 ms capture buffer overruns and drops audio (every 27 min at
/// 100 ppm). Sources that deliver at once (ALSA's `file` plugin with `infile`, the memory
/// backend) must be paced, or a 10 s recording would take 10 ms. So the default, `Auto`,
/// decides per opened stream from how it behaves; see [`Pacer`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "PacingSetting", into = "PacingSetting")]
pub enum Pacing {
    /// Pace only sources that are not clocked by hardware (`pace_capture = "auto"`).
    #[default]
    Auto,
    /// Always pace (`pace_capture = true`): only for sources known to deliver at once.
    Always,
    /// Never pace (`pace_capture = false`): tests that want a file read as fast as possible.
    Never,
}

/// How [`Pacing`] is written in the config file: `"auto"`, `true` or `false`.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
enum PacingSetting {
    Flag(bool),
    Word(String),
}

impl TryFrom<PacingSetting> for Pacing {
    type Error = String;
    fn try_from(v: PacingSetting) -> Result<Self, String> {
        match v {
            PacingSetting::Flag(true) => Ok(Pacing::Always),
            PacingSetting::Flag(false) => Ok(Pacing::Never),
            PacingSetting::Word(w) if w == "auto" => Ok(Pacing::Auto),
            PacingSetting::Word(w) => Err(format!(
                "pace_capture = \"{w}\" is not a setting; use \"auto\" (recommended), true or false"
            )),
        }
    }
}

impl From<Pacing> for PacingSetting {
    fn from(p: Pacing) -> Self {
        match p {
            Pacing::Auto => PacingSetting::Word("auto".into()),
            Pacing::Always => PacingSetting::Flag(true),
            Pacing::Never => PacingSetting::Flag(false),
        }
    }
}

/// Audio a stream must have delivered before `Auto` judges whether it is hardware-clocked.
const JUDGE_AFTER: Duration = Duration::from_millis(200);

/// Decides, for one opened stream, whether to sleep after a read, and how long.
///
/// `Auto` asks the stream first ([`CaptureStream::paced_by_device`]); if it does not know
/// (ALSA: a `hw:` card, `dsnoop`, PipeWire and the `file` plugin all look alike), it
/// watches the first [`JUDGE_AFTER`] of audio: a device clocked by hardware cannot deliver
/// audio faster than real time since it was opened (its buffer starts empty), so one that
/// delivers it in well under that time is a file, and is paced from then on. The verdict
/// is final for the stream: a real card that drifts ahead later is never paced.
#[derive(Debug)]
pub struct Pacer {
    mode: Pacing,
    /// `Some(true)`: pace; `Some(false)`: never; `None`: not judged yet.
    verdict: Option<bool>,
    /// The source has been looked at (in every mode, so a forced pace of a real card can
    /// be pointed out).
    judged: bool,
}

impl Pacer {
    /// `device_paced` is what the stream says about itself, if it knows.
    pub fn new(mode: Pacing, device_paced: Option<bool>) -> Self {
        let verdict = match mode {
            Pacing::Always => Some(true),
            Pacing::Never => Some(false),
            Pacing::Auto => device_paced.map(|paced| !paced),
        };
        Pacer {
            mode,
            verdict,
            judged: false,
        }
    }

    /// Whether this stream is being paced (`None` while `Auto` has not decided yet).
    pub fn paces(&self) -> Option<bool> {
        self.verdict
    }

    /// After a read: `frames` delivered in total at `rate`, `elapsed` since the open was
    /// started. Returns how long to sleep, if at all.
    pub fn after_read(&mut self, frames: u64, rate: u32, elapsed: Duration) -> Option<Duration> {
        let delivered = Duration::from_secs_f64(frames as f64 / f64::from(rate.max(1)));
        if !self.judged && delivered >= JUDGE_AFTER {
            self.judged = true;
            // Generous margins: a real device is at most a few ppm ahead of `elapsed`.
            let too_fast = delivered > elapsed.mul_f64(1.25) + Duration::from_millis(50);
            match self.mode {
                Pacing::Auto => {
                    self.verdict = Some(too_fast);
                    if too_fast {
                        log::info!(
                            "the microphone delivers audio faster than real time (a file or test source, not a sound card); pacing it to the clock"
                        );
                    }
                }
                Pacing::Always if !too_fast => log::warn!(
                    "audio.pace_capture = true on what looks like a sound card: its clock is not the Pi's, so forced pacing makes the microphone overrun now and then (a gap every half hour or so). Use pace_capture = \"auto\""
                ),
                _ => {}
            }
        }
        if self.verdict == Some(true) {
            pace_delay(frames, rate, elapsed)
        } else {
            None
        }
    }
}

/// What the capture thread opens and how it reads.
#[derive(Clone, Debug)]
pub struct CaptureConfig {
    /// ALSA PCM name, e.g. `default`, `hw:Zero`, `plughw:CARD=Zero`.
    pub device: String,
    /// Format to open the device in; it must be supported exactly (no silent conversion).
    pub format: PcmFormat,
    /// Frames per chunk handed to subscribers (e.g. 960 = 20 ms at 48 kHz).
    pub chunk_frames: usize,
    /// Whether to keep reads from running ahead of the wall clock; see [`Pacing`].
    pub pacing: Pacing,
}

/// Starts the capture thread. It runs until `stop` is set (checked between chunks and
/// during retry waits), publishing chunks to `hub` and device changes to `status`.
///
/// `AudioChunk::first_frame` counts frames delivered since this thread started, across
/// reopens, so it never goes backwards (time lost while the device was down is not counted).
pub fn spawn_capture(
    backend: Arc<dyn AudioBackend>,
    cfg: CaptureConfig,
    hub: CaptureHub,
    status: Sender<DeviceStatus>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("capture".into())
        .spawn(move || run_capture(backend.as_ref(), &cfg, &hub, &status, &stop))
}

/// Exponential backoff: doubles `current`, capped at [`BACKOFF_MAX`].
pub fn next_backoff(current: Duration) -> Duration {
    (current * 2).min(BACKOFF_MAX)
}

/// How long to wait so that `frames` frames at `rate` are not delivered before their time,
/// `elapsed` after the stream opened; None when the wall clock is already past it.
pub fn pace_delay(frames: u64, rate: u32, elapsed: Duration) -> Option<Duration> {
    let due = Duration::from_secs_f64(frames as f64 / f64::from(rate.max(1)));
    due.checked_sub(elapsed).filter(|d| !d.is_zero())
}

fn report(status: &Sender<DeviceStatus>, s: DeviceStatus) {
    if let Err(e) = status.try_send(s) {
        if matches!(e, TrySendError::Full(_)) {
            log::warn!("capture status queue is full; a device status report was lost");
        }
    }
}

/// Sleeps `d` in short steps; returns early (true) if `stop` was set.
fn sleep_unless_stopped(d: Duration, stop: &AtomicBool) -> bool {
    let deadline = Instant::now() + d;
    loop {
        if stop.load(Ordering::Relaxed) {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(50)));
    }
}

/// The time source pacing uses: the wall clock in the program, a simulated one in tests
/// (so hours of a drifting device take a second).
trait PaceTimer {
    /// Time since the stream's open was started.
    fn elapsed(&self) -> Duration;
    /// A reading of the same clock that can be compared across opens.
    fn now(&self) -> Duration;
    /// Waits `d`; true if `stop` was set meanwhile.
    fn sleep(&self, d: Duration, stop: &AtomicBool) -> bool;
}

struct WallTimer(Instant);

impl PaceTimer for WallTimer {
    fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }
    fn now(&self) -> Duration {
        static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        EPOCH.get_or_init(Instant::now).elapsed()
    }
    fn sleep(&self, d: Duration, stop: &AtomicBool) -> bool {
        sleep_unless_stopped(d, stop)
    }
}

fn run_capture(
    backend: &dyn AudioBackend,
    cfg: &CaptureConfig,
    hub: &CaptureHub,
    status: &Sender<DeviceStatus>,
    stop: &AtomicBool,
) {
    let mut backoff = BACKOFF_START;
    // Reported Down (and logged as an error) for the current episode. An episode ends only
    // when audio actually arrives, so a device that opens and then delivers nothing is one
    // Down and one error, not an Up/Down pair every retry.
    let mut down = false;
    let mut next_frame: u64 = 0;
    // When the last chunk arrived (`PaceTimer::now`), across reopens: see `pump`.
    let mut last_read: Option<Duration> = None;
    while !stop.load(Ordering::Relaxed) {
        // Taken before the open: a hardware-clocked stream can then never appear to have
        // delivered more audio than time has passed (see `Pacer`).
        let timer = WallTimer(Instant::now());
        let error = match backend.open_capture(&cfg.device, cfg.format) {
            Ok(mut stream) => {
                let format = stream.format();
                if format != cfg.format {
                    log::warn!(
                        "microphone '{}' delivers {format} instead of the configured {}",
                        cfg.device,
                        cfg.format
                    );
                }
                log::info!("microphone '{}' open: {format}", cfg.device);
                let before = next_frame;
                let mut on_audio_flowing = || {
                    report(
                        status,
                        DeviceStatus::Up {
                            device: cfg.device.clone(),
                            format,
                        },
                    );
                    down = false;
                };
                let result = pump(
                    stream.as_mut(),
                    cfg,
                    hub,
                    stop,
                    &mut next_frame,
                    &mut last_read,
                    &timer,
                    &mut on_audio_flowing,
                );
                // Only a stream that worked for a while resets the backoff: a device that
                // opens and then fails at once must not be reopened twice a second forever.
                if next_frame - before >= u64::from(format.rate) {
                    backoff = BACKOFF_START;
                }
                match result {
                    Ok(()) => return,
                    Err(e) => e,
                }
            }
            Err(e) => e,
        };
        if !down {
            log::error!("microphone unavailable: {error}. Retrying in the background");
            report(
                status,
                DeviceStatus::Down {
                    device: cfg.device.clone(),
                    error: error.to_string(),
                },
            );
            down = true;
        } else {
            log::debug!("microphone still unavailable: {error}");
        }
        if sleep_unless_stopped(backoff, stop) {
            return;
        }
        backoff = next_backoff(backoff);
    }
}

/// Wall time between two chunks beyond their length that counts as lost audio: more than
/// the card's buffer (160 ms) can hold, so it is a reopen or an overrun, not jitter.
const LOST_AUDIO_AFTER: Duration = Duration::from_millis(250);

/// Reads chunks until `stop` (Ok) or a device error (Err). `on_audio_flowing` runs once,
/// when a second of audio has arrived: a device that opens, delivers a chunk and fails
/// again is one fault episode, not an Up/Down pair every retry.
///
/// `next_frame` numbers the frames subscribers get. Audio that never arrived — while the
/// microphone was being reopened, or lost to an overrun inside ALSA's recovery — is
/// counted in it too, from the wall time between chunks, so a recorder sees a gap in
/// `first_frame` instead of audio from either side of the outage joined up. The estimate
/// is good to about one device buffer. A source this thread paces itself loses nothing
/// when the thread is late (its audio waits in the file), so only a reopen counts there.
#[allow(clippy::too_many_arguments)]
fn pump(
    stream: &mut dyn super::pcm::CaptureStream,
    cfg: &CaptureConfig,
    hub: &CaptureHub,
    stop: &AtomicBool,
    next_frame: &mut u64,
    last_read: &mut Option<Duration>,
    timer: &dyn PaceTimer,
    on_audio_flowing: &mut dyn FnMut(),
) -> Result<(), AudioError> {
    let format = stream.format();
    let ch = usize::from(format.channels.max(1));
    let mut buf = vec![0i16; cfg.chunk_frames.max(1) * ch];
    let mut pacer = Pacer::new(cfg.pacing, stream.paced_by_device());
    let mut frames_this_open: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            continue;
        }
        let length = Duration::from_secs_f64(n as f64 / f64::from(format.rate.max(1)));
        let now = Instant::now();
        let read_at = timer.now();
        // A source this thread paces itself (a file, a pipe) keeps its audio while the thread
        // is late, so lateness there is not loss; across a reopen it always is.
        let late_means_lost = frames_this_open == 0 || pacer.paces() != Some(true);
        if let Some(last) = last_read.replace(read_at) {
            let missing = read_at.saturating_sub(last).saturating_sub(length);
            if late_means_lost && missing > LOST_AUDIO_AFTER {
                log::debug!(
                    "microphone: {:.0} ms of audio never arrived",
                    missing.as_secs_f64() * 1000.0
                );
                *next_frame += (missing.as_secs_f64() * f64::from(format.rate)) as u64;
            }
        }
        let rate = u64::from(format.rate.max(1));
        if frames_this_open < rate && frames_this_open + n as u64 >= rate {
            on_audio_flowing();
        }
        let samples: Arc<[i16]> = Arc::from(&buf[..n * ch]);
        hub.publish(AudioChunk {
            format,
            first_frame: *next_frame,
            captured_at: now.checked_sub(length).unwrap_or(now),
            samples,
        });
        *next_frame += n as u64;
        frames_this_open += n as u64;
        if let Some(wait) = pacer.after_read(frames_this_open, format.rate, timer.elapsed()) {
            if timer.sleep(wait, stop) {
                return Ok(());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock as _;

    fn chunk(first: u64, value: i16) -> AudioChunk {
        AudioChunk {
            captured_at: Instant::now(),
            format: PcmFormat {
                rate: 16000,
                channels: 1,
            },
            first_frame: first,
            samples: Arc::from(vec![value; 4]),
        }
    }

    #[test]
    fn full_subscriber_loses_only_its_own_chunks() {
        let hub = CaptureHub::new();
        let slow = hub.subscribe("slow", 1);
        let fast = hub.subscribe("fast", 8);
        for i in 0..5 {
            hub.publish(chunk(i * 4, i as i16));
        }
        assert_eq!(fast.receiver().len(), 5);
        assert_eq!(slow.receiver().len(), 1);
        assert_eq!(slow.dropped(), 4);
        assert_eq!(fast.dropped(), 0);
        // The slow one keeps the oldest chunk it had room for.
        assert_eq!(slow.receiver().try_recv().unwrap().first_frame, 0);
    }

    #[test]
    fn dropping_a_subscription_unsubscribes() {
        let hub = CaptureHub::new();
        let a = hub.subscribe("a", 2);
        {
            let _b = hub.subscribe("b", 2);
            assert_eq!(hub.subscriber_count(), 2);
        }
        assert_eq!(hub.subscriber_count(), 1);
        hub.publish(chunk(0, 1));
        assert_eq!(a.receiver().len(), 1);
    }

    #[test]
    fn pacing_never_runs_ahead_of_the_wall_clock() {
        // 1 s of audio read after 0.25 s: wait the remaining 0.75 s.
        assert_eq!(
            pace_delay(16000, 16000, Duration::from_millis(250)),
            Some(Duration::from_millis(750))
        );
        // Behind the clock (a real device): no waiting.
        assert_eq!(pace_delay(16000, 16000, Duration::from_millis(1200)), None);
        assert_eq!(pace_delay(16000, 16000, Duration::from_secs(1)), None);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let mut d = BACKOFF_START;
        let mut seen = vec![d];
        for _ in 0..6 {
            d = next_backoff(d);
            seen.push(d);
        }
        assert_eq!(seen[1], Duration::from_secs(1));
        assert_eq!(seen[4], BACKOFF_MAX);
        assert_eq!(*seen.last().unwrap(), BACKOFF_MAX);
    }

    /// A capture device with its own oscillator, `ppm` off the host's, simulated on a
    /// virtual clock: reads block (advance the clock) until a chunk exists, and a backlog
    /// larger than the 160 ms buffer is an overrun (ALSA then drops the buffered audio).
    struct DriftingMic {
        clock: crate::clock::ManualClock,
        rate: u32,
        ppm: f64,
        buffer_frames: u64,
        consumed: u64,
        overruns: Arc<AtomicU64>,
        run_for: Duration,
        stop: Arc<AtomicBool>,
        /// What it says about itself: `None`, like ALSA.
        says_paced: Option<bool>,
        /// A file, not a card: every read returns at once.
        instant: bool,
    }

    impl DriftingMic {
        fn frames_at(&self, t: Duration) -> u64 {
            (t.as_secs_f64() * f64::from(self.rate) * (1.0 + self.ppm * 1e-6)) as u64
        }
    }

    impl super::super::pcm::CaptureStream for DriftingMic {
        fn format(&self) -> PcmFormat {
            PcmFormat {
                rate: self.rate,
                channels: 1,
            }
        }
        fn paced_by_device(&self) -> Option<bool> {
            self.says_paced
        }
        fn read(&mut self, buf: &mut [i16]) -> Result<usize, AudioError> {
            let want = buf.len() as u64;
            if !self.instant {
                let produced = self.frames_at(self.clock.now());
                if produced - self.consumed > self.buffer_frames {
                    self.overruns.fetch_add(1, Ordering::Relaxed);
                    self.consumed = produced;
                }
                if produced - self.consumed < want {
                    let due = (self.consumed + want) as f64
                        / (f64::from(self.rate) * (1.0 + self.ppm * 1e-6));
                    let now = self.clock.now();
                    let until = Duration::from_secs_f64(due) + Duration::from_nanos(1);
                    self.clock.advance(until.saturating_sub(now));
                }
            }
            self.consumed += want;
            let enough = self.run_for.as_secs_f64() * f64::from(self.rate);
            if self.clock.now() >= self.run_for || self.consumed as f64 >= enough {
                self.stop.store(true, Ordering::Relaxed);
            }
            Ok(buf.len())
        }
    }

    struct SimTimer(crate::clock::ManualClock);

    impl PaceTimer for SimTimer {
        fn elapsed(&self) -> Duration {
            crate::clock::Clock::now(&self.0)
        }
        fn now(&self) -> Duration {
            crate::clock::Clock::now(&self.0)
        }
        fn sleep(&self, d: Duration, _stop: &AtomicBool) -> bool {
            self.0.advance(d);
            false
        }
    }

    /// The real read loop over `stream` in 960-frame chunks on the simulated `clock`, until
    /// `stop`; returns the frame count it numbered (audio delivered plus any gap it counted).
    fn pump_simulated(
        stream: &mut dyn crate::audio::pcm::CaptureStream,
        pacing: Pacing,
        clock: &crate::clock::ManualClock,
        stop: &AtomicBool,
    ) -> u64 {
        let cfg = CaptureConfig {
            device: "simulated".into(),
            format: stream.format(),
            chunk_frames: 960,
            pacing,
        };
        let mut next = 0;
        pump(
            stream,
            &cfg,
            &CaptureHub::new(),
            stop,
            &mut next,
            &mut None,
            &SimTimer(clock.clone()),
            &mut || {},
        )
        .unwrap();
        next
    }

    /// Runs the real read loop on a simulated device for `hours`; returns (overruns,
    /// simulated seconds, seconds of audio delivered).
    fn simulate(
        pacing: Pacing,
        ppm: f64,
        hours: f64,
        instant: bool,
        says: Option<bool>,
    ) -> (u64, f64, f64) {
        let clock = crate::clock::ManualClock::new();
        let stop = Arc::new(AtomicBool::new(false));
        let overruns = Arc::new(AtomicU64::new(0));
        let rate = 48_000;
        let mut mic = DriftingMic {
            clock: clock.clone(),
            rate,
            ppm,
            buffer_frames: u64::from(rate) * 160 / 1000,
            consumed: 0,
            overruns: overruns.clone(),
            run_for: Duration::from_secs_f64(hours * 3600.0),
            stop: stop.clone(),
            says_paced: says,
            instant,
        };
        let next = pump_simulated(&mut mic, pacing, &clock, &stop);
        let t = crate::clock::Clock::now(&clock).as_secs_f64();
        (
            overruns.load(Ordering::Relaxed),
            t,
            next as f64 / f64::from(rate),
        )
    }

    #[test]
    fn a_card_whose_clock_drifts_100_ppm_never_overruns_over_hours() {
        for ppm in [100.0, -100.0] {
            let (overruns, t, _) = simulate(Pacing::Auto, ppm, 3.0, false, None);
            assert!(t >= 0.999 * 3.0 * 3600.0, "simulated {t} s");
            assert_eq!(overruns, 0, "{ppm:+} ppm over 3 h");
        }
        // Pacing such a card to the host clock is what made it overrun (the test can fail).
        let (overruns, _, _) = simulate(Pacing::Always, 100.0, 3.0, false, None);
        println!("forced pacing at +100 ppm: {overruns} overrun(s) in 3 simulated hours");
        assert!(
            overruns >= 3,
            "forced pacing at +100 ppm: {overruns} overrun(s) in 3 h"
        );
    }

    /// A source that delivers at once (ALSA's file plugin) whose reader is descheduled for
    /// 600 ms after its 50th read, as a loaded machine does.
    struct StallingFile {
        clock: crate::clock::ManualClock,
        reads: u32,
        stop: Arc<AtomicBool>,
    }

    impl crate::audio::pcm::CaptureStream for StallingFile {
        fn format(&self) -> PcmFormat {
            PcmFormat {
                rate: 48_000,
                channels: 1,
            }
        }
        fn read(&mut self, buf: &mut [i16]) -> Result<usize, AudioError> {
            self.reads += 1;
            if self.reads == 50 {
                self.clock.advance(Duration::from_millis(600));
            }
            if self.reads == 200 {
                self.stop.store(true, Ordering::Relaxed);
            }
            Ok(buf.len())
        }
    }

    #[test]
    fn a_late_reader_of_a_self_paced_source_loses_no_frames() {
        let clock = crate::clock::ManualClock::new();
        let stop = Arc::new(AtomicBool::new(false));
        let mut file = StallingFile {
            clock: clock.clone(),
            reads: 0,
            stop: stop.clone(),
        };
        let next = pump_simulated(&mut file, Pacing::Auto, &clock, &stop);
        // Every frame numbered is a frame delivered: the stall left no invented gap (a
        // recorder would have filled one with silence in the middle of a clip).
        assert_eq!(next, 200 * 960);
    }

    #[test]
    fn a_source_that_delivers_at_once_is_paced_to_real_time() {
        // Like ALSA's file plugin: says nothing about itself, reads return at once.
        let (_, t, audio) = simulate(Pacing::Auto, 0.0, 60.0 / 3600.0, true, None);
        assert!(audio >= 60.0, "{audio} s of audio");
        assert!((t - audio).abs() < 0.1, "{audio} s of audio took {t} s");
        // `pace_capture = false` reads it as fast as it comes.
        let (_, t, audio) = simulate(Pacing::Never, 0.0, 0.01, true, Some(false));
        assert!(audio >= 36.0 && t == 0.0, "{audio} s of audio took {t} s");
    }

    #[test]
    fn pacing_follows_what_the_stream_says_about_itself() {
        assert_eq!(Pacer::new(Pacing::Auto, Some(false)).paces(), Some(true));
        assert_eq!(Pacer::new(Pacing::Auto, Some(true)).paces(), Some(false));
        assert_eq!(Pacer::new(Pacing::Auto, None).paces(), None);
        assert_eq!(Pacer::new(Pacing::Never, Some(false)).paces(), Some(false));
        assert_eq!(Pacer::new(Pacing::Always, Some(true)).paces(), Some(true));
    }

    #[test]
    fn pace_capture_reads_auto_true_false_and_names_the_fix_otherwise() {
        use crate::config::Config;
        use std::path::Path;
        let parse = |v: &str| {
            Config::parse(
                &format!("[audio]\npace_capture = {v}\n"),
                Path::new("c.toml"),
                Path::new(""),
            )
        };
        assert_eq!(Config::default().audio.pace_capture, Pacing::Auto);
        assert_eq!(parse("\"auto\"").unwrap().audio.pace_capture, Pacing::Auto);
        assert_eq!(parse("true").unwrap().audio.pace_capture, Pacing::Always);
        assert_eq!(parse("false").unwrap().audio.pace_capture, Pacing::Never);
        for bad in ["\"sometimes\"", "3"] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.contains("pace_capture") && e.contains("\"auto\""), "{e}");
        }
        // Written back as it is read.
        let text = toml::to_string(&Config::default()).unwrap();
        assert!(text.contains("pace_capture = \"auto\""), "{text}");
    }

    #[test]
    fn audio_lost_while_the_microphone_was_reopened_leaves_a_gap_in_the_frame_count() {
        let backend = crate::audio::memory::MemoryBackend::new();
        let format = PcmFormat {
            rate: 8000,
            channels: 1,
        };
        let hub = CaptureHub::new();
        let sub = hub.subscribe("test", 1000);
        let stop = Arc::new(AtomicBool::new(false));
        let (status_tx, status_rx) = crossbeam_channel::unbounded();
        let thread = spawn_capture(
            Arc::new(backend.clone()),
            CaptureConfig {
                device: "mem".into(),
                format,
                chunk_frames: 160,
                pacing: Pacing::Never,
            },
            hub.clone(),
            status_tx,
            stop.clone(),
        )
        .unwrap();
        // Silence in real time (the memory device's clock), then the microphone is pulled
        // and comes back after the capture thread's first back-off (0.5 s).
        let first = sub.receiver().recv_timeout(Duration::from_secs(5)).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        backend.disconnect_capture();
        let down = status_rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(matches!(down, DeviceStatus::Down { .. }), "{down:?}");
        // Walk the chunks: the frame count must jump by about the outage, not run on.
        let mut expected = first.first_frame + first.frames() as u64;
        let mut jump = 0;
        let deadline = Instant::now() + Duration::from_secs(10);
        while jump == 0 && Instant::now() < deadline {
            let c = sub.receiver().recv_timeout(Duration::from_secs(5)).unwrap();
            jump = c.first_frame - expected;
            expected = c.first_frame + c.frames() as u64;
        }
        stop.store(true, Ordering::SeqCst);
        thread.join().unwrap();
        let ms = jump * 1000 / 8000;
        assert!(
            (300..=3000).contains(&ms),
            "the reopen should leave a gap of about 0.5 s, got {ms} ms"
        );
    }
}
