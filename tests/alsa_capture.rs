//! The capture thread and its fan-out: through ALSA's file plugin, and through the memory
//! backend for device failures (missing, busy, unplugged).
mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chatterbox::audio::alsa_backend::AlsaBackend;
use chatterbox::audio::capture::{spawn_capture, CaptureConfig, CaptureHub, Subscription};
use chatterbox::audio::memory::{FailKind, MemoryBackend};
use chatterbox::audio::pcm::DeviceStatus;
use chatterbox::audio::{AudioBackend, PcmFormat};
use common::alsa::{ramp_i16, AlsaSandbox};
use crossbeam_channel::Receiver;

/// Generous guard against a hung thread; never a performance assertion.
const GUARD: Duration = Duration::from_secs(20);

const MONO16: PcmFormat = PcmFormat {
    rate: 16000,
    channels: 1,
};

/// Collects `samples` samples from a subscription, checking chunks are contiguous.
fn collect(sub: &Subscription, samples: usize) -> Vec<i16> {
    let mut got = Vec::new();
    let mut next_frame = None;
    while got.len() < samples {
        let chunk = sub
            .receiver()
            .recv_timeout(GUARD)
            .expect("no audio from the capture thread");
        if let Some(expected) = next_frame {
            assert_eq!(chunk.first_frame, expected, "chunks must be contiguous");
        }
        next_frame = Some(chunk.first_frame + chunk.frames() as u64);
        got.extend_from_slice(&chunk.samples);
    }
    got.truncate(samples);
    got
}

fn next_status(rx: &Receiver<DeviceStatus>) -> DeviceStatus {
    rx.recv_timeout(GUARD).expect("no device status report")
}

struct Running {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    fn start(
        backend: Arc<dyn AudioBackend>,
        cfg: CaptureConfig,
        hub: &CaptureHub,
    ) -> (Self, Receiver<DeviceStatus>) {
        let (tx, rx) = crossbeam_channel::unbounded();
        let stop = Arc::new(AtomicBool::new(false));
        let handle = spawn_capture(backend, cfg, hub.clone(), tx, stop.clone()).unwrap();
        (
            Self {
                stop,
                handle: Some(handle),
            },
            rx,
        )
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            h.join().expect("capture thread panicked");
        }
    }
}

fn cfg(device: &str, format: PcmFormat, chunk_frames: usize) -> CaptureConfig {
    CaptureConfig {
        device: device.into(),
        format,
        chunk_frames,
        pacing: chatterbox::audio::capture::Pacing::Never,
    }
}

#[test]
fn alsa_capture_fans_out_identical_data_and_a_stalled_subscriber_blocks_nobody() {
    let sb = AlsaSandbox::shared();
    let data = ramp_i16(16000); // 1 s at 16 kHz mono
    sb.add_mic("t_capture_mic", &data).unwrap();
    let hub = CaptureHub::new();
    // The file plugin is not paced: the thread runs far ahead of us, so give the readers
    // room for the whole clip (the overflow beyond it is dropped, which is fine).
    let a = hub.subscribe("recognizer", 200);
    let b = hub.subscribe("recorder", 200);
    let stalled = hub.subscribe("stalled", 1);
    let (run, status) = Running::start(
        Arc::new(AlsaBackend),
        cfg("t_capture_mic", MONO16, 320),
        &hub,
    );
    assert_eq!(
        next_status(&status),
        DeviceStatus::Up {
            device: "t_capture_mic".into(),
            format: MONO16
        }
    );
    let got_a = collect(&a, data.len());
    let got_b = collect(&b, data.len());
    assert_eq!(got_a, data, "subscriber A must get exactly the fed samples");
    assert_eq!(got_b, data, "subscriber B must get the same samples");
    // Never read: it kept one chunk and lost the rest, counted.
    assert!(stalled.dropped() >= 49, "dropped {}", stalled.dropped());
    drop(run); // joins: the thread honours the stop flag
}

#[test]
fn capture_reopens_after_missing_busy_and_unplugged_device() {
    let mem = MemoryBackend::new();
    mem.fail_capture_opens(1, FailKind::NotFound);
    mem.fail_capture_opens(1, FailKind::Busy);
    let hub = CaptureHub::new();
    let sub = hub.subscribe("recognizer", 1000);
    let (run, status) = Running::start(Arc::new(mem.clone()), cfg("memmic", MONO16, 160), &hub);

    // Down is reported once for the whole episode (two failed opens), then Up.
    match next_status(&status) {
        DeviceStatus::Down { device, error } => {
            assert_eq!(device, "memmic");
            assert!(error.contains("not found"), "{error}");
        }
        other => panic!("expected Down, got {other:?}"),
    }
    assert!(matches!(next_status(&status), DeviceStatus::Up { .. }));
    assert_eq!(mem.capture_opens(), 1);

    // Audio flows to the subscriber that was there before the device came up.
    let marker: Vec<i16> = (1..=480).collect();
    mem.feed_capture(&marker);
    wait_for_marker(&sub, &marker);

    // Unplug: Down, reopen, Up; the same subscription keeps receiving.
    mem.disconnect_capture();
    match next_status(&status) {
        DeviceStatus::Down { error, .. } => assert!(error.contains("lost"), "{error}"),
        other => panic!("expected Down, got {other:?}"),
    }
    assert!(matches!(next_status(&status), DeviceStatus::Up { .. }));
    let marker2: Vec<i16> = (1000..1480).collect();
    mem.feed_capture(&marker2);
    wait_for_marker(&sub, &marker2);
    assert_eq!(mem.capture_opens(), 2);
    drop(run);
}

/// Reads (skipping silence) until `marker` has been seen, contiguously.
fn wait_for_marker(sub: &Subscription, marker: &[i16]) {
    let mut seen: Vec<i16> = Vec::new();
    loop {
        let chunk = sub
            .receiver()
            .recv_timeout(GUARD)
            .expect("marker never arrived");
        seen.extend(chunk.samples.iter().copied().filter(|&s| s != 0));
        if seen.len() >= marker.len() {
            assert_eq!(&seen[..marker.len()], marker);
            return;
        }
    }
}

#[test]
fn unsupported_format_is_reported_down_with_what_the_mic_supports() {
    let mem = MemoryBackend::new();
    mem.set_capture_formats(vec![MONO16]);
    let hub = CaptureHub::new();
    let fmt48 = PcmFormat {
        rate: 48000,
        channels: 2,
    };
    let (run, status) = Running::start(Arc::new(mem), cfg("mic16k", fmt48, 960), &hub);
    match next_status(&status) {
        DeviceStatus::Down { error, .. } => {
            assert!(error.contains("cannot do 48000 Hz"), "{error}");
            assert!(error.contains("16000 Hz (1 ch)"), "{error}");
        }
        other => panic!("expected Down, got {other:?}"),
    }
    drop(run); // stop is honoured while waiting to retry
}

#[test]
fn a_late_subscriber_only_gets_audio_from_when_it_subscribed() {
    let mem = MemoryBackend::new();
    let hub = CaptureHub::new();
    let first = hub.subscribe("always-on", 1000);
    let (run, status) = Running::start(Arc::new(mem.clone()), cfg("memmic", MONO16, 160), &hub);
    assert!(matches!(next_status(&status), DeviceStatus::Up { .. }));
    let early = first.receiver().recv_timeout(GUARD).unwrap();
    let late = hub.subscribe("recorder", 1000);
    let later = late.receiver().recv_timeout(GUARD).unwrap();
    assert!(later.first_frame > early.first_frame);
    drop(late);
    assert_eq!(hub.subscriber_count(), 1);
    drop(run);
}
