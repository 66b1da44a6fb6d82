//! What every model this crate runs has in common: a pinned file with one input and one
//! output tensor, compiled once for a fixed input shape, with its two buffers made once.
//! [`super::LiteRtClassifier`] (the keyword head) and [`super::float_fn::FloatFunction`] (the
//! speech-embedding feature models) differ only in what they check about the tensors and how
//! they fill and read the buffers.

use std::path::{Path, PathBuf};

use super::{ffi, read_pinned_model, ModelError, NUM_THREADS};

/// The LiteRT handles everything compiled is made from.
pub(super) struct Parents {
    env: ffi::Environment,
    model: ffi::Model,
    options: ffi::Options,
}

/// The handles made from [`Parents`], borrowing them.
pub(super) struct Compiled<'a> {
    pub(super) model: ffi::CompiledModel<'a>,
    pub(super) input: ffi::TensorBuffer<'a>,
    pub(super) output: ffi::TensorBuffer<'a>,
}

self_cell::self_cell!(
    /// Parents and the handles borrowing them in one value: the borrow checker proves the
    /// handles never outlive their parents (`self_cell` drops the dependent first), where a
    /// plain struct would rest on its field order.
    pub(super) struct Handles {
        owner: Parents,
        #[covariant]
        dependent: Compiled,
    }
);

/// A model file read against its pin and parsed, not compiled yet.
pub(super) struct Opened {
    pub(super) path: PathBuf,
    parents: Parents,
    pub(super) input: ffi::TensorInfo,
    pub(super) output: ffi::TensorInfo,
}

/// `ModelError::Runtime` for a failed LiteRT call on `path` while doing `action`.
pub(super) fn runtime(path: &Path, action: &'static str) -> impl FnOnce(ffi::Status) -> ModelError {
    let path = path.to_path_buf();
    move |status| ModelError::Runtime {
        path,
        action,
        status,
        meaning: ffi::status_meaning(status),
    }
}

/// `ModelError::Unsupported` for `path`.
pub(super) fn unsupported(path: &Path, what: String) -> ModelError {
    ModelError::Unsupported {
        path: path.to_path_buf(),
        what,
    }
}

impl Opened {
    /// Checks `path` against `sha256`, parses it and reads its one input and one output
    /// tensor; `kind` names the model in the message when it has more ("a keyword model").
    pub(super) fn open(path: &Path, sha256: &str, kind: &str) -> Result<Opened, ModelError> {
        let bytes = read_pinned_model(path, sha256)?;
        let env = ffi::Environment::new().map_err(runtime(path, "create its environment"))?;
        let model = ffi::Model::from_bytes(bytes).map_err(|s| ModelError::NotTflite {
            path: path.to_path_buf(),
            detail: format!(
                "LiteRT rejected it: status {s}, {}; the file may be damaged",
                ffi::status_meaning(s)
            ),
        })?;
        let (n_in, n_out) = model
            .io_counts()
            .map_err(runtime(path, "read its signature"))?;
        if n_in != 1 || n_out != 1 {
            return Err(unsupported(
                path,
                format!(
                    "it has {n_in} input and {n_out} output tensors; {kind} has exactly one of each"
                ),
            ));
        }
        let input = model
            .tensor(ffi::Io::Input)
            .map_err(runtime(path, "read its input tensor"))?;
        let output = model
            .tensor(ffi::Io::Output)
            .map_err(runtime(path, "read its output tensor"))?;
        let options =
            ffi::Options::cpu(NUM_THREADS).map_err(runtime(path, "set its CPU options"))?;
        Ok(Opened {
            path: path.to_path_buf(),
            parents: Parents {
                env,
                model,
                options,
            },
            input,
            output,
        })
    }

    /// Compiles the model for the CPU with its input fixed to `input_dims` (resized when
    /// the file's own shape differs), and makes the input and output buffers. Returns the
    /// handles and the output's dimensions as compiled (they follow a resize); a dimension
    /// that is not a positive number is refused. `resize` says which declared dimensions
    /// `input_dims` may change.
    pub(super) fn compile(
        self,
        input_dims: &[i32],
        resize: ffi::Resize,
    ) -> Result<(Handles, Vec<usize>), ModelError> {
        let Opened {
            path,
            parents,
            input: in_t,
            output: out_t,
        } = self;
        let shape = |dims: &[i32], what: &str| {
            dims.iter()
                .map(|&d| usize::try_from(d).ok().filter(|&d| d > 0))
                .collect::<Option<Vec<usize>>>()
                .ok_or_else(|| unsupported(&path, format!("{what} shape {dims:?} is not fixed")))
        };
        let input_len: usize = shape(input_dims, "input")?.iter().product();
        let mut output_shape = Vec::new();
        let handles = Handles::try_new(parents, |p| {
            let mut compiled = ffi::CompiledModel::new(&p.env, &p.model, &p.options)
                .map_err(runtime(&path, "compile it for the CPU"))?;
            if in_t.dims != input_dims {
                // Keras exports a dynamic batch dimension; the mel model says [1, 1] though it
                // takes any length. LiteRT refuses a resize the graph cannot take.
                compiled
                    .resize_input(input_dims, resize)
                    .map_err(runtime(&path, "fix its input shape"))?;
            }
            // Ask the compiled model, not the file: after a resize the output shape follows.
            let output_dims = compiled
                .output_dims()
                .map_err(runtime(&path, "read its output shape"))?;
            output_shape = shape(&output_dims, "output")?;
            let output_len = output_shape.iter().product();
            let input = ffi::TensorBuffer::managed(&p.env, &in_t, input_dims, input_len)
                .map_err(runtime(&path, "allocate its input buffer"))?;
            let output = ffi::TensorBuffer::managed(&p.env, &out_t, &output_dims, output_len)
                .map_err(runtime(&path, "allocate its output buffer"))?;
            Ok(Compiled {
                model: compiled,
                input,
                output,
            })
        })?;
        Ok((handles, output_shape))
    }
}
