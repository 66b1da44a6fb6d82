//! The order of recordings: by a sequence number in the name, never by the wall clock.
//!
//! A Raspberry Pi has no real-time clock. After a power cut it may boot with the time of its
//! last shutdown until the network sets it, and the hour repeated when summer time ends
//! comes round twice, so names made from local time do not sort in recording order — and
//! "yes" (play the newest) would play the wrong clip. Each new clip's name therefore starts
//! with a number one higher than any clip in the folder (`00012_2026-11-23_14-05-09_voice.wav`);
//! the time stays in the name for people. Clips from before this scheme (no number) are
//! older than every numbered one and keep their name order among themselves.

use std::cmp::Ordering;

/// The sequence number at the start of a clip name (`00012_…` → 12), if it has one: ASCII
/// digits followed by `_`. A date (`2026-11-23_…`) is not a sequence number.
pub fn sequence_of(name: &str) -> Option<u64> {
    let (digits, _) = name.split_once('_')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Recording order: clips without a number first (by name), then by number (then name).
pub fn recording_order(a: &str, b: &str) -> Ordering {
    let key = |n: &str| (sequence_of(n), n.to_string());
    key(a).cmp(&key(b))
}

/// Sorts clip names into recording order, oldest first, and drops duplicates.
pub fn sort_clips(names: &mut Vec<String>) {
    names.sort_by(|a, b| recording_order(a, b));
    names.dedup();
}

/// The number for the next clip: one more than the highest in `names` (1 for none).
pub fn next_sequence<'a>(names: impl IntoIterator<Item = &'a str>) -> u64 {
    names
        .into_iter()
        .filter_map(sequence_of)
        .max()
        .map_or(1, |n| n.saturating_add(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_read_only_from_a_digit_prefix() {
        assert_eq!(sequence_of("00012_2026-11-23_14-05-09_voice.wav"), Some(12));
        assert_eq!(sequence_of("7_x.wav"), Some(7));
        assert_eq!(sequence_of("2026-11-23_14-05-09_voice.wav"), None);
        assert_eq!(sequence_of("_x.wav"), None);
        assert_eq!(sequence_of("12a_x.wav"), None);
        assert_eq!(sequence_of("a.wav"), None);
        assert_eq!(sequence_of("99999999999999999999999_x.wav"), None);
    }

    #[test]
    fn numbered_clips_follow_their_numbers_whatever_their_times() {
        let mut names: Vec<String> = [
            // Recorded after a power cut, with the clock a year behind.
            "00003_2025-01-01_00-00-07_voice.wav",
            "00010_2026-10-25_02-30-00_voice.wav",
            // The repeated hour at the end of summer time: same stamp, later clip.
            "00011_2026-10-25_02-30-00_voice.wav",
            "00002_2026-11-23_14-05-09_voice.wav",
            "2026-11-20_09-00-00_voice.wav",
            "2026-11-19_09-00-00_voice.wav",
        ]
        .map(String::from)
        .to_vec();
        sort_clips(&mut names);
        assert_eq!(
            names,
            [
                "2026-11-19_09-00-00_voice.wav",
                "2026-11-20_09-00-00_voice.wav",
                "00002_2026-11-23_14-05-09_voice.wav",
                "00003_2025-01-01_00-00-07_voice.wav",
                "00010_2026-10-25_02-30-00_voice.wav",
                "00011_2026-10-25_02-30-00_voice.wav",
            ]
        );
        assert_eq!(next_sequence(names.iter().map(String::as_str)), 12);
    }

    #[test]
    fn numbers_go_past_their_padding_in_order() {
        let mut names = vec!["100000_b.wav".to_string(), "99999_a.wav".to_string()];
        sort_clips(&mut names);
        assert_eq!(names, ["99999_a.wav", "100000_b.wav"]);
        assert_eq!(next_sequence([]), 1);
        assert_eq!(next_sequence(["old.wav"]), 1);
    }
}
