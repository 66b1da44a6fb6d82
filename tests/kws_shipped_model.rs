//! The committed keyword model, checked the way CI can without training: it loads through
//! the same code as the toy, declares the labels and input shape the runtime expects, and
//! the Rust runtime agrees with Python on the fixture clips.
//!
//! The fixture clips are a PARITY check, not an accuracy figure: the trainer picked them
//! among test-split clips that the model already classifies right in Python with
//! probability >= 0.8, so 100 % here says the Rust features, quantization and LiteRT call
//! reproduce Python's decisions, nothing about how often the model is right. Accuracy on
//! held-out voices is measured by the protocol (`python -m kws.protocol`, `cargo bench
//! --bench kws_stream_eval -- --report`) and reported in models/README.md.

use std::path::PathBuf;

use chatterbox::kws::evaluate::{evaluate_dir, Clips};
use chatterbox::kws::head::Head;
use chatterbox::kws::meta::KwsMeta;
use chatterbox::kws::model::Classifier;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn load() -> (KwsMeta, Head) {
    let meta = KwsMeta::load(repo().join("models/kws.toml")).expect("models/kws.toml loads");
    let model = chatterbox::kws::front_end::load_classifier(&meta)
        .expect("models/kws.tflite loads in LiteRT");
    (meta, model)
}

#[test]
fn shipped_model_has_the_declared_labels_and_shape() {
    let (meta, model) = load();
    let mut labels = meta.labels.clone();
    labels.sort();
    assert_eq!(
        labels,
        ["down", "go", "left", "no", "right", "silence", "stop", "unknown", "up", "yes"]
    );
    let f = &meta.features;
    assert_eq!(
        (f.sample_rate, f.clip_samples, f.nperseg, f.noverlap, f.nfft),
        (16000, 16000, 255, 124, 256)
    );
    assert_eq!(f.bins() * f.frames(), 129 * 124);
    let elements: usize = model.input_shape().iter().product();
    assert_eq!(elements, 129 * 124, "input shape {:?}", model.input_shape());
    let size = std::fs::metadata(meta.model_path()).unwrap().len();
    assert!(
        size <= 200 * 1024,
        "int8 model is {size} bytes; the goal is <= 200 KB"
    );
}

#[test]
fn shipped_model_agrees_with_python_on_the_parity_clips() {
    let (meta, mut model) = load();
    let dir = repo().join("tests/fixtures/kws_clips");
    let eval = evaluate_dir(&meta, &mut model, &dir, Clips::All).unwrap();
    assert!(
        eval.results.len() >= 10,
        "a handful of clips in {}",
        dir.display()
    );
    assert!(eval.skipped.is_empty(), "{:?}", eval.skipped);
    assert_eq!(eval.correct(), eval.results.len(), "\n{}", eval.render());
}
