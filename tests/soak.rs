//! Soak: hours of simulated use through the real threads (controller, capture, recorder,
//! player, LEDs, display) on a virtual clock, in process.
//!
//! Random presses, holds that record, rare holds that erase, voice commands (as the
//! recognizer would send them), silences, and now and then the microphone unplugged and
//! back. The audio backend is synthetic and never waits for real time, so an hour of use
//! takes seconds. At the end:
//! * no thread panicked (a panic hook counts every panic in the process);
//! * every thread still does its job: a final recording lands in the folder (capture +
//!   recorder), a final press plays (player), screens and LED changes keep arriving;
//! * no capture subscription leaked (the hub is back to its idle subscriber count);
//! * memory is flat: resident set size after warm-up vs at the end (a queue that backs up
//!   or a leak shows up here), printed, and bounded by a generous margin;
//! * the library is consistent: the controller's clip list is exactly the `*.wav` files
//!   in the folder, each a complete 5 s clip, and no temp file is left.
//!
//! Length: 2 simulated hours in `cargo test`; `CHATTERBOX_SOAK_HOURS=24` for the long run
//! (`.ci/run`). The seed is printed; `CHATTERBOX_SOAK_SEED` repeats a run.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chatterbox::audio::pcm::{AudioBackend, AudioError, CaptureStream, PcmFormat, PlaybackStream};
use chatterbox::clock::{Clock, ManualClock};
use chatterbox::config::Config;
use chatterbox::hw::leds::{Led, LedPins};
use chatterbox::runtime::sim::{SimButton, SimCommand, SimDriver};
use chatterbox::runtime::{self, Hardware, Options};
use rand::{Rng, SeedableRng};

const RATE: u32 = 16_000;

#[derive(Default)]
struct Counters {
    capture_reads: AtomicU64,
    played_samples: AtomicU64,
    screens: AtomicU64,
    led_changes: AtomicU64,
    /// Set: the open capture stream fails its next read (the mic was pulled).
    unplug: AtomicBool,
}

/// Capture: a tone, as fast as asked (with a 1 ms pause per read so it does not spin a
/// core). Playback: counted and discarded.
#[derive(Clone, Default)]
struct SoakBackend(Arc<Counters>);

struct Mic {
    c: Arc<Counters>,
    format: PcmFormat,
    phase: u64,
}

impl CaptureStream for Mic {
    fn format(&self) -> PcmFormat {
        self.format
    }
    fn read(&mut self, buf: &mut [i16]) -> Result<usize, AudioError> {
        if self.c.unplug.swap(false, Ordering::SeqCst) {
            return Err(AudioError::Disconnected {
                device: "soak".into(),
                detail: "simulated: unplugged".into(),
            });
        }
        std::thread::sleep(Duration::from_millis(1));
        for s in buf.iter_mut() {
            self.phase += 1;
            *s = ((self.phase as f32 * 0.0575).sin() * 8000.0) as i16;
        }
        self.c.capture_reads.fetch_add(1, Ordering::Relaxed);
        Ok(buf.len() / usize::from(self.format.channels))
    }
}

struct Speaker {
    c: Arc<Counters>,
    format: PcmFormat,
}

impl PlaybackStream for Speaker {
    fn format(&self) -> PcmFormat {
        self.format
    }
    fn write(&mut self, samples: &[i16]) -> Result<(), AudioError> {
        self.c
            .played_samples
            .fetch_add(samples.len() as u64, Ordering::Relaxed);
        Ok(())
    }
    fn drain(&mut self) -> Result<(), AudioError> {
        Ok(())
    }
    fn stop(&mut self) -> Result<(), AudioError> {
        Ok(())
    }
}

impl AudioBackend for SoakBackend {
    fn open_capture(
        &self,
        _device: &str,
        format: PcmFormat,
    ) -> Result<Box<dyn CaptureStream>, AudioError> {
        Ok(Box::new(Mic {
            c: self.0.clone(),
            format,
            phase: 0,
        }))
    }
    fn open_playback(
        &self,
        _device: &str,
        preferred: PcmFormat,
    ) -> Result<Box<dyn PlaybackStream>, AudioError> {
        Ok(Box::new(Speaker {
            c: self.0.clone(),
            format: preferred,
        }))
    }
}

struct CountingLeds(Arc<Counters>);

impl LedPins for CountingLeds {
    fn set(&mut self, _led: Led, _on: bool) -> Result<(), chatterbox::hw::HwError> {
        self.0.led_changes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

static PANICS: AtomicUsize = AtomicUsize::new(0);

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// Clips in the folder, after checking each is a complete clip and no temp file is left.
fn folder_clips(dir: &Path, seconds: f32) -> Vec<String> {
    let mut names = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        assert!(!name.ends_with(".part"), "temp file left: {name}");
        let r = hound::WavReader::open(e.path()).expect("a clip is a WAV");
        assert_eq!(
            r.len() as usize,
            (seconds * RATE as f32) as usize,
            "{name} is not a complete clip"
        );
        names.push(name);
    }
    names.sort();
    names
}

#[test]
fn hours_of_random_use_leave_every_thread_working_and_memory_flat() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        default_hook(info);
    }));
    let hours: f64 = std::env::var("CHATTERBOX_SOAK_HOURS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2.0);
    let seed: u64 = std::env::var("CHATTERBOX_SOAK_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);

    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::default();
    cfg.audio.capture_device = "soak".into();
    cfg.audio.playback_device = "soak".into();
    cfg.audio.rate = RATE;
    cfg.audio.channels = 1;
    cfg.audio.pace_capture = chatterbox::audio::capture::Pacing::Never;
    cfg.keywords.enabled = false;
    cfg.library.recordings_dir = dir.path().join("rec");
    cfg.library.sounds_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sounds");
    let record_seconds = cfg.button.record_seconds;

    let backend = SoakBackend::default();
    let c = backend.0.clone();
    let clock = ManualClock::new();
    let screens = c.clone();
    let app = runtime::start(
        &cfg,
        Hardware {
            audio: Arc::new(backend),
            button: None,
            leds: Box::new(CountingLeds(c.clone())),
            display: Box::new(move |_| {
                screens.screens.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }),
            display_refresh: None,
            clock: Arc::new(clock.clone()),
        },
        Options { seed: Some(seed) },
    )
    .expect("start");
    let idle_subscribers = app.hub().subscriber_count();
    let (_interrupt_tx, interrupt) = crossbeam_channel::unbounded();
    let mut driver = SimDriver::new(app.control(), SimButton::Virtual(clock.clone()), interrupt);
    let words = [
        "go", "stop", "up", "down", "left", "right", "yes", "no", "cat", "house",
    ];

    let end = secs(hours * 3600.0);
    let warm_up = secs(600.0);
    let mut rss_start = None;
    let mut rss_peak = 0;
    let mut rss_hourly = Vec::new();
    let (mut events, mut records, mut erases, mut unplugs) = (0u64, 0u64, 0u64, 0u64);
    let t0 = Instant::now();
    while clock.now() < end {
        let roll = rng.random_range(0..100);
        let cmds: Vec<SimCommand> = match roll {
            0..=34 => vec![
                SimCommand::Press,
                SimCommand::Wait(secs(rng.random_range(0.05..2.0))),
                SimCommand::Release,
            ],
            35..=44 => {
                records += 1;
                vec![SimCommand::Hold(secs(rng.random_range(10.0..19.5)))]
            }
            45..=46 => {
                erases += 1;
                vec![SimCommand::Hold(secs(rng.random_range(20.5..40.0)))]
            }
            47..=71 => vec![SimCommand::Say {
                word: words[rng.random_range(0..words.len())].to_string(),
                confidence: rng.random_range(0.5..1.0),
            }],
            72 => {
                unplugs += 1;
                c.unplug.store(true, Ordering::SeqCst);
                vec![SimCommand::Wait(secs(rng.random_range(1.0..30.0)))]
            }
            _ => vec![SimCommand::Wait(secs(rng.random_range(1.0..120.0)))],
        };
        for cmd in cmds.iter().chain([&SimCommand::Settle]) {
            driver.run(cmd).expect("the toy answers");
        }
        events += 1;
        if rss_start.is_none() && clock.now() >= warm_up {
            rss_start = Some(rss_kib());
        }
        rss_peak = rss_peak.max(rss_kib());
        if clock.now() >= secs(3600.0 * (rss_hourly.len() + 1) as f64) {
            rss_hourly.push(rss_kib());
        }
    }
    let rss_end = rss_kib();
    let rss_start = rss_start.unwrap_or(rss_end);

    // Every thread still does its job.
    let (screens0, leds0, played0) = (
        c.screens.load(Ordering::Relaxed),
        c.led_changes.load(Ordering::Relaxed),
        c.played_samples.load(Ordering::Relaxed),
    );
    let before = driver.settled().unwrap().clips.len();
    driver.run(&SimCommand::Hold(secs(12.0))).unwrap();
    let status = driver.settled().unwrap();
    assert_eq!(status.clips.len(), before + 1, "the final recording landed");
    driver.run(&SimCommand::Press).unwrap();
    driver.run(&SimCommand::Release).unwrap();
    let status = driver.settled().unwrap();
    assert!(
        c.played_samples.load(Ordering::Relaxed) > played0,
        "player alive"
    );
    assert_eq!(
        app.hub().subscriber_count(),
        idle_subscribers,
        "no leaked subscription"
    );
    let folder = folder_clips(&dir.path().join("rec"), record_seconds);
    assert_eq!(status.clips, folder, "controller and folder agree");
    let real = t0.elapsed();
    app.shutdown();
    // Display and LED threads drain their queues up to shutdown.
    assert!(
        c.screens.load(Ordering::Relaxed) > screens0,
        "display thread alive"
    );
    assert!(
        c.led_changes.load(Ordering::Relaxed) > leds0,
        "LED thread alive"
    );
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "a thread panicked");

    println!(
        "soak: {hours} simulated h (seed {seed}) in {:.0} s real: {events} events \
         ({records} record holds, {erases} erase holds, {unplugs} mic unplugs), \
         {} capture reads, {} samples played, {} screens, {} LED changes, {} clips at the end; \
         RSS after 10 min warm-up {rss_start} KiB, end {rss_end} KiB, peak {rss_peak} KiB, \
         at each simulated hour {rss_hourly:?}; 0 panics",
        real.as_secs_f64(),
        c.capture_reads.load(Ordering::Relaxed),
        c.played_samples.load(Ordering::Relaxed),
        c.screens.load(Ordering::Relaxed),
        c.led_changes.load(Ordering::Relaxed),
        folder.len(),
    );
    // Flat: a leak of even a few hundred bytes per event over thousands of events, or a
    // queue that backs up with audio chunks, would exceed this.
    assert!(
        rss_end <= rss_start + 16 * 1024,
        "memory grew from {rss_start} KiB to {rss_end} KiB"
    );
}
