//! The OLED: a [`Display`] trait with an SSD1306 backend, a null backend, and PNG output.
//!
//! What a screen *looks like* is decided by [`crate::ui::draw`]; this module only moves the
//! picture somewhere: over I2C to an SSD1306 ([`Ssd1306Display`]), nowhere ([`NullDisplay`],
//! when no panel is attached — the toy works fine without one), or into a PNG file
//! ([`render_png`], for `chatterbox screenshot`, the README and the golden tests).
//!
//! # Troubleshooting
//!
//! * `/dev/i2c-1 does not exist` — I2C is off. `sudo raspi-config nonint do_i2c 0` (or
//!   `dtparam=i2c_arm=on` in `/boot/firmware/config.txt`), then reboot.
//! * `permission denied` on `/dev/i2c-1` — add the user to the `i2c` group:
//!   `sudo usermod -aG i2c $USER`, then log in again.
//! * `did not answer at 0x3C` — check the wiring (SDA pin 3, SCL pin 5, VCC 3.3 V, GND) and
//!   look for the panel with `i2cdetect -y 1`; some modules answer at 0x3D.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ssd1306::{mode::BufferedGraphicsMode, prelude::*, I2CDisplayInterface, Ssd1306};

use super::HwError;
use crate::clock::{Clock, RealClock};
use crate::ui::{self, DisplaySize, Framebuffer, Screen};

/// The I2C address almost every SSD1306 module ships with.
pub const DEFAULT_ADDRESS: u16 = 0x3C;
/// The bus on header pins 3 (SDA) and 5 (SCL) on every Pi since the first revision.
pub const DEFAULT_BUS: u8 = 1;

/// Something that can show a [`Screen`].
pub trait Display: Send {
    /// Shows `screen`, replacing whatever was shown before.
    fn show(&mut self, screen: &Screen) -> Result<(), HwError>;
}

impl<T: Display + ?Sized> Display for Box<T> {
    fn show(&mut self, screen: &Screen) -> Result<(), HwError> {
        (**self).show(screen)
    }
}

/// No panel attached: says so once, then shows nothing, so everything else keeps working.
#[derive(Debug, Default)]
pub struct NullDisplay;

impl NullDisplay {
    /// Logs one warning giving `reason` (why there is no display).
    pub fn new(reason: impl std::fmt::Display) -> NullDisplay {
        log::warn!("no OLED display: {reason}. Carrying on without one.");
        NullDisplay
    }

    /// A null display nobody needs warning about (the config says there is no panel).
    pub fn silent() -> NullDisplay {
        NullDisplay
    }
}

impl Display for NullDisplay {
    fn show(&mut self, _screen: &Screen) -> Result<(), HwError> {
        Ok(())
    }
}

type Driver<I2C, S> = Ssd1306<I2CInterface<I2C>, S, BufferedGraphicsMode<S>>;

/// The two panel sizes are different types in the ssd1306 crate; this picks one at run time.
/// Boxed: each holds its whole frame buffer.
enum Panel<I2C> {
    Tall(Box<Driver<I2C, DisplaySize128x64>>),
    Short(Box<Driver<I2C, DisplaySize128x32>>),
}

/// An SSD1306 over any embedded-hal 1.0 I2C bus, in buffered graphics mode.
///
/// Each [`show`](Display::show) renders the screen, changes only the pixels that differ from
/// what the panel shows, and flushes: the driver then sends just the rectangle (whole 8-row
/// pages) around the changes. A countdown tick costs a few hundred bytes instead of the full
/// 1 KiB frame, which at the Pi's default 100 kHz I2C is about 100 ms.
///
/// # Losing and finding the panel
/// A failed transfer means the panel may have browned out or been unplugged, and a panel
/// that lost power forgets its set-up (display off, charge pump off): resending pixels
/// alone would leave it dark. So after any failure the panel counts as *lost*, and the next
/// attempt runs the whole `init()` again before a full frame. Attempts are spaced by a
/// backoff ([`RETRY_FIRST`] doubling up to [`RETRY_MAX`]), so an absent panel costs a few
/// I2C transactions a minute rather than one per frame; in between, `show` returns an error
/// without touching the bus. A display made by [`connect`](Self::connect) starts lost, so
/// a panel plugged in after boot is found too.
pub struct Ssd1306Display<I2C> {
    panel: Panel<I2C>,
    size: DisplaySize,
    address: u8,
    /// What the panel shows now; `None` after a failed transfer (then everything is resent).
    shown: Option<Framebuffer>,
    link: Link,
    clock: Arc<dyn Clock>,
}

/// Whether the panel is known to be set up.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Link {
    /// Set up at this time.
    Up { since: Duration },
    /// Not answering (or never set up): `init()` is due again at `retry_at`; `backoff` is
    /// the wait after the next failure.
    Lost {
        retry_at: Duration,
        backoff: Duration,
    },
}

/// The wait before the first retry after the panel stops answering.
pub const RETRY_FIRST: Duration = Duration::from_secs(1);
/// The longest wait between retries: an absent panel is tried about four times a minute.
pub const RETRY_MAX: Duration = Duration::from_secs(16);
/// How often a working panel is sent its set-up and the whole screen again. A panel that
/// browned out or was unplugged and plugged back between two frames acknowledges the next
/// transfer while it sits dark with its charge pump off, and nothing can be read back to
/// tell; resending the set-up (about 30 bytes) and a full frame (1 KB) now and then brings
/// it back within this time. The set-up is sent without clearing the panel first, so a
/// panel that never lost power does not flicker.
pub const REFRESH_EVERY: Duration = Duration::from_secs(30);

impl<I2C> Ssd1306Display<I2C>
where
    I2C: embedded_hal::i2c::I2c,
{
    /// Initialises the panel at the usual address 0x3C and clears it.
    pub fn new(i2c: I2C, size: DisplaySize) -> Result<Self, HwError> {
        Self::with_address(i2c, DEFAULT_ADDRESS as u8, size)
    }

    /// Initialises the panel at `address` and clears it; fails if it does not answer.
    pub fn with_address(i2c: I2C, address: u8, size: DisplaySize) -> Result<Self, HwError> {
        let mut d = Self::connect(i2c, address, size, Arc::new(RealClock::new()));
        d.bring_up()?;
        d.link = Link::Up {
            since: d.clock.now(),
        };
        Ok(d)
    }

    /// A display on `i2c` that has not talked to the panel yet: the first
    /// [`show`](Display::show) initialises it, and if it does not answer it is retried with
    /// the backoff, timed by `clock`. Never fails, so a panel that is missing at start can
    /// still come later.
    pub fn connect(i2c: I2C, address: u8, size: DisplaySize, clock: Arc<dyn Clock>) -> Self {
        let interface = I2CDisplayInterface::new_custom_address(i2c, address);
        let rotation = DisplayRotation::Rotate0;
        let panel = match size {
            DisplaySize::W128H64 => Panel::Tall(Box::new(
                Ssd1306::new(interface, DisplaySize128x64, rotation).into_buffered_graphics_mode(),
            )),
            DisplaySize::W128H32 => Panel::Short(Box::new(
                Ssd1306::new(interface, DisplaySize128x32, rotation).into_buffered_graphics_mode(),
            )),
        };
        let now = clock.now();
        Ssd1306Display {
            panel,
            size,
            address,
            shown: None,
            link: Link::Lost {
                retry_at: now,
                backoff: RETRY_FIRST,
            },
            clock,
        }
    }

    /// Sends the panel its whole set-up and clears it (`init` clears the driver's buffer
    /// and the flush sends it), so afterwards the panel is known to be dark.
    fn bring_up(&mut self) -> Result<(), HwError> {
        let address = self.address;
        let init_failed = |e| no_answer(address, e);
        match &mut self.panel {
            Panel::Tall(d) => d.init().and_then(|()| d.flush()).map_err(init_failed)?,
            Panel::Short(d) => d.init().and_then(|()| d.flush()).map_err(init_failed)?,
        }
        self.shown = Some(Framebuffer::new(self.size.width(), self.size.height()));
        Ok(())
    }

    /// Sends the set-up again without blanking the panel; the next update then resends the
    /// whole screen (a panel that lost power lost its pixels too). See [`REFRESH_EVERY`].
    fn set_up_again(&mut self) -> Result<(), HwError> {
        let address = self.address;
        match &mut self.panel {
            Panel::Tall(d) => d.init().map_err(|e| no_answer(address, e))?,
            Panel::Short(d) => d.init().map_err(|e| no_answer(address, e))?,
        }
        self.shown = None;
        Ok(())
    }

    /// Marks the panel lost after a failure at `now`: the next attempt waits `backoff`.
    fn lose(&mut self, now: Duration, backoff: Duration) {
        self.shown = None;
        self.link = Link::Lost {
            retry_at: now + backoff,
            backoff: (backoff * 2).min(RETRY_MAX),
        };
    }
}

impl Ssd1306Display<rppal::i2c::I2c> {
    /// Opens `/dev/i2c-<bus>` with rppal and initialises the panel at `address` (usually
    /// bus 1, 0x3C). Every failure says what to do about it.
    pub fn new_rppal(bus: u8, address: u16, size: DisplaySize) -> Result<Self, HwError> {
        let address = seven_bit_address(address)?;
        let i2c = rppal::i2c::I2c::with_bus(bus).map_err(|e| i2c_open_error(bus, &e))?;
        Self::with_address(i2c, address, size)
    }
}

/// Opens the SSD1306 on the Pi. Settings that cannot work until someone changes them (a bad
/// address, I2C switched off, no permission) give a [`NullDisplay`] that warns once with
/// the reason; a panel that merely does not answer gives a display that keeps looking for
/// it (see [`Ssd1306Display`]). A missing or miswired panel must never stop the toy.
pub fn open_or_null(bus: u8, address: u16, size: DisplaySize) -> Box<dyn Display> {
    let opened = seven_bit_address(address).and_then(|address| {
        let i2c = rppal::i2c::I2c::with_bus(bus).map_err(|e| i2c_open_error(bus, &e))?;
        Ok((i2c, address))
    });
    match opened {
        Ok((i2c, address)) => Box::new(Ssd1306Display::connect(
            i2c,
            address,
            size,
            Arc::new(RealClock::new()),
        )),
        Err(e) => Box::new(NullDisplay::new(e)),
    }
}

impl<I2C> Display for Ssd1306Display<I2C>
where
    I2C: embedded_hal::i2c::I2c + Send,
{
    fn show(&mut self, screen: &Screen) -> Result<(), HwError> {
        let now = self.clock.now();
        if let Link::Lost { retry_at, backoff } = self.link {
            if now < retry_at {
                return Err(HwError::Display(format!(
                    "the SSD1306 at 0x{:02X} is not answering; next try in {:.0} s",
                    self.address,
                    (retry_at - now).as_secs_f32().ceil()
                )));
            }
            if let Err(e) = self.bring_up() {
                self.lose(now, backoff);
                return Err(e);
            }
            log::info!("OLED at 0x{:02X} is answering (again)", self.address);
            self.link = Link::Up { since: now };
        } else if let Link::Up { since } = self.link {
            if now.saturating_sub(since) >= REFRESH_EVERY {
                if let Err(e) = self.set_up_again() {
                    self.lose(now, RETRY_FIRST);
                    return Err(e);
                }
                self.link = Link::Up { since: now };
            }
        }
        let next = ui::render(screen, self.size);
        // Until the transfer completes the panel may show a mix of old and new.
        let shown = self.shown.take();
        let address = self.address;
        let sent = match &mut self.panel {
            Panel::Tall(d) => update(d, shown.as_ref(), &next).map_err(|e| send_failed(address, e)),
            Panel::Short(d) => {
                update(d, shown.as_ref(), &next).map_err(|e| send_failed(address, e))
            }
        };
        if let Err(e) = sent {
            self.lose(now, RETRY_FIRST);
            return Err(e);
        }
        self.shown = Some(next);
        Ok(())
    }
}

/// Brings the driver's buffer from `shown` (or from unknown, when `None`) to `next` and
/// flushes the changed rectangle.
fn update<I2C, S>(
    d: &mut Driver<I2C, S>,
    shown: Option<&Framebuffer>,
    next: &Framebuffer,
) -> Result<(), impl std::fmt::Debug>
where
    I2C: embedded_hal::i2c::I2c,
    S: ssd1306::size::DisplaySize,
{
    match shown {
        Some(prev) if prev.width() == next.width() && prev.height() == next.height() => {
            for y in 0..next.height() {
                for x in 0..next.width() {
                    let on = next.get(x, y);
                    if prev.get(x, y) != on {
                        d.set_pixel(x, y, on);
                    }
                }
            }
        }
        _ => {
            // Unknown panel contents: mark the whole buffer dirty and resend it all.
            d.clear_buffer();
            for y in 0..next.height() {
                for x in 0..next.width() {
                    if next.get(x, y) {
                        d.set_pixel(x, y, true);
                    }
                }
            }
        }
    }
    d.flush()
}

fn no_answer(address: u8, e: impl std::fmt::Debug) -> HwError {
    HwError::Display(format!(
        "SSD1306 did not answer at I2C address 0x{address:02X} ({e:?}): check the wiring \
         (SDA to pin 3, SCL to pin 5, VCC to 3.3 V, GND), find the panel's address with \
         `i2cdetect -y 1` (some answer at 0x3D), or switch the display off in the config"
    ))
}

fn send_failed(address: u8, e: impl std::fmt::Debug) -> HwError {
    HwError::Display(format!(
        "sending a screen to the SSD1306 at 0x{address:02X} failed ({e:?}): a loose wire \
         or a panel that lost power; check the connections (it is set up again as soon as \
         it answers)"
    ))
}

/// Checks that `address` is a usable 7-bit I2C device address.
fn seven_bit_address(address: u16) -> Result<u8, HwError> {
    match u8::try_from(address) {
        Ok(a) if (0x08..=0x77).contains(&a) => Ok(a),
        _ => Err(HwError::Display(format!(
            "0x{address:X} is not a 7-bit I2C device address (0x08..=0x77): SSD1306 modules \
             use 0x3C or 0x3D; fix the display address in the config"
        ))),
    }
}

/// Turns rppal's failure to open `/dev/i2c-<bus>` into a message that says how to fix it.
pub fn i2c_open_error(bus: u8, e: &rppal::i2c::Error) -> HwError {
    let dev = format!("/dev/i2c-{bus}");
    let msg = match e {
        rppal::i2c::Error::Io(io) if io.kind() == std::io::ErrorKind::NotFound => format!(
            "{dev} does not exist, so I2C is not enabled (or this is not a Raspberry Pi): \
             run `sudo raspi-config nonint do_i2c 0` or add `dtparam=i2c_arm=on` to \
             /boot/firmware/config.txt, then reboot; without a panel, switch the display \
             off in the config"
        ),
        rppal::i2c::Error::Io(io) if io.kind() == std::io::ErrorKind::PermissionDenied => {
            format!(
                "permission denied opening {dev}: add the user to the i2c group \
                 (`sudo usermod -aG i2c $USER`) and log in again"
            )
        }
        rppal::i2c::Error::UnknownModel => format!(
            "cannot use {dev}: this does not look like a Raspberry Pi; without a panel, \
             switch the display off in the config"
        ),
        other => format!("cannot open {dev}: {other}"),
    };
    HwError::Display(msg)
}

/// A PNG could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum PngError {
    #[error("cannot create {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write PNG {path}: {source}")]
    Encode {
        path: PathBuf,
        source: png::EncodingError,
    },
    #[error("{path} is not a readable PNG: {source}")]
    Decode {
        path: PathBuf,
        source: png::DecodingError,
    },
    #[error("scale {0} is out of range: use 1 to 16")]
    Scale(u32),
}

/// Writes `screen` as drawn on a `size` panel to a PNG, one image pixel per panel pixel
/// (white = lit), for screenshots and golden tests.
pub fn render_png(screen: &Screen, size: DisplaySize, path: &Path) -> Result<(), PngError> {
    render_png_scaled(screen, size, 1, path)
}

/// Like [`render_png`] with every pixel a `scale` x `scale` block (4 suits a README).
pub fn render_png_scaled(
    screen: &Screen,
    size: DisplaySize,
    scale: u32,
    path: &Path,
) -> Result<(), PngError> {
    write_png(&ui::render(screen, size), scale, path)
}

/// Writes a framebuffer as an 8-bit greyscale PNG (lit = 255), each pixel `scale` times.
pub fn write_png(fb: &Framebuffer, scale: u32, path: &Path) -> Result<(), PngError> {
    if !(1..=16).contains(&scale) {
        return Err(PngError::Scale(scale));
    }
    let (w, h) = (fb.width() * scale, fb.height() * scale);
    let mut data = Vec::with_capacity((w * h) as usize);
    for y in 0..h {
        for x in 0..w {
            data.push(if fb.get(x / scale, y / scale) { 255 } else { 0 });
        }
    }
    let file = File::create(path).map_err(|source| PngError::Create {
        path: path.to_path_buf(),
        source,
    })?;
    let encode = |source| PngError::Encode {
        path: path.to_path_buf(),
        source,
    };
    let mut encoder = png::Encoder::new(BufWriter::new(file), w, h);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(encode)?;
    writer.write_image_data(&data).map_err(encode)?;
    writer.finish().map_err(encode)
}

/// Reads a PNG back into a framebuffer: a pixel is lit when its first channel is ≥ 128.
/// Accepts any colour type, so a golden image edited in a paint program still loads.
pub fn read_png(path: &Path) -> Result<Framebuffer, PngError> {
    let file = File::open(path).map_err(|source| PngError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let decode = |source| PngError::Decode {
        path: path.to_path_buf(),
        source,
    };
    let mut decoder = png::Decoder::new(BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().map_err(decode)?;
    let len = reader.output_buffer_size().unwrap_or(0);
    let mut buf = vec![0; len];
    let info = reader.next_frame(&mut buf).map_err(decode)?;
    let channels = info.color_type.samples();
    let mut pixels = Vec::with_capacity((info.width * info.height) as usize);
    for y in 0..info.height as usize {
        let row = &buf[y * info.line_size..];
        for x in 0..info.width as usize {
            pixels.push(row[x * channels] >= 128);
        }
    }
    Framebuffer::from_pixels(info.width, info.height, pixels).ok_or_else(|| {
        decode(png::DecodingError::LimitsExceeded) // unreachable: sizes come from the file
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_round_trips_at_every_scale() {
        let dir = tempfile::tempdir().unwrap();
        let screen = Screen::Recording { seconds_left: 3 };
        let fb = ui::render(&screen, DisplaySize::W128H64);
        let p1 = dir.path().join("one.png");
        render_png(&screen, DisplaySize::W128H64, &p1).unwrap();
        assert_eq!(read_png(&p1).unwrap(), fb);

        let p4 = dir.path().join("four.png");
        render_png_scaled(&screen, DisplaySize::W128H64, 4, &p4).unwrap();
        let big = read_png(&p4).unwrap();
        assert_eq!((big.width(), big.height()), (512, 256));
        for (x, y) in [(0, 0), (10, 5), (127, 63), (64, 40)] {
            for (dx, dy) in [(0, 0), (3, 3), (1, 2)] {
                assert_eq!(big.get(x * 4 + dx, y * 4 + dy), fb.get(x, y));
            }
        }
    }

    #[test]
    fn png_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope").join("x.png");
        let e = render_png(&Screen::ReleaseToErase, DisplaySize::W128H32, &missing).unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
        let e = read_png(&missing).unwrap_err();
        assert!(e.to_string().contains("x.png"), "{e}");
        let junk = dir.path().join("junk.png");
        std::fs::write(&junk, b"not a png").unwrap();
        let e = read_png(&junk).unwrap_err();
        assert!(e.to_string().contains("junk.png"), "{e}");
        let e = write_png(&Framebuffer::new(1, 1), 0, &junk).unwrap_err();
        assert!(matches!(e, PngError::Scale(0)));
    }

    #[test]
    fn addresses_are_checked() {
        assert_eq!(seven_bit_address(0x3C).unwrap(), 0x3C);
        let e = seven_bit_address(0x3C0).unwrap_err().to_string();
        assert!(e.contains("0x3C0") && e.contains("0x3C or 0x3D"), "{e}");
        assert!(seven_bit_address(0x00).is_err());
    }

    #[test]
    fn i2c_errors_say_what_to_do() {
        let nf = rppal::i2c::Error::Io(std::io::Error::from(std::io::ErrorKind::NotFound));
        let m = i2c_open_error(1, &nf).to_string();
        assert!(
            m.contains("/dev/i2c-1") && m.contains("dtparam=i2c_arm=on"),
            "{m}"
        );
        let pd = rppal::i2c::Error::Io(std::io::Error::from(std::io::ErrorKind::PermissionDenied));
        let m = i2c_open_error(3, &pd).to_string();
        assert!(m.contains("/dev/i2c-3") && m.contains("i2c group"), "{m}");
    }

    #[test]
    fn null_display_accepts_everything() {
        let mut d: Box<dyn Display> = Box::new(NullDisplay::new("test"));
        for (_, s) in ui::sample_screens() {
            d.show(&s).unwrap();
        }
    }
}
