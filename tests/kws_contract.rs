//! The feature contract (kws.toml): it names the front end and pins every file it names by
//! sha256; a missing, malformed or wrong pin is refused with a message naming the file and the
//! fix, before LiteRT reads a byte.
use std::path::{Path, PathBuf};

use chatterbox::kws::front_end::FrontEnd;
use chatterbox::kws::listener::{KwsError, Recognizer, RecognizerConfig};
use chatterbox::kws::meta::{FrontEndKind, KwsMeta};
use chatterbox::kws::model::ModelError;

const MEL_SHA: &str = "96fa0adccb6e8cf95cb14465409a1a2898ee4a96a85bb9ed3c7eb0e68bf163e8";
const EMB_SHA: &str = "c0aea21eb84a4ce90a08c870da41b7a7173b45269e6a3207c71d67c40f3a59d8";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn embedding_toml(mel_sha: &str, head_sha: &str) -> String {
    format!(
        r#"front_end = "embedding"
[embedding]
mel_file = "melspectrogram.tflite"
mel_sha256 = "{mel_sha}"
embedding_file = "embedding_model.tflite"
embedding_sha256 = "{EMB_SHA}"
embeddings = 16
[model]
file = "head.tflite"
sha256 = "{head_sha}"
labels = "labels.txt"
output = "softmax"
"#
    )
}

/// A model folder in a temp dir holding the two feature models, a labels file and `toml`.
fn folder(toml: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in ["melspectrogram.tflite", "embedding_model.tflite"] {
        std::fs::copy(repo().join("models/embedding").join(f), dir.path().join(f)).unwrap();
    }
    std::fs::copy(
        repo().join("models/labels.txt"),
        dir.path().join("labels.txt"),
    )
    .unwrap();
    std::fs::write(dir.path().join("kws.toml"), toml).unwrap();
    dir
}

fn meta_err(toml: &str) -> String {
    KwsMeta::parse(toml, Path::new("models/x/kws.toml"))
        .unwrap_err()
        .to_string()
}

#[test]
fn the_stft_model_folder_still_loads_as_the_stft_front_end() {
    let meta = KwsMeta::load(repo().join("models/kws.toml")).unwrap();
    assert_eq!(meta.front_end, FrontEndKind::Stft);
    assert_eq!(meta.model.sha256.len(), 64);
    assert!(matches!(FrontEnd::load(&meta).unwrap(), FrontEnd::Stft(_)));
    Recognizer::load(
        &repo().join("models/kws.toml"),
        &RecognizerConfig::default(),
    )
    .expect("the shipped STFT model loads with its pin");
}

#[test]
fn a_missing_or_malformed_pin_is_refused_naming_the_file_and_the_fix() {
    let stft = std::fs::read_to_string(repo().join("models/kws.toml")).unwrap();
    let unpinned: String = stft
        .lines()
        .filter(|l| !l.starts_with("sha256"))
        .map(|l| format!("{l}\n"))
        .collect();
    let e = meta_err(&unpinned);
    assert!(
        e.contains("model.sha256")
            && e.contains("sha256sum kws.tflite")
            && e.contains("models/x/kws.toml"),
        "{e}"
    );
    let e = meta_err(&stft.replace(
        "sha256 = \"e0f780711b5fefa88fac4e3b78bfcd4d69017d76b2cd64b263e605223037a221\"",
        "sha256 = \"e0f7807\"",
    ));
    assert!(e.contains("not a sha256") && e.contains("64 hex"), "{e}");
    let e = meta_err(&embedding_toml("", &"a".repeat(64)));
    assert!(
        e.contains("embedding.mel_sha256") && e.contains("sha256sum melspectrogram.tflite"),
        "{e}"
    );
}

#[test]
fn each_front_end_takes_only_its_own_table() {
    let e = meta_err("front_end = \"embedding\"\n[model]\nfile = \"h.tflite\"\nsha256 = \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"\nlabels = \"l.txt\"\noutput = \"softmax\"\n");
    assert!(e.contains("embedding") && e.contains("is missing"), "{e}");
    let stft = std::fs::read_to_string(repo().join("models/kws.toml")).unwrap();
    let e = meta_err(&stft.replace("front_end = \"stft\"", "front_end = \"embedding\""));
    assert!(
        e.contains("`features`") && e.contains("only for front_end = \"stft\""),
        "{e}"
    );
    let e = meta_err(&stft.replace("front_end = \"stft\"", "front_end = \"mfcc\""));
    assert!(e.contains("mfcc"), "{e}");
    let e = meta_err(
        &embedding_toml(MEL_SHA, &"a".repeat(64)).replace("embeddings = 16", "embeddings = 0"),
    );
    assert!(
        e.contains("embedding.embeddings") && e.contains("1..="),
        "{e}"
    );
}

#[test]
fn the_embedding_window_is_the_audio_its_n_embeddings_read() {
    let meta = KwsMeta::parse(
        &embedding_toml(MEL_SHA, &"a".repeat(64)),
        Path::new("kws.toml"),
    )
    .unwrap();
    // 13 280 samples give the first embedding, each 1 280 more one more: 16 -> 32 480.
    assert_eq!(meta.features.clip_samples, 13_280 + 15 * 1_280);
    assert_eq!(
        chatterbox::kws::embedding::embeddings_for_length(meta.features.clip_samples),
        16
    );
}

#[test]
fn a_damaged_feature_model_is_refused_by_its_pin_and_names_the_file() {
    let dir = folder(&embedding_toml(MEL_SHA, &"a".repeat(64)));
    let mel = dir.path().join("melspectrogram.tflite");
    let mut bytes = std::fs::read(&mel).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    std::fs::write(&mel, &bytes).unwrap();
    let meta = KwsMeta::load(dir.path().join("kws.toml")).unwrap();
    let e = FrontEnd::load(&meta).unwrap_err();
    assert!(
        matches!(&e, KwsError::Model(ModelError::ChecksumMismatch { expected, .. }) if expected == MEL_SHA),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("melspectrogram.tflite") && msg.contains("copy the model folder again"),
        "{msg}"
    );

    // The whole recognizer refuses too (the runtime then logs it and runs without voice
    // commands: the button keeps working).
    let Err(e) = Recognizer::load(&dir.path().join("kws.toml"), &RecognizerConfig::default())
    else {
        panic!("a damaged mel model loaded")
    };
    assert!(e.to_string().contains("melspectrogram.tflite"), "{e}");
}

#[test]
fn a_missing_feature_model_is_named() {
    let dir = folder(&embedding_toml(MEL_SHA, &"a".repeat(64)));
    std::fs::remove_file(dir.path().join("embedding_model.tflite")).unwrap();
    let meta = KwsMeta::load(dir.path().join("kws.toml")).unwrap();
    let e = FrontEnd::load(&meta).unwrap_err();
    assert!(
        matches!(&e, KwsError::Model(ModelError::NotFound { path }) if path.ends_with("embedding_model.tflite")),
        "{e:?}"
    );
}

#[test]
fn unknown_keys_are_still_errors() {
    let e = meta_err(
        &embedding_toml(MEL_SHA, &"a".repeat(64))
            .replace("embeddings = 16", "embeddings = 16\nstride = 2"),
    );
    assert!(e.contains("stride"), "{e}");
}

#[test]
fn the_shipped_embedding_folder_loads_pinned_and_hears_the_committed_clips() {
    use chatterbox::kws::evaluate::{evaluate_dir, Clips};
    let toml = repo().join("models/embedding/kws.toml");
    let meta = KwsMeta::load(&toml).unwrap();
    assert_eq!(meta.front_end, FrontEndKind::Embedding);
    let mut head = chatterbox::kws::front_end::load_classifier(&meta).unwrap();
    let eval = evaluate_dir(
        &meta,
        &mut head,
        &repo().join("tests/fixtures/kws_clips"),
        Clips::All,
    )
    .unwrap();
    println!("{}", eval.render());
    // 20 clips of held-out voices, 10 classes: chance is 2. A broken front end (scaling, cut,
    // placement) scores about that; the trained head scores far above (see the model card).
    assert!(
        eval.correct() >= 12,
        "only {} of {} fixture clips right",
        eval.correct(),
        eval.results.len()
    );
    Recognizer::load(&toml, &RecognizerConfig::default()).expect("the recognizer builds");
}

/// Each model carries the threshold it was tuned to; `keywords.threshold = "model"` (the
/// default) uses it, a number in the config overrides it, and a model without one gets the
/// value the STFT model was tuned to.
#[test]
fn the_detector_threshold_follows_the_model_unless_the_config_names_one() {
    use chatterbox::config::{KeywordConfig, Threshold};
    let embedding = repo().join("models/embedding/kws.toml");
    let stft = repo().join("models/kws.toml");
    assert_eq!(
        KwsMeta::load(&embedding).unwrap().detector.threshold,
        Some(0.98)
    );
    let threshold = |model: &Path, t: Threshold| {
        let cfg = RecognizerConfig::from_config(&KeywordConfig {
            threshold: t,
            ..KeywordConfig::default()
        });
        Recognizer::load(model, &cfg)
            .unwrap()
            .detector_config()
            .threshold
    };
    assert_eq!(threshold(&embedding, Threshold::Model), 0.98);
    assert_eq!(threshold(&stft, Threshold::Model), 0.85);
    assert_eq!(threshold(&embedding, Threshold::Fixed(0.7)), 0.7);
    assert_eq!(threshold(&stft, Threshold::Fixed(0.7)), 0.7);
    let bad = embedding_toml(MEL_SHA, "0".repeat(64).as_str()) + "[detector]\nthreshold = 1.5\n";
    let e = meta_err(&bad);
    assert!(e.contains("detector.threshold"), "{e}");
    let e = meta_err(
        &(embedding_toml(MEL_SHA, "0".repeat(64).as_str()) + "[detector]\nthresh = 0.9\n"),
    );
    assert!(e.contains("thresh"), "{e}");
}
