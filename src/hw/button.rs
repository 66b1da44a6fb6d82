//! The button: a level source ([`ButtonPin`]) and, later in this file, the debouncer.

use super::HwError;

/// The raw button level. Backends hide the wiring: the Codec Zero button pulls GPIO27 low
/// when pressed, and `is_pressed` returns `true` then.
pub trait ButtonPin: Send {
    /// `true` while the button is held down.
    fn is_pressed(&mut self) -> Result<bool, HwError>;
}
