//! The TOML config file. Every key has a default that fits the Codec Zero, so an empty
//! file (or none) works; an unknown or mistyped key is an error naming it, because a
//! silently ignored `recordings_dri = ...` is worse than a refusal to start.
//!
//! `config.example.toml` at the top of the repository lists every key with its default;
//! a unit test keeps the two in step.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::audio::PcmFormat;
use crate::core::{CommandMap, MachineConfig};
use crate::shipped::{self, NotFound, SearchPlaces};

/// The whole config.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub audio: AudioConfig,
    pub library: LibraryConfig,
    pub button: ButtonConfig,
    pub leds: LedConfig,
    pub display: DisplayConfig,
    pub keywords: KeywordConfig,
}

/// Sound devices and formats.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AudioConfig {
    /// ALSA PCM used as the microphone (`chatterbox devices` lists them).
    pub capture_device: String,
    /// ALSA PCM used as the speaker.
    pub playback_device: String,
    /// Capture and recording rate in Hz (the Codec Zero does 48000).
    pub rate: u32,
    /// Capture and recording channels (the Codec Zero delivers 2).
    pub channels: u16,
    /// Size of each captured block handed to the recorder and the recognizer, in ms.
    pub chunk_ms: u32,
    /// Whether capture is slowed to real time: `"auto"` (paces only sources that are not
    /// clocked by a sound card, e.g. ALSA's `file` plugin), `true`, `false`. Pacing a real
    /// card against the Pi's clock makes it overrun as the two clocks drift apart.
    pub pace_capture: crate::audio::capture::Pacing,
    /// Longest clip the player will load, in seconds (protects memory from huge files).
    pub max_clip_seconds: f32,
    /// Close the speaker after this many idle seconds (the amplifier then stops hissing);
    /// 0 keeps it open. Whether the Codec Zero pops on open is for a listen on the Pi.
    pub speaker_idle_close_s: f32,
    /// Volume at start, 0..=10.
    pub volume: u8,
}

impl Default for AudioConfig {
    fn default() -> Self {
        AudioConfig {
            // The names `setup-audio` defines; `default` is left to the system.
            capture_device: crate::setup_audio::MIC_PCM.into(),
            playback_device: crate::setup_audio::SPEAKER_PCM.into(),
            rate: 48000,
            channels: 2,
            chunk_ms: 20,
            pace_capture: crate::audio::capture::Pacing::Auto,
            max_clip_seconds: 120.0,
            speaker_idle_close_s: 0.0,
            volume: 7,
        }
    }
}

/// Where clips and cues live.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LibraryConfig {
    /// Folder of recordings. Relative paths are relative to the config file's folder
    /// (or the current folder when there is no config file).
    pub recordings_dir: PathBuf,
    /// Folder holding burp.wav, erase.wav and empty.wav. Empty: the ones shipped with the
    /// program, found by [`Config::locate_shipped_files`].
    pub sounds_dir: PathBuf,
}

impl Default for LibraryConfig {
    fn default() -> Self {
        LibraryConfig {
            recordings_dir: "recordings".into(),
            sounds_dir: PathBuf::new(),
        }
    }
}

/// The button and the chatter-box timings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ButtonConfig {
    /// BCM GPIO of the button (active-low, internal pull-up). Codec Zero: 27.
    pub pin: u8,
    /// A level change counts once it has held this long, in ms.
    pub debounce_ms: u32,
    /// Pin poll interval in ms.
    pub poll_ms: u32,
    /// Hold this long (seconds) to record.
    pub record_hold_s: f32,
    /// Hold this long (seconds) to erase everything on release.
    pub erase_hold_s: f32,
    /// Length of a recording in seconds.
    pub record_seconds: f32,
}

impl Default for ButtonConfig {
    fn default() -> Self {
        ButtonConfig {
            pin: 27,
            debounce_ms: 30,
            poll_ms: 5,
            record_hold_s: 10.0,
            erase_hold_s: 20.0,
            record_seconds: 5.0,
        }
    }
}

impl AudioConfig {
    /// [`AudioConfig::speaker_idle_close_s`] as the player takes it.
    pub fn speaker_idle_close(&self) -> Option<Duration> {
        (self.speaker_idle_close_s > 0.0)
            .then(|| Duration::from_secs_f32(self.speaker_idle_close_s))
    }
}

impl ButtonConfig {
    /// The longest a debounced release can take to reach the controller after the moment
    /// it is stamped with: the debounce itself, up to two poll intervals (one to see the
    /// level change, one to see it has held), plus 50 ms for a thread that wakes late on a
    /// busy Pi. Hold marks wait this long before they count (see
    /// [`MachineConfig::release_grace`]); the cue sounds that much later, which no one hears.
    pub fn release_grace(&self) -> Duration {
        Duration::from_millis(u64::from(self.debounce_ms) + 2 * u64::from(self.poll_ms) + 50)
    }
}

/// LED pins (BCM numbering).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LedConfig {
    pub green_pin: u8,
    pub red_pin: u8,
}

impl Default for LedConfig {
    fn default() -> Self {
        LedConfig {
            green_pin: 23,
            red_pin: 24,
        }
    }
}

/// The SSD1306 OLED on I2C.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DisplayConfig {
    /// Use the display if one answers; without one the toy works the same.
    pub enabled: bool,
    /// I2C bus (1 on the 40-pin header: SDA pin 3, SCL pin 5).
    pub i2c_bus: u8,
    /// 7-bit I2C address, usually 0x3C (60).
    pub address: u16,
    /// "128x64" or "128x32".
    pub size: String,
}

impl Default for DisplayConfig {
    fn default() -> Self {
        DisplayConfig {
            enabled: true,
            i2c_bus: 1,
            address: 0x3C,
            size: "128x64".into(),
        }
    }
}

/// The keyword recognizer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeywordConfig {
    /// Listen for voice commands.
    pub enabled: bool,
    /// The model's metadata file (it names the .tflite and labels beside it). Empty: the
    /// model shipped with the program, found by [`Config::locate_shipped_files`].
    pub model: PathBuf,
    /// Where the toy keeps what it learned: takes in `<state_dir>/enroll/`, the owner's model
    /// in `<state_dir>/models-owner/`, which is then used instead of `model` (src/adapt).
    /// Empty: the folder holding `library.recordings_dir` (see [`Config::state_dir`]).
    pub state_dir: PathBuf,
    /// Run the model every this many ms (at most 250 for snappy commands); rounded to
    /// whole STFT hops (8.19 ms) so windows can share STFT columns.
    pub hop_ms: u32,
    /// Average the model's scores over this many ms before deciding.
    pub average_ms: u32,
    /// Averaged score a word needs to count, 0..1, or `"model"`: the one the model's
    /// `kws.toml` was tuned to (`[detector] threshold`), else 0.85.
    pub threshold: Threshold,
    /// After a word, the same word is not reported again for this many ms.
    pub refractory_ms: u32,
    /// Windows quieter than this (dBFS) skip the model entirely.
    pub quiet_dbfs: f32,
    /// Word → command (play-random, stop, volume-up, volume-down, previous, next,
    /// play-newest, cancel, ignore).
    pub commands: CommandMap,
}

/// The timing defaults (125 ms hop, 250 ms average, 0.85, 2 results) were chosen by
/// `cargo bench --bench kws_stream_eval -- --tune` on the VALIDATION streams and measured
/// once on the test streams (`-- --report`); docs/kws-tuning.md has both tables.
impl Default for KeywordConfig {
    fn default() -> Self {
        KeywordConfig {
            enabled: true,
            model: PathBuf::new(),
            state_dir: PathBuf::new(),
            hop_ms: 125,
            average_ms: 250,
            threshold: Threshold::Model,
            refractory_ms: 1000,
            quiet_dbfs: -55.0,
            commands: CommandMap::default(),
        }
    }
}

/// A config that cannot be used, with the field and what it accepts.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {error}. Pass an existing file with --config, or leave --config out to use the built-in defaults")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config file {path}: `{field}` = {value} is out of range; allowed: {allowed}")]
    Invalid {
        path: PathBuf,
        field: &'static str,
        value: String,
        allowed: String,
    },
    #[error("config file {path}: `{field}` = {pin} cannot be used: {reason}")]
    PinTaken {
        path: PathBuf,
        field: &'static str,
        pin: u8,
        reason: String,
    },
}

/// The BCM GPIOs the Codec Zero itself is wired to, and what for. Claiming one for the
/// button or an LED makes rppal switch it to a plain input/output, which silently cuts
/// the codec off (`red_pin = 19` stops all audio), so [`Config::validate`] refuses them.
pub const CODEC_ZERO_PINS: [(u8, &str); 6] = [
    (2, "I2C SDA, the Codec Zero's control bus (and the OLED's)"),
    (3, "I2C SCL, the Codec Zero's control bus (and the OLED's)"),
    (18, "I2S bit clock of the Codec Zero"),
    (19, "I2S frame clock of the Codec Zero"),
    (20, "I2S data from the Codec Zero's microphone"),
    (21, "I2S data to the Codec Zero's speaker"),
];

impl Config {
    /// Reads `path`; relative folders in it become relative to the file's folder.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::parse(&text, path, base)
    }

    /// Parses config text. `origin` names it in errors; `base` anchors relative paths.
    pub fn parse(text: &str, origin: &Path, base: &Path) -> Result<Config, ConfigError> {
        let mut cfg: Config = toml::from_str(text).map_err(|e| {
            let mut message = e.to_string().trim_end().to_string();
            // toml names the type ("expected u8"); a person needs the field and its range.
            let field = e.span().and_then(|s| field_at(text, s.start));
            if let Some((field, allowed)) = field.and_then(|f| allowed(&f).map(|a| (f, a))) {
                message.push_str(&format!("\n`{field}` accepts: {allowed}"));
            }
            ConfigError::Parse {
                path: origin.to_path_buf(),
                message,
            }
        })?;
        cfg.validate(origin)?;
        for p in [
            &mut cfg.library.recordings_dir,
            &mut cfg.library.sounds_dir,
            &mut cfg.keywords.model,
            &mut cfg.keywords.state_dir,
        ] {
            // An empty path means "the shipped one" and stays empty until located.
            if p.is_relative() && !p.as_os_str().is_empty() && !base.as_os_str().is_empty() {
                *p = base.join(&*p);
            }
        }
        Ok(cfg)
    }

    /// The toy's state folder: `keywords.state_dir`, or when that is empty the folder holding
    /// the recordings (`/var/lib/chatterbox` as installed, owned by the toy's user), so one
    /// setting places both and an installed toy needs no new key.
    pub fn state_dir(&self) -> PathBuf {
        if !self.keywords.state_dir.as_os_str().is_empty() {
            return self.keywords.state_dir.clone();
        }
        match self.library.recordings_dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    /// Fills an empty `library.sounds_dir` and `keywords.model` with the files shipped with
    /// the program, searched in `places`; a path the config names is kept as it is. Returns
    /// the ones found nowhere (left empty) for the caller to judge: `listen` cannot work
    /// without the model, while the toy runs on without voice commands.
    pub fn locate_shipped_files(&mut self, places: &SearchPlaces) -> Vec<NotFound> {
        let mut missing = Vec::new();
        for (path, file) in [
            (&mut self.library.sounds_dir, shipped::SOUNDS),
            (&mut self.keywords.model, shipped::MODEL),
        ] {
            if path.as_os_str().is_empty() {
                match places.find(file) {
                    Ok(found) => *path = found,
                    Err(e) => missing.push(e),
                }
            }
        }
        missing
    }

    /// Checks ranges the types cannot express.
    pub fn validate(&self, origin: &Path) -> Result<(), ConfigError> {
        let bad = |field: &'static str, value: String, allowed: &str| ConfigError::Invalid {
            path: origin.to_path_buf(),
            field,
            value,
            allowed: allowed.to_string(),
        };
        let a = &self.audio;
        if !(8000..=192_000).contains(&a.rate) {
            return Err(bad(
                "audio.rate",
                a.rate.to_string(),
                "8000 to 192000 Hz, e.g. 48000",
            ));
        }
        if !(1..=2).contains(&a.channels) {
            return Err(bad("audio.channels", a.channels.to_string(), "1 or 2"));
        }
        if !(5..=200).contains(&a.chunk_ms) {
            return Err(bad("audio.chunk_ms", a.chunk_ms.to_string(), "5 to 200"));
        }
        if !(0.0..=3600.0).contains(&a.speaker_idle_close_s) {
            return Err(bad(
                "audio.speaker_idle_close_s",
                a.speaker_idle_close_s.to_string(),
                "0 (keep the speaker open) to 3600 seconds",
            ));
        }
        if !(a.max_clip_seconds > 0.0 && a.max_clip_seconds <= 3600.0) {
            return Err(bad(
                "audio.max_clip_seconds",
                a.max_clip_seconds.to_string(),
                "more than 0, at most 3600",
            ));
        }
        if a.volume > 10 {
            return Err(bad("audio.volume", a.volume.to_string(), "0 to 10"));
        }
        for (field, dev) in [
            ("audio.capture_device", &a.capture_device),
            ("audio.playback_device", &a.playback_device),
        ] {
            if dev.trim().is_empty() {
                return Err(bad(field, format!("{dev:?}"), allowed(field).unwrap_or("")));
            }
        }
        // (sounds_dir and model may be empty: the shipped ones; state_dir: beside the
        // recordings.)
        for (field, path) in [("library.recordings_dir", &self.library.recordings_dir)] {
            if path.as_os_str().is_empty() {
                return Err(bad(
                    field,
                    "\"\"".into(),
                    allowed(field).unwrap_or("a path"),
                ));
            }
        }
        let b = &self.button;
        if b.pin > 27 {
            return Err(bad(
                "button.pin",
                b.pin.to_string(),
                "a BCM GPIO number 0 to 27",
            ));
        }
        if !(5..=500).contains(&b.debounce_ms) {
            return Err(bad(
                "button.debounce_ms",
                b.debounce_ms.to_string(),
                "5 to 500",
            ));
        }
        if !(1..=50).contains(&b.poll_ms) {
            return Err(bad("button.poll_ms", b.poll_ms.to_string(), "1 to 50"));
        }
        if !(b.record_hold_s >= 0.5 && b.record_hold_s <= 600.0) {
            return Err(bad(
                "button.record_hold_s",
                b.record_hold_s.to_string(),
                "0.5 to 600",
            ));
        }
        if !(b.erase_hold_s > b.record_hold_s && b.erase_hold_s <= 600.0) {
            return Err(bad(
                "button.erase_hold_s",
                b.erase_hold_s.to_string(),
                "more than button.record_hold_s, at most 600",
            ));
        }
        if !(b.record_seconds >= 0.5 && b.record_seconds <= 600.0) {
            return Err(bad(
                "button.record_seconds",
                b.record_seconds.to_string(),
                "0.5 to 600",
            ));
        }
        for (field, pin) in [
            ("leds.green_pin", self.leds.green_pin),
            ("leds.red_pin", self.leds.red_pin),
        ] {
            if pin > 27 {
                return Err(bad(field, pin.to_string(), "a BCM GPIO number 0 to 27"));
            }
        }
        self.check_pins_are_free(origin)?;
        if !["128x64", "128x32"].contains(&self.display.size.as_str()) {
            return Err(bad(
                "display.size",
                format!("{:?}", self.display.size),
                "\"128x64\" or \"128x32\"",
            ));
        }
        if self.display.address > 0x7F {
            return Err(bad(
                "display.address",
                self.display.address.to_string(),
                "a 7-bit I2C address, usually 0x3C (60)",
            ));
        }
        let k = &self.keywords;
        if !(20..=1000).contains(&k.hop_ms) {
            return Err(bad(
                "keywords.hop_ms",
                k.hop_ms.to_string(),
                "20 to 1000 (250 or less recommended)",
            ));
        }
        if !(k.average_ms >= k.hop_ms && k.average_ms <= 5000) {
            return Err(bad(
                "keywords.average_ms",
                k.average_ms.to_string(),
                "at least keywords.hop_ms, at most 5000",
            ));
        }
        if let Threshold::Fixed(t) = k.threshold {
            if !(t > 0.0 && t < 1.0) {
                return Err(bad(
                    "keywords.threshold",
                    t.to_string(),
                    "\"model\" (the model's own), or a number between 0 and 1, e.g. 0.7",
                ));
            }
        }
        if k.refractory_ms > 10_000 {
            return Err(bad(
                "keywords.refractory_ms",
                k.refractory_ms.to_string(),
                "0 to 10000",
            ));
        }
        if !(-120.0..=0.0).contains(&k.quiet_dbfs) {
            return Err(bad(
                "keywords.quiet_dbfs",
                k.quiet_dbfs.to_string(),
                "-120 to 0",
            ));
        }
        Ok(())
    }

    /// Refuses a button or LED pin that the Codec Zero needs ([`CODEC_ZERO_PINS`]) or that
    /// another of them already uses: both would otherwise only show up at run time, as
    /// silence or as a button that lights an LED.
    fn check_pins_are_free(&self, origin: &Path) -> Result<(), ConfigError> {
        let taken = |field: &'static str, pin: u8, reason: String| ConfigError::PinTaken {
            path: origin.to_path_buf(),
            field,
            pin,
            reason,
        };
        let pins = [
            ("button.pin", self.button.pin),
            ("leds.green_pin", self.leds.green_pin),
            ("leds.red_pin", self.leds.red_pin),
        ];
        for (i, &(field, pin)) in pins.iter().enumerate() {
            if let Some((_, role)) = CODEC_ZERO_PINS.iter().find(|(p, _)| *p == pin) {
                return Err(taken(
                    field,
                    pin,
                    format!(
                        "GPIO {pin} is the {role}, and using it for a button or LED cuts \
                         the codec off. Pick a free GPIO, e.g. 5, 6, 12, 13, 16, 17, 22, 23, \
                         24, 25, 26 or 27"
                    ),
                ));
            }
            if let Some((other, _)) = pins[..i].iter().find(|(_, p)| *p == pin) {
                return Err(taken(
                    field,
                    pin,
                    format!("`{other}` is already GPIO {pin}. Give each its own pin"),
                ));
            }
        }
        Ok(())
    }

    /// The capture (and recording) format.
    pub fn capture_format(&self) -> PcmFormat {
        PcmFormat {
            rate: self.audio.rate,
            channels: self.audio.channels,
        }
    }

    /// The state machine's settings.
    pub fn machine(&self, listening: bool, seed: u64) -> MachineConfig {
        MachineConfig {
            record_hold: Duration::from_secs_f32(self.button.record_hold_s),
            erase_hold: Duration::from_secs_f32(self.button.erase_hold_s),
            record_length: Duration::from_secs_f32(self.button.record_seconds),
            initial_volume: self.audio.volume,
            listening,
            seed,
            ..MachineConfig::default()
        }
    }
}

/// What each config key accepts, for messages about values toml itself refuses (wrong
/// type, out of the integer's range). `validate` states the same ranges.
pub fn allowed(field: &str) -> Option<&'static str> {
    const DEVICE: &str = "an ALSA PCM name in quotes, such as \"chatterbox_mic\", \"default\" or \"hw:Zero\" (`chatterbox devices` lists them)";
    const GPIO: &str =
        "a BCM GPIO number 0 to 27, not 2, 3 or 18 to 21 (the Codec Zero's I2C and I2S pins)";
    const BOOL: &str = "true or false";
    if field.starts_with("keywords.commands.") {
        return Some("a command in quotes: play-random, stop, volume-up, volume-down, previous, next, play-newest, cancel, ignore");
    }
    Some(match field {
        "audio.capture_device" | "audio.playback_device" => DEVICE,
        "audio.rate" => "8000 to 192000 Hz, e.g. 48000",
        "audio.channels" => "1 or 2",
        "audio.chunk_ms" => "5 to 200",
        "audio.pace_capture" => "\"auto\" (recommended), true or false",
        "display.enabled" | "keywords.enabled" => BOOL,
        "audio.max_clip_seconds" => "more than 0, at most 3600",
        "audio.speaker_idle_close_s" => "0 (keep the speaker open) to 3600 seconds",
        "audio.volume" => "0 to 10",
        "library.recordings_dir" => "a folder path in quotes, e.g. \"recordings\"",
        "library.sounds_dir" => {
            "a folder path in quotes, e.g. \"sounds\", or \"\" for the shipped sounds"
        }
        "button.pin" | "leds.green_pin" | "leds.red_pin" => GPIO,
        "button.debounce_ms" => "5 to 500",
        "button.poll_ms" => "1 to 50",
        "button.record_hold_s" => "0.5 to 600",
        "button.erase_hold_s" => "more than button.record_hold_s, at most 600",
        "button.record_seconds" => "0.5 to 600",
        "display.i2c_bus" => "an I2C bus number 0 to 255, usually 1",
        "display.address" => "a 7-bit I2C address, usually 0x3C (60)",
        "display.size" => "\"128x64\" or \"128x32\"",
        "keywords.model" => {
            "the model's .toml file in quotes, e.g. \"models/kws.toml\", or \"\" for the shipped model"
        }
        "keywords.state_dir" => "a folder path in quotes, e.g. \"/var/lib/chatterbox\", or \"\" for the folder holding recordings_dir",
        "keywords.hop_ms" => "20 to 1000 (250 or less recommended)",
        "keywords.average_ms" => "at least keywords.hop_ms, at most 5000",
        "keywords.threshold" => {
            "\"model\" (the model's own), or a number between 0 and 1, e.g. 0.7"
        }
        "keywords.refractory_ms" => "0 to 10000",
        "keywords.quiet_dbfs" => "-120 to 0",
        _ => return None,
    })
}

/// The dotted key (`audio.volume`) whose line holds byte `offset` of `text`, from the
/// `key = value` line and the nearest `[section]` above it.
fn field_at(text: &str, offset: usize) -> Option<String> {
    let head = text.get(..offset)?;
    let line_start = head.rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next()?;
    let (key, _) = line.split_once('=')?;
    let key = key.trim().trim_matches('"');
    if key.is_empty() || key.starts_with('[') {
        return None;
    }
    let section = text[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string());
    Some(match section {
        Some(s) if !s.is_empty() => format!("{s}.{key}"),
        _ => key.to_string(),
    })
}

/// `keywords.threshold`: the averaged score a word needs. Each model is tuned to its own
/// (the speech-embedding head's scores sit much nearer 1 than the STFT model's), so the
/// default follows the model in use — including an owner model adapted on the toy — and a
/// number in the config overrides it for every model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ThresholdSetting", into = "ThresholdSetting")]
pub enum Threshold {
    /// `threshold = "model"`: the model's `[detector] threshold`, else
    /// [`Threshold::WITHOUT_MODEL_SETTING`].
    #[default]
    Model,
    /// `threshold = 0.9`.
    Fixed(f32),
}

impl Threshold {
    /// For a model whose `kws.toml` names none (the value the STFT model was tuned to).
    pub const WITHOUT_MODEL_SETTING: f32 = 0.85;

    /// The threshold to use with a model that asks for `model_setting`.
    pub fn resolve(self, model_setting: Option<f32>) -> f32 {
        match self {
            Threshold::Fixed(t) => t,
            Threshold::Model => model_setting.unwrap_or(Self::WITHOUT_MODEL_SETTING),
        }
    }
}

/// How [`Threshold`] is written in the config file: `"model"` or a number.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum ThresholdSetting {
    Number(f32),
    Word(String),
}

impl TryFrom<ThresholdSetting> for Threshold {
    type Error = String;
    fn try_from(v: ThresholdSetting) -> Result<Self, String> {
        match v {
            ThresholdSetting::Number(t) => Ok(Threshold::Fixed(t)),
            ThresholdSetting::Word(w) if w == "model" => Ok(Threshold::Model),
            ThresholdSetting::Word(w) => Err(format!(
                "threshold = \"{w}\" is not a setting; use \"model\" or a number between 0 and 1"
            )),
        }
    }
}

impl From<Threshold> for ThresholdSetting {
    fn from(t: Threshold) -> Self {
        match t {
            Threshold::Model => ThresholdSetting::Word("model".into()),
            Threshold::Fixed(t) => ThresholdSetting::Number(t),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("test.toml"), Path::new(""))
    }

    #[test]
    fn threshold_is_the_models_own_or_a_number_and_names_the_fix_otherwise() {
        assert_eq!(Config::default().keywords.threshold, Threshold::Model);
        let t = |v: &str| parse(&format!("[keywords]\nthreshold = {v}\n"));
        assert_eq!(t("\"model\"").unwrap().keywords.threshold, Threshold::Model);
        assert_eq!(t("0.9").unwrap().keywords.threshold, Threshold::Fixed(0.9));
        for bad in ["\"auto\"", "1.5", "0"] {
            let e = t(bad).unwrap_err().to_string();
            assert!(
                e.contains("threshold") && e.contains("\"model\""),
                "{bad}: {e}"
            );
        }
        let text = toml::to_string(&Config::default()).unwrap();
        assert!(text.contains("threshold = \"model\""), "{text}");
    }

    #[test]
    fn the_state_folder_is_beside_the_recordings_unless_named() {
        let c = Config::parse(
            "[library]\nrecordings_dir = \"/var/lib/chatterbox/recordings\"\n",
            Path::new("test.toml"),
            Path::new("/etc/chatterbox"),
        )
        .unwrap();
        assert_eq!(c.state_dir(), Path::new("/var/lib/chatterbox"));
        let c = Config::parse(
            "[keywords]\nstate_dir = \"learned\"\n",
            Path::new("test.toml"),
            Path::new("/etc/chatterbox"),
        )
        .unwrap();
        assert_eq!(c.state_dir(), Path::new("/etc/chatterbox/learned"));
        // The default recordings folder is relative: its parent is the working folder.
        assert_eq!(Config::default().state_dir(), Path::new("."));
    }

    #[test]
    fn empty_file_gives_codec_zero_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.button.pin, 27);
        assert_eq!((c.leds.green_pin, c.leds.red_pin), (23, 24));
        assert_eq!(
            c.capture_format(),
            PcmFormat {
                rate: 48000,
                channels: 2
            }
        );
        assert_eq!(c.button.record_hold_s, 10.0);
        assert_eq!(c.button.erase_hold_s, 20.0);
        assert_eq!(c.button.record_seconds, 5.0);
        assert_eq!(c.audio.capture_device, "chatterbox_mic");
        assert_eq!(c.audio.playback_device, "chatterbox_speaker");
    }

    #[test]
    fn the_example_file_lists_every_default() {
        let text = include_str!("../config.example.toml");
        let c = parse(text).expect("config.example.toml parses");
        assert_eq!(c, Config::default(), "example and defaults disagree");
        // and every key is present (the example documents them all)
        let full = toml::to_string(&Config::default()).unwrap();
        let example: toml::Table = toml::from_str(text).unwrap();
        let defaults: toml::Table = toml::from_str(&full).unwrap();
        for (section, table) in &defaults {
            let ex = example[section].as_table().unwrap();
            for key in table.as_table().unwrap().keys() {
                assert!(
                    ex.contains_key(key),
                    "config.example.toml lacks [{section}] {key}"
                );
            }
        }
    }

    #[test]
    fn unknown_key_is_named() {
        let err = parse("[library]\nrecordings_dri = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("recordings_dri"), "{err}");
        assert!(err.contains("test.toml"), "{err}");
        let err = parse("[audoi]\n").unwrap_err().to_string();
        assert!(err.contains("audoi"), "{err}");
    }

    #[test]
    fn wrong_type_is_named() {
        let err = parse("[audio]\nrate = \"fast\"\n").unwrap_err().to_string();
        assert!(err.contains("rate"), "{err}");
    }

    #[test]
    fn out_of_range_names_field_and_allowed_values() {
        for (text, field) in [
            ("[audio]\nrate = 7\n", "audio.rate"),
            ("[audio]\nchannels = 6\n", "audio.channels"),
            ("[audio]\nvolume = 11\n", "audio.volume"),
            ("[button]\nerase_hold_s = 5.0\n", "button.erase_hold_s"),
            ("[button]\npin = 40\n", "button.pin"),
            ("[display]\nsize = \"64x48\"\n", "display.size"),
            ("[keywords]\nthreshold = 1.5\n", "keywords.threshold"),
            ("[keywords]\nhop_ms = 0\n", "keywords.hop_ms"),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(
                err.contains(field) && err.contains("allowed"),
                "{text}: {err}"
            );
        }
    }

    #[test]
    fn the_codec_zeros_own_pins_are_refused_with_the_reason() {
        for pin in [2, 3, 18, 19, 20, 21] {
            for section_key in ["[button]\npin", "[leds]\ngreen_pin", "[leds]\nred_pin"] {
                let text = format!("{section_key} = {pin}\n");
                let err = parse(&text).unwrap_err();
                assert!(matches!(err, ConfigError::PinTaken { pin: p, .. } if p == pin));
                let msg = err.to_string();
                let field = section_key.replace("[", "").replace("]\n", ".");
                assert!(
                    msg.contains(&format!("`{field}` = {pin}")) && msg.contains("Codec Zero"),
                    "{text}: {msg}"
                );
                assert!(msg.contains(if pin < 4 { "I2C" } else { "I2S" }), "{msg}");
            }
        }
        // The pins next to them are free.
        for pin in [4, 17, 22, 26] {
            parse(&format!("[button]\npin = {pin}\n")).unwrap();
        }
    }

    #[test]
    fn two_parts_on_one_pin_are_refused_naming_both() {
        for (text, field, other) in [
            ("[leds]\ngreen_pin = 27\n", "leds.green_pin", "button.pin"),
            ("[leds]\nred_pin = 27\n", "leds.red_pin", "button.pin"),
            ("[leds]\nred_pin = 23\n", "leds.red_pin", "leds.green_pin"),
            (
                "[button]\npin = 5\n[leds]\ngreen_pin = 5\nred_pin = 6\n",
                "leds.green_pin",
                "button.pin",
            ),
        ] {
            let msg = parse(text).unwrap_err().to_string();
            assert!(
                msg.contains(&format!("`{field}`")) && msg.contains(&format!("`{other}`")),
                "{text}: {msg}"
            );
        }
        // Three different pins are fine.
        parse("[button]\npin = 5\n[leds]\ngreen_pin = 6\nred_pin = 13\n").unwrap();
    }

    #[test]
    fn unknown_command_lists_the_allowed_ones() {
        let err = parse("[keywords.commands]\ngo = \"dance\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("dance") && err.contains("play-random"),
            "{err}"
        );
    }

    #[test]
    fn relative_paths_follow_the_config_file() {
        let c = Config::parse(
            "[library]\nrecordings_dir = \"rec\"\nsounds_dir = \"/abs/sounds\"\n",
            Path::new("/etc/chatterbox/config.toml"),
            Path::new("/etc/chatterbox"),
        )
        .unwrap();
        assert_eq!(c.library.recordings_dir, Path::new("/etc/chatterbox/rec"));
        assert_eq!(c.library.sounds_dir, Path::new("/abs/sounds"));
    }

    #[test]
    fn shipped_files_are_found_unless_the_config_names_them() {
        let root = tempfile::tempdir().unwrap();
        let checkout = root.path().join("checkout");
        std::fs::create_dir_all(checkout.join("sounds")).unwrap();
        std::fs::create_dir_all(checkout.join("models")).unwrap();
        std::fs::write(checkout.join("models/kws.toml"), "").unwrap();
        let places = SearchPlaces::new(Some(&root.path().join("bin/chatterbox")), &checkout);

        // Not in the file: searched, whatever the config file's folder.
        let mut c = Config::parse("", Path::new("/etc/cb.toml"), Path::new("/etc")).unwrap();
        assert!(c.library.sounds_dir.as_os_str().is_empty());
        assert!(c.locate_shipped_files(&places).is_empty());
        assert_eq!(c.library.sounds_dir, checkout.join("sounds"));
        assert_eq!(c.keywords.model, checkout.join("models/kws.toml"));

        // Named in the file: kept, even where nothing is (its error then names that path).
        let mut c = Config::parse(
            "[library]\nsounds_dir = \"mine\"\n[keywords]\nmodel = \"/m/k.toml\"\n",
            Path::new("/etc/cb.toml"),
            Path::new("/etc"),
        )
        .unwrap();
        assert!(c.locate_shipped_files(&places).is_empty());
        assert_eq!(c.library.sounds_dir, Path::new("/etc/mine"));
        assert_eq!(c.keywords.model, Path::new("/m/k.toml"));
    }

    #[test]
    fn shipped_files_found_nowhere_are_reported_with_the_places() {
        let root = tempfile::tempdir().unwrap();
        let places = SearchPlaces::new(None, &root.path().join("gone"));
        let mut c = Config::default();
        let missing = c.locate_shipped_files(&places);
        let keys: Vec<&str> = missing.iter().map(|m| m.file.config_key).collect();
        assert_eq!(keys, ["library.sounds_dir", "keywords.model"]);
        assert!(missing[1].to_string().contains(
            &root
                .path()
                .join("gone/models/kws.toml")
                .display()
                .to_string()
        ));
        assert!(c.keywords.model.as_os_str().is_empty());
    }

    #[test]
    fn missing_file_error_names_it() {
        let err = Config::load(Path::new("/nonexistent/chatterbox.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/chatterbox.toml"), "{err}");
    }
}
