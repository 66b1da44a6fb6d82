//! The microphone missing at start, unplugged mid-run, and gone for a long while, under the
//! whole running toy (in process, memory audio backend, virtual clock):
//! * each episode is logged as an error exactly once (retries only at debug level), and
//!   the screen shows the fault until the device is back;
//! * the keyword recognizer keeps its one subscription across reopens, and the recorder
//!   records again after each episode — no restart.
//!
//! * a missing speaker is one error too, however many presses fail, and the first press
//!   after it is back plays.
//!
//! (Device-level reopening, busy/missing/lost, is in tests/alsa_capture.rs and
//! tests/alsa_player.rs; this file checks what the rest of the program sees.)

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chatterbox::audio::memory::{FailKind, MemoryBackend};
use chatterbox::clock::ManualClock;
use chatterbox::config::Config;
use chatterbox::hw::leds::RecordedLeds;
use chatterbox::runtime::sim::{describe, SimButton, SimCommand, SimDriver};
use chatterbox::runtime::{self, Hardware, Options};

use common::log_capture::{count, init as init_log};

/// Waits (up to a minute) until `needle` has been logged at `level` `n` times.
fn wait_logged(level: log::Level, needle: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(level, needle) < n {
        assert!(
            Instant::now() < deadline,
            "never logged {needle:?} {n} times; log:\n{:#?}",
            common::log_capture::all()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// 16 kHz mono on the in-memory backend, recordings under `dir`, the repository's sounds.
fn memory_config(dir: &Path, capture: &str, playback: &str) -> Config {
    let mut cfg = Config::default();
    cfg.audio.capture_device = capture.into();
    cfg.audio.playback_device = playback.into();
    cfg.audio.rate = 16_000;
    cfg.audio.channels = 1;
    cfg.library.recordings_dir = dir.join("rec");
    cfg.library.sounds_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sounds");
    cfg
}

#[test]
fn each_mic_episode_is_logged_once_and_everything_resubscribes_without_a_restart() {
    init_log();
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cfg = memory_config(dir.path(), "mem", "mem");
    cfg.audio.pace_capture = chatterbox::audio::capture::Pacing::Never;
    cfg.button.record_seconds = 0.5;
    cfg.keywords.model = root.join("models/kws.toml");

    let mem = MemoryBackend::new();
    // Missing at start: two failed opens (0.5 s + 1 s of backoff), then it appears.
    mem.fail_capture_opens(2, FailKind::NotFound);
    let screens = Arc::new(Mutex::new(Vec::<String>::new()));
    let shown = screens.clone();
    let clock = ManualClock::new();
    let app = runtime::start(
        &cfg,
        Hardware {
            audio: Arc::new(mem.clone()),
            button: None,
            leds: Box::new(RecordedLeds::default()),
            display: Box::new(move |s| {
                shown.lock().unwrap().push(describe(s));
                Ok(())
            }),
            display_refresh: None,
            clock: Arc::new(clock.clone()),
        },
        Options { seed: Some(1) },
    )
    .unwrap();
    assert_eq!(
        app.hub().subscriber_count(),
        1,
        "the keyword recognizer is subscribed (models/kws.toml loads)"
    );
    let (_tx, interrupt) = crossbeam_channel::unbounded();
    let mut driver = SimDriver::new(app.control(), SimButton::Virtual(clock.clone()), interrupt);
    let record = |driver: &mut SimDriver| {
        let before = driver.settled().unwrap().clips.len();
        driver
            .run(&SimCommand::Hold(Duration::from_secs(12)))
            .unwrap();
        let after = driver.settled().unwrap().clips.len();
        assert_eq!(
            after,
            before + 1,
            "recorded; screens: {:?}",
            screens.lock().unwrap()
        );
    };

    // Episode 1: missing at start.
    wait_logged(log::Level::Info, "microphone 'mem' open", 1);
    assert_eq!(count(log::Level::Error, "microphone unavailable"), 1);
    assert!(count(log::Level::Debug, "microphone still unavailable") >= 1);
    record(&mut driver);
    // The capture backoff starts again from 0.5 s only after a second of good audio
    // (a device that fails right after opening is not hammered); give it that second.
    std::thread::sleep(Duration::from_millis(1200));

    // Episode 2: unplugged mid-run, back at the first retry.
    mem.disconnect_capture();
    wait_logged(log::Level::Info, "microphone 'mem' open", 2);
    assert_eq!(count(log::Level::Error, "microphone unavailable"), 2);
    record(&mut driver);
    std::thread::sleep(Duration::from_millis(1200));

    // Episode 3: unplugged and gone for three retries (0.5 + 1 + 2 s).
    mem.fail_capture_opens(3, FailKind::Busy);
    mem.disconnect_capture();
    wait_logged(log::Level::Info, "microphone 'mem' open", 3);
    assert_eq!(
        count(log::Level::Error, "microphone unavailable"),
        3,
        "one error per episode, however many retries"
    );
    assert!(count(log::Level::Debug, "microphone still unavailable") >= 3);
    record(&mut driver);
    // The fault clears once a second of audio has flowed (a device that delivers a chunk
    // and fails again stays one episode).
    std::thread::sleep(Duration::from_millis(1200));

    // The recognizer kept its subscription through all of it; the recorder let go of its.
    assert_eq!(app.hub().subscriber_count(), 1);
    // The screen said why while the mic was away, and went back to normal after.
    driver.run(&SimCommand::Settle).unwrap();
    let seen = screens.lock().unwrap().clone();
    assert!(
        seen.iter().any(|s| s.starts_with("No microphone")),
        "{seen:?}"
    );
    app.shutdown();
    let last = screens.lock().unwrap().last().cloned().unwrap_or_default();
    assert!(!last.starts_with("No microphone"), "fault cleared: {last}");
    println!(
        "audio faults: 3 mic episodes (missing at start, unplugged, gone for 3 retries): {} error lines, {} debug retries, 3 recordings after recovery",
        count(log::Level::Error, "microphone unavailable"),
        count(log::Level::Debug, "microphone still unavailable"),
    );
}

#[test]
fn a_missing_speaker_is_one_error_however_many_presses_fail() {
    init_log();
    let dir = tempfile::tempdir().unwrap();
    // Device names of their own: the other test counts "microphone 'mem' open".
    let mut cfg = memory_config(dir.path(), "mem2", "spk2");
    cfg.keywords.enabled = false;
    let mem = MemoryBackend::new();
    // The open at start and the opens of the next three presses fail.
    mem.fail_playback_opens(4, FailKind::NotFound);
    let clock = ManualClock::new();
    let app = runtime::start(
        &cfg,
        Hardware {
            audio: Arc::new(mem.clone()),
            button: None,
            leds: Box::new(RecordedLeds::default()),
            display: Box::new(|_| Ok(())),
            display_refresh: None,
            clock: Arc::new(clock.clone()),
        },
        Options { seed: Some(1) },
    )
    .unwrap();
    let (_tx, interrupt) = crossbeam_channel::unbounded();
    let mut driver = SimDriver::new(app.control(), SimButton::Virtual(clock.clone()), interrupt);
    for _ in 0..4 {
        for cmd in [SimCommand::Press, SimCommand::Release, SimCommand::Settle] {
            driver.run(&cmd).unwrap();
        }
        driver
            .run(&SimCommand::Wait(Duration::from_secs(5)))
            .unwrap();
    }
    assert_eq!(
        mem.playback_opens(),
        1,
        "the fourth press opened the speaker"
    );
    assert!(mem.played_len() > 0, "and played the empty-folder cue");
    app.shutdown();
    let needle = "speaker unavailable: audio device 'spk2'";
    assert_eq!(
        count(log::Level::Error, needle),
        1,
        "{:#?}",
        common::log_capture::all()
    );
    assert_eq!(
        count(
            log::Level::Debug,
            "speaker still unavailable: audio device 'spk2'"
        ),
        3
    );
}
