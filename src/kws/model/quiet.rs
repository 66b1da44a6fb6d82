//! LiteRT's own log lines, moved from stderr into our log.
//!
//! LiteRT 2.1.4 prints INFO lines to stderr whenever an environment or a compiled model is
//! made or destroyed ("Creating LiteRT environment with options", "Created TensorFlow Lite
//! XNNPACK delegate for CPU", …). To a person starting the toy they read like faults, and
//! they say nothing anyone can act on. The library that ships on PyPI exports no logger API
//! (`LiteRtSetMinLoggerSeverity` is not in its symbol table) and ignores the environment's
//! minimum-severity option, so the only handle left is the file descriptor: around the
//! few calls that print, stderr points at an anonymous in-memory file, and afterwards each
//! line goes where it belongs — LiteRT's INFO and WARNING lines to our log at debug level
//! (`-v` shows them), its ERROR lines to our log as errors, and anything else (another
//! thread's line that happened to land in the window) back to stderr unchanged.
//!
//! Only one redirection is ever active: a global lock orders them, or two threads could
//! each restore the other's redirection and leave stderr pointing at a dead file.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Mutex;

static REDIRECT: Mutex<()> = Mutex::new(());

/// Runs `f` with stderr captured, then sorts what it printed (see the module docs). If
/// stderr cannot be redirected, `f` runs with it as it is.
pub(crate) fn quietly<R>(f: impl FnOnce() -> R) -> R {
    let _one_at_a_time = REDIRECT.lock().unwrap_or_else(|p| p.into_inner());
    let Some(redirect) = Redirect::start() else {
        return f();
    };
    let result = f();
    let text = redirect.finish();
    for line in text.lines() {
        route(line);
    }
    result
}

/// Where one captured line goes.
fn route(line: &str) {
    if let Some(rest) = line.strip_prefix("ERROR: ") {
        log::error!("LiteRT: {rest}");
    } else if let Some(rest) = line
        .strip_prefix("INFO: ")
        .or_else(|| line.strip_prefix("WARNING: "))
        .or_else(|| line.strip_prefix("VERBOSE: "))
    {
        log::debug!("LiteRT: {rest}");
    } else if !line.is_empty() {
        let _ = writeln!(std::io::stderr(), "{line}");
    }
}

/// stderr pointed at an anonymous file until [`Redirect::finish`].
struct Redirect {
    saved: OwnedFd,
    capture: File,
}

impl Redirect {
    fn start() -> Option<Redirect> {
        let _ = std::io::stderr().flush();
        // SAFETY: memfd_create with a valid C string; the result is checked.
        let fd =
            unsafe { libc::memfd_create(c"chatterbox-litert-log".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return None;
        }
        // SAFETY: fd is a new descriptor we own.
        let capture = unsafe { File::from_raw_fd(fd) };
        // SAFETY: dup of the process's stderr; the result is checked.
        let saved = unsafe { libc::dup(libc::STDERR_FILENO) };
        if saved < 0 {
            return None;
        }
        // SAFETY: saved is a new descriptor we own.
        let saved = unsafe { OwnedFd::from_raw_fd(saved) };
        // SAFETY: both descriptors are open; dup2 replaces fd 2 atomically.
        if unsafe { libc::dup2(capture.as_raw_fd(), libc::STDERR_FILENO) } < 0 {
            return None;
        }
        Some(Redirect { saved, capture })
    }

    /// Puts stderr back and returns what was written meanwhile.
    fn finish(mut self) -> String {
        let _ = std::io::stderr().flush();
        // SAFETY: `saved` is the original stderr, still open.
        unsafe { libc::dup2(self.saved.as_raw_fd(), libc::STDERR_FILENO) };
        let mut text = String::new();
        let _ = self.capture.rewind();
        let _ = self.capture.read_to_string(&mut text);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Device and inode of what fd 2 points at.
    fn stderr_identity() -> (u64, u64) {
        // SAFETY: fstat on fd 2 into a zeroed struct.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::fstat(libc::STDERR_FILENO, &mut st) }, 0);
        (st.st_dev, st.st_ino)
    }

    #[test]
    fn what_is_written_to_stderr_meanwhile_is_captured_and_stderr_comes_back() {
        let _one_at_a_time = REDIRECT.lock().unwrap_or_else(|p| p.into_inner());
        let before = stderr_identity();
        let redirect = Redirect::start().expect("redirect");
        assert_ne!(stderr_identity(), before, "redirected");
        let line = b"INFO: [environment.cc:30] Creating LiteRT environment with options\n";
        // SAFETY: writing a byte buffer to fd 2, as a C library would.
        let n = unsafe { libc::write(libc::STDERR_FILENO, line.as_ptr().cast(), line.len()) };
        assert_eq!(n, line.len() as isize);
        let text = redirect.finish();
        assert_eq!(text.as_bytes(), line);
        assert_eq!(stderr_identity(), before, "stderr is the same file again");
    }
}
