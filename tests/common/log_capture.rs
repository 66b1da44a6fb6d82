//! Every log line of the test process, for counting: tests that check "one error line per
//! episode" read them here. Process-wide, so such tests live in binaries of their own.
#![allow(dead_code)] // each test binary uses a different subset

use std::sync::Mutex;

struct Capture(Mutex<Vec<(log::Level, String)>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, r: &log::Record) {
        if let Ok(mut v) = self.0.lock() {
            v.push((r.level(), r.args().to_string()));
        }
    }
    fn flush(&self) {}
}

static LOG: Capture = Capture(Mutex::new(Vec::new()));

/// Installs the capturing logger (once per process) at debug level.
pub fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        log::set_logger(&LOG).unwrap();
        log::set_max_level(log::LevelFilter::Debug);
    });
}

/// Lines logged at `level` that contain `needle`.
pub fn count(level: log::Level, needle: &str) -> usize {
    LOG.0
        .lock()
        .unwrap()
        .iter()
        .filter(|(l, m)| *l == level && m.contains(needle))
        .count()
}

/// Every line so far, for a failure message.
pub fn all() -> Vec<(log::Level, String)> {
    LOG.0.lock().unwrap().clone()
}
