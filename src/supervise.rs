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
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

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
    /// A signal stopped the supervisor while it was in a crash loop (red LED on).
    StoppedWhileFailing { crashes: usize },
}

/// What the supervisor runs and how.
pub struct Supervised<'a> {
    pub program: &'a OsString,
    pub args: &'a [OsString],
    pub policy: &'a RestartPolicy,
    /// After giving up, try again this long later (a boot-time race or a fixed config then
    /// heals without a reboot); the red LED stays on meanwhile.
    pub retry_after_giving_up: Duration,
    /// An open file (the instance lock) the child keeps open too, so the lock is held
    /// while either process lives.
    pub shared_fd: Option<RawFd>,
}

/// Runs the child until it exits cleanly or a signal arrives, restarting it after failures
/// by the policy. `fault_led(true)` runs when the policy gives up (the red LED on),
/// `fault_led(false)` before each start after that (the LEDs handed back to the toy).
pub fn supervise(
    what: &Supervised<'_>,
    signals: &Receiver<i32>,
    fault_led: &mut dyn FnMut(bool),
) -> Ending {
    let start = Instant::now();
    let mut history = CrashHistory::default();
    let mut failing: Option<usize> = None;
    loop {
        if failing.is_some() {
            fault_led(false);
        }
        let failure = match spawn_child(what) {
            Ok(child) => {
                let pid = child.id();
                log::info!("supervisor: started the toy (process {pid})");
                match wait_or_signal(child, signals) {
                    Waited::Exited(status) if status.success() => {
                        log::info!("supervisor: the toy stopped cleanly; done");
                        return Ending::Stopped;
                    }
                    Waited::Exited(status) => format!("the toy (process {pid}) failed ({status})"),
                    Waited::Signalled(status) => {
                        log::info!("supervisor: the toy stopped ({status}) after a signal; done");
                        return ending(failing);
                    }
                    Waited::Lost(e) => format!("lost track of the toy (process {pid}): {e}"),
                }
            }
            Err(e) => format!("could not start {}: {e}", what.program.to_string_lossy()),
        };
        let wait = match history.crashed(start.elapsed(), what.policy) {
            Verdict::RestartAfter(wait) => {
                log::warn!(
                    "supervisor: {failure}; starting it again in {:.0} s",
                    wait.as_secs_f64()
                );
                wait
            }
            Verdict::GiveUp { crashes } => {
                if failing.is_none() {
                    log::error!(
                        "supervisor: {failure}; it failed {crashes} times within {} min, so the red LED is on and it is tried again only every {} min. Read the log above for the cause (journalctl -t chatterbox), fix it, then restart (reboot, or `sudo systemctl restart chatterbox`)",
                        what.policy.window.as_secs() / 60,
                        what.retry_after_giving_up.as_secs().div_ceil(60)
                    );
                } else {
                    log::error!(
                        "supervisor: {failure}; still failing, next try in {} min",
                        what.retry_after_giving_up.as_secs().div_ceil(60)
                    );
                }
                failing = Some(crashes);
                fault_led(true);
                what.retry_after_giving_up
            }
        };
        if signals.recv_timeout(wait).is_ok() {
            return ending(failing);
        }
    }
}

fn ending(failing: Option<usize>) -> Ending {
    match failing {
        Some(crashes) => Ending::StoppedWhileFailing { crashes },
        None => Ending::Stopped,
    }
}

/// Starts the child so that it cannot outlive the supervisor unnoticed: it gets SIGTERM
/// when the supervisor dies (even by SIGKILL), and it holds the shared file (the lock) too.
fn spawn_child(what: &Supervised<'_>) -> std::io::Result<Child> {
    let mut cmd = Command::new(what.program);
    cmd.args(what.args).env(SUPERVISED_ENV, "1");
    let parent = std::process::id() as libc::pid_t;
    let shared_fd = what.shared_fd;
    // SAFETY: the closure runs in the forked child before exec and calls only
    // async-signal-safe functions (prctl, getppid, fcntl); it touches no locks or heap.
    unsafe {
        cmd.pre_exec(move || {
            // The signal follows the thread that forked: the supervisor forks from its main
            // thread, which lives as long as the supervisor does.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                // The supervisor died between fork and prctl.
                return Err(std::io::Error::other("the supervisor is gone"));
            }
            if let Some(fd) = shared_fd {
                if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    cmd.spawn()
}

enum Waited {
    Exited(ExitStatus),
    Signalled(ExitStatus),
    Lost(std::io::Error),
}

/// How often the supervisor looks whether its child has ended. This thread is the only one
/// that reaps the child, so a signal it forwards can never reach a recycled PID.
const POLL_CHILD: Duration = Duration::from_millis(250);

/// Waits for the child; a signal meanwhile is passed on to it (SIGTERM), and after 10 s
/// without an exit it is killed.
fn wait_or_signal(mut child: Child, signals: &Receiver<i32>) -> Waited {
    let mut stop_by: Option<Instant> = None;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if stop_by.is_some() => return Waited::Signalled(status),
            Ok(Some(status)) => return Waited::Exited(status),
            Ok(None) => {}
            Err(e) => return Waited::Lost(e),
        }
        match stop_by {
            None => {
                if signals.recv_timeout(POLL_CHILD).is_ok() {
                    // SAFETY: kill with the PID of our child, which is not reaped yet
                    // (try_wait above said it is running, and only this thread reaps).
                    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
                    stop_by = Some(Instant::now() + Duration::from_secs(10));
                }
            }
            Some(deadline) if Instant::now() >= deadline => {
                log::warn!("supervisor: the toy did not stop within 10 s; killing it");
                let _ = child.kill();
                return match child.wait() {
                    Ok(status) => Waited::Signalled(status),
                    Err(e) => Waited::Lost(e),
                };
            }
            Some(_) => std::thread::sleep(POLL_CHILD),
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

    fn run(
        program: &str,
        policy: &RestartPolicy,
        retry: Duration,
        signals: &Receiver<i32>,
        fault_led: &mut dyn FnMut(bool),
    ) -> Ending {
        let program = OsString::from(program);
        supervise(
            &Supervised {
                program: &program,
                args: &[],
                policy,
                retry_after_giving_up: retry,
                shared_fd: None,
            },
            signals,
            fault_led,
        )
    }

    #[test]
    fn a_clean_exit_ends_supervision_without_restarts() {
        let (_tx, signals) = crossbeam_channel::unbounded();
        let mut led = Vec::new();
        let ending = run(
            "true",
            &RestartPolicy::default(),
            secs(600),
            &signals,
            &mut |on| led.push(on),
        );
        assert_eq!(ending, Ending::Stopped);
        assert!(led.is_empty());
    }

    #[test]
    fn a_crash_loop_lights_the_fault_then_keeps_trying_slowly() {
        let policy = RestartPolicy {
            first_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(4),
            max_crashes: 3,
            window: secs(600),
        };
        let (stop_tx, stop) = crossbeam_channel::unbounded();
        let mut led = Vec::new();
        // A program that is not there fails every start (a spawn error counts as a crash).
        let ending = run(
            "/nonexistent/chatterbox",
            &policy,
            Duration::from_millis(20),
            &stop,
            &mut |on| {
                led.push(on);
                if led.iter().filter(|&&on| on).count() == 3 {
                    stop_tx.send(15).unwrap();
                }
            },
        );
        assert_eq!(ending, Ending::StoppedWhileFailing { crashes: 6 });
        // Crashes 4, 5 and 6 are over the limit: after each the LED is lit and the next
        // start waits the long retry, handing the LEDs back first.
        assert_eq!(led, [true, false, true, false, true]);
    }
}
