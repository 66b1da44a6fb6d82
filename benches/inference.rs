//! Times `Classifier::classify` on the committed tiny keyword models (a bench binary that
//! prints figures; no assertions, since timings depend on the machine).
//!
//! Run: `cargo bench --bench inference` (optionally `-- --iters 2000`), or time any models
//! with `-- --model models/kws.tflite --model models/kws-float.tflite` (labels are read from
//! `labels.txt` beside each model; an `output = "logits"` model is named with `--logits`).
//! On the Pi, copy the release bench binary and tests/fixtures/models/ over and run it there
//! with `--fixtures DIR`.
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chatterbox::kws::model::{Classifier, LiteRtClassifier, NUM_THREADS};

fn main() {
    let mut iters = 500usize;
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models");
    let mut models: Vec<(PathBuf, bool)> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--iters" => iters = args.next().and_then(|v| v.parse().ok()).unwrap_or(iters),
            "--fixtures" => dir = args.next().map(PathBuf::from).unwrap_or(dir),
            "--model" => models.extend(args.next().map(|m| (PathBuf::from(m), false))),
            "--logits" => models.extend(args.next().map(|m| (PathBuf::from(m), true))),
            _ => {} // cargo bench passes --bench
        }
    }
    if models.is_empty() {
        models = vec![
            (dir.join("kws_tiny_float.tflite"), true),
            (dir.join("kws_tiny_int8.tflite"), false),
        ];
    }
    println!("classify() timing, {iters} calls per model, {NUM_THREADS} LiteRT thread(s)");
    for (path, logits) in models {
        let labels_path = path.with_file_name("labels.txt");
        let labels: Vec<String> = match std::fs::read_to_string(&labels_path) {
            Ok(s) => s.lines().map(str::to_owned).collect(),
            Err(e) => {
                eprintln!("cannot read {}: {e}", labels_path.display());
                std::process::exit(1);
            }
        };
        let name = path.display().to_string();
        let t0 = Instant::now();
        // The bench trusts the file it is pointed at: its pin is its own sha256.
        let pin = std::fs::read(&path)
            .map(|b| chatterbox::kws::model::sha256_hex(&b))
            .unwrap_or_default();
        let mut c = match LiteRtClassifier::load(&path, labels.clone(), logits, &pin) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        };
        let load = t0.elapsed();
        let n: usize = c.input_shape().iter().product();
        // A deterministic, spectrogram-like input (values in the log-magnitude range).
        let features: Vec<f32> = (0..n)
            .map(|i| -6.0 + ((i * 7919) % 1000) as f32 / 250.0)
            .collect();
        let mut scores = vec![0.0; labels.len()];
        for _ in 0..20 {
            c.classify(&features, &mut scores).expect("classify");
        }
        let mut times: Vec<Duration> = Vec::with_capacity(iters);
        for _ in 0..iters {
            let t = Instant::now();
            c.classify(&features, &mut scores).expect("classify");
            times.push(t.elapsed());
        }
        times.sort();
        let total: Duration = times.iter().sum();
        let pct = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
        println!(
            "{name:40} load {:>8.2?}  mean {:>8.2?}  median {:>8.2?}  p99 {:>8.2?}  max {:>8.2?}",
            load,
            total / iters as u32,
            pct(0.5),
            pct(0.99),
            times[times.len() - 1]
        );
    }
}
