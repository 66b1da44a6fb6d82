//! `AlsaSandbox`: a private ALSA configuration for tests on machines without a sound card.
//!
//! ALSA reads `~/.asoundrc`, so the sandbox is a temporary directory used as `HOME`, holding
//! an `.asoundrc` with userspace PCMs:
//! * `cb_mic` — `type file` with `infile`: capture reads the raw S16_LE file
//!   [`AlsaSandbox::mic_file`] (write it with [`AlsaSandbox::write_mic`]);
//! * `cb_speaker` — `type file`: playback is written raw to [`AlsaSandbox::speaker_file`];
//! * `cb_null` — `type null`: accepts and discards anything, captures silence.
//!
//! More PCMs can be added per test ([`add_mic`](AlsaSandbox::add_mic),
//! [`add_speaker`](AlsaSandbox::add_speaker), [`add_pcm`](AlsaSandbox::add_pcm)).
//!
//! **alsa-lib does NOT re-read `~/.asoundrc` when it changes** (measured, 1.2.8): on each
//! `snd_pcm_open` it only checks the top-level files of `ALSA_CONFIG_PATH` (by default just
//! `/usr/share/alsa/alsa.conf`); `~/.asoundrc` is pulled in by a hook of that file and is not
//! watched. [`AlsaSandbox::shared`] therefore also sets `ALSA_CONFIG_PATH` to
//! `alsa.conf:<sandbox>/.asoundrc`, making the sandbox file a watched top-level file (loading
//! it twice — also through the hook — is harmless), and the sandbox rewrites it atomically
//! (temp file + rename = new inode, noticed even within the same second). A child process
//! reads the configuration when it starts; [`AlsaSandbox::configure`] sets its `HOME` and
//! `ALSA_CONFIG_PATH` (the latter so a value inherited from a test process that used
//! [`AlsaSandbox::shared`] cannot mix that sandbox's PCMs in).
//!
//! Facts about the plugins (measured with alsa-lib 1.2.8):
//! * `infile` takes **raw** samples only, in exactly the format the program opens: a `plug`
//!   doing rate/channel conversion over `infile` garbles the data;
//! * `infile` never signals end of file (reads past the end return stale data), and nothing
//!   is paced in real time: bound every capture by frame count;
//! * the file plugin writes playback data out as it goes and at close; read the speaker file
//!   after the stream is closed (e.g. after the player thread was shut down and joined);
//! * a `type file` PCM opened for *capture* writes what it captures to its `file`: probing
//!   or listing devices (`chatterbox devices`) therefore truncates `cb_speaker`'s file.
//!
//! In-process tests: `HOME` is process-wide, so every test in one binary must use the one
//! [`AlsaSandbox::shared`] instance (it sets `HOME` and `ALSA_CONFIG_PATH` once) with distinct
//! PCM names. For a child process, use [`AlsaSandbox::new`] (one per test is fine) and
//! [`AlsaSandbox::configure`] on its `Command`, which sets both variables for the child.
#![allow(dead_code)] // each test binary uses a different subset

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

pub struct AlsaSandbox {
    dir: tempfile::TempDir,
    /// PCM name → definition body (what goes inside `pcm.NAME { ... }`), and the number of
    /// `.asoundrc` versions written.
    pcms: Mutex<(BTreeMap<String, String>, usize)>,
}

/// Quotes a path for the ALSA config syntax.
fn quoted(p: &Path) -> String {
    let s = p.display().to_string();
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

impl AlsaSandbox {
    /// A new sandbox with `cb_mic`, `cb_speaker` and `cb_null` defined (the mic file starts
    /// empty). Does not touch the environment.
    pub fn new() -> std::io::Result<Self> {
        let dir = tempfile::Builder::new().prefix("cb-alsa-").tempdir()?;
        let sb = Self {
            dir,
            pcms: Mutex::new((BTreeMap::new(), 0)),
        };
        sb.write_raw(&sb.mic_file(), &[])?;
        sb.add_mic_pcm("cb_mic", &sb.mic_file())?;
        sb.add_speaker_pcm("cb_speaker", &sb.speaker_file())?;
        sb.add_pcm("cb_null", "type null")?;
        Ok(sb)
    }

    /// The process-wide sandbox for in-process tests: created once, `HOME` set to it once.
    pub fn shared() -> &'static AlsaSandbox {
        static SHARED: OnceLock<AlsaSandbox> = OnceLock::new();
        SHARED.get_or_init(|| {
            let sb = AlsaSandbox::new().expect("cannot create the ALSA sandbox in the temp dir");
            // Set before any ALSA call in this process; all tests go through here first.
            let watched = sb.config_path();
            std::env::set_var("HOME", sb.home());
            if let Some(watched) = watched {
                std::env::set_var("ALSA_CONFIG_PATH", watched);
            }
            sb
        })
    }

    /// The directory to use as `HOME`.
    pub fn home(&self) -> &Path {
        self.dir.path()
    }

    /// Points a child process's ALSA at this sandbox (`HOME`, and `ALSA_CONFIG_PATH` so an
    /// inherited value from [`shared`](Self::shared) cannot mix another sandbox in).
    pub fn configure<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        cmd.env("HOME", self.home());
        match self.config_path() {
            Some(p) => cmd.env("ALSA_CONFIG_PATH", p),
            None => cmd.env_remove("ALSA_CONFIG_PATH"),
        }
    }

    /// `ALSA_CONFIG_PATH` value that loads the system configuration plus this sandbox's
    /// `.asoundrc` as a watched top-level file (None if the system file cannot be found).
    pub fn config_path(&self) -> Option<String> {
        // The process's original value, captured before `shared` changes it.
        static BASE: OnceLock<Option<String>> = OnceLock::new();
        let base = BASE.get_or_init(|| {
            std::env::var("ALSA_CONFIG_PATH")
                .ok()
                .filter(|p| !p.is_empty())
                .or_else(|| {
                    let default = Path::new("/usr/share/alsa/alsa.conf");
                    default.exists().then(|| default.display().to_string())
                })
        });
        base.as_ref()
            .map(|b| format!("{b}:{}", self.home().join(".asoundrc").display()))
    }

    /// Raw S16_LE file behind `cb_mic`.
    pub fn mic_file(&self) -> PathBuf {
        self.home().join("cb_mic.raw")
    }

    /// Raw S16_LE file `cb_speaker` writes to.
    pub fn speaker_file(&self) -> PathBuf {
        self.home().join("cb_speaker.raw")
    }

    /// Replaces what `cb_mic` delivers (interleaved, in the format the program will open).
    pub fn write_mic(&self, samples: &[i16]) -> std::io::Result<()> {
        self.write_raw(&self.mic_file(), samples)
    }

    /// What `cb_speaker` received so far (complete once the stream is closed).
    pub fn read_speaker(&self) -> std::io::Result<Vec<i16>> {
        self.read_raw(&self.speaker_file())
    }

    /// Defines a new capture PCM `name` reading `samples`; returns the raw file's path.
    pub fn add_mic(&self, name: &str, samples: &[i16]) -> std::io::Result<PathBuf> {
        let path = self.home().join(format!("{name}.raw"));
        self.write_raw(&path, samples)?;
        self.add_mic_pcm(name, &path)?;
        Ok(path)
    }

    /// Defines a new playback PCM `name` writing raw to a file; returns that file's path.
    pub fn add_speaker(&self, name: &str) -> std::io::Result<PathBuf> {
        let path = self.home().join(format!("{name}.raw"));
        self.add_speaker_pcm(name, &path)?;
        Ok(path)
    }

    /// Defines PCM `name` as a device that only accepts `rate` Hz (any channel count):
    /// a `plug` over `slave` whose rate converter does not exist, so any other rate fails
    /// when the hardware parameters are installed — like a codec locked to one clock.
    pub fn add_rate_locked(&self, name: &str, slave: &str, rate: u32) -> std::io::Result<()> {
        self.add_pcm(
            name,
            &format!(
                "type plug\n  slave {{ pcm \"{slave}\" rate {rate} }}\n  rate_converter \"cb_no_such_converter\""
            ),
        )
    }

    fn add_mic_pcm(&self, name: &str, infile: &Path) -> std::io::Result<()> {
        self.add_pcm(
            name,
            &format!(
                "type file\n  slave.pcm \"null\"\n  file \"/dev/null\"\n  infile {}\n  format \"raw\"",
                quoted(infile)
            ),
        )
    }

    fn add_speaker_pcm(&self, name: &str, out: &Path) -> std::io::Result<()> {
        self.add_pcm(
            name,
            &format!(
                "type file\n  slave.pcm \"null\"\n  file {}\n  format \"raw\"",
                quoted(out)
            ),
        )
    }

    /// Defines (or redefines) `pcm.NAME { BODY }` and rewrites `.asoundrc` atomically.
    pub fn add_pcm(&self, name: &str, body: &str) -> std::io::Result<()> {
        let mut guard = self.pcms.lock().unwrap_or_else(|p| p.into_inner());
        let (pcms, versions) = &mut *guard;
        pcms.insert(name.to_string(), body.to_string());
        *versions += 1;
        let mut text = String::from("# written by the chatterbox test sandbox\n");
        for (n, b) in pcms.iter() {
            text.push_str(&format!("pcm.{n} {{\n  {b}\n}}\n"));
        }
        // Each version goes to a file of its own that is kept, then is hard-linked into
        // place. alsa-lib spots a change by (device, inode, mtime in seconds); if an old
        // version were deleted, the next one could reuse its inode within the same second
        // and the change would go unnoticed.
        let version = self.home().join(format!(".asoundrc.v{versions}"));
        std::fs::write(&version, text)?;
        let tmp = self.home().join(".asoundrc.tmp");
        let _ = std::fs::remove_file(&tmp);
        std::fs::hard_link(&version, &tmp)?;
        std::fs::rename(&tmp, self.home().join(".asoundrc"))
    }

    /// Writes interleaved samples as raw S16_LE.
    pub fn write_raw(&self, path: &Path, samples: &[i16]) -> std::io::Result<()> {
        let mut bytes = Vec::with_capacity(samples.len() * 2);
        for s in samples {
            bytes.extend_from_slice(&s.to_le_bytes());
        }
        let mut f = std::fs::File::create(path)?;
        f.write_all(&bytes)?;
        f.sync_all()
    }

    /// Reads raw S16_LE samples (a missing file reads as empty: nothing was played).
    pub fn read_raw(&self, path: &Path) -> std::io::Result<Vec<i16>> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        Ok(bytes
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect())
    }
}

/// `n` frames of a sine at `freq` Hz, amplitude `amp` (of full scale), `channels` copies.
pub fn sine_i16(freq: f32, rate: u32, channels: u16, n: usize, amp: f32) -> Vec<i16> {
    let mut out = Vec::with_capacity(n * usize::from(channels));
    for i in 0..n {
        let v = (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin() * amp;
        let s = (v * 32767.0).round() as i16;
        for _ in 0..channels {
            out.push(s);
        }
    }
    out
}

/// A recognisable ramp (not silence, not periodic) to check data arrives bit-exact.
pub fn ramp_i16(n: usize) -> Vec<i16> {
    (0..n).map(|i| ((i * 37) % 65536) as u16 as i16).collect()
}
