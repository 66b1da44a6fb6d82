//! The recordings folder: list, pick, write atomically, erase.
//!
//! # Why writes look the way they do
//! A toy gets unplugged mid-recording. A clip is therefore written under a hidden temp
//! name in the same folder (`.incoming-<pid>-<n>.wav.part`), fsynced, renamed to its final
//! name, and the folder is fsynced so the rename itself survives a power cut. A crash at
//! any point leaves either the complete clip or a temp file, never a visible partial clip;
//! [`Library::open`] removes leftover temp files and says so.
//!
//! Only regular files directly in the folder whose names end in `.wav` count as clips.
//! Symlinks are never followed (a link out of the folder is skipped with a warning), and
//! names handed back by the state machine are checked to be plain file names before use.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Local};

use super::PcmFormat;
use crate::core::clip_order::{next_sequence, sort_clips};

const TEMP_PREFIX: &str = ".incoming-";
const TEMP_SUFFIX: &str = ".wav.part";

/// Errors of the recordings folder. Each names the folder or file and the fix.
#[derive(Debug, thiserror::Error)]
pub enum LibraryError {
    #[error("recordings folder {dir}: {error}. Create it, or set `library.recordings_dir` in the config to a folder this user can write (installed: /var/lib/chatterbox/recordings, owned by user chatterbox)")]
    Folder { dir: PathBuf, error: io::Error },
    #[error("recordings folder {dir} is full (no space left on the device); the clip was discarded and earlier clips are untouched. Free some space or erase recordings")]
    DiskFull { dir: PathBuf },
    #[error("recordings folder {dir} is read-only: {error}. Remount it read-write or point `library.recordings_dir` at a writable folder")]
    ReadOnly { dir: PathBuf, error: io::Error },
    #[error("recordings folder {dir} is not writable by this user: {error}. Give the toy's user the folder (installed: `sudo chown -R chatterbox: {dir}`) or point `library.recordings_dir` at a folder it owns; playing still works")]
    NotWritable { dir: PathBuf, error: io::Error },
    #[error("writing clip {path}: {error}")]
    Write { path: PathBuf, error: io::Error },
    #[error("'{name}' is not a clip in the recordings folder")]
    NoSuchClip { name: String },
}

impl LibraryError {
    fn classify(dir: &Path, path: &Path, error: io::Error) -> Self {
        const EPERM: i32 = 1;
        const EACCES: i32 = 13;
        const ENOSPC: i32 = 28;
        const EROFS: i32 = 30;
        const EDQUOT: i32 = 122;
        match error.raw_os_error() {
            Some(ENOSPC | EDQUOT) => LibraryError::DiskFull {
                dir: dir.to_path_buf(),
            },
            Some(EROFS) => LibraryError::ReadOnly {
                dir: dir.to_path_buf(),
                error,
            },
            Some(EPERM | EACCES) => LibraryError::NotWritable {
                dir: dir.to_path_buf(),
                error,
            },
            _ => LibraryError::Write {
                path: path.to_path_buf(),
                error,
            },
        }
    }
}

fn hound_to_io(e: hound::Error) -> io::Error {
    match e {
        hound::Error::IoError(e) => e,
        other => io::Error::other(other.to_string()),
    }
}

/// The recordings folder.
#[derive(Clone, Debug)]
pub struct Library {
    dir: PathBuf,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Library {
    /// Opens (creating if needed) the folder and removes temp files left by a crash.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Library, LibraryError> {
        let dir = dir.into();
        let folder_err = |error| LibraryError::Folder {
            dir: dir.clone(),
            error,
        };
        if !dir.exists() {
            create_private_dir(&dir).map_err(folder_err)?;
            log::info!("created recordings folder {}", dir.display());
        }
        let meta = fs::metadata(&dir).map_err(folder_err)?;
        if !meta.is_dir() {
            return Err(folder_err(io::Error::other("it is not a folder")));
        }
        let lib = Library { dir };
        lib.remove_leftovers();
        Ok(lib)
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether new clips can be written here (asked of the kernel, so a read-only mount
    /// counts even for root). Checked at start so the log says at once why recording will
    /// fail, while playing the clips already there keeps working.
    pub fn check_writable(&self) -> Result<(), LibraryError> {
        use std::os::unix::ffi::OsStrExt;
        let Ok(c) = std::ffi::CString::new(self.dir.as_os_str().as_bytes()) else {
            return Ok(());
        };
        // SAFETY: `c` is a valid NUL-terminated path; access only reads it.
        if unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) } == 0 {
            return Ok(());
        }
        let error = io::Error::last_os_error();
        Err(LibraryError::classify(&self.dir, &self.dir, error))
    }

    fn remove_leftovers(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX) {
                match fs::remove_file(entry.path()) {
                    Ok(()) => removed += 1,
                    Err(e) => {
                        log::warn!("could not remove leftover {}: {e}", entry.path().display())
                    }
                }
            }
        }
        if removed > 0 {
            log::warn!(
                "removed {removed} unfinished recording(s) from {} (left by a power cut or crash); saved clips are untouched",
                self.dir.display()
            );
        }
    }

    /// Every clip's file name in recording order, oldest first (see
    /// [`crate::core::clip_order`]).
    /// Unreadable entries and symlinks are skipped with a warning.
    pub fn list(&self) -> Result<Vec<String>, LibraryError> {
        let entries = fs::read_dir(&self.dir).map_err(|error| LibraryError::Folder {
            dir: self.dir.clone(),
            error,
        })?;
        let mut names = Vec::new();
        for entry in entries.flatten() {
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                log::warn!("skipping {}: name is not UTF-8", entry.path().display());
                continue;
            };
            if name.starts_with('.') || !name.to_ascii_lowercase().ends_with(".wav") {
                continue;
            }
            match entry.file_type() {
                Ok(t) if t.is_file() => names.push(name),
                Ok(t) if t.is_symlink() => {
                    log::warn!(
                        "skipping {}: symlinks are not followed",
                        entry.path().display()
                    )
                }
                _ => {}
            }
        }
        sort_clips(&mut names);
        Ok(names)
    }

    /// The path of clip `name`, if it is a plain file name of a regular file here.
    pub fn path_of(&self, name: &str) -> Result<PathBuf, LibraryError> {
        let plain = !name.is_empty()
            && !name.starts_with('.')
            && Path::new(name).file_name().and_then(|n| n.to_str()) == Some(name);
        let path = self.dir.join(name);
        let regular = plain
            && fs::symlink_metadata(&path)
                .map(|m| m.file_type().is_file())
                .unwrap_or(false);
        if regular {
            Ok(path)
        } else {
            Err(LibraryError::NoSuchClip {
                name: name.to_string(),
            })
        }
    }

    /// Starts a new clip. Samples go to a hidden temp file until [`ClipWriter::commit`].
    pub fn begin_clip(&self, format: PcmFormat) -> Result<ClipWriter, LibraryError> {
        ClipWriter::begin(&self.dir, format)
    }

    /// The file name for a new clip recorded at `when`: the next sequence number, then the
    /// local time for people, e.g. `00012_2026-11-23_14-05-09_voice.wav` (`-2`, `-3`, ... if
    /// that name is somehow taken). Only the number decides the order.
    pub fn name_for(&self, when: DateTime<Local>) -> Result<String, LibraryError> {
        let existing = self.list()?;
        let seq = next_sequence(existing.iter().map(String::as_str));
        let stem = format!("{seq:05}_{}", when.format("%Y-%m-%d_%H-%M-%S_voice"));
        let mut name = format!("{stem}.wav");
        let mut k = 2;
        while fs::symlink_metadata(self.dir.join(&name)).is_ok() {
            name = format!("{stem}-{k}.wav");
            k += 1;
        }
        Ok(name)
    }

    /// Removes every clip; returns how many. Temp files of a recording in progress are
    /// left to their writer.
    pub fn erase_all(&self) -> Result<usize, LibraryError> {
        let mut removed = 0;
        for name in self.list()? {
            let path = self.dir.join(&name);
            fs::remove_file(&path).map_err(|e| LibraryError::classify(&self.dir, &path, e))?;
            removed += 1;
        }
        sync_dir(&self.dir).map_err(|e| LibraryError::classify(&self.dir, &self.dir, e))?;
        Ok(removed)
    }
}

/// A clip being written. Dropping it without [`commit`](ClipWriter::commit) deletes the
/// temp file: an abandoned recording leaves nothing behind.
pub struct ClipWriter {
    dir: PathBuf,
    temp: PathBuf,
    writer: Option<hound::WavWriter<BufWriter<File>>>,
    frames: u64,
    format: PcmFormat,
}

impl ClipWriter {
    /// Starts a WAV file that will appear in `dir` only when committed.
    pub fn begin(dir: &Path, format: PcmFormat) -> Result<ClipWriter, LibraryError> {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let temp = dir.join(format!(
            "{TEMP_PREFIX}{}-{n}{TEMP_SUFFIX}",
            std::process::id()
        ));
        let file = create_private_file(&temp).map_err(|e| LibraryError::classify(dir, &temp, e))?;
        let spec = hound::WavSpec {
            channels: format.channels,
            sample_rate: format.rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let writer = hound::WavWriter::new(BufWriter::new(file), spec).map_err(|e| {
            let _ = fs::remove_file(&temp);
            LibraryError::classify(dir, &temp, hound_to_io(e))
        })?;
        Ok(ClipWriter {
            dir: dir.to_path_buf(),
            temp,
            writer: Some(writer),
            frames: 0,
            format,
        })
    }

    /// Appends interleaved samples.
    pub fn write(&mut self, samples: &[i16]) -> Result<(), LibraryError> {
        let Some(w) = self.writer.as_mut() else {
            return Ok(());
        };
        let mut s16 = w.get_i16_writer(samples.len() as u32);
        for &s in samples {
            s16.write_sample(s);
        }
        s16.flush()
            .map_err(|e| LibraryError::classify(&self.dir, &self.temp, hound_to_io(e)))?;
        self.frames += (samples.len() / usize::from(self.format.channels.max(1))) as u64;
        Ok(())
    }

    /// The clip's sample format.
    pub fn format(&self) -> PcmFormat {
        self.format
    }

    /// Frames written so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Finishes the WAV, fsyncs it, renames it to `name` in the folder and fsyncs the
    /// folder. On error before the rename the temp file is removed and nothing visible
    /// changes. Once renamed, the clip exists and is reported as made: a failing fsync of
    /// the folder then only weakens the guarantee for a power cut in the next seconds (it is
    /// logged), and reporting failure would hide a clip that reappears at the next start.
    pub fn commit(self, name: &str) -> Result<PathBuf, LibraryError> {
        self.commit_with(name, sync_dir)
    }

    /// [`Self::commit`] that never replaces a file: the clip takes the first of `names` no
    /// file in the folder has (`renameat2(RENAME_NOREPLACE)`, so even a file that appears
    /// meanwhile is kept). Every name taken is an error, and nothing visible changes.
    pub fn commit_new(
        self,
        names: impl IntoIterator<Item = String>,
    ) -> Result<PathBuf, LibraryError> {
        self.finish(Place::FirstFree(names.into_iter().collect()), sync_dir)
    }

    fn commit_with(
        self,
        name: &str,
        sync_folder: impl FnOnce(&Path) -> io::Result<()>,
    ) -> Result<PathBuf, LibraryError> {
        self.finish(Place::Replace(name.to_string()), sync_folder)
    }

    fn finish(
        mut self,
        place: Place,
        sync_folder: impl FnOnce(&Path) -> io::Result<()>,
    ) -> Result<PathBuf, LibraryError> {
        let classify = |p: &Path, e| LibraryError::classify(&self.dir, p, e);
        let writer = self.writer.take().expect("commit consumes the writer once");
        writer
            .finalize()
            .map_err(|e| classify(&self.temp, hound_to_io(e)))?;
        // fsync through a fresh descriptor: it flushes the file's data all the same, and
        // hound does not hand its file back.
        File::open(&self.temp)
            .and_then(|f| f.sync_all())
            .map_err(|e| classify(&self.temp, e))?;
        let target = match place {
            Place::Replace(name) => {
                let target = self.dir.join(name);
                fs::rename(&self.temp, &target).map_err(|e| classify(&target, e))?;
                target
            }
            Place::FirstFree(names) => {
                let mut placed = None;
                for name in names {
                    let target = self.dir.join(name);
                    match rename_no_replace(&self.temp, &target) {
                        Ok(()) => {
                            placed = Some(target);
                            break;
                        }
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                        Err(e) => return Err(classify(&target, e)),
                    }
                }
                placed.ok_or_else(|| LibraryError::Write {
                    path: self.temp.clone(),
                    error: io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        "every name for it is taken by an earlier file (kept)",
                    ),
                })?
            }
        };
        // From here the temp name is gone: Drop must not try to remove it.
        self.temp = PathBuf::new();
        if let Err(e) = sync_folder(&self.dir) {
            log::warn!(
                "{} is saved, but flushing the folder failed ({}); it may be lost if the power goes in the next seconds",
                target.display(),
                classify(&self.dir, e)
            );
        }
        Ok(target)
    }
}

impl Drop for ClipWriter {
    fn drop(&mut self) {
        if self.temp.as_os_str().is_empty() {
            return;
        }
        self.writer = None;
        let _ = fs::remove_file(&self.temp);
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Where [`ClipWriter`] puts its file.
enum Place {
    /// This name, replacing a file of that name.
    Replace(String),
    /// The first of these names that is free.
    FirstFree(Vec<String>),
}

/// `rename` that fails with `AlreadyExists` instead of replacing `to` (Linux
/// `renameat2(RENAME_NOREPLACE)`).
fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
    };
    let (cf, ct) = (c(from)?, c(to)?);
    // SAFETY: both are valid NUL-terminated paths that outlive the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            cf.as_ptr(),
            libc::AT_FDCWD,
            ct.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(unix)]
fn create_private_file(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o640)
        .open(path)
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o750)
        .create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const FMT: PcmFormat = PcmFormat {
        rate: 48000,
        channels: 2,
    };

    fn write(lib: &Library, name: &str, samples: &[i16]) -> PathBuf {
        let mut w = lib.begin_clip(FMT).unwrap();
        w.write(samples).unwrap();
        w.commit(name).unwrap()
    }

    #[test]
    fn a_committed_clip_is_a_valid_wav_with_the_samples() {
        let dir = tempfile::tempdir().unwrap();
        let lib = Library::open(dir.path()).unwrap();
        let samples: Vec<i16> = (0..9600).map(|i| (i * 7 % 3000) as i16).collect();
        let path = write(&lib, "a.wav", &samples);
        let mut r = hound::WavReader::open(&path).unwrap();
        assert_eq!(r.spec().sample_rate, 48000);
        assert_eq!(r.spec().channels, 2);
        let back: Vec<i16> = r.samples::<i16>().map(Result::unwrap).collect();
        assert_eq!(back, samples);
        assert_eq!(lib.list().unwrap(), vec!["a.wav"]);
    }

    #[test]
    fn clip_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let lib = Library::open(dir.path().join("rec")).unwrap();
        let path = write(&lib, "a.wav", &[1, 2]);
        let mode = fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o027, 0, "mode {mode:o} must be 0640 or stricter");
    }

    #[test]
    fn an_unfinished_clip_is_invisible_and_dropped_writers_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let lib = Library::open(dir.path()).unwrap();
        write(&lib, "old.wav", &[5; 100]);
        let before = fs::read(dir.path().join("old.wav")).unwrap();
        let mut w = lib.begin_clip(FMT).unwrap();
        w.write(&[1; 4800]).unwrap();
        assert_eq!(
            lib.list().unwrap(),
            vec!["old.wav"],
            "temp file is not a clip"
        );
        drop(w);
        let files: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(files.len(), 1, "abandoned clip leaves no file");
        assert_eq!(fs::read(dir.path().join("old.wav")).unwrap(), before);
    }

    #[test]
    fn crash_between_write_and_rename_leaves_no_visible_partial_and_is_cleaned() {
        let dir = tempfile::tempdir().unwrap();
        let lib = Library::open(dir.path()).unwrap();
        write(&lib, "old.wav", &[5; 100]);
        let mut w = lib.begin_clip(FMT).unwrap();
        w.write(&[1; 4800]).unwrap();
        std::mem::forget(w); // the process "dies": no drop, no rename
        assert_eq!(lib.list().unwrap(), vec!["old.wav"]);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
        let reopened = Library::open(dir.path()).unwrap();
        assert_eq!(reopened.list().unwrap(), vec!["old.wav"]);
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "leftover removed"
        );
    }

    #[test]
    fn names_carry_the_next_sequence_number_and_the_local_time() {
        let dir = tempfile::tempdir().unwrap();
        let lib = Library::open(dir.path()).unwrap();
        // A clip from before sequence numbers, then the clock: normal, an hour back (NTP
        // corrects a Pi that booted without a real-time clock), then the repeated hour at
        // the end of summer time (the same local stamp twice).
        write(&lib, "2026-11-23_09-00-00_voice.wav", &[0; 2]);
        let t = Local.with_ymd_and_hms(2026, 11, 23, 14, 5, 9).unwrap();
        let first = lib.name_for(t).unwrap();
        assert_eq!(first, "00001_2026-11-23_14-05-09_voice.wav");
        write(&lib, &first, &[0; 2]);
        let earlier = t - chrono::Duration::hours(1);
        let second = lib.name_for(earlier).unwrap();
        assert_eq!(second, "00002_2026-11-23_13-05-09_voice.wav");
        write(&lib, &second, &[0; 2]);
        let third = lib.name_for(earlier).unwrap();
        assert_eq!(third, "00003_2026-11-23_13-05-09_voice.wav");
        write(&lib, &third, &[0; 2]);
        assert_eq!(
            lib.list().unwrap(),
            [
                "2026-11-23_09-00-00_voice.wav",
                first.as_str(),
                second.as_str(),
                third.as_str()
            ],
            "recording order, not clock order"
        );
        // After erasing everything, numbering starts again.
        lib.erase_all().unwrap();
        assert!(lib.name_for(t).unwrap().starts_with("00001_"));
    }

    #[test]
    fn a_clip_renamed_into_place_is_reported_even_if_the_folder_flush_fails() {
        let dir = tempfile::tempdir().unwrap();
        let lib = Library::open(dir.path()).unwrap();
        let mut w = lib
            .begin_clip(PcmFormat {
                rate: 8000,
                channels: 1,
            })
            .unwrap();
        w.write(&[1, 2, 3]).unwrap();
        let path = w
            .commit_with("00001_x_voice.wav", |_| Err(io::Error::other("EIO")))
            .expect("the clip exists, so it is reported");
        assert!(path.is_file());
        assert_eq!(lib.list().unwrap(), ["00001_x_voice.wav"]);
    }

    #[test]
    fn erase_all_removes_only_clips() {
        let dir = tempfile::tempdir().unwrap();
        let lib = Library::open(dir.path()).unwrap();
        write(&lib, "a.wav", &[0; 2]);
        write(&lib, "b.wav", &[0; 2]);
        fs::write(dir.path().join("notes.txt"), "keep").unwrap();
        assert_eq!(lib.erase_all().unwrap(), 2);
        assert!(lib.list().unwrap().is_empty());
        assert!(dir.path().join("notes.txt").exists());
    }

    #[test]
    fn symlinks_and_odd_names_are_not_clips() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret.wav"), "x").unwrap();
        let lib = Library::open(dir.path().join("rec")).unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret.wav"),
            lib.dir().join("link.wav"),
        )
        .unwrap();
        assert!(lib.list().unwrap().is_empty());
        assert!(lib.path_of("link.wav").is_err());
        assert!(lib.path_of("../rec/link.wav").is_err());
        assert!(lib.path_of("/etc/passwd").is_err());
        assert!(lib.path_of("").is_err());
        // erase_all leaves the link's target alone
        lib.erase_all().unwrap();
        assert!(outside.path().join("secret.wav").exists());
    }

    #[test]
    fn permission_errors_name_the_folder_and_the_fix() {
        let dir = Path::new("/srv/rec");
        for errno in [1, 13] {
            let e =
                LibraryError::classify(dir, &dir.join("x"), io::Error::from_raw_os_error(errno));
            let text = e.to_string();
            assert!(matches!(e, LibraryError::NotWritable { .. }), "{text}");
            assert!(
                text.contains("/srv/rec")
                    && text.contains("chown")
                    && text.contains("recordings_dir"),
                "{text}"
            );
        }
        let e = LibraryError::classify(dir, dir, io::Error::from_raw_os_error(30)).to_string();
        assert!(e.contains("read-only") && e.contains("/srv/rec"), "{e}");
        let e = LibraryError::classify(dir, dir, io::Error::from_raw_os_error(28)).to_string();
        assert!(e.contains("is full") && e.contains("/srv/rec"), "{e}");
    }

    #[test]
    fn a_writable_folder_passes_the_check() {
        let dir = tempfile::tempdir().unwrap();
        let lib = Library::open(dir.path()).unwrap();
        assert!(lib.check_writable().is_ok());
    }

    #[test]
    fn a_file_in_place_of_the_folder_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("rec");
        fs::write(&f, "").unwrap();
        let err = Library::open(&f).unwrap_err().to_string();
        assert!(
            err.contains("rec") && err.contains("recordings_dir"),
            "{err}"
        );
    }
}
