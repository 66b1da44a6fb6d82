//! The keyword classifier: a small trait the detector calls, and its LiteRT backend.
//!
//! The trait keeps the rest of the recognizer (listener thread, detector, tests) independent of
//! the inference runtime: the listener owns a `Box<dyn Classifier>`, tests use
//! [`testing::ScriptedClassifier`].
//!
//! [`LiteRtClassifier`] runs a `.tflite` file through LiteRT 2.1.4, TensorFlow Lite's successor
//! runtime, through its C API (`litert-sys`). The safe `litert` crate does not expose tensor
//! quantization parameters nor CPU thread options, both of which we need, so this file keeps a
//! thin, private RAII layer (`mod ffi`) over the handful of C calls it uses.
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

mod tflite_check;

/// Number of CPU threads LiteRT may use for one inference.
///
/// One, on purpose: the Pi Zero 2 W has four small Cortex-A53 cores, and the capture, resampling
/// and STFT threads, the player and the UI all need one at the moment a keyword arrives. The
/// keyword model is small and runs a few times a second, so a thread pool would buy little
/// latency while adding wake-ups and contention with the audio threads, and would make timing
/// less predictable. (Measured: with 4 LiteRT starts 3 worker threads; with 1, none.)
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

    #[error("keyword model {path}: its sha256 is {actual} but {expected} was expected; the file is damaged or is not the model the configuration was written for (reinstall it)")]
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
        let q = (x / self.scale).round() + self.zero_point as f32;
        q.clamp(-128.0, 127.0) as i8
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
    // Field order is drop order: buffers and the compiled model go before the model and the
    // environment they were created from.
    input: ffi::TensorBuffer,
    output: ffi::TensorBuffer,
    compiled: ffi::CompiledModel,
    _options: ffi::Options,
    _model: ffi::Model,
    _env: ffi::Environment,
}

// Safety: every LiteRT handle above is owned by this value alone and only used through
// `&mut self` (or `&self` for reads of plain Rust fields), so there is never concurrent access.
// LiteRT's CPU path has no thread affinity: handles may be created on one thread and used on
// another, which is all `Send` promises.
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
    /// Loads and compiles `model_path` once.
    ///
    /// `labels` are the class names in the model's output order (from `models/kws.toml`);
    /// `output_is_logits` says whether the model's last layer is linear (then `classify` applies
    /// a softmax) or already a softmax.
    pub fn load(
        model_path: &Path,
        labels: Vec<String>,
        output_is_logits: bool,
    ) -> Result<Self, ModelError> {
        Self::load_inner(model_path, labels, output_is_logits, None)
    }

    /// Like [`Self::load`], but first checks the file's SHA-256 against `sha256` (hex, as
    /// `sha256sum` prints it).
    ///
    /// Prefer this on the device: the structural check in `load` catches truncated and mangled
    /// files, but only a pinned checksum catches every damaged byte (a flipped weight, or a
    /// rewired graph that LiteRT would crash on) and a model swapped for another one.
    pub fn load_pinned(
        model_path: &Path,
        labels: Vec<String>,
        output_is_logits: bool,
        sha256: &str,
    ) -> Result<Self, ModelError> {
        Self::load_inner(model_path, labels, output_is_logits, Some(sha256))
    }

    fn load_inner(
        model_path: &Path,
        labels: Vec<String>,
        output_is_logits: bool,
        sha256: Option<&str>,
    ) -> Result<Self, ModelError> {
        let path = model_path.to_path_buf();
        let bytes = read_checked_model(&path, sha256)?;
        let runtime = |action: &'static str| {
            let path = path.clone();
            move |status: u32| ModelError::Runtime {
                path,
                action,
                status,
                meaning: ffi::status_meaning(status),
            }
        };
        let unsupported = |what: String| ModelError::Unsupported {
            path: path.clone(),
            what,
        };

        let env = ffi::Environment::new().map_err(runtime("create its environment"))?;
        let model = ffi::Model::from_bytes(bytes).map_err(|s| ModelError::NotTflite {
            path: path.clone(),
            detail: format!(
                "LiteRT rejected it: status {s}, {}; the file may be damaged",
                ffi::status_meaning(s)
            ),
        })?;

        let (n_in, n_out) = model.io_counts().map_err(runtime("read its signature"))?;
        if n_in != 1 || n_out != 1 {
            return Err(unsupported(format!(
                "it has {n_in} input and {n_out} output tensors; a keyword model has exactly one of each"
            )));
        }
        let in_t = model
            .tensor(ffi::Io::Input)
            .map_err(runtime("read its input tensor"))?;
        let out_t = model
            .tensor(ffi::Io::Output)
            .map_err(runtime("read its output tensor"))?;

        let (input_dims, dynamic_batch) = batch_of_one(&in_t.dims)
            .ok_or_else(|| unsupported(format!("input shape {:?} is not fixed", in_t.dims)))?;
        let input_encoding = encoding(&in_t).map_err(|w| unsupported(format!("input {w}")))?;
        let output_encoding = encoding(&out_t).map_err(|w| unsupported(format!("output {w}")))?;

        let options = ffi::Options::cpu(NUM_THREADS).map_err(runtime("set its CPU options"))?;
        let compiled = ffi::CompiledModel::new(&env, &model, &options)
            .map_err(runtime("compile it for the CPU"))?;
        if dynamic_batch {
            // Keras exports a dynamic batch dimension by default; we always run one window.
            compiled
                .resize_input(&input_dims)
                .map_err(runtime("fix its batch size to 1"))?;
        }
        // Ask the compiled model, not the file: after a resize the output shape follows.
        let output_dims = compiled
            .output_dims()
            .map_err(runtime("read its output shape"))?;
        let output_shape = dims_to_shape(&output_dims)
            .ok_or_else(|| unsupported(format!("output shape {output_dims:?} is not fixed")))?;
        let input_shape = dims_to_shape(&input_dims)
            .ok_or_else(|| unsupported(format!("input shape {input_dims:?} is empty")))?;
        let input_len: usize = input_shape.iter().product();
        let output_len: usize = output_shape.iter().product();
        if labels.len() != output_len {
            return Err(ModelError::LabelMismatch {
                path,
                labels: labels.len(),
                outputs: output_len,
            });
        }
        let input = ffi::TensorBuffer::managed(&env, &in_t, &input_dims, input_len)
            .map_err(runtime("allocate its input buffer"))?;
        let output = ffi::TensorBuffer::managed(&env, &out_t, &output_dims, output_len)
            .map_err(runtime("allocate its output buffer"))?;

        Ok(Self {
            path,
            labels,
            input_shape,
            input_len,
            input_encoding,
            output_encoding,
            output_is_logits,
            input,
            output,
            compiled,
            _options: options,
            _model: model,
            _env: env,
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

    fn write_input(&mut self, features: &[f32]) -> Result<(), u32> {
        match self.input_encoding {
            Encoding::Float32 => {
                let mut lock = self.input.lock_write::<f32>(self.input_len)?;
                lock.as_mut_slice().copy_from_slice(features);
            }
            Encoding::Int8(q) => {
                let mut lock = self.input.lock_write::<i8>(self.input_len)?;
                for (dst, &x) in lock.as_mut_slice().iter_mut().zip(features) {
                    *dst = q.quantize(x);
                }
            }
        }
        Ok(())
    }

    fn read_output(&self, scores: &mut [f32]) -> Result<(), u32> {
        match self.output_encoding {
            Encoding::Float32 => {
                let lock = self.output.lock_read::<f32>(scores.len())?;
                scores.copy_from_slice(lock.as_slice());
            }
            Encoding::Int8(q) => {
                let lock = self.output.lock_read::<i8>(scores.len())?;
                for (dst, &v) in scores.iter_mut().zip(lock.as_slice()) {
                    *dst = q.dequantize(v);
                }
            }
        }
        Ok(())
    }
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
        self.write_input(features)
            .map_err(|s| self.runtime_error("write its input", s))?;
        self.compiled
            .run(&self.input, &self.output)
            .map_err(|s| self.runtime_error("run it", s))?;
        self.read_output(scores)
            .map_err(|s| self.runtime_error("read its output", s))?;
        if self.output_is_logits {
            softmax_in_place(scores);
        }
        Ok(())
    }
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

/// Reads the whole model file and checks its structure before LiteRT parses it: LiteRT 2.1.4
/// does not verify the flatbuffer and crashes on damaged files (see `model/tflite_check.rs`).
fn read_checked_model(path: &Path, sha256: Option<&str>) -> Result<ffi::ModelBytes, ModelError> {
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
    if let Some(expected) = sha256 {
        let actual = sha256_hex(&raw);
        if !actual.eq_ignore_ascii_case(expected.trim()) {
            return Err(ModelError::ChecksumMismatch {
                path: path.to_path_buf(),
                expected: expected.trim().to_owned(),
                actual,
            });
        }
    }
    tflite_check::check(&raw).map_err(|why| ModelError::NotTflite {
        path: path.to_path_buf(),
        detail: format!("{} bytes, damaged or not a model: {why}", raw.len()),
    })?;
    Ok(ffi::ModelBytes::copy_from(&raw))
}

fn sha256_hex(bytes: &[u8]) -> String {
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
            Some(q) if q.scale > 0.0 && q.scale.is_finite() => Ok(Encoding::Int8(q)),
            Some(q) => Err(format!("is int8 with an invalid scale {}", q.scale)),
            None => Err("is int8 but has no per-tensor scale/zero point".into()),
        },
        ffi::Element::Other(code) => Err(format!(
            "has element type {code} (LiteRtElementType); only float32 and int8 are supported"
        )),
    }
}

/// The few LiteRT C calls we use, each wrapped once with ownership spelled out. All `unsafe`
/// lives here; errors are the raw `LiteRtStatus`, turned into [`ModelError`] by the caller who
/// knows the model path.
mod ffi {
    use std::ffi::{c_void, CString};
    use std::marker::PhantomData;
    use std::ptr::{self, NonNull};

    use litert_sys as sys;

    use super::Quantization;

    type Status = u32;

    fn check(status: sys::LiteRtStatus) -> Result<(), Status> {
        if status == sys::kLiteRtStatusOk {
            Ok(())
        } else {
            Err(status)
        }
    }

    /// A null handle on success should not happen; report it as LiteRT's "unknown error".
    fn non_null<T>(p: *mut T) -> Result<NonNull<T>, Status> {
        NonNull::new(p).ok_or(sys::kLiteRtStatusErrorUnknown)
    }

    /// Words for the status codes LiteRT returns (its own string function is not exported on
    /// every platform).
    pub fn status_meaning(status: Status) -> &'static str {
        match status {
            sys::kLiteRtStatusErrorInvalidArgument => "invalid argument",
            sys::kLiteRtStatusErrorMemoryAllocationFailure => "out of memory",
            sys::kLiteRtStatusErrorRuntimeFailure => "runtime failure",
            sys::kLiteRtStatusErrorMissingInputTensor => "missing input tensor",
            sys::kLiteRtStatusErrorUnsupported => "unsupported operation or type",
            sys::kLiteRtStatusErrorNotFound => "not found",
            sys::kLiteRtStatusErrorFileIO => "file I/O error",
            sys::kLiteRtStatusErrorInvalidFlatbuffer => "invalid flatbuffer",
            sys::kLiteRtStatusErrorCompilation => "compilation failed",
            sys::kLiteRtStatusErrorIndexOOB => "index out of range",
            sys::kLiteRtStatusErrorWrongVersion => "wrong version",
            _ => "unknown error",
        }
    }

    pub struct Environment(NonNull<sys::LiteRtEnvironmentT>);

    impl Environment {
        pub fn new() -> Result<Self, Status> {
            let mut raw = ptr::null_mut();
            // Safety: no options (count 0, null array); out-pointer is valid.
            check(unsafe { sys::LiteRtCreateEnvironment(0, ptr::null(), &mut raw) })?;
            Ok(Self(non_null(raw)?))
        }
    }

    impl Drop for Environment {
        fn drop(&mut self) {
            // Safety: created by LiteRtCreateEnvironment, destroyed once.
            unsafe { sys::LiteRtDestroyEnvironment(self.0.as_ptr()) }
        }
    }

    /// Model bytes in 16-byte aligned storage: LiteRT reads tensor data in place, and the
    /// schema aligns buffer data to 16 bytes relative to the start of the file.
    pub struct ModelBytes {
        blocks: Vec<Block>,
        len: usize,
    }

    #[repr(C, align(16))]
    #[derive(Clone, Copy)]
    struct Block([u8; 16]);

    impl ModelBytes {
        pub fn copy_from(bytes: &[u8]) -> Self {
            let mut blocks = vec![Block([0; 16]); bytes.len().div_ceil(16)];
            for (block, chunk) in blocks.iter_mut().zip(bytes.chunks(16)) {
                block.0[..chunk.len()].copy_from_slice(chunk);
            }
            Self {
                blocks,
                len: bytes.len(),
            }
        }

        fn as_ptr(&self) -> *const c_void {
            self.blocks.as_ptr().cast()
        }
    }

    #[derive(Clone, Copy)]
    pub enum Io {
        Input,
        Output,
    }

    pub enum Element {
        Float32,
        Int8,
        Other(u32),
    }

    pub struct TensorInfo {
        pub element: Element,
        pub dims: Vec<i32>,
        pub quantization: Option<Quantization>,
        ranked: sys::LiteRtRankedTensorType,
    }

    pub struct Model {
        ptr: NonNull<sys::LiteRtModelT>,
        signature: sys::LiteRtSignature,
        // Dropped after `ptr` is destroyed (Drop::drop runs before fields are dropped).
        _bytes: ModelBytes,
    }

    impl Model {
        /// Parses `bytes` (already checked by `tflite_check`); the model keeps them alive
        /// because LiteRT reads from the buffer without copying it.
        pub fn from_bytes(bytes: ModelBytes) -> Result<Self, Status> {
            let mut raw = ptr::null_mut();
            // Safety: the pointer/length describe `bytes`, which the model owns from here on.
            check(unsafe {
                sys::LiteRtCreateModelFromBuffer(bytes.as_ptr(), bytes.len, &mut raw)
            })?;
            // Own the handle before anything else can fail, so Drop releases it.
            let mut model = Self {
                ptr: non_null(raw)?,
                signature: ptr::null_mut(),
                _bytes: bytes,
            };
            let mut sig = ptr::null_mut();
            // Safety: the model is valid; index 0 is the default signature every model has.
            check(unsafe { sys::LiteRtGetModelSignature(model.ptr.as_ptr(), 0, &mut sig) })?;
            model.signature = non_null(sig)?.as_ptr();
            Ok(model)
        }

        pub fn io_counts(&self) -> Result<(usize, usize), Status> {
            let (mut n_in, mut n_out) = (0, 0);
            // Safety: the signature belongs to the live model.
            unsafe {
                check(sys::LiteRtGetNumSignatureInputs(self.signature, &mut n_in))?;
                check(sys::LiteRtGetNumSignatureOutputs(
                    self.signature,
                    &mut n_out,
                ))?;
            }
            Ok((n_in, n_out))
        }

        pub fn tensor(&self, io: Io) -> Result<TensorInfo, Status> {
            let mut t = ptr::null_mut();
            // Safety: the signature belongs to the live model; index 0 checked by io_counts.
            check(unsafe {
                match io {
                    Io::Input => {
                        sys::LiteRtGetSignatureInputTensorByIndex(self.signature, 0, &mut t)
                    }
                    Io::Output => {
                        sys::LiteRtGetSignatureOutputTensorByIndex(self.signature, 0, &mut t)
                    }
                }
            })?;
            let t = non_null(t)?.as_ptr();
            let mut ranked = sys::LiteRtRankedTensorType::default();
            let mut q_type: sys::LiteRtQuantizationTypeId = sys::kLiteRtQuantizationNone;
            // Safety: t is a tensor of the live model; out-pointers are valid.
            unsafe {
                check(sys::LiteRtGetRankedTensorType(t, &mut ranked))?;
                check(sys::LiteRtGetQuantizationTypeId(t, &mut q_type))?;
            }
            let quantization = if q_type == sys::kLiteRtQuantizationPerTensor {
                let mut q = sys::LiteRtQuantizationPerTensor {
                    scale: 0.0,
                    zero_point: 0,
                };
                // Safety: as above; the tensor reports per-tensor quantization.
                check(unsafe { sys::LiteRtGetPerTensorQuantization(t, &mut q) })?;
                i32::try_from(q.zero_point)
                    .ok()
                    .map(|zero_point| Quantization {
                        scale: q.scale,
                        zero_point,
                    })
            } else {
                None
            };
            let rank = (ranked.layout.rank() as usize).min(ranked.layout.dimensions.len());
            let element = match ranked.element_type {
                sys::kLiteRtElementTypeFloat32 => Element::Float32,
                sys::kLiteRtElementTypeInt8 => Element::Int8,
                other => Element::Other(other),
            };
            Ok(TensorInfo {
                element,
                dims: ranked.layout.dimensions[..rank].to_vec(),
                quantization,
                ranked,
            })
        }
    }

    impl Drop for Model {
        fn drop(&mut self) {
            // Safety: created by LiteRtCreateModelFromFile, destroyed once; the signature
            // pointer is owned by the model and not used afterwards.
            unsafe { sys::LiteRtDestroyModel(self.ptr.as_ptr()) }
        }
    }

    pub struct Options(NonNull<sys::LiteRtOptionsT>);

    /// Identifier under which LiteRT's CPU (XNNPACK) accelerator looks for its options; the
    /// payload is a NUL-terminated TOML string. (`LrtGetCpuOptionsIdentifier()` in the C
    /// headers; that helper lives in a static library the wheel does not ship, so we build the
    /// payload ourselves.)
    const CPU_OPTIONS_ID: &std::ffi::CStr = c"xnnpack";

    unsafe extern "C" fn free_cstring(p: *mut c_void) {
        if !p.is_null() {
            // Safety: p came from CString::into_raw in Options::cpu and is freed exactly once,
            // by LiteRT calling this destructor.
            drop(unsafe { CString::from_raw(p.cast()) });
        }
    }

    impl Options {
        /// CPU-only options with a fixed number of threads.
        pub fn cpu(num_threads: i32) -> Result<Self, Status> {
            let mut raw = ptr::null_mut();
            // Safety: out-pointer valid.
            check(unsafe { sys::LiteRtCreateOptions(&mut raw) })?;
            let options = Self(non_null(raw)?);
            // Safety: options is live.
            check(unsafe {
                sys::LiteRtSetOptionsHardwareAccelerators(
                    options.0.as_ptr(),
                    sys::kLiteRtHwAcceleratorCpu as sys::LiteRtHwAcceleratorSet,
                )
            })?;
            let payload = CString::new(format!("num_threads = {num_threads}\n"))
                .expect("formatted integer has no NUL")
                .into_raw();
            let mut opaque = ptr::null_mut();
            // Safety: on success LiteRT owns payload and frees it with free_cstring.
            let status = unsafe {
                sys::LiteRtCreateOpaqueOptions(
                    CPU_OPTIONS_ID.as_ptr(),
                    payload.cast(),
                    Some(free_cstring),
                    &mut opaque,
                )
            };
            if let Err(s) = check(status) {
                // Safety: LiteRT did not take the payload; reclaim it.
                unsafe { free_cstring(payload.cast()) };
                return Err(s);
            }
            // Safety: ownership of `opaque` moves into `options` on success.
            if let Err(s) =
                check(unsafe { sys::LiteRtAddOpaqueOptions(options.0.as_ptr(), opaque) })
            {
                // Safety: not added, so still ours to destroy (this frees the payload).
                unsafe { sys::LiteRtDestroyOpaqueOptions(opaque) };
                return Err(s);
            }
            Ok(options)
        }
    }

    impl Drop for Options {
        fn drop(&mut self) {
            // Safety: created by LiteRtCreateOptions, destroyed once (with its opaque options).
            unsafe { sys::LiteRtDestroyOptions(self.0.as_ptr()) }
        }
    }

    pub struct CompiledModel(NonNull<sys::LiteRtCompiledModelT>);

    impl CompiledModel {
        pub fn new(env: &Environment, model: &Model, options: &Options) -> Result<Self, Status> {
            let mut raw = ptr::null_mut();
            // Safety: all handles live; the caller keeps env/model/options alive longer than
            // the compiled model (field order in LiteRtClassifier).
            check(unsafe {
                sys::LiteRtCreateCompiledModel(
                    env.0.as_ptr(),
                    model.ptr.as_ptr(),
                    options.0.as_ptr(),
                    &mut raw,
                )
            })?;
            Ok(Self(non_null(raw)?))
        }

        /// Gives the (only) input of the default signature concrete dimensions.
        pub fn resize_input(&self, dims: &[i32]) -> Result<(), Status> {
            // Safety: compiled model live; dims valid for the call (LiteRT copies them).
            check(unsafe {
                sys::LiteRtCompiledModelResizeInputTensor(
                    self.0.as_ptr(),
                    0,
                    0,
                    dims.as_ptr(),
                    dims.len(),
                )
            })
        }

        /// Dimensions of the (only) output of the default signature, as compiled (after any
        /// resize), with allocations updated to match.
        pub fn output_dims(&self) -> Result<Vec<i32>, Status> {
            let mut layout = sys::LiteRtLayout::default();
            // Safety: compiled model live; one layout slot for the single output (checked by
            // the caller via io_counts).
            check(unsafe {
                sys::LiteRtGetCompiledModelOutputTensorLayouts(
                    self.0.as_ptr(),
                    0,
                    1,
                    &mut layout,
                    true,
                )
            })?;
            let rank = (layout.rank() as usize).min(layout.dimensions.len());
            Ok(layout.dimensions[..rank].to_vec())
        }

        /// Runs the default signature with one input and one output buffer, without
        /// allocating.
        pub fn run(&self, input: &TensorBuffer, output: &TensorBuffer) -> Result<(), Status> {
            let mut ins = [input.ptr.as_ptr()];
            let mut outs = [output.ptr.as_ptr()];
            // Safety: buffers were created for this model's tensors; arrays outlive the call.
            check(unsafe {
                sys::LiteRtRunCompiledModel(
                    self.0.as_ptr(),
                    0,
                    ins.len(),
                    ins.as_mut_ptr(),
                    outs.len(),
                    outs.as_mut_ptr(),
                )
            })
        }
    }

    impl Drop for CompiledModel {
        fn drop(&mut self) {
            // Safety: created by LiteRtCreateCompiledModel, destroyed once.
            unsafe { sys::LiteRtDestroyCompiledModel(self.0.as_ptr()) }
        }
    }

    /// Element types a buffer can be viewed as.
    pub trait Scalar: Copy {
        const ELEMENT: sys::LiteRtElementType;
    }
    impl Scalar for f32 {
        const ELEMENT: sys::LiteRtElementType = sys::kLiteRtElementTypeFloat32;
    }
    impl Scalar for i8 {
        const ELEMENT: sys::LiteRtElementType = sys::kLiteRtElementTypeInt8;
    }

    pub struct TensorBuffer {
        ptr: NonNull<sys::LiteRtTensorBufferT>,
        element: sys::LiteRtElementType,
        len: usize,
    }

    impl TensorBuffer {
        /// A host-memory buffer owned by LiteRT, with `tensor`'s element type, the concrete
        /// `dims`, holding `len` elements.
        pub fn managed(
            env: &Environment,
            tensor: &TensorInfo,
            dims: &[i32],
            len: usize,
        ) -> Result<Self, Status> {
            let elem_size = match tensor.element {
                Element::Float32 => 4,
                Element::Int8 => 1,
                Element::Other(_) => return Err(sys::kLiteRtStatusErrorUnsupported),
            };
            let mut ranked = tensor.ranked;
            if dims.len() > ranked.layout.dimensions.len() {
                return Err(sys::kLiteRtStatusErrorInvalidArgument);
            }
            ranked.layout.set_rank(dims.len() as u32);
            ranked.layout.dimensions[..dims.len()].copy_from_slice(dims);
            let mut raw = ptr::null_mut();
            // Safety: env live; the tensor type is a plain value copied by LiteRT.
            check(unsafe {
                sys::LiteRtCreateManagedTensorBuffer(
                    env.0.as_ptr(),
                    sys::kLiteRtTensorBufferTypeHostMemory,
                    &ranked,
                    len * elem_size,
                    &mut raw,
                )
            })?;
            let buffer = Self {
                ptr: non_null(raw)?,
                element: tensor.ranked.element_type,
                len,
            };
            let mut size = 0usize;
            // Safety: buffer live.
            check(unsafe { sys::LiteRtGetTensorBufferSize(buffer.ptr.as_ptr(), &mut size) })?;
            if size < len * elem_size {
                return Err(sys::kLiteRtStatusErrorMemoryAllocationFailure);
            }
            Ok(buffer)
        }

        fn lock<T: Scalar>(
            &self,
            n: usize,
            mode: sys::LiteRtTensorBufferLockMode,
        ) -> Result<*mut T, Status> {
            if T::ELEMENT != self.element || n != self.len {
                return Err(sys::kLiteRtStatusErrorInvalidArgument);
            }
            let mut host: *mut c_void = ptr::null_mut();
            // Safety: buffer live; out-pointer valid.
            check(unsafe { sys::LiteRtLockTensorBuffer(self.ptr.as_ptr(), &mut host, mode) })?;
            if host.is_null() || (host as usize) % std::mem::align_of::<T>() != 0 {
                // Safety: the lock succeeded, so it must be released.
                unsafe { sys::LiteRtUnlockTensorBuffer(self.ptr.as_ptr()) };
                return Err(sys::kLiteRtStatusErrorRuntimeFailure);
            }
            Ok(host.cast())
        }

        /// Locks for writing exactly `n` elements of type `T`.
        pub fn lock_write<T: Scalar>(&mut self, n: usize) -> Result<Locked<'_, T>, Status> {
            let ptr = self.lock::<T>(n, sys::kLiteRtTensorBufferLockModeWrite)?;
            Ok(Locked {
                buffer: self.ptr,
                ptr,
                len: n,
                _borrow: PhantomData,
            })
        }

        /// Locks for reading exactly `n` elements of type `T`.
        pub fn lock_read<T: Scalar>(&self, n: usize) -> Result<Locked<'_, T>, Status> {
            let ptr = self.lock::<T>(n, sys::kLiteRtTensorBufferLockModeRead)?;
            Ok(Locked {
                buffer: self.ptr,
                ptr,
                len: n,
                _borrow: PhantomData,
            })
        }
    }

    impl Drop for TensorBuffer {
        fn drop(&mut self) {
            // Safety: created by LiteRtCreateManagedTensorBuffer, destroyed once.
            unsafe { sys::LiteRtDestroyTensorBuffer(self.ptr.as_ptr()) }
        }
    }

    /// A locked view of a buffer's host memory; unlocks on drop, so errors cannot leak a lock.
    pub struct Locked<'a, T> {
        buffer: NonNull<sys::LiteRtTensorBufferT>,
        ptr: *mut T,
        len: usize,
        _borrow: PhantomData<&'a mut TensorBuffer>,
    }

    impl<T> Locked<'_, T> {
        pub fn as_slice(&self) -> &[T] {
            // Safety: LiteRT returned host memory of at least len elements (size checked at
            // creation), aligned for T (checked in lock), valid until unlock in Drop.
            unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
        }

        pub fn as_mut_slice(&mut self) -> &mut [T] {
            // Safety: as above; the borrow of the buffer makes this view unique.
            unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
        }
    }

    impl<T> Drop for Locked<'_, T> {
        fn drop(&mut self) {
            // Safety: the buffer was locked by TensorBuffer::lock and is unlocked once.
            unsafe { sys::LiteRtUnlockTensorBuffer(self.buffer.as_ptr()) };
        }
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
