//! What the speech-embedding front end costs on this machine (a bench binary that prints
//! figures; no assertions, since timings depend on the machine).
//!
//! Run: `cargo bench --bench embedding` (env: `KWS_BENCH_ITERS`, default 300;
//! `KWS_BENCH_META`, default models/embedding/kws.toml, for the whole-recognizer figure).
//!
//! Figures (median wall / this thread's CPU):
//! 1. one mel call (1 760 samples -> 8 frames), one embedding call, and one call computing a
//!    run of 16 windows' embeddings (as `adapt` and `evaluate` do), LiteRT, 1 thread;
//! 2. the embedding stream alone: CPU per second of audio (one mel + one embedding per 80 ms);
//! 3. the whole recognizer (48 kHz stereo capture chunks -> resampler -> front end -> head ->
//!    detector) on 60 s of the committed keyword clips, as % of one core, with the energy gate
//!    (default config) and on a stream where every window is loud enough to pass it.
mod common;
use common::{repo, thread_cpu};

use std::path::PathBuf;
use std::time::Instant;

use chatterbox::audio::wav::read_clip;
use chatterbox::audio::PcmFormat;
use chatterbox::kws::embedding::{
    EmbeddingStream, LiteRtSpeechModels, SpeechModels, EMBEDDINGS_PER_RUN, EMBEDDING_DIM,
    EMBEDDING_WINDOW, MEL_BINS, MEL_CALL_SAMPLES, MEL_FRAMES_PER_BLOCK,
};
use chatterbox::kws::listener::{Recognizer, RecognizerConfig};
use chatterbox::kws::meta::KwsMeta;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn time(n: usize, mut f: impl FnMut()) -> (f64, f64) {
    for _ in 0..5 {
        f();
    }
    let (mut wall, mut cpu) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let (w0, c0) = (Instant::now(), thread_cpu());
        f();
        cpu.push((thread_cpu() - c0).as_secs_f64() * 1e3);
        wall.push(w0.elapsed().as_secs_f64() * 1e3);
    }
    (median(wall), median(cpu))
}

fn models(meta: &KwsMeta) -> LiteRtSpeechModels {
    let e = meta.embedding.as_ref().expect("an embedding contract");
    let (mel, emb) = meta.embedding_paths().unwrap();
    LiteRtSpeechModels::load(&mel, &e.mel_sha256, &emb, &e.embedding_sha256)
        .unwrap_or_else(|e| die(e))
}

fn die(e: impl std::fmt::Display) -> ! {
    eprintln!("{e}");
    std::process::exit(1)
}

/// 60 s of speech: the committed keyword clips back to back, repeated.
fn speech_16k() -> Vec<f32> {
    let dir = repo().join("tests/fixtures/kws_clips");
    let mut clips: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "wav"))
        .collect();
    clips.sort();
    let mut out = Vec::new();
    while out.len() < 60 * 16_000 {
        for c in &clips {
            out.extend(read_clip(c, 10.0).unwrap().samples);
        }
    }
    out.truncate(60 * 16_000);
    out
}

fn main() {
    let iters = std::env::var("KWS_BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300usize);
    let meta_path = std::env::var_os("KWS_BENCH_META")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("models/embedding/kws.toml"));
    let meta = KwsMeta::load(&meta_path).unwrap_or_else(|e| die(e));
    println!(
        "embedding bench ({}), {iters} calls per figure, medians (wall / thread CPU)",
        meta_path.display()
    );

    let mut m = models(&meta);
    let block: Vec<f32> = (0..MEL_CALL_SAMPLES)
        .map(|i| (i as f32 * 0.05).sin() * 3000.0)
        .collect();
    let mut frames = vec![0.0; MEL_FRAMES_PER_BLOCK * MEL_BINS];
    let (w, c) = time(iters, || m.mel(&block, &mut frames).unwrap());
    println!("  mel call (1760 samples -> 8 frames):   {w:.3} ms / {c:.3} ms");
    let mels = vec![1.5f32; EMBEDDING_WINDOW * MEL_BINS];
    let mut emb = vec![0.0; EMBEDDING_DIM];
    let (w, c) = time(iters, || m.embed(&mels, &mut emb).unwrap());
    println!("  embedding call (76 frames -> 96):      {w:.3} ms / {c:.3} ms");
    // A run of windows in one call, as `adapt` and `evaluate` compute a clip (the first call
    // compiles the wide model; `time` warms up past it).
    let run = EMBEDDINGS_PER_RUN;
    let mels = vec![1.5f32; (EMBEDDING_WINDOW + MEL_FRAMES_PER_BLOCK * (run - 1)) * MEL_BINS];
    let mut embs = vec![0.0; run * EMBEDDING_DIM];
    let (w, c) = time(iters.div_ceil(4), || m.embed_run(&mels, &mut embs).unwrap());
    println!(
        "  run of {run} embeddings in one call:      {w:.3} ms / {c:.3} ms ({:.3} ms CPU each)",
        c / run as f64
    );

    let speech = speech_16k();
    let mut stream = EmbeddingStream::new(Box::new(models(&meta)), 16);
    let c0 = thread_cpu();
    for chunk in speech.chunks(160) {
        stream.push(chunk).unwrap();
    }
    let cpu = (thread_cpu() - c0).as_secs_f64();
    println!(
        "  embedding stream alone: {:.1} ms CPU per s of audio ({:.2} % of one core), {} embeddings in 60 s",
        cpu / 60.0 * 1e3,
        cpu / 60.0 * 100.0,
        stream.embeddings()
    );

    // The whole recognizer on 48 kHz stereo capture chunks (what the toy's mic gives).
    let mic = PcmFormat {
        rate: 48_000,
        channels: 2,
    };
    let to_mic = |x: &[f32], gain: f32| -> Vec<i16> {
        let mut out = Vec::with_capacity(x.len() * 6);
        for w in x.windows(2) {
            for k in 0..3 {
                let v = w[0] + (w[1] - w[0]) * k as f32 / 3.0;
                let s = (v * gain * 32767.0).clamp(-32768.0, 32767.0) as i16;
                out.extend([s, s]);
            }
        }
        out
    };
    for (label, gain) in [
        ("keyword clips as recorded", 1.0f32),
        ("the same, +20 dB (every window passes the gate)", 10.0),
    ] {
        let pcm = to_mic(&speech, gain);
        let mut r =
            Recognizer::load(&meta_path, &RecognizerConfig::default()).unwrap_or_else(|e| die(e));
        let c0 = thread_cpu();
        for chunk in pcm.chunks(960 * 2) {
            r.push(chunk, mic).unwrap_or_else(|e| die(e));
        }
        let cpu = (thread_cpu() - c0).as_secs_f64();
        let s = r.stats();
        println!(
            "  recognizer, {label}: {:.2} % of one core ({} hops, {} head runs, {} detections in 60 s)",
            cpu / 60.0 * 100.0,
            s.hops,
            s.inferences,
            s.detections
        );
    }
}
