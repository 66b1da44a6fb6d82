//! Bench (not a test): what the keyword recognizer costs, against the original Python loop
//! (issue 3). Run everything, Python included, with `scripts/bench_kws.sh`; this binary
//! alone runs with `cargo bench --bench kws_pipeline`.
//!
//! Figures (medians; CPU time of the measuring thread next to wall time, because the
//! bench machine may be shared and CPU time does not count waiting for a core):
//! 1. **Per-window cost** of the Rust pipeline: one hop (the default 125 ms, on the STFT
//!    grid: 122.8 ms) of 48 kHz stereo into the frontend (mix, resample, window) →
//!    `SlidingFeatures` (only the STFT columns the hop changed) → `classify` → detector, with the
//!    shipped model (`models/kws.toml`), and with the original architecture (float, 10
//!    outputs, fed the untransformed |STFT| like the original) if `KWS_BENCH_ORIGINAL`
//!    names its `.tflite` (scripts/bench_kws.sh builds it).
//! 2. **STFT alone** (`Stft::compute`) on the input scripts/bench_kws_python.py gives scipy.
//! 3. **CPU of continuous listening**: `Recognizer` fed 5 minutes (`KWS_BENCH_LISTEN_SECONDS`)
//!    of 48 kHz stereo in 20 ms chunks, as the capture thread delivers it: quiet room noise
//!    below the energy gate with a word every 30 s, and (worst case) continuous noise above
//!    the gate so every hop runs the model. Thread CPU time / audio duration = share of one
//!    core at real time.
//! 4. **Word end → event latency**: each held-out keyword clip (tests/fixtures/kws_clips) in
//!    quiet noise (default settings; for comparison only, the first defaults: a 250 ms hop
//!    with a 750 ms detector average at threshold 0.7); the word's end is found from the clip's energy envelope; the event is
//!    ready when the audio fed so far (in 20 ms capture chunks) lets `push` return it.
//!    Latency = that stream time − word end + the measured per-hop compute.
//! 5. **Daemon RSS**: `target/release/chatterbox sim` with keywords on, its microphone an
//!    ALSA `file` plugin paced in real time; VmRSS and VmHWM from /proc after 10 s.
//!
//! Other knobs: `KWS_BENCH_ITERS` (windows per timing, default 300), `KWS_BENCH_SKIP_RSS`
//! (set: do not start `chatterbox sim`), `KWS_BENCH_QUICK` (set: figures 1 and 2 only, and
//! their rows of the table),
//! `KWS_BENCH_META` (another model's kws.toml instead of models/kws.toml).
//!
//! With `KWS_BENCH_PYTHON` naming the TOML scripts/bench_kws_python.py wrote, one table
//! with every figure, its goal and pass/fail is printed at the end;
//! `KWS_BENCH_PYTHON_FIXED_MMAP` adds the original loop timed with glibc's mmap threshold
//! fixed (the allocator setting that reproduces the 6.7 ms).

#[path = "../tests/common/alsa.rs"]
mod alsa;

mod common;
use common::{repo, thread_cpu};

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chatterbox::audio::wav::{convert, read_clip};
use chatterbox::audio::PcmFormat;
use chatterbox::kws::detector::{Detector, DetectorConfig};
use chatterbox::kws::features::Stft;
use chatterbox::kws::frontend::{Frontend, FrontendConfig};
use chatterbox::kws::listener::{hop_on_frame_grid, Recognizer, RecognizerConfig};
use chatterbox::kws::meta::{FeatureSpec, KwsMeta, SILENCE, UNKNOWN};
use chatterbox::kws::model::{Classifier, LiteRtClassifier, NUM_THREADS};
use chatterbox::kws::sliding::SlidingFeatures;

const MIC: PcmFormat = PcmFormat {
    rate: 48_000,
    channels: 2,
};
/// Capture chunk, as `audio.chunk_ms` delivers it by default.
const CHUNK_FRAMES: usize = 960;
/// Uniform noise amplitudes (of full scale): RMS = amp / sqrt(3).
const QUIET_NOISE: f32 = 0.001; // about -65 dBFS, below the -55 dBFS gate
const LOUD_NOISE: f32 = 0.055; // about -30 dBFS: speech-level, above the gate

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median wall and CPU milliseconds of `f` over `n` calls (after a few warm-up calls).
struct Timing {
    wall_ms: f64,
    cpu_ms: f64,
}

fn time_it(n: usize, mut f: impl FnMut()) -> Timing {
    for _ in 0..5 {
        f();
    }
    let (mut wall, mut cpu) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        let (w0, c0) = (Instant::now(), thread_cpu());
        f();
        cpu.push(ms(thread_cpu() - c0));
        wall.push(ms(w0.elapsed()));
    }
    Timing {
        wall_ms: median(&mut wall),
        cpu_ms: median(&mut cpu),
    }
}

/// Deterministic noise (xorshift) so runs are comparable.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }
}

/// `seconds` of 48 kHz stereo uniform noise of amplitude `amp`, as f32.
fn noise_stream(seconds: f64, amp: f32, seed: u64) -> Vec<f32> {
    let mut n = Noise(seed);
    let frames = (seconds * f64::from(MIC.rate)) as usize;
    let mut out = Vec::with_capacity(frames * 2);
    for _ in 0..frames {
        let v = n.next() * amp;
        out.extend_from_slice(&[v, v]);
    }
    out
}

/// A held-out keyword clip: its label, its 48 kHz stereo samples and where the word ends.
struct KwClip {
    word: String,
    stereo: Vec<f32>,
    word_end: Duration,
}

/// Where the word ends in a 16 kHz mono clip: the end of the last 10 ms frame within 30 dB
/// of the loudest one (the tail of the energy envelope).
fn word_end(samples: &[f32], rate: u32) -> Duration {
    let frame = (rate / 100) as usize;
    let db: Vec<f32> = samples
        .chunks(frame)
        .map(|c| {
            let p = c.iter().map(|x| x * x).sum::<f32>() / c.len() as f32;
            10.0 * p.max(1e-12).log10()
        })
        .collect();
    let peak = db.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let last = db.iter().rposition(|&d| d > peak - 30.0).unwrap_or(0);
    Duration::from_secs_f64(((last + 1) * frame).min(samples.len()) as f64 / f64::from(rate))
}

fn keyword_clips() -> Result<Vec<KwClip>, String> {
    let dir = repo().join("tests/fixtures/kws_clips");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wav"))
        .collect();
    names.sort();
    let mut clips = Vec::new();
    for path in names {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let word = name.split("__").next().unwrap_or_default().to_string();
        if word == SILENCE || word == UNKNOWN {
            continue;
        }
        let clip = read_clip(&path, 2.0).map_err(|e| format!("{}: {e}", path.display()))?;
        let end = word_end(&clip.samples, clip.rate);
        let stereo = convert(&clip, MIC, 1.0).map_err(|e| format!("{}: {e}", path.display()))?;
        clips.push(KwClip {
            word,
            stereo: stereo.iter().map(|&s| f32::from(s) / 32768.0).collect(),
            word_end: end,
        });
    }
    Ok(clips)
}

fn add_at(stream: &mut [f32], at: Duration, clip: &[f32]) {
    let start = (at.as_secs_f64() * f64::from(MIC.rate)) as usize * 2;
    for (i, v) in clip.iter().enumerate() {
        if let Some(x) = stream.get_mut(start + i) {
            *x += v;
        }
    }
}

fn to_i16(v: &[f32]) -> Vec<i16> {
    v.iter()
        .map(|x| (x * 32768.0).round().clamp(-32768.0, 32767.0) as i16)
        .collect()
}

/// Per-window pipeline, as `Recognizer` runs it on a window above the energy gate: one
/// hop of capture through the frontend, the sliding features (only the STFT columns the
/// hop changed), the model and the detector, at the default hop on the STFT grid.
fn per_window(
    meta: &KwsMeta,
    spec: &FeatureSpec,
    classifier: &mut dyn Classifier,
    iters: usize,
) -> WindowCost {
    let hop = hop_on_frame_grid(RecognizerConfig::default().hop, spec);
    let mut frontend = Frontend::new(FrontendConfig {
        hop,
        ..FrontendConfig::from_features(spec)
    })
    .expect("frontend");
    let mut features = SlidingFeatures::new(spec).expect("features");
    let mut scores = vec![0.0; classifier.labels().len()];
    let mut detector = Detector::new(DetectorConfig::default(), &meta.labels).expect("detector");
    let hop_out = frontend.config().hop_samples();
    let hop_frames = hop_out * (MIC.rate / spec.sample_rate) as usize;
    let audio = to_i16(&noise_stream(4.0, LOUD_NOISE, 7));
    // Fill the first window; then each timed call pushes one hop and runs one window.
    frontend.push(&audio[..2 * 48_000], MIC).expect("push");
    while frontend.next_window().is_some() {}
    let mut pos = 0;
    let hop_audio = &audio[2 * 48_000..];
    let total = time_it(iters, || {
        let chunk = &hop_audio[pos..pos + hop_frames * 2];
        pos = (pos + hop_frames * 2) % (hop_audio.len() - hop_frames * 2);
        frontend.push(chunk, MIC).expect("push");
        while let Some(w) = frontend.next_window() {
            let end = w.end;
            let f = features.compute(w.samples, w.end_sample).expect("features");
            classifier.classify(f, &mut scores).expect("classify");
            if classifier.labels().len() == meta.labels.len() {
                let _ = detector.push(end, &scores);
            }
        }
    });
    // The parts, to see where the time goes.
    let frontend_only = time_it(iters, || {
        let chunk = &hop_audio[pos..pos + hop_frames * 2];
        pos = (pos + hop_frames * 2) % (hop_audio.len() - hop_frames * 2);
        frontend.push(chunk, MIC).expect("push");
        while frontend.next_window().is_some() {}
    });
    // Consecutive windows of one mono stream, as the frontend hands them out.
    let clip = spec.clip_samples;
    let mono: Vec<f32> = audio
        .iter()
        .step_by(6) // left channel, every 3rd frame: 48 kHz stereo -> 16 kHz mono
        .map(|&s| f32::from(s) / 32768.0)
        .collect();
    let windows = (mono.len() - clip) / hop_out;
    let mut n = 0;
    let mut last = Vec::new();
    let stft_only = time_it(iters, || {
        let end = clip + (n % windows) * hop_out;
        if n % windows == 0 {
            features.invalidate(); // wrapped around: not a forward slide
        }
        n += 1;
        let f = features
            .compute(&mono[end - clip..end], end as u64)
            .expect("features");
        std::hint::black_box(f);
    });
    // The original loop's work and nothing else: a 16 kHz mono window in, features, model.
    features.invalidate();
    let mut m = 0;
    let without_frontend = time_it(iters, || {
        let end = clip + (m % windows) * hop_out;
        if m % windows == 0 {
            features.invalidate();
        }
        m += 1;
        let f = features
            .compute(&mono[end - clip..end], end as u64)
            .expect("features");
        classifier.classify(f, &mut scores).expect("classify");
    });
    last.extend_from_slice(
        features
            .compute(&mono[..clip], clip as u64)
            .expect("features"),
    );
    let classify_only = time_it(iters, || {
        classifier.classify(&last, &mut scores).expect("classify");
    });
    WindowCost {
        total,
        without_frontend,
        frontend: frontend_only,
        stft: stft_only,
        classify: classify_only,
    }
}

struct WindowCost {
    total: Timing,
    /// Features + classify from a 16 kHz mono window: what the original Python loop times.
    without_frontend: Timing,
    frontend: Timing,
    stft: Timing,
    classify: Timing,
}

impl WindowCost {
    fn print(&self, name: &str) {
        println!(
            "rust per window, {name}: {:.3} ms wall, {:.3} ms CPU (parts, CPU: frontend {:.3} ms, STFT+transform {:.3} ms, classify {:.3} ms)",
            self.total.wall_ms,
            self.total.cpu_ms,
            self.frontend.cpu_ms,
            self.stft.cpu_ms,
            self.classify.cpu_ms
        );
        println!(
            "rust per window, {name}, from a 16 kHz window (no downmix/resample): {:.3} ms wall, {:.3} ms CPU",
            self.without_frontend.wall_ms, self.without_frontend.cpu_ms
        );
    }
}

struct Listening {
    cpu_pct: f64,
    hops: u64,
    inferences: u64,
    detections: u64,
}

/// Feeds `stream` (48 kHz stereo) to a fresh recognizer in capture-sized chunks.
fn listen_cpu(meta_path: &Path, stream: &[i16]) -> Result<Listening, String> {
    let mut r =
        Recognizer::load(meta_path, &RecognizerConfig::default()).map_err(|e| e.to_string())?;
    let c0 = thread_cpu();
    for chunk in stream.chunks(CHUNK_FRAMES * 2) {
        r.push(chunk, MIC).map_err(|e| e.to_string())?;
    }
    let cpu = thread_cpu() - c0;
    let seconds = stream.len() as f64 / 2.0 / f64::from(MIC.rate);
    let s = r.stats();
    Ok(Listening {
        cpu_pct: cpu.as_secs_f64() / seconds * 100.0,
        hops: s.hops,
        inferences: s.inferences,
        detections: s.detections,
    })
}

/// Stream with `amp` noise and keyword clips every 30 s.
fn speech_stream(seconds: f64, amp: f32, clips: &[KwClip]) -> Vec<i16> {
    let mut s = noise_stream(seconds, amp, 0x9E37_79B9_7F4A_7C15);
    let mut at = 10.0;
    let mut i = 0;
    while at + 2.0 < seconds && !clips.is_empty() {
        add_at(
            &mut s,
            Duration::from_secs_f64(at),
            &clips[i % clips.len()].stereo,
        );
        at += 30.0;
        i += 1;
    }
    to_i16(&s)
}

struct Latency {
    /// Per detected clip: ready time − word end + compute, ms.
    ready_ms: Vec<f64>,
    /// Per detected clip: the detection's stream time − word end, ms.
    at_ms: Vec<f64>,
    missed: Vec<String>,
}

fn latency(
    meta_path: &Path,
    cfg: &RecognizerConfig,
    clips: &[KwClip],
    compute_ms: f64,
) -> Result<Latency, String> {
    let mut out = Latency {
        ready_ms: Vec::new(),
        at_ms: Vec::new(),
        missed: Vec::new(),
    };
    for (i, clip) in clips.iter().enumerate() {
        // Offsets step by 37 ms so the word falls at different phases of the hop.
        let offset = Duration::from_millis(1500 + 37 * i as u64);
        let mut s = noise_stream(5.0, QUIET_NOISE, 11 + i as u64);
        add_at(&mut s, offset, &clip.stereo);
        let s = to_i16(&s);
        let mut r = Recognizer::load(meta_path, cfg).map_err(|e| e.to_string())?;
        let end = offset + clip.word_end;
        let mut fed = 0usize;
        let mut found = None;
        for chunk in s.chunks(CHUNK_FRAMES * 2) {
            fed += chunk.len() / 2;
            let d = r.push(chunk, MIC).map_err(|e| e.to_string())?;
            if let Some(d) = d.into_iter().find(|d| d.word == clip.word) {
                found = Some((fed, d.at));
                break;
            }
        }
        match found {
            Some((fed, at)) => {
                let ready = fed as f64 / f64::from(MIC.rate);
                out.ready_ms
                    .push((ready - end.as_secs_f64()) * 1e3 + compute_ms);
                out.at_ms.push((at.as_secs_f64() - end.as_secs_f64()) * 1e3);
            }
            None => out.missed.push(clip.word.clone()),
        }
    }
    Ok(out)
}

struct Rss {
    rss_mb: f64,
    hwm_mb: f64,
    cpu_pct: f64,
}

fn status_kb(pid: u32, key: &str) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// Runs `chatterbox sim` with keywords on for `seconds`, its mic fed `mic`.
fn daemon_rss(mic: &[i16], seconds: u64) -> Result<Rss, String> {
    let exe = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"))
        .join("release/chatterbox");
    if !exe.exists() {
        return Err(format!(
            "{} is missing; build it first: cargo build --release",
            exe.display()
        ));
    }
    let sb = alsa::AlsaSandbox::new().map_err(|e| e.to_string())?;
    sb.write_mic(mic).map_err(|e| e.to_string())?;
    let cfg = sb.home().join("rss.toml");
    std::fs::write(
        &cfg,
        format!(
            "[audio]\ncapture_device = \"cb_mic\"\nplayback_device = \"cb_speaker\"\n[library]\nrecordings_dir = \"rec\"\nsounds_dir = {:?}\n[keywords]\nenabled = true\nmodel = {:?}\n",
            repo().join("sounds"),
            repo().join("models/kws.toml")
        ),
    )
    .map_err(|e| e.to_string())?;
    let mut cmd = Command::new(&exe);
    sb.configure(&mut cmd);
    let mut child = cmd
        .args(["-q", "--config"])
        .arg(&cfg)
        .args(["sim", "--allow-root"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
    let pid = child.id();
    std::thread::sleep(Duration::from_secs(2));
    let t0 = cpu_ticks(pid);
    let w0 = Instant::now();
    std::thread::sleep(Duration::from_secs(seconds.saturating_sub(2)));
    let (t1, wall) = (cpu_ticks(pid), w0.elapsed().as_secs_f64());
    let rss = status_kb(pid, "VmRSS:");
    let hwm = status_kb(pid, "VmHWM:");
    let _ = child.stdin.as_mut().map(|s| s.write_all(b"quit\n"));
    drop(child.stdin.take());
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    match (rss, hwm, t0, t1) {
        (Some(rss), Some(hwm), Some(t0), Some(t1)) => Ok(Rss {
            rss_mb: rss / 1024.0,
            hwm_mb: hwm / 1024.0,
            cpu_pct: (t1 - t0) as f64 / 100.0 / wall * 100.0,
        }),
        _ => Err(format!(
            "chatterbox sim exited early ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

/// Python's figures (scripts/bench_kws_python.py).
fn python_figure(doc: &toml::Table, section: &str, key: &str) -> Option<f64> {
    doc.get(section)?.get(key)?.as_float()
}

struct Row {
    what: String,
    value: String,
    goal: String,
    pass: Option<bool>,
}

fn row(what: &str, value: String, goal: &str, pass: Option<bool>) -> Row {
    Row {
        what: what.into(),
        value,
        goal: goal.into(),
        pass,
    }
}

fn env_num(key: &str, default: f64) -> f64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let iters = env_num("KWS_BENCH_ITERS", 300.0) as usize;
    let listen_seconds = env_num("KWS_BENCH_LISTEN_SECONDS", 300.0);
    // KWS_BENCH_META: another model's metadata (e.g. a candidate from the trainer).
    let meta_path = std::env::var_os("KWS_BENCH_META")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("models/kws.toml"));
    let meta = match KwsMeta::load(&meta_path) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    println!(
        "kws_pipeline bench: {iters} windows per figure, LiteRT {NUM_THREADS} thread(s), medians (wall / this thread's CPU)"
    );

    // 1. Per-window, shipped model.
    let mut shipped = chatterbox::kws::front_end::load_classifier(&meta).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1)
    });
    let ship_cost = per_window(&meta, &meta.features, &mut shipped, iters);
    ship_cost.print(&format!("shipped model ({})", meta.model.file.display()));
    let ship = &ship_cost.total;

    // 1b. Per-window, original architecture: raw |STFT| (no log, no normalisation).
    let original = std::env::var_os("KWS_BENCH_ORIGINAL").map(PathBuf::from);
    let orig = original.as_ref().and_then(|path| {
        let labels: Vec<String> = (0..10).map(|i| format!("class{i}")).collect();
        // A file the bench is pointed at is trusted: its pin is its own sha256.
        let pin = std::fs::read(path)
            .map(|b| chatterbox::kws::model::sha256_hex(&b))
            .unwrap_or_default();
        match LiteRtClassifier::load(path, labels, true, &pin) {
            Ok(mut c) => {
                let t = per_window(&meta, &FeatureSpec::default(), &mut c, iters);
                t.print(&format!("original architecture ({})", path.display()));
                Some(t)
            }
            Err(e) => {
                eprintln!("original model: {e}");
                None
            }
        }
    });
    if original.is_none() {
        println!(
            "original architecture: skipped (set KWS_BENCH_ORIGINAL; scripts/bench_kws.sh does)"
        );
    }

    // 2. STFT alone, on the input the Python bench gives scipy.
    let spec = FeatureSpec::default();
    let mut stft = Stft::new(&spec).expect("default spec");
    let x: Vec<f32> = (0..spec.clip_samples)
        .map(|i| {
            let t = i as f32 / spec.sample_rate as f32;
            0.5 * (2.0 * std::f32::consts::PI * 1000.0 * t).sin()
                + 0.25 * (2.0 * std::f32::consts::PI * 3300.0 * t).sin()
        })
        .collect();
    let mut out = vec![0.0; stft.len()];
    let st = time_it(iters.max(1000), || {
        stft.compute(std::hint::black_box(&x), &mut out)
            .expect("sizes");
        std::hint::black_box(&out);
    });
    println!(
        "rust STFT alone: {:.1} us wall, {:.1} us CPU",
        st.wall_ms * 1e3,
        st.cpu_ms * 1e3
    );

    // Quick: per-window and STFT figures only (before/after comparisons, and the repeated
    // rounds of scripts/bench_kws.sh).
    let quick = std::env::var_os("KWS_BENCH_QUICK").is_some();

    // 3. Continuous listening.
    let clips = if quick {
        Vec::new()
    } else {
        keyword_clips().unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(1)
        })
    };
    let mut listening = Vec::new();
    let listen_cases: &[(&str, f32)] = if quick {
        &[]
    } else {
        &[
            ("quiet room, a word every 30 s", QUIET_NOISE),
            ("speech-level noise above the gate (worst case)", LOUD_NOISE),
        ]
    };
    for &(name, amp) in listen_cases {
        let s = speech_stream(listen_seconds, amp, &clips);
        match listen_cpu(&meta_path, &s) {
            Ok(l) => {
                println!(
                    "continuous listening, {name}, {listen_seconds:.0} s at the default hop: {:.3} % of one core ({} hops, {} inferences, {} detections)",
                    l.cpu_pct, l.hops, l.inferences, l.detections
                );
                listening.push((name, l));
            }
            Err(e) => eprintln!("continuous listening ({name}): {e}"),
        }
    }

    // 4. Latency, at the defaults and (for comparison, no goal) at the first defaults, whose
    // 750 ms average made a word wait until it filled most of that window.
    let default_cfg = RecognizerConfig::default();
    let first_cfg = RecognizerConfig {
        hop: Duration::from_millis(250),
        detector: DetectorConfig::default(),
        ..RecognizerConfig::default()
    };
    let default_name = format!(
        "defaults: {} ms hop ({:.1} ms on the STFT grid), {} ms average, threshold {}",
        default_cfg.hop.as_millis(),
        hop_on_frame_grid(default_cfg.hop, &meta.features).as_secs_f64() * 1e3,
        default_cfg.detector.average_window.as_millis(),
        default_cfg.detector.threshold
    );
    let first_name = format!(
        "first defaults: 250 ms hop, {} ms average, threshold {}",
        first_cfg.detector.average_window.as_millis(),
        first_cfg.detector.threshold
    );
    let mut lat = Vec::new();
    let latency_cases = if quick {
        vec![]
    } else {
        vec![
            (default_name.as_str(), &default_cfg),
            (first_name.as_str(), &first_cfg),
        ]
    };
    for (name, cfg) in latency_cases {
        match latency(&meta_path, cfg, &clips, ship.cpu_ms) {
            Ok(mut l) => {
                let n = l.ready_ms.len();
                let (rmed, rmax) = if n > 0 {
                    (
                        median(&mut l.ready_ms),
                        l.ready_ms.iter().copied().fold(f64::MIN, f64::max),
                    )
                } else {
                    (f64::NAN, f64::NAN)
                };
                let amed = if n > 0 {
                    median(&mut l.at_ms)
                } else {
                    f64::NAN
                };
                println!(
                    "word end -> event, {name}: {n}/{} clips detected (missed: {:?}); latency median {rmed:.0} ms, max {rmax:.0} ms (detection's window end - word end: median {amed:.0} ms)",
                    clips.len(),
                    l.missed
                );
                lat.push((name, rmed, rmax, n, clips.len()));
            }
            Err(e) => eprintln!("latency ({name}): {e}"),
        }
    }

    // 5. Daemon RSS, its mic fed speech-level noise with words so the model runs.
    let rss = if quick || std::env::var_os("KWS_BENCH_SKIP_RSS").is_some() {
        None
    } else {
        match daemon_rss(&speech_stream(40.0, LOUD_NOISE, &clips), 10) {
            Ok(r) => {
                println!(
                    "chatterbox sim (keywords on, model loaded, mic above the gate) after 10 s: VmRSS {:.1} MB, VmHWM {:.1} MB, CPU {:.1} % of one core",
                    r.rss_mb, r.hwm_mb, r.cpu_pct
                );
                Some(r)
            }
            Err(e) => {
                eprintln!("daemon RSS: {e}");
                None
            }
        }
    };

    // The table.
    let read_python = |var: &str| {
        std::env::var_os(var).and_then(|p| {
            let text = std::fs::read_to_string(&p)
                .map_err(|e| eprintln!("cannot read {}: {e}", Path::new(&p).display()))
                .ok()?;
            text.parse::<toml::Table>()
                .map_err(|e| eprintln!("{}: {e}", Path::new(&p).display()))
                .ok()
        })
    };
    let py = read_python("KWS_BENCH_PYTHON");
    // The same loop with glibc's mmap threshold fixed (see scripts/bench_kws_python.py).
    let py_fixed = read_python("KWS_BENCH_PYTHON_FIXED_MMAP");
    let mut rows = Vec::new();
    if let Some(py) = &py {
        for (sec, what) in [
            (
                "original_as_written",
                "Python original loop as written, glibc default allocator (interpreter per window)",
            ),
            ("once_tflite", "Python, tf.lite interpreter created once"),
            (
                "once_litert",
                "Python, ai-edge-litert interpreter created once",
            ),
        ] {
            if let (Some(w), Some(c)) = (
                python_figure(py, sec, "wall_ms"),
                python_figure(py, sec, "cpu_ms"),
            ) {
                rows.push(row(
                    what,
                    format!("{w:.3} ms wall / {c:.3} ms CPU"),
                    "(reference)",
                    None,
                ));
            }
        }
    }
    let py_cpu = |sec: &str| py.as_ref().and_then(|p| python_figure(p, sec, "cpu_ms"));
    rows.push(row(
        "Rust per window, shipped model",
        format!("{:.3} ms wall / {:.3} ms CPU", ship.wall_ms, ship.cpu_ms),
        ">= 30x below original as written (CPU)",
        None,
    ));
    let fixed_cpu = py_fixed
        .as_ref()
        .and_then(|p| python_figure(p, "original_as_written", "cpu_ms"));
    if let Some(orig_py) = py_cpu("original_as_written") {
        let ratio = orig_py / ship.cpu_ms;
        if quick {
            // One greppable line per round: scripts/bench_kws.sh repeats rounds, takes medians.
            let fixed = fixed_cpu.map_or(String::new(), |f| {
                format!(
                    "; fixed mmap threshold {f:.3} ms CPU, speed-up {:.1}x",
                    f / ship.cpu_ms
                )
            });
            println!(
                "round: rust per window {:.4} ms CPU; python original as written, glibc default {orig_py:.3} ms CPU, speed-up {ratio:.1}x{fixed}",
                ship.cpu_ms
            );
        }
        rows.push(row(
            "  speed-up vs original as written, glibc default allocator (CPU)",
            format!("{ratio:.0}x"),
            ">= 30x",
            Some(ratio >= 30.0),
        ));
    }
    if let (Some(f), Some(w)) = (
        fixed_cpu,
        py_fixed
            .as_ref()
            .and_then(|p| python_figure(p, "original_as_written", "wall_ms")),
    ) {
        let ratio = f / ship.cpu_ms;
        rows.insert(
            rows.len().min(1),
            row(
                "Python original loop as written, glibc mmap threshold fixed (reproduces the issue's 6.7 ms)",
                format!("{w:.3} ms wall / {f:.3} ms CPU"),
                "(reference)",
                None,
            ),
        );
        rows.push(row(
            "  speed-up vs original as written, mmap threshold fixed (CPU)",
            format!("{ratio:.0}x"),
            ">= 30x",
            Some(ratio >= 30.0),
        ));
    }
    let like = &ship_cost.without_frontend;
    rows.push(row(
        "  the original loop's work only (16 kHz window -> features -> model)",
        format!("{:.3} ms wall / {:.3} ms CPU", like.wall_ms, like.cpu_ms),
        "(comparison only)",
        None,
    ));
    if let Some(orig_py) = py_cpu("original_as_written") {
        rows.push(row(
            "    its speed-up vs original as written (CPU)",
            format!("{:.0}x", orig_py / like.cpu_ms),
            "",
            None,
        ));
    }
    rows.push(row(
        "  parts (CPU): frontend / STFT+log / classify",
        format!(
            "{:.3} / {:.3} / {:.3} ms",
            ship_cost.frontend.cpu_ms, ship_cost.stft.cpu_ms, ship_cost.classify.cpu_ms
        ),
        "",
        None,
    ));
    if let Some(o) = orig.as_ref().map(|c| &c.total) {
        rows.push(row(
            "Rust per window, original architecture",
            format!("{:.3} ms wall / {:.3} ms CPU", o.wall_ms, o.cpu_ms),
            "faster than Python once-created (CPU)",
            None,
        ));
        for (sec, name) in [
            ("once_tflite", "tf.lite"),
            ("once_litert", "ai-edge-litert"),
        ] {
            if let Some(p) = py_cpu(sec) {
                let ratio = p / o.cpu_ms;
                rows.push(row(
                    &format!("  speed-up vs Python once-created ({name}, CPU)"),
                    format!("{ratio:.2}x"),
                    "> 1x",
                    Some(ratio > 1.0),
                ));
            }
        }
    }
    rows.push(row(
        "Rust STFT alone (1 s window)",
        format!(
            "{:.1} us wall / {:.1} us CPU",
            st.wall_ms * 1e3,
            st.cpu_ms * 1e3
        ),
        ">= 5x faster than scipy",
        None,
    ));
    if let (Some(w), Some(c)) = (
        py.as_ref()
            .and_then(|p| python_figure(p, "scipy_stft", "wall_ms")),
        py_cpu("scipy_stft"),
    ) {
        rows.push(row(
            "scipy stft + abs (same input)",
            format!("{:.1} us wall / {:.1} us CPU", w * 1e3, c * 1e3),
            "(reference)",
            None,
        ));
        let ratio = c / st.cpu_ms;
        rows.push(row(
            "  STFT speed-up vs scipy (CPU)",
            format!("{ratio:.1}x"),
            ">= 5x",
            Some(ratio >= 5.0),
        ));
    }
    for (name, l) in &listening {
        rows.push(row(
            &format!("CPU of continuous listening, {name}"),
            format!(
                "{:.3} % of one core ({}/{} hops ran the model)",
                l.cpu_pct, l.inferences, l.hops
            ),
            "<= 1 % of one core",
            Some(l.cpu_pct <= 1.0),
        ));
    }
    for (i, (name, med, max, n, total)) in lat.iter().enumerate() {
        let default = i == 0;
        rows.push(row(
            &format!("Word end -> event latency, {name} ({n}/{total} held-out clips detected)"),
            format!("median {med:.0} ms, max {max:.0} ms"),
            if default {
                "<= 300 ms (median; every clip detected)"
            } else {
                "(comparison only)"
            },
            default.then_some(*med <= 300.0 && n == total),
        ));
    }
    if let Some(r) = &rss {
        rows.push(row(
            "Daemon RSS, `chatterbox sim`, model loaded, 10 s",
            format!("VmRSS {:.1} MB (peak VmHWM {:.1} MB)", r.rss_mb, r.hwm_mb),
            "<= 40 MB",
            Some(r.rss_mb <= 40.0 && r.hwm_mb <= 40.0),
        ));
    }
    println!();
    if let Some(v) = py
        .as_ref()
        .and_then(|p| p.get("versions"))
        .and_then(|v| v.as_str())
    {
        println!("Python side: {v}");
    }
    println!("| Figure | Measured | Goal | Result |");
    println!("|---|---|---|---|");
    for r in rows {
        let verdict = match r.pass {
            Some(true) => "pass",
            Some(false) => "FAIL",
            None => "",
        };
        println!("| {} | {} | {} | {verdict} |", r.what, r.value, r.goal);
    }
}
