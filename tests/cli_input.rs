//! Bad command-line input: each mistake is refused with a non-zero exit and a message
//! that names the argument (or file) and what would be accepted. Nothing is started.

use std::process::Command;

fn run(args: &[&str]) -> (bool, String) {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_chatterbox"))
        .args(args)
        .current_dir(home.path())
        .env("HOME", home.path())
        .env_remove("ALSA_CONFIG_PATH")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_bad_argument_is_named_with_what_is_accepted() {
    let cases: &[(&[&str], &[&str])] = &[
        (&["sim", "--seed", "abc"], &["--seed", "abc"]),
        (
            &["record", "-s", "0", "x.wav"],
            &["--seconds", "more than 0", "3600"],
        ),
        (&["record", "-s", "NaN", "x.wav"], &["--seconds", "3600"]),
        (&["record", "-s", "4000", "x.wav"], &["--seconds", "3600"]),
        (
            &["screenshot", "--size", "10x10", "a.png"],
            &["--size", "128x64"],
        ),
        (
            &["screenshot", "--scale", "0", "a.png"],
            &["scale", "1 to 16"],
        ),
        (
            &["screenshot", "--screen", "nope", "a.png"],
            &["nope", "idle"],
        ),
        (
            &["--config", "/nonexistent/c.toml", "devices"],
            &["/nonexistent/c.toml", "--config"],
        ),
        (
            &["sim", "--allow-root", "--script", "/nonexistent/s.sim"],
            &["/nonexistent/s.sim"],
        ),
        (&["bogus"], &["bogus"]),
    ];
    for (args, needles) in cases {
        let (ok, err) = run(args);
        assert!(!ok, "{args:?} was accepted");
        for n in *needles {
            assert!(err.contains(n), "{args:?}: message lacks {n:?}:\n{err}");
        }
    }
}

#[test]
fn a_bad_script_line_is_refused_with_its_line_number() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("s.sim");
    std::fs::write(&script, "press\nwait soon\n").unwrap();
    let (ok, err) = run(&["sim", "--allow-root", "--script", script.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("line 2") && err.contains("soon"), "{err}");
}

#[test]
fn the_daemon_refuses_root_without_allow_root() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED: not root (the refusal itself is unit-tested in src/cli.rs)");
        return;
    }
    for sub in ["run", "sim"] {
        let (ok, err) = run(&[sub]);
        assert!(!ok, "{sub} ran as root");
        assert!(
            err.contains("will not run as root") && err.contains("--allow-root"),
            "{sub}: {err}"
        );
    }
}
