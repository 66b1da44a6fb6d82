//! The owner's takes (`DIR/<word>/*.wav`, `DIR/testing_list.txt`, as `chatterbox enroll`
//! writes them) turned into head inputs by the runtime's own front end.
//!
//! Held-out takes are placed exactly as `chatterbox evaluate` places a clip
//! ([`FrontEnd::clip`]: centred in the head's window), so the before/after figures are the ones
//! `evaluate --held-out` prints. Training takes are streamed once inside zeros and every window
//! of N consecutive embeddings that holds the whole take becomes an example: the word at a dozen
//! positions for the price of one and a half windows of audio, as the listener sees it slide by.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::trainer::{Example, SplitMix64};
use super::AdaptError;
use crate::audio::wav::{convert, read_clip};
use crate::audio::PcmFormat;
use crate::kws::embedding::{
    EmbeddingStream, LiteRtSpeechModels, Produced, SilenceMemo, BLOCK_SAMPLES, EMBEDDING_DIM,
};
use crate::kws::front_end::FrontEnd;
use crate::kws::meta::KwsMeta;

/// Fewest training takes (not held out) per word, and fewest held-out takes per word.
pub const MIN_TRAIN_TAKES: usize = 2;
pub const MIN_HELD_OUT: usize = 1;

/// One take on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Take {
    pub path: PathBuf,
    pub label: usize,
    pub held_out: bool,
}

/// Finds the takes of every keyword folder in `dir`; every keyword needs
/// [`MIN_TRAIN_TAKES`] for training and [`MIN_HELD_OUT`] held out.
pub fn find(dir: &Path, meta: &KwsMeta) -> Result<Vec<Take>, AdaptError> {
    let listed: BTreeSet<String> = std::fs::read_to_string(dir.join("testing_list.txt"))
        .map(|t| t.lines().map(|l| l.trim().to_string()).collect())
        .unwrap_or_default();
    let mut takes = Vec::new();
    let mut words = Vec::new();
    for (label, word) in meta.labels.iter().enumerate() {
        let folder = dir.join(word);
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("wav")))
            .collect();
        files.sort();
        if files.is_empty() {
            continue;
        }
        words.push((word.clone(), label));
        for path in files {
            let key = format!(
                "{word}/{}",
                path.file_name().unwrap_or_default().to_string_lossy()
            );
            takes.push(Take {
                held_out: listed.contains(&key),
                path,
                label,
            });
        }
    }
    // Folders of takes named after no word the model knows (a typo, or a word a newer model
    // dropped): unusable. An error when nothing else is there, else a warning.
    let mut unknown: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|name| !meta.labels.contains(name) && has_wav(&dir.join(name)))
        .collect();
    unknown.sort();
    let quoted = unknown
        .iter()
        .map(|w| format!("'{w}'"))
        .collect::<Vec<_>>()
        .join(", ");
    if takes.is_empty() {
        if !unknown.is_empty() {
            return Err(AdaptError::UnknownWords {
                dir: dir.to_path_buf(),
                folders: quoted,
                known: meta.labels.join(", "),
            });
        }
        return Err(AdaptError::NoTakes {
            dir: dir.to_path_buf(),
        });
    }
    if !unknown.is_empty() {
        log::warn!(
            "adapt: ignoring the takes in {} of {quoted}, which the model does not know (it knows: {})",
            dir.display(),
            meta.labels.join(", ")
        );
    }
    for (word, label) in words {
        // The owner's other words are said once each, and a session can stop after one or two
        // of them: however few there are, they are used, and none held out is fine.
        if word == crate::kws::meta::UNKNOWN {
            continue;
        }
        let mine = takes.iter().filter(|t| t.label == label);
        let held = mine.clone().filter(|t| t.held_out).count();
        let train = mine.count() - held;
        if train < MIN_TRAIN_TAKES || held < MIN_HELD_OUT {
            return Err(AdaptError::TooFewTakes {
                dir: dir.to_path_buf(),
                word,
                have: train,
                held_out: held,
                need: MIN_TRAIN_TAKES + MIN_HELD_OUT,
            });
        }
    }
    Ok(takes)
}

fn has_wav(folder: &Path) -> bool {
    std::fs::read_dir(folder)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| {
            e.path()
                .extension()
                .is_some_and(|x| x.eq_ignore_ascii_case("wav"))
        })
}

/// A take as 16 kHz mono samples in [-1, 1).
fn samples(path: &Path, rate: u32, window: usize) -> Result<Vec<f32>, AdaptError> {
    let bad = |reason: String| AdaptError::Take {
        path: path.to_path_buf(),
        reason,
    };
    let clip = read_clip(path, 10.0).map_err(|e| bad(e.to_string()))?;
    let mono =
        convert(&clip, PcmFormat { rate, channels: 1 }, 1.0).map_err(|e| bad(e.to_string()))?;
    if mono.is_empty() {
        return Err(bad("it holds no audio; record it again".into()));
    }
    // One window is all the head hears: a longer take would be trained on its start and
    // measured on its middle, neither of which need hold the word.
    if mono.len() > window + window / 10 {
        return Err(bad(format!(
            "it is {:.1} s long (or longer), more than the {:.1} s the recognizer hears at once; a take is one word (`chatterbox enroll` keeps the second around it): cut it to the word or record it again",
            mono.len() as f32 / rate as f32,
            window as f32 / rate as f32
        )));
    }
    Ok(mono.iter().map(|&s| f32::from(s) / 32768.0).collect())
}

/// Held-out takes as `evaluate` computes them (one example each).
pub fn held_out_examples(meta: &KwsMeta, takes: &[Take]) -> Result<Vec<Example>, AdaptError> {
    let mut fe = FrontEnd::load(meta).map_err(|e| AdaptError::Model(e.to_string()))?;
    let mut out = Vec::new();
    for t in takes.iter().filter(|t| t.held_out) {
        let s = samples(
            &t.path,
            meta.features.sample_rate,
            meta.features.clip_samples,
        )?;
        let x = fe.clip(&s).map_err(|e| AdaptError::Model(e.to_string()))?;
        out.push(Example {
            x: x.to_vec(),
            label: t.label,
        });
    }
    Ok(out)
}

/// A copy of `take` as a room across from the toy would give it: with probability 0.7 a
/// synthetic reverberation (exponentially decaying noise, RT60 0.15..0.6 s, after the direct
/// path), then a random gain (-10..0 dB) and coloured noise (white through a random one-pole
/// low-pass) at -75..-35 dBFS RMS, the levels the shipped head's training placed words in.
/// Takes are recorded close to a quiet toy; the toy then hears the owner across a room.
pub fn noisy_copy(take: &[f32], rng: &mut SplitMix64) -> Vec<f32> {
    let mut x = take.to_vec();
    if rng.uniform() < 0.7 {
        let rt60 = 0.15 + 0.45 * rng.uniform();
        let taps = (rt60 * 16_000.0) as usize;
        let mut h: Vec<f32> = (0..taps)
            .map(|n| rng.normal() * 0.3 * (-6.9 * n as f32 / taps as f32).exp())
            .collect();
        if let Some(direct) = h.first_mut() {
            *direct = 1.0;
        }
        let peak = |v: &[f32]| v.iter().fold(0.0f32, |m, s| m.max(s.abs()));
        let before = peak(&x);
        let mut wet = convolve(&x, &h);
        wet.truncate(x.len());
        let after = peak(&wet);
        if after > 0.0 {
            wet.iter_mut().for_each(|s| *s *= before / after);
            x = wet;
        }
    }
    let gain = 10f32.powf(-10.0 * rng.uniform() / 20.0);
    let level = 10f32.powf((-75.0 + 40.0 * rng.uniform()) / 20.0);
    let pole = 0.98 * rng.uniform();
    let mut state = 0.0f32;
    let mut noise: Vec<f32> = (0..x.len())
        .map(|_| {
            state = pole * state + (1.0 - pole) * rng.normal();
            state
        })
        .collect();
    let rms = (noise.iter().map(|v| v * v).sum::<f32>() / noise.len().max(1) as f32).sqrt();
    let k = if rms > 0.0 { level / rms } else { 0.0 };
    noise
        .iter_mut()
        .zip(&x)
        .for_each(|(n, &s)| *n = (s * gain + *n * k).clamp(-1.0, 32767.0 / 32768.0));
    noise
}

/// Linear convolution by FFT (rustfft, already used by the STFT front end).
fn convolve(x: &[f32], h: &[f32]) -> Vec<f32> {
    use rustfft::num_complex::Complex32;
    let n = (x.len() + h.len()).next_power_of_two();
    let mut planner = rustfft::FftPlanner::<f32>::new();
    let (fwd, inv) = (planner.plan_fft_forward(n), planner.plan_fft_inverse(n));
    let spectrum = |v: &[f32]| {
        let mut buf: Vec<Complex32> = v.iter().map(|&r| Complex32::new(r, 0.0)).collect();
        buf.resize(n, Complex32::new(0.0, 0.0));
        fwd.process(&mut buf);
        buf
    };
    let (a, b) = (spectrum(x), spectrum(h));
    let mut y: Vec<Complex32> = a.iter().zip(&b).map(|(p, q)| p * q).collect();
    inv.process(&mut y);
    let scale = 1.0 / n as f32;
    y.iter()
        .take(x.len() + h.len() - 1)
        .map(|c| c.re * scale)
        .collect()
}

/// Training takes, each at every window position that holds it whole; `noisy_copies` more
/// copies of each through [`noisy_copy`]; with `reversed`, every keyword take played backwards
/// too, as an `unknown` example: the owner's voice saying no keyword.
pub fn training_examples(
    meta: &KwsMeta,
    takes: &[Take],
    noisy_copies: usize,
    reversed: bool,
    seed: u64,
) -> Result<Vec<Example>, AdaptError> {
    let mut rng = SplitMix64::new(seed ^ 0x006e_6f69_7379);
    let (Some(spec), Some((mel, emb))) = (&meta.embedding, meta.embedding_paths()) else {
        return Err(AdaptError::Shipped(
            "its front end is not the embedding one".into(),
        ));
    };
    let n = spec.embeddings;
    let window = meta.features.clip_samples;
    let mut clips = Vec::new();
    let unknown = meta
        .labels
        .iter()
        .position(|l| l == crate::kws::meta::UNKNOWN);
    // Only keywords are reversed: reversed silence or noise is still silence, not a word.
    let keyword = |label: usize| {
        meta.labels
            .get(label)
            .is_some_and(|l| crate::kws::meta::is_keyword(l))
    };
    for t in takes.iter().filter(|t| !t.held_out) {
        let mut s = samples(&t.path, meta.features.sample_rate, window)?;
        s.truncate(window);
        for _ in 0..noisy_copies {
            clips.push((noisy_copy(&s, &mut rng), t.label));
        }
        if let Some(unknown) = unknown.filter(|_| reversed && keyword(t.label)) {
            clips.push((s.iter().rev().copied().collect(), unknown));
        }
        clips.push((s, t.label));
    }
    // One front end: with the embeddings in runs it is about half the time, and a second
    // one on another core (as before) would save about 0.4 s of 2.3 for 16 MB more, too near
    // the 100 MB the adaptation must stay within.
    let models = LiteRtSpeechModels::load(&mel, &spec.mel_sha256, &emb, &spec.embedding_sha256)
        .map_err(|e| AdaptError::Model(e.to_string()))?;
    windows_of(models, &clips, window, n)
}

/// Every training window of `clips` (each streamed once inside zeros; see
/// [`training_examples`]).
fn windows_of(
    models: LiteRtSpeechModels,
    clips: &[(Vec<f32>, usize)],
    window: usize,
    n: usize,
) -> Result<Vec<Example>, AdaptError> {
    // Every take is streamed inside zeros: their silent blocks are computed once (exactly the
    // same values, `SilenceMemo`).
    let mut stream = EmbeddingStream::new(Box::new(SilenceMemo::new(models)), 1);
    let mut out = Vec::new();
    let mut embeddings: Vec<f32> = Vec::new();
    for (s, label) in clips {
        let (take, label) = (s.as_slice(), *label);
        // zeros | take | zeros: the take starts at `lead`; windows end at embedding ends, so
        // the windows holding the whole take end between `lead + take` and `lead + window`.
        let lead = window - take.len();
        // No window below ends later than `late` allows (end ≤ lead + take + 9/20 window), so
        // the zeros after that would only feed embeddings nothing reads.
        let last_end = (lead + take.len() + window * 9 / 20).min(2 * lead + take.len());
        let mut audio = vec![0.0f32; last_end];
        audio[lead..lead + take.len()].copy_from_slice(take);
        embeddings.clear();
        // The whole take at once: the embeddings in runs, as the stream would give them.
        stream
            .push_fresh(&audio, &mut |p| {
                if let Produced::Embedding(e) = p {
                    embeddings.extend_from_slice(e);
                }
            })
            .map_err(|e| AdaptError::Model(e.to_string()))?;
        let count = embeddings.len() / EMBEDDING_DIM;
        let first_end = window - (n - 1) * BLOCK_SAMPLES; // samples when embedding 0 is done
        for j in (n - 1)..count {
            let end = first_end + j * BLOCK_SAMPLES;
            let start = end.saturating_sub(window);
            // As the trainer placed words: the take's end in the last 45 % of the window.
            let late = (lead + take.len() - start) * 20 >= window * 11;
            if end >= window && start <= lead && lead + take.len() <= end && late {
                out.push(Example {
                    x: embeddings[(j + 1 - n) * EMBEDDING_DIM..(j + 1) * EMBEDDING_DIM].to_vec(),
                    label,
                });
            }
        }
    }
    Ok(out)
}
