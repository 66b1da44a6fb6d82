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
