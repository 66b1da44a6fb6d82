//! The committed keyword model, checked the way CI can without training: it loads through
//! the same code as the toy, declares the labels and input shape the runtime expects, and
//! classifies held-out clips (voices the model never heard in training) correctly.

use std::path::{Path, PathBuf};

use chatterbox::audio::wav::read_clip;
use chatterbox::kws::features::Stft;
use chatterbox::kws::meta::KwsMeta;
use chatterbox::kws::model::{Classifier, LiteRtClassifier};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn load() -> (KwsMeta, LiteRtClassifier) {
    let meta = KwsMeta::load(repo().join("models/kws.toml")).expect("models/kws.toml loads");
    let model = LiteRtClassifier::load(
        &meta.model_path(),
        meta.labels.clone(),
        meta.model.output == chatterbox::kws::meta::ModelOutput::Logits,
    )
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

/// Label of a fixture clip: the part of its file name before `__`.
fn label_of(path: &Path) -> String {
    let name = path.file_name().unwrap().to_string_lossy();
    name.split("__").next().unwrap().to_string()
}

#[test]
fn shipped_model_classifies_held_out_clips() {
    let (meta, mut model) = load();
    let mut stft = Stft::new(&meta.features).unwrap();
    let mut features = vec![0.0f32; stft.len()];
    let mut scores = vec![0.0f32; meta.labels.len()];
    let dir = repo().join("tests/fixtures/kws_clips");
    let mut clips: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "wav"))
        .collect();
    clips.sort();
    assert!(
        clips.len() >= 10,
        "expected a handful of clips in {}",
        dir.display()
    );
    let mut wrong = Vec::new();
    for path in &clips {
        let clip = read_clip(path, 2.0).unwrap();
        assert_eq!((clip.rate, clip.channels), (16000, 1), "{}", path.display());
        stft.features(
            &clip.samples[..clip.samples.len().min(16000)],
            &mut features,
        )
        .unwrap();
        model.classify(&features, &mut scores).unwrap();
        let (best, p) = scores
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap();
        let want = label_of(path);
        if meta.labels[best] != want {
            wrong.push(format!(
                "{}: got {} ({p:.2}), want {want}",
                path.file_name().unwrap().to_string_lossy(),
                meta.labels[best]
            ));
        }
    }
    assert!(wrong.is_empty(), "misclassified: {wrong:#?}");
}
