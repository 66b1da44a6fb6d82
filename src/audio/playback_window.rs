//! When the toy was playing, on the same clock as [`AudioChunk::captured_at`](super::AudioChunk),
//! so the keyword listener can ask "was this chunk captured while the toy spoke, or in its
//! echo tail?" however late it gets to the chunk.
//!
//! A flag read at processing time is not enough: the listener's queue holds up to 2 s, so
//! a listener that fell behind would process audio captured during a clip after the clip
//! ended, hear its own speaker, and answer itself. The controller records each change of
//! "playing" here (one call after every input); the listener compares capture times.
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Finished playbacks kept: enough for a listener 2 s behind even if clips are stopped and
/// restarted many times a second; the oldest are forgotten first.
const KEEP: usize = 32;

#[derive(Debug, Default)]
struct Intervals {
    /// Start of the playback in progress, if any.
    since: Option<Instant>,
    /// Finished playbacks, oldest first: (start, end).
    past: VecDeque<(Instant, Instant)>,
}

/// The toy's recent playback intervals. Share it in an `Arc`; methods take `&self`.
#[derive(Debug, Default)]
pub struct PlaybackWindow {
    inner: Mutex<Intervals>,
}

impl PlaybackWindow {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Intervals> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records whether the toy is playing now. Repeating the current state changes nothing,
    /// so the controller may call it after every input.
    pub fn set_playing(&self, playing: bool) {
        self.set_playing_at(playing, Instant::now());
    }

    /// [`set_playing`](Self::set_playing) with an explicit time (tests, simulations).
    pub fn set_playing_at(&self, playing: bool, at: Instant) {
        let mut i = self.lock();
        match (playing, i.since) {
            (true, None) => i.since = Some(at),
            (false, Some(start)) => {
                i.since = None;
                i.past.push_back((start, at.max(start)));
                while i.past.len() > KEEP {
                    i.past.pop_front();
                }
            }
            _ => {}
        }
    }

    /// Whether a playback is in progress.
    pub fn is_playing(&self) -> bool {
        self.lock().since.is_some()
    }

    /// Whether audio captured from `from` to `to` overlaps a playback, or the `tail` after
    /// one ended (the speaker's decay and the room's echo).
    pub fn overlaps(&self, from: Instant, to: Instant, tail: Duration) -> bool {
        let i = self.lock();
        if i.since.is_some_and(|start| to > start) {
            return true;
        }
        i.past
            .iter()
            .any(|&(start, end)| to > start && from < end + tail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TAIL: Duration = Duration::from_millis(300);

    fn ms(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn audio_during_playback_or_its_tail_overlaps_and_audio_around_it_does_not() {
        let t0 = Instant::now();
        let w = PlaybackWindow::new();
        w.set_playing_at(true, ms(t0, 1000));
        w.set_playing_at(true, ms(t0, 1500)); // repeated: still the same playback
        w.set_playing_at(false, ms(t0, 2000));
        let heard = |a, b| w.overlaps(ms(t0, a), ms(t0, b), TAIL);
        assert!(!heard(900, 1000), "just before the clip");
        assert!(heard(980, 1020), "straddles the start");
        assert!(heard(1490, 1510), "during the clip");
        assert!(heard(2200, 2220), "in the echo tail");
        assert!(!heard(2300, 2320), "after the tail");
        assert!(!w.is_playing());
    }

    #[test]
    fn a_playback_in_progress_covers_everything_after_its_start() {
        let t0 = Instant::now();
        let w = PlaybackWindow::new();
        w.set_playing_at(true, ms(t0, 100));
        assert!(w.is_playing());
        assert!(w.overlaps(ms(t0, 5000), ms(t0, 5020), TAIL));
        assert!(!w.overlaps(ms(t0, 0), ms(t0, 20), TAIL));
    }

    #[test]
    fn only_the_most_recent_playbacks_are_kept() {
        let t0 = Instant::now();
        let w = PlaybackWindow::new();
        for k in 0..(KEEP as u64 + 5) {
            w.set_playing_at(true, ms(t0, k * 1000));
            w.set_playing_at(false, ms(t0, k * 1000 + 100));
        }
        assert_eq!(w.lock().past.len(), KEEP);
        assert!(w.overlaps(
            ms(t0, (KEEP as u64 + 4) * 1000),
            ms(t0, (KEEP as u64 + 4) * 1000 + 10),
            TAIL
        ));
    }
}
