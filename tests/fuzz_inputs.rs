//! Property-based fuzzing of the two parsers that read what a person can put on the SD
//! card: the WAV loader (`audio::wav::read_clip`, then `convert` to a device format) and
//! the config parser (`Config::parse`). Each must answer with a value or an error naming
//! its input — never panic, never hang, never hand back samples outside -1..1.
//!
//! Cases per property: `PROPTEST_CASES` (default 256 here; `.ci/run` runs 5000). Each test
//! prints how many inputs it ran and how many were accepted.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use chatterbox::audio::wav::{convert, read_clip};
use chatterbox::audio::PcmFormat;
use chatterbox::config::Config;
use proptest::prelude::*;
use proptest::test_runner::{Config as PtConfig, TestRunner};

fn runner() -> TestRunner {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    TestRunner::new(PtConfig {
        cases,
        failure_persistence: None,
        ..PtConfig::default()
    })
}

/// A well-formed WAV of random format, as bytes.
fn valid_wav() -> impl Strategy<Value = Vec<u8>> {
    let formats = prop_oneof![
        Just((hound::SampleFormat::Int, 8u16)),
        Just((hound::SampleFormat::Int, 16)),
        Just((hound::SampleFormat::Int, 24)),
        Just((hound::SampleFormat::Int, 32)),
        Just((hound::SampleFormat::Float, 32)),
    ];
    (
        formats,
        1u16..=8,
        prop_oneof![
            Just(8000u32),
            Just(16_000),
            Just(22_050),
            Just(44_100),
            Just(48_000),
            1000u32..=384_000
        ],
        0usize..300,
        any::<u64>(),
    )
        .prop_map(|((fmt, bits), channels, rate, frames, seed)| {
            let spec = hound::WavSpec {
                channels,
                sample_rate: rate,
                bits_per_sample: bits,
                sample_format: fmt,
            };
            let mut cursor = std::io::Cursor::new(Vec::new());
            {
                let mut w = hound::WavWriter::new(&mut cursor, spec).unwrap();
                let mut x = seed;
                for _ in 0..frames * usize::from(channels) {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let r = (x >> 33) as i64;
                    match (fmt, bits) {
                        (hound::SampleFormat::Float, _) => {
                            // Any bit pattern, NaN and infinities included.
                            w.write_sample(f32::from_bits((x >> 16) as u32)).unwrap()
                        }
                        (_, 8) => w.write_sample((r % 256 - 128) as i8).unwrap(),
                        (_, 16) => w.write_sample(r as i16).unwrap(),
                        (_, 24) => w.write_sample((r % (1 << 23)) as i32).unwrap(),
                        _ => w.write_sample(r as i32).unwrap(),
                    }
                }
                w.finalize().unwrap();
            }
            cursor.into_inner()
        })
}

/// A valid WAV with some bytes overwritten and maybe cut short.
fn mutated_wav() -> impl Strategy<Value = Vec<u8>> {
    (
        valid_wav(),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        prop::option::of(any::<prop::sample::Index>()),
    )
        .prop_map(|(mut bytes, edits, cut)| {
            for (at, b) in edits {
                let i = at.index(bytes.len());
                bytes[i] = b;
            }
            if let Some(cut) = cut {
                bytes.truncate(cut.index(bytes.len() + 1));
            }
            bytes
        })
}

fn max_seconds() -> impl Strategy<Value = f32> {
    prop_oneof![
        Just(120.0f32),
        Just(0.0),
        Just(-1.0),
        Just(f32::NAN),
        Just(f32::INFINITY),
        0.0f32..5.0,
    ]
}

fn check_wav(bytes: &[u8], max_s: f32, accepted: &AtomicUsize) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fuzz.wav");
    std::fs::write(&path, bytes).unwrap();
    match read_clip(&path, max_s) {
        Ok(clip) => {
            accepted.fetch_add(1, Ordering::Relaxed);
            prop_assert!(clip.channels >= 1 && clip.channels <= 2);
            prop_assert_eq!(clip.samples.len() % usize::from(clip.channels), 0);
            prop_assert!(clip.samples.iter().all(|s| s.is_finite() && s.abs() <= 1.0));
            // Whatever was accepted can be converted for a device.
            for to in [
                PcmFormat {
                    rate: 48_000,
                    channels: 2,
                },
                PcmFormat {
                    rate: 16_000,
                    channels: 1,
                },
            ] {
                if clip.frames() > 0 {
                    let out = convert(&clip, to, 1.0);
                    prop_assert!(out.is_ok(), "convert failed: {:?}", out.err());
                }
            }
        }
        Err(e) => {
            let text = e.to_string();
            prop_assert!(
                text.contains("fuzz.wav"),
                "error does not name the file: {}",
                text
            );
        }
    }
    Ok(())
}

#[test]
fn wav_loader_survives_random_bytes() {
    let (runs, accepted) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let strategy = (
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..512),
            // RIFF/WAVE magic in front of garbage gets further into the parser.
            prop::collection::vec(any::<u8>(), 0..512).prop_map(|mut v| {
                let mut head = b"RIFF\x00\x10\x00\x00WAVEfmt ".to_vec();
                head.append(&mut v);
                head
            }),
        ],
        max_seconds(),
    );
    runner()
        .run(&strategy, |(bytes, max_s)| {
            runs.fetch_add(1, Ordering::Relaxed);
            check_wav(&bytes, max_s, &accepted)
        })
        .unwrap();
    println!(
        "wav fuzz (random bytes): {} inputs, {} accepted, 0 panics",
        runs.into_inner(),
        accepted.into_inner()
    );
}

#[test]
fn wav_loader_survives_mutated_valid_files() {
    let (runs, accepted) = (AtomicUsize::new(0), AtomicUsize::new(0));
    runner()
        .run(&(mutated_wav(), max_seconds()), |(bytes, max_s)| {
            runs.fetch_add(1, Ordering::Relaxed);
            check_wav(&bytes, max_s, &accepted)
        })
        .unwrap();
    println!(
        "wav fuzz (mutated valid files): {} inputs, {} accepted, 0 panics",
        runs.into_inner(),
        accepted.into_inner()
    );
}

#[test]
fn valid_wavs_of_every_format_are_accepted() {
    let runs = AtomicUsize::new(0);
    runner()
        .run(&valid_wav(), |bytes| {
            runs.fetch_add(1, Ordering::Relaxed);
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("ok.wav");
            std::fs::write(&path, &bytes).unwrap();
            let clip = read_clip(&path, 120.0);
            prop_assert!(clip.is_ok(), "refused a valid file: {:?}", clip.err());
            Ok(())
        })
        .unwrap();
    println!(
        "wav fuzz (valid files): {} inputs, all accepted",
        runs.into_inner()
    );
}

/// Every key of the config, with a value of a random type and size.
fn config_text() -> impl Strategy<Value = String> {
    let keys = [
        ("audio", "capture_device"),
        ("audio", "playback_device"),
        ("audio", "rate"),
        ("audio", "channels"),
        ("audio", "chunk_ms"),
        ("audio", "pace_capture"),
        ("audio", "max_clip_seconds"),
        ("audio", "volume"),
        ("library", "recordings_dir"),
        ("library", "sounds_dir"),
        ("button", "pin"),
        ("button", "debounce_ms"),
        ("button", "poll_ms"),
        ("button", "record_hold_s"),
        ("button", "erase_hold_s"),
        ("button", "record_seconds"),
        ("leds", "green_pin"),
        ("leds", "red_pin"),
        ("display", "enabled"),
        ("display", "i2c_bus"),
        ("display", "address"),
        ("display", "size"),
        ("keywords", "enabled"),
        ("keywords", "model"),
        ("keywords", "hop_ms"),
        ("keywords", "average_ms"),
        ("keywords", "threshold"),
        ("keywords", "refractory_ms"),
        ("keywords", "quiet_dbfs"),
        ("keywords.commands", "go"),
        ("keywords.commands", "stop"),
    ];
    let value = prop_oneof![
        any::<i64>().prop_map(|v| v.to_string()),
        (-1000i64..100_000).prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| format!("{v:?}")),
        Just("nan".to_string()),
        Just("-inf".to_string()),
        any::<bool>().prop_map(|v| v.to_string()),
        "\\PC{0,12}".prop_map(|s| format!("{s:?}")),
        Just("[1, 2]".to_string()),
        Just("{ a = 1 }".to_string()),
        Just("\"play-random\"".to_string()),
    ];
    prop::collection::vec((prop::sample::select(keys.to_vec()), value), 0..6).prop_map(|entries| {
        let mut text = String::new();
        for ((section, key), v) in entries {
            text.push_str(&format!("[{section}]\n{key} = {v}\n"));
        }
        text
    })
}

#[test]
fn config_parser_survives_random_and_mistyped_input() {
    let (runs, accepted) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let strategy = prop_oneof![
        config_text(),
        "\\PC{0,200}",
        any::<Vec<u8>>().prop_map(|b| String::from_utf8_lossy(&b).into_owned())
    ];
    runner()
        .run(&strategy, |text| {
            runs.fetch_add(1, Ordering::Relaxed);
            match Config::parse(&text, Path::new("fuzz.toml"), Path::new("/base")) {
                Ok(cfg) => {
                    accepted.fetch_add(1, Ordering::Relaxed);
                    // Whatever parses must also pass validation on its own.
                    prop_assert!(cfg.validate(Path::new("fuzz.toml")).is_ok());
                }
                Err(e) => {
                    let msg = e.to_string();
                    prop_assert!(
                        msg.contains("fuzz.toml"),
                        "error does not name the file: {}",
                        msg
                    );
                }
            }
            Ok(())
        })
        .unwrap();
    println!(
        "config fuzz: {} inputs, {} accepted, 0 panics",
        runs.into_inner(),
        accepted.into_inner()
    );
}
