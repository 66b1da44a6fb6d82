//! Keeps the toy running: `chatterbox supervise` starts `chatterbox run` as a child and
//! starts it again when it dies.
//!
//! Why the program supervises itself: cron `@reboot` starts a command once and never
//! again, and a toy on a shelf has nobody to restart it. A thread that panics ends the
//! whole process (see [`install_panic_exit`]), so any fault, anywhere, comes back here as
//! a failed child. Restarts back off (1 s, 2 s, 4 s … up to a minute) and stop for good
//! after too many crashes in a short time: then the red LED stays on and the log says why,
//! because a toy that reboots its program every few seconds forever helps no one.
//!
//! The supervisor holds the [one-instance lock](crate::instance) for itself and its child.
//! SIGTERM or SIGINT is passed on to the child, and the supervisor ends when it does.

use std::cell::Cell;
use std::collections::VecDeque;
use std::ffi::OsString;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, select, Receiver};

use crate::instance::SUPERVISED_ENV;

/// When to restart and when to give up. Pure: the caller supplies the times.
#[derive(Clone, Debug, PartialEq)]
pub struct RestartPolicy {
    /// Wait before the first restart; doubled for each further crash in `window`.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// More crashes than this within `window` and the supervisor gives up.
    pub max_crashes: usize,
    pub window: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            max_crashes: 5,
            window: Duration::from_secs(600),
        }
    }
}

/// What to do after a crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    RestartAfter(Duration),
    GiveUp { crashes: usize },
}

/// The crashes seen recently.
#[derive(Clone, Debug, Default)]
pub struct CrashHistory {
    crashes: VecDeque<Duration>,
}

impl CrashHistory {
    /// Records a crash at `at` (time since the supervisor started) and decides.
    pub fn crashed(&mut self, at: Duration, policy: &RestartPolicy) -> Verdict {
        self.crashes.push_back(at);
        while self
            .crashes
            .front()
            .is_some_and(|t| at.saturating_sub(*t) > policy.window)
        {
            self.crashes.pop_front();
        }
        let recent = self.crashes.len();
        if recent > policy.max_crashes {
            return Verdict::GiveUp { crashes: recent };
        }
        let doublings = (recent - 1).min(16) as u32;
        Verdict::RestartAfter(
            policy
                .first_backoff
                .saturating_mul(1 << doublings)
                .min(policy.max_backoff),
        )
    }
}

/// Makes a panic on any thread end the process at once with exit status 101, after one
/// log line naming the thread. Without this a panicking thread dies alone: a dead player
/// leaves the machine "playing" (the microphone muted for ever), a dead controller leaves
/// a toy that does nothing while the process lives on and nothing restarts it.
pub fn install_panic_exit() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if CONTAINED.with(Cell::get) {
            // Caught by `contain_panics` just above: an error for the caller, not a crash.
            log::debug!("contained panic: {info}");
            return;
        }
        let thread = std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .to_string();
        default_hook(info);
        log::error!(
            "the {thread} thread panicked ({}); chatterbox stops with status 101 so that its supervisor starts it again",
            info.location()
                .map(|l| format!("at {}:{}", l.file(), l.line()))
                .unwrap_or_else(|| "no location".into())
        );
        // _exit, not exit: other threads may be inside C libraries (ALSA, LiteRT) whose
        // exit handlers must not run under them. Files are safe: clips are only ever
        // renamed into place whole, and a leftover temp file is removed at the next start.
        // SAFETY: _exit ends the process; nothing after it runs.
        unsafe { libc::_exit(101) };
    }));
}

thread_local! {
    /// Set while [`contain_panics`] runs on this thread.
    static CONTAINED: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f`, turning a panic inside it into `Err` instead of ending the process: for code
/// that parses untrusted input with a library that might panic (a WAV decoder), where the
/// caller has a clear error to report instead. The panic hook of
/// [`install_panic_exit`] runs before unwinding starts, so a plain `catch_unwind` would be
/// too late; this tells the hook to stand aside.
pub fn contain_panics<R>(f: impl FnOnce() -> R + std::panic::UnwindSafe) -> std::thread::Result<R> {
    let outer = CONTAINED.with(|c| c.replace(true));
    let result = std::panic::catch_unwind(f);
    CONTAINED.with(|c| c.set(outer));
    result
}

/// Test-only fault injection: with `CHATTERBOX_TEST_PANIC=NAME`, the named point panics;
/// with `NAME@FILE`, it panics only while FILE exists, and removes it first (one crash,
/// then a healthy restart). The variable is read once per process; unset, a call costs
/// one comparison.
pub fn test_panic_point(name: &str) {
    static SPEC: std::sync::OnceLock<Option<(String, Option<std::path::PathBuf>)>> =
        std::sync::OnceLock::new();
    let spec = SPEC.get_or_init(|| {
        let spec = std::env::var("CHATTERBOX_TEST_PANIC").ok()?;
        Some(match spec.split_once('@') {
            Some((point, flag)) => (point.to_string(), Some(flag.into())),
            None => (spec, None),
        })
    });
    let Some((point, flag)) = spec else {
        return;
    };
    if point != name {
        return;
    }
    if let Some(flag) = flag {
        if std::fs::remove_file(flag).is_err() {
            return;
        }
    }
    panic!("test fault injected at {name} (CHATTERBOX_TEST_PANIC)");
}

/// How a supervised session ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ending {
    /// The child stopped cleanly, or a signal asked everything to stop.
    Stopped,
    /// Too many crashes: the supervisor gave up.
    GaveUp { crashes: usize },
}

/// Runs `program args` until it exits cleanly or a signal arrives, restarting it after
/// crashes by `policy`. `on_give_up` runs once when the policy gives up (the red LED).
pub fn supervise(
    program: &OsString,
    args: &[OsString],
    policy: &RestartPolicy,
    signals: &Receiver<i32>,
    on_give_up: &mut dyn FnMut(usize),
) -> std::io::Result<Ending> {
    let start = Instant::now();
    let mut history = CrashHistory::default();
    loop {
        let child = Command::new(program)
            .args(args)
            .env(SUPERVISED_ENV, "1")
            .spawn()?;
        let pid = child.id();
        log::info!("supervisor: started the toy (process {pid})");
        let status = match wait_or_signal(child, signals)? {
            Waited::Exited(status) => status,
            Waited::Signalled(status) => {
                log::info!("supervisor: the toy stopped ({status}) after a signal; done");
                return Ok(Ending::Stopped);
            }
        };
        if status.success() {
            log::info!("supervisor: the toy stopped cleanly; done");
            return Ok(Ending::Stopped);
        }
        match history.crashed(start.elapsed(), policy) {
            Verdict::RestartAfter(wait) => {
                log::warn!(
                    "supervisor: the toy (process {pid}) failed ({status}); starting it again in {:.0} s",
                    wait.as_secs_f64()
                );
                if signals.recv_timeout(wait).is_ok() {
                    return Ok(Ending::Stopped);
                }
            }
            Verdict::GiveUp { crashes } => {
                log::error!(
                    "supervisor: the toy failed {crashes} times within {} min; not starting it again. The red LED stays on. Read the log above for the cause (journalctl -t chatterbox), fix it, then restart (reboot, or `sudo systemctl restart chatterbox`)",
                    policy.window.as_secs() / 60
                );
                on_give_up(crashes);
                let _ = signals.recv();
                return Ok(Ending::GaveUp { crashes });
            }
        }
    }
}

enum Waited {
    Exited(ExitStatus),
    Signalled(ExitStatus),
}

/// Waits for the child; a signal meanwhile is passed on to it (SIGTERM), and after 10 s
/// without an exit it is killed.
fn wait_or_signal(child: Child, signals: &Receiver<i32>) -> std::io::Result<Waited> {
    let pid = child.id() as libc::pid_t;
    let (tx, rx) = bounded(1);
    let mut child = child;
    std::thread::Builder::new()
        .name("supervise-wait".into())
        .spawn(move || {
            let _ = tx.send(child.wait());
        })?;
    select! {
        recv(rx) -> status => Ok(Waited::Exited(status.expect("the waiter always sends")?)),
        recv(signals) -> _ => {
            // SAFETY: kill with a PID we started and have not reaped (the waiter reaps it
            // only after it exits, and we wait for that below).
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let status = match rx.recv_timeout(Duration::from_secs(10)) {
                Ok(status) => status?,
                Err(_) => {
                    log::warn!("supervisor: the toy did not stop within 10 s; killing it");
                    // SAFETY: as above; the child has not been reaped.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    rx.recv().expect("the waiter always sends")?
                }
            };
            Ok(Waited::Signalled(status))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn restarts_back_off_doubling_up_to_the_cap() {
        let policy = RestartPolicy {
            max_crashes: 100,
            ..RestartPolicy::default()
        };
        let mut h = CrashHistory::default();
        let waits: Vec<Verdict> = (0..8).map(|i| h.crashed(secs(i), &policy)).collect();
        let expected: Vec<Verdict> = [1, 2, 4, 8, 16, 32, 60, 60]
            .iter()
            .map(|s| Verdict::RestartAfter(secs(*s)))
            .collect();
        assert_eq!(waits, expected);
    }

    #[test]
    fn too_many_crashes_in_the_window_give_up() {
        let policy = RestartPolicy::default(); // 5 in 10 min
        let mut h = CrashHistory::default();
        for i in 0..5 {
            assert!(matches!(
                h.crashed(secs(i * 60), &policy),
                Verdict::RestartAfter(_)
            ));
        }
        assert_eq!(
            h.crashed(secs(300), &policy),
            Verdict::GiveUp { crashes: 6 }
        );
    }

    #[test]
    fn crashes_far_apart_never_give_up_and_back_off_resets() {
        let policy = RestartPolicy::default();
        let mut h = CrashHistory::default();
        for i in 0..50 {
            // One crash every 11 minutes: each is the only one in its window.
            assert_eq!(
                h.crashed(secs(i * 660), &policy),
                Verdict::RestartAfter(secs(1))
            );
        }
    }

    #[test]
    fn a_clean_exit_ends_supervision_without_restarts() {
        let (_tx, signals) = crossbeam_channel::unbounded();
        let mut gave_up = false;
        let ending = supervise(
            &OsString::from("true"),
            &[],
            &RestartPolicy::default(),
            &signals,
            &mut |_| gave_up = true,
        )
        .unwrap();
        assert_eq!(ending, Ending::Stopped);
        assert!(!gave_up);
    }

    #[test]
    fn a_child_that_always_fails_is_given_up_on_and_the_hook_runs_once() {
        let policy = RestartPolicy {
            first_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(4),
            max_crashes: 3,
            window: secs(600),
        };
        let (stop_tx, stop) = crossbeam_channel::unbounded();
        let (gave_up_tx, gave_up_rx) = crossbeam_channel::unbounded();
        // After giving up the supervisor waits for a signal (the LED stays on meanwhile).
        let sender = std::thread::spawn(move || {
            let crashes = gave_up_rx.recv().unwrap();
            stop_tx.send(15).unwrap();
            crashes
        });
        let ending = supervise(&OsString::from("false"), &[], &policy, &stop, &mut |n| {
            gave_up_tx.send(n).unwrap()
        })
        .unwrap();
        assert_eq!(ending, Ending::GaveUp { crashes: 4 });
        assert_eq!(sender.join().unwrap(), 4);
    }
}
