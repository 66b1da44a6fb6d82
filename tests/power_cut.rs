//! Power cuts: `chatterbox sim --virtual-time` records clip after clip (and plays them)
//! against an ALSA sandbox and is killed with SIGKILL at random moments, over and over.
//!
//! After every kill:
//! * every clip that existed before the trial is still there, byte-identical;
//! * every visible `*.wav` is a complete clip (right format, exactly the recorded length),
//!   mode 0640 or stricter — never a partial or zero-length file;
//! * the only other files are hidden temp files (`.incoming-*.wav.part`);
//! * when the next start gets as far as opening the folder, it has removed every temp file
//!   left by the previous kill and said so in its log ("removed N unfinished recording(s)").
//!
//! SIGKILL models the process dying at any instruction; what survives it is what the
//! kernel already had. (A real power cut also loses the page cache; that part rests on the
//! fsync of the file and of the folder in `Library`, which a kill cannot exercise.)
//!
//! Trials: 25 in `cargo test`; `CHATTERBOX_POWER_CUT_TRIALS=200` (what `.ci/run` sets)
//! for the full run. The summary line is printed (`cargo test -- --nocapture` shows it).

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::alsa::{sine_i16, AlsaSandbox};
use common::toy::{sim, write_config, ToyConfig};
use rand::{Rng, SeedableRng};

const RATE: u32 = 16_000;
/// `button.record_seconds` below: every complete clip holds exactly this many samples.
const CLIP_SAMPLES: usize = RATE as usize * 2;

struct Rig {
    sb: AlsaSandbox,
    config: PathBuf,
    script: PathBuf,
}

impl Rig {
    fn new() -> Rig {
        let sb = AlsaSandbox::new().expect("sandbox");
        sb.write_mic(&sine_i16(440.0, RATE, 1, RATE as usize * 10, 0.3))
            .expect("mic file");
        // Unpaced capture: a 2 s clip takes ~0.1 s, so kills land in every phase
        // (start-up, folder scan, recording, commit, playback).
        let config = write_config(
            &sb,
            &ToyConfig {
                audio: &format!("rate = {RATE}\nchannels = 1\npace_capture = false\n"),
                button: "record_seconds = 2.0\n",
                ..ToyConfig::default()
            },
        );
        let script = sb.home().join("forever.sim");
        std::fs::write(
            &script,
            "hold 10\nsettle\npress\nrelease\nsettle\n".repeat(2000),
        )
        .expect("script");
        Rig { sb, config, script }
    }

    fn rec(&self) -> PathBuf {
        self.sb.home().join("rec")
    }

    fn spawn(&self, log: &Path) -> std::process::Child {
        sim(&self.sb, &self.config)
            .arg("--script")
            .arg(&self.script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).expect("log file"))
            .spawn()
            .expect("spawn chatterbox")
    }
}

/// Every name in the folder (none if it does not exist yet).
fn inspect_names(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Visible clips (name → bytes) and hidden temp files, after checking every file. A clip
/// whose bytes equal `known`'s was checked before and is not decoded again (the folder grows
/// by several clips a trial; decoding all of them every trial made the run quadratic).
fn inspect(
    dir: &Path,
    known: &BTreeMap<String, Vec<u8>>,
) -> (BTreeMap<String, Vec<u8>>, Vec<String>) {
    let mut clips = BTreeMap::new();
    let mut temps = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (clips, temps);
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(".incoming-") && name.ends_with(".wav.part") {
            temps.push(name);
            continue;
        }
        assert!(name.ends_with(".wav"), "unexpected file {name}");
        let path = e.path();
        let bytes = std::fs::read(&path).unwrap();
        if known.get(&name) == Some(&bytes) {
            clips.insert(name, bytes);
            continue;
        }
        assert!(!bytes.is_empty(), "zero-length clip {name}");
        let mut r = hound::WavReader::new(std::io::Cursor::new(&bytes))
            .unwrap_or_else(|err| panic!("{name} is not a complete WAV: {err}"));
        assert_eq!(
            (r.spec().sample_rate, r.spec().channels),
            (RATE, 1),
            "{name}"
        );
        let samples: Result<Vec<i16>, _> = r.samples::<i16>().collect();
        let samples = samples.unwrap_or_else(|err| panic!("{name} is cut short: {err}"));
        assert_eq!(samples.len(), CLIP_SAMPLES, "{name} is partial");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o027, 0, "{name} has mode {mode:o}");
        clips.insert(name, bytes);
    }
    (clips, temps)
}

#[test]
fn sigkill_at_random_moments_never_loses_or_half_writes_a_clip() {
    let trials: usize = std::env::var("CHATTERBOX_POWER_CUT_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(25);
    let seed: u64 = std::env::var("CHATTERBOX_POWER_CUT_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let rig = Rig::new();
    let (mut before, _) = inspect(&rig.rec(), &BTreeMap::new());
    let mut leftovers: Vec<String> = Vec::new();
    let (mut mid_write, mut cleaned_and_logged, mut made) = (0, 0, 0);
    for trial in 0..trials {
        let log = rig.sb.home().join(format!("trial-{trial}.log"));
        let mut child = rig.spawn(&log);
        if trial % 2 == 0 {
            // Blind: anywhere in start-up (~50 ms) or the first cycles (~0.45 s each:
            // burp, ~0.1 s of writing the clip, playing it back).
            std::thread::sleep(Duration::from_millis(rng.random_range(0..1000)));
        } else {
            // Aimed: a new temp file exists (a clip is being written); kill within the
            // next 0-100 ms, i.e. mid-write, during the commit, or just after it.
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline
                && !inspect_names(&rig.rec())
                    .iter()
                    .any(|n| n.ends_with(".wav.part") && !leftovers.contains(n))
            {
                std::thread::sleep(Duration::from_millis(1));
            }
            std::thread::sleep(Duration::from_millis(rng.random_range(0..100)));
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");

        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let ctx = format!("trial {trial} (seed {seed}); log:\n{text}");
        assert!(!text.contains("panicked"), "{ctx}");
        let (after, temps) = inspect(&rig.rec(), &before);
        for (name, bytes) in &before {
            assert!(
                after.get(name) == Some(bytes),
                "clip {name} changed or vanished; {ctx}"
            );
        }
        // The previous kill's temp files: gone, and logged, once the folder was opened.
        if text.contains("recording(s) in") && !leftovers.is_empty() {
            for t in &leftovers {
                assert!(!temps.contains(t), "leftover {t} not cleaned; {ctx}");
            }
            let line = format!("removed {} unfinished recording(s)", leftovers.len());
            assert!(text.contains(&line), "expected \"{line}\"; {ctx}");
            cleaned_and_logged += 1;
        }
        if !temps.is_empty() {
            mid_write += 1;
        }
        made += after.len() - before.len();
        before = after;
        leftovers = temps;
    }
    // One clean start at the end: nothing half-written survives it.
    let log = rig.sb.home().join("final.log");
    let out = {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_chatterbox"));
        rig.sb.configure(&mut cmd);
        cmd.arg("--config")
            .arg(&rig.config)
            .args([
                "sim",
                "--allow-root",
                "--virtual-time",
                "--script",
                "/dev/null",
            ])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .status()
            .expect("final run")
    };
    assert!(out.success());
    let (after, temps) = inspect(&rig.rec(), &before);
    assert!(
        temps.is_empty(),
        "temp files survive a clean start: {temps:?}"
    );
    assert_eq!(after, before, "the clean start changed clips");
    if !leftovers.is_empty() {
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.contains("unfinished recording(s)"), "{text}");
        cleaned_and_logged += 1;
    }
    println!(
        "power cut: {trials} SIGKILLs (seed {seed}, half blind, half aimed at a clip being written); {mid_write} landed mid-recording \
         (temp file left); {cleaned_and_logged} restarts found leftovers and cleaned + logged \
         them; {made} clips completed, all {} intact, 0 partial",
        after.len()
    );
    assert!(
        made > 0,
        "no clip was ever completed: the kills came too early"
    );
}
