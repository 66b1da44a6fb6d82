//! Bench (not a test): how fast the toy answers the button, and what it costs idle.
//!
//! 1. **Button event → first playback frame handed to ALSA.** The real runtime (controller,
//!    player, recorder, capture threads) runs in-process against ALSA's `file` plugin; the
//!    playback backend is wrapped so the moment of the first `write` is timed. A debounced
//!    button release (a short press) goes in; the clock stops when the player hands its
//!    first slice to ALSA.
//! 2. **Idle CPU of `chatterbox sim`**: the binary runs for a while with nothing to do,
//!    its microphone paced in real time from the `file` plugin, and its CPU time is read
//!    from `/proc`.
//!
//! Run: `cargo bench --bench button_latency` (figures printed; no pass/fail).

#[path = "../tests/common/alsa.rs"]
mod alsa;

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chatterbox::audio::alsa_backend::AlsaBackend;
use chatterbox::audio::pcm::{AudioBackend, AudioError, CaptureStream, PcmFormat, PlaybackStream};
use chatterbox::clock::{Clock, RealClock};
use chatterbox::config::Config;
use chatterbox::hw::button::Edge;
use chatterbox::hw::leds::RecordedLeds;
use chatterbox::runtime::{self, ControlMsg, Hardware, Options};

/// Records when the first write of each playback stream happens.
struct Timed {
    inner: AlsaBackend,
    first_write: Arc<Mutex<Vec<Instant>>>,
}

struct TimedStream {
    inner: Box<dyn PlaybackStream>,
    first_write: Arc<Mutex<Vec<Instant>>>,
    armed: Arc<AtomicBool>,
}

impl PlaybackStream for TimedStream {
    fn format(&self) -> PcmFormat {
        self.inner.format()
    }
    fn write(&mut self, samples: &[i16]) -> Result<(), AudioError> {
        if self.armed.swap(false, Ordering::SeqCst) {
            self.first_write.lock().unwrap().push(Instant::now());
        }
        self.inner.write(samples)
    }
    fn drain(&mut self) -> Result<(), AudioError> {
        self.inner.drain()
    }
    fn stop(&mut self) -> Result<(), AudioError> {
        self.inner.stop()
    }
}

static ARMED: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();

fn armed() -> Arc<AtomicBool> {
    ARMED
        .get_or_init(|| Arc::new(AtomicBool::new(false)))
        .clone()
}

impl AudioBackend for Timed {
    fn open_capture(
        &self,
        device: &str,
        format: PcmFormat,
    ) -> Result<Box<dyn CaptureStream>, AudioError> {
        self.inner.open_capture(device, format)
    }
    fn open_playback(
        &self,
        device: &str,
        preferred: PcmFormat,
    ) -> Result<Box<dyn PlaybackStream>, AudioError> {
        Ok(Box::new(TimedStream {
            inner: self.inner.open_playback(device, preferred)?,
            first_write: self.first_write.clone(),
            armed: armed(),
        }))
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn button_to_first_frame(sb: &alsa::AlsaSandbox) {
    let rec = sb.home().join("rec");
    std::fs::create_dir_all(&rec).unwrap();
    // One short clip (0.1 s, the device's own format) in the library.
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 48_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(rec.join("2026-01-01_00-00-00_voice.wav"), spec).unwrap();
    for i in 0..4800 * 2 {
        w.write_sample(((i % 100) * 100) as i16).unwrap();
    }
    w.finalize().unwrap();

    let mut cfg = Config::default();
    cfg.audio.capture_device = "cb_mic".into();
    cfg.audio.playback_device = "cb_speaker".into();
    cfg.library.recordings_dir = rec;
    cfg.library.sounds_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/sounds").into();
    cfg.keywords.enabled = false;

    let first_write = Arc::new(Mutex::new(Vec::new()));
    let clock = Arc::new(RealClock::new());
    let hw = Hardware {
        audio: Arc::new(Timed {
            inner: AlsaBackend,
            first_write: first_write.clone(),
        }),
        button: None,
        leds: Box::new(RecordedLeds::default()),
        display: Box::new(|_| Ok(())),
        display_refresh: None,
        clock: clock.clone(),
    };
    let app = runtime::start(&cfg, hw, Options { seed: Some(1) }).unwrap();
    let control = app.control();
    let settle = || {
        let (tx, rx) = crossbeam_channel::bounded(1);
        control.send(ControlMsg::WhenSettled(tx)).unwrap();
        rx.recv_timeout(Duration::from_secs(10)).unwrap();
    };
    let runs = 200;
    let mut lat = Vec::with_capacity(runs);
    for i in 0..runs + 5 {
        settle();
        first_write.lock().unwrap().clear();
        let down = clock.now();
        control.send(ControlMsg::Button(Edge::Down(down))).unwrap();
        std::thread::sleep(Duration::from_millis(2));
        armed().store(true, Ordering::SeqCst);
        let sent = Instant::now();
        control
            .send(ControlMsg::Button(Edge::Up(clock.now())))
            .unwrap();
        let deadline = sent + Duration::from_secs(5);
        let t = loop {
            if let Some(t) = first_write.lock().unwrap().first().copied() {
                break t;
            }
            assert!(Instant::now() < deadline, "no playback within 5 s");
            std::thread::sleep(Duration::from_micros(100));
        };
        if i >= 5 {
            lat.push((t - sent).as_secs_f64() * 1e3); // first 5 warm the device
        }
    }
    app.shutdown();
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "button release -> first frame to ALSA ({runs} presses, file plugin): median {:.2} ms, p95 {:.2} ms, max {:.2} ms (goal <= 20 ms)",
        percentile(&lat, 0.5),
        percentile(&lat, 0.95),
        lat[lat.len() - 1]
    );
}

fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn idle_cpu_of_sim(sb: &alsa::AlsaSandbox, seconds: u64) {
    let cfg = sb.home().join("idle.toml");
    std::fs::write(
        &cfg,
        format!(
            "[audio]\ncapture_device = \"cb_mic\"\nplayback_device = \"cb_speaker\"\n[library]\nrecordings_dir = \"rec-idle\"\nsounds_dir = \"{}/sounds\"\n[keywords]\nenabled = false\n",
            env!("CARGO_MANIFEST_DIR")
        ),
    )
    .unwrap();
    let exe = env!("CARGO_MANIFEST_DIR").to_string() + "/target/release/chatterbox";
    if !std::path::Path::new(&exe).exists() {
        println!("idle CPU of sim: skipped (build it first: cargo build --release)");
        return;
    }
    let mut cmd = Command::new(exe);
    sb.configure(&mut cmd);
    let mut child = cmd
        .args(["-q", "--config"])
        .arg(&cfg)
        .args(["sim", "--allow-root"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2)); // start-up is not idle
    let t0 = cpu_ticks(child.id()).unwrap();
    let w0 = Instant::now();
    std::thread::sleep(Duration::from_secs(seconds));
    let t1 = cpu_ticks(child.id()).unwrap();
    let wall = w0.elapsed().as_secs_f64();
    let _ = child.stdin.as_mut().map(|s| s.write_all(b"quit\n"));
    drop(child.stdin.take());
    let _ = child.wait();
    let hz = 100.0; // USER_HZ on Linux
    let cpu = (t1 - t0) as f64 / hz;
    println!(
        "idle CPU of `chatterbox sim` (keywords off, mic paced from the file plugin): {:.2} % of one core over {wall:.0} s",
        cpu / wall * 100.0
    );
}

fn main() {
    // `cargo bench` passes flags such as --bench; this binary takes none.
    let sb = alsa::AlsaSandbox::shared();
    sb.write_mic(&alsa::sine_i16(440.0, 48_000, 2, 48_000 * 120, 0.2))
        .unwrap();
    button_to_first_frame(sb);
    idle_cpu_of_sim(sb, 20);
}
