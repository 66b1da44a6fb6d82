//! The button: a level source ([`ButtonPin`]), the [`Debouncer`] that turns a noisy level
//! into clean presses, and the thread that polls one into the other.
//!
//! Polling (every 5 ms by default) rather than edge interrupts keeps one code path for the
//! Pi and for simulated pins, costs a few hundred wake-ups a second (well under 1 % CPU on
//! a Pi Zero 2 W), and bounds the added latency to one poll interval.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Sender;

use super::HwError;
use crate::clock::Clock;

/// The raw button level. Backends hide the wiring: the Codec Zero button pulls GPIO27 low
/// when pressed, and `is_pressed` returns `true` then.
pub trait ButtonPin: Send {
    /// `true` while the button is held down.
    fn is_pressed(&mut self) -> Result<bool, HwError>;
}

/// A clean button edge, stamped with the time the level *started* to change, so hold
/// times are measured from the real press, not from when the bouncing stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edge {
    Down(Duration),
    Up(Duration),
}

/// Turns raw level samples into edges. A new level counts only once it has held for
/// `settle` without interruption; anything shorter is contact bounce or a spike and is
/// dropped. Pure: the caller supplies the sample times.
#[derive(Clone, Debug)]
pub struct Debouncer {
    settle: Duration,
    /// The level last reported.
    stable: bool,
    /// A different level seen since this time, not yet trusted.
    candidate_since: Option<Duration>,
}

impl Debouncer {
    /// A debouncer that starts with the button up.
    pub fn new(settle: Duration) -> Self {
        Debouncer {
            settle,
            stable: false,
            candidate_since: None,
        }
    }

    /// Feeds one sample of the raw level taken at `at`; returns an edge once a new level
    /// has held for `settle`.
    pub fn sample(&mut self, at: Duration, pressed: bool) -> Option<Edge> {
        if pressed == self.stable {
            self.candidate_since = None;
            return None;
        }
        let since = *self.candidate_since.get_or_insert(at);
        if at.saturating_sub(since) < self.settle {
            return None;
        }
        self.stable = pressed;
        self.candidate_since = None;
        Some(if pressed {
            Edge::Down(since)
        } else {
            Edge::Up(since)
        })
    }

    /// The level last reported.
    pub fn is_pressed(&self) -> bool {
        self.stable
    }
}

/// A pin whose level is set by software: the `sim` keyboard and tests.
#[derive(Clone, Debug, Default)]
pub struct SimPin {
    level: Arc<AtomicBool>,
}

impl SimPin {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn set(&self, pressed: bool) {
        self.level.store(pressed, Ordering::SeqCst);
    }
}

impl ButtonPin for SimPin {
    fn is_pressed(&mut self) -> Result<bool, HwError> {
        Ok(self.level.load(Ordering::SeqCst))
    }
}

/// Polls `pin` every `poll`, debounces, and sends each edge through `on_edge` until `stop`
/// is set or the receiver is gone. Pin errors are logged once per episode, not per poll.
pub fn spawn_button_thread(
    mut pin: Box<dyn ButtonPin>,
    clock: Arc<dyn Clock>,
    settle: Duration,
    poll: Duration,
    edges: Sender<Edge>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("button".into())
        .spawn(move || {
            let mut debouncer = Debouncer::new(settle);
            let mut failing = false;
            while !stop.load(Ordering::Relaxed) {
                match pin.is_pressed() {
                    Ok(level) => {
                        if failing {
                            log::info!("button: reading the pin works again");
                            failing = false;
                        }
                        if let Some(edge) = debouncer.sample(clock.now(), level) {
                            if edges.send(edge).is_err() {
                                return;
                            }
                        }
                    }
                    Err(e) if !failing => {
                        log::error!("button: {e}");
                        failing = true;
                    }
                    Err(_) => {}
                }
                std::thread::sleep(poll);
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Samples a level function every millisecond from 0 to `end` ms.
    fn run(settle: u64, end: u64, level: impl Fn(u64) -> bool) -> Vec<Edge> {
        let mut d = Debouncer::new(ms(settle));
        (0..=end)
            .filter_map(|t| d.sample(ms(t), level(t)))
            .collect()
    }

    #[test]
    fn clean_press_is_stamped_at_its_start() {
        let edges = run(30, 500, |t| (100..300).contains(&t));
        assert_eq!(edges, vec![Edge::Down(ms(100)), Edge::Up(ms(300))]);
    }

    #[test]
    fn bounces_collapse_into_one_press() {
        // Contact bounce: 10 ms of chatter on press and on release.
        let level = |t: u64| match t {
            100..=110 => t % 2 == 0,
            111..=299 => true,
            300..=310 => t % 2 == 1,
            _ => false,
        };
        let edges = run(30, 600, level);
        assert_eq!(edges.len(), 2, "{edges:?}");
        assert!(matches!(edges[0], Edge::Down(t) if (ms(100)..=ms(110)).contains(&t)));
        assert!(matches!(edges[1], Edge::Up(t) if (ms(300)..=ms(311)).contains(&t)));
    }

    #[test]
    fn spikes_shorter_than_settle_are_not_presses() {
        let edges = run(30, 1000, |t| {
            (100..129).contains(&t) || (500..505).contains(&t)
        });
        assert!(edges.is_empty(), "{edges:?}");
    }

    #[test]
    fn exactly_settle_long_counts() {
        assert_eq!(
            run(30, 200, |t| (100..131).contains(&t)),
            vec![Edge::Down(ms(100)), Edge::Up(ms(131))]
        );
        assert!(run(30, 200, |t| (100..130).contains(&t)).is_empty());
    }

    #[test]
    fn dropout_during_a_hold_does_not_split_it() {
        // A 3 ms dropout in the middle of a 12 s hold is noise, not a release.
        let edges = run(30, 13_000, |t| {
            (1000..12_000).contains(&t) && !(5000..5003).contains(&t)
        });
        assert_eq!(edges, vec![Edge::Down(ms(1000)), Edge::Up(ms(12_000))]);
    }

    #[test]
    fn polling_thread_reports_debounced_edges() {
        let pin = SimPin::new();
        let (tx, rx) = crossbeam_channel::unbounded();
        let stop = Arc::new(AtomicBool::new(false));
        let clock: Arc<dyn Clock> = Arc::new(crate::clock::RealClock::new());
        let handle = spawn_button_thread(
            Box::new(pin.clone()),
            clock,
            ms(20),
            ms(2),
            tx,
            stop.clone(),
        )
        .unwrap();
        pin.set(true);
        let down = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        pin.set(false);
        let up = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        stop.store(true, Ordering::SeqCst);
        handle.join().unwrap();
        match (down, up) {
            (Edge::Down(a), Edge::Up(b)) => assert!(b > a),
            other => panic!("expected down then up, got {other:?}"),
        }
    }
}
