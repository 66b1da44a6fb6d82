//! `chatterbox enroll`: the owner records each keyword a few times, so the model can be
//! fine-tuned on, and evaluated against, the one voice it must understand.
//!
//! Takes are saved as 1 s, 16 kHz mono WAVs — the model's own input — in the layout of
//! Google's Speech Commands data set, `DIR/<word>/owner_nohash_<timestamp>-<take>.wav`,
//! so the training script takes the folder as it is (`--speech-commands DIR`). Every third
//! take is listed in `DIR/testing_list.txt`: the trainer keeps those out of training, and
//! they measure how well the retrained model knows the owner's voice. Each take is cut to
//! the loudest second of a longer recording, so the person need not speak on an exact beat.

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
    #[error(transparent)]
    Save(#[from] LibraryError),
    #[error(
        "the take was silent (peak {peak_dbfs:.0} dBFS): check the microphone and speak closer"
    )]
    Silent { peak_dbfs: f32 },
    #[error("'{word}' is not a word the model knows; choose from: {known}")]
    UnknownWord { word: String, known: String },
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

/// Turns a captured recording (interleaved S16 in `format`) into one 1 s, 16 kHz mono take.
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
    let peak = peak_dbfs(&as_f32);
    if peak < -50.0 {
        return Err(EnrollError::Silent { peak_dbfs: peak });
    }
    let start = loudest_window(&as_f32, TAKE_SAMPLES);
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
    let folder_err = |error| LibraryError::Folder {
        dir: folder.clone(),
        error,
    };
    std::fs::create_dir_all(&folder).map_err(folder_err)?;
    let mut w = ClipWriter::begin(
        &folder,
        PcmFormat {
            rate: RATE,
            channels: 1,
        },
    )?;
    w.write(take)?;
    let name = format!("owner_nohash_{stamp}-{n}.wav");
    let path = w.commit(&name)?;
    if n % 3 == 0 {
        use std::io::Write;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("testing_list.txt"))
            .and_then(|mut f| writeln!(f, "{word}/{name}"))
            .map_err(|error| LibraryError::Folder {
                dir: dir.to_path_buf(),
                error,
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
}
