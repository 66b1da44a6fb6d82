//! Listing sound devices and what they can do — the data behind `chatterbox devices`.
//!
//! Two sources, as `aplay -l` and `aplay -L` show them:
//! * **cards** and their PCM devices (`hw:CARD=Zero,DEV=0`): the hardware;
//! * **PCM names** from the ALSA configuration (`default`, `plughw:...`, and whatever
//!   `~/.asoundrc` defines): what programs usually open.
//!
//! Each is probed for both directions: which S16_LE rates/channels it really accepts (see
//! [`alsa_backend::supported_modes`](super::alsa_backend::supported_modes)), so the report
//! can say which device can serve as the microphone and which as the speaker, and with
//! which config values.
use std::fmt::Write as _;

use alsa::pcm::{Format, HwParams};

use super::alsa_backend::{describe_modes, open_pcm, supported_modes};
use super::pcm::{AudioError, PcmFormat};

/// Stream direction (our own type so callers need not depend on the `alsa` crate).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// A microphone: the device delivers audio.
    Capture,
    /// A speaker: the device accepts audio.
    Playback,
}

impl Direction {
    fn to_alsa(self) -> alsa::Direction {
        match self {
            Direction::Capture => alsa::Direction::Capture,
            Direction::Playback => alsa::Direction::Playback,
        }
    }
}

/// What a device can do in one direction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caps {
    /// Sample formats the device advertises (ALSA names, e.g. `S16_LE`, `S32_LE`).
    pub formats: Vec<String>,
    /// Advertised channel range.
    pub channels_min: u32,
    pub channels_max: u32,
    /// Advertised rate range (Hz).
    pub rate_min: u32,
    pub rate_max: u32,
    /// S16_LE modes verified by actually configuring the device: the ones chatterbox can use.
    pub modes: Vec<PcmFormat>,
}

impl Caps {
    /// Can chatterbox use this device at all (some S16_LE mode works)?
    pub fn usable(&self) -> bool {
        !self.modes.is_empty()
    }
}

/// One device, as found in the card list or the configuration.
#[derive(Clone, Debug)]
pub struct DeviceInfo {
    /// Name to put in the config (`hw:CARD=Zero,DEV=0`, `default`, `cb_mic`).
    pub name: String,
    /// Human description (card long name or the config's hint).
    pub description: String,
    /// True for a card's hardware device, false for a configured PCM name.
    pub hardware: bool,
    /// Capture capabilities, or why they could not be probed (busy, not a capture device).
    pub capture: Result<Caps, String>,
    /// Playback capabilities, or why not.
    pub playback: Result<Caps, String>,
}

impl DeviceInfo {
    pub fn can_capture(&self) -> bool {
        self.capture.as_ref().is_ok_and(Caps::usable)
    }
    pub fn can_play(&self) -> bool {
        self.playback.as_ref().is_ok_and(Caps::usable)
    }
}

const FORMATS: [(Format, &str); 8] = [
    (Format::S16LE, "S16_LE"),
    (Format::S24LE, "S24_LE"),
    (Format::S243LE, "S24_3LE"),
    (Format::S32LE, "S32_LE"),
    (Format::FloatLE, "FLOAT_LE"),
    (Format::U8, "U8"),
    (Format::S8, "S8"),
    (Format::S16BE, "S16_BE"),
];

/// Probes one device in one direction: advertised ranges plus verified S16_LE modes.
pub fn probe(device: &str, direction: Direction) -> Result<Caps, AudioError> {
    let dir = direction.to_alsa();
    let mut caps = {
        let pcm = open_pcm(device, dir)?;
        let hwp = HwParams::any(&pcm).map_err(|e| AudioError::Other {
            device: device.to_string(),
            detail: format!("cannot read its parameters: {e}"),
        })?;
        Caps {
            formats: FORMATS
                .iter()
                .filter(|(f, _)| hwp.test_format(*f).is_ok())
                .map(|(_, n)| n.to_string())
                .collect(),
            channels_min: hwp.get_channels_min().unwrap_or(0),
            channels_max: hwp.get_channels_max().unwrap_or(0),
            rate_min: hwp.get_rate_min().unwrap_or(0),
            rate_max: hwp.get_rate_max().unwrap_or(0),
            modes: Vec::new(),
        }
    };
    caps.modes = supported_modes(device, dir)?;
    Ok(caps)
}

/// Lists hardware devices (every card's PCM devices) and configured PCM names, each probed
/// in both directions. Never fails: problems end up in the entries' `capture`/`playback`.
pub fn list_devices() -> Vec<DeviceInfo> {
    let mut out: Vec<DeviceInfo> = Vec::new();
    for card in alsa::card::Iter::new().flatten() {
        let index = card.get_index();
        let card_name = card.get_name().unwrap_or_else(|_| format!("card {index}"));
        let long = card.get_longname().unwrap_or_else(|_| card_name.clone());
        let Ok(ctl) = alsa::Ctl::from_card(&card, false) else {
            continue;
        };
        let id = ctl
            .card_info()
            .ok()
            .and_then(|i| i.get_id().ok().map(str::to_string))
            .unwrap_or_else(|| index.to_string());
        for dev in alsa::ctl::DeviceIter::new(&ctl) {
            let name = format!("hw:CARD={id},DEV={dev}");
            out.push(probe_both(
                name,
                format!("{long} (card {index}, device {dev})"),
                true,
            ));
        }
    }
    if let Ok(hints) = alsa::device_name::HintIter::new_str(None, "pcm") {
        for hint in hints {
            let Some(name) = hint.name else { continue };
            if out.iter().any(|d| d.name == name) {
                continue;
            }
            let description = hint
                .desc
                .map(|d| d.replace('\n', " — "))
                .unwrap_or_default();
            let mut info = probe_both(name, description, false);
            // Hints that say "Input"/"Output" only are one-way devices.
            match hint.direction {
                Some(alsa::Direction::Capture) => {
                    info.playback = Err("capture only (per its ALSA hint)".into())
                }
                Some(alsa::Direction::Playback) => {
                    info.capture = Err("playback only (per its ALSA hint)".into())
                }
                None => {}
            }
            out.push(info);
        }
    }
    out
}

fn probe_both(name: String, description: String, hardware: bool) -> DeviceInfo {
    let capture = probe(&name, Direction::Capture).map_err(|e| e.to_string());
    let playback = probe(&name, Direction::Playback).map_err(|e| e.to_string());
    DeviceInfo {
        name,
        description,
        hardware,
        capture,
        playback,
    }
}

/// The text `chatterbox devices` prints: hardware first, then configured names, each with
/// what it can do and whether it can serve as microphone / speaker.
pub fn render_report(devices: &[DeviceInfo]) -> String {
    let mut s = String::new();
    if devices.is_empty() {
        s.push_str(
            "No sound devices found.\n\
             On the Pi, check that /boot/firmware/config.txt has `dtoverlay=rpi-codeczero` \
             (Codec Zero) and reboot; `aplay -l` should then list the card.\n",
        );
        return s;
    }
    for (title, hardware) in [("Sound cards", true), ("Configured PCM names", false)] {
        let group: Vec<&DeviceInfo> = devices.iter().filter(|d| d.hardware == hardware).collect();
        if group.is_empty() {
            continue;
        }
        let _ = writeln!(s, "{title}:");
        for d in group {
            let roles = match (d.can_capture(), d.can_play()) {
                (true, true) => "microphone and speaker",
                (true, false) => "microphone",
                (false, true) => "speaker",
                (false, false) => "not usable",
            };
            let _ = writeln!(s, "  {}  [{roles}]", d.name);
            if !d.description.is_empty() {
                let _ = writeln!(s, "      {}", d.description);
            }
            for (label, caps) in [("capture", &d.capture), ("playback", &d.playback)] {
                match caps {
                    Ok(c) => {
                        let _ = writeln!(
                            s,
                            "      {label:8}: {}; formats {}; {}; {}",
                            if c.usable() {
                                format!("S16_LE at {}", describe_modes(&c.modes))
                            } else {
                                "no S16_LE mode chatterbox can use".to_string()
                            },
                            if c.formats.is_empty() {
                                "?".to_string()
                            } else {
                                c.formats.join(",")
                            },
                            range(c.channels_min, c.channels_max, 1024, "ch"),
                            range(c.rate_min, c.rate_max, 10_000_000, "Hz"),
                        );
                    }
                    Err(e) => {
                        let _ = writeln!(s, "      {label:8}: unavailable ({e})");
                    }
                }
            }
        }
    }
    let mics: Vec<&str> = devices
        .iter()
        .filter(|d| d.can_capture())
        .map(|d| d.name.as_str())
        .collect();
    let speakers: Vec<&str> = devices
        .iter()
        .filter(|d| d.can_play())
        .map(|d| d.name.as_str())
        .collect();
    let _ = writeln!(
        s,
        "\nCan serve as microphone: {}",
        if mics.is_empty() {
            "none".to_string()
        } else {
            mics.join(", ")
        }
    );
    let _ = writeln!(
        s,
        "Can serve as speaker:    {}",
        if speakers.is_empty() {
            "none".to_string()
        } else {
            speakers.join(", ")
        }
    );
    s
}

/// "1-2 ch", or "any ch" when a plugin advertises an absurd range (it converts anything).
fn range(min: u32, max: u32, absurd: u32, unit: &str) -> String {
    if max >= absurd {
        format!("any {unit}")
    } else if min == max {
        format!("{min} {unit}")
    } else {
        format!("{min}-{max} {unit}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(modes: Vec<PcmFormat>) -> Caps {
        Caps {
            formats: vec!["S16_LE".into()],
            channels_min: 1,
            channels_max: 2,
            rate_min: 8000,
            rate_max: 48000,
            modes,
        }
    }

    #[test]
    fn report_says_which_device_is_mic_and_which_speaker() {
        let m16 = PcmFormat {
            rate: 16000,
            channels: 1,
        };
        let devices = vec![
            DeviceInfo {
                name: "hw:CARD=Zero,DEV=0".into(),
                description: "IQaudIO Codec Zero".into(),
                hardware: true,
                capture: Ok(caps(vec![m16])),
                playback: Err("audio device busy".into()),
            },
            DeviceInfo {
                name: "spk".into(),
                description: String::new(),
                hardware: false,
                capture: Ok(caps(vec![])),
                playback: Ok(caps(vec![m16])),
            },
        ];
        let r = render_report(&devices);
        assert!(r.contains("hw:CARD=Zero,DEV=0  [microphone]"), "{r}");
        assert!(r.contains("spk  [speaker]"), "{r}");
        assert!(r.contains("unavailable (audio device busy)"), "{r}");
        assert!(
            r.contains("S16_LE at 16000 Hz (1 ch); formats S16_LE; 1-2 ch; 8000-48000 Hz"),
            "{r}"
        );
        assert!(
            r.contains("Can serve as microphone: hw:CARD=Zero,DEV=0\n"),
            "{r}"
        );
        assert!(r.contains("Can serve as speaker:    spk\n"), "{r}");
        assert!(render_report(&[]).contains("dtoverlay=rpi-codeczero"));
    }
}
