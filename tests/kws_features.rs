//! The feature contract and the STFT, checked against files written by scipy itself
//! (scripts/make_stft_fixtures.py) and against the example `kws.toml`.
use std::path::{Path, PathBuf};

use chatterbox::kws::features::Stft;
use chatterbox::kws::meta::{FeatureSpec, KwsMeta, Layout, MetaError, ModelOutput};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

#[derive(serde::Deserialize)]
struct Manifest {
    sample_rate: u32,
    clip_samples: usize,
    nperseg: usize,
    noverlap: usize,
    nfft: usize,
    fixture: Vec<Fixture>,
    #[allow(dead_code)]
    numpy: String,
    #[allow(dead_code)]
    scipy: String,
}

#[derive(serde::Deserialize)]
struct Fixture {
    name: String,
    #[allow(dead_code)]
    description: String,
    samples: usize,
    bins: usize,
    frames: usize,
    peak: f64,
}

fn read_f32(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(bytes.len() % 4, 0, "{} is not whole f32s", path.display());
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn manifest() -> Manifest {
    let text = std::fs::read_to_string(fixtures().join("stft/manifest.toml")).unwrap();
    toml::from_str(&text).unwrap()
}

#[test]
fn stft_matches_scipy_on_every_fixture() {
    let m = manifest();
    let spec = FeatureSpec {
        sample_rate: m.sample_rate,
        clip_samples: m.clip_samples,
        nperseg: m.nperseg,
        noverlap: m.noverlap,
        nfft: m.nfft,
        ..FeatureSpec::default()
    };
    let mut stft = Stft::new(&spec).unwrap();
    assert!(
        m.fixture.len() >= 3,
        "expected sine, noise and chirp at least"
    );
    let dir = fixtures().join("stft");
    for f in &m.fixture {
        assert_eq!(
            (f.bins, f.frames),
            (spec.bins(), spec.frames()),
            "{}",
            f.name
        );
        let signal = read_f32(&dir.join(format!("{}.signal.f32", f.name)));
        assert_eq!(signal.len(), f.samples, "{}", f.name);
        let want = read_f32(&dir.join(format!("{}.mag.f32", f.name)));
        assert_eq!(want.len(), f.bins * f.frames, "{}", f.name);
        let mut got = vec![f32::NAN; stft.len()];
        stft.compute(&signal, &mut got).unwrap();
        let peak = f.peak as f32;
        assert!(peak > 0.0);
        let (worst, at) = got
            .iter()
            .zip(&want)
            .map(|(g, w)| (g - w).abs())
            .enumerate()
            .fold(
                (0.0f32, 0),
                |(m, at), (i, e)| if e > m { (e, i) } else { (m, at) },
            );
        eprintln!(
            "{}: max abs error {:.3e} = {:.3e} of peak (at bin {}, frame {})",
            f.name,
            worst,
            worst / peak,
            at / f.frames,
            at % f.frames
        );
        assert!(
            worst <= 1e-5 * peak,
            "{}: max abs error {worst} > 1e-5 of peak {peak} at bin {}, frame {}",
            f.name,
            at / f.frames,
            at % f.frames
        );
    }
}

#[test]
fn frames_bins_layout_is_the_transpose_of_scipy() {
    let m = manifest();
    let f = &m.fixture[0];
    let dir = fixtures().join("stft");
    let signal = read_f32(&dir.join(format!("{}.signal.f32", f.name)));
    let want = read_f32(&dir.join(format!("{}.mag.f32", f.name)));
    let spec = FeatureSpec {
        layout: Layout::FramesBins,
        ..FeatureSpec::default()
    };
    let mut stft = Stft::new(&spec).unwrap();
    let mut got = vec![0.0; stft.len()];
    stft.compute(&signal, &mut got).unwrap();
    for bin in 0..f.bins {
        for frame in 0..f.frames {
            let (g, w) = (got[frame * f.bins + bin], want[bin * f.frames + frame]);
            assert!(
                (g - w).abs() <= 1e-5 * f.peak as f32,
                "bin {bin} frame {frame}"
            );
        }
    }
}

#[test]
fn example_meta_loads_with_labels_and_paths() {
    let meta = KwsMeta::load(fixtures().join("kws_example.toml")).unwrap();
    assert_eq!(meta.features.bins(), 129);
    assert_eq!(meta.features.frames(), 124);
    assert_eq!(meta.features.layout, Layout::BinsFrames);
    assert_eq!(meta.features.log_epsilon, Some(1e-6));
    assert_eq!((meta.features.mean, meta.features.std), (-5.0, 2.5));
    assert_eq!(meta.model.output, ModelOutput::Softmax);
    assert_eq!(meta.labels.len(), 10);
    assert_eq!(meta.labels[0], "silence");
    assert_eq!(meta.labels[2], "go");
    assert_eq!(
        meta.model_path(),
        fixtures().join("kws_example.tflite"),
        "model.file is relative to the toml's folder"
    );
    // The transform the example declares is applied after the scipy magnitudes.
    let mut stft = Stft::new(&meta.features).unwrap();
    let mut raw = vec![0.0; stft.len()];
    let mut feat = vec![0.0; stft.len()];
    let signal: Vec<f32> = (0..16000).map(|i| (i as f32 * 0.05).sin() * 0.3).collect();
    stft.compute(&signal, &mut raw).unwrap();
    stft.features(&signal, &mut feat).unwrap();
    for (r, f) in raw.iter().zip(&feat) {
        let want = ((r + 1e-6).ln() + 5.0) / 2.5;
        assert!((f - want).abs() < 1e-5, "{f} vs {want}");
    }
}

/// Writes `toml` (and a labels file) to a temp dir and loads it.
fn load_text(toml: &str, labels: Option<&str>) -> Result<KwsMeta, MetaError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kws.toml");
    std::fs::write(&path, toml).unwrap();
    if let Some(labels) = labels {
        std::fs::write(dir.path().join("labels.txt"), labels).unwrap();
    }
    KwsMeta::load(&path)
}

const GOOD: &str = r#"
[features]
sample_rate = 16000
clip_samples = 16000
nperseg = 255
noverlap = 124
nfft = 256
layout = "bins_frames"
[model]
file = "kws.tflite"
sha256 = "e0f780711b5fefa88fac4e3b78bfcd4d69017d76b2cd64b263e605223037a221"
labels = "labels.txt"
output = "logits"
"#;
const LABELS: &str = "silence\nunknown\nyes\nno\n";

#[test]
fn optional_fields_take_their_defaults() {
    let meta = load_text(GOOD, Some(LABELS)).unwrap();
    assert_eq!(meta.features.log_epsilon, None);
    assert_eq!((meta.features.mean, meta.features.std), (0.0, 1.0));
    assert_eq!(meta.model.output, ModelOutput::Logits);
    assert_eq!(meta.labels, ["silence", "unknown", "yes", "no"]);
}

#[test]
fn bad_files_give_errors_that_name_the_field() {
    let cases: &[(&str, &str)] = &[
        (
            &GOOD.replace("nfft = 256", "nfft = 256\nwindow = \"hann\""),
            "window",
        ),
        (&GOOD.replace("\"bins_frames\"", "\"rows\""), "frames_bins"),
        (&GOOD.replace("nfft = 256", "nfft = 128"), "features.nfft"),
        (
            &GOOD.replace("nfft = 256", "nfft = 1000000000"),
            "features.nfft",
        ),
        (
            &GOOD.replace("noverlap = 124", "noverlap = 255"),
            "features.noverlap",
        ),
        (
            &GOOD.replace("nfft = 256", "nfft = 256\nstd = 0.0"),
            "features.std",
        ),
        (
            &GOOD.replace("nfft = 256", "nfft = 256\nlog_epsilon = -1.0"),
            "features.log_epsilon",
        ),
        (
            &GOOD.replace("clip_samples = 16000", "clip_samples = 100"),
            "features.clip_samples",
        ),
        (&GOOD.replace("\"logits\"", "\"probabilities\""), "softmax"),
        (&GOOD.replace("output = \"logits\"\n", ""), "output"),
    ];
    for (text, needle) in cases {
        let err = load_text(text, Some(LABELS)).unwrap_err().to_string();
        assert!(
            err.contains(needle) && err.contains("kws.toml"),
            "error for {needle:?} should name it and the file: {err}"
        );
    }
}

#[test]
fn missing_or_bad_labels_are_errors() {
    let err = load_text(GOOD, None).unwrap_err();
    assert!(matches!(err, MetaError::LabelsRead { .. }), "{err}");
    assert!(err.to_string().contains("labels.txt"));
    let err = load_text(GOOD, Some("silence\nyes\nno\n")).unwrap_err();
    assert!(matches!(err, MetaError::Labels { .. }), "{err}");
    assert!(err.to_string().contains("unknown"));
    let err = KwsMeta::load(fixtures().join("no_such_kws.toml")).unwrap_err();
    assert!(matches!(err, MetaError::Read { .. }), "{err}");
}
