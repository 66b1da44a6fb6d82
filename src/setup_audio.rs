//! `chatterbox setup-audio`: give the Codec Zero (or a USB mic + another speaker) the ALSA
//! names chatterbox opens, `chatterbox_mic` and `chatterbox_speaker`, with its mixer set for
//! "onboard MEMS mic in, mono speaker out".
//!
//! The names live in a file of their own, [`DEFAULT_OUTPUT`] in alsa-lib's drop-in folder,
//! which every user's programs read. Nothing else is redirected: `default` stays what the
//! system made it (PipeWire on a desktop, card 0 otherwise), because chatterbox keeps its
//! devices open for its whole life and every other program sent to the same card would get
//! "device busy". The owner's `/etc/asound.conf` and `~/.asoundrc` are not touched, and a
//! file at the output path that chatterbox did not write is left alone (an error says so).
//!
//! A fresh Codec Zero records silence and plays nothing until its DA7213 mixer is routed:
//! Raspberry Pi publishes ALSA state files for that (repository `raspberrypi/Pi-Codec`,
//! `Codec_Zero_OnboardMIC_record_and_SPK_playback.state`, normally loaded with
//! `alsactl restore -f`). [`ONBOARD_MIC_AND_SPEAKER`] holds the same settings as plain data,
//! so they can be printed, tested and applied without the file or the `alsactl` binary.
//!
//! The parts, from pure to I/O:
//!
//! * [`find_codec_zero`] and [`select_card`] pick cards out of a list (pure).
//! * [`asound_conf`] writes the config text: two `plug` PCMs, so any rate/format/channel
//!   count is converted (pure).
//! * [`plan`] turns the card list and [`SetupOptions`] into a [`Plan`] (pure).
//! * [`list_cards`], [`apply_profile`] and [`run`] touch ALSA and the file system.
//!
//! # Troubleshooting
//!
//! * *no Codec Zero sound card* — add `dtoverlay=rpi-codeczero` to
//!   `/boot/firmware/config.txt` and reboot; `aplay -l` should then list a card `Zero`
//!   (older boards and kernels: `IQaudIOCODEC`).
//! * *cannot open the mixer* — the user needs the `audio` group (not root).
//! * *cannot write /etc/alsa/conf.d/60-chatterbox.conf* — that file is for every user, so
//!   it needs `sudo`; `--output ~/.asoundrc` writes the same names for one user instead.
//! * Mixer settings survive a reboot once stored: `sudo alsactl store` (the installer does it).

use std::ffi::CString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One sound card as ALSA lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlsaCard {
    /// The card number (`hw:N`); may change between boots when USB devices come and go.
    pub index: i32,
    /// The stable short id (`hw:CARD=id`), e.g. `Zero`, `IQaudIOCODEC`, `Headphones`.
    pub id: String,
    /// The human name, e.g. `Zero`, `bcm2835 Headphones`, `USB PnP Sound Device`.
    pub name: String,
}

impl AlsaCard {
    pub fn new(index: i32, id: &str, name: &str) -> AlsaCard {
        AlsaCard {
            index,
            id: id.to_string(),
            name: name.to_string(),
        }
    }
}

impl std::fmt::Display for AlsaCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "card {} \"{}\" ({})", self.index, self.id, self.name)
    }
}

/// The ids the Codec Zero's driver has registered over the years: `Zero` on current Raspberry
/// Pi boards and kernels, `IQaudIOCODEC` on the older IQaudIO-branded ones.
pub const CODEC_ZERO_IDS: [&str; 2] = ["Zero", "IQaudIOCODEC"];

/// Finds the Codec Zero among `cards`, whatever it is called: first by its exact id or name
/// (case-insensitive), then by a name mentioning "codec zero" or "iqaudio" + "codec".
pub fn find_codec_zero(cards: &[AlsaCard]) -> Option<&AlsaCard> {
    let exact = |c: &&AlsaCard| {
        CODEC_ZERO_IDS
            .iter()
            .any(|id| c.id.eq_ignore_ascii_case(id) || c.name.eq_ignore_ascii_case(id))
    };
    let loose = |c: &&AlsaCard| {
        let name = c.name.to_ascii_lowercase();
        name.contains("codec zero")
            || name.contains("codeczero")
            || (name.contains("iqaudio") && name.contains("codec"))
    };
    cards
        .iter()
        .find(exact)
        .or_else(|| cards.iter().find(loose))
}

/// Picks a card the way a person names it: a number is the index, otherwise the exact id
/// (case-insensitive), otherwise the only card whose name contains the text.
pub fn select_card<'a>(cards: &'a [AlsaCard], wanted: &str) -> Result<&'a AlsaCard, SetupError> {
    let wanted = wanted.trim();
    let not_found = || SetupError::CardNotFound {
        wanted: wanted.to_string(),
        found: describe(cards),
    };
    if let Ok(index) = wanted.parse::<i32>() {
        return cards
            .iter()
            .find(|c| c.index == index)
            .ok_or_else(not_found);
    }
    if let Some(c) = cards.iter().find(|c| c.id.eq_ignore_ascii_case(wanted)) {
        return Ok(c);
    }
    let needle = wanted.to_ascii_lowercase();
    let matches: Vec<&AlsaCard> = cards
        .iter()
        .filter(|c| c.name.to_ascii_lowercase().contains(&needle))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err(not_found()),
        many => Err(SetupError::AmbiguousCard {
            wanted: wanted.to_string(),
            matches: many
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

fn describe(cards: &[AlsaCard]) -> String {
    if cards.is_empty() {
        "none".to_string()
    } else {
        cards
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A mixer control value, written to every channel of the control.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    Int(i64),
    Bool(bool),
    /// An enumerated control's item, by position; `name` is what the driver calls it.
    Item {
        index: u32,
        name: &'static str,
    },
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Int(v) => write!(f, "{v}"),
            Value::Bool(true) => f.write_str("on"),
            Value::Bool(false) => f.write_str("off"),
            Value::Item { index, name } => write!(f, "'{name}' (item {index})"),
        }
    }
}

/// One mixer control (ALSA ctl interface MIXER, by name) and the value it should have.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Setting {
    pub control: &'static str,
    pub value: Value,
}

const fn int(control: &'static str, v: i64) -> Setting {
    Setting {
        control,
        value: Value::Int(v),
    }
}
const fn on(control: &'static str) -> Setting {
    Setting {
        control,
        value: Value::Bool(true),
    }
}
const fn off(control: &'static str) -> Setting {
    Setting {
        control,
        value: Value::Bool(false),
    }
}
const fn item(control: &'static str, index: u32, name: &'static str) -> Setting {
    Setting {
        control,
        value: Value::Item { index, name },
    }
}

/// The Codec Zero (DA7213) mixer for "onboard MEMS mic record + mono speaker playback": the
/// settings of Raspberry Pi's `Codec_Zero_OnboardMIC_record_and_SPK_playback.state`
/// (card `Zero`), grouped by what they do. Every control the state file sets is here, so the
/// result does not depend on what the mixer held before.
pub const ONBOARD_MIC_AND_SPEAKER: &[Setting] = &[
    // -- Record path: the onboard MEMS mic is wired to Mic 2 (differential), through the
    //    input mixers and PGA into both ADC channels, then to the I2S (DAI) outputs.
    on("Onboard MIC Switch"),
    int("Mic 2 Volume", 5), // +24 dB
    on("Mic 2 Switch"),
    item("Mic 2 Amp Source MUX", 0, "Differential"),
    on("Mixin Left Mic 2 Switch"),
    on("Mixin Right Mic 2 Switch"),
    int("Mixin PGA Volume", 7), // +6 dB
    on("Mixin PGA Switch"),
    int("ADC Volume", 114), // +1.5 dB
    on("ADC Switch"),
    item("DAI Left Source MUX", 0, "ADC Left"),
    item("DAI Right Source MUX", 1, "ADC Right"),
    // -- Playback path: I2S into the DAC, mixed to mono, out of the line driver that feeds
    //    the speaker terminals.
    item("DAC Left Source MUX", 2, "DAI Input Left"),
    item("DAC Right Source MUX", 3, "DAI Input Right"),
    int("DAC Volume", 112), // 0 dB
    on("DAC Mono Switch"),
    off("DAC Invert Switch"),
    off("DAC Soft Mute Switch"),
    item("DAC Soft Mute Rate", 0, "1"),
    on("Mixout Left DAC Left Switch"),
    on("Mixout Right DAC Right Switch"),
    int("Lineout Volume", 48), // 0 dB
    on("Lineout Switch"),
    // -- Jack detection as the state file leaves it.
    on("HP Jack Switch"),
    on("MIC Jack Switch"),
    off("AUX Jack Switch"),
    // -- Unused inputs silenced: Mic 1, the aux (line) input, the digital mic.
    int("Mic 1 Volume", 0),
    off("Mic 1 Switch"),
    item("Mic 1 Amp Source MUX", 0, "Differential"),
    int("Aux Volume", 0),
    off("Aux Switch"),
    off("DMIC Switch"),
    off("Mixin Left Aux Left Switch"),
    off("Mixin Left Mic 1 Switch"),
    off("Mixin Left Mixin Right Switch"),
    off("Mixin Right Aux Right Switch"),
    off("Mixin Right Mic 1 Switch"),
    off("Mixin Right Mixin Left Switch"),
    // -- Unused outputs and output mixer paths off: the headphone amplifier, and everything
    //    but the DAC into the output mixers (no monitoring of the mic on the speaker).
    int("Headphone Volume", 0),
    off("Headphone Switch"),
    off("Mixout Left Aux Left Switch"),
    off("Mixout Left Mixin Left Switch"),
    off("Mixout Left Mixin Right Switch"),
    off("Mixout Left Aux Left Invert Switch"),
    off("Mixout Left Mixin Left Invert Switch"),
    off("Mixout Left Mixin Right Invert Switch"),
    off("Mixout Right Aux Right Switch"),
    off("Mixout Right Mixin Right Switch"),
    off("Mixout Right Mixin Left Switch"),
    off("Mixout Right Aux Right Invert Switch"),
    off("Mixout Right Mixin Right Invert Switch"),
    off("Mixout Right Mixin Left Invert Switch"),
    // -- Signal processing off: EQ, high-pass and voice filters, noise gate, ALC. The
    //    keyword model was trained on unprocessed audio.
    off("DAC EQ Switch"),
    int("DAC EQ1 Volume", 0),
    int("DAC EQ2 Volume", 0),
    int("DAC EQ3 Volume", 0),
    int("DAC EQ4 Volume", 0),
    int("DAC EQ5 Volume", 0),
    off("ADC HPF Switch"),
    item("ADC HPF Cutoff", 0, "Fs/24000"),
    off("ADC Voice Mode Switch"),
    item("ADC Voice Cutoff", 0, "2.5Hz"),
    off("DAC HPF Switch"),
    item("DAC HPF Cutoff", 0, "Fs/24000"),
    off("DAC Voice Mode Switch"),
    item("DAC Voice Cutoff", 0, "2.5Hz"),
    off("DAC NG Switch"),
    item("DAC NG Setup Time", 0, "256 samples"),
    item("DAC NG Rampup Rate", 0, "0.02 ms/dB"),
    item("DAC NG Rampdown Rate", 0, "0.64 ms/dB"),
    int("DAC NG OFF Threshold", 0),
    int("DAC NG ON Threshold", 0),
    off("ALC Switch"),
    item("ALC Attack Rate", 0, "44/fs"),
    item("ALC Release Rate", 0, "176/fs"),
    item("ALC Hold Time", 0, "62/fs"),
    item("ALC Integ Attack Rate", 0, "1/4"),
    item("ALC Integ Release Rate", 0, "1/4"),
    int("ALC Noise Threshold Volume", 0),
    int("ALC Min Threshold Volume", 0),
    int("ALC Max Threshold Volume", 0),
    int("ALC Max Attenuation Volume", 0),
    int("ALC Max Gain Volume", 0),
    int("ALC Min Analog Gain Volume", 0),
    int("ALC Max Analog Gain Volume", 0),
    off("ALC Anticlip Mode Switch"),
    int("ALC Anticlip Level", 0),
    // -- Gain ramping and zero-cross detection off, as in the state file.
    off("Aux ZC Switch"),
    off("Mixin PGA ZC Switch"),
    off("Headphone ZC Switch"),
    off("Aux Gain Ramping Switch"),
    off("Mixin Gain Ramping Switch"),
    off("ADC Gain Ramping Switch"),
    off("DAC Gain Ramping Switch"),
    off("Headphone Gain Ramping Switch"),
    off("Lineout Gain Ramping Switch"),
    item("Gain Ramping Rate", 0, "nominal rate * 8"),
];

/// One end of the default device: which card and PCM device, and what it is for the reader
/// of the generated file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The card's stable id, used as `hw:CARD=<id>` so a renumbered card is still found.
    pub card_id: String,
    pub device: u32,
    pub label: String,
}

impl Endpoint {
    fn hw(&self) -> String {
        format!("hw:CARD={},DEV={}", self.card_id, self.device)
    }
}

/// The marker on the first line of every file [`asound_conf`] writes. A file without it is
/// somebody else's (or one whose owner removed the line to keep an edit) and is never
/// replaced.
pub const MARKER: &str = "# Written by `chatterbox setup-audio`.";

/// The ALSA PCM name of the microphone; the config's default `audio.capture_device`.
pub const MIC_PCM: &str = "chatterbox_mic";
/// The ALSA PCM name of the speaker; the config's default `audio.playback_device`.
pub const SPEAKER_PCM: &str = "chatterbox_speaker";

/// Where `setup-audio` writes by default: alsa-lib reads every `*.conf` in
/// `/etc/alsa/conf.d` for every user, so the service user, the owner's shell and `sudo`
/// all see the same names, and the file belongs to chatterbox alone.
pub const DEFAULT_OUTPUT: &str = "/etc/alsa/conf.d/60-chatterbox.conf";

/// Where versions before the drop-in wrote, taking over every program's `default`.
pub const LEGACY_OUTPUT: &str = "/etc/asound.conf";

/// A hint for an ALSA open error on `device`: our names exist only once `setup-audio` ran.
pub fn missing_pcm_hint(device: &str) -> Option<&'static str> {
    (device == MIC_PCM || device == SPEAKER_PCM).then_some(
        "this name is defined by `sudo chatterbox setup-audio`; run it (or set the device \
         in the config to one `chatterbox devices` lists)",
    )
}

/// ALSA card ids are short identifiers; anything else would need quoting in the config.
fn valid_card_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 32
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// The ALSA configuration naming `mic` [`MIC_PCM`] and `speaker` [`SPEAKER_PCM`]. Both go
/// through `plug`, which converts rate, format and channels, so the program can ask for
/// 16-bit 48 kHz and get it from any card. It defines nothing else: no `!default`, so
/// other programs keep their own devices.
pub fn asound_conf(mic: &Endpoint, speaker: &Endpoint) -> Result<String, SetupError> {
    for e in [mic, speaker] {
        if !valid_card_id(&e.card_id) {
            return Err(SetupError::BadCardId(e.card_id.clone()));
        }
    }
    let label = |s: &str| s.replace('\n', " ");
    Ok(format!(
        "{MARKER} Running it again replaces this file;\n\
         # to keep an edit, delete the line above and setup-audio will leave the file alone.\n\
         # Only chatterbox uses these names (its config: audio.capture_device and\n\
         # audio.playback_device); every other program keeps its own default device.\n\
         #\n\
         # Microphone: {mic_label}\n\
         # Speaker:    {spk_label}\n\
         \n\
         pcm.{MIC_PCM} {{\n\
         \x20   type plug\n\
         \x20   slave.pcm \"{mic_hw}\"\n\
         }}\n\
         \n\
         pcm.{SPEAKER_PCM} {{\n\
         \x20   type plug\n\
         \x20   slave.pcm \"{spk_hw}\"\n\
         }}\n",
        mic_label = label(&mic.label),
        spk_label = label(&speaker.label),
        mic_hw = mic.hw(),
        spk_hw = speaker.hw(),
    ))
}

/// What `setup-audio` should do. It is also the subcommand's clap arguments, so the CLI
/// wires it as `SetupAudio(setup_audio::SetupOptions)` and the flags the installer uses
/// (`--output`) are defined here, next to their meaning.
#[derive(Clone, Debug, Default, PartialEq, clap::Args)]
pub struct SetupOptions {
    /// Print what would be done; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Microphone card: index, id or part of its name, optionally ",DEVICE" (e.g. USB or
    /// 2,0). Default: the Codec Zero's onboard mic.
    #[arg(long, value_name = "CARD")]
    pub mic: Option<String>,
    /// Speaker card, same forms (e.g. Headphones for the 3.5 mm jack). Default: the Codec
    /// Zero's speaker output.
    #[arg(long, value_name = "CARD")]
    pub speaker: Option<String>,
    /// ALSA config file to write. Default: /etc/alsa/conf.d/60-chatterbox.conf, read by
    /// every user (needs sudo); ~/.asoundrc names the devices for one user only.
    #[arg(long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Only write the ALSA config; leave the mixer as it is.
    #[arg(long)]
    pub skip_mixer: bool,
}

/// What [`run`] will do, worked out from the card list alone.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub mic: Endpoint,
    pub speaker: Endpoint,
    /// The Codec Zero to receive [`ONBOARD_MIC_AND_SPEAKER`], if it is used at all.
    pub mixer_card: Option<AlsaCard>,
    pub conf: String,
    pub output: PathBuf,
}

/// Splits `"name,3"` into `("name", 3)`; a plain selector means device 0.
fn split_device(selector: &str) -> (&str, u32) {
    if let Some((card, dev)) = selector.rsplit_once(',') {
        if let Ok(d) = dev.trim().parse::<u32>() {
            return (card, d);
        }
    }
    (selector, 0)
}

/// Works out the endpoints, the mixer card and the config text. Pure. The output never
/// depends on `HOME`, which `sudo` resets to root's.
pub fn plan(cards: &[AlsaCard], opts: &SetupOptions) -> Result<Plan, SetupError> {
    let codec = find_codec_zero(cards);
    let need_codec = || {
        codec.ok_or_else(|| SetupError::NoCodecZero {
            found: describe(cards),
        })
    };
    let mut mixer_card = None;
    // No selector: the Codec Zero itself; otherwise the card the person named, as `CARD` or
    // `CARD,DEVICE`. Either way, a Codec Zero in use gets its mixer set up: unrouted, it
    // records silence and plays nothing.
    let mut endpoint =
        |selector: &Option<String>, codec_role: &str| -> Result<Endpoint, SetupError> {
            match selector {
                None => {
                    let c = need_codec()?;
                    mixer_card = Some(c.clone());
                    Ok(Endpoint {
                        card_id: c.id.clone(),
                        device: 0,
                        label: format!("{codec_role}, {c}"),
                    })
                }
                Some(sel) => {
                    let (card, device) = split_device(sel);
                    let c = select_card(cards, card)?;
                    if codec.is_some_and(|codec| codec.index == c.index) {
                        mixer_card = Some(c.clone());
                    }
                    Ok(Endpoint {
                        card_id: c.id.clone(),
                        device,
                        label: format!("{c}, device {device}"),
                    })
                }
            }
        };
    let mic = endpoint(&opts.mic, "Codec Zero onboard MEMS mic")?;
    let speaker = endpoint(&opts.speaker, "Codec Zero mono speaker output")?;
    if opts.skip_mixer {
        mixer_card = None;
    }
    let output = opts
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_OUTPUT));
    let conf = asound_conf(&mic, &speaker)?;
    Ok(Plan {
        mic,
        speaker,
        mixer_card,
        conf,
        output,
    })
}

/// How applying the mixer profile went.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ApplyReport {
    pub written: usize,
    /// Controls the card does not have (a different kernel may name a few differently).
    pub missing: Vec<&'static str>,
}

/// Sets every control of `profile` on `card` through the ALSA control interface (the way
/// `alsactl restore` does). Controls the card lacks are reported, not fatal, unless the card
/// has none of them — then it is not a Codec Zero.
pub fn apply_profile(card: &AlsaCard, profile: &[Setting]) -> Result<ApplyReport, SetupError> {
    use alsa::ctl::{ElemId, ElemIface, ElemType};
    let mixer_error = |source| SetupError::Mixer {
        card: card.to_string(),
        source,
    };
    let hctl = alsa::HCtl::new(&format!("hw:{}", card.index), false).map_err(mixer_error)?;
    hctl.load().map_err(mixer_error)?;
    let mut report = ApplyReport::default();
    for s in profile {
        let control_error = |reason: String| SetupError::Control {
            card: card.to_string(),
            control: s.control,
            reason,
        };
        let name = CString::new(s.control)
            .map_err(|_| control_error("control name contains a NUL byte".into()))?;
        let mut id = ElemId::new(ElemIface::Mixer);
        id.set_name(&name);
        let Some(elem) = hctl.find_elem(&id) else {
            report.missing.push(s.control);
            continue;
        };
        let info = elem.info().map_err(|e| control_error(e.to_string()))?;
        let mut value = elem.read().map_err(|e| control_error(e.to_string()))?;
        for ch in 0..info.get_count() {
            let set = match (info.get_type(), s.value) {
                (ElemType::Integer, Value::Int(v)) => {
                    i32::try_from(v).ok().and_then(|v| value.set_integer(ch, v))
                }
                (ElemType::Integer64, Value::Int(v)) => value.set_integer64(ch, v),
                (ElemType::Boolean, Value::Bool(b)) => value.set_boolean(ch, b),
                (ElemType::Enumerated, Value::Item { index, .. }) => {
                    value.set_enumerated(ch, index)
                }
                _ => None,
            };
            if set.is_none() {
                return Err(control_error(format!(
                    "the card's control is {:?}, the profile has {}",
                    info.get_type(),
                    s.value
                )));
            }
        }
        elem.write(&value)
            .map_err(|e| control_error(e.to_string()))?;
        report.written += 1;
    }
    if report.written == 0 && !profile.is_empty() {
        return Err(SetupError::NotACodecZero {
            card: card.to_string(),
        });
    }
    Ok(report)
}

/// Every sound card ALSA knows, with its id and name. An empty list is not an error.
pub fn list_cards() -> Result<Vec<AlsaCard>, SetupError> {
    let mut cards = Vec::new();
    for card in alsa::card::Iter::new() {
        let card = card.map_err(SetupError::ListCards)?;
        let ctl = alsa::Ctl::from_card(&card, false).map_err(SetupError::ListCards)?;
        let info = ctl.card_info().map_err(SetupError::ListCards)?;
        cards.push(AlsaCard {
            index: card.get_index(),
            id: info.get_id().map_err(SetupError::ListCards)?.to_string(),
            name: info.get_name().map_err(SetupError::ListCards)?.to_string(),
        });
    }
    Ok(cards)
}

/// `chatterbox setup-audio`: lists the cards, applies the mixer profile to the Codec Zero if
/// it is used, writes the ALSA config. Returns a report for the person running it; with
/// `dry_run` the report says what would be done and nothing changes.
pub fn run(opts: SetupOptions) -> Result<String, SetupError> {
    let cards = list_cards()?;
    let mut out = run_with(&cards, &opts, &mut apply_profile)?;
    if let Some(note) = legacy_note(Path::new(LEGACY_OUTPUT)) {
        out.push_str(&note);
    }
    Ok(out)
}

/// A warning when `path` is an `/etc/asound.conf` written by an older chatterbox, which
/// still sends every program's `default` to the Codec Zero. It is the owner's system file,
/// so it is pointed out, not removed (scripts/install.sh and uninstall.sh retire it).
fn legacy_note(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.starts_with(MARKER).then(|| {
        format!(
            "Note: {p} was written by an older chatterbox and still makes these cards every \
             program's default device. Remove it (sudo rm {p}); if \
             {p}.chatterbox-backup exists, that is the file it replaced.\n",
            p = path.display()
        )
    })
}

/// Something that applies a mixer profile to a card: [`apply_profile`], or a fake in tests.
pub type MixerApply<'a> = dyn FnMut(&AlsaCard, &[Setting]) -> Result<ApplyReport, SetupError> + 'a;

/// [`run`] with the card list, home directory and mixer given, so tests can drive it.
pub fn run_with(
    cards: &[AlsaCard],
    opts: &SetupOptions,
    apply: &mut MixerApply<'_>,
) -> Result<String, SetupError> {
    let plan = plan(cards, opts)?;
    // Refuse somebody else's file before changing anything.
    if !opts.dry_run {
        check_ours(&plan.output)?;
    }
    let mut out = String::new();
    let _ = writeln!(out, "Sound cards: {}", describe(cards));
    let _ = writeln!(out, "Microphone:  {}", plan.mic.label);
    let _ = writeln!(out, "Speaker:     {}", plan.speaker.label);
    match &plan.mixer_card {
        None => {
            let _ = writeln!(out, "Mixer: left as it is.");
        }
        Some(card) if opts.dry_run => {
            let _ = writeln!(
                out,
                "Mixer: would set {} controls on {card} (onboard mic record + speaker \
                 playback):",
                ONBOARD_MIC_AND_SPEAKER.len()
            );
            for s in ONBOARD_MIC_AND_SPEAKER {
                let _ = writeln!(out, "  '{}' = {}", s.control, s.value);
            }
        }
        Some(card) => {
            let report = apply(card, ONBOARD_MIC_AND_SPEAKER)?;
            let _ = writeln!(out, "Mixer: set {} controls on {card}.", report.written);
            if !report.missing.is_empty() {
                let _ = writeln!(
                    out,
                    "  warning: the card has no control named {}",
                    report.missing.join(", ")
                );
            }
            let _ = writeln!(
                out,
                "  To keep these settings after a reboot: sudo alsactl store"
            );
        }
    }
    if opts.dry_run {
        let _ = writeln!(out, "Would write {}:", plan.output.display());
        out.push_str(&plan.conf);
    } else {
        if write_conf(&plan.output, &plan.conf)? {
            let _ = writeln!(out, "Wrote {}.", plan.output.display());
        } else {
            let _ = writeln!(out, "{} is already up to date.", plan.output.display());
        }
        let _ = writeln!(
            out,
            "chatterbox's devices: {MIC_PCM} and {SPEAKER_PCM} (other programs keep their \
             default)."
        );
    }
    Ok(out)
}

/// Refuses a file at `path` that chatterbox did not write (no [`MARKER`] on its first
/// line): it is the owner's, or ours with the marker removed to keep an edit.
fn check_ours(path: &Path) -> Result<(), SetupError> {
    match std::fs::read(path) {
        Ok(old) if old.starts_with(MARKER.as_bytes()) => Ok(()),
        Ok(_) => Err(SetupError::NotOurs {
            path: path.to_path_buf(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(SetupError::Write {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes `text` to `path` atomically (temp file + rename), unless it holds `text` already;
/// returns whether it wrote. Only ever replaces a file of ours ([`check_ours`]). The ALSA
/// drop-in folder is created if missing (alsa-lib reads it whenever it exists).
fn write_conf(path: &Path, text: &str) -> Result<bool, SetupError> {
    let write_error = |source| SetupError::Write {
        path: path.to_path_buf(),
        source,
    };
    check_ours(path)?;
    if std::fs::read(path).is_ok_and(|old| old == text.as_bytes()) {
        return Ok(false);
    }
    if path == Path::new(DEFAULT_OUTPUT) {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(write_error)?;
        }
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".chatterbox-tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, text).map_err(write_error)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        write_error(e)
    })?;
    Ok(true)
}

/// Why `setup-audio` could not finish; each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("cannot list sound cards: {0}. Is ALSA installed (package libasound2)?")]
    ListCards(alsa::Error),
    #[error(
        "no Codec Zero sound card found (cards: {found}). Add `dtoverlay=rpi-codeczero` to \
         /boot/firmware/config.txt and reboot, or choose other cards with --mic and --speaker"
    )]
    NoCodecZero { found: String },
    #[error("no sound card matches '{wanted}' (cards: {found}). Use an index, an id or part of a name from `aplay -l`")]
    CardNotFound { wanted: String, found: String },
    #[error("'{wanted}' matches several cards ({matches}). Use the card's index or id instead")]
    AmbiguousCard { wanted: String, matches: String },
    #[error("'{0}' is not a usable ALSA card id (letters, digits, '_' and '-' only)")]
    BadCardId(String),
    #[error("{path} was not written by chatterbox (its first line is not \"{MARKER}\"), so it is left as it is. Move it aside and run setup-audio again, or give another --output")]
    NotOurs { path: PathBuf },
    #[error("cannot open the mixer of {card}: {source}. Is the card present, and is the user in the audio group?")]
    Mixer { card: String, source: alsa::Error },
    #[error("cannot set mixer control '{control}' on {card}: {reason}")]
    Control {
        card: String,
        control: &'static str,
        reason: String,
    },
    #[error("{card} has none of the Codec Zero's mixer controls, so it is not a Codec Zero. Choose cards with --mic and --speaker")]
    NotACodecZero { card: String },
    #[error(
        "cannot write {path}: {source}. The file under /etc is for every user: run \
         `sudo chatterbox setup-audio` (the mixer itself needs only the audio group), or \
         write ~/.asoundrc for one user with --output"
    )]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn pi_cards() -> Vec<AlsaCard> {
        vec![
            AlsaCard::new(0, "vc4hdmi0", "vc4-hdmi-0"),
            AlsaCard::new(1, "Headphones", "bcm2835 Headphones"),
            AlsaCard::new(2, "Zero", "Zero"),
            AlsaCard::new(3, "Device", "USB PnP Sound Device"),
        ]
    }

    #[test]
    fn options_parse_from_the_command_line() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            opts: SetupOptions,
        }
        let cli = Cli::try_parse_from([
            "setup-audio",
            "--dry-run",
            "--mic",
            "USB,1",
            "--speaker",
            "Headphones",
            "--output",
            "/etc/asound.conf",
            "--skip-mixer",
        ])
        .unwrap();
        assert_eq!(
            cli.opts,
            SetupOptions {
                dry_run: true,
                mic: Some("USB,1".into()),
                speaker: Some("Headphones".into()),
                output: Some("/etc/asound.conf".into()),
                skip_mixer: true,
            }
        );
        assert_eq!(
            Cli::try_parse_from(["setup-audio"]).unwrap().opts,
            SetupOptions::default()
        );
    }

    #[test]
    fn finds_the_codec_zero_under_any_of_its_names() {
        assert_eq!(find_codec_zero(&pi_cards()).unwrap().index, 2);
        let old = [
            AlsaCard::new(0, "Headphones", "bcm2835 Headphones"),
            AlsaCard::new(1, "IQaudIOCODEC", "IQaudIOCODEC"),
        ];
        assert_eq!(find_codec_zero(&old).unwrap().id, "IQaudIOCODEC");
        let lower = [AlsaCard::new(4, "card4", "RPi Codec Zero")];
        assert_eq!(find_codec_zero(&lower).unwrap().index, 4);
        let none = [
            AlsaCard::new(0, "Headphones", "bcm2835 Headphones"),
            AlsaCard::new(1, "Device", "USB Audio CODEC"),
        ];
        assert!(find_codec_zero(&none).is_none());
        assert!(find_codec_zero(&[]).is_none());
    }

    #[test]
    fn selects_cards_by_index_id_or_name() {
        let cards = pi_cards();
        assert_eq!(select_card(&cards, "3").unwrap().id, "Device");
        assert_eq!(select_card(&cards, "headphones").unwrap().index, 1);
        assert_eq!(select_card(&cards, "USB").unwrap().index, 3);
        let e = select_card(&cards, "9").unwrap_err().to_string();
        assert!(e.contains("'9'") && e.contains("Headphones"), "{e}");
        let e = select_card(&cards, "hifiberry").unwrap_err().to_string();
        assert!(e.contains("no sound card"), "{e}");
        let two = [
            AlsaCard::new(0, "A", "USB mic"),
            AlsaCard::new(1, "B", "USB speaker"),
        ];
        let e = select_card(&two, "usb").unwrap_err().to_string();
        assert!(e.contains("several"), "{e}");
    }

    #[test]
    fn profile_matches_the_published_state_file() {
        let p = ONBOARD_MIC_AND_SPEAKER;
        // The state file sets 97 controls; each exactly once here.
        assert_eq!(p.len(), 97);
        let names: HashSet<_> = p.iter().map(|s| s.control).collect();
        assert_eq!(names.len(), p.len(), "a control is listed twice");
        let get = |n: &str| p.iter().find(|s| s.control == n).unwrap().value;
        // The settings that make the onboard mic and the speaker work.
        assert_eq!(get("Onboard MIC Switch"), Value::Bool(true));
        assert_eq!(get("Mic 2 Volume"), Value::Int(5));
        assert_eq!(get("Mic 2 Switch"), Value::Bool(true));
        assert_eq!(get("Mic 1 Switch"), Value::Bool(false));
        assert_eq!(get("Mixin Left Mic 2 Switch"), Value::Bool(true));
        assert_eq!(get("Mixin Right Mic 2 Switch"), Value::Bool(true));
        assert_eq!(get("ADC Volume"), Value::Int(114));
        assert_eq!(get("DAC Volume"), Value::Int(112));
        assert_eq!(get("DAC Mono Switch"), Value::Bool(true));
        assert_eq!(get("Lineout Volume"), Value::Int(48));
        assert_eq!(get("Lineout Switch"), Value::Bool(true));
        assert_eq!(get("Headphone Switch"), Value::Bool(false));
        assert_eq!(get("Aux Switch"), Value::Bool(false));
        assert!(matches!(
            get("DAC Right Source MUX"),
            Value::Item {
                index: 3,
                name: "DAI Input Right"
            }
        ));
        // Nothing else routes into the speaker.
        for s in p.iter().filter(|s| s.control.starts_with("Mixout")) {
            let want =
                s.control.ends_with("DAC Left Switch") || s.control.ends_with("DAC Right Switch");
            assert_eq!(s.value, Value::Bool(want), "{}", s.control);
        }
    }

    fn usb_and_jack() -> (Endpoint, Endpoint) {
        let mic = Endpoint {
            card_id: "Device".into(),
            device: 0,
            label: "USB mic".into(),
        };
        let spk = Endpoint {
            card_id: "Headphones".into(),
            device: 0,
            label: "3.5 mm jack".into(),
        };
        (mic, spk)
    }

    #[test]
    fn conf_names_two_plugs_and_leaves_every_default_alone() {
        let (mic, spk) = usb_and_jack();
        let c = asound_conf(&mic, &spk).unwrap();
        assert!(c.starts_with(MARKER));
        // Other programs keep their default device: nothing is overridden.
        let settings: Vec<&str> = c.lines().filter(|l| !l.starts_with('#')).collect();
        assert!(
            !settings
                .iter()
                .any(|l| l.contains('!') || l.contains("default")),
            "{c}"
        );
        let mic_block = &c
            [c.find("pcm.chatterbox_mic {").unwrap()..c.find("pcm.chatterbox_speaker {").unwrap()];
        assert!(mic_block.contains("type plug") && mic_block.contains("\"hw:CARD=Device,DEV=0\""));
        let spk_block = &c[c.find("pcm.chatterbox_speaker {").unwrap()..];
        assert!(spk_block.contains("type plug"));
        assert!(spk_block.contains("\"hw:CARD=Headphones,DEV=0\""));
        // Braces balance, so alsa-lib will parse it.
        assert_eq!(c.matches('{').count(), c.matches('}').count());

        let evil = Endpoint {
            card_id: "x\" }\npcm.!default {".into(),
            ..mic
        };
        assert!(matches!(
            asound_conf(&evil, &spk),
            Err(SetupError::BadCardId(_))
        ));
    }

    #[test]
    fn the_config_opens_the_names_the_file_defines() {
        let audio = crate::config::Config::default().audio;
        assert_eq!(audio.capture_device, MIC_PCM);
        assert_eq!(audio.playback_device, SPEAKER_PCM);
        let (mic, spk) = usb_and_jack();
        let c = asound_conf(&mic, &spk).unwrap();
        assert!(c.contains(&format!("pcm.{MIC_PCM} {{")));
        assert!(c.contains(&format!("pcm.{SPEAKER_PCM} {{")));
    }

    #[test]
    fn alsa_lib_parses_the_generated_conf() {
        // `aplay -L` lists the PCMs alsa-lib found; a file it cannot parse is dropped with
        // an error and our PCMs are missing from the list. The text is the same wherever
        // it is written, so it goes into a private ~/.asoundrc (never a system file).
        let Ok(probe) = std::process::Command::new("aplay")
            .arg("--version")
            .output()
        else {
            eprintln!("skipped: aplay (alsa-utils) is not installed");
            return;
        };
        assert!(probe.status.success());
        let home = tempfile::tempdir().unwrap();
        let p = plan(&pi_cards(), &SetupOptions::default()).unwrap();
        std::fs::write(home.path().join(".asoundrc"), &p.conf).unwrap();
        let out = std::process::Command::new("aplay")
            .arg("-L")
            .env("HOME", home.path())
            .env_remove("ALSA_CONFIG_PATH")
            .output()
            .unwrap();
        let listed = String::from_utf8_lossy(&out.stdout);
        let errors = String::from_utf8_lossy(&out.stderr);
        assert!(
            listed.lines().any(|l| l == MIC_PCM) && listed.lines().any(|l| l == SPEAKER_PCM),
            "alsa-lib did not load the config:\n{errors}\n{listed}"
        );
        assert!(!errors.contains("asoundrc"), "{errors}");
    }

    #[test]
    fn plan_defaults_to_the_codec_zero_its_mixer_and_the_system_drop_in() {
        let p = plan(&pi_cards(), &SetupOptions::default()).unwrap();
        assert_eq!(p.mic.card_id, "Zero");
        assert_eq!(p.speaker.card_id, "Zero");
        assert_eq!(p.mixer_card.as_ref().unwrap().index, 2);
        // The same file for every user: `sudo` (which sets HOME to /root) changes nothing.
        assert_eq!(p.output, Path::new("/etc/alsa/conf.d/60-chatterbox.conf"));
        assert!(p.conf.contains("hw:CARD=Zero,DEV=0"));
    }

    #[test]
    fn naming_the_codec_zero_still_sets_its_mixer() {
        for (mic, speaker) in [
            (None, Some("Zero")),
            (Some("2"), None),
            (Some("zero,0"), Some("2,0")),
            (Some("USB"), Some("Zero")),
        ] {
            let opts = SetupOptions {
                mic: mic.map(str::to_string),
                speaker: speaker.map(str::to_string),
                ..Default::default()
            };
            let p = plan(&pi_cards(), &opts).unwrap();
            assert_eq!(
                p.mixer_card.map(|c| c.id),
                Some("Zero".to_string()),
                "--mic {mic:?} --speaker {speaker:?}"
            );
        }
        // --skip-mixer still wins.
        let opts = SetupOptions {
            speaker: Some("Zero".into()),
            skip_mixer: true,
            ..Default::default()
        };
        assert!(plan(&pi_cards(), &opts).unwrap().mixer_card.is_none());
    }

    #[test]
    fn plan_for_usb_mic_and_jack_leaves_the_mixer_alone() {
        let opts = SetupOptions {
            mic: Some("USB".into()),
            speaker: Some("1,0".into()),
            output: Some("/home/pi/.asoundrc".into()),
            ..Default::default()
        };
        let p = plan(&pi_cards(), &opts).unwrap();
        assert_eq!(p.mic.card_id, "Device");
        assert_eq!(p.speaker.card_id, "Headphones");
        assert!(p.mixer_card.is_none());
        assert_eq!(p.output, Path::new("/home/pi/.asoundrc"));

        // Codec Zero mic with the jack as speaker still sets the Codec Zero mixer.
        let opts = SetupOptions {
            speaker: Some("Headphones".into()),
            ..Default::default()
        };
        let p = plan(&pi_cards(), &opts).unwrap();
        assert_eq!(p.mixer_card.unwrap().id, "Zero");
        assert_eq!(p.speaker.card_id, "Headphones");
    }

    #[test]
    fn plan_without_a_codec_zero_says_how_to_enable_it() {
        let e = plan(&[], &SetupOptions::default()).unwrap_err();
        let m = e.to_string();
        assert!(
            m.contains("dtoverlay=rpi-codeczero") && m.contains("cards: none"),
            "{m}"
        );
    }

    #[test]
    fn dry_run_changes_nothing_and_shows_everything() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("asound.conf");
        let opts = SetupOptions {
            dry_run: true,
            output: Some(out.clone()),
            ..Default::default()
        };
        let mut calls = 0;
        let report = run_with(&pi_cards(), &opts, &mut |_, _| {
            calls += 1;
            Ok(ApplyReport::default())
        })
        .unwrap();
        assert_eq!(calls, 0, "dry run touched the mixer");
        assert!(!out.exists(), "dry run wrote the config");
        assert!(report.contains("'Mic 2 Volume' = 5"), "{report}");
        assert!(report.contains("pcm.chatterbox_mic"), "{report}");
    }

    fn files_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn run_applies_mixer_writes_conf_and_a_second_run_is_a_no_op() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("60-chatterbox.conf");
        let opts = SetupOptions {
            output: Some(out.clone()),
            ..Default::default()
        };
        let mut applied = Vec::new();
        let mut apply = |card: &AlsaCard, profile: &[Setting]| {
            applied.push((card.id.clone(), profile.len()));
            Ok(ApplyReport {
                written: profile.len() - 1,
                missing: vec!["DMIC Switch"],
            })
        };
        let report = run_with(&pi_cards(), &opts, &mut apply).unwrap();
        assert_eq!(applied, vec![("Zero".to_string(), 97)]);
        assert!(report.contains("set 96 controls"), "{report}");
        assert!(report.contains("DMIC Switch"), "{report}");
        let written = std::fs::read_to_string(&out).unwrap();
        assert!(written.starts_with(MARKER));
        assert_eq!(files_in(dir.path()), vec!["60-chatterbox.conf"]);

        // An unchanged file is not even rewritten (the installer's second run is a no-op).
        let mtime = std::fs::metadata(&out).unwrap().modified().unwrap();
        let opts = SetupOptions {
            skip_mixer: true,
            ..opts
        };
        let report = run_with(&pi_cards(), &opts, &mut |_, _| unreachable!()).unwrap();
        assert!(report.contains("already up to date"), "{report}");
        assert_eq!(std::fs::metadata(&out).unwrap().modified().unwrap(), mtime);

        // A stale file of ours (other cards) is replaced, with no copy left behind.
        let jack = SetupOptions {
            speaker: Some("Headphones".into()),
            ..opts
        };
        run_with(&pi_cards(), &jack, &mut |_, _| unreachable!()).unwrap();
        let replaced = std::fs::read_to_string(&out).unwrap();
        assert!(replaced.contains("hw:CARD=Headphones,DEV=0"), "{replaced}");
        assert_eq!(files_in(dir.path()), vec!["60-chatterbox.conf"]);
    }

    #[test]
    fn a_file_chatterbox_did_not_write_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join(".asoundrc");
        let opts = SetupOptions {
            output: Some(out.clone()),
            ..Default::default()
        };
        let refuse = |opts: &SetupOptions| {
            let mut calls = 0;
            let e = run_with(&pi_cards(), opts, &mut |_, _| {
                calls += 1;
                Ok(ApplyReport::default())
            })
            .unwrap_err();
            assert_eq!(calls, 0, "the mixer was changed before refusing");
            e
        };

        // The owner's own file, run twice: untouched both times, no backup to mix up.
        let owners = "pcm.!default { type hw card 1 }\n";
        std::fs::write(&out, owners).unwrap();
        for _ in 0..2 {
            let e = refuse(&opts);
            assert!(matches!(e, SetupError::NotOurs { .. }), "{e}");
            let m = e.to_string();
            assert!(m.contains(".asoundrc") && m.contains("--output"), "{m}");
            assert_eq!(std::fs::read_to_string(&out).unwrap(), owners);
            assert_eq!(files_in(dir.path()), vec![".asoundrc"]);
        }

        // Our file, edited and the marker line deleted to keep the edit, as it says: kept.
        std::fs::remove_file(&out).unwrap();
        run_with(&pi_cards(), &opts, &mut |_, p| {
            Ok(ApplyReport {
                written: p.len(),
                missing: vec![],
            })
        })
        .unwrap();
        let ours = std::fs::read_to_string(&out).unwrap();
        let edited = ours
            .lines()
            .skip(1)
            .map(|l| l.replace("DEV=0", "DEV=1") + "\n")
            .collect::<String>();
        std::fs::write(&out, &edited).unwrap();
        refuse(&opts);
        assert_eq!(std::fs::read_to_string(&out).unwrap(), edited);
        assert_eq!(files_in(dir.path()), vec![".asoundrc"]);
    }

    #[test]
    fn write_errors_name_the_file_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let opts = SetupOptions {
            output: Some(dir.path().join("missing-dir").join("asound.conf")),
            skip_mixer: true,
            ..Default::default()
        };
        let e = run_with(&pi_cards(), &opts, &mut |_, _| unreachable!()).unwrap_err();
        let m = e.to_string();
        assert!(m.contains("missing-dir") && m.contains("sudo"), "{m}");
    }

    #[test]
    fn an_asound_conf_from_an_older_version_is_pointed_out() {
        let dir = tempfile::tempdir().unwrap();
        let legacy = dir.path().join("asound.conf");
        assert_eq!(legacy_note(&legacy), None, "no file");
        std::fs::write(&legacy, "defaults.pcm.card 1\n").unwrap();
        assert_eq!(legacy_note(&legacy), None, "the owner's file");
        std::fs::write(&legacy, format!("{MARKER} old\npcm.!default {{ }}\n")).unwrap();
        let note = legacy_note(&legacy).unwrap();
        assert!(
            note.contains("sudo rm") && note.contains("asound.conf"),
            "{note}"
        );
    }

    #[test]
    fn opening_our_names_before_setup_audio_says_to_run_it() {
        for name in [MIC_PCM, SPEAKER_PCM] {
            let e = crate::audio::alsa_backend::map_open_error(
                name,
                alsa::Error::new("snd_pcm_open", -libc::ENOENT),
            );
            let m = e.to_string();
            assert!(m.contains(name) && m.contains("setup-audio"), "{m}");
        }
        assert!(missing_pcm_hint("hw:Zero").is_none());
    }

    #[test]
    fn applying_to_a_card_that_is_not_there_is_an_error_naming_it() {
        let ghost = AlsaCard::new(29, "Ghost", "no such card");
        let e = apply_profile(&ghost, ONBOARD_MIC_AND_SPEAKER).unwrap_err();
        assert!(matches!(e, SetupError::Mixer { .. }), "{e}");
        let m = e.to_string();
        assert!(m.contains("card 29") && m.contains("audio group"), "{m}");
    }

    #[test]
    fn listing_cards_works_without_any() {
        // This machine may have no sound card at all: that is an empty list, not an error.
        let cards = list_cards().unwrap();
        for c in &cards {
            assert!(c.index >= 0 && !c.id.is_empty());
        }
    }
}
