//! rppal backends for the button and LEDs — the only code here that needs a Raspberry Pi.
//!
//! They are deliberately thin: all logic (debouncing, patterns) lives above the
//! [`ButtonPin`] and [`LedPins`] traits and is tested on any machine. What this module adds
//! is good failure messages, because "it does not start" on a Pi is nearly always one of a
//! handful of set-up problems.
//!
//! # Troubleshooting
//!
//! * *not a Raspberry Pi* — rppal could not identify the board. Use `chatterbox sim`
//!   elsewhere.
//! * *permission denied* on `/dev/gpiomem` or `/dev/gpiochip*` — add the user to the `gpio`
//!   group: `sudo usermod -aG gpio $USER`, then log in again (the installer does this for the
//!   `chatterbox` user).
//! * *busy* — another program holds the pin; `gpioinfo` (package `gpiod`) names the
//!   consumer of each line, `sudo lsof /dev/gpiochip*` names the process. Often it is a
//!   second chatterbox: `sudo systemctl stop chatterbox`, or check `crontab -l -u chatterbox`.
//! * *does not exist* — pins are BCM GPIO numbers (Codec Zero: button 27, green LED 23, red
//!   LED 24), not header pin numbers.

use rppal::gpio::{Gpio, InputPin, Level, OutputPin};

use super::button::ButtonPin;
use super::leds::{Led, LedPins};
use super::HwError;

/// EBUSY: the kernel's answer when another process has requested the GPIO line.
const EBUSY: i32 = 16;

/// The Codec Zero's button on GPIO27 (or any active-low button to ground): input with the
/// internal pull-up, so the line reads low while pressed.
pub struct RppalButton {
    pin: InputPin,
}

impl RppalButton {
    /// Claims BCM GPIO `pin` as a pulled-up input.
    pub fn new(pin: u8) -> Result<RppalButton, HwError> {
        let input = claim(pin, "button")?.into_input_pullup();
        Ok(RppalButton { pin: input })
    }
}

impl ButtonPin for RppalButton {
    fn is_pressed(&mut self) -> Result<bool, HwError> {
        Ok(self.pin.is_low())
    }
}

/// The two LEDs (Codec Zero: green GPIO23, red GPIO24), active-high, both off at start.
pub struct RppalLeds {
    green: OutputPin,
    red: OutputPin,
}

impl RppalLeds {
    /// Claims BCM GPIO `green` and `red` as outputs, driven low (off).
    pub fn new(green: u8, red: u8) -> Result<RppalLeds, HwError> {
        if green == red {
            return Err(HwError::Gpio {
                what: format!("LEDs (GPIO{green})"),
                detail: "the green and red LED are set to the same pin".into(),
                fix: "Give each LED its own pin in the config (Codec Zero: green 23, red 24)"
                    .into(),
            });
        }
        let green_pin = claim(green, "green LED")?.into_output_low();
        let red_pin = claim(red, "red LED")?.into_output_low();
        Ok(RppalLeds {
            green: green_pin,
            red: red_pin,
        })
    }
}

impl LedPins for RppalLeds {
    fn set(&mut self, led: Led, on: bool) -> Result<(), HwError> {
        let level = if on { Level::High } else { Level::Low };
        match led {
            Led::Green => self.green.write(level),
            Led::Red => self.red.write(level),
        }
        Ok(())
    }
}

/// Opens the GPIO peripheral and takes `pin` for `role`, with a helpful error either way.
fn claim(pin: u8, role: &str) -> Result<rppal::gpio::Pin, HwError> {
    let gpio = Gpio::new().map_err(|e| gpio_error(role, pin, &e))?;
    gpio.get(pin).map_err(|e| gpio_error(role, pin, &e))
}

/// Explains an rppal GPIO failure for the pin used as `role`, with what to do about it.
pub fn gpio_error(role: &str, pin: u8, e: &rppal::gpio::Error) -> HwError {
    use rppal::gpio::Error as E;
    let what = format!("{role} (GPIO{pin})");
    let not_a_pi = "Run on a Raspberry Pi, or try everything else with `chatterbox sim`";
    let group = "Add the user to the gpio group (`sudo usermod -aG gpio $USER`) and log in \
                 again; the installer does this for the chatterbox user";
    let busy = format!(
        "Find the program holding it with `gpioinfo | grep -w GPIO{pin}` (package gpiod) or \
         `sudo lsof /dev/gpiochip*` and stop it; if it is another chatterbox, run \
         `sudo systemctl stop chatterbox` or remove its line from `crontab -e -u chatterbox`"
    );
    let (detail, fix) = match e {
        E::UnknownModel => (
            "this does not look like a Raspberry Pi (the board model is unknown)".to_string(),
            not_a_pi.to_string(),
        ),
        E::PermissionDenied(path) => (format!("permission denied opening {path}"), group.into()),
        E::PinUsed(n) => (
            format!("GPIO{n} is already used by another part of chatterbox"),
            "Give every role its own pin in the config".to_string(),
        ),
        E::PinNotAvailable(n) => (
            format!("GPIO{n} does not exist on this board"),
            "Use BCM GPIO numbers, not header pin numbers (Codec Zero: button 27, green LED \
             23, red LED 24)"
                .to_string(),
        ),
        E::Io(io) if io.raw_os_error() == Some(EBUSY) => {
            (format!("GPIO{pin} is busy: another program holds it"), busy)
        }
        E::Io(io) if io.kind() == std::io::ErrorKind::PermissionDenied => (
            format!("permission denied opening /dev/gpiomem or /dev/gpiochip*: {io}"),
            group.into(),
        ),
        E::Io(io) if io.kind() == std::io::ErrorKind::NotFound => (
            format!("no GPIO device (/dev/gpiomem, /dev/gpiochip*): {io}"),
            not_a_pi.to_string(),
        ),
        other => (
            format!("GPIO failed: {other}"),
            "Check that nothing else uses the pin and that the board is a supported \
             Raspberry Pi"
                .to_string(),
        ),
    };
    HwError::Gpio { what, detail, fix }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rppal::gpio::Error as E;

    fn text(e: E) -> String {
        gpio_error("button", 27, &e).to_string()
    }

    #[test]
    fn every_failure_names_the_pin_and_a_fix() {
        let m = text(E::UnknownModel);
        assert!(m.starts_with("button (GPIO27): "), "{m}");
        assert!(
            m.contains("Raspberry Pi") && m.contains("chatterbox sim"),
            "{m}"
        );

        let m = text(E::PermissionDenied("/dev/gpiomem".into()));
        assert!(
            m.contains("/dev/gpiomem") && m.contains("gpio group"),
            "{m}"
        );

        let m = text(E::Io(std::io::Error::from_raw_os_error(EBUSY)));
        assert!(m.contains("busy") && m.contains("gpioinfo"), "{m}");
        assert!(m.contains("systemctl stop chatterbox"), "{m}");

        let m = text(E::Io(std::io::Error::from(
            std::io::ErrorKind::PermissionDenied,
        )));
        assert!(m.contains("gpio group"), "{m}");

        let m = text(E::PinNotAvailable(99));
        assert!(m.contains("GPIO99") && m.contains("BCM"), "{m}");

        let m = text(E::PinUsed(27));
        assert!(m.contains("own pin"), "{m}");
    }

    #[test]
    fn construction_off_a_pi_is_a_helpful_error_not_a_panic() {
        if std::path::Path::new("/dev/gpiomem").exists()
            || std::path::Path::new("/dev/gpiochip0").exists()
        {
            eprintln!("skipped: this machine has GPIO");
            return;
        }
        let e = match RppalButton::new(27) {
            Ok(_) => panic!("opened GPIO27 on a machine without GPIO"),
            Err(e) => e,
        };
        assert!(matches!(e, HwError::Gpio { .. }));
        let m = e.to_string();
        eprintln!("off-Pi error: {m}");
        assert!(m.contains("button (GPIO27)"), "{m}");
        assert!(m.contains("Raspberry Pi") || m.contains("/dev/gpio"), "{m}");

        let m = match RppalLeds::new(23, 24) {
            Ok(_) => panic!("opened LEDs on a machine without GPIO"),
            Err(e) => e.to_string(),
        };
        assert!(m.contains("green LED (GPIO23)"), "{m}");
    }

    #[test]
    fn leds_on_one_pin_are_refused_before_touching_hardware() {
        let m = match RppalLeds::new(23, 23) {
            Ok(_) => panic!("accepted the same pin twice"),
            Err(e) => e.to_string(),
        };
        assert!(m.contains("same pin"), "{m}");
    }
}
