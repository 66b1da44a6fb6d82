//! Hardware at the edge: each peripheral is a small trait with a real (Raspberry Pi)
//! backend and a simulated one, so everything above it runs and is tested on any Linux box.
//!
//! * [`button`] — the Codec Zero button (GPIO27, active-low) and its debouncer.
//! * [`leds`] — the green (GPIO23) and red (GPIO24) LEDs and their patterns.
//! * [`gpio`] — the rppal backends for both, the only code here that needs a Pi.
//! * [`display`] — the SSD1306 OLED.
pub mod button;
pub mod display;
pub mod gpio;
pub mod leds;

/// A GPIO/I2C failure, with what to do about it in the message.
#[derive(Debug, thiserror::Error)]
pub enum HwError {
    #[error("{what}: {detail}. {fix}")]
    Gpio {
        what: String,
        detail: String,
        fix: String,
    },
    #[error("display: {0}")]
    Display(String),
}
