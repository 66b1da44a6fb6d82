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
    pub fn publish(&self, chunk: AudioChunk) {
        let mut inner = self.lock();
        inner.subscribers.retain_mut(|sub| {
            match sub.tx.try_send(chunk.clone()) {
                Ok(()) => {
                    if sub.episode > 0 {
                        log::info!(
                            "audio subscriber '{}' is keeping up again after losing {} chunk(s)",
                            sub.name,
                            sub.episode
                        );
                        sub.episode = 0;
                    }
                    true
                }
                Err(TrySendError::Full(_)) => {
                    sub.dropped.fetch_add(1, Ordering::Relaxed);
                    if sub.episode == 0 {
                        log::warn!(
                            "audio subscriber '{}' is not keeping up; dropping its chunks until it catches up",
                            sub.name
                        );
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

/// What the capture thread opens and how it reads.
#[derive(Clone, Debug)]
pub struct CaptureConfig {
    /// ALSA PCM name, e.g. `default`, `hw:Zero`, `plughw:CARD=Zero`.
    pub device: String,
    /// Format to open the device in; it must be supported exactly (no silent conversion).
    pub format: PcmFormat,
    /// Frames per chunk handed to subscribers (e.g. 960 = 20 ms at 48 kHz).
    pub chunk_frames: usize,
    /// Never run ahead of the wall clock. Needed for ALSA's `file`/`infile` plugin, whose
    /// reads return at once; harmless on real hardware, where reads block anyway.
    pub pace_realtime: bool,
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

fn run_capture(
    backend: &dyn AudioBackend,
    cfg: &CaptureConfig,
    hub: &CaptureHub,
    status: &Sender<DeviceStatus>,
    stop: &AtomicBool,
) {
    let mut backoff = BACKOFF_START;
    let mut down = false;
    let mut next_frame: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
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
                report(
                    status,
                    DeviceStatus::Up {
                        device: cfg.device.clone(),
                        format,
                    },
                );
                down = false;
                let before = next_frame;
                let result = pump(stream.as_mut(), cfg, hub, stop, &mut next_frame);
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

/// Reads chunks until `stop` (Ok) or a device error (Err).
fn pump(
    stream: &mut dyn super::pcm::CaptureStream,
    cfg: &CaptureConfig,
    hub: &CaptureHub,
    stop: &AtomicBool,
    next_frame: &mut u64,
) -> Result<(), AudioError> {
    let format = stream.format();
    let ch = usize::from(format.channels.max(1));
    let mut buf = vec![0i16; cfg.chunk_frames.max(1) * ch];
    let started = Instant::now();
    let mut frames_this_open: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            continue;
        }
        let samples: Arc<[i16]> = Arc::from(&buf[..n * ch]);
        hub.publish(AudioChunk {
            format,
            first_frame: *next_frame,
            samples,
        });
        *next_frame += n as u64;
        frames_this_open += n as u64;
        if cfg.pace_realtime {
            if let Some(wait) = pace_delay(frames_this_open, format.rate, started.elapsed()) {
                if sleep_unless_stopped(wait, stop) {
                    return Ok(());
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(first: u64, value: i16) -> AudioChunk {
        AudioChunk {
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
}
