//! The recordings folder misbehaving under a running toy: full, read-only, impossible.
//!
//! The full and read-only cases put the folder on a small tmpfs (`mount -t tmpfs`), which
//! needs root (or CAP_SYS_ADMIN); where mounting is not permitted those tests say so and
//! pass without checking anything; so does the wrong-owner case, which runs the toy as
//! `nobody` and so needs root to start it. The "cannot be created" case runs everywhere.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::alsa::{sine_i16, AlsaSandbox};
use common::toy::{sim, write_config, ToyConfig};

const RATE: u32 = 16_000;

/// A tmpfs mounted for one test, unmounted on drop.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={size},mode=0750"))
            .arg("tmpfs")
            .arg(dir)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs {
                dir: dir.to_path_buf(),
            }),
            Ok(o) => {
                eprintln!(
                    "SKIPPED: cannot mount a tmpfs here (needs root): {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run mount: {e}");
                None
            }
        }
    }

    fn remount_read_only(&self) {
        let ok = Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.dir)
            .status()
            .unwrap()
            .success();
        assert!(ok, "remount read-only");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

struct Toy {
    sb: AlsaSandbox,
    config: PathBuf,
}

impl Toy {
    fn new(recordings: &str) -> Toy {
        let sb = AlsaSandbox::new().expect("sandbox");
        sb.write_mic(&sine_i16(440.0, RATE, 1, RATE as usize * 10, 0.3))
            .unwrap();
        let config = write_config(
            &sb,
            &ToyConfig {
                audio: &format!("rate = {RATE}\nchannels = 1\npace_capture = false\nvolume = 10\n"),
                button: "record_seconds = 2.0\n",
                recordings,
                ..ToyConfig::default()
            },
        );
        Toy { sb, config }
    }

    fn rec(&self) -> PathBuf {
        self.sb.home().join("rec")
    }

    fn command(&self) -> Command {
        sim(&self.sb, &self.config)
    }

    fn script(&self, script: &str) -> std::process::Output {
        let path = self.sb.home().join("s.sim");
        std::fs::write(&path, script).unwrap();
        self.command()
            .arg("--script")
            .arg(&path)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.rec())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

/// A sim driven line by line over stdin, its stdout read on a thread.
struct Live {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Live {
    fn start(mut cmd: Command) -> Live {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    return;
                }
            }
        });
        Live {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    fn send(&mut self, text: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(text.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Reads stdout until a line contains `needle`; returns everything read since the
    /// last call. Gives up (panics with what it saw) after a minute.
    fn until(&mut self, needle: &str) -> String {
        let mut got = Vec::new();
        loop {
            match self.lines.recv_timeout(Duration::from_secs(60)) {
                Ok(l) => {
                    let done = l.contains(needle);
                    got.push(l.clone());
                    self.seen.push(l);
                    if done {
                        return got.join("\n");
                    }
                }
                Err(_) => panic!("no line with {needle:?}; saw:\n{}", self.seen.join("\n")),
            }
        }
    }

    fn quit(mut self) -> String {
        self.send("quit\n");
        drop(self.child.stdin.take());
        let out = self.child.wait_with_output().unwrap();
        assert!(out.status.success(), "sim exit {}", out.status);
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

/// Fills the filesystem under `dir` with `filler` until it is full.
fn fill(filler: &Path) {
    let mut f = std::fs::File::create(filler).unwrap();
    let block = vec![0x55u8; 4096];
    while f.write_all(&block).is_ok() {}
    let _ = f.sync_all();
}

#[test]
fn a_full_disk_fails_the_recording_cleanly_and_the_next_one_works_once_space_is_back() {
    let toy = Toy::new("rec");
    let Some(_fs) = Tmpfs::mount(&toy.rec(), "300k") else {
        return;
    };
    // One clip (64 KB) recorded while there is room.
    let out = toy.script("hold 10\nsettle\n");
    assert!(out.status.success());
    let first = toy.names();
    assert_eq!(first.len(), 1, "{first:?}");
    let first_bytes = std::fs::read(toy.rec().join(&first[0])).unwrap();

    // Fill the disk, then free 16 KB: the next clip gets a quarter of the way and fails.
    let filler = toy.rec().join("filler.bin");
    fill(&filler);
    let len = std::fs::metadata(&filler).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&filler)
        .unwrap()
        .set_len(len - 16 * 1024)
        .unwrap();

    let mut live = Live::start(toy.command());
    live.send("hold 10\nsettle\n");
    let screen = live.until("Recording failed");
    assert!(
        screen.contains("is full") && screen.contains(&toy.rec().display().to_string()),
        "the screen names the full folder:\n{screen}"
    );
    live.send("status\n");
    live.until("[status]");
    let mut names = toy.names();
    names.retain(|n| n != "filler.bin");
    assert_eq!(names, first, "no partial clip and no temp file is left");
    assert_eq!(
        std::fs::read(toy.rec().join(&first[0])).unwrap(),
        first_bytes
    );

    // Space comes back: the same running toy records again.
    std::fs::remove_file(&filler).unwrap();
    live.send("hold 10\nsettle\nstatus\n");
    let status = live.until("[status]");
    assert!(status.contains("clips=2"), "{status}");
    let log = live.quit();
    assert!(
        log.contains("is full (no space left on the device)"),
        "the log says the disk is full:\n{log}"
    );
    let names = toy.names();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.iter().all(|n| n.ends_with(".wav")), "{names:?}");
    assert_eq!(
        std::fs::read(toy.rec().join(&first[0])).unwrap(),
        first_bytes
    );
}

#[test]
fn a_read_only_folder_still_plays_and_recording_says_why_it_fails() {
    let toy = Toy::new("rec");
    let Some(fs) = Tmpfs::mount(&toy.rec(), "1m") else {
        return;
    };
    let tone = write_tone(&toy.rec().join("old.wav"));
    fs.remount_read_only();

    let out = toy.script("press\nrelease\nsettle\nhold 10\nsettle\n");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let dir = toy.rec().display().to_string();
    assert!(
        stderr.contains(&format!("recordings folder {dir} is read-only")),
        "warned at start:\n{stderr}"
    );
    assert!(
        stdout.contains("[screen] Recording failed: recordings folder")
            && stdout.contains("read-only"),
        "{stdout}"
    );
    let played = toy.sb.read_speaker().unwrap();
    assert!(
        played.windows(64).any(|w| w == &tone[..64]),
        "the clip on the read-only folder was played"
    );
    assert_eq!(toy.names(), vec!["old.wav"]);
}

/// Writes a 0.5 s 1 kHz clip; returns its samples.
fn write_tone(path: &Path) -> Vec<i16> {
    let tone = sine_i16(1000.0, RATE, 1, RATE as usize / 2, 0.5);
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for s in &tone {
        w.write_sample(*s).unwrap();
    }
    w.finalize().unwrap();
    tone
}

#[test]
fn a_folder_this_user_cannot_write_still_plays_and_says_how_to_fix_it() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED: needs root to run the toy as another user (nobody)");
        return;
    }
    let toy = Toy::new("rec");
    let home = toy.sb.home();
    // The toy runs as nobody: it may read its sandbox and write the speaker file, but the
    // recordings folder stays root's, mode 0755.
    std::fs::set_permissions(home, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(toy.sb.speaker_file(), b"").unwrap();
    std::fs::set_permissions(
        toy.sb.speaker_file(),
        std::fs::Permissions::from_mode(0o666),
    )
    .unwrap();
    std::fs::create_dir(toy.rec()).unwrap();
    std::fs::set_permissions(toy.rec(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let tone = write_tone(&toy.rec().join("old.wav"));
    std::fs::set_permissions(
        toy.rec().join("old.wav"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let script = home.join("s.sim");
    std::fs::write(&script, "press\nrelease\nsettle\nhold 10\nsettle\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = toy
        .command()
        .arg("--script")
        .arg(&script)
        .uid(65534)
        .gid(65534)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let dir = toy.rec().display().to_string();
    assert!(
        stderr.contains(&format!(
            "recordings folder {dir} is not writable by this user"
        )) && stderr.contains("chown"),
        "warned at start with the fix:\n{stderr}"
    );
    assert!(
        stdout.contains("[screen] Recording failed: recordings folder")
            && stdout.contains("not writable"),
        "{stdout}"
    );
    let played = toy.sb.read_speaker().unwrap();
    assert!(
        played.windows(64).any(|w| w == &tone[..64]),
        "the clip was played"
    );
    assert_eq!(toy.names(), vec!["old.wav"]);
}

#[test]
fn a_folder_that_cannot_be_created_is_a_clear_error() {
    let toy = Toy::new("not-a-folder/rec");
    std::fs::write(toy.sb.home().join("not-a-folder"), "a file").unwrap();
    let out = toy.script("press\nrelease\n");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not-a-folder/rec") && err.contains("library.recordings_dir"),
        "names the folder and the fix:\n{err}"
    );
}
