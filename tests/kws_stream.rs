//! The keyword recognizer on a synthesized stream, end to end: spoken keywords (the
//! committed fixture clips: a parity check chosen by the model's success, not an accuracy
//! figure; accuracy is measured by the protocol, docs/kws-tuning.md) at known offsets in
//! background noise, upsampled to the Codec Zero's 48 kHz stereo and
//! fed as the microphone through ALSA's `file` plugin to `chatterbox listen`.
//! The words must come out in order, at the right times, and nothing else: not the
//! non-keyword speech, not the noise, not the silence. (See `best_clips` for which clips.)

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use chatterbox::audio::wav::{convert, read_clip, Clip};
use chatterbox::audio::PcmFormat;
use chatterbox::kws::evaluate::{evaluate_dir, Clips};
use chatterbox::kws::listener::{hop_on_frame_grid, Recognizer, RecognizerConfig};
use chatterbox::kws::meta::KwsMeta;
use common::alsa::AlsaSandbox;

const RATE: usize = 16_000;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/kws_clips")
        .join(name)
}

/// This test checks the streaming runtime (ALSA capture, resampling, windows, detector),
/// not the model: the model's clip accuracy is measured by its card and by
/// tests/kws_shipped_model.rs, its streaming hit rate by benches/kws_stream_eval.rs. So it
/// uses held-out clips the model classifies right (confidence at least `min_p`), and then
/// keeps those the in-process [`Recognizer`] hears in their slot of the stream (see the
/// test). Through ALSA and the CLI the same words must come out at the same stream times.
fn confident_by_label(meta: &Path, min_p: f32) -> BTreeMap<String, Vec<String>> {
    let mut by: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (label, file) in confident_clips(meta, min_p) {
        by.entry(label).or_default().push(file);
    }
    by
}

/// The shipped default (STFT) model's contract.
fn stft_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models/kws.toml")
}

/// The shipped speech-embedding alternative's contract.
fn embedding_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models/embedding/kws.toml")
}

/// Words and stream times (s) the library's recognizer (default settings, model `meta`)
/// reports for a 16 kHz stream, fed to it as the Codec Zero's 48 kHz stereo like the CLI
/// gets it.
fn recognize_in_process(meta: &Path, samples16k: &[f32]) -> Vec<(String, f32)> {
    let mic = to_mic(samples16k.to_vec());
    let mut r = Recognizer::load(meta, &RecognizerConfig::default()).unwrap();
    let mut words = Vec::new();
    let mic_format = PcmFormat {
        rate: 48_000,
        channels: 2,
    };
    for chunk in mic.chunks(2 * 960) {
        for d in r.push(chunk, mic_format).unwrap() {
            words.push((d.word, d.at.as_secs_f32()));
        }
    }
    r.finish(&mut |hop| {
        if let Some(d) = hop.detection {
            words.push((d.word.clone(), d.at.as_secs_f32()));
        }
    })
    .unwrap();
    words
}

/// Every held-out fixture clip the model classifies right with confidence >= `min_p`, as
/// (label, file), in file-name order.
fn confident_clips(meta: &Path, min_p: f32) -> Vec<(String, String)> {
    let meta = KwsMeta::load(meta).unwrap();
    let mut model = chatterbox::kws::front_end::load_classifier(&meta).unwrap();
    let eval = evaluate_dir(&meta, &mut model, &fixture(""), Clips::All).unwrap();
    eval.results
        .into_iter()
        .filter(|r| r.want == r.got && r.confidence >= min_p)
        .map(|r| (r.want, r.file))
        .collect()
}

/// A small deterministic noise generator (xorshift), so the test needs no RNG crate.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }
}

struct Placed {
    word: String,
    at_s: f32,
}

/// Builds the stream: noise at about -46 dBFS, clips added at their offsets.
fn stream(seconds: f32, clips: &[(String, f32)]) -> Vec<f32> {
    let mut noise = Noise(0x9E37_79B9_7F4A_7C15);
    let mut s: Vec<f32> = (0..(seconds * RATE as f32) as usize)
        .map(|_| noise.next() * 0.008)
        .collect();
    for (file, at) in clips {
        let clip = read_clip(&fixture(file), 2.0).unwrap();
        assert_eq!(clip.rate as usize, RATE);
        let start = (at * RATE as f32) as usize;
        for (i, v) in clip.samples.iter().enumerate() {
            if let Some(x) = s.get_mut(start + i) {
                *x += v;
            }
        }
    }
    s
}

#[derive(Debug)]
struct Heard {
    word: String,
    time: f32,
}

/// The Codec Zero's format: 48 kHz stereo S16.
fn to_mic(samples16k: Vec<f32>) -> Vec<i16> {
    convert(
        &Clip {
            rate: RATE as u32,
            channels: 1,
            samples: samples16k,
        },
        PcmFormat {
            rate: 48_000,
            channels: 2,
        },
        1.0,
    )
    .unwrap()
}

/// Runs `chatterbox listen --json` with model `meta` on the mic and returns what it printed.
fn listen(sb: &AlsaSandbox, meta: &Path, samples16k: Vec<f32>, seconds: f32) -> Vec<Heard> {
    let mic = to_mic(samples16k);
    sb.write_mic(&mic).unwrap();
    let config = sb.home().join("listen.toml");
    std::fs::write(
        &config,
        format!("[audio]\ncapture_device = \"cb_mic\"\n[keywords]\nmodel = {meta:?}\n"),
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_chatterbox"));
    sb.configure(&mut cmd);
    let out = cmd
        .arg("--config")
        .arg(&config)
        .args(["listen", "--json", "--seconds", &seconds.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let word = l
                .split("\"word\":\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            let time: f32 = l
                .split("\"time\":")
                .nth(1)
                .unwrap()
                .split(',')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            Heard {
                word: word.to_string(),
                time,
            }
        })
        .collect()
}

/// Where word `i` goes: slots a whole number of hops apart (about 5 s), so every slot meets
/// the window grid the same way, and far enough apart that no detector state carries over.
struct Slots {
    spacing: f32,
    gap: f32,
}

impl Slots {
    fn new(meta: &Path) -> Slots {
        let meta = KwsMeta::load(meta).unwrap();
        let hop = hop_on_frame_grid(RecognizerConfig::default().hop, &meta.features).as_secs_f32();
        Slots {
            spacing: (5.0 / hop).ceil() * hop,
            gap: (2.5 / hop).round() * hop,
        }
    }

    fn keyword_at(&self, i: usize) -> f32 {
        1.3 + self.spacing * i as f32
    }

    /// Keywords in their slots, with `unknown` (if any) between them.
    fn place(&self, keywords: &[(usize, String)], unknown: Option<&String>) -> Vec<(String, f32)> {
        let mut placed = Vec::new();
        for (i, file) in keywords {
            let at = self.keyword_at(*i);
            placed.push((file.clone(), at));
            if let Some(u) = unknown {
                placed.push((u.clone(), at + self.gap));
            }
        }
        placed
    }
}

fn label_of(file: &str) -> &str {
    file.split("__").next().unwrap()
}

#[test]
fn keywords_in_noise_are_heard_in_order_at_their_times_and_nothing_else() {
    heard_in_order_at_their_times(&stft_model());
}

/// The same through the speech-embedding alternative (`keywords.model =
/// models/embedding/kws.toml`): its chain (blocks, mel, embeddings, head) runs behind the same
/// ALSA capture, resampler and detector in `chatterbox listen`.
#[test]
fn the_embedding_model_hears_keywords_through_alsa_and_listen() {
    heard_in_order_at_their_times(&embedding_model());
}

fn heard_in_order_at_their_times(model: &Path) {
    let sb = AlsaSandbox::new().unwrap();
    let clips = confident_by_label(model, 0.9);
    let candidates: Vec<(usize, String)> = clips
        .iter()
        .filter(|(label, _)| *label != "unknown" && *label != "silence")
        .flat_map(|(_, files)| files.iter().cloned())
        .enumerate()
        .collect();
    let unknown = clips.get("unknown").and_then(|files| files.first());
    let slots = Slots::new(model);
    // Keep the keywords the library itself hears in their slot (right word, once, within
    // 2.25 s of the word's start); the model's misses are the streaming bench's business.
    let end = |n: usize| slots.keyword_at(n) + 1.0;
    let trial = recognize_in_process(
        model,
        &stream(end(candidates.len()), &slots.place(&candidates, unknown)),
    );
    let keywords: Vec<(usize, String)> = candidates
        .into_iter()
        .filter(|(i, file)| {
            let at = slots.keyword_at(*i);
            let in_slot: Vec<&(String, f32)> = trial
                .iter()
                .filter(|(_, t)| *t > at && *t < at + slots.spacing - 0.5)
                .collect();
            in_slot.len() == 1 && in_slot[0].0 == label_of(file)
        })
        .take(4)
        .collect();
    assert!(
        keywords.len() >= 3,
        "the recognizer hears fewer than 3 held-out keyword clips in the stream: {trial:?}"
    );
    let seconds = end(keywords.last().unwrap().0 + 1);
    let placed = slots.place(&keywords, unknown);
    let want: Vec<Placed> = keywords
        .iter()
        .map(|(i, f)| Placed {
            word: label_of(f).to_string(),
            at_s: slots.keyword_at(*i),
        })
        .collect();
    let samples = stream(seconds, &placed);
    let in_process = recognize_in_process(model, &samples);
    let heard = listen(&sb, model, samples, seconds);
    let words: Vec<&str> = heard.iter().map(|h| h.word.as_str()).collect();
    let expected: Vec<&str> = want.iter().map(|p| p.word.as_str()).collect();
    assert_eq!(words, expected, "{heard:?} (in process: {in_process:?})");
    assert_eq!(heard.len(), in_process.len(), "{heard:?} vs {in_process:?}");
    for ((h, p), (_, t)) in heard.iter().zip(&want).zip(&in_process) {
        // The clip occupies [at, at + 1 s]; the decision comes after the word is in a
        // window, and well before the next word (latency goal: 300 ms after the word).
        assert!(
            h.time > p.at_s + 0.25 && h.time < p.at_s + 2.25,
            "{} heard at {} s, spoken at {} s",
            h.word,
            h.time,
            p.at_s
        );
        // Through ALSA the stream times are the library's own, to the millisecond printed.
        assert!(
            (h.time - t).abs() < 0.002,
            "{} at {} s via ALSA, {t} s in process",
            h.word,
            h.time
        );
    }
}

#[test]
fn noise_and_silence_alone_produce_no_words() {
    for model in [stft_model(), embedding_model()] {
        let sb = AlsaSandbox::new().unwrap();
        let mut s = stream(20.0, &[]);
        // Half of it digital silence: exercises the energy gate too.
        s[..RATE * 10].iter_mut().for_each(|x| *x = 0.0);
        let heard = listen(&sb, &model, s, 20.0);
        assert!(heard.is_empty(), "{}: {heard:?}", model.display());
    }
}
