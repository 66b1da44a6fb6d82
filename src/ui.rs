//! What the OLED shows, as a pure function of a small value.

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
}
