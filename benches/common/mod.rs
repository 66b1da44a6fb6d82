//! Helpers shared by the keyword benches (a folder, so Cargo does not take it for a bench).

use std::path::PathBuf;
use std::time::Duration;

/// The repository root, for fixtures and shipped models.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// CPU time of the calling thread (`CLOCK_THREAD_CPUTIME_ID`): what a figure costs, not
/// how long the shared machine took to get round to it.
pub fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}
