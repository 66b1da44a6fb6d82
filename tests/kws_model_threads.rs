//! LiteRT's thread count: with `NUM_THREADS` = 1 it must start no worker threads.
//!
//! The count reaches LiteRT's CPU (XNNPACK) accelerator as a hand-written TOML payload under the
//! "xnnpack" options key (see `ffi::Options::cpu`), so nothing but this test notices if a LiteRT
//! upgrade renames the key, changes the format, or starts a pool regardless. Threads are counted
//! in /proc/self/task, which is why this check is a test binary of its own with a single test:
//! no other test's threads can appear or vanish while it counts.
#![cfg(target_os = "linux")]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use chatterbox::kws::model::ffi::{
    CompiledModel, Environment, Io, Model, ModelBytes, Options, TensorBuffer,
};
use chatterbox::kws::model::{Classifier, LiteRtClassifier, NUM_THREADS};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models")
}

/// Ids of this process's threads.
fn thread_ids() -> BTreeSet<u32> {
    std::fs::read_dir("/proc/self/task")
        .expect("read /proc/self/task")
        .map(|e| e.unwrap().file_name().to_string_lossy().parse().unwrap())
        .collect()
}

/// Threads that exist after `f` ran (and while what it returned is alive) but not before.
fn threads_started_by<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = thread_ids();
    let kept = f();
    let after = thread_ids();
    (kept, after.difference(&before).count())
}

/// Loads the shipped-shape int8 fixture with the classifier (the application's path, with
/// `NUM_THREADS`) and runs it a few times.
/// tests/fixtures/models/manifest.toml's pin of kws_tiny_int8.tflite.
const INT8_SHA256: &str = "91bef90f7643a274a155c182c051ef54acd448a6f0557f64787981b72e8efedf";

fn classify_with_the_classifier() -> LiteRtClassifier {
    let dir = fixtures();
    let labels: Vec<String> = std::fs::read_to_string(dir.join("labels.txt"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let mut c = LiteRtClassifier::load(
        &dir.join("kws_tiny_int8.tflite"),
        labels,
        false,
        INT8_SHA256,
    )
    .unwrap();
    let features = vec![0.5f32; c.input_shape().iter().product()];
    let mut scores = vec![0.0; c.labels().len()];
    for _ in 0..3 {
        c.classify(&features, &mut scores).unwrap();
    }
    c
}

/// Compiles and runs the same model through the FFI layer with `threads` CPU threads, and
/// returns how many threads exist during the run that did not before.
fn threads_started_with(threads: i32) -> usize {
    let raw = std::fs::read(fixtures().join("kws_tiny_int8.tflite")).unwrap();
    let before = thread_ids();
    let env = Environment::new().unwrap();
    let model = Model::from_bytes(ModelBytes::pinned(&raw, INT8_SHA256).unwrap()).unwrap();
    let options = Options::cpu(threads).unwrap();
    let mut compiled = CompiledModel::new(&env, &model, &options).unwrap();
    let out_dims = compiled.output_dims().unwrap();
    let (in_t, out_t) = (
        model.tensor(Io::Input).unwrap(),
        model.tensor(Io::Output).unwrap(),
    );
    let n_in = in_t.dims.iter().product::<i32>() as usize;
    let n_out = out_dims.iter().product::<i32>() as usize;
    let mut input = TensorBuffer::managed(&env, &in_t, &in_t.dims, n_in).unwrap();
    let mut output = TensorBuffer::managed(&env, &out_t, &out_dims, n_out).unwrap();
    input.lock_write::<i8>(n_in).unwrap().as_mut_slice().fill(3);
    for _ in 0..3 {
        compiled.run(&mut input, &mut output).unwrap();
    }
    thread_ids().difference(&before).count()
}

#[test]
fn one_litert_thread_means_no_worker_threads() {
    assert_eq!(
        NUM_THREADS, 1,
        "the classifier is meant to run on one thread"
    );

    let (classifier, started) = threads_started_by(classify_with_the_classifier);
    println!("classifier with NUM_THREADS = {NUM_THREADS}: {started} new thread(s)");
    assert_eq!(
        started, 0,
        "LiteRT started {started} thread(s) for a 1-thread classifier; a LiteRT upgrade may \
         have changed how the \"xnnpack\" num_threads option is read (ffi::Options::cpu)"
    );
    drop(classifier);

    // Control: the same counting sees the pool that more threads ask for, so the option does
    // reach XNNPACK and "0" above is not an artefact of how threads are counted.
    // (Measured with LiteRT 2.1.4: 4 threads start 3 workers.)
    let with_four = threads_started_with(4);
    println!("ffi with 4 threads: {with_four} new thread(s)");
    assert!(
        with_four >= 1,
        "4 LiteRT threads started no worker thread: the thread count no longer reaches XNNPACK"
    );
    assert_eq!(threads_started_with(1), 0, "ffi with 1 thread");
}
