//! A sandboxed toy: a chatterbox config for an [`AlsaSandbox`] and the `sim` command that
//! runs the real binary against it (virtual time, as root-tolerant as CI needs).
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::process::Command;

use super::alsa::AlsaSandbox;

/// What differs between tests; everything else is the sandbox's devices, the repository's
/// sounds and the keyword recognizer off.
pub struct ToyConfig<'a> {
    /// Capture PCM (`cb_mic` reads the sandbox's mic file, `cb_null` gives silence).
    pub capture: &'a str,
    /// Extra lines for `[audio]`, e.g. `"rate = 16000\nchannels = 1\n"`.
    pub audio: &'a str,
    /// Extra lines for `[button]`.
    pub button: &'a str,
    /// `library.recordings_dir`, relative to the sandbox.
    pub recordings: &'a str,
}

impl Default for ToyConfig<'_> {
    fn default() -> Self {
        ToyConfig {
            capture: "cb_mic",
            audio: "",
            button: "",
            recordings: "rec",
        }
    }
}

/// Writes `chatterbox.toml` into the sandbox and returns its path.
pub fn write_config(sb: &AlsaSandbox, c: &ToyConfig) -> PathBuf {
    let config = sb.home().join("chatterbox.toml");
    let sounds = Path::new(env!("CARGO_MANIFEST_DIR")).join("sounds");
    std::fs::write(
        &config,
        format!(
            "[audio]\ncapture_device = {:?}\nplayback_device = \"cb_speaker\"\n{}\
             [button]\n{}\
             [library]\nrecordings_dir = {:?}\nsounds_dir = {sounds:?}\n\
             [keywords]\nenabled = false\n",
            c.capture, c.audio, c.button, c.recordings
        ),
    )
    .expect("write the test config");
    config
}

/// `chatterbox --config CONFIG sim --allow-root --virtual-time` with the sandbox's ALSA
/// and info logging; add `--script FILE` and the rest.
pub fn sim(sb: &AlsaSandbox, config: &Path) -> Command {
    let mut cmd = sim_real_time(sb, config);
    cmd.arg("--virtual-time");
    cmd
}

/// `chatterbox --config CONFIG sim --allow-root` in real time: the button is a simulated
/// pin polled and debounced by the real button thread, as on the Pi.
pub fn sim_real_time(sb: &AlsaSandbox, config: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_chatterbox"));
    sb.configure(&mut cmd);
    cmd.arg("--config")
        .arg(config)
        .args(["sim", "--allow-root"])
        .env("RUST_LOG", "info");
    cmd
}

/// Puts two valid clips (copies of the "empty" cue) into the sandbox's `rec` folder, named
/// as clips from before sequence numbers; returns the folder.
pub fn seed_two_clips(sb: &AlsaSandbox) -> PathBuf {
    let rec = sb.home().join("rec");
    std::fs::create_dir_all(&rec).expect("recordings folder");
    let cue = Path::new(env!("CARGO_MANIFEST_DIR")).join("sounds/empty.wav");
    for name in [
        "2026-01-01_10-00-00_voice.wav",
        "2026-01-01_10-00-01_voice.wav",
    ] {
        std::fs::copy(&cue, rec.join(name)).expect("seed clip");
    }
    rec
}
