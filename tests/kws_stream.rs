//! The keyword recognizer on a synthesized stream, end to end: held-out spoken keywords
//! at known offsets in background noise, upsampled to the Codec Zero's 48 kHz stereo and
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
use chatterbox::kws::meta::{KwsMeta, ModelOutput};
use chatterbox::kws::model::LiteRtClassifier;
use common::alsa::AlsaSandbox;

const RATE: usize = 16_000;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/kws_clips")
        .join(name)
}

/// This test checks the streaming runtime (ALSA capture, resampling, windows, detector),
/// not the model: the model's clip accuracy is measured by its card and by
/// tests/kws_shipped_model.rs. So, for each label, it uses the held-out clip the model
/// itself classifies right with the highest confidence (at least `min_p`), and a word the
/// model knows in isolation must then also be heard in the stream.
fn best_clips(min_p: f32) -> BTreeMap<String, String> {
    let meta =
        KwsMeta::load(Path::new(env!("CARGO_MANIFEST_DIR")).join("models/kws.toml")).unwrap();
    let logits = meta.model.output == ModelOutput::Logits;
    let mut model =
        LiteRtClassifier::load(&meta.model_path(), meta.labels.clone(), logits).unwrap();
    let eval = evaluate_dir(&meta, &mut model, &fixture(""), Clips::All).unwrap();
    let mut best: BTreeMap<String, (String, f32)> = BTreeMap::new();
    for r in eval
        .results
        .iter()
        .filter(|r| r.want == r.got && r.confidence >= min_p)
    {
        let e = best.entry(r.want.clone()).or_insert((r.file.clone(), 0.0));
        if r.confidence > e.1 {
            *e = (r.file.clone(), r.confidence);
        }
    }
    best.into_iter().map(|(k, (f, _))| (k, f)).collect()
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

/// Runs `chatterbox listen --json` on the mic and returns what it printed.
fn listen(sb: &AlsaSandbox, samples16k: Vec<f32>, seconds: f32) -> Vec<Heard> {
    let mic = convert(
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
    .unwrap();
    sb.write_mic(&mic).unwrap();
    let config = sb.home().join("listen.toml");
    std::fs::write(
        &config,
        format!(
            "[audio]\ncapture_device = \"cb_mic\"\n[keywords]\nmodel = {:?}\n",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("models/kws.toml")
        ),
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

#[test]
fn keywords_in_noise_are_heard_in_order_at_their_times_and_nothing_else() {
    let sb = AlsaSandbox::new().unwrap();
    let clips = best_clips(0.9);
    let keywords: Vec<&String> = clips
        .iter()
        .filter(|(label, _)| *label != "unknown" && *label != "silence")
        .map(|(_, file)| file)
        .take(4)
        .collect();
    assert!(
        keywords.len() >= 3,
        "the model is sure of fewer than 3 held-out keyword clips: {clips:?}"
    );
    // Keywords 2.5 s apart, with non-keyword speech in between when the model knows some.
    let mut placed: Vec<(String, f32)> = Vec::new();
    for (i, file) in keywords.iter().enumerate() {
        placed.push(((*file).clone(), 1.3 + 5.0 * i as f32));
        if let Some(unknown) = clips.get("unknown") {
            placed.push((unknown.clone(), 3.8 + 5.0 * i as f32));
        }
    }
    let seconds = 1.3 + 5.0 * keywords.len() as f32 + 1.0;
    let want: Vec<Placed> = placed
        .iter()
        .filter(|(f, _)| !f.starts_with("unknown"))
        .map(|(f, at)| Placed {
            word: f.split("__").next().unwrap().to_string(),
            at_s: *at,
        })
        .collect();
    let heard = listen(&sb, stream(seconds, &placed), seconds);
    let words: Vec<&str> = heard.iter().map(|h| h.word.as_str()).collect();
    let expected: Vec<&str> = want.iter().map(|p| p.word.as_str()).collect();
    assert_eq!(words, expected, "{heard:?}");
    for (h, p) in heard.iter().zip(&want) {
        // The clip occupies [at, at + 1 s]; the decision comes after the word is in a
        // window, and well before the next word (latency goal: 300 ms after the word).
        assert!(
            h.time > p.at_s + 0.25 && h.time < p.at_s + 2.25,
            "{} heard at {} s, spoken at {} s",
            h.word,
            h.time,
            p.at_s
        );
    }
}

#[test]
fn noise_and_silence_alone_produce_no_words() {
    let sb = AlsaSandbox::new().unwrap();
    let mut s = stream(20.0, &[]);
    // Half of it digital silence: exercises the energy gate too.
    s[..RATE * 10].iter_mut().for_each(|x| *x = 0.0);
    let heard = listen(&sb, s, 20.0);
    assert!(heard.is_empty(), "{heard:?}");
}
