//! What a new user meets first, with the real binary: it works from any folder (the shipped
//! model is found without the working directory).

use std::path::Path;
use std::process::{Command, Output};

fn listen_from_elsewhere() -> Output {
    let elsewhere = tempfile::tempdir().unwrap();
    let clip =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kws_clips/up__mbrola-en1.wav");
    std::fs::copy(&clip, elsewhere.path().join("clip.wav")).unwrap();
    Command::new(env!("CARGO_BIN_EXE_chatterbox"))
        .args(["listen", "--all", "clip.wav"])
        .current_dir(elsewhere.path())
        .output()
        .unwrap()
}

#[test]
fn listen_works_from_any_folder() {
    let out = listen_from_elsewhere();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stderr: {stderr}");
    // The clip's best word, heard with the model found from the checkout.
    let top = stdout.split_whitespace().nth(2);
    assert_eq!(top, Some("up"), "stdout: {stdout}");
}

/// A normal start prints nothing from the libraries: LiteRT's INFO/WARNING lines
/// ("Creating LiteRT environment…", "NPU accelerator could not be loaded…") read like
/// faults. With `-v` they are in our log, at debug level.
#[test]
fn a_normal_start_prints_no_library_lines_and_verbose_shows_them() {
    let out = listen_from_elsewhere();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stderr: {stderr}");
    assert!(
        stderr.trim().is_empty(),
        "library lines on stderr:\n{stderr}"
    );

    let clip =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kws_clips/up__mbrola-en1.wav");
    let out = Command::new(env!("CARGO_BIN_EXE_chatterbox"))
        .arg("-v")
        .arg("listen")
        .arg(&clip)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stderr: {stderr}");
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("DEBUG") && l.contains("LiteRT: ")),
        "{stderr}"
    );
    assert!(
        !stderr
            .lines()
            .any(|l| l.starts_with("INFO: ") || l.starts_with("WARNING: ")),
        "{stderr}"
    );
}

/// `chatterbox listen --all FILE | head -1`: the reader goes away after a line; listen stops
/// quietly, as any Unix tool does, instead of panicking on the closed pipe.
#[test]
fn listen_into_a_pipe_that_closes_stops_quietly() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    // Two minutes of a tone: far more lines than the reader takes, written after it left.
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("tone.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&clip, spec).unwrap();
    for i in 0..16_000 * 120 {
        let x = (i as f32 * 440.0 * std::f32::consts::TAU / 16_000.0).sin();
        w.write_sample((x * 8000.0) as i16).unwrap();
    }
    w.finalize().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_chatterbox"))
        .args(["listen", "--all"])
        .arg(&clip)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.contains(" s "), "{first}");
    // The reader is gone (stdout dropped above).
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}: {stderr}", out.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}
