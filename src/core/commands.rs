//! Voice commands: what each recognized word makes the toy do.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Something a spoken word can ask for. The same actions the button drives, plus the
/// ones a button cannot express (volume, previous/next).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VoiceCommand {
    /// Play a random clip (like a short press).
    PlayRandom,
    /// Stop whatever is playing.
    Stop,
    VolumeUp,
    VolumeDown,
    /// Play the clip before the last one played, in recording order.
    Previous,
    /// Play the clip after the last one played, in recording order.
    Next,
    /// Play the most recent recording.
    PlayNewest,
    /// Stop playback, or abandon an erase that is waiting for the button's release.
    Cancel,
    /// Recognized, shown on the screen, but does nothing.
    Ignore,
}

impl VoiceCommand {
    /// Every command, for error messages that list the allowed values.
    pub const ALL: [VoiceCommand; 9] = [
        VoiceCommand::PlayRandom,
        VoiceCommand::Stop,
        VoiceCommand::VolumeUp,
        VoiceCommand::VolumeDown,
        VoiceCommand::Previous,
        VoiceCommand::Next,
        VoiceCommand::PlayNewest,
        VoiceCommand::Cancel,
        VoiceCommand::Ignore,
    ];

    /// The name used in the config file.
    pub fn name(self) -> &'static str {
        match self {
            VoiceCommand::PlayRandom => "play-random",
            VoiceCommand::Stop => "stop",
            VoiceCommand::VolumeUp => "volume-up",
            VoiceCommand::VolumeDown => "volume-down",
            VoiceCommand::Previous => "previous",
            VoiceCommand::Next => "next",
            VoiceCommand::PlayNewest => "play-newest",
            VoiceCommand::Cancel => "cancel",
            VoiceCommand::Ignore => "ignore",
        }
    }
}

impl fmt::Display for VoiceCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Word → command. Words the map does not name do nothing (they are still shown).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CommandMap(pub BTreeMap<String, VoiceCommand>);

impl Default for CommandMap {
    /// The documented defaults: go → play, stop → stop, up/down → volume, left/right →
    /// previous/next, yes → newest, no → cancel.
    fn default() -> Self {
        let pairs = [
            ("go", VoiceCommand::PlayRandom),
            ("stop", VoiceCommand::Stop),
            ("up", VoiceCommand::VolumeUp),
            ("down", VoiceCommand::VolumeDown),
            ("left", VoiceCommand::Previous),
            ("right", VoiceCommand::Next),
            ("yes", VoiceCommand::PlayNewest),
            ("no", VoiceCommand::Cancel),
        ];
        CommandMap(pairs.into_iter().map(|(w, c)| (w.to_string(), c)).collect())
    }
}

impl CommandMap {
    /// The command for `word`, if any.
    pub fn lookup(&self, word: &str) -> Option<VoiceCommand> {
        self.0.get(word).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_cover_every_keyword() {
        let map = CommandMap::default();
        for w in ["go", "down", "up", "stop", "yes", "left", "right", "no"] {
            assert!(map.lookup(w).is_some(), "{w} has no default command");
        }
        assert_eq!(map.lookup("silence"), None);
        assert_eq!(map.lookup("no"), Some(VoiceCommand::Cancel));
    }

    #[test]
    fn names_round_trip_through_serde() {
        for c in VoiceCommand::ALL {
            let s = toml::to_string(&BTreeMap::from([("k", c)])).unwrap();
            assert!(s.contains(c.name()), "{s}");
            let back: BTreeMap<String, VoiceCommand> = toml::from_str(&s).unwrap();
            assert_eq!(back["k"], c);
        }
    }
}
