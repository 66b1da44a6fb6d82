//! A pinned float32 `.tflite` model used as a plain function: one input of a fixed shape in,
//! one output out. The speech-embedding front end runs its two frozen feature models
//! (`melspectrogram.tflite`, `embedding_model.tflite`) through it.
//!
//! Unlike [`super::LiteRtClassifier`] it knows nothing of labels or quantization: the feature
//! models are float32 and their outputs are features, not scores. The input shape is fixed at
//! load (the mel model's input is dynamic `[-1, -1]`; the front end always feeds it one block of
//! the same length, see `kws::embedding`), so every run reuses the buffers made once here.

use std::path::{Path, PathBuf};

use super::{ffi, read_pinned_model, ModelError, NUM_THREADS};

/// A float32 model with one input and one output, compiled once for `input_dims`.
pub struct FloatFunction {
    path: PathBuf,
    input_len: usize,
    output_dims: Vec<usize>,
    output_len: usize,
    handles: Handles,
}

struct Parents {
    env: ffi::Environment,
    model: ffi::Model,
    options: ffi::Options,
}

struct Compiled<'a> {
    model: ffi::CompiledModel<'a>,
    input: ffi::TensorBuffer<'a>,
    output: ffi::TensorBuffer<'a>,
}

self_cell::self_cell!(
    /// Parents and the handles borrowing them in one value (as in `LiteRtClassifier`).
    struct Handles {
        owner: Parents,
        #[covariant]
        dependent: Compiled,
    }
);

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
    /// Checks `path` against `sha256`, then compiles it with its input fixed to `input_dims`.
    pub fn load(path: &Path, sha256: &str, input_dims: &[usize]) -> Result<Self, ModelError> {
        let path = path.to_path_buf();
        let bytes = read_pinned_model(&path, sha256)?;
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
            detail: format!("LiteRT rejected it: status {s}, {}", ffi::status_meaning(s)),
        })?;
        let (n_in, n_out) = model.io_counts().map_err(runtime("read its signature"))?;
        if n_in != 1 || n_out != 1 {
            return Err(unsupported(format!(
                "it has {n_in} input and {n_out} output tensors; a feature model has exactly one of each"
            )));
        }
        let in_t = model
            .tensor(ffi::Io::Input)
            .map_err(runtime("read its input tensor"))?;
        let out_t = model
            .tensor(ffi::Io::Output)
            .map_err(runtime("read its output tensor"))?;
        for (side, t) in [("input", &in_t), ("output", &out_t)] {
            if !matches!(t.element, ffi::Element::Float32) {
                return Err(unsupported(format!(
                    "its {side} is not float32; the feature models are float32"
                )));
            }
        }
        if in_t.dims.len() != input_dims.len() {
            return Err(unsupported(format!(
                "input rank {} (shape {:?}) but the front end feeds shape {input_dims:?}",
                in_t.dims.len(),
                in_t.dims
            )));
        }
        let dims: Vec<i32> = input_dims
            .iter()
            .map(|&d| i32::try_from(d).unwrap_or(i32::MAX))
            .collect();
        // The file's dims are the default shape (the mel model says [1, 1] though it takes any
        // length); LiteRT refuses a resize the graph cannot take.
        let needs_resize = in_t.dims != dims;
        let input_len: usize = input_dims.iter().product();
        let options = ffi::Options::cpu(NUM_THREADS).map_err(runtime("set its CPU options"))?;
        let parents = Parents {
            env,
            model,
            options,
        };
        let mut out_shape = Vec::new();
        let handles = Handles::try_new(parents, |p| {
            let mut compiled = ffi::CompiledModel::new(&p.env, &p.model, &p.options)
                .map_err(runtime("compile it for the CPU"))?;
            if needs_resize {
                compiled
                    .resize_input(&dims)
                    .map_err(runtime("resize its input"))?;
            }
            let output_dims = compiled
                .output_dims()
                .map_err(runtime("read its output shape"))?;
            out_shape = output_dims
                .iter()
                .map(|&d| usize::try_from(d).ok().filter(|&d| d > 0))
                .collect::<Option<Vec<usize>>>()
                .ok_or_else(|| unsupported(format!("output shape {output_dims:?} is not fixed")))?;
            let output_len = out_shape.iter().product();
            let input = ffi::TensorBuffer::managed(&p.env, &in_t, &dims, input_len)
                .map_err(runtime("allocate its input buffer"))?;
            let output = ffi::TensorBuffer::managed(&p.env, &out_t, &output_dims, output_len)
                .map_err(runtime("allocate its output buffer"))?;
            Ok(Compiled {
                model: compiled,
                input,
                output,
            })
        })?;
        let output_len = out_shape.iter().product();
        Ok(Self {
            path,
            input_len,
            output_dims: out_shape,
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
