//! scripts/install.sh and scripts/uninstall.sh, run for real in a throwaway root.
//!
//! Every system command the scripts use is replaced, through their environment overrides,
//! by a small fake that logs its arguments (useradd, usermod, id, getent, chown, crontab,
//! systemctl, alsactl, apt-get, apt-cache, userdel); the chatterbox binary is a fake that
//! answers `setup-audio --output FILE` like the real one. Files all land under the temp root.
//!
//! What is checked: the first install puts every file where it belongs, a second run changes
//! nothing (same tree: paths, modes, contents and modification times; same single crontab
//! line; no second useradd), a user's config and other crontab lines survive, `--systemd`
//! swaps the cron line for the unit and back, uninstall leaves only the recordings, and
//! `--purge` leaves no file at all; a live process standing in for the toy is stopped when
//! the start mode changes and before uninstall removes anything, so no restart loop is left
//! behind and `userdel` never meets a busy user.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const FAKE_BINARY: &str = r#"#!/bin/sh
# A stand-in for chatterbox: only `setup-audio --output FILE` does anything.
echo "chatterbox $*" >> "$FAKE/calls.log"
if [ "$1" = setup-audio ] && [ "$2" = --output ]; then
    # Like the real one: a file it did not write is refused, never replaced or copied.
    if [ -f "$3" ] && ! head -n 1 "$3" | grep -q '^# Written by `chatterbox setup-audio`.'; then
        echo "$3 was not written by chatterbox" >&2
        exit 1
    fi
    # Like the real one: an unchanged file is not rewritten.
    printf '%s\n' '# Written by `chatterbox setup-audio`. Running it again replaces this file.' 'pcm.chatterbox_mic { type plug slave.pcm "hw:CARD=Zero,DEV=0" }' > "$3.new"
    if cmp -s "$3.new" "$3"; then rm "$3.new"; else mv "$3.new" "$3"; fi
fi
"#;

/// (name, script) of every fake system command.
fn fakes() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            "id",
            r#"#!/bin/sh
echo "id $*" >> "$FAKE/calls.log"
[ "$1" = -u ] && [ -f "$FAKE/users/$2" ]
"#,
        ),
        (
            "useradd",
            r#"#!/bin/sh
echo "useradd $*" >> "$FAKE/calls.log"
for last in "$@"; do :; done
mkdir -p "$FAKE/users" && touch "$FAKE/users/$last"
"#,
        ),
        (
            "userdel",
            r#"#!/bin/sh
echo "userdel $*" >> "$FAKE/calls.log"
# Like the real one: a user with a running process cannot be removed.
for pid in $(cat "$FAKE/procs-$1" 2>/dev/null); do
    if kill -0 "$pid" 2>/dev/null; then
        echo "userdel: user $1 is currently used by process $pid" >&2
        exit 8
    fi
done
rm -f "$FAKE/users/$1"
"#,
        ),
        // The user's processes are the PIDs listed in $FAKE/procs-USER (live stand-ins the
        // test started); pkill and pgrep act on those for real.
        (
            "pkill",
            r#"#!/bin/sh
echo "pkill $*" >> "$FAKE/calls.log"
sig="${1#-}"
[ "$2" = -u ] || exit 2
found=1
for pid in $(cat "$FAKE/procs-$3" 2>/dev/null); do
    if kill -0 "$pid" 2>/dev/null; then
        kill -"$sig" "$pid" && found=0
    fi
done
exit $found
"#,
        ),
        (
            "pgrep",
            r#"#!/bin/sh
[ "$1" = -u ] || exit 2
for pid in $(cat "$FAKE/procs-$2" 2>/dev/null); do
    kill -0 "$pid" 2>/dev/null && exit 0
done
exit 1
"#,
        ),
        (
            "crontab",
            r#"#!/bin/sh
echo "crontab $*" >> "$FAKE/calls.log"
[ "$1" = -u ] || exit 2
f="$FAKE/crontab-$2"
case "$3" in
-l) [ -f "$f" ] || { echo "no crontab for $2" >&2; exit 1; }; cat "$f" ;;
-) cat > "$f" ;;
-r) rm -f "$f" ;;
*) exit 2 ;;
esac
"#,
        ),
        (
            "apt-cache",
            "#!/bin/sh\necho \"apt-cache $*\" >> \"$FAKE/calls.log\"\nexit 100\n",
        ),
        (
            "usermod",
            "#!/bin/sh\necho \"usermod $*\" >> \"$FAKE/calls.log\"\n",
        ),
        (
            "getent",
            "#!/bin/sh\necho \"getent $*\" >> \"$FAKE/calls.log\"\n",
        ),
        (
            "chown",
            "#!/bin/sh\necho \"chown $*\" >> \"$FAKE/calls.log\"\n",
        ),
        (
            "systemctl",
            "#!/bin/sh\necho \"systemctl $*\" >> \"$FAKE/calls.log\"\n",
        ),
        (
            "alsactl",
            "#!/bin/sh\necho \"alsactl $*\" >> \"$FAKE/calls.log\"\n",
        ),
        (
            "apt-get",
            "#!/bin/sh\necho \"apt-get $*\" >> \"$FAKE/calls.log\"\n",
        ),
    ]
}

struct Sandbox {
    _dir: tempfile::TempDir,
    root: PathBuf,
    fake: PathBuf,
    src: PathBuf,
    binary: PathBuf,
}

fn write_exec(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

impl Sandbox {
    fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let fake = dir.path().join("fake");
        let src = dir.path().join("src");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(fake.join("bin")).unwrap();
        for (name, script) in fakes() {
            write_exec(&fake.join("bin").join(name), script);
        }
        let binary = dir.path().join("chatterbox-build");
        write_exec(&binary, FAKE_BINARY);

        // A source checkout: sounds, a model, the LiteRT library, the example config.
        for (rel, bytes) in [
            ("sounds/burp.wav", &b"RIFF burp"[..]),
            ("sounds/erase.wav", b"RIFF erase"),
            ("models/kws.toml", b"labels = \"kws.labels\"\n"),
            ("models/kws.tflite", b"TFL3"),
            ("third_party/litert/testarch/libLiteRt.so", b"\x7fELF"),
            (
                "config.example.toml",
                b"[audio]\nvolume = 7\n\n[library]\nrecordings_dir = \"recordings\"\n\
                  sounds_dir = \"sounds\"\n\n[keywords]\nmodel = \"models/kws.toml\"\n",
            ),
        ] {
            let p = src.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, bytes).unwrap();
        }
        // Prefer the project's real example config, so the test follows its keys.
        let real_example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
        if real_example.is_file() {
            std::fs::copy(&real_example, src.join("config.example.toml")).unwrap();
        }
        Sandbox {
            _dir: dir,
            root,
            fake,
            src,
            binary,
        }
    }

    fn script(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("scripts")
            .join(name)
    }

    fn run(&self, script: &str, args: &[&str]) -> String {
        let bin = self.fake.join("bin");
        let mut cmd = Command::new("bash");
        cmd.arg(Self::script(script)).args(args);
        cmd.env("ROOT", &self.root)
            .env("SRC_DIR", &self.src)
            .env("ARCH", "testarch")
            .env("FAKE", &self.fake)
            .env_remove("PREFIX")
            .env_remove("CARGO_TARGET_DIR");
        for (var, name) in [
            ("ID", "id"),
            ("GETENT", "getent"),
            ("USERADD", "useradd"),
            ("USERMOD", "usermod"),
            ("USERDEL", "userdel"),
            ("CHOWN", "chown"),
            ("CRONTAB", "crontab"),
            ("SYSTEMCTL", "systemctl"),
            ("ALSACTL", "alsactl"),
            ("APT_GET", "apt-get"),
            ("APT_CACHE", "apt-cache"),
            ("PKILL", "pkill"),
            ("PGREP", "pgrep"),
        ] {
            cmd.env(var, bin.join(name));
        }
        let out = cmd.output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{script} {args:?} failed:\n{text}");
        text
    }

    fn install(&self, extra: &[&str]) -> String {
        let binary = self.binary.to_str().unwrap().to_string();
        let mut args = vec!["--binary", binary.as_str()];
        args.extend_from_slice(extra);
        self.run("install.sh", &args)
    }

    fn crontab(&self) -> String {
        std::fs::read_to_string(self.fake.join("crontab-chatterbox")).unwrap_or_default()
    }

    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.fake.join("calls.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn file(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Starts a live process standing in for the running toy (as the chatterbox user, as
    /// far as the fake pkill, pgrep and userdel can tell).
    fn start_toy(&self) -> StandIn {
        let mut child = Command::new("sleep").arg("600").spawn().unwrap();
        let pid = child.id();
        let path = self.fake.join("procs-chatterbox");
        let mut pids = std::fs::read_to_string(&path).unwrap_or_default();
        pids.push_str(&format!("{pid}\n"));
        std::fs::write(&path, pids).unwrap();
        // Reaped at once when it ends, so a stopped stand-in is gone, not a zombie.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        StandIn { pid, ended: rx }
    }
}

/// A live process in place of the toy.
struct StandIn {
    pid: u32,
    ended: std::sync::mpsc::Receiver<std::io::Result<std::process::ExitStatus>>,
}

impl StandIn {
    /// `true` once the process has ended (waits a little for the reaper).
    fn stopped(&self) -> bool {
        self.ended
            .recv_timeout(std::time::Duration::from_secs(2))
            .is_ok()
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.pid.to_string())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// Everything about the tree that a careless re-run would change.
fn snapshot(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            let mode = meta.permissions().mode() & 0o7777;
            let desc = if meta.is_dir() {
                stack.push(path.clone());
                format!("dir {mode:o}")
            } else if meta.is_file() {
                let bytes = std::fs::read(&path).unwrap();
                let mut h = std::collections::hash_map::DefaultHasher::new();
                bytes.hash(&mut h);
                format!(
                    "file {mode:o} {} bytes hash {:x} mtime {:?}",
                    bytes.len(),
                    h.finish(),
                    meta.modified().unwrap()
                )
            } else {
                format!("other {mode:o}")
            };
            out.insert(rel, desc);
        }
    }
    out
}

fn files_under(root: &Path) -> Vec<String> {
    snapshot(root)
        .into_iter()
        .filter(|(_, d)| d.starts_with("file"))
        .map(|(p, _)| p)
        .collect()
}

const CRON_RUN: &str =
    "LD_LIBRARY_PATH=/usr/local/lib/chatterbox /usr/local/bin/chatterbox --config /etc/chatterbox/config.toml supervise";

#[test]
fn install_twice_changes_nothing_and_uninstall_keeps_only_recordings() {
    let sb = Sandbox::new();
    // The user already has a crontab line of their own; it must survive everything.
    std::fs::write(
        sb.fake.join("crontab-chatterbox"),
        "0 3 * * * /usr/bin/true\n",
    )
    .unwrap();
    std::fs::create_dir_all(sb.fake.join("users")).unwrap();

    sb.install(&[]);

    // Files where they belong.
    let bin = sb.file("usr/local/bin/chatterbox");
    assert_eq!(std::fs::read(&bin).unwrap(), FAKE_BINARY.as_bytes());
    assert_eq!(
        std::fs::metadata(&bin).unwrap().permissions().mode() & 0o777,
        0o755
    );
    for rel in [
        "usr/local/share/chatterbox/sounds/burp.wav",
        "usr/local/share/chatterbox/sounds/erase.wav",
        "usr/local/share/chatterbox/models/kws.toml",
        "usr/local/share/chatterbox/models/kws.tflite",
        "usr/local/lib/chatterbox/libLiteRt.so",
        "etc/chatterbox/config.toml",
        "etc/alsa/conf.d/60-chatterbox.conf",
    ] {
        assert!(sb.file(rel).is_file(), "{rel} missing");
    }
    assert!(sb.file("var/lib/chatterbox/recordings").is_dir());
    let config = std::fs::read_to_string(sb.file("etc/chatterbox/config.toml")).unwrap();
    assert!(
        config.contains("recordings_dir = \"/var/lib/chatterbox/recordings\"\n"),
        "{config}"
    );
    assert!(
        config.contains("sounds_dir = \"/usr/local/share/chatterbox/sounds\"\n"),
        "{config}"
    );
    assert!(
        config.contains("model = \"/usr/local/share/chatterbox/models/kws.toml\"\n"),
        "{config}"
    );
    assert!(
        config.contains("volume = 7"),
        "the rest of the example is kept"
    );
    // The installed config must be one the program accepts (unknown keys are refused at
    // start); every subcommand loads it first.
    let check = Command::new(env!("CARGO_BIN_EXE_chatterbox"))
        .arg("--config")
        .arg(sb.file("etc/chatterbox/config.toml"))
        .args(["screenshot", "--screen", "list"])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "chatterbox refused the installed config: {}",
        String::from_utf8_lossy(&check.stderr)
    );

    // One @reboot line, the user's line kept.
    let cron = sb.crontab();
    assert_eq!(cron.matches("@reboot").count(), 1, "{cron}");
    assert!(cron.contains(CRON_RUN), "{cron}");
    assert!(cron.contains("0 3 * * * /usr/bin/true"), "{cron}");

    // The system commands it ran.
    let calls = sb.calls();
    let count = |prefix: &str| calls.iter().filter(|c| c.starts_with(prefix)).count();
    assert_eq!(count("useradd --system"), 1, "{calls:#?}");
    assert!(
        calls
            .iter()
            .any(|c| c == "usermod -a -G audio,gpio,i2c chatterbox"),
        "{calls:#?}"
    );
    assert!(
        calls
            .iter()
            .any(|c| c == "apt-get install -y --no-install-recommends libasound2 alsa-utils"),
        "{calls:#?}"
    );
    assert!(calls
        .iter()
        .any(|c| c.starts_with("chatterbox setup-audio --output")
            && c.ends_with("/etc/alsa/conf.d/60-chatterbox.conf")));
    assert!(
        !sb.file("etc/asound.conf").exists(),
        "the system-wide default was taken over"
    );
    assert_eq!(count("alsactl store"), 1);
    assert!(calls
        .iter()
        .any(|c| c.starts_with("chown chatterbox:chatterbox")));

    // Second run: nothing changes.
    let before = snapshot(&sb.root);
    let cron_before = sb.crontab();
    sb.install(&[]);
    assert_eq!(snapshot(&sb.root), before, "a second install changed files");
    assert_eq!(sb.crontab(), cron_before);
    assert_eq!(count("useradd"), 1);
    let calls = sb.calls();
    assert_eq!(calls.iter().filter(|c| c.starts_with("useradd")).count(), 1);

    // The owner's config edits are never overwritten.
    std::fs::write(
        sb.file("etc/chatterbox/config.toml"),
        "[audio]\nvolume = 3\n",
    )
    .unwrap();
    sb.install(&[]);
    assert_eq!(
        std::fs::read_to_string(sb.file("etc/chatterbox/config.toml")).unwrap(),
        "[audio]\nvolume = 3\n"
    );

    // Uninstall: only the recordings stay, and the user's crontab line.
    std::fs::write(sb.file("var/lib/chatterbox/recordings/clip.wav"), b"RIFF").unwrap();
    sb.run("uninstall.sh", &[]);
    assert_eq!(
        files_under(&sb.root),
        vec!["var/lib/chatterbox/recordings/clip.wav"]
    );
    let cron = sb.crontab();
    assert!(!cron.contains("chatterbox"), "{cron}");
    assert!(cron.contains("0 3 * * * /usr/bin/true"), "{cron}");
    assert!(!sb.calls().iter().any(|c| c.starts_with("userdel")));
}

#[test]
fn systemd_replaces_cron_and_back() {
    let sb = Sandbox::new();
    sb.install(&[]);
    assert_eq!(sb.crontab().matches("@reboot").count(), 1);

    sb.install(&["--systemd"]);
    let unit = std::fs::read_to_string(sb.file("etc/systemd/system/chatterbox.service")).unwrap();
    assert!(
        unit.contains(
            "\nExecStart=/usr/local/bin/chatterbox --config /etc/chatterbox/config.toml supervise\n"
        ),
        "{unit}"
    );
    assert!(unit.contains("\nRestart=on-failure\n"), "{unit}");
    assert!(unit.contains("\nUser=chatterbox\n"), "{unit}");
    assert!(
        unit.contains("\nEnvironment=LD_LIBRARY_PATH=/usr/local/lib/chatterbox\n"),
        "{unit}"
    );
    assert!(!unit.contains('@'), "a placeholder was left: {unit}");
    assert!(
        !sb.crontab().contains("@reboot"),
        "cron line left next to the unit"
    );
    let calls = sb.calls();
    assert!(
        calls
            .iter()
            .any(|c| c == "systemctl enable chatterbox.service"),
        "{calls:#?}"
    );

    // Idempotent in this mode too.
    let before = snapshot(&sb.root);
    sb.install(&["--systemd"]);
    assert_eq!(snapshot(&sb.root), before);

    // Back to cron: the unit goes.
    sb.install(&[]);
    assert!(!sb.file("etc/systemd/system/chatterbox.service").exists());
    assert_eq!(sb.crontab().matches("@reboot").count(), 1);
    assert!(sb
        .calls()
        .iter()
        .any(|c| c == "systemctl disable --now chatterbox.service"));
}

#[test]
fn purge_leaves_no_file_and_never_touches_the_owners_asound_conf() {
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.file("etc")).unwrap();
    std::fs::write(sb.file("etc/asound.conf"), "defaults.pcm.card 1\n").unwrap();
    sb.install(&["--systemd"]);
    sb.install(&["--systemd"]);
    assert_eq!(
        std::fs::read_to_string(sb.file("etc/asound.conf")).unwrap(),
        "defaults.pcm.card 1\n",
        "install changed the owner's ALSA config"
    );
    assert!(sb.file("etc/alsa/conf.d/60-chatterbox.conf").is_file());
    std::fs::write(sb.file("var/lib/chatterbox/recordings/clip.wav"), b"RIFF").unwrap();

    sb.run("uninstall.sh", &["--purge"]);
    assert_eq!(files_under(&sb.root), vec!["etc/asound.conf"]);
    assert_eq!(
        std::fs::read_to_string(sb.file("etc/asound.conf")).unwrap(),
        "defaults.pcm.card 1\n",
        "the owner's ALSA config is as it was"
    );
    assert!(sb.calls().iter().any(|c| c == "userdel chatterbox"));
    assert!(sb
        .calls()
        .iter()
        .any(|c| c == "systemctl disable --now chatterbox.service"));
}

#[test]
fn switching_start_mode_and_uninstalling_stop_the_running_toy() {
    let sb = Sandbox::new();
    sb.install(&[]);
    // The toy cron started at boot is running when the owner switches to systemd.
    let cron_toy = sb.start_toy();
    let out = sb.install(&["--systemd"]);
    assert!(
        cron_toy.stopped(),
        "the cron-started toy still runs beside the unit:\n{out}"
    );
    assert!(out.contains("stopped the running chatterbox"), "{out}");
    assert!(!sb.crontab().contains("@reboot"));

    // Uninstall stops the toy the unit runs, even if systemctl is no help, before any of
    // its files go; --purge then removes the user without a busy-user failure.
    let unit_toy = sb.start_toy();
    std::fs::write(sb.file("var/lib/chatterbox/recordings/clip.wav"), b"RIFF").unwrap();
    let out = sb.run("uninstall.sh", &["--purge"]);
    assert!(unit_toy.stopped(), "uninstall left the toy running:\n{out}");
    assert!(out.contains("removed user chatterbox"), "{out}");
    assert!(!sb.fake.join("users/chatterbox").exists());
    let calls = sb.calls();
    let stop = calls
        .iter()
        .position(|c| c.starts_with("pkill -TERM -u chatterbox"));
    let userdel = calls.iter().position(|c| c.starts_with("userdel"));
    assert!(stop.is_some() && stop < userdel, "{calls:#?}");
    assert_eq!(files_under(&sb.root), Vec::<String>::new());
}

#[test]
fn purge_reports_a_user_it_cannot_remove_and_still_finishes() {
    let sb = Sandbox::new();
    sb.install(&[]);
    // A process of the user that ignores SIGTERM and SIGKILL cannot exist; a userdel that
    // fails for another reason (here: a stand-in registered after the stop) must not abort
    // the uninstall half-way.
    std::fs::write(sb.file("var/lib/chatterbox/recordings/clip.wav"), b"RIFF").unwrap();
    write_exec(
        &sb.fake.join("bin/userdel"),
        "#!/bin/sh\necho \"userdel $*\" >> \"$FAKE/calls.log\"\necho 'userdel: user chatterbox is currently used by process 1' >&2\nexit 8\n",
    );
    let out = sb.run("uninstall.sh", &["--purge"]);
    assert!(out.contains("could not remove user chatterbox"), "{out}");
    assert!(out.contains("uninstall: done"), "{out}");
    assert_eq!(files_under(&sb.root), Vec::<String>::new());
}

#[test]
fn an_asound_conf_from_an_older_version_is_retired_and_the_owners_file_comes_back() {
    const OLD: &str = "# Written by `chatterbox setup-audio`. Run it again to regenerate.\n\
                       pcm.!default { type asym }\n";
    // With the owner's file kept beside it: install puts that back.
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.file("etc")).unwrap();
    std::fs::write(sb.file("etc/asound.conf"), OLD).unwrap();
    std::fs::write(
        sb.file("etc/asound.conf.chatterbox-backup"),
        "defaults.pcm.card 1\n",
    )
    .unwrap();
    let out = sb.install(&[]);
    assert!(out.contains("restored your /etc/asound.conf"), "{out}");
    assert_eq!(
        std::fs::read_to_string(sb.file("etc/asound.conf")).unwrap(),
        "defaults.pcm.card 1\n"
    );
    assert!(!sb.file("etc/asound.conf.chatterbox-backup").exists());
    // ...and uninstall leaves it there.
    sb.run("uninstall.sh", &["--purge"]);
    assert_eq!(files_under(&sb.root), vec!["etc/asound.conf"]);

    // An unmarked drop-in of the same name (somebody else's) is left alone by install
    // (setup-audio refuses it) and by uninstall; the old file then stays, since it is
    // what still sends "default" to the Codec Zero, until uninstall removes it.
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.file("etc/alsa/conf.d")).unwrap();
    std::fs::write(sb.file("etc/asound.conf"), OLD).unwrap();
    std::fs::write(sb.file("etc/alsa/conf.d/60-chatterbox.conf"), "# mine\n").unwrap();
    let out = sb.install(&[]);
    assert!(out.contains("setup-audio failed"), "{out}");
    assert!(sb.file("etc/asound.conf").exists());
    sb.run("uninstall.sh", &["--purge"]);
    assert_eq!(
        files_under(&sb.root),
        vec!["etc/alsa/conf.d/60-chatterbox.conf"]
    );
    assert_eq!(
        std::fs::read_to_string(sb.file("etc/alsa/conf.d/60-chatterbox.conf")).unwrap(),
        "# mine\n"
    );
}

/// A config written from the old example: the system default device (which the old
/// /etc/asound.conf made the Codec Zero) and forced pacing.
const OLD_CONFIG: &str = "[audio]\ncapture_device = \"default\"\nplayback_device = \"default\"\n\
                          pace_capture = true\nvolume = 4\n[keywords]\nthreshold = 0.85\n\
                          refractory_ms = 1500\n";
const OLD_ASOUND: &str = "# Written by `chatterbox setup-audio`. Run it again to regenerate.\n\
                          pcm.!default { type asym }\n";

#[test]
fn an_upgrade_moves_an_old_config_to_the_named_devices_and_auto_pacing() {
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.file("etc/chatterbox")).unwrap();
    std::fs::write(sb.file("etc/chatterbox/config.toml"), OLD_CONFIG).unwrap();
    std::fs::write(sb.file("etc/asound.conf"), OLD_ASOUND).unwrap();
    let out = sb.install(&[]);
    let cfg = chatterbox::config::Config::load(&sb.file("etc/chatterbox/config.toml")).unwrap();
    assert_eq!(cfg.audio.capture_device, "chatterbox_mic", "{out}");
    assert_eq!(cfg.audio.playback_device, "chatterbox_speaker", "{out}");
    assert_eq!(
        cfg.audio.pace_capture,
        chatterbox::audio::capture::Pacing::Auto,
        "{out}"
    );
    assert_eq!(cfg.audio.volume, 4, "the owner's own values stay");
    assert_eq!(
        cfg.keywords.refractory_ms, 1500,
        "the owner's own values stay"
    );
    assert_eq!(
        cfg.keywords.threshold,
        chatterbox::config::Threshold::Model,
        "the old example's 0.85 becomes each model's own: {out}"
    );
    assert!(!sb.file("etc/asound.conf").exists());
    assert!(sb.file("etc/alsa/conf.d/60-chatterbox.conf").is_file());
}

#[test]
fn an_upgrade_whose_audio_set_up_fails_keeps_the_old_default_device_working() {
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.file("etc/chatterbox")).unwrap();
    std::fs::write(sb.file("etc/chatterbox/config.toml"), OLD_CONFIG).unwrap();
    std::fs::write(sb.file("etc/asound.conf"), OLD_ASOUND).unwrap();
    // Somebody else's file where the drop-in goes: setup-audio refuses to replace it.
    std::fs::create_dir_all(sb.file("etc/alsa/conf.d")).unwrap();
    std::fs::write(sb.file("etc/alsa/conf.d/60-chatterbox.conf"), "# mine\n").unwrap();
    let out = sb.install(&[]);
    assert!(out.contains("setup-audio failed"), "{out}");
    let cfg = chatterbox::config::Config::load(&sb.file("etc/chatterbox/config.toml")).unwrap();
    assert_eq!(
        std::fs::read_to_string(sb.file("etc/asound.conf")).unwrap(),
        OLD_ASOUND,
        "the old file still makes \"default\" the Codec Zero"
    );
    assert_eq!(cfg.audio.capture_device, "default", "{out}");
    assert_eq!(
        cfg.audio.pace_capture,
        chatterbox::audio::capture::Pacing::Auto,
        "forced pacing goes either way: {out}"
    );
}

#[test]
fn bad_input_is_refused_with_a_reason() {
    let sb = Sandbox::new();
    let out = Command::new("bash")
        .arg(Sandbox::script("install.sh"))
        .args(["--binary", "/nonexistent/chatterbox"])
        .env("ROOT", &sb.root)
        .env("SRC_DIR", &sb.src)
        .env("SKIP_APT", "1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no binary at '/nonexistent/chatterbox'"),
        "{err}"
    );

    let out = Command::new("bash")
        .arg(Sandbox::script("install.sh"))
        .args(["--binary", sb.binary.to_str().unwrap()])
        .env("ROOT", &sb.root)
        .env("PREFIX", "/usr/local/my dir")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not quote"), "{err}");
    assert!(
        files_under(&sb.root).is_empty(),
        "nothing written after a refusal"
    );

    let out = Command::new("bash")
        .arg(Sandbox::script("uninstall.sh"))
        .env("ROOT", &sb.root)
        .env("SHARE_DIR", "/usr/local/share")
        .env("ID", "false")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refusing to remove"), "{err}");
}
