//! The keyword classifier: a small trait the detector calls, and its LiteRT backend.
//!
//! The trait keeps the rest of the recognizer (listener thread, detector, tests) independent of
//! the inference runtime: the listener owns a `Box<dyn Classifier>`, tests use
//! [`testing::ScriptedClassifier`].
//!
//! [`LiteRtClassifier`] runs a `.tflite` file through LiteRT 2.1.4, TensorFlow Lite's successor
//! runtime, through its C API (`litert-sys`). The safe `litert` crate does not expose tensor
//! quantization parameters nor CPU thread options, both of which we need, so this file keeps a
//! thin RAII layer ([`ffi`]) over the handful of C calls it uses, whose types carry each
//! handle's lifetime and access rules.
//!
//! What it supports, because that is what the trainer exports:
//! * float32 models (float32 input and output);
//! * full-int8 models (int8 input and output with per-tensor scale/zero point): features are
//!   quantized on the way in, scores dequantized on the way out, so callers always see f32.
//!
//! Everything is created once in [`LiteRtClassifier::load`] (model, compiled model, input and
//! output buffers) and reused by every [`Classifier::classify`] call, which allocates nothing.
//!
//! # Troubleshooting
//! * Build fails with "libLiteRt.so is missing": run `scripts/fetch-litert.sh` (see build.rs).
//! * At run time "error while loading shared libraries: libLiteRt.so": the installed binary
//!   looks for the library in its own directory (`$ORIGIN` run path); copy
//!   `third_party/litert/<arch>/libLiteRt.so` beside it.

use std::path::{Path, PathBuf};

use compiled::{Handles, Opened};

mod compiled;
pub mod ffi;
pub mod float_fn;
mod quiet;

/// Number of CPU threads LiteRT may use for one inference.
///
/// One, on purpose: the Pi Zero 2 W has four small Cortex-A53 cores, and the capture, resampling
/// and STFT threads, the player and the UI all need one at the moment a keyword arrives. The
/// keyword model is small and runs a few times a second, so a thread pool would buy little
/// latency while adding wake-ups and contention with the audio threads, and would make timing
/// less predictable. (Measured: with 4 LiteRT starts 3 worker threads; with 1, none;
/// `tests/kws_model_threads.rs` keeps checking the "none".)
pub const NUM_THREADS: i32 = 1;

/// Errors from loading or running a keyword model. Each names the model file and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("keyword model {path}: file not found (check `model` in models/kws.toml or the --model option)")]
    NotFound { path: PathBuf },

    #[error("keyword model {path}: cannot read it: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("keyword model {path}: not a TensorFlow Lite model ({detail}); point the config at the .tflite file the trainer exported")]
    NotTflite { path: PathBuf, detail: String },

    #[error("keyword model {path}: its sha256 is {actual} but kws.toml pins {expected}; the file is damaged, truncated or not the model the contract names: copy the model folder again (scripts/install.sh) or retrain (the trainer writes the pins)")]
    ChecksumMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },

    #[error("keyword model {path}: LiteRT could not {action} (status {status}: {meaning})")]
    Runtime {
        path: PathBuf,
        action: &'static str,
        status: u32,
        meaning: &'static str,
    },

    #[error("keyword model {path}: unsupported model: {what}")]
    Unsupported { path: PathBuf, what: String },

    #[error("keyword model {path}: {labels} labels were given but the model has {outputs} outputs; the labels in models/kws.toml must match the model's output order exactly")]
    LabelMismatch {
        path: PathBuf,
        labels: usize,
        outputs: usize,
    },

    #[error("keyword model {path}: got {got} feature values but input shape {shape:?} needs {want}; the feature settings in models/kws.toml do not match this model")]
    InputLength {
        path: PathBuf,
        got: usize,
        want: usize,
        shape: Vec<usize>,
    },

    #[error("keyword model {path}: scores buffer holds {got} values but there are {want} labels")]
    ScoresLength {
        path: PathBuf,
        got: usize,
        want: usize,
    },
}

/// A keyword classifier: features in, one probability per label out.
pub trait Classifier: Send {
    /// Class labels in output order.
    fn labels(&self) -> &[String];
    /// Input tensor shape the model expects, e.g. `[1, 129, 124, 1]`.
    fn input_shape(&self) -> &[usize];
    /// `features`: f32 values already transformed as `models/kws.toml` declares, laid out to
    /// match [`Self::input_shape`] (row-major). Writes probabilities (softmax applied if the
    /// model outputs logits) into `scores` (`len == labels().len()`). Allocates nothing.
    fn classify(&mut self, features: &[f32], scores: &mut [f32]) -> Result<(), ModelError>;
    /// For a classifier that joins two heads by the `either` rule ([`super::head::Either`]):
    /// the rule, and each head's own probabilities from the last [`Self::classify`] (zeros
    /// before the first), so the recognizer can give each head a detector of its own
    /// ([`super::either_detector`]). `None` for any other classifier.
    fn either(&self) -> Option<EitherScores<'_>> {
        None
    }
}

/// What [`Classifier::either`] gives.
#[derive(Clone, Copy, Debug)]
pub struct EitherScores<'a> {
    pub rule: &'a super::head::Either,
    /// The model's own (adapted) head.
    pub own: &'a [f32],
    /// The second (shipped) head.
    pub second: &'a [f32],
}

/// Affine int8 quantization of one tensor: `real = scale * (q - zero_point)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quantization {
    pub scale: f32,
    pub zero_point: i32,
}

impl Quantization {
    /// Quantizes like TFLite's QUANTIZE kernel: round half away from zero, then saturate.
    /// (A NaN feature becomes the int8 value 0.)
    #[inline]
    pub fn quantize(self, x: f32) -> i8 {
        self.quantize_lane(x)
    }

    /// [`Self::quantize`] over a slice: `dst[i] = quantize(src[i])` for the common length.
    ///
    /// This runs over the whole model input (16 000 values) every window, so the body is
    /// branch-free and the compiler turns it into SIMD; a `match` on NaN or a libm `roundf`
    /// call per value made it a fifth of the classifier's cost.
    pub fn quantize_into(self, src: &[f32], dst: &mut [i8]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // Safety: the CPU supports AVX2 (checked just above).
            return unsafe { self.quantize_into_avx2(src, dst) };
        }
        self.quantize_into_portable(src, dst);
    }

    #[inline(always)]
    fn quantize_into_portable(self, src: &[f32], dst: &mut [i8]) {
        for (d, &x) in dst.iter_mut().zip(src) {
            *d = self.quantize_lane(x);
        }
    }

    /// The same loop compiled for 8-lane AVX2 (baseline x86-64 only has 4-lane SSE2); the
    /// operations are the same IEEE ones, so the results are identical.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn quantize_into_avx2(self, src: &[f32], dst: &mut [i8]) {
        self.quantize_into_portable(src, dst);
    }

    #[inline(always)]
    fn quantize_lane(self, x: f32) -> i8 {
        let v = x / self.scale;
        let is_number = !v.is_nan();
        // Anything beyond +-1024 saturates at either end for every valid zero point
        // (-128..=127, checked at load), so clamping first keeps the integer maths small and
        // the conversion exact. NaN is replaced first so the clamp is two plain min/max.
        let v = if is_number { v } else { 0.0 };
        let v = v.clamp(-1024.0, 1024.0);
        // Safety: v is neither NaN nor infinite and lies in -1024..=1024, so the truncated
        // value fits an i32. (`as` would add a saturating fix-up that stops vectorization.)
        let whole: i32 = unsafe { v.to_int_unchecked() };
        let frac = v - whole as f32; // exact: |v| <= 1024, and v and whole share their sign
        let rounded = whole + i32::from(frac >= 0.5) - i32::from(frac <= -0.5);
        // Saturating: a hand-made `Quantization` may hold any zero point without panicking.
        let q = rounded.saturating_add(self.zero_point).clamp(-128, 127) as i8;
        if is_number {
            q
        } else {
            0
        }
    }

    /// Inverse of [`Self::quantize`], computed in f32 like the Python reference.
    #[inline]
    pub fn dequantize(self, q: i8) -> f32 {
        (q as f32 - self.zero_point as f32) * self.scale
    }
}

/// How values cross one tensor boundary.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Encoding {
    Float32,
    Int8(Quantization),
}

/// A `.tflite` keyword model run by LiteRT on the CPU with [`NUM_THREADS`] thread(s).
pub struct LiteRtClassifier {
    path: PathBuf,
    labels: Vec<String>,
    input_shape: Vec<usize>,
    input_len: usize,
    input_encoding: Encoding,
    output_encoding: Encoding,
    output_is_logits: bool,
    handles: Handles,
}

// Safety: every LiteRT handle is owned by this value alone (no handle is shared with another
// value) and only used through `&mut self`, so there is never concurrent access. LiteRT's CPU
// path has no thread affinity: handles may be created on one thread and used on another, which
// is all `Send` promises.
unsafe impl Send for LiteRtClassifier {}

impl std::fmt::Debug for LiteRtClassifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiteRtClassifier")
            .field("path", &self.path)
            .field("labels", &self.labels)
            .field("input_shape", &self.input_shape)
            .field("input", &self.input_encoding)
            .field("output", &self.output_encoding)
            .field("output_is_logits", &self.output_is_logits)
            .finish()
    }
}

impl LiteRtClassifier {
    /// Checks `model_path` against `sha256` (hex, as `sha256sum` prints it; the feature
    /// contract's `model.sha256`), then loads and compiles it once.
    ///
    /// `labels` are the class names in the model's output order (from `models/kws.toml`);
    /// `output_is_logits` says whether the model's last layer is linear (then `classify` applies
    /// a softmax) or already a softmax.
    ///
    /// The pin is the only check before LiteRT parses the file (LiteRT 2.1.4 crashes on damaged
    /// flatbuffers): it catches every damaged byte, a truncated copy, and a model swapped for
    /// another one.
    pub fn load(
        model_path: &Path,
        labels: Vec<String>,
        output_is_logits: bool,
        sha256: &str,
    ) -> Result<Self, ModelError> {
        Self::load_inner(model_path, labels, output_is_logits, sha256)
    }

    fn load_inner(
        model_path: &Path,
        labels: Vec<String>,
        output_is_logits: bool,
        sha256: &str,
    ) -> Result<Self, ModelError> {
        let opened = Opened::open(model_path, sha256, "a keyword model")?;
        let path = opened.path.clone();
        let unsupported = |what: String| compiled::unsupported(&path, what);
        let (in_t, out_t) = (&opened.input, &opened.output);
        // Keras exports a dynamic batch dimension by default; we always run one window.
        let (input_dims, _) = batch_of_one(&in_t.dims)
            .ok_or_else(|| unsupported(format!("input shape {:?} is not fixed", in_t.dims)))?;
        let input_encoding = encoding(in_t).map_err(|w| unsupported(format!("input {w}")))?;
        let output_encoding = encoding(out_t).map_err(|w| unsupported(format!("output {w}")))?;
        let input_shape = dims_to_shape(&input_dims)
            .ok_or_else(|| unsupported(format!("input shape {input_dims:?} is empty")))?;
        let input_len: usize = input_shape.iter().product();
        let (handles, output_shape) = opened.compile(&input_dims, ffi::Resize::Dynamic)?;
        let output_len: usize = output_shape.iter().product();
        if labels.len() != output_len {
            return Err(ModelError::LabelMismatch {
                path,
                labels: labels.len(),
                outputs: output_len,
            });
        }
        Ok(Self {
            path,
            labels,
            input_shape,
            input_len,
            input_encoding,
            output_encoding,
            output_is_logits,
            handles,
        })
    }

    /// The model file this classifier was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Quantization of the input tensor, `None` for a float input.
    pub fn input_quantization(&self) -> Option<Quantization> {
        match self.input_encoding {
            Encoding::Float32 => None,
            Encoding::Int8(q) => Some(q),
        }
    }

    /// Quantization of the output tensor, `None` for a float output.
    pub fn output_quantization(&self) -> Option<Quantization> {
        match self.output_encoding {
            Encoding::Float32 => None,
            Encoding::Int8(q) => Some(q),
        }
    }

    fn runtime_error(&self, action: &'static str, status: u32) -> ModelError {
        ModelError::Runtime {
            path: self.path.clone(),
            action,
            status,
            meaning: ffi::status_meaning(status),
        }
    }
}

/// Writes `features` into the input buffer, quantizing them for an int8 model.
fn write_input(
    input: &mut ffi::TensorBuffer<'_>,
    encoding: Encoding,
    features: &[f32],
) -> Result<(), ffi::Status> {
    match encoding {
        Encoding::Float32 => {
            let mut view = input.lock_write::<f32>(features.len())?;
            view.as_mut_slice().copy_from_slice(features);
        }
        Encoding::Int8(q) => {
            let mut view = input.lock_write::<i8>(features.len())?;
            q.quantize_into(features, view.as_mut_slice());
        }
    }
    Ok(())
}

/// Reads the output buffer into `scores`, dequantizing an int8 model's output.
fn read_output(
    output: &mut ffi::TensorBuffer<'_>,
    encoding: Encoding,
    scores: &mut [f32],
) -> Result<(), ffi::Status> {
    match encoding {
        Encoding::Float32 => {
            let view = output.lock_read::<f32>(scores.len())?;
            scores.copy_from_slice(view.as_slice());
        }
        Encoding::Int8(q) => {
            let view = output.lock_read::<i8>(scores.len())?;
            for (dst, &v) in scores.iter_mut().zip(view.as_slice()) {
                *dst = q.dequantize(v);
            }
        }
    }
    Ok(())
}

impl Classifier for LiteRtClassifier {
    fn labels(&self) -> &[String] {
        &self.labels
    }

    fn input_shape(&self) -> &[usize] {
        &self.input_shape
    }

    fn classify(&mut self, features: &[f32], scores: &mut [f32]) -> Result<(), ModelError> {
        if features.len() != self.input_len {
            return Err(ModelError::InputLength {
                path: self.path.clone(),
                got: features.len(),
                want: self.input_len,
                shape: self.input_shape.clone(),
            });
        }
        if scores.len() != self.labels.len() {
            return Err(ModelError::ScoresLength {
                path: self.path.clone(),
                got: scores.len(),
                want: self.labels.len(),
            });
        }
        let (input_encoding, output_encoding) = (self.input_encoding, self.output_encoding);
        self.handles
            .with_dependent_mut(|_, h| {
                write_input(&mut h.input, input_encoding, features)
                    .map_err(|s| ("write its input", s))?;
                h.model
                    .run(&mut h.input, &mut h.output)
                    .map_err(|s| ("run it", s))?;
                read_output(&mut h.output, output_encoding, scores)
                    .map_err(|s| ("read its output", s))
            })
            .map_err(|(action, s)| self.runtime_error(action, s))?;
        if self.output_is_logits {
            softmax_in_place(scores);
        }
        Ok(())
    }
}

/// The top class of `scores` and its score; the first maximum wins ties, everywhere a top
/// label is taken (detector, `evaluate`, adaptation), so they cannot disagree when two
/// classes tie — as two heads joined by `kws::head::max_into` can, both at 1.0. A NaN wins
/// only when every score is NaN (callers that must not see one check for it first, as the
/// detector and `evaluate` do). `None` for no scores.
pub fn top(scores: &[f32]) -> Option<(usize, f32)> {
    scores
        .iter()
        .enumerate()
        .fold(None, |best: Option<(usize, f32)>, (i, &v)| match best {
            Some((_, b)) if b >= v || v.is_nan() => best,
            _ => Some((i, v)),
        })
}

/// Numerically stable softmax (max subtracted first), in place, no allocation.
pub fn softmax_in_place(v: &mut [f32]) {
    let max = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f32;
    for x in v.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    if sum > 0.0 {
        for x in v.iter_mut() {
            *x /= sum;
        }
    }
}

/// Reads the whole model file and checks it against its pin before LiteRT parses it.
pub(crate) fn read_pinned_model(path: &Path, sha256: &str) -> Result<ffi::ModelBytes, ModelError> {
    let io = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::NotFound => ModelError::NotFound {
            path: path.to_path_buf(),
        },
        _ => ModelError::Io {
            path: path.to_path_buf(),
            source: e,
        },
    };
    if std::fs::metadata(path).map_err(io)?.is_dir() {
        return Err(ModelError::NotTflite {
            path: path.to_path_buf(),
            detail: "it is a directory, not a file".into(),
        });
    }
    let raw = std::fs::read(path).map_err(io)?;
    ffi::ModelBytes::pinned(&raw, sha256).map_err(|m| ModelError::ChecksumMismatch {
        path: path.to_path_buf(),
        expected: m.expected,
        actual: m.actual,
    })
}

/// SHA-256 of `bytes` as lowercase hex, as `sha256sum` prints it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    use std::fmt::Write;
    Sha256::digest(bytes)
        .iter()
        .fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The input dims to run with, and whether the model's batch dimension is dynamic: a leading
/// -1 becomes 1; any other non-positive dimension means the input is not usable.
fn batch_of_one(dims: &[i32]) -> Option<(Vec<i32>, bool)> {
    match dims.split_first() {
        Some((&-1, rest)) if !rest.is_empty() && rest.iter().all(|&d| d > 0) => Some((
            std::iter::once(1).chain(rest.iter().copied()).collect(),
            true,
        )),
        _ if !dims.is_empty() && dims.iter().all(|&d| d > 0) => Some((dims.to_vec(), false)),
        _ => None,
    }
}

/// Positive dims as a shape; `None` if any is dynamic (-1) or zero.
fn dims_to_shape(dims: &[i32]) -> Option<Vec<usize>> {
    dims.iter()
        .map(|&d| usize::try_from(d).ok().filter(|&d| d > 0))
        .collect()
}

fn encoding(t: &ffi::TensorInfo) -> Result<Encoding, String> {
    match t.element {
        ffi::Element::Float32 => Ok(Encoding::Float32),
        ffi::Element::Int8 => match t.quantization {
            Some(q) if !(q.scale > 0.0 && q.scale.is_finite()) => {
                Err(format!("is int8 with an invalid scale {}", q.scale))
            }
            Some(q) if !(-128..=127).contains(&q.zero_point) => Err(format!(
                "is int8 with a zero point {} outside -128..=127",
                q.zero_point
            )),
            Some(q) => Ok(Encoding::Int8(q)),
            None => Err("is int8 but has no per-tensor scale/zero point".into()),
        },
        ffi::Element::Other(code) => Err(format!(
            "has element type {code} (LiteRtElementType); only float32 and int8 are supported"
        )),
    }
}

/// Test doubles for code that consumes a [`Classifier`] (detector, listener, runtime tests).
pub mod testing {
    use super::{Classifier, ModelError};
    use std::collections::VecDeque;
    use std::path::PathBuf;

    /// A classifier that returns scripted score vectors in order, then `idle` scores forever.
    /// It checks input and score lengths exactly like the real one, and counts calls.
    #[derive(Debug, Clone)]
    pub struct ScriptedClassifier {
        labels: Vec<String>,
        input_shape: Vec<usize>,
        script: VecDeque<Vec<f32>>,
        idle: Vec<f32>,
        calls: usize,
    }

    impl ScriptedClassifier {
        /// `script` entries must each have `labels.len()` values. `idle` defaults to all the
        /// probability on the first label (conventionally "silence").
        pub fn new(labels: Vec<String>, input_shape: Vec<usize>, script: Vec<Vec<f32>>) -> Self {
            let mut idle = vec![0.0; labels.len()];
            if let Some(first) = idle.first_mut() {
                *first = 1.0;
            }
            Self {
                labels,
                input_shape,
                script: script.into(),
                idle,
                calls: 0,
            }
        }

        /// Scores returned once the script is used up.
        pub fn with_idle(mut self, idle: Vec<f32>) -> Self {
            self.idle = idle;
            self
        }

        /// A score vector with `p` on `label` and the rest spread evenly over the others.
        pub fn peaked(labels: &[String], label: &str, p: f32) -> Vec<f32> {
            let rest = if labels.len() > 1 {
                (1.0 - p) / (labels.len() - 1) as f32
            } else {
                0.0
            };
            labels
                .iter()
                .map(|l| if l == label { p } else { rest })
                .collect()
        }

        /// How many times `classify` succeeded.
        pub fn calls(&self) -> usize {
            self.calls
        }
    }

    impl Classifier for ScriptedClassifier {
        fn labels(&self) -> &[String] {
            &self.labels
        }

        fn input_shape(&self) -> &[usize] {
            &self.input_shape
        }

        fn classify(&mut self, features: &[f32], scores: &mut [f32]) -> Result<(), ModelError> {
            let want: usize = self.input_shape.iter().product();
            let path = PathBuf::from("<scripted classifier>");
            if features.len() != want {
                return Err(ModelError::InputLength {
                    path,
                    got: features.len(),
                    want,
                    shape: self.input_shape.clone(),
                });
            }
            if scores.len() != self.labels.len() {
                return Err(ModelError::ScoresLength {
                    path,
                    got: scores.len(),
                    want: self.labels.len(),
                });
            }
            let next = self.script.pop_front();
            let src = next.as_deref().unwrap_or(&self.idle);
            for (dst, &s) in scores.iter_mut().zip(src) {
                *dst = s;
            }
            self.calls += 1;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::ScriptedClassifier;
    use super::*;

    #[test]
    fn top_takes_the_first_of_tied_maxima_and_never_nan() {
        assert_eq!(top(&[0.2, 1.0, 1.0]), Some((1, 1.0)));
        assert_eq!(top(&[f32::NAN, 0.3, 0.1]), Some((1, 0.3)));
        assert_eq!(top(&[0.3, f32::NAN, 0.4]), Some((2, 0.4)));
        assert_eq!(top(&[]), None);
    }

    #[test]
    fn softmax_matches_definition_and_survives_large_logits() {
        let mut v = [1.0f32, 2.0, 3.0];
        softmax_in_place(&mut v);
        let e: Vec<f64> = [1.0f64, 2.0, 3.0].iter().map(|x| x.exp()).collect();
        let s: f64 = e.iter().sum();
        for (got, want) in v.iter().zip(e.iter().map(|x| x / s)) {
            assert!((*got as f64 - want).abs() < 1e-6, "{got} vs {want}");
        }
        let mut big = [1000.0f32, 1000.0];
        softmax_in_place(&mut big);
        assert_eq!(big, [0.5, 0.5]);
    }

    #[test]
    fn quantize_rounds_half_away_from_zero_and_saturates() {
        let q = Quantization {
            scale: 0.5,
            zero_point: 10,
        };
        assert_eq!(q.quantize(0.25), 11); // 0.5 -> 1
        assert_eq!(q.quantize(-0.25), 9); // -0.5 -> -1
        assert_eq!(q.quantize(1000.0), 127);
        assert_eq!(q.quantize(-1000.0), -128);
        assert_eq!(q.dequantize(q.quantize(3.0)), 3.0);
        assert_eq!(q.quantize(f32::NAN), 0);
        assert_eq!(q.quantize(f32::INFINITY), 127);
        // Against the definition (f32::round is half away from zero) over a dense sweep,
        // including the values just below and above each half.
        let q = Quantization {
            scale: 0.0371,
            zero_point: -3,
        };
        for i in -400_000..400_000 {
            let x = i as f32 * 1.3e-5;
            for x in [x, x.next_up(), x.next_down()] {
                let want = ((x / q.scale).round() + q.zero_point as f32).clamp(-128.0, 127.0) as i8;
                assert_eq!(q.quantize(x), want, "x = {x}");
            }
        }
        for half in [0.5f32, 1.5, 2.5, -0.5, -1.5] {
            let x = half * 0.0371; // may land on either side of the half once divided
            let want = ((x / 0.0371f32).round() - 3.0).clamp(-128.0, 127.0) as i8;
            assert_eq!(q.quantize(x), want);
        }
    }

    #[test]
    fn quantize_into_matches_quantize_on_every_value() {
        let q = Quantization {
            scale: 0.0371,
            zero_point: 52,
        };
        // Halves and their neighbours, huge values, infinities, NaN, signed zeros, in an
        // order that puts each kind in every SIMD lane position.
        let mut src = vec![
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            0.0,
            -0.0,
            3e9,
            -3e9,
        ];
        for i in -300..300 {
            let x = (i as f32 + 0.5) * q.scale;
            src.extend([x, x.next_up(), x.next_down(), i as f32 * 0.01]);
        }
        let mut dst = vec![0i8; src.len()];
        q.quantize_into(&src, &mut dst);
        for (i, (&x, &got)) in src.iter().zip(&dst).enumerate() {
            assert_eq!(got, q.quantize(x), "index {i}, x = {x}");
        }
        assert_eq!(dst[0], 0, "NaN becomes 0");
        assert_eq!(&dst[1..3], &[127, -128]);
        assert_eq!(&dst[5..7], &[127, -128]);
    }

    #[test]
    fn only_a_leading_batch_dimension_may_be_dynamic() {
        assert_eq!(
            batch_of_one(&[-1, 129, 124, 1]),
            Some((vec![1, 129, 124, 1], true))
        );
        assert_eq!(
            batch_of_one(&[1, 129, 124, 1]),
            Some((vec![1, 129, 124, 1], false))
        );
        assert_eq!(batch_of_one(&[1, -1, 124, 1]), None);
        assert_eq!(batch_of_one(&[-1]), None);
        assert_eq!(batch_of_one(&[]), None);
    }

    #[test]
    fn dims_must_be_fixed() {
        assert_eq!(dims_to_shape(&[1, 129, 124, 1]), Some(vec![1, 129, 124, 1]));
        assert_eq!(dims_to_shape(&[-1, 129]), None);
        assert_eq!(dims_to_shape(&[1, 0]), None);
    }

    #[test]
    fn scripted_classifier_plays_script_then_idles_and_checks_lengths() {
        let labels: Vec<String> = ["silence", "yes", "no"].map(String::from).to_vec();
        let yes = ScriptedClassifier::peaked(&labels, "yes", 0.9);
        assert!((yes[1] - 0.9).abs() < 1e-6 && (yes[0] - 0.05).abs() < 1e-6);
        let mut c = ScriptedClassifier::new(labels, vec![1, 2], vec![yes.clone()]);
        let mut scores = [0.0; 3];
        c.classify(&[0.0, 0.0], &mut scores).unwrap();
        assert_eq!(scores.to_vec(), yes);
        c.classify(&[0.0, 0.0], &mut scores).unwrap();
        assert_eq!(scores, [1.0, 0.0, 0.0]);
        assert!(matches!(
            c.classify(&[0.0], &mut scores),
            Err(ModelError::InputLength {
                got: 1,
                want: 2,
                ..
            })
        ));
        assert!(matches!(
            c.classify(&[0.0, 0.0], &mut [0.0; 2]),
            Err(ModelError::ScoresLength {
                got: 2,
                want: 3,
                ..
            })
        ));
        assert_eq!(c.calls(), 2);
    }
}
