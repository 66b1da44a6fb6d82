//! A pinned float32 `.tflite` model used as a plain function: one input of a fixed shape in,
//! one output out. The speech-embedding front end runs its two frozen feature models
//! (`melspectrogram.tflite`, `embedding_model.tflite`) through it.
//!
//! Unlike [`super::LiteRtClassifier`] it knows nothing of labels or quantization: the feature
//! models are float32 and their outputs are features, not scores. The input shape is fixed at
//! load (the mel model's input is dynamic `[-1, -1]`; the front end always feeds it one block of
//! the same length, see `kws::embedding`), so every run reuses the buffers made once here.

use std::path::{Path, PathBuf};

use super::compiled::{self, Handles, Opened};
use super::{ffi, ModelError};

/// A float32 model with one input and one output, compiled once for `input_dims`.
pub struct FloatFunction {
    path: PathBuf,
    input_len: usize,
    output_dims: Vec<usize>,
    output_len: usize,
    handles: Handles,
}

// Safety: as for `LiteRtClassifier`: every handle is owned by this value alone and only used
// through `&mut self`; LiteRT's CPU path has no thread affinity.
unsafe impl Send for FloatFunction {}

impl std::fmt::Debug for FloatFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FloatFunction")
            .field("path", &self.path)
            .field("input_len", &self.input_len)
            .field("output_dims", &self.output_dims)
            .finish()
    }
}

impl FloatFunction {
    /// Checks `path` against `sha256`, then compiles it with its input fixed to `input_dims`
    /// (which may only give sizes to the model's dynamic dimensions).
    pub fn load(path: &Path, sha256: &str, input_dims: &[usize]) -> Result<Self, ModelError> {
        Self::load_as(path, sha256, input_dims, ffi::Resize::Dynamic)
    }

    /// [`Self::load`], but `input_dims` may change any dimension the file declares, for a
    /// model whose every operation takes the new shape (LiteRT checks that when compiling).
    pub fn load_resized(
        path: &Path,
        sha256: &str,
        input_dims: &[usize],
    ) -> Result<Self, ModelError> {
        Self::load_as(path, sha256, input_dims, ffi::Resize::Any)
    }

    fn load_as(
        path: &Path,
        sha256: &str,
        input_dims: &[usize],
        resize: ffi::Resize,
    ) -> Result<Self, ModelError> {
        let opened = Opened::open(path, sha256, "a feature model")?;
        let path = opened.path.clone();
        let unsupported = |what: String| compiled::unsupported(&path, what);
        for (side, t) in [("input", &opened.input), ("output", &opened.output)] {
            if !matches!(t.element, ffi::Element::Float32) {
                return Err(unsupported(format!(
                    "its {side} is not float32; the feature models are float32"
                )));
            }
        }
        if opened.input.dims.len() != input_dims.len() {
            return Err(unsupported(format!(
                "input rank {} (shape {:?}) but the front end feeds shape {input_dims:?}",
                opened.input.dims.len(),
                opened.input.dims
            )));
        }
        let dims: Vec<i32> = input_dims
            .iter()
            .map(|&d| i32::try_from(d).unwrap_or(i32::MAX))
            .collect();
        let input_len: usize = input_dims.iter().product();
        let (handles, output_dims) = opened.compile(&dims, resize)?;
        let output_len = output_dims.iter().product();
        Ok(Self {
            path,
            input_len,
            output_dims,
            output_len,
            handles,
        })
    }

    /// The model file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Values the input takes.
    pub fn input_len(&self) -> usize {
        self.input_len
    }

    /// Values the output holds.
    pub fn output_len(&self) -> usize {
        self.output_len
    }

    /// The output's shape after the input was fixed.
    pub fn output_dims(&self) -> &[usize] {
        &self.output_dims
    }

    /// Runs the model: `input.len() == input_len()`, `output.len() == output_len()`.
    /// Allocates nothing.
    pub fn run(&mut self, input: &[f32], output: &mut [f32]) -> Result<(), ModelError> {
        if input.len() != self.input_len {
            return Err(ModelError::InputLength {
                path: self.path.clone(),
                got: input.len(),
                want: self.input_len,
                shape: vec![self.input_len],
            });
        }
        if output.len() != self.output_len {
            return Err(ModelError::ScoresLength {
                path: self.path.clone(),
                got: output.len(),
                want: self.output_len,
            });
        }
        self.handles
            .with_dependent_mut(|_, h| {
                h.input
                    .lock_write::<f32>(input.len())
                    .map(|mut v| v.as_mut_slice().copy_from_slice(input))
                    .map_err(|s| ("write its input", s))?;
                h.model
                    .run(&mut h.input, &mut h.output)
                    .map_err(|s| ("run it", s))?;
                h.output
                    .lock_read::<f32>(output.len())
                    .map(|v| output.copy_from_slice(v.as_slice()))
                    .map_err(|s| ("read its output", s))
            })
            .map_err(|(action, status)| ModelError::Runtime {
                path: self.path.clone(),
                action,
                status,
                meaning: ffi::status_meaning(status),
            })
    }
}
