//! The toy comes back: a thread that panics ends the process with a log line naming it,
//! `chatterbox supervise` starts it again with the recordings intact, gives up with a clear
//! message after too many failures, and only one instance may run at a time.
//!
//! The supervised child here is a scripted `sim` (the real `run` needs GPIO); faults come
//! from the test-only `CHATTERBOX_TEST_PANIC` hook.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use chatterbox::instance::InstanceLock;
use common::alsa::{sine_i16, AlsaSandbox};
use common::toy::{seed_two_clips, write_config, ToyConfig};

struct Toy {
    sb: AlsaSandbox,
    config: PathBuf,
    lock: PathBuf,
}

impl Toy {
    fn new() -> Toy {
        let sb = AlsaSandbox::new().expect("sandbox");
        sb.write_mic(&sine_i16(440.0, 48_000, 2, 48_000 * 30, 0.3))
            .expect("mic file");
        let config = write_config(&sb, &ToyConfig::default());
        seed_two_clips(&sb);
        let lock = sb.home().join("chatterbox.lock");
        Toy { sb, config, lock }
    }

    fn clips(&self) -> Vec<(String, Vec<u8>)> {
        let mut clips: Vec<(String, Vec<u8>)> = std::fs::read_dir(self.sb.home().join("rec"))
            .unwrap()
            .flatten()
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        clips.sort();
        clips
    }

    /// `chatterbox supervise` of a scripted sim that presses the button once.
    fn supervise(&self, extra: &[&str], panic_spec: Option<&str>) -> Command {
        self.supervise_script("press\nrelease\nsettle\n", extra, panic_spec)
    }

    /// `chatterbox supervise` of a sim running `script` in virtual time.
    fn supervise_script(&self, script: &str, extra: &[&str], panic_spec: Option<&str>) -> Command {
        self.supervise_sim(script, true, extra, panic_spec)
    }

    fn supervise_sim(
        &self,
        script: &str,
        virtual_time: bool,
        extra: &[&str],
        panic_spec: Option<&str>,
    ) -> Command {
        let text = script;
        let script = self.sb.home().join("s.sim");
        std::fs::write(&script, text).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_chatterbox"));
        self.sb.configure(&mut cmd);
        cmd.arg("--config")
            .arg(&self.config)
            .args(["supervise", "--allow-root", "--first-backoff-ms", "100"])
            .args(extra)
            .args(["--", "sim", "--allow-root", "--script"])
            .arg(&script)
            .args(virtual_time.then_some("--virtual-time"))
            .env("CHATTERBOX_LOCK", &self.lock)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null());
        if let Some(spec) = panic_spec {
            cmd.env("CHATTERBOX_TEST_PANIC", spec);
        }
        cmd
    }
}

fn log_of(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_panicking_thread_ends_the_process_and_the_supervisor_brings_it_back() {
    let toy = Toy::new();
    let flag = toy.sb.home().join("panic-once");
    std::fs::write(&flag, "").unwrap();
    let spec = format!("player@{}", flag.display());
    let out = toy.supervise(&[], Some(&spec)).output().unwrap();
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("the player thread panicked"),
        "the log names the thread:\n{log}"
    );
    assert!(log.contains("status: 101"), "the child exits 101:\n{log}");
    assert!(
        log.contains("starting it again"),
        "the supervisor restarts:\n{log}"
    );
    assert_eq!(
        log.matches("supervisor: started the toy").count(),
        2,
        "one crash, one healthy run:\n{log}"
    );
    assert!(!flag.exists());
}

#[test]
fn a_crash_mid_recording_keeps_every_clip_and_the_restart_records_again() {
    let toy = Toy::new();
    let before = toy.clips();
    let flag = toy.sb.home().join("panic-once");
    std::fs::write(&flag, "").unwrap();
    let spec = format!("recorder@{}", flag.display());
    let out = toy
        .supervise_script("hold 10\nsettle\n", &[], Some(&spec))
        .output()
        .unwrap();
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("the recorder thread panicked"), "{log}");
    assert!(
        log.contains("removed 1 unfinished recording(s)"),
        "the restart cleans the half-written clip:\n{log}"
    );
    let after = toy.clips();
    assert_eq!(
        after.len(),
        before.len() + 1,
        "one clip from the healthy run: {log}"
    );
    for clip in &before {
        assert!(after.contains(clip), "{} changed or vanished", clip.0);
    }
    assert!(
        after.iter().all(|(name, _)| !name.starts_with('.')),
        "no temp file is left: {:?}",
        after.iter().map(|c| &c.0).collect::<Vec<_>>()
    );
}

#[test]
fn a_killed_supervisor_takes_its_toy_with_it_and_never_leaves_it_unlocked() {
    let toy = Toy::new();
    let mut sup = toy
        .supervise_sim("wait 600\n", false, &[], None)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let children = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let child: u32 = loop {
        if let Some(c) = children(sup.id()).split_whitespace().next() {
            break c.parse().unwrap();
        }
        assert!(Instant::now() < deadline, "no child started");
        std::thread::sleep(Duration::from_millis(20));
    };
    // SIGKILL: no chance to pass anything on (the OOM killer, `kill -9`).
    sup.kill().unwrap();
    sup.wait().unwrap();
    let alive = || {
        std::path::Path::new(&format!("/proc/{child}")).exists() && {
            // A zombie (reaped by init soon) no longer runs.
            let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
            !stat.contains(") Z ")
        }
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while alive() {
        assert!(
            InstanceLock::acquire(&toy.lock).is_err(),
            "the orphaned toy runs without the lock: a second one could start"
        );
        assert!(Instant::now() < deadline, "the toy outlived its supervisor");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Free once the toy is gone. Its main thread shows as a zombie before its other threads
    // have exited, and the kernel drops the lock with the last of them: a moment later.
    loop {
        match InstanceLock::acquire(&toy.lock) {
            Ok(_) => break,
            Err(e) => assert!(
                Instant::now() < deadline,
                "still locked after the toy died: {e:?}"
            ),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_crash_loop_gives_up_with_a_log_line_until_stopped() {
    let toy = Toy::new();
    let log_path = toy.sb.home().join("supervisor.log");
    let log_file = std::fs::File::create(&log_path).unwrap();
    let mut child = toy
        .supervise(
            &["--max-crashes", "2", "--retry-after-s", "600"],
            Some("controller"),
        )
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .spawn()
        .unwrap();
    // 3 failures, 100 and 200 ms apart; then it waits, red LED on, until told to stop.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&log_path)
        .unwrap()
        .contains("tried again only every 10 min")
    {
        assert!(Instant::now() < deadline, "never gave up");
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the supervisor ended by itself ({status}) instead of waiting");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "it waits after giving up"
    );
    assert_eq!(
        log_of(&log_path)
            .matches("supervisor: started the toy")
            .count(),
        3,
        "no fourth start before the long retry"
    );
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = child.wait().unwrap();
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(!status.success(), "giving up is a failure:\n{log}");
    assert_eq!(
        log.matches("the controller thread panicked").count(),
        3,
        "{log}"
    );
    // No GPIO here: the attempt to light the LED is what can be seen.
    assert!(log.contains("could not light the red LED"), "{log}");
    assert_eq!(toy.clips().len(), 2);
}

#[test]
fn a_second_instance_is_refused_with_a_clear_message() {
    let toy = Toy::new();
    let _first = InstanceLock::acquire(&toy.lock).expect("the test holds the lock");
    for args in [
        &["run", "--allow-root"][..],
        &["supervise", "--allow-root"][..],
    ] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_chatterbox"));
        toy.sb.configure(&mut cmd);
        let out = cmd
            .arg("--config")
            .arg(&toy.config)
            .args(args)
            .env("CHATTERBOX_LOCK", &toy.lock)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let log = text(&out);
        assert!(!out.status.success(), "{args:?}: {log}");
        assert!(
            log.contains("another chatterbox is already running")
                && log.contains(&format!("process {}", std::process::id())),
            "{args:?}: {log}"
        );
        assert!(
            !log.contains("GPIO"),
            "refused before touching the pins: {log}"
        );
    }
}
