//! One toy per machine: an exclusive lock that the running instance holds for its whole life.
//!
//! rppal reads the button through `/dev/gpiomem` and never claims the line, so nothing in
//! the kernel stops a second `chatterbox run` (a hand-started one beside the service, or a
//! cron loop left running beside a systemd unit) from reacting to the same button — erase
//! included. The lock is an `flock` on a file in `/run/lock`, which every user may write and
//! which is emptied at boot; the kernel drops it when the holder dies, however it dies, so a
//! crash never leaves a stale lock behind. The holder's PID is written into the file for
//! the message a second instance prints.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Set by the supervisor for its child: the supervisor holds the lock for both of them.
pub const SUPERVISED_ENV: &str = "CHATTERBOX_SUPERVISED";
/// Overrides where the lock lives (tests; a system without `/run/lock`).
pub const LOCK_ENV: &str = "CHATTERBOX_LOCK";

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    #[error("another chatterbox is already running{} (lock {path}): stop it first (`sudo systemctl stop chatterbox`, or `sudo pkill -u chatterbox` for the cron start), or use `chatterbox sim` to try things beside it", holder.map(|p| format!(" as process {p}")).unwrap_or_default())]
    AlreadyRunning { path: PathBuf, holder: Option<u32> },
    #[error("cannot open the instance lock {path}: {source}; set {LOCK_ENV} to a file in a folder this user can write")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The lock; released when dropped (or when the process ends, however it ends).
#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
    path: PathBuf,
}

impl InstanceLock {
    /// Where the lock lives: `$CHATTERBOX_LOCK`, else `/run/lock/chatterbox.lock`, else the
    /// temp folder (a system without `/run/lock`).
    pub fn default_path() -> PathBuf {
        if let Some(p) = std::env::var_os(LOCK_ENV).filter(|p| !p.is_empty()) {
            return PathBuf::from(p);
        }
        let run_lock = Path::new("/run/lock");
        if run_lock.is_dir() {
            run_lock.join("chatterbox.lock")
        } else {
            std::env::temp_dir().join("chatterbox.lock")
        }
    }

    /// Takes the lock at `path` without waiting, or says who holds it.
    pub fn acquire(path: &Path) -> Result<InstanceLock, InstanceError> {
        let open_err = |source| InstanceError::Open {
            path: path.to_path_buf(),
            source,
        };
        // Read-write to record our PID; a lock file another user made (root ran the toy by
        // hand once) can still be locked read-only.
        let (mut file, writable) = match OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(path)
        {
            Ok(f) => (f, true),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                (File::open(path).map_err(open_err)?, false)
            }
            Err(e) => return Err(open_err(e)),
        };
        // SAFETY: flock on a descriptor we own; no memory is involved.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(InstanceError::AlreadyRunning {
                    path: path.to_path_buf(),
                    holder: text.trim().parse().ok(),
                });
            }
            return Err(open_err(err));
        }
        if writable {
            // Best effort: the PID only improves a message.
            let _ = file
                .set_len(0)
                .and_then(|_| file.rewind())
                .and_then(|_| writeln!(file, "{}", std::process::id()));
        }
        Ok(InstanceLock {
            _file: file,
            path: path.to_path_buf(),
        })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl AsRawFd for InstanceLock {
    /// The locked file: a process that inherits it holds the lock as long as it keeps it
    /// open (the supervisor's child does, so the lock outlives a killed supervisor).
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self._file.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chatterbox.lock");
        let first = InstanceLock::acquire(&path).expect("first instance");
        let err = InstanceLock::acquire(&path).expect_err("second instance");
        let msg = err.to_string();
        assert!(
            matches!(err, InstanceError::AlreadyRunning { holder: Some(p), .. } if p == std::process::id()),
            "{msg}"
        );
        assert!(
            msg.contains("already running") && msg.contains("stop it first"),
            "{msg}"
        );
        drop(first);
        InstanceLock::acquire(&path).expect("free again once the first is gone");
    }

    #[test]
    fn a_lock_in_a_missing_folder_names_the_file_and_the_fix() {
        let err = InstanceLock::acquire(Path::new("/nonexistent-dir/chatterbox.lock"))
            .expect_err("no folder");
        let msg = err.to_string();
        assert!(
            msg.contains("/nonexistent-dir/chatterbox.lock") && msg.contains(LOCK_ENV),
            "{msg}"
        );
    }
}
