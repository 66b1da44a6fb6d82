//! Golden images for every screen, and the real SSD1306 driver checked against them.
//!
//! * `golden_*`: each of `ui::sample_screens()` is rendered and compared pixel-exact with
//!   `tests/golden/<name>.png` (128x64) and `tests/golden/<name>-128x32.png`.
//!   After an intended change to a layout, regenerate them and look at every image:
//!
//!   ```text
//!   UPDATE_GOLDEN=1 cargo test --test screens
//!   ```
//!
//!   On a mismatch the picture actually drawn is written next to the test binary's temp dir
//!   (the path is in the failure message) so it can be viewed side by side.
//!
//! * `ssd1306_*`: the real `ssd1306` driver (through [`Ssd1306Display`]) talks to a fake
//!   embedded-hal I2C bus that records every write. A model of the controller replays those
//!   bytes — command stream (control byte 0x00) and GDDRAM data (control byte 0x40), with the
//!   addressing mode, column and page windows the driver set — and the resulting GDDRAM is
//!   decoded into pixels (8 pages of 128 column bytes, least significant bit = top row of the
//!   page) and compared with the same golden images.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chatterbox::clock::ManualClock;
use chatterbox::hw::display::{
    read_png, write_png, Display, Ssd1306Display, REFRESH_EVERY, RETRY_MAX,
};
use chatterbox::hw::HwError;
use chatterbox::ui::{self, DisplaySize, Framebuffer, Screen};
use embedded_hal::i2c::{ErrorKind, ErrorType, I2c, NoAcknowledgeSource, Operation};

const SIZES: [DisplaySize; 2] = [DisplaySize::W128H64, DisplaySize::W128H32];

fn golden_path(name: &str, size: DisplaySize) -> PathBuf {
    let file = match size {
        DisplaySize::W128H64 => format!("{name}.png"),
        DisplaySize::W128H32 => format!("{name}-128x32.png"),
    };
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("golden")
        .join(file)
}

fn updating() -> bool {
    std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1")
}

/// Compares `actual` with the golden image, or rewrites the golden image when updating.
fn check_golden(name: &str, size: DisplaySize, actual: &Framebuffer, what: &str) {
    let path = golden_path(name, size);
    if updating() {
        write_png(actual, 1, &path).unwrap();
        eprintln!("wrote {}", path.display());
        return;
    }
    let expected = read_png(&path).unwrap_or_else(|e| {
        panic!("{e}\nmissing golden image? run: UPDATE_GOLDEN=1 cargo test --test screens")
    });
    let diff = expected.diff_count(actual);
    if diff != 0 {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("golden-actual");
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join(path.file_name().unwrap());
        write_png(actual, 1, &out).unwrap();
        panic!(
            "{what}: screen '{name}' at {size} differs from {} in {diff} pixels; \
             drawn picture saved to {}\n{actual:?}",
            path.display(),
            out.display()
        );
    }
}

#[test]
fn golden_images_match_every_screen() {
    for (name, screen) in ui::sample_screens() {
        for size in SIZES {
            check_golden(name, size, &ui::render(&screen, size), "ui::render");
        }
    }
}

#[test]
fn png_renderer_matches_golden_images() {
    // render_png is what `chatterbox screenshot` writes: it must be the same picture.
    let dir = tempfile::tempdir().unwrap();
    for (name, screen) in ui::sample_screens() {
        let out = dir.path().join(format!("{name}.png"));
        chatterbox::hw::display::render_png(&screen, DisplaySize::W128H64, &out).unwrap();
        let written = read_png(&out).unwrap();
        assert_eq!(written, ui::render(&screen, DisplaySize::W128H64), "{name}");
    }
}

// ---------------------------------------------------------------------------------------
// A fake I2C bus and a model of the SSD1306 controller.

/// Every write on the bus: (7-bit address, bytes).
type Log = Arc<Mutex<Vec<(u8, Vec<u8>)>>>;

#[derive(Debug)]
struct Nack;

impl embedded_hal::i2c::Error for Nack {
    fn kind(&self) -> ErrorKind {
        ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address)
    }
}

/// Records writes; while `silent` is set it behaves like a bus with nothing attached.
/// `attempts` counts every transaction, answered or not.
struct FakeI2c {
    log: Log,
    silent: Arc<AtomicBool>,
    attempts: Arc<AtomicUsize>,
}

impl ErrorType for FakeI2c {
    type Error = Nack;
}

impl I2c for FakeI2c {
    fn transaction(
        &mut self,
        address: u8,
        operations: &mut [Operation<'_>],
    ) -> Result<(), Self::Error> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        if self.silent.load(Ordering::SeqCst) {
            return Err(Nack);
        }
        for op in operations {
            match op {
                Operation::Write(bytes) => {
                    self.log.lock().unwrap().push((address, bytes.to_vec()));
                }
                Operation::Read(_) => panic!("the SSD1306 driver never reads over I2C"),
            }
        }
        Ok(())
    }
}

/// What matters of the controller's state, rebuilt from the bytes it received.
struct Ssd1306Model {
    ram: [[u8; 128]; 8],
    /// 0 horizontal, 1 vertical, 2 page (the power-on default).
    addr_mode: u8,
    col_start: usize,
    col_end: usize,
    page_start: usize,
    page_end: usize,
    col: usize,
    page: usize,
    display_on: bool,
    segment_remap: bool,
    com_reversed: bool,
    charge_pump: bool,
    multiplex: Option<u8>,
}

impl Ssd1306Model {
    fn new() -> Self {
        Ssd1306Model {
            ram: [[0; 128]; 8],
            addr_mode: 2,
            col_start: 0,
            col_end: 127,
            page_start: 0,
            page_end: 7,
            col: 0,
            page: 0,
            display_on: false,
            segment_remap: false,
            com_reversed: false,
            charge_pump: false,
            multiplex: None,
        }
    }

    fn replay(&mut self, writes: &[(u8, Vec<u8>)], address: u8) {
        for (addr, bytes) in writes {
            assert_eq!(*addr, address, "write to an unexpected I2C address");
            let (control, payload) = bytes.split_first().expect("empty I2C write");
            match control {
                0x00 => self.commands(payload),
                0x40 => payload.iter().for_each(|b| self.data(*b)),
                other => panic!("unexpected control byte 0x{other:02X}"),
            }
        }
    }

    fn commands(&mut self, mut bytes: &[u8]) {
        while let Some((&cmd, rest)) = bytes.split_first() {
            let args = match cmd {
                0x81 | 0x20 | 0xA8 | 0xD3 | 0xD5 | 0xD9 | 0xDA | 0xDB | 0x8D => 1,
                0x21 | 0x22 | 0xA3 => 2,
                0x29 | 0x2A => 5,
                0x26 | 0x27 => 6,
                _ => 0,
            };
            assert!(
                rest.len() >= args,
                "command 0x{cmd:02X} is missing arguments"
            );
            let (a, tail) = rest.split_at(args);
            match cmd {
                0x20 => self.addr_mode = a[0] & 0b11,
                0x21 => {
                    self.col_start = a[0] as usize & 127;
                    self.col_end = a[1] as usize & 127;
                    self.col = self.col_start;
                }
                0x22 => {
                    self.page_start = a[0] as usize & 7;
                    self.page_end = a[1] as usize & 7;
                    self.page = self.page_start;
                }
                0xB0..=0xB7 => self.page = (cmd & 7) as usize,
                0x00..=0x0F => self.col = (self.col & 0xF0) | (cmd & 0x0F) as usize,
                0x10..=0x1F => self.col = (self.col & 0x0F) | (((cmd & 0x07) as usize) << 4),
                0xAE => self.display_on = false,
                0xAF => self.display_on = true,
                0xA0 => self.segment_remap = false,
                0xA1 => self.segment_remap = true,
                0xC0 => self.com_reversed = false,
                0xC8 => self.com_reversed = true,
                0x8D => self.charge_pump = a[0] == 0x14,
                0xA8 => self.multiplex = Some(a[0]),
                0x81 | 0xD3 | 0xD5 | 0xD9 | 0xDA | 0xDB | 0xA3 | 0x26 | 0x27 | 0x29 | 0x2A => {}
                0x40..=0x7F | 0xA4..=0xA7 | 0x2E | 0x2F => {}
                other => panic!("command 0x{other:02X} is not modelled"),
            }
            bytes = tail;
        }
    }

    /// One GDDRAM byte at the cursor, then the cursor moves as the addressing mode says.
    fn data(&mut self, byte: u8) {
        self.ram[self.page][self.col] = byte;
        match self.addr_mode {
            0 => {
                self.col += 1;
                if self.col > self.col_end {
                    self.col = self.col_start;
                    self.page += 1;
                    if self.page > self.page_end {
                        self.page = self.page_start;
                    }
                }
            }
            1 => {
                self.page += 1;
                if self.page > self.page_end {
                    self.page = self.page_start;
                    self.col += 1;
                    if self.col > self.col_end {
                        self.col = self.col_start;
                    }
                }
            }
            _ => self.col = (self.col + 1) % 128,
        }
    }

    /// The top `height` rows of GDDRAM as pixels: byte (page p, column x) holds rows
    /// 8p..8p+7 of column x, least significant bit on top.
    fn pixels(&self, height: u32) -> Framebuffer {
        let mut fb = Framebuffer::new(128, height);
        for y in 0..height {
            for x in 0..128u32 {
                let byte = self.ram[(y / 8) as usize][x as usize];
                fb.set(x, y, byte >> (y % 8) & 1 == 1);
            }
        }
        fb
    }
}

fn fake_bus() -> (FakeI2c, Log) {
    let log: Log = Arc::default();
    (
        FakeI2c {
            log: log.clone(),
            silent: Arc::default(),
            attempts: Arc::default(),
        },
        log,
    )
}

#[test]
fn ssd1306_bytes_decode_to_the_golden_images() {
    for size in SIZES {
        let (bus, log) = fake_bus();
        let mut display = Ssd1306Display::new(bus, size).unwrap();
        let mut model = Ssd1306Model::new();
        // Init: the panel is on, the charge pump runs, the multiplex ratio fits the panel and
        // the orientation is the one the usual modules show upright (A1 + C8).
        model.replay(&std::mem::take(&mut *log.lock().unwrap()), 0x3C);
        assert!(
            model.display_on && model.charge_pump,
            "{size}: panel not switched on"
        );
        assert_eq!(model.multiplex, Some(size.height() as u8 - 1), "{size}");
        assert!(
            model.segment_remap && model.com_reversed,
            "{size}: orientation"
        );
        assert_eq!(
            model.addr_mode, 0,
            "{size}: buffered mode uses horizontal addressing"
        );
        assert_eq!(
            model.pixels(size.height()),
            Framebuffer::new(128, size.height())
        );

        // Screens one after another: each must fully replace the last on the panel.
        for (name, screen) in ui::sample_screens() {
            display.show(&screen).unwrap();
            model.replay(&std::mem::take(&mut *log.lock().unwrap()), 0x3C);
            check_golden(name, size, &model.pixels(size.height()), "SSD1306 GDDRAM");
        }
    }
}

fn data_bytes(writes: &[(u8, Vec<u8>)]) -> usize {
    writes
        .iter()
        .filter(|(_, b)| b[0] == 0x40)
        .map(|(_, b)| b.len() - 1)
        .sum()
}

#[test]
fn ssd1306_sends_only_what_changed() {
    let (bus, log) = fake_bus();
    let mut display = Ssd1306Display::new(bus, DisplaySize::W128H64).unwrap();
    let mut model = Ssd1306Model::new();
    let init = std::mem::take(&mut *log.lock().unwrap());
    assert_eq!(data_bytes(&init), 1024, "init clears the whole GDDRAM");
    model.replay(&init, 0x3C);

    let five = Screen::Recording { seconds_left: 5 };
    display.show(&five).unwrap();
    model.replay(&std::mem::take(&mut *log.lock().unwrap()), 0x3C);
    assert_eq!(model.pixels(64), ui::render(&five, DisplaySize::W128H64));

    display.show(&five.clone()).unwrap();
    assert!(
        log.lock().unwrap().is_empty(),
        "same screen, no bus traffic"
    );

    // A countdown tick changes one digit: a few pages of a few columns, not the frame.
    let four = Screen::Recording { seconds_left: 4 };
    display.show(&four).unwrap();
    let tick = std::mem::take(&mut *log.lock().unwrap());
    let sent = data_bytes(&tick);
    eprintln!("countdown tick: {sent} data bytes (full frame: 1024)");
    assert!(sent > 0 && sent <= 256, "{sent} bytes for one digit");
    model.replay(&tick, 0x3C);
    assert_eq!(model.pixels(64), ui::render(&four, DisplaySize::W128H64));
}

#[test]
fn ssd1306_that_lost_power_is_set_up_again_when_it_answers() {
    let (bus, log) = fake_bus();
    let silent = bus.silent.clone();
    let clock = ManualClock::new();
    let mut display =
        Ssd1306Display::connect(bus, 0x3C, DisplaySize::W128H64, Arc::new(clock.clone()));
    let idle = Screen::Idle {
        clips: 3,
        listening: true,
        volume: 4,
    };
    display.show(&idle).unwrap();
    let mut model = Ssd1306Model::new();
    model.replay(&std::mem::take(&mut *log.lock().unwrap()), 0x3C);
    assert!(model.display_on);
    assert_eq!(model.pixels(64), ui::render(&idle, DisplaySize::W128H64));

    // The panel browns out: the transfer fails, and when it answers again it has forgotten
    // its set-up (display off, charge pump off, power-on addressing).
    silent.store(true, Ordering::SeqCst);
    let err = display
        .show(&Screen::ReleaseToErase)
        .unwrap_err()
        .to_string();
    assert!(err.contains("0x3C") && err.contains("connections"), "{err}");
    let mut model = Ssd1306Model::new();
    silent.store(false, Ordering::SeqCst);

    // Within the backoff nothing is sent, not even to a panel that answers.
    let before = log.lock().unwrap().len();
    assert!(display.show(&idle).is_err());
    assert_eq!(
        log.lock().unwrap().len(),
        before,
        "retried before the backoff"
    );

    // After it: the whole set-up again, then the full screen.
    clock.advance(Duration::from_secs(1));
    let playing = Screen::Playing {
        name: "2026-11-23T10-15-42.wav".into(),
    };
    display.show(&playing).unwrap();
    model.replay(&std::mem::take(&mut *log.lock().unwrap()), 0x3C);
    assert!(
        model.display_on && model.charge_pump,
        "panel not set up again"
    );
    assert_eq!(model.multiplex, Some(63));
    assert_eq!(model.addr_mode, 0);
    assert_eq!(model.pixels(64), ui::render(&playing, DisplaySize::W128H64));
}

#[test]
fn a_panel_missing_at_start_is_retried_a_few_times_a_minute_and_found() {
    let (bus, log) = fake_bus();
    let silent = bus.silent.clone();
    let attempts = bus.attempts.clone();
    silent.store(true, Ordering::SeqCst);
    let clock = ManualClock::new();
    let mut display =
        Ssd1306Display::connect(bus, 0x3C, DisplaySize::W128H32, Arc::new(clock.clone()));

    // The first screen tries the panel, with the usual advice.
    let err = display
        .show(&Screen::ReleaseToErase)
        .unwrap_err()
        .to_string();
    assert!(err.contains("i2cdetect"), "{err}");

    // Two minutes of 10 frames a second with nothing on the bus.
    let frame = Duration::from_millis(100);
    let mut per_minute = Vec::new();
    for _ in 0..2 {
        let start = attempts.load(Ordering::SeqCst);
        for _ in 0..600 {
            clock.advance(frame);
            assert!(display
                .show(&Screen::Recording { seconds_left: 2 })
                .is_err());
        }
        per_minute.push(attempts.load(Ordering::SeqCst) - start);
    }
    eprintln!("I2C attempts per minute without a panel: {per_minute:?}");
    // Quick at first (a brown-out comes back fast), then about every RETRY_MAX.
    assert!((4..=8).contains(&per_minute[0]), "{per_minute:?}");
    let steady = (60 / RETRY_MAX.as_secs()) as usize;
    assert!(
        (steady..=steady + 1).contains(&per_minute[1]),
        "{per_minute:?}"
    );

    // The panel is plugged in: it shows the screen within one backoff.
    silent.store(false, Ordering::SeqCst);
    let screen = Screen::Recording { seconds_left: 1 };
    let mut waited = Duration::ZERO;
    while display.show(&screen).is_err() {
        assert!(waited <= RETRY_MAX, "panel not found again");
        clock.advance(frame);
        waited += frame;
    }
    let mut model = Ssd1306Model::new();
    model.replay(&std::mem::take(&mut *log.lock().unwrap()), 0x3C);
    assert!(model.display_on && model.charge_pump);
    assert_eq!(model.pixels(32), ui::render(&screen, DisplaySize::W128H32));
}

#[test]
fn ssd1306_uses_the_given_address() {
    let (bus, log) = fake_bus();
    let mut display = Ssd1306Display::with_address(bus, 0x3D, DisplaySize::W128H32).unwrap();
    display.show(&Screen::ReleaseToErase).unwrap();
    let writes = log.lock().unwrap();
    assert!(!writes.is_empty());
    assert!(writes.iter().all(|(a, _)| *a == 0x3D));
}

#[test]
fn ssd1306_without_a_panel_is_a_helpful_error() {
    let bus = FakeI2c {
        log: Arc::default(),
        silent: Arc::new(AtomicBool::new(true)),
        attempts: Arc::default(),
    };
    let err = match Ssd1306Display::new(bus, DisplaySize::W128H64) {
        Ok(_) => panic!("a bus with nothing on it must not give a display"),
        Err(e) => e,
    };
    assert!(matches!(err, HwError::Display(_)));
    let msg = err.to_string();
    assert!(msg.contains("0x3C"), "{msg}");
    assert!(msg.contains("i2cdetect"), "{msg}");
}

#[test]
fn rppal_display_on_this_machine_fails_with_a_fix() {
    // There is no /dev/i2c-1 here (nor on a Pi with I2C switched off).
    if Path::new("/dev/i2c-1").exists() {
        eprintln!("skipped: this machine has /dev/i2c-1");
        return;
    }
    let err = match Ssd1306Display::new_rppal(1, 0x3C, DisplaySize::W128H64) {
        Ok(_) => panic!("opened an I2C display on a machine without /dev/i2c-1"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("/dev/i2c-1"), "{err}");
    assert!(
        err.contains("raspi-config") || err.contains("i2c group"),
        "{err}"
    );
    // And the fallback keeps going.
    let mut d = chatterbox::hw::display::open_or_null(1, 0x3C, DisplaySize::W128H64);
    d.show(&Screen::ReleaseToErase).unwrap();
}

/// Not a test: writes every screen, both sizes, magnified ×4 with a grey gutter, into one
/// image to look at after changing a layout:
/// `cargo test --test screens -- --ignored contact_sheet` then open the printed path.
#[test]
#[ignore]
fn contact_sheet() {
    let screens = ui::sample_screens();
    let (scale, gap) = (4u32, 8u32);
    let cell_w = 128 * scale + gap;
    let cell_h = 64 * scale + gap;
    let mut sheet = Framebuffer::new(cell_w * 2 + gap, cell_h * screens.len() as u32 + gap);
    for (row, (_, screen)) in screens.iter().enumerate() {
        for (col, size) in SIZES.iter().enumerate() {
            let fb = ui::render(screen, *size);
            let (ox, oy) = (gap + col as u32 * cell_w, gap + row as u32 * cell_h);
            // A one-pixel frame so dark screens show their extent.
            for x in 0..fb.width() * scale + 2 {
                sheet.set(ox + x - 1, oy - 1, true);
                sheet.set(ox + x - 1, oy + fb.height() * scale, true);
            }
            for y in 0..fb.height() * scale + 2 {
                sheet.set(ox - 1, oy + y - 1, true);
                sheet.set(ox + fb.width() * scale, oy + y - 1, true);
            }
            for y in 0..fb.height() * scale {
                for x in 0..fb.width() * scale {
                    sheet.set(ox + x, oy + y, fb.get(x / scale, y / scale));
                }
            }
        }
    }
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("screens-sheet.png");
    write_png(&sheet, 1, &out).unwrap();
    eprintln!("contact sheet: {}", out.display());
}

/// The panel browns out (or is unplugged and plugged back) while the toy is idle, so no
/// transfer fails: it forgets its set-up and its pixels, yet acknowledges every write. The
/// periodic refresh brings it back lit, with the whole screen, within REFRESH_EVERY.
#[test]
fn a_panel_reset_between_frames_is_lit_again_by_the_refresh() {
    let (bus, log) = fake_bus();
    let clock = ManualClock::new();
    let mut display =
        Ssd1306Display::connect(bus, 0x3C, DisplaySize::W128H64, Arc::new(clock.clone()));
    let idle = Screen::Idle {
        clips: 3,
        listening: true,
        volume: 4,
    };
    display.show(&idle).unwrap();
    log.lock().unwrap().clear();
    // Power blip: a fresh panel (display off, charge pump off, RAM blank). No I2C error.
    let mut panel = Ssd1306Model::new();
    // Within the refresh time the same screen is an update of the changed pixels only (none).
    clock.advance(REFRESH_EVERY / 2);
    display.show(&idle).unwrap();
    panel.replay(&std::mem::take(&mut *log.lock().unwrap()), 0x3C);
    assert!(!panel.display_on, "nothing is resent early");
    // Then the set-up and the full screen again.
    clock.advance(REFRESH_EVERY);
    display.show(&idle).unwrap();
    panel.replay(&std::mem::take(&mut *log.lock().unwrap()), 0x3C);
    assert!(panel.display_on && panel.charge_pump, "still dark");
    assert_eq!(panel.pixels(64), ui::render(&idle, DisplaySize::W128H64));
}
