//! LiteRT classifier vs the Python LiteRT interpreter, on the committed tiny models.
//!
//! The fixtures (tests/fixtures/models/) come from scripts/make_test_models.py: two models with
//! the real input shape [1,129,124,1] and 10 labels, float32 and full-int8, plus fixed inputs and
//! what `ai_edge_litert.interpreter.Interpreter` (2.1.4) computed for them. Passing means the
//! Rust side feeds the tensor in the same layout, quantizes/dequantizes the same way, and runs
//! the same kernels.
use std::path::{Path, PathBuf};

use chatterbox::kws::model::{Classifier, LiteRtClassifier, ModelError};
use serde::Deserialize;

#[derive(Deserialize)]
struct Manifest {
    count: usize,
    input_shape: Vec<usize>,
    labels: String,
    inputs: String,
    float: FloatSection,
    int8: Int8Section,
}

#[derive(Deserialize)]
struct FloatSection {
    model: String,
    sha256: String,
    dynamic_batch: bool,
    logits: String,
    probs: String,
}

#[derive(Deserialize)]
struct Int8Section {
    model: String,
    sha256: String,
    input_scale: f32,
    input_zero_point: i32,
    output_scale: f32,
    output_zero_point: i32,
    quantized_inputs: String,
    raw: String,
    probs: String,
}

struct Fixtures {
    dir: PathBuf,
    m: Manifest,
    labels: Vec<String>,
    inputs: Vec<f32>,
}

impl Fixtures {
    fn load() -> Self {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models");
        let m: Manifest =
            toml::from_str(&std::fs::read_to_string(dir.join("manifest.toml")).unwrap()).unwrap();
        let labels = std::fs::read_to_string(dir.join(&m.labels))
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        let inputs = read_f32(&dir.join(&m.inputs));
        let f = Self {
            dir,
            m,
            labels,
            inputs,
        };
        assert_eq!(f.inputs.len(), f.m.count * f.input_len());
        f
    }

    /// The pin the manifest gives for `model` (a file name from the manifest).
    fn pin(&self, model: &str) -> &str {
        if model == self.m.int8.model {
            &self.m.int8.sha256
        } else {
            &self.m.float.sha256
        }
    }

    fn input_len(&self) -> usize {
        self.m.input_shape.iter().product()
    }

    fn input(&self, i: usize) -> &[f32] {
        let n = self.input_len();
        &self.inputs[i * n..(i + 1) * n]
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

fn read_f32(path: &Path) -> Vec<f32> {
    std::fs::read(path)
        .unwrap()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn read_i8(path: &Path) -> Vec<i8> {
    std::fs::read(path)
        .unwrap()
        .into_iter()
        .map(|b| b as i8)
        .collect()
}

/// Runs every fixture input through `c` and returns the concatenated scores.
fn run_all(c: &mut dyn Classifier, f: &Fixtures) -> Vec<f32> {
    let mut out = vec![0.0; f.m.count * f.labels.len()];
    for (i, scores) in out.chunks_exact_mut(f.labels.len()).enumerate() {
        c.classify(f.input(i), scores).unwrap();
    }
    out
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn float_model_matches_python_interpreter() {
    let f = Fixtures::load();
    let path = f.path(&f.m.float.model);

    let pin = f.pin(&f.m.float.model);
    let mut raw = LiteRtClassifier::load(&path, f.labels.clone(), false, pin).unwrap();
    // The float model is exported the Keras way, with a dynamic batch: the loader fixes it to 1.
    assert!(f.m.float.dynamic_batch);
    assert_eq!(raw.input_shape(), &f.m.input_shape[..]);
    assert_eq!(raw.labels(), &f.labels[..]);
    assert_eq!(raw.input_quantization(), None);
    let logits = run_all(&mut raw, &f);
    let want_logits = read_f32(&f.path(&f.m.float.logits));
    let err = max_abs_diff(&logits, &want_logits);
    println!("float model: max |logit - python| = {err:e}");
    assert!(err <= 1e-5, "float logits differ from Python by {err}");

    let mut soft = LiteRtClassifier::load(&path, f.labels.clone(), true, pin).unwrap();
    let probs = run_all(&mut soft, &f);
    let want_probs = read_f32(&f.path(&f.m.float.probs));
    let err = max_abs_diff(&probs, &want_probs);
    println!("float model: max |softmax - python float64 softmax| = {err:e}");
    assert!(
        err <= 1e-5,
        "float probabilities differ from Python by {err}"
    );
    for row in probs.chunks_exact(f.labels.len()) {
        let sum: f32 = row.iter().sum();
        assert!((sum - 1.0).abs() < 1e-5, "probabilities sum to {sum}");
    }
}

#[test]
fn int8_model_matches_python_interpreter_exactly() {
    let f = Fixtures::load();
    let mut c = LiteRtClassifier::load(
        &f.path(&f.m.int8.model),
        f.labels.clone(),
        false,
        &f.m.int8.sha256,
    )
    .unwrap();

    let qin = c
        .input_quantization()
        .expect("int8 model has a quantized input");
    assert_eq!(qin.scale, f.m.int8.input_scale);
    assert_eq!(qin.zero_point, f.m.int8.input_zero_point);
    let qout = c
        .output_quantization()
        .expect("int8 model has a quantized output");
    assert_eq!(qout.scale, f.m.int8.output_scale);
    assert_eq!(qout.zero_point, f.m.int8.output_zero_point);

    // Our quantization of the features is byte-identical to what Python fed its interpreter.
    let ours: Vec<i8> = f.inputs.iter().map(|&x| qin.quantize(x)).collect();
    let theirs = read_i8(&f.path(&f.m.int8.quantized_inputs));
    let mismatches = ours.iter().zip(&theirs).filter(|(a, b)| a != b).count();
    assert_eq!(mismatches, 0, "{mismatches} quantized input values differ");

    let probs = run_all(&mut c, &f);
    let want = read_f32(&f.path(&f.m.int8.probs));
    let raw = read_i8(&f.path(&f.m.int8.raw));
    let max_steps = probs
        .iter()
        .zip(&raw)
        .map(|(&p, &q)| ((p / qout.scale).round() as i32 + qout.zero_point - q as i32).abs())
        .max()
        .unwrap();
    println!(
        "int8 model: max difference from Python = {max_steps} quantization steps, max |p - python| = {:e}",
        max_abs_diff(&probs, &want)
    );
    assert_eq!(max_steps, 0, "int8 outputs differ from Python");
    assert_eq!(probs, want);
}

#[test]
fn classifier_is_reusable_and_deterministic() {
    let f = Fixtures::load();
    let mut boxed: Box<dyn Classifier> = Box::new(
        LiteRtClassifier::load(
            &f.path(&f.m.int8.model),
            f.labels.clone(),
            false,
            &f.m.int8.sha256,
        )
        .unwrap(),
    );
    let n = f.labels.len();
    let (mut first, mut other, mut again) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    boxed.classify(f.input(0), &mut first).unwrap();
    boxed.classify(f.input(1), &mut other).unwrap();
    boxed.classify(f.input(0), &mut again).unwrap();
    assert_eq!(first, again, "state leaked between calls");
    assert_ne!(
        first, other,
        "different inputs should give different scores"
    );

    // Moving it to another thread (the listener thread) works.
    let handle = std::thread::spawn(move || {
        let mut s = vec![0.0; n];
        let features = vec![0.0; boxed.input_shape().iter().product()];
        boxed.classify(&features, &mut s).map(|_| s)
    });
    let s = handle.join().unwrap().unwrap();
    assert!(s.iter().all(|p| (0.0..=1.0).contains(p)));
}

/// Loads `path` as if the contract pinned the float fixture model there.
fn load_err(path: &Path, labels: Vec<String>) -> ModelError {
    let pin = Fixtures::load().m.float.sha256;
    match LiteRtClassifier::load(path, labels, false, &pin) {
        Ok(_) => panic!("{} loaded but should not", path.display()),
        Err(e) => e,
    }
}

#[test]
fn missing_file_is_reported_with_its_path() {
    let f = Fixtures::load();
    let path = f.path("no_such_model.tflite");
    let e = load_err(&path, f.labels.clone());
    assert!(matches!(e, ModelError::NotFound { .. }), "{e:?}");
    assert!(e.to_string().contains("no_such_model.tflite"), "{e}");
}

/// A damaged file never reaches LiteRT (2.1.4 crashes on damaged flatbuffers): its sha256
/// differs from the contract's pin, and the error names the file and the fix.
fn assert_refused_by_pin(path: &Path, labels: Vec<String>) {
    let e = load_err(path, labels);
    assert!(
        matches!(e, ModelError::ChecksumMismatch { .. }),
        "{}: {e:?}",
        path.display()
    );
    let msg = e.to_string();
    let name = path.file_name().unwrap().to_string_lossy();
    assert!(msg.contains(&*name), "{msg}");
    assert!(msg.contains("damaged") && msg.contains("copy"), "{msg}");
}

#[test]
fn garbage_files_are_refused_by_their_pin() {
    let f = Fixtures::load();
    let dir = tempfile::tempdir().unwrap();

    let text = dir.path().join("notes.tflite");
    std::fs::write(&text, b"this is not a model, just some text\n").unwrap();
    assert_refused_by_pin(&text, f.labels.clone());

    let empty = dir.path().join("empty.tflite");
    std::fs::write(&empty, b"").unwrap();
    assert_refused_by_pin(&empty, f.labels.clone());

    // Right identifier, nonsense after it.
    let fake = dir.path().join("fake.tflite");
    let mut bytes = vec![0x1c, 0, 0, 0, b'T', b'F', b'L', b'3'];
    bytes.extend((0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
    std::fs::write(&fake, bytes).unwrap();
    assert_refused_by_pin(&fake, f.labels.clone());

    // Damage LiteRT 2.1.4 itself does not survive (found by mutating the tiny model; each of
    // these crashed the process when nothing checked the bytes): an all-zero body (valid
    // header, empty vtable), and truncation anywhere (an interrupted copy to the Pi).
    let zeros = dir.path().join("zeros.tflite");
    let mut bytes = vec![0x1c, 0, 0, 0, b'T', b'F', b'L', b'3'];
    bytes.resize(4096, 0);
    std::fs::write(&zeros, bytes).unwrap();
    assert_refused_by_pin(&zeros, f.labels.clone());
    let real = std::fs::read(f.path(&f.m.float.model)).unwrap();
    for keep in
        (8..real.len())
            .step_by(997)
            .chain([real.len() / 2, real.len() - 100, real.len() - 1])
    {
        let cut = dir.path().join(format!("cut{keep}.tflite"));
        std::fs::write(&cut, &real[..keep]).unwrap();
        assert_refused_by_pin(&cut, f.labels.clone());
    }

    let e = load_err(dir.path(), f.labels.clone());
    assert!(matches!(e, ModelError::NotTflite { .. }), "{e:?}");
}

#[test]
fn pinned_checksum_accepts_the_model_and_rejects_any_other_file() {
    let f = Fixtures::load();
    for (model, sha) in [
        (&f.m.float.model, &f.m.float.sha256),
        (&f.m.int8.model, &f.m.int8.sha256),
    ] {
        let path = f.path(model);
        LiteRtClassifier::load(&path, f.labels.clone(), false, sha).unwrap();
        LiteRtClassifier::load(&path, f.labels.clone(), false, &sha.to_uppercase()).unwrap();
    }
    // The int8 model is a valid model, but not the one the float checksum pins.
    let e = LiteRtClassifier::load(
        &f.path(&f.m.int8.model),
        f.labels.clone(),
        false,
        &f.m.float.sha256,
    )
    .unwrap_err();
    assert!(
        matches!(&e, ModelError::ChecksumMismatch { expected, actual, .. }
            if *expected == f.m.float.sha256 && *actual == f.m.int8.sha256),
        "{e:?}"
    );
    assert!(e.to_string().contains("kws_tiny_int8.tflite"), "{e}");

    // One flipped bit in the weights: structurally fine, so only the checksum can tell.
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(f.path(&f.m.float.model)).unwrap();
    let at = bytes.len() / 3; // inside the dense layer's weights
    bytes[at] ^= 0x10;
    let flipped = dir.path().join("flipped.tflite");
    std::fs::write(&flipped, &bytes).unwrap();
    // Its own sha256 would load it (LiteRT cannot tell a flipped weight); the pin refuses it.
    let own = chatterbox::kws::model::sha256_hex(&bytes);
    LiteRtClassifier::load(&flipped, f.labels.clone(), false, &own).unwrap();
    let e =
        LiteRtClassifier::load(&flipped, f.labels.clone(), false, &f.m.float.sha256).unwrap_err();
    assert!(matches!(e, ModelError::ChecksumMismatch { .. }), "{e:?}");
}

#[test]
fn label_count_must_match_outputs() {
    let f = Fixtures::load();
    let mut labels = f.labels.clone();
    labels.pop();
    let e = load_err(&f.path(&f.m.float.model), labels);
    assert!(
        matches!(
            e,
            ModelError::LabelMismatch {
                labels: 9,
                outputs: 10,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("kws_tiny_float.tflite"), "{e}");
}

#[test]
fn wrong_lengths_are_errors_not_panics() {
    let f = Fixtures::load();
    for model in [&f.m.float.model, &f.m.int8.model] {
        let mut c =
            LiteRtClassifier::load(&f.path(model), f.labels.clone(), true, f.pin(model)).unwrap();
        let mut scores = vec![0.0; f.labels.len()];
        let short = &f.input(0)[..f.input_len() - 1];
        let e = c.classify(short, &mut scores).unwrap_err();
        assert!(
            matches!(e, ModelError::InputLength { got, want, .. } if got == 15995 && want == 15996),
            "{e:?}"
        );
        assert!(e.to_string().contains("[1, 129, 124, 1]"), "{e}");
        let e = c.classify(f.input(0), &mut scores[..3]).unwrap_err();
        assert!(
            matches!(
                e,
                ModelError::ScoresLength {
                    got: 3,
                    want: 10,
                    ..
                }
            ),
            "{e:?}"
        );
        // Still usable after the errors.
        c.classify(f.input(0), &mut scores).unwrap();
        assert!((scores.iter().sum::<f32>() - 1.0).abs() < 1e-3);
    }
}

/// Buffers that do not fit the compiled model are refused by our own check, before LiteRT
/// sees them: swapped input and output, an output too small, a buffer of the wrong element
/// type. (LiteRT 2.1.4 happens to refuse some of these too, with another status; its C API
/// does not promise to.)
#[test]
fn buffers_that_do_not_fit_the_tensors_are_refused_before_the_run() {
    use chatterbox::kws::model::ffi::{
        CompiledModel, Environment, Io, Model, ModelBytes, Options, TensorBuffer,
    };
    use litert_sys::kLiteRtStatusErrorInvalidArgument as INVALID;
    let raw = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models/kws_tiny_int8.tflite"),
    )
    .unwrap();
    let env = Environment::new().unwrap();
    let pin = chatterbox::kws::model::sha256_hex(&raw);
    let model = Model::from_bytes(ModelBytes::pinned(&raw, &pin).unwrap()).unwrap();
    let options = Options::cpu(1).unwrap();
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
    assert_eq!(
        compiled.run(&mut output, &mut input),
        Err(INVALID),
        "swapped"
    );
    let mut tiny = TensorBuffer::managed(&env, &out_t, &[1], 1).unwrap();
    assert_eq!(
        compiled.run(&mut input, &mut tiny),
        Err(INVALID),
        "too small"
    );
    // An input-typed buffer as big as the output, in the output's place.
    let mut wrong_type = TensorBuffer::managed(&env, &in_t, &out_dims, n_out.max(n_in)).unwrap();
    let same_type = in_t.element == out_t.element;
    if !same_type {
        assert_eq!(
            compiled.run(&mut input, &mut wrong_type),
            Err(INVALID),
            "wrong type"
        );
    }
    // The right buffers run.
    assert_eq!(compiled.run(&mut input, &mut output), Ok(()));
}
