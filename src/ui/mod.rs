//! What the OLED shows, as a pure function of a small value.
//!
//! The controller decides *which* [`Screen`] to show; [`draw`] decides *how* it looks. Keeping
//! rendering a pure function of `(Screen, DisplaySize)` means the same code drives the real
//! SSD1306, the PNG screenshots and the golden-image tests, and none of them needs a thread,
//! a clock or a bus.
//!
//! Legibility comes first: a 0.96" 128x64 OLED has pixels about 0.17 mm wide, so the smallest
//! font used is 6x10 (only for secondary lines), normal text is 7x13, headings are 10x20 and
//! the most important thing on each screen (the word heard, the countdown, the clip count) is
//! 10x20 magnified twice, readable from across a room.
//!
//! * [`layout`] — one drawing function per screen, for each display size.
//! * [`widgets`] — text fitting, icons and the pixel magnifier the layouts share.
//! * [`framebuffer`] — an in-memory 1-bit target for screenshots and tests.

pub mod framebuffer;
mod layout;
pub mod widgets;

use embedded_graphics::{pixelcolor::BinaryColor, prelude::*};

pub use framebuffer::Framebuffer;

/// The screen to show. The controller decides which; rendering is a pure function of it.
#[derive(Clone, Debug, PartialEq)]
pub enum Screen {
    /// Waiting: how many clips are saved, whether the keyword recognizer is on, volume 0..=10.
    Idle {
        clips: usize,
        listening: bool,
        volume: u8,
    },
    /// The word just heard, with its confidence 0..=1.
    Heard { word: String, confidence: f32 },
    /// Playing a clip (its file name, shown shortened).
    Playing { name: String },
    /// Recording, with whole seconds left.
    Recording { seconds_left: u8 },
    /// Held past 20 s: letting go erases every recording.
    ReleaseToErase,
    /// Everything was erased; how many clips were removed.
    Erased { count: usize },
    /// Something needs the owner's attention (no mic, disk full, ...).
    Error { title: String, detail: String },
    /// The double press is held long enough: letting go starts teaching the toy a voice.
    TeachReady,
    /// Teaching: say `word` (take `take` of `takes`; for one of the owner's other words, said
    /// once each, `other_word` and word `take` of `takes`); `listening` once the microphone
    /// is on.
    EnrollSay {
        word: String,
        take: usize,
        takes: usize,
        other_word: bool,
        listening: bool,
    },
    /// Teaching: the take was kept.
    EnrollGotIt {
        word: String,
        take: usize,
        takes: usize,
        other_word: bool,
    },
    /// Teaching: the take was refused (`reason`: "too quiet", "clipped", ...); say it again.
    EnrollAgain { word: String, reason: String },
    /// Teaching: learning from `takes` takes.
    EnrollLearning { takes: usize },
    /// Teaching is over: accuracy on the owner's held-out takes before and after (0..=1),
    /// and whether the new model is in use.
    EnrollResult {
        before: f32,
        after: f32,
        switched: bool,
    },
}

/// The panel's geometry. Both common SSD1306 modules are supported; the 128x32 layouts show
/// the same information with less decoration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum DisplaySize {
    /// The common 0.96" module.
    #[default]
    W128H64,
    /// The 0.91" strip.
    W128H32,
}

impl DisplaySize {
    /// Width in pixels.
    pub const fn width(self) -> u32 {
        128
    }

    /// Height in pixels.
    pub const fn height(self) -> u32 {
        match self {
            DisplaySize::W128H64 => 64,
            DisplaySize::W128H32 => 32,
        }
    }

    /// Both dimensions as an embedded-graphics [`Size`].
    pub const fn size(self) -> Size {
        Size::new(self.width(), self.height())
    }

    /// Parses `128x64` / `128x32` (as written in the config or on the command line).
    pub fn parse(text: &str) -> Option<DisplaySize> {
        match text.trim().to_ascii_lowercase().as_str() {
            "128x64" => Some(DisplaySize::W128H64),
            "128x32" => Some(DisplaySize::W128H32),
            _ => None,
        }
    }
}

impl std::fmt::Display for DisplaySize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}", self.width(), self.height())
    }
}

/// Draws `screen` over the whole of `target`, laid out for `size`.
///
/// The target is cleared first, so the result depends on nothing but the arguments. Drawing
/// outside the target's bounds is harmless (every embedded-graphics target clips).
pub fn draw<D>(screen: &Screen, size: DisplaySize, target: &mut D) -> Result<(), D::Error>
where
    D: DrawTarget<Color = BinaryColor>,
{
    match size {
        DisplaySize::W128H64 => layout::draw_128x64(screen, target),
        DisplaySize::W128H32 => layout::draw_128x32(screen, target),
    }
}

/// Renders `screen` into a fresh in-memory framebuffer of `size`.
pub fn render(screen: &Screen, size: DisplaySize) -> Framebuffer {
    let mut fb = Framebuffer::new(size.width(), size.height());
    // The framebuffer's error type is `Infallible`.
    let Ok(()) = draw(screen, size, &mut fb);
    fb
}

/// A named example of every screen, for `chatterbox screenshot --screen NAME`, the README
/// images and the golden tests. Names are stable: golden files are named after them.
pub fn sample_screens() -> Vec<(&'static str, Screen)> {
    vec![
        (
            "idle",
            Screen::Idle {
                clips: 12,
                listening: true,
                volume: 7,
            },
        ),
        (
            "idle-empty",
            Screen::Idle {
                clips: 0,
                listening: false,
                volume: 0,
            },
        ),
        (
            "heard",
            Screen::Heard {
                word: "stop".into(),
                confidence: 0.87,
            },
        ),
        (
            "heard-long",
            Screen::Heard {
                word: "unknown".into(),
                confidence: 0.42,
            },
        ),
        (
            "playing",
            Screen::Playing {
                name: "2026-11-23T10-15-42.wav".into(),
            },
        ),
        ("recording", Screen::Recording { seconds_left: 5 }),
        ("release-to-erase", Screen::ReleaseToErase),
        ("erased", Screen::Erased { count: 12 }),
        (
            "error-no-mic",
            Screen::Error {
                title: "No mic".into(),
                detail: "Codec Zero not found. Run setup-audio".into(),
            },
        ),
        (
            "error-disk-full",
            Screen::Error {
                title: "Disk full".into(),
                detail: "Cannot save clips. Erase some: hold 20 s".into(),
            },
        ),
        ("teach-ready", Screen::TeachReady),
        (
            "enroll-say",
            Screen::EnrollSay {
                word: "left".into(),
                take: 3,
                takes: 6,
                other_word: false,
                listening: false,
            },
        ),
        (
            "enroll-say-other-word",
            Screen::EnrollSay {
                word: "chocolate".into(),
                take: 9,
                takes: 12,
                other_word: true,
                listening: true,
            },
        ),
        (
            "enroll-listening",
            Screen::EnrollSay {
                word: "left".into(),
                take: 3,
                takes: 6,
                other_word: false,
                listening: true,
            },
        ),
        (
            "enroll-got-it",
            Screen::EnrollGotIt {
                word: "left".into(),
                take: 3,
                takes: 6,
                other_word: false,
            },
        ),
        (
            "enroll-again",
            Screen::EnrollAgain {
                word: "left".into(),
                reason: "too quiet".into(),
            },
        ),
        ("enroll-learning", Screen::EnrollLearning { takes: 48 }),
        (
            "enroll-learned",
            Screen::EnrollResult {
                before: 0.78,
                after: 0.96,
                switched: true,
            },
        ),
        (
            "enroll-kept",
            Screen::EnrollResult {
                before: 0.81,
                after: 0.75,
                switched: false,
            },
        ),
    ]
}

/// Looks up one of [`sample_screens`] by name.
pub fn sample_screen(name: &str) -> Option<Screen> {
    sample_screens()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, s)| s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(fb: &Framebuffer) -> usize {
        fb.pixels().iter().filter(|p| **p).count()
    }

    #[test]
    fn every_sample_draws_something_on_both_sizes() {
        for (name, screen) in sample_screens() {
            for size in [DisplaySize::W128H64, DisplaySize::W128H32] {
                let fb = render(&screen, size);
                let on = lit(&fb);
                let total = (size.width() * size.height()) as usize;
                assert!(on > 40, "{name} at {size} lit only {on} pixels");
                assert!(on < total - 40, "{name} at {size} is almost all lit");
            }
        }
    }

    #[test]
    fn sample_names_are_unique_and_found() {
        let names: Vec<_> = sample_screens().iter().map(|(n, _)| *n).collect();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len());
        for n in names {
            assert!(sample_screen(n).is_some());
        }
        assert!(sample_screen("nope").is_none());
    }

    #[test]
    fn different_states_look_different() {
        let a = render(&Screen::Recording { seconds_left: 5 }, DisplaySize::W128H64);
        let b = render(&Screen::Recording { seconds_left: 4 }, DisplaySize::W128H64);
        assert_ne!(a, b, "the countdown must change the picture");
        let quiet = render(
            &Screen::Idle {
                clips: 3,
                listening: false,
                volume: 5,
            },
            DisplaySize::W128H64,
        );
        let listening = render(
            &Screen::Idle {
                clips: 3,
                listening: true,
                volume: 5,
            },
            DisplaySize::W128H64,
        );
        assert_ne!(quiet, listening);
        let louder = render(
            &Screen::Idle {
                clips: 3,
                listening: true,
                volume: 6,
            },
            DisplaySize::W128H64,
        );
        assert!(
            lit(&louder) > lit(&listening),
            "one more volume segment lit"
        );
    }

    #[test]
    fn hostile_values_do_not_panic() {
        let screens = [
            Screen::Heard {
                word: String::new(),
                confidence: f32::NAN,
            },
            Screen::Heard {
                word: "a-very-long-word-indeed-that-cannot-fit".into(),
                confidence: 7.0,
            },
            Screen::Heard {
                word: "héllo→".into(),
                confidence: -1.0,
            },
            Screen::Idle {
                clips: usize::MAX,
                listening: true,
                volume: 255,
            },
            Screen::Playing {
                name: String::new(),
            },
            Screen::Erased { count: usize::MAX },
            Screen::Error {
                title: "x".repeat(200),
                detail: "word ".repeat(200),
            },
            Screen::Recording { seconds_left: 255 },
            Screen::EnrollSay {
                word: "x".repeat(300),
                take: usize::MAX,
                takes: usize::MAX,
                other_word: true,
                listening: true,
            },
            Screen::EnrollAgain {
                word: String::new(),
                reason: "é".repeat(100),
            },
            Screen::EnrollGotIt {
                word: "→".into(),
                take: 0,
                takes: 0,
                other_word: true,
            },
            Screen::EnrollLearning { takes: usize::MAX },
            Screen::EnrollResult {
                before: f32::NAN,
                after: f32::INFINITY,
                switched: false,
            },
        ];
        for s in &screens {
            for size in [DisplaySize::W128H64, DisplaySize::W128H32] {
                let _ = render(s, size);
            }
        }
    }

    #[test]
    fn display_size_parses_and_prints() {
        assert_eq!(DisplaySize::parse("128x32"), Some(DisplaySize::W128H32));
        assert_eq!(DisplaySize::parse(" 128X64 "), Some(DisplaySize::W128H64));
        assert_eq!(DisplaySize::parse("64x48"), None);
        assert_eq!(DisplaySize::W128H32.to_string(), "128x32");
    }
}
