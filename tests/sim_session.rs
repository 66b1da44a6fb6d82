//! Scripted `chatterbox sim` sessions through the real threads and real ALSA code paths:
//! the microphone is ALSA's `file` plugin reading a raw file, the speaker is a `file`
//! plugin writing one. Each test runs the binary with `HOME` pointed at its own sandbox.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::alsa::{sine_i16, AlsaSandbox};
use common::toy::{sim, write_config, ToyConfig};

const RATE: u32 = 48_000;

/// A sandboxed toy: its own ALSA config, recordings folder and config file.
struct Toy {
    sb: AlsaSandbox,
    config: PathBuf,
}

impl Toy {
    /// Microphone: a 440 Hz tone (stereo, 48 kHz) long enough for any test here.
    fn new() -> Toy {
        let sb = AlsaSandbox::new().expect("sandbox");
        sb.write_mic(&sine_i16(440.0, RATE, 2, RATE as usize * 40, 0.3))
            .expect("mic file");
        let config = write_config(
            &sb,
            &ToyConfig {
                audio: "volume = 10\n",
                ..ToyConfig::default()
            },
        );
        Toy { sb, config }
    }

    fn recordings(&self) -> PathBuf {
        self.sb.home().join("rec")
    }

    fn clips(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.recordings())
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    fn command(&self, script: &str) -> Command {
        let path = self.sb.home().join("session.sim");
        std::fs::write(&path, script).expect("script");
        let mut cmd = sim(&self.sb, &self.config);
        cmd.args(["--seed", "1", "--script"])
            .arg(&path)
            .stdin(Stdio::null());
        cmd
    }

    fn sim(&self, script: &str) -> Output {
        let out = self.command(script).output().expect("run chatterbox");
        assert!(
            out.status.success(),
            "sim failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Zero crossings of one channel per second: twice the frequency of a pure tone.
fn tone_hz(interleaved: &[i16], channels: usize, rate: u32) -> f64 {
    let left: Vec<i16> = interleaved.iter().step_by(channels).copied().collect();
    let crossings = left.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
    crossings as f64 / 2.0 / (left.len() as f64 / f64::from(rate))
}

fn read_clip(path: &Path) -> (hound::WavSpec, Vec<i16>) {
    let mut r = hound::WavReader::open(path).expect("clip is a WAV");
    let spec = r.spec();
    let samples = r.samples::<i16>().map(|s| s.expect("sample")).collect();
    (spec, samples)
}

#[test]
fn hold_10_s_records_5_s_of_the_microphone_then_a_press_plays_it() {
    let toy = Toy::new();
    let out = toy.sim("hold 10\nsettle\npress\nrelease\nsettle\n");
    let clips = toy.clips();
    assert_eq!(clips.len(), 1, "{clips:?}\n{}", stdout(&out));
    let name = &clips[0];
    let stamp = name
        .strip_prefix("00001_")
        .and_then(|n| n.strip_suffix("_voice.wav"))
        .expect("named 00001_*_voice.wav");
    assert!(
        chrono::NaiveDateTime::parse_from_str(stamp, "%Y-%m-%d_%H-%M-%S").is_ok(),
        "{name} is not named from local time"
    );

    let (spec, samples) = read_clip(&toy.recordings().join(name));
    assert_eq!(
        (spec.sample_rate, spec.channels, spec.bits_per_sample),
        (48_000, 2, 16)
    );
    assert_eq!(samples.len(), 5 * 48_000 * 2, "exactly 5 s");
    let hz = tone_hz(&samples, 2, RATE);
    assert!((hz - 440.0).abs() < 5.0, "recorded {hz} Hz, fed 440 Hz");

    // The speaker got the burp, then the clip itself, sample for sample (volume 10).
    let played = toy.sb.read_speaker().expect("speaker file");
    let start = played
        .windows(64)
        .position(|w| w == &samples[..64])
        .expect("the clip's first samples reach the speaker");
    assert_eq!(&played[start..start + samples.len()], &samples[..]);
    let text = stdout(&out);
    assert!(
        text.contains("[led] green on"),
        "green LED while recording:\n{text}"
    );
    assert!(text.contains("[screen] recording"), "{text}");
}

#[test]
fn hold_20_s_erases_every_recording_including_the_new_one() {
    let toy = Toy::new();
    toy.sim("hold 10\nsettle\n");
    assert_eq!(toy.clips().len(), 1);
    let out = toy.sim("hold 20\nsettle\n");
    assert!(toy.clips().is_empty(), "left: {:?}", toy.clips());
    let text = stdout(&out);
    assert!(text.contains("erased 2 clip(s)"), "{text}");
    assert!(text.contains("[led] red on"), "{text}");
}

#[test]
fn press_with_no_recordings_plays_the_empty_cue_and_blinks_red() {
    let toy = Toy::new();
    let out = toy.sim("press\nrelease\nsettle\n");
    let text = stdout(&out);
    // The blink pattern itself is unit-tested; here the session ends (and the LEDs go
    // off) as soon as the cue has played, so only the first blink is certain.
    assert!(text.contains("[led] red on"), "red blinks:\n{text}");
    let played = toy.sb.read_speaker().expect("speaker file");
    let (_, cue) = read_clip(&Path::new(env!("CARGO_MANIFEST_DIR")).join("sounds/empty.wav"));
    assert!(
        played.len() >= cue.len(),
        "the empty cue was played ({} samples of {})",
        played.len(),
        cue.len()
    );
    assert!(toy.clips().is_empty());
}

#[test]
fn voice_commands_in_a_script_reach_the_state_machine() {
    let toy = Toy::new();
    let out = toy.sim("say down\nsay down 0.8\nstatus\n");
    let text = stdout(&out);
    assert!(text.contains("heard \"down\" (80 %)"), "{text}");
    assert!(text.contains("volume=8"), "two steps down from 10:\n{text}");
}

#[test]
fn a_bad_script_is_refused_before_anything_starts() {
    let toy = Toy::new();
    let out = toy
        .command("press\nhold ten\n")
        .output()
        .expect("run chatterbox");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 2") && err.contains("ten"), "{err}");
    assert!(!toy.recordings().exists(), "nothing ran");
}

#[test]
fn sigterm_mid_recording_leaves_no_partial_clip() {
    let toy = Toy::new();
    toy.sim("hold 10\nsettle\n");
    let before = toy.clips();
    let first = std::fs::read(toy.recordings().join(&before[0])).unwrap();
    let mut child = toy
        .command("hold 10\nsettle\n")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    // Wait until the recording has begun (its temp file exists), then stop the toy.
    let deadline = Instant::now() + Duration::from_secs(60);
    let recording = || {
        std::fs::read_dir(toy.recordings())
            .map(|d| {
                d.flatten()
                    .any(|e| e.file_name().to_string_lossy().ends_with(".part"))
            })
            .unwrap_or(false)
    };
    while !recording() {
        assert!(Instant::now() < deadline, "recording never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "clean shutdown on SIGTERM: {status}");
    assert_eq!(toy.clips(), before, "no new, partial or temp file is left");
    assert_eq!(
        std::fs::read(toy.recordings().join(&before[0])).unwrap(),
        first
    );
}
