//! The few LiteRT C calls we use, each wrapped once with ownership spelled out. Every unsafe
//! call lives here; errors are the raw `LiteRtStatus`, turned into `ModelError` by the caller who
//! knows the model path.

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
            sys::LiteRtGetCompiledModelOutputTensorLayouts(self.0.as_ptr(), 0, 1, &mut layout, true)
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
