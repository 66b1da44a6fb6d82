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
        let script = self.sb.home().join("s.sim");
        std::fs::write(&script, "press\nrelease\nsettle\n").unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_chatterbox"));
        self.sb.configure(&mut cmd);
        cmd.arg("--config")
            .arg(&self.config)
            .args(["supervise", "--allow-root", "--first-backoff-ms", "100"])
            .args(extra)
            .args(["--", "sim", "--allow-root", "--virtual-time", "--script"])
            .arg(&script)
            .env("CHATTERBOX_LOCK", &self.lock)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null());
        if let Some(spec) = panic_spec {
            cmd.env("CHATTERBOX_TEST_PANIC", spec);
        }
        cmd
    }
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
    let before = toy.clips();
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
    assert_eq!(toy.clips(), before, "the recordings are intact");
}

#[test]
fn a_crash_loop_gives_up_with_a_log_line_until_stopped() {
    let toy = Toy::new();
    let log_path = toy.sb.home().join("supervisor.log");
    let log_file = std::fs::File::create(&log_path).unwrap();
    let mut child = toy
        .supervise(&["--max-crashes", "2"], Some("controller"))
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .spawn()
        .unwrap();
    // 3 failures, 100 and 200 ms apart; then it waits, red LED on, until told to stop.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&log_path)
        .unwrap()
        .contains("not starting it again")
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
    assert!(log.contains("red LED"), "{log}");
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
