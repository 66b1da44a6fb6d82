//! The few LiteRT C calls we use, each wrapped once with ownership and access spelled out in the
//! types. Every unsafe call lives here; errors are the raw `LiteRtStatus`, turned into
//! `ModelError` by the caller who knows the model path.
//!
//! The LiteRT C API promises nothing when a handle outlives the one it was created from, when a
//! buffer is written while locked for reading, or when a model runs while its buffers are
//! locked (2.1.4 happens to refuse some of it with status 3). So the Rust types rule it out:
//!
//! * [`CompiledModel`] borrows the [`Environment`], [`Model`] and [`Options`] it was compiled
//!   from, and a [`TensorBuffer`] borrows its [`Environment`]: neither can outlive its parents.
//! * [`TensorBuffer::lock_read`] gives a [`ReadView`], which only hands out `&[T]`;
//!   [`TensorBuffer::lock_write`] gives a [`WriteView`]. Locking borrows the buffer mutably, so
//!   a buffer has at most one lock at a time.
//! * [`CompiledModel::run`] takes the model and both buffers by `&mut`: no view of either buffer
//!   can be alive while LiteRT reads and writes them.
//!
//! The module is public so these rules are checked by the examples below (doc tests link
//! against the library) and so tests can measure what LiteRT does; the application itself goes
//! through [`super::LiteRtClassifier`].
//!
//! A compiled model cannot outlive its environment (nor its model):
//!
//! ```compile_fail,E0505
//! use chatterbox::kws::model::ffi::{CompiledModel, Environment, Model, ModelBytes, Options, Status};
//!
//! fn output_dims(bytes: ModelBytes) -> Result<Vec<i32>, Status> {
//!     let env = Environment::new()?;
//!     let model = Model::from_bytes(bytes)?;
//!     let options = Options::cpu(1)?;
//!     let mut compiled = CompiledModel::new(&env, &model, &options)?;
//!     drop(env); // error[E0505]: cannot move out of `env` because it is borrowed
//!     compiled.output_dims()
//! }
//! ```
//!
//! ```compile_fail,E0505
//! use chatterbox::kws::model::ffi::{CompiledModel, Environment, Model, ModelBytes, Options, Status};
//!
//! fn output_dims(bytes: ModelBytes) -> Result<Vec<i32>, Status> {
//!     let env = Environment::new()?;
//!     let model = Model::from_bytes(bytes)?;
//!     let options = Options::cpu(1)?;
//!     let mut compiled = CompiledModel::new(&env, &model, &options)?;
//!     drop(model); // error[E0505]: cannot move out of `model` because it is borrowed
//!     compiled.output_dims()
//! }
//! ```
//!
//! nor be handed out past them:
//!
//! ```compile_fail,E0515
//! use chatterbox::kws::model::ffi::{CompiledModel, Environment, Model, ModelBytes, Options, Status};
//!
//! fn compile(bytes: ModelBytes) -> Result<CompiledModel<'static>, Status> {
//!     let env = Environment::new()?;
//!     let model = Model::from_bytes(bytes)?;
//!     let options = Options::cpu(1)?;
//!     // error[E0515]: cannot return value referencing local variable `env`
//!     CompiledModel::new(&env, &model, &options)
//! }
//! ```
//!
//! A tensor buffer cannot outlive its environment:
//!
//! ```compile_fail,E0505
//! use chatterbox::kws::model::ffi::{Environment, Io, Model, Status, TensorBuffer};
//!
//! fn input_buffer(model: &Model) -> Result<(), Status> {
//!     let env = Environment::new()?;
//!     let input = model.tensor(Io::Input)?;
//!     let mut buffer = TensorBuffer::managed(&env, &input, &input.dims, 1)?;
//!     drop(env); // error[E0505]: cannot move out of `env` because it is borrowed
//!     buffer.lock_write::<f32>(1)?.as_mut_slice()[0] = 1.0;
//!     Ok(())
//! }
//! ```
//!
//! A read view cannot be written, neither through its slice nor by asking for a mutable one:
//!
//! ```compile_fail,E0594
//! use chatterbox::kws::model::ffi::{Status, TensorBuffer};
//!
//! fn scribble(output: &mut TensorBuffer<'_>) -> Result<(), Status> {
//!     let view = output.lock_read::<f32>(10)?;
//!     view.as_slice()[0] = 1.0; // error[E0594]: cannot assign to data in a `&` reference
//!     Ok(())
//! }
//! ```
//!
//! ```compile_fail,E0599
//! use chatterbox::kws::model::ffi::{Status, TensorBuffer};
//!
//! fn scribble(output: &mut TensorBuffer<'_>) -> Result<(), Status> {
//!     let mut view = output.lock_read::<f32>(10)?;
//!     view.as_mut_slice()[0] = 1.0; // error[E0599]: no method named `as_mut_slice`
//!     Ok(())
//! }
//! ```
//!
//! A model cannot run while a view of one of its buffers is alive:
//!
//! ```compile_fail,E0499
//! use chatterbox::kws::model::ffi::{CompiledModel, Status, TensorBuffer};
//!
//! fn run(
//!     compiled: &mut CompiledModel<'_>,
//!     input: &mut TensorBuffer<'_>,
//!     output: &mut TensorBuffer<'_>,
//! ) -> Result<f32, Status> {
//!     let view = output.lock_read::<f32>(10)?;
//!     // error[E0499]: cannot borrow `*output` as mutable more than once at a time
//!     compiled.run(input, output)?;
//!     Ok(view.as_slice()[0])
//! }
//! ```
//!
//! The same code in the right order compiles (this example is built, not run), which shows the
//! ones above fail for the reason they name and not for a typo:
//!
//! ```no_run
//! use chatterbox::kws::model::ffi::{
//!     CompiledModel, Environment, Io, Model, ModelBytes, Options, Status, TensorBuffer,
//! };
//!
//! fn first_score(bytes: ModelBytes) -> Result<f32, Status> {
//!     let env = Environment::new()?;
//!     let model = Model::from_bytes(bytes)?;
//!     let options = Options::cpu(1)?;
//!     let mut compiled = CompiledModel::new(&env, &model, &options)?;
//!     let dims = compiled.output_dims()?;
//!     let (in_t, out_t) = (model.tensor(Io::Input)?, model.tensor(Io::Output)?);
//!     let n_in = in_t.dims.iter().product::<i32>() as usize;
//!     let n_out = dims.iter().product::<i32>() as usize;
//!     let mut input = TensorBuffer::managed(&env, &in_t, &in_t.dims, n_in)?;
//!     let mut output = TensorBuffer::managed(&env, &out_t, &dims, n_out)?;
//!     input.lock_write::<i8>(n_in)?.as_mut_slice().fill(0);
//!     compiled.run(&mut input, &mut output)?;
//!     let view = output.lock_read::<i8>(n_out)?;
//!     Ok(view.as_slice()[0].into())
//! }
//! // A full-int8 model with a fixed input shape.
//! let bytes = std::fs::read("tests/fixtures/models/kws_tiny_int8.tflite").unwrap();
//! let pin = "91bef90f7643a274a155c182c051ef54acd448a6f0557f64787981b72e8efedf";
//! let model = ModelBytes::pinned(&bytes, pin).unwrap();
//! println!("{}", first_score(model).unwrap());
//! ```

use std::ffi::{c_void, CString};
use std::marker::PhantomData;
use std::ptr::{self, NonNull};

use litert_sys as sys;

use super::quiet::quietly;
use super::Quantization;

/// A raw `LiteRtStatus` (`kLiteRtStatusOk` is never returned as an error).
pub type Status = u32;

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

/// LiteRT's runtime environment; compiled models and tensor buffers borrow it.
pub struct Environment(NonNull<sys::LiteRtEnvironmentT>);

impl Environment {
    pub fn new() -> Result<Self, Status> {
        let int = |tag, value: i64| sys::LiteRtEnvOption {
            tag,
            value: sys::LiteRtAny {
                type_: sys::kLiteRtAnyTypeInt,
                __bindgen_anon_1: sys::LiteRtAny__bindgen_ty_1 { int_value: value },
            },
        };
        // Only the CPU: probing for NPU and GPU libraries finds none on a Pi or a PC and
        // prints a warning for each.
        let options = [int(
            sys::kLiteRtEnvOptionTagAutoRegisterAccelerators,
            i64::from(sys::kLiteRtHwAcceleratorCpu),
        )];
        let mut raw = ptr::null_mut();
        // Safety: the options array is valid for the call; out-pointer is valid.
        check(quietly(|| unsafe {
            sys::LiteRtCreateEnvironment(options.len() as i32, options.as_ptr(), &mut raw)
        }))?;
        Ok(Self(non_null(raw)?))
    }
}

impl Drop for Environment {
    fn drop(&mut self) {
        // Safety: created by LiteRtCreateEnvironment, destroyed once.
        quietly(|| unsafe { sys::LiteRtDestroyEnvironment(self.0.as_ptr()) })
    }
}

/// Model bytes whose sha256 matched the pin the feature contract gives for them, in 16-byte
/// aligned storage: LiteRT reads tensor data in place, and the schema aligns buffer data to 16
/// bytes relative to the start of the file.
///
/// LiteRT 2.1.4 does not verify the flatbuffer and crashes on damaged files, so the only
/// constructor checks the bytes against the sha256 the trainer wrote next to them: a damaged,
/// truncated or swapped file never reaches [`Model::from_bytes`]. (This replaced a hand-written
/// flatbuffer verifier: with every file pinned it guarded against nothing the pin misses.)
pub struct ModelBytes {
    blocks: Vec<Block>,
    len: usize,
}

#[repr(C, align(16))]
#[derive(Clone, Copy)]
struct Block([u8; 16]);

/// The bytes' sha256 differs from the pin; both in lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinMismatch {
    pub expected: String,
    pub actual: String,
}

impl ModelBytes {
    /// Copies `bytes` into aligned storage if their sha256 is `sha256` (hex, either case, as
    /// `sha256sum` prints it).
    pub fn pinned(bytes: &[u8], sha256: &str) -> Result<Self, PinMismatch> {
        let actual = super::sha256_hex(bytes);
        let expected = sha256.trim();
        if !actual.eq_ignore_ascii_case(expected) {
            return Err(PinMismatch {
                expected: expected.to_ascii_lowercase(),
                actual,
            });
        }
        let mut blocks = vec![Block([0; 16]); bytes.len().div_ceil(16)];
        for (block, chunk) in blocks.iter_mut().zip(bytes.chunks(16)) {
            block.0[..chunk.len()].copy_from_slice(chunk);
        }
        Ok(Self {
            blocks,
            len: bytes.len(),
        })
    }

    fn as_ptr(&self) -> *const c_void {
        self.blocks.as_ptr().cast()
    }
}

/// Which side of the default signature.
#[derive(Clone, Copy)]
pub enum Io {
    Input,
    Output,
}

/// Element type of a tensor, as far as we support it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Element {
    Float32,
    Int8,
    Other(u32),
}

/// What the model file says about one tensor.
pub struct TensorInfo {
    pub element: Element,
    pub dims: Vec<i32>,
    pub quantization: Option<Quantization>,
    ranked: sys::LiteRtRankedTensorType,
}

/// A parsed model; owns its bytes because LiteRT reads from them without copying.
pub struct Model {
    ptr: NonNull<sys::LiteRtModelT>,
    signature: sys::LiteRtSignature,
    // Dropped after `ptr` is destroyed (Drop::drop runs before fields are dropped).
    _bytes: ModelBytes,
}

impl Model {
    /// Parses `bytes` (already matched to their pin, see [`ModelBytes`]); the model
    /// keeps them alive because LiteRT reads from the buffer without copying it.
    pub fn from_bytes(bytes: ModelBytes) -> Result<Self, Status> {
        let mut raw = ptr::null_mut();
        // Safety: the pointer/length describe `bytes`, which the model owns from here on.
        check(unsafe { sys::LiteRtCreateModelFromBuffer(bytes.as_ptr(), bytes.len, &mut raw) })?;
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
                Io::Input => sys::LiteRtGetSignatureInputTensorByIndex(self.signature, 0, &mut t),
                Io::Output => sys::LiteRtGetSignatureOutputTensorByIndex(self.signature, 0, &mut t),
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

/// Compilation options; a compiled model borrows them (the C API leaves them owned by the
/// caller without saying for how long LiteRT reads them, so we keep them alive as long).
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
    ///
    /// The payload is TOML written by hand, so nothing but a test notices if a LiteRT upgrade
    /// renames the key: `tests/kws_model_threads.rs` checks that 1 thread starts no worker
    /// threads and 4 threads start some.
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
        if let Err(s) = check(unsafe { sys::LiteRtAddOpaqueOptions(options.0.as_ptr(), opaque) }) {
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

/// Which input dimensions [`CompiledModel::resize_input`] may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resize {
    /// Only those the model declares dynamic (−1 in its shape signature).
    Dynamic,
    /// Any of them: LiteRT prepares every operation again for the new shape and refuses the
    /// resize if one cannot take it. For a model that is convolutional along an axis its
    /// exporter fixed (the speech embedding over more frames, `kws::embedding`).
    Any,
}

/// A model compiled for the CPU. It borrows the environment, model and options it was made
/// from, so it cannot outlive them; everything that changes its state takes `&mut self`.
pub struct CompiledModel<'a> {
    ptr: NonNull<sys::LiteRtCompiledModelT>,
    /// Outputs of the default signature: how many layouts LiteRT may write in `output_dims`.
    outputs: usize,
    /// What `run` accepts, checked here rather than left to LiteRT (whose C API does not
    /// promise to check): the element type and element count of the input and the output.
    /// A count is `None` while a dimension is dynamic or not yet known after a resize.
    input: (sys::LiteRtElementType, Option<usize>),
    output: (sys::LiteRtElementType, Option<usize>),
    _parents: PhantomData<(&'a Environment, &'a Model, &'a Options)>,
}

/// Elements of a tensor with these dimensions; `None` if one is dynamic (negative).
fn element_count(dims: &[i32]) -> Option<usize> {
    dims.iter()
        .try_fold(1usize, |n, &d| n.checked_mul(usize::try_from(d).ok()?))
}

impl<'a> CompiledModel<'a> {
    pub fn new(
        env: &'a Environment,
        model: &'a Model,
        options: &'a Options,
    ) -> Result<Self, Status> {
        let (_, outputs) = model.io_counts()?;
        let (input, output) = (model.tensor(Io::Input)?, model.tensor(Io::Output)?);
        let mut raw = ptr::null_mut();
        // Safety: all handles live, and the borrows in the result keep them alive longer than
        // the compiled model.
        check(quietly(|| unsafe {
            sys::LiteRtCreateCompiledModel(
                env.0.as_ptr(),
                model.ptr.as_ptr(),
                options.0.as_ptr(),
                &mut raw,
            )
        }))?;
        Ok(Self {
            ptr: non_null(raw)?,
            outputs,
            input: (input.ranked.element_type, element_count(&input.dims)),
            output: (output.ranked.element_type, element_count(&output.dims)),
            _parents: PhantomData,
        })
    }

    /// Gives the (only) input of the default signature concrete dimensions; `how` says
    /// which of the model's declared dimensions may change.
    pub fn resize_input(&mut self, dims: &[i32], how: Resize) -> Result<(), Status> {
        let resize = match how {
            Resize::Dynamic => sys::LiteRtCompiledModelResizeInputTensor,
            Resize::Any => sys::LiteRtCompiledModelResizeInputTensorNonStrict,
        };
        // Safety: compiled model live; dims valid for the call (LiteRT copies them).
        check(unsafe { resize(self.ptr.as_ptr(), 0, 0, dims.as_ptr(), dims.len()) })?;
        self.input.1 = element_count(dims);
        // The output follows from the new input; `output_dims` learns it.
        self.output.1 = None;
        Ok(())
    }

    /// Dimensions of the first output of the default signature, as compiled (after any
    /// resize), with allocations updated to match (hence `&mut`).
    pub fn output_dims(&mut self) -> Result<Vec<i32>, Status> {
        // One slot per output: the C API does not say whether it writes fewer than all.
        let mut layouts = vec![sys::LiteRtLayout::default(); self.outputs.max(1)];
        // Safety: compiled model live; `layouts` has a slot for every output.
        check(unsafe {
            sys::LiteRtGetCompiledModelOutputTensorLayouts(
                self.ptr.as_ptr(),
                0,
                layouts.len(),
                layouts.as_mut_ptr(),
                true,
            )
        })?;
        let layout = &layouts[0];
        let rank = (layout.rank() as usize).min(layout.dimensions.len());
        let dims = layout.dimensions[..rank].to_vec();
        self.output.1 = element_count(&dims);
        Ok(dims)
    }

    /// Runs the default signature with one input and one output buffer, without
    /// allocating.
    ///
    /// Both buffers are taken by `&mut` so no view of either is alive during the run (LiteRT
    /// locks them itself and writes the output). Buffers whose element type differs from the
    /// tensor's, or that hold fewer elements, are refused here with `InvalidArgument`
    /// before LiteRT sees them (input and output swapped, a buffer made for another model).
    pub fn run(
        &mut self,
        input: &mut TensorBuffer<'_>,
        output: &mut TensorBuffer<'_>,
    ) -> Result<(), Status> {
        if self.output.1.is_none() {
            self.output_dims()?;
        }
        let fits = |buffer: &TensorBuffer<'_>,
                    (element, count): (sys::LiteRtElementType, Option<usize>)| {
            buffer.element == element && count.is_some_and(|n| buffer.len >= n)
        };
        if !fits(input, self.input) || !fits(output, self.output) {
            return Err(sys::kLiteRtStatusErrorInvalidArgument);
        }
        let mut ins = [input.ptr.as_ptr()];
        let mut outs = [output.ptr.as_ptr()];
        // Safety: all handles live and unlocked (exclusive borrows); arrays outlive the call.
        check(unsafe {
            sys::LiteRtRunCompiledModel(
                self.ptr.as_ptr(),
                0,
                ins.len(),
                ins.as_mut_ptr(),
                outs.len(),
                outs.as_mut_ptr(),
            )
        })
    }
}

impl Drop for CompiledModel<'_> {
    fn drop(&mut self) {
        // Safety: created by LiteRtCreateCompiledModel, destroyed once.
        unsafe { sys::LiteRtDestroyCompiledModel(self.ptr.as_ptr()) }
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

/// A host-memory tensor buffer owned by LiteRT; borrows the environment it was created in.
pub struct TensorBuffer<'env> {
    ptr: NonNull<sys::LiteRtTensorBufferT>,
    element: sys::LiteRtElementType,
    len: usize,
    _env: PhantomData<&'env Environment>,
}

impl<'env> TensorBuffer<'env> {
    /// A host-memory buffer owned by LiteRT, with `tensor`'s element type, the concrete
    /// `dims`, holding `len` elements.
    pub fn managed(
        env: &'env Environment,
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
            _env: PhantomData,
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
        &mut self,
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
    pub fn lock_write<T: Scalar>(&mut self, n: usize) -> Result<WriteView<'_, T>, Status> {
        let ptr = self.lock::<T>(n, sys::kLiteRtTensorBufferLockModeWrite)?;
        Ok(WriteView {
            _lock: Lock {
                buffer: self.ptr,
                _borrow: PhantomData,
            },
            ptr,
            len: n,
        })
    }

    /// Locks for reading exactly `n` elements of type `T`. Takes `&mut self` like a write
    /// lock because a lock is state of the LiteRT handle: one at a time.
    pub fn lock_read<T: Scalar>(&mut self, n: usize) -> Result<ReadView<'_, T>, Status> {
        let ptr = self.lock::<T>(n, sys::kLiteRtTensorBufferLockModeRead)?;
        Ok(ReadView {
            _lock: Lock {
                buffer: self.ptr,
                _borrow: PhantomData,
            },
            ptr,
            len: n,
        })
    }
}

impl Drop for TensorBuffer<'_> {
    fn drop(&mut self) {
        // Safety: created by LiteRtCreateManagedTensorBuffer, destroyed once.
        unsafe { sys::LiteRtDestroyTensorBuffer(self.ptr.as_ptr()) }
    }
}

/// Holds a buffer's lock and releases it on drop, so errors cannot leak a lock. The borrow of
/// the buffer (`'b`) keeps the buffer, and so the memory behind the view, alive and unshared.
struct Lock<'b> {
    buffer: NonNull<sys::LiteRtTensorBufferT>,
    _borrow: PhantomData<&'b mut ()>,
}

impl Drop for Lock<'_> {
    fn drop(&mut self) {
        // Safety: the buffer was locked by TensorBuffer::lock and is unlocked once.
        unsafe { sys::LiteRtUnlockTensorBuffer(self.buffer.as_ptr()) };
    }
}

/// A buffer locked for reading: gives only `&[T]`.
pub struct ReadView<'b, T> {
    _lock: Lock<'b>,
    ptr: *const T,
    len: usize,
}

impl<T> ReadView<'_, T> {
    pub fn as_slice(&self) -> &[T] {
        // Safety: LiteRT returned host memory of at least len elements (size checked at
        // creation), aligned for T (checked in lock), valid until the lock is released.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// A buffer locked for writing.
pub struct WriteView<'b, T> {
    _lock: Lock<'b>,
    ptr: *mut T,
    len: usize,
}

impl<T> WriteView<'_, T> {
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        // Safety: as for ReadView; the exclusive borrow of the buffer makes this view unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}
