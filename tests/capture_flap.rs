//! A microphone that opens and then delivers nothing, seen from the capture thread: one
//! Down report and one error line per episode, no Up until audio arrives. In its own test
//! binary because it counts process-wide log lines (tests/audio_faults.rs counts its own).

mod common;

use std::sync::Arc;
use std::time::Duration;

use chatterbox::audio::memory::MemoryBackend;

/// A microphone that opens but delivers nothing (an unclocked codec: every read times
/// out) is one episode: one Down, one error line, no Up until audio really arrives.
#[test]
fn a_mic_that_opens_then_times_out_does_not_flap() {
    use chatterbox::audio::capture::{spawn_capture, CaptureConfig, CaptureHub, Pacing};
    use chatterbox::audio::pcm::{DeviceStatus, PcmFormat};
    use std::sync::atomic::{AtomicBool, Ordering};
    common::log_capture::init();
    let mem = MemoryBackend::new();
    mem.stall_capture_opens(2);
    let (status_tx, status_rx) = crossbeam_channel::unbounded();
    let stop = Arc::new(AtomicBool::new(false));
    let hub = CaptureHub::new();
    let sub = hub.subscribe("test", 100);
    let format = PcmFormat {
        rate: 16_000,
        channels: 1,
    };
    let capture = spawn_capture(
        Arc::new(mem.clone()),
        CaptureConfig {
            device: "stalling-mic".into(),
            format,
            chunk_frames: 320,
            pacing: Pacing::Never,
        },
        hub.clone(),
        status_tx,
        stop.clone(),
    )
    .unwrap();
    // Two stalled opens (0.5 s + 1 s of backoff), then audio; the episode ends once a
    // second of it has flowed.
    let mut frames = 0;
    while frames < 16_000 + 320 {
        frames += sub
            .receiver()
            .recv_timeout(Duration::from_secs(10))
            .expect("audio once the device works")
            .frames();
    }
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::SeqCst);
    capture.join().unwrap();
    assert_eq!(mem.capture_opens(), 3);
    let reports: Vec<&'static str> = status_rx
        .try_iter()
        .map(|s| match s {
            DeviceStatus::Up { .. } => "up",
            DeviceStatus::Down { .. } => "down",
        })
        .collect();
    assert_eq!(reports, ["down", "up"]);
    let errors = common::log_capture::count(log::Level::Error, "stalling-mic");
    assert_eq!(errors, 1, "one error line for the episode");
}

/// A microphone that delivers a chunk and then fails, again and again (a loose USB plug),
/// is one episode too: no Up until audio has flowed for a second.
#[test]
fn a_mic_that_fails_right_after_its_first_chunk_does_not_flap() {
    use chatterbox::audio::capture::{spawn_capture, CaptureConfig, CaptureHub, Pacing};
    use chatterbox::audio::pcm::{DeviceStatus, PcmFormat};
    use std::sync::atomic::{AtomicBool, Ordering};
    let mem = MemoryBackend::new();
    let (status_tx, status_rx) = crossbeam_channel::unbounded();
    let stop = Arc::new(AtomicBool::new(false));
    let hub = CaptureHub::new();
    let sub = hub.subscribe("test", 1000);
    let capture = spawn_capture(
        Arc::new(mem.clone()),
        CaptureConfig {
            device: "loose-mic".into(),
            format: PcmFormat {
                rate: 16_000,
                channels: 1,
            },
            chunk_frames: 320,
            pacing: Pacing::Never,
        },
        hub.clone(),
        status_tx,
        stop.clone(),
    )
    .unwrap();
    // Three opens that each deliver one chunk (silence in real time) and then lose the mic.
    for _ in 0..3 {
        sub.receiver()
            .recv_timeout(Duration::from_secs(10))
            .expect("a chunk");
        mem.disconnect_capture();
        while sub.receiver().try_recv().is_ok() {}
        std::thread::sleep(Duration::from_millis(100));
        while sub.receiver().try_recv().is_ok() {}
    }
    stop.store(true, Ordering::SeqCst);
    capture.join().unwrap();
    assert!(mem.capture_opens() >= 3);
    let reports: Vec<&'static str> = status_rx
        .try_iter()
        .map(|s| match s {
            DeviceStatus::Up { .. } => "up",
            DeviceStatus::Down { .. } => "down",
        })
        .collect();
    assert_eq!(reports, ["down"], "one episode, no flapping");
}
