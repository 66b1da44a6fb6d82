//! The two LEDs: a pin sink ([`LedPins`]), the pure [`Blinker`] that says what each LED
//! shows at a given time, and the thread that applies it.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::HwError;
use crate::core::LedPattern;

/// Which LED.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Led {
    /// GPIO23 on the Codec Zero.
    Green,
    /// GPIO24 on the Codec Zero.
    Red,
}

impl Led {
    pub fn name(self) -> &'static str {
        match self {
            Led::Green => "green",
            Led::Red => "red",
        }
    }
}

/// Something that can switch the LEDs.
pub trait LedPins: Send {
    fn set(&mut self, led: Led, on: bool) -> Result<(), HwError>;
}

/// What one LED shows over time: a pattern and when it started. Pure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Blinker {
    pattern: LedPattern,
    since: Duration,
}

impl Blinker {
    pub fn new(pattern: LedPattern, since: Duration) -> Self {
        Blinker { pattern, since }
    }

    /// Whether the LED is lit at `now`, and when that next changes (`None`: never).
    pub fn level_at(&self, now: Duration) -> (bool, Option<Duration>) {
        match self.pattern {
            LedPattern::Off => (false, None),
            LedPattern::On => (true, None),
            LedPattern::Blink { on, off, times } => {
                let period = on + off;
                if period.is_zero() {
                    return (false, None);
                }
                let t = now.saturating_sub(self.since);
                let n = (t.as_nanos() / period.as_nanos()) as u64;
                if times.is_some_and(|k| n >= u64::from(k)) {
                    return (false, None);
                }
                let into = t - period * n as u32;
                let cycle_start = self.since + period * n as u32;
                if into < on {
                    (true, Some(cycle_start + on))
                } else {
                    (false, Some(cycle_start + period))
                }
            }
        }
    }
}

/// Applies patterns received on `patterns` to `pins` until the channel closes, then
/// switches both LEDs off.
pub fn spawn_led_thread(
    mut pins: Box<dyn LedPins>,
    patterns: Receiver<(Led, LedPattern)>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("leds".into())
        .spawn(move || {
            let start = Instant::now();
            let mut blinkers = [
                (Led::Green, Blinker::new(LedPattern::Off, Duration::ZERO)),
                (Led::Red, Blinker::new(LedPattern::Off, Duration::ZERO)),
            ];
            let mut shown = [None::<bool>; 2];
            let mut reported_error = false;
            loop {
                let now = start.elapsed();
                let mut wake: Option<Duration> = None;
                for (i, (led, blinker)) in blinkers.iter().enumerate() {
                    let (on, next) = blinker.level_at(now);
                    if shown[i] != Some(on) {
                        match pins.set(*led, on) {
                            Ok(()) => shown[i] = Some(on),
                            Err(e) if !reported_error => {
                                log::error!("LEDs: {e}");
                                reported_error = true;
                            }
                            Err(_) => {}
                        }
                    }
                    wake = match (wake, next) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                }
                let msg = match wake {
                    Some(at) => patterns.recv_timeout(at.saturating_sub(start.elapsed())),
                    None => patterns.recv().map_err(|_| RecvTimeoutError::Disconnected),
                };
                match msg {
                    Ok((led, pattern)) => {
                        let slot = blinkers.iter_mut().find(|(l, _)| *l == led);
                        if let Some((_, b)) = slot {
                            *b = Blinker::new(pattern, start.elapsed());
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            }
            let _ = pins.set(Led::Green, false);
            let _ = pins.set(Led::Red, false);
        })
}

/// LEDs for `sim`: prints each change, e.g. `[led] green on`.
pub struct PrintLeds<W: Write + Send> {
    out: W,
}

impl<W: Write + Send> PrintLeds<W> {
    pub fn new(out: W) -> Self {
        PrintLeds { out }
    }
}

impl<W: Write + Send> LedPins for PrintLeds<W> {
    fn set(&mut self, led: Led, on: bool) -> Result<(), HwError> {
        let state = if on { "on" } else { "off" };
        // Printing is best effort: a closed stdout must not stop the toy.
        let _ = writeln!(self.out, "[led] {} {state}", led.name());
        let _ = self.out.flush();
        Ok(())
    }
}

/// LEDs that remember every change, for tests.
#[derive(Clone, Default)]
pub struct RecordedLeds {
    pub changes: Arc<Mutex<Vec<(Led, bool)>>>,
}

impl LedPins for RecordedLeds {
    fn set(&mut self, led: Led, on: bool) -> Result<(), HwError> {
        if let Ok(mut c) = self.changes.lock() {
            c.push((led, on));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn steady_patterns_never_change() {
        assert_eq!(
            Blinker::new(LedPattern::On, ms(5)).level_at(ms(99)),
            (true, None)
        );
        assert_eq!(
            Blinker::new(LedPattern::Off, ms(5)).level_at(ms(99)),
            (false, None)
        );
    }

    #[test]
    fn finite_blink_runs_its_count_then_stays_off() {
        let b = Blinker::new(LedPattern::EMPTY, ms(1000)); // 3 x (200 on, 200 off)
        assert_eq!(b.level_at(ms(1000)), (true, Some(ms(1200))));
        assert_eq!(b.level_at(ms(1250)), (false, Some(ms(1400))));
        assert_eq!(b.level_at(ms(1900)), (true, Some(ms(2000))));
        assert_eq!(b.level_at(ms(2200)), (false, None));
        assert_eq!(b.level_at(ms(9000)), (false, None));
    }

    #[test]
    fn flash_is_one_pulse() {
        let b = Blinker::new(LedPattern::FLASH, ms(0));
        assert_eq!(b.level_at(ms(100)), (true, Some(ms(150))));
        assert_eq!(b.level_at(ms(150)), (false, None));
    }

    #[test]
    fn endless_blink_keeps_going() {
        let b = Blinker::new(LedPattern::FAULT, ms(0));
        assert_eq!(b.level_at(ms(1_000_050)), (true, Some(ms(1_000_100))));
        assert_eq!(b.level_at(ms(1_000_150)), (false, Some(ms(1_000_200))));
    }

    #[test]
    fn thread_applies_patterns_and_switches_off_at_exit() {
        let leds = RecordedLeds::default();
        let (tx, rx) = crossbeam_channel::unbounded();
        let h = spawn_led_thread(Box::new(leds.clone()), rx).unwrap();
        tx.send((Led::Green, LedPattern::On)).unwrap();
        tx.send((Led::Red, LedPattern::FLASH)).unwrap();
        std::thread::sleep(ms(400));
        drop(tx);
        h.join().unwrap();
        let changes = leds.changes.lock().unwrap().clone();
        assert!(changes.contains(&(Led::Green, true)), "{changes:?}");
        assert!(changes.contains(&(Led::Red, true)), "{changes:?}");
        let last_red = changes.iter().rev().find(|(l, _)| *l == Led::Red);
        assert_eq!(last_red, Some(&(Led::Red, false)));
        assert_eq!(changes.last().map(|c| c.1), Some(false));
    }
}
