//! `chatterbox enroll`: the owner records each keyword a few times, so the model can be
//! fine-tuned on, and evaluated against, the one voice it must understand.
//!
//! Takes are saved as 1 s, 16 kHz mono WAVs — the model's own input — in the layout of
//! Google's Speech Commands data set, `DIR/<word>/owner_nohash_<timestamp>-<take>.wav`,
//! so the training script takes the folder as it is (`--speech-commands DIR`). Every third
//! take is listed in `DIR/testing_list.txt`: the trainer keeps those out of training, and
//! they measure how well the retrained model knows the owner's voice. Each take is cut to
//! the loudest second of a longer recording, so the person need not speak on an exact beat.
//! The words that are not commands (said once each after the keywords) go to `DIR/unknown/`,
//! numbered 1..=n as the takes of one word, so every third of them is held out too.

use std::path::{Path, PathBuf};

use crate::audio::library::{ClipWriter, LibraryError};
use crate::audio::wav::{convert, Clip, WavError};
use crate::audio::PcmFormat;

/// The model's sample rate and window.
pub const RATE: u32 = 16_000;
pub const TAKE_SAMPLES: usize = 16_000;

/// Why a take could not be kept.
#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    #[error(transparent)]
    Wav(#[from] WavError),
    /// A take could not be saved (it is not a clip of the recordings folder, so the
    /// library's advice about `library.recordings_dir` does not apply).
    #[error("cannot save the take in {dir}: {reason}. Free some space (df -h), or give the toy's user that folder; takes go to <keywords.state_dir>/enroll on the toy (installed: /var/lib/chatterbox/enroll, owned by user chatterbox), and to --dir for `chatterbox enroll`")]
    Save { dir: PathBuf, reason: String },
    /// The take itself is unusable; say it again (see [`Refusal`]).
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("'{word}' is not a word the model knows; choose from: {known}")]
    UnknownWord { word: String, known: String },
}

/// Why a take is refused and must be said again. Decided by [`check_take`] from the signal
/// alone, so the CLI (`chatterbox enroll`) and the toy refuse the same takes for the same
/// reasons.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Refusal {
    /// Nothing louder than [`SILENT_DBFS`] at its peak.
    #[error(
        "the take was silent (peak {peak_dbfs:.0} dBFS): check the microphone and speak closer"
    )]
    Silent { peak_dbfs: f32 },
    /// More than [`CLIPPED_FRACTION`] of the samples at or near full scale: the word is
    /// distorted, and a model trained on it learns the distortion.
    #[error("the take was clipped ({percent:.1} % of the samples at full scale): speak a little further from the microphone")]
    Clipped { percent: f32 },
    /// The sound lasted longer than one take window: cutting one second would lose part
    /// of the word (or the room is too noisy to tell the word from the rest).
    #[error("the sound lasted {seconds:.1} s, longer than the {TAKE_SECONDS} s a take keeps: say the word once, alone, in a quiet room")]
    TooLong { seconds: f32 },
    /// Only a click or a very short noise: no stretch of sound as long as the shortest word.
    #[error("only a click or a very short sound ({ms} ms): say the whole word")]
    TooShort { ms: u32 },
}

impl Refusal {
    /// Two or three words for a small screen: "too quiet", "clipped", "too long", "too short".
    pub fn short(&self) -> &'static str {
        match self {
            Refusal::Silent { .. } => "too quiet",
            Refusal::Clipped { .. } => "clipped",
            Refusal::TooLong { .. } => "too long",
            Refusal::TooShort { .. } => "too short",
        }
    }
}

/// A take whose peak is below this is silent (or the microphone is off).
pub const SILENT_DBFS: f32 = -50.0;
/// A sample whose magnitude is at least this fraction of full scale counts as clipped.
pub const CLIP_LEVEL: f32 = 0.98;
/// More than this fraction of the recording's samples clipped refuses the take (0.1 %:
/// about 100 of the 96 000 samples of 2 s at 48 kHz; a click or two is tolerated).
pub const CLIPPED_FRACTION: f32 = 0.001;
/// Length of one take, seconds (the model's window).
pub const TAKE_SECONDS: f32 = 1.0;
/// Envelope frame: 20 ms at 16 kHz.
pub const FRAME: usize = 320;
/// A frame is "sound" when its RMS is within this many dB of the loudest frame ...
pub const ACTIVE_BELOW_PEAK_DB: f32 = 20.0;
/// ... and above this absolute floor.
pub const ACTIVE_FLOOR_DBFS: f32 = -55.0;
/// Runs of sound closer than this are one stretch (the stop before the "t" of "stop").
pub const MERGE_GAP_FRAMES: usize = 15; // 300 ms
/// Stretches shorter than this are clicks, not speech.
pub const MIN_SOUND_FRAMES: usize = 3; // 60 ms

/// Where the sound of a take lies, in 16 kHz samples: `start..end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Speech {
    pub start: usize,
    pub end: usize,
}

/// Fraction (0..=1) of `samples` at or near full scale (see [`CLIP_LEVEL`]).
pub fn clipped_fraction(samples: &[i16]) -> f32 {
    if samples.is_empty() {
        return 0.0;
    }
    let level = (CLIP_LEVEL * 32768.0) as i32;
    let n = samples
        .iter()
        .filter(|&&s| i32::from(s).abs() >= level)
        .count();
    n as f32 / samples.len() as f32
}

/// RMS of each [`FRAME`] of `mono` in dBFS (the last, partial frame included).
pub fn envelope_dbfs(mono: &[f32]) -> Vec<f32> {
    mono.chunks(FRAME)
        .map(|f| {
            let ms = f.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>() / f.len() as f64;
            // NaN (a corrupt sample) counts as silence.
            if ms.is_nan() || ms <= 1e-12 {
                -120.0
            } else {
                (10.0 * ms.log10()) as f32
            }
        })
        .collect()
}

/// The stretch of `mono` (16 kHz) that holds the sound, from its energy envelope: frames
/// within [`ACTIVE_BELOW_PEAK_DB`] of the loudest (and above [`ACTIVE_FLOOR_DBFS`]), runs
/// closer than [`MERGE_GAP_FRAMES`] merged, runs shorter than [`MIN_SOUND_FRAMES`] dropped as
/// clicks. `None` when nothing but clicks (or nothing) is there.
pub fn speech_span(mono: &[f32]) -> Option<Speech> {
    let env = envelope_dbfs(mono);
    let peak = env.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let threshold = (peak - ACTIVE_BELOW_PEAK_DB).max(ACTIVE_FLOOR_DBFS);
    // Runs of active frames, merged across short gaps: (first, last) frame, inclusive.
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for (i, &db) in env.iter().enumerate() {
        if db < threshold {
            continue;
        }
        match runs.last_mut() {
            Some((_, last)) if i - *last <= MERGE_GAP_FRAMES => *last = i,
            _ => runs.push((i, i)),
        }
    }
    let kept: Vec<_> = runs
        .into_iter()
        .filter(|(a, b)| b - a + 1 >= MIN_SOUND_FRAMES)
        .collect();
    let (first, last) = (kept.first()?.0, kept.last()?.1);
    Some(Speech {
        start: first * FRAME,
        end: ((last + 1) * FRAME).min(mono.len()),
    })
}

/// Checks one take: `raw` is the capture as recorded (interleaved, any rate: clipping is
/// judged before resampling smooths it), `mono` the same audio as 16 kHz mono in -1..1.
/// Returns where the word is, or why the take must be said again.
pub fn check_take(raw: &[i16], mono: &[f32]) -> Result<Speech, Refusal> {
    let peak = peak_dbfs(mono);
    if peak < SILENT_DBFS {
        return Err(Refusal::Silent { peak_dbfs: peak });
    }
    let clipped = clipped_fraction(raw);
    if clipped > CLIPPED_FRACTION {
        return Err(Refusal::Clipped {
            percent: clipped * 100.0,
        });
    }
    let Some(speech) = speech_span(mono) else {
        // Loud enough but no stretch of sound: the longest run, for the message.
        let env = envelope_dbfs(mono);
        let peak = env.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let loud = env
            .iter()
            .filter(|&&d| d >= peak - ACTIVE_BELOW_PEAK_DB)
            .count();
        return Err(Refusal::TooShort {
            ms: (loud * FRAME * 1000 / RATE as usize) as u32,
        });
    };
    let seconds = (speech.end - speech.start) as f32 / RATE as f32;
    if speech.end - speech.start > TAKE_SAMPLES {
        return Err(Refusal::TooLong { seconds });
    }
    Ok(speech)
}

/// Start (in samples) of the `len`-sample stretch of `mono` with the most energy.
/// Pure, O(n) with a running sum.
pub fn loudest_window(mono: &[f32], len: usize) -> usize {
    if mono.len() <= len {
        return 0;
    }
    let mut energy: f64 = mono[..len].iter().map(|&x| f64::from(x * x)).sum();
    let (mut best, mut best_at) = (energy, 0);
    for start in 1..=mono.len() - len {
        let out = f64::from(mono[start - 1]);
        let inn = f64::from(mono[start + len - 1]);
        energy += inn * inn - out * out;
        if energy > best {
            best = energy;
            best_at = start;
        }
    }
    best_at
}

/// Peak level in dBFS (-120 for digital silence).
pub fn peak_dbfs(mono: &[f32]) -> f32 {
    let peak = mono.iter().fold(0.0f32, |m, &x| m.max(x.abs()));
    if peak <= 1e-6 {
        -120.0
    } else {
        20.0 * peak.log10()
    }
}

/// Turns a captured recording (interleaved S16 in `format`) into one 1 s, 16 kHz mono take,
/// or refuses it (see [`check_take`]). The second kept is the loudest one, moved if need be
/// so that the whole stretch of sound is inside it.
pub fn make_take(samples: &[i16], format: PcmFormat) -> Result<Vec<i16>, EnrollError> {
    let clip = Clip {
        rate: format.rate,
        channels: format.channels,
        samples: samples.iter().map(|&s| f32::from(s) / 32768.0).collect(),
    };
    let mono = convert(
        &clip,
        PcmFormat {
            rate: RATE,
            channels: 1,
        },
        1.0,
    )?;
    let as_f32: Vec<f32> = mono.iter().map(|&s| f32::from(s) / 32768.0).collect();
    let speech = check_take(samples, &as_f32)?;
    let loudest = loudest_window(&as_f32, TAKE_SAMPLES);
    // The sound fits in one window (checked); keep all of it.
    let start = loudest
        .max(speech.end.saturating_sub(TAKE_SAMPLES))
        .min(speech.start);
    let mut take: Vec<i16> = mono
        .iter()
        .skip(start)
        .take(TAKE_SAMPLES)
        .copied()
        .collect();
    take.resize(TAKE_SAMPLES, 0);
    Ok(take)
}

/// Saves a take atomically as `<dir>/<word>/owner_nohash_<stamp>-<n>.wav`; every third
/// take is also listed in `<dir>/testing_list.txt` (held out from training).
pub fn save_take(
    dir: &Path,
    word: &str,
    stamp: &str,
    n: usize,
    take: &[i16],
) -> Result<PathBuf, EnrollError> {
    let folder = dir.join(word);
    let save_err = |e: LibraryError| EnrollError::Save {
        dir: folder.clone(),
        reason: match e {
            LibraryError::DiskFull { .. } => "no space left on the device".into(),
            LibraryError::Folder { error, .. }
            | LibraryError::ReadOnly { error, .. }
            | LibraryError::NotWritable { error, .. }
            | LibraryError::Write { error, .. } => error.to_string(),
            other => other.to_string(),
        },
    };
    let io_err = |error| {
        save_err(LibraryError::Folder {
            dir: folder.clone(),
            error,
        })
    };
    std::fs::create_dir_all(&folder).map_err(io_err)?;
    let mut w = ClipWriter::begin(
        &folder,
        PcmFormat {
            rate: RATE,
            channels: 1,
        },
    )
    .map_err(save_err)?;
    w.write(take).map_err(save_err)?;
    // Never over an earlier take: the stamp is per second and a toy's clock can repeat one
    // (no real-time clock, set back by NTP), so a taken name gets a suffix instead.
    let names = std::iter::once(format!("owner_nohash_{stamp}-{n}.wav"))
        .chain((2..100).map(|k| format!("owner_nohash_{stamp}.{k}-{n}.wav")));
    let path = w.commit_new(names).map_err(save_err)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if n % 3 == 0 {
        use std::io::Write;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("testing_list.txt"))
            .and_then(|mut f| {
                writeln!(f, "{word}/{name}")?;
                f.sync_all()
            })
            .map_err(|error| EnrollError::Save {
                dir: dir.to_path_buf(),
                reason: format!("testing_list.txt: {error}"),
            })?;
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loudest_window_finds_the_word() {
        let mut s = vec![0.001f32; 48_000];
        for x in &mut s[30_000..36_000] {
            *x = 0.5;
        }
        let start = loudest_window(&s, 16_000);
        assert!(start <= 30_000 && start + 16_000 >= 36_000, "{start}");
        assert_eq!(loudest_window(&s[..100], 16_000), 0);
    }

    #[test]
    fn a_take_is_one_second_of_16k_mono_around_the_speech() {
        // 2 s at 48 kHz stereo: silence, then a 300 Hz "word" from 1.2 s to 1.6 s.
        let fmt = PcmFormat {
            rate: 48_000,
            channels: 2,
        };
        let samples: Vec<i16> = (0..96_000)
            .flat_map(|i| {
                let t = i as f32 / 48_000.0;
                let v = if (1.2..1.6).contains(&t) {
                    (8000.0 * (t * 300.0 * std::f32::consts::TAU).sin()) as i16
                } else {
                    0
                };
                [v, v]
            })
            .collect();
        let take = make_take(&samples, fmt).unwrap();
        assert_eq!(take.len(), TAKE_SAMPLES);
        let loud = take.iter().filter(|s| s.abs() > 1000).count();
        assert!(
            loud > 3000,
            "the word is inside the take ({loud} loud samples)"
        );
    }

    #[test]
    fn a_silent_take_is_refused_with_advice() {
        let fmt = PcmFormat {
            rate: 16_000,
            channels: 1,
        };
        let err = make_take(&[0i16; 32_000], fmt).unwrap_err().to_string();
        assert!(err.contains("microphone"), "{err}");
    }

    /// 16 kHz mono: silence with bursts of a 300 Hz tone at `amp` over `(from, to)` seconds,
    /// over `seconds` in all, plus a little background hiss-like ripple at -60 dBFS.
    fn signal(seconds: f32, bursts: &[(f32, f32)], amp: f32) -> Vec<i16> {
        let n = (seconds * RATE as f32) as usize;
        (0..n)
            .map(|i| {
                let t = i as f32 / RATE as f32;
                let floor = 0.001 * (t * 1234.0 * std::f32::consts::TAU).sin();
                let v = if bursts.iter().any(|&(a, b)| (a..b).contains(&t)) {
                    amp * (t * 300.0 * std::f32::consts::TAU).sin()
                } else {
                    0.0
                };
                ((v + floor).clamp(-1.0, 1.0) * 32767.0) as i16
            })
            .collect()
    }

    const MONO16: PcmFormat = PcmFormat {
        rate: 16_000,
        channels: 1,
    };

    fn refusal(samples: &[i16]) -> Option<Refusal> {
        match make_take(samples, MONO16) {
            Ok(_) => None,
            Err(EnrollError::Refused(r)) => Some(r),
            Err(e) => panic!("unexpected error {e}"),
        }
    }

    #[test]
    fn a_clear_word_is_kept_whole() {
        let s = signal(2.0, &[(1.3, 1.9)], 0.5);
        let take = make_take(&s, MONO16).unwrap();
        // The 0.6 s word is all inside the 1 s take, though it sits near the recording's end.
        let loud = take.iter().filter(|x| x.abs() > 8000).count();
        let all = s.iter().filter(|x| x.abs() > 8000).count();
        assert_eq!(loud, all, "the whole word is in the take");
    }

    #[test]
    fn a_word_with_a_gap_inside_is_one_stretch() {
        // "stop": s-t-o-p with a 150 ms closure before the vowel.
        let s = signal(2.0, &[(0.5, 0.65), (0.8, 1.2)], 0.4);
        assert_eq!(refusal(&s), None);
        let mono: Vec<f32> = s.iter().map(|&x| f32::from(x) / 32768.0).collect();
        let span = speech_span(&mono).unwrap();
        assert!(span.start <= 8_000 && span.end >= 19_200, "{span:?}");
    }

    #[test]
    fn a_quiet_take_is_refused_as_silent() {
        let s = signal(2.0, &[(0.5, 1.0)], 0.002); // about -54 dBFS
        let r = refusal(&s).unwrap();
        assert!(matches!(r, Refusal::Silent { .. }), "{r:?}");
        assert_eq!(r.short(), "too quiet");
    }

    #[test]
    fn a_clipped_take_is_refused_but_a_loud_clean_one_is_not() {
        let clipped = signal(2.0, &[(0.5, 1.0)], 1.6);
        let r = refusal(&clipped).unwrap();
        assert!(
            matches!(r, Refusal::Clipped { percent } if percent > 5.0),
            "{r:?}"
        );
        assert!(r.to_string().contains("further from the microphone"));
        let loud = signal(2.0, &[(0.5, 1.0)], 0.95);
        assert_eq!(refusal(&loud), None);
        // One full-scale click among clean speech is tolerated.
        let mut click = signal(2.0, &[(0.5, 1.0)], 0.5);
        click[100] = i16::MAX;
        click[101] = i16::MIN;
        assert_eq!(refusal(&click), None);
    }

    #[test]
    fn sound_longer_than_a_take_is_refused_as_too_long() {
        // 1.4 s of continuous sound: the 1 s cut would lose part of it.
        let r = refusal(&signal(2.0, &[(0.3, 1.7)], 0.5)).unwrap();
        assert!(
            matches!(r, Refusal::TooLong { seconds } if (1.35..1.45).contains(&seconds)),
            "{r:?}"
        );
        // The word said twice, 0.5 s apart: too long as well.
        let r = refusal(&signal(2.0, &[(0.2, 0.6), (1.1, 1.5)], 0.5)).unwrap();
        assert_eq!(r.short(), "too long");
        // Just inside one second is fine.
        assert_eq!(refusal(&signal(2.0, &[(0.5, 1.46)], 0.5)), None);
    }

    #[test]
    fn a_click_alone_is_refused_as_too_short() {
        let r = refusal(&signal(2.0, &[(1.0, 1.02)], 0.5)).unwrap();
        assert!(matches!(r, Refusal::TooShort { ms } if ms <= 40), "{r:?}");
        // A click before the word is ignored, not counted as part of the word.
        let s = signal(2.0, &[(0.1, 0.12), (1.0, 1.5)], 0.5);
        assert_eq!(refusal(&s), None);
    }

    #[test]
    fn hostile_inputs_do_not_panic() {
        for s in [vec![], vec![i16::MIN], vec![i16::MAX; 7], vec![0; 3]] {
            let _ = make_take(&s, MONO16);
            let mono: Vec<f32> = s.iter().map(|&x| f32::from(x) / 32768.0).collect();
            let _ = check_take(&s, &mono);
            let _ = speech_span(&mono);
        }
        assert_eq!(clipped_fraction(&[]), 0.0);
        assert_eq!(speech_span(&[]), None);
        assert_eq!(speech_span(&[f32::NAN; 1000]), None);
    }

    #[test]
    fn takes_are_saved_in_the_speech_commands_layout() {
        let dir = tempfile::tempdir().unwrap();
        for n in 1..=3 {
            save_take(dir.path(), "go", "20261123-1100", n, &[5i16; TAKE_SAMPLES]).unwrap();
        }
        let p = dir.path().join("go/owner_nohash_20261123-1100-2.wav");
        let r = hound::WavReader::open(&p).unwrap();
        assert_eq!(
            (r.spec().sample_rate, r.spec().channels, r.len()),
            (16_000, 1, 16_000)
        );
        let held_out = std::fs::read_to_string(dir.path().join("testing_list.txt")).unwrap();
        assert_eq!(held_out, "go/owner_nohash_20261123-1100-3.wav\n");
    }

    #[test]
    fn a_take_that_cannot_be_saved_names_the_takes_folder_not_the_recordings_one() {
        let dir = tempfile::tempdir().unwrap();
        // A file where the word's folder should be.
        std::fs::write(dir.path().join("go"), b"").unwrap();
        let err = save_take(dir.path(), "go", "s", 1, &[5i16; TAKE_SAMPLES])
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot save the take in"), "{err}");
        assert!(err.contains("state_dir"), "{err}");
        assert!(!err.contains("recordings_dir"), "{err}");
    }

    #[test]
    fn a_take_never_replaces_an_earlier_one_with_the_same_stamp() {
        // Two sessions in the same second (or the clock set back): both sets of takes stay.
        let dir = tempfile::tempdir().unwrap();
        let first = save_take(dir.path(), "go", "20261123-1100", 3, &[5i16; TAKE_SAMPLES]).unwrap();
        let second =
            save_take(dir.path(), "go", "20261123-1100", 3, &[7i16; TAKE_SAMPLES]).unwrap();
        assert_ne!(first, second);
        let read = |p: &Path| -> Vec<i16> {
            hound::WavReader::open(p)
                .unwrap()
                .samples::<i16>()
                .map(Result::unwrap)
                .collect()
        };
        assert!(
            read(&first).iter().all(|&s| s == 5),
            "the first take is kept"
        );
        assert!(read(&second).iter().all(|&s| s == 7));
        // Both are held out, each under its own name.
        let held_out = std::fs::read_to_string(dir.path().join("testing_list.txt")).unwrap();
        let name = |p: &Path| format!("go/{}", p.file_name().unwrap().to_string_lossy());
        assert_eq!(held_out, format!("{}\n{}\n", name(&first), name(&second)));
        assert!(second
            .to_string_lossy()
            .ends_with("owner_nohash_20261123-1100.2-3.wav"));
    }
}
