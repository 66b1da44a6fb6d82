//! Time of the scipy-exact STFT of one 1 s window (the work done every hop on the Pi).
//!
//! Compare with `scripts/bench_stft_scipy.py`, which times scipy on the same input.
//! Run: `nice cargo bench --bench stft -- --measurement-time 5`
//!
//! The `cpu/` variants report this thread's CPU time instead of wall time (`CLOCK_THREAD_CPUTIME_ID`), which stays meaningful on a loaded machine where
//! wall time mostly measures waiting for a core; the Python script reports both too.
use chatterbox::kws::features::Stft;
use chatterbox::kws::meta::FeatureSpec;
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// CPU time of the calling thread (`CLOCK_THREAD_CPUTIME_ID`), or `None` if unavailable.
fn thread_cpu_time() -> Option<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    (rc == 0).then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

/// Runs `f` `iters` times and returns the CPU time spent (wall time as a fallback).
fn cpu_timed(iters: u64, mut f: impl FnMut()) -> Duration {
    let (cpu0, wall0) = (thread_cpu_time(), Instant::now());
    for _ in 0..iters {
        f();
    }
    match (cpu0, thread_cpu_time()) {
        (Some(a), Some(b)) => b - a,
        _ => wall0.elapsed(),
    }
}

/// The same deterministic input as the Python bench: a 1 kHz sine plus a 3.3 kHz one.
fn signal(n: usize, rate: f32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let t = i as f32 / rate;
            0.5 * (2.0 * std::f32::consts::PI * 1000.0 * t).sin()
                + 0.25 * (2.0 * std::f32::consts::PI * 3300.0 * t).sin()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let spec = FeatureSpec::default();
    let mut stft = Stft::new(&spec).expect("default spec is valid");
    let x = signal(spec.clip_samples, spec.sample_rate as f32);
    let mut out = vec![0.0f32; stft.len()];
    c.bench_function("stft_1s_16k_255_124_256", |b| {
        b.iter(|| {
            stft.compute(black_box(&x), &mut out).expect("sizes match");
            black_box(&out);
        })
    });
    c.bench_function("cpu/stft_1s_16k_255_124_256", |b| {
        b.iter_custom(|iters| {
            cpu_timed(iters, || {
                stft.compute(black_box(&x), &mut out).expect("sizes match");
                black_box(&out);
            })
        })
    });
    let log_spec = FeatureSpec {
        log_epsilon: Some(1e-6),
        ..FeatureSpec::default()
    };
    let mut log_stft = Stft::new(&log_spec).expect("valid spec");
    c.bench_function("stft_1s_plus_log_transform", |b| {
        b.iter(|| {
            log_stft
                .features(black_box(&x), &mut out)
                .expect("sizes match");
            black_box(&out);
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
