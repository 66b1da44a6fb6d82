//! The two LEDs: a pin sink ([`LedPins`]) and, later in this file, the pattern player.

use super::HwError;

/// Which LED.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Led {
    /// GPIO23 on the Codec Zero.
    Green,
    /// GPIO24 on the Codec Zero.
    Red,
}

/// Something that can switch the LEDs.
pub trait LedPins: Send {
    fn set(&mut self, led: Led, on: bool) -> Result<(), HwError>;
}
