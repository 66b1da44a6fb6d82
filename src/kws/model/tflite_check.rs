//! Structural check of a `.tflite` file before LiteRT parses it.
//!
//! Why: LiteRT 2.1.4's `LiteRtCreateModelFromFile`/`FromBuffer` do not run the FlatBuffers
//! verifier. Measured on the committed tiny model: about a third of random truncations and a few
//! percent of single bit flips crash the process inside LiteRT (SIGSEGV, or a C++ exception that
//! aborts Rust). A model file on an SD card can be cut short by a power loss or a bad copy, and
//! the firmware must then say "this model file is damaged", not die in a restart loop.
//!
//! What is checked, following the TFLite schema (`tensorflow/lite/schema/schema.fbs`, field
//! slots confirmed against the `schema_py_generated.py` that ships with TensorFlow 2.21):
//! * every table, vector and string LiteRT reads lies inside the file, aligned, with valid
//!   vtables (the same rules as `flatbuffers::Verifier`);
//! * every index points at something that exists: tensor indices of operators, subgraph
//!   inputs/outputs and signatures; operator-code indices; buffer indices of tensors and
//!   metadata; signature subgraph indices;
//! * a tensor's rank is at most 8 and constant data is at least as long as its shape says;
//! * out-of-file ("large model") buffer offsets stay inside the file.
//!
//! Operator options: the table header of every operator's options is checked; the contents only
//! for the operators a keyword CNN uses (Conv2D, DepthwiseConv2D, Pool2D strides/filters/
//! padding, Reshape's new_shape), since LiteRT's kernels crash on zero strides. Other operators'
//! options (their layout differs for each of ~150 operators) are not. Sparse tensors are
//! rejected rather than checked (our models never use them).
//!
//! This is defence against damaged files, not a proof: a file that passes can still hold wrong
//! weights (bit flips in tensor data are undetectable here), so the model's checksum should be
//! pinned where the model is declared.

use std::fmt;

/// Why a file is not a usable TFLite model; the message names the part that is broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

type R<T> = Result<T, Invalid>;

/// Highest tensor rank LiteRT's C API can describe (`LITERT_TENSOR_MAX_RANK`).
const MAX_RANK: usize = 8;

/// Largest tensor we accept (a keyword model's biggest is well under 1 MiB; a Pi Zero 2 W has
/// 512 MiB in total).
const MAX_TENSOR_BYTES: u64 = 64 << 20;

fn bad<T>(what: impl Into<String>) -> R<T> {
    Err(Invalid(what.into()))
}

/// Checks `buf` (the whole file) as a TFLite model. See the module docs for what that covers.
pub fn check(buf: &[u8]) -> R<()> {
    if buf.len() < 8 || &buf[4..8] != b"TFL3" {
        return bad("no \"TFL3\" identifier at offset 4");
    }
    let b = Buf(buf);
    let root = b.u32(0)? as usize;
    let model = Table::at(b, root, "model")?;

    let opcodes = model.tables(1, "operator_codes")?;
    for code in opcodes.iter_t() {
        let code = code?;
        code.scalar(0, 1)?;
        code.string(1, "custom_code")?;
        code.scalar(2, 4)?;
        code.scalar(3, 4)?;
    }
    let n_opcodes = opcodes.len;

    let buffers = model.tables(4, "buffers")?;
    for buffer in buffers.iter_t() {
        let buffer = buffer?;
        buffer.vector(0, 1, "buffer data")?;
        let offset = buffer.scalar(1, 8)?.unwrap_or(0);
        let size = buffer.scalar(2, 8)?.unwrap_or(0);
        check_external_range(b, offset, size, "buffer")?;
    }
    let n_buffers = buffers.len;

    let subgraphs = model.tables(2, "subgraphs")?;
    if subgraphs.len == 0 {
        return bad("the model has no subgraphs");
    }
    let mut tensor_counts = Vec::with_capacity(subgraphs.len);
    for (si, sg) in subgraphs.iter_t().enumerate() {
        tensor_counts.push(check_subgraph(b, sg?, si, n_opcodes, &buffers)?);
    }

    model.scalar(0, 4)?;
    model.string(3, "description")?;
    for idx in model.ints(5, "metadata_buffer")?.iter() {
        index_in(idx? as i64, n_buffers, "metadata_buffer entry", "buffers")?;
    }
    for md in model.tables(6, "metadata")?.iter_t() {
        let md = md?;
        md.string(0, "metadata name")?;
        index_in(
            md.scalar(1, 4)?.unwrap_or(0) as i64,
            n_buffers,
            "metadata buffer",
            "buffers",
        )?;
    }
    for sig in model.tables(7, "signature_defs")?.iter_t() {
        let sig = sig?;
        let sgi = sig.scalar(4, 4)?.unwrap_or(0) as i64;
        index_in(sgi, subgraphs.len, "signature subgraph_index", "subgraphs")?;
        let n_tensors = tensor_counts[sgi as usize];
        for (slot, what) in [(0, "signature input"), (1, "signature output")] {
            for map in sig.tables(slot, what)?.iter_t() {
                let map = map?;
                map.string(0, "signature tensor name")?;
                let ti = map.scalar(1, 4)?.unwrap_or(0) as i64;
                index_in(ti, n_tensors, what, "tensors")?;
            }
        }
        sig.string(2, "signature_key")?;
        sig.string(3, "signature tag")?;
    }
    for slot in [8, 9] {
        for t in model.tables(slot, "external buffers")?.iter_t() {
            t?;
        }
    }
    Ok(())
}

/// Checks one subgraph and returns its tensor count.
fn check_subgraph(
    b: Buf<'_>,
    sg: Table<'_>,
    si: usize,
    n_opcodes: usize,
    buffers: &Vector<'_>,
) -> R<usize> {
    let tensors = sg.tables(0, "tensors")?;
    let n = tensors.len;
    for (ti, t) in tensors.iter_t().enumerate() {
        check_tensor(b, t?, si, ti, buffers)?;
    }
    for (slot, what) in [(1, "subgraph input"), (2, "subgraph output")] {
        for idx in sg.ints(slot, what)?.iter() {
            tensor_ref(idx?, n, what)?;
        }
    }
    for (oi, op) in sg.tables(3, "operators")?.iter_t().enumerate() {
        let op = op?;
        let what = |s: &str| format!("subgraph {si} operator {oi} {s}");
        index_in(
            op.scalar(0, 4)?.unwrap_or(0) as i64,
            n_opcodes,
            &what("opcode_index"),
            "operator_codes",
        )?;
        for (slot, name) in [(1, "input"), (2, "output"), (8, "intermediate")] {
            for idx in op.ints(slot, &what(name))?.iter() {
                tensor_ref(idx?, n, &what(name))?;
            }
        }
        // LiteRT throws (aborting the process) on an operator without outputs. Only
        // resource-variable ops legitimately have none, and keyword models use none of them.
        if op.ints(2, &what("output"))?.len == 0 {
            return bad(what("has no outputs"));
        }
        let options_type = op.scalar(3, 1)?.unwrap_or(0);
        let options = op.table(4, "builtin_options")?;
        check_builtin_options(options_type, options, &what("options"))?;
        op.vector(5, 1, "custom_options")?;
        op.scalar(6, 1)?;
        op.vector(7, 1, "mutating_variable_inputs")?;
        let offset = op.scalar(9, 8)?.unwrap_or(0);
        let size = op.scalar(10, 8)?.unwrap_or(0);
        check_external_range(b, offset, size, "custom options")?;
        op.scalar(11, 1)?;
        op.table(12, "builtin_options_2")?;
    }
    sg.string(4, "subgraph name")?;
    Ok(n)
}

fn check_tensor(b: Buf<'_>, t: Table<'_>, si: usize, ti: usize, buffers: &Vector<'_>) -> R<()> {
    let what = |s: &str| format!("subgraph {si} tensor {ti} {s}");
    let shape = t.ints(0, &what("shape"))?;
    // LiteRT copies dims into a fixed array of 8 (LiteRtLayout); more overflows its stack.
    if shape.len > MAX_RANK {
        return bad(what(&format!(
            "has rank {}, more than {MAX_RANK}",
            shape.len
        )));
    }
    let ty = t.scalar(1, 1)?.unwrap_or(0) as u8;
    let bi = t.scalar(2, 4)?.unwrap_or(0) as i64;
    index_in(bi, buffers.len, &what("buffer"), "buffers")?;
    t.string(3, &what("name"))?;
    if let Some(q) = t.table(4, &what("quantization"))? {
        q.vector(0, 4, "quantization min")?;
        q.vector(1, 4, "quantization max")?;
        q.vector(2, 4, "quantization scale")?;
        q.vector(3, 8, "quantization zero_point")?;
        q.scalar(4, 1)?;
        if let Some(details) = q.table(5, "quantization details")? {
            details.vector(0, 1, "custom quantization")?;
        }
        q.scalar(6, 4)?;
    }
    t.scalar(5, 1)?;
    let sparse = t.table(6, &what("sparsity"))?.is_some();
    if sparse {
        return bad(what("is sparse; sparse tensors are not supported"));
    }
    if t.ints(7, &what("shape_signature"))?.len > MAX_RANK {
        return bad(what("has a shape_signature longer than its maximum rank"));
    }
    t.scalar(8, 1)?;
    for v in t.tables(9, &what("variant_tensors"))?.iter_t() {
        v?.ints(0, "variant shape")?;
    }

    let mut count: u64 = 1;
    for d in shape.iter() {
        let d = d?;
        if d < 0 {
            return Ok(()); // dynamic dimension: sized at run time
        }
        count = count.saturating_mul(d as u64);
    }
    let bytes = count.saturating_mul(element_size(ty).unwrap_or(1));
    // A flipped bit in a dimension would otherwise make LiteRT try to allocate gigabytes.
    if bytes > MAX_TENSOR_BYTES {
        return bad(what(&format!(
            "declares {bytes} bytes, more than the {MAX_TENSOR_BYTES} limit"
        )));
    }
    // A constant tensor's data must cover its shape, or kernels read past it.
    let buffer = buffers.table(b, bi as usize)?;
    if let (Some(data), Some(_)) = (buffer.vector(0, 1, "buffer data")?, element_size(ty)) {
        if data.len > 0 && (data.len as u64) < bytes {
            return bad(what(&format!(
                "has {} bytes of data but its shape needs {bytes}",
                data.len
            )));
        }
    }
    Ok(())
}

/// Options of the operators a keyword CNN is built from, whose kernels crash (division by zero,
/// out-of-range reads) on a zero stride or filter, or a bad padding enum. Field slots from
/// `schema_py_generated.py`; `BuiltinOptions` union tags 1, 2, 5, 17.
fn check_builtin_options(union_type: u64, options: Option<Table<'_>>, what: &str) -> R<()> {
    // (padding slot, slots that must be >= 1 with their schema defaults)
    let (positive, default_one): (&[usize], &[usize]) = match union_type {
        1 => (&[1, 2], &[4, 5]), // Conv2D: stride_w, stride_h; dilation_w, dilation_h
        2 => (&[1, 2], &[5, 6]), // DepthwiseConv2D: strides; dilations
        5 => (&[1, 2, 3, 4], &[]), // Pool2D: strides, filter_width, filter_height
        17 => {
            // Reshape: new_shape is a vector LiteRT copies into a rank-limited shape.
            if let Some(t) = options {
                if t.ints(0, what)?.len > MAX_RANK {
                    return bad(format!(
                        "{what}: reshape to more than {MAX_RANK} dimensions"
                    ));
                }
            }
            return Ok(());
        }
        _ => return Ok(()),
    };
    let Some(t) = options else {
        return bad(format!("{what} are missing"));
    };
    if t.scalar(0, 1)?.unwrap_or(0) > 1 {
        return bad(format!("{what}: padding is neither SAME nor VALID"));
    }
    let int = |slot: usize, default: i32| -> R<i32> {
        Ok(t.scalar(slot, 4)?.map_or(default, |v| v as u32 as i32))
    };
    for &slot in positive {
        if int(slot, 0)? < 1 {
            return bad(format!(
                "{what}: stride or filter size (field {slot}) is not positive"
            ));
        }
    }
    for &slot in default_one {
        if int(slot, 1)? < 1 {
            return bad(format!("{what}: dilation (field {slot}) is not positive"));
        }
    }
    Ok(())
}

/// Bytes per element for fixed-size TFLite tensor types (`TensorType` enum).
fn element_size(ty: u8) -> Option<u64> {
    Some(match ty {
        0 => 4,           // FLOAT32
        1 => 2,           // FLOAT16
        2 => 4,           // INT32
        3 => 1,           // UINT8
        4 => 8,           // INT64
        6 => 1,           // BOOL
        7 => 2,           // INT16
        8 => 8,           // COMPLEX64
        9 => 1,           // INT8
        10 => 8,          // FLOAT64
        12 => 8,          // UINT64
        15 => 4,          // UINT32
        16 => 2,          // UINT16
        _ => return None, // STRING, INT4, RESOURCE, VARIANT, ...: not a plain multiple
    })
}

fn check_external_range(b: Buf<'_>, offset: u64, size: u64, what: &str) -> R<()> {
    // Offsets 0 and 1 are "not used" markers in the schema.
    if offset > 1
        && offset
            .checked_add(size)
            .is_none_or(|end| end > b.0.len() as u64)
    {
        return bad(format!(
            "{what} at offset {offset} size {size} runs past the end of the file"
        ));
    }
    Ok(())
}

fn index_in(idx: i64, len: usize, what: &str, of: &str) -> R<()> {
    if idx < 0 || idx as u64 >= len as u64 {
        return bad(format!("{what} {idx} is out of range ({len} {of})"));
    }
    Ok(())
}

/// A tensor reference: an index, or -1 for an omitted optional input.
fn tensor_ref(idx: i32, n: usize, what: &str) -> R<()> {
    if idx == -1 {
        return Ok(());
    }
    index_in(idx as i64, n, what, "tensors")
}

#[derive(Clone, Copy)]
struct Buf<'a>(&'a [u8]);

impl<'a> Buf<'a> {
    fn bytes(self, pos: usize, n: usize) -> R<&'a [u8]> {
        pos.checked_add(n)
            .and_then(|end| self.0.get(pos..end))
            .map_or_else(
                || {
                    bad(format!(
                        "offset {pos} (+{n}) is past the end of the file ({} bytes)",
                        self.0.len()
                    ))
                },
                Ok,
            )
    }

    fn u16(self, pos: usize) -> R<u16> {
        let s = self.bytes(pos, 2)?;
        Ok(u16::from_le_bytes([s[0], s[1]]))
    }

    fn u32(self, pos: usize) -> R<u32> {
        let s = self.bytes(pos, 4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }

    fn uint(self, pos: usize, size: usize) -> R<u64> {
        let s = self.bytes(pos, size)?;
        let mut v = [0u8; 8];
        v[..size].copy_from_slice(s);
        Ok(u64::from_le_bytes(v))
    }

    /// Follows the unsigned offset stored at `pos` (which must be 4-aligned).
    fn follow(self, pos: usize) -> R<usize> {
        aligned(pos, 4, "offset")?;
        let rel = self.u32(pos)? as usize;
        let target = pos
            .checked_add(rel)
            .filter(|&t| t < self.0.len())
            .map_or_else(
                || bad(format!("offset at {pos} points past the end of the file")),
                Ok,
            )?;
        Ok(target)
    }
}

fn aligned(pos: usize, align: usize, what: &str) -> R<()> {
    if pos % align != 0 {
        return bad(format!("{what} at {pos} is not {align}-byte aligned"));
    }
    Ok(())
}

#[derive(Clone, Copy)]
struct Table<'a> {
    b: Buf<'a>,
    pos: usize,
    vtable: usize,
    vtable_len: usize,
    inline_len: usize,
}

impl<'a> Table<'a> {
    fn at(b: Buf<'a>, pos: usize, what: &str) -> R<Self> {
        aligned(pos, 4, what)?;
        let soffset = b.u32(pos)? as i32 as i64;
        let vtable = pos as i64 - soffset;
        if vtable < 0 {
            return bad(format!(
                "{what} table at {pos} has its vtable before the file start"
            ));
        }
        let vtable = vtable as usize;
        aligned(vtable, 2, "vtable")?;
        let vtable_len = b.u16(vtable)? as usize;
        let inline_len = b.u16(vtable + 2)? as usize;
        if vtable_len < 4 || vtable_len % 2 != 0 {
            return bad(format!("{what} table at {pos} has a malformed vtable"));
        }
        b.bytes(vtable, vtable_len)?;
        b.bytes(pos, inline_len.max(4))?;
        Ok(Self {
            b,
            pos,
            vtable,
            vtable_len,
            inline_len,
        })
    }

    /// Position of field `slot` if present, checked to fit `size` bytes inside the table.
    fn field(&self, slot: usize, size: usize) -> R<Option<usize>> {
        let entry = 4 + 2 * slot;
        if entry + 2 > self.vtable_len {
            return Ok(None);
        }
        let off = self.b.u16(self.vtable + entry)? as usize;
        if off == 0 {
            return Ok(None);
        }
        if off + size > self.inline_len {
            return bad(format!(
                "field {slot} of the table at {} lies outside it",
                self.pos
            ));
        }
        Ok(Some(self.pos + off))
    }

    fn scalar(&self, slot: usize, size: usize) -> R<Option<u64>> {
        match self.field(slot, size)? {
            Some(p) => Ok(Some(self.b.uint(p, size)?)),
            None => Ok(None),
        }
    }

    fn table(&self, slot: usize, what: &str) -> R<Option<Table<'a>>> {
        match self.field(slot, 4)? {
            Some(p) => Ok(Some(Table::at(self.b, self.b.follow(p)?, what)?)),
            None => Ok(None),
        }
    }

    fn vector(&self, slot: usize, elem: usize, what: &str) -> R<Option<Vector<'a>>> {
        match self.field(slot, 4)? {
            Some(p) => Ok(Some(Vector::at(self.b, self.b.follow(p)?, elem, what)?)),
            None => Ok(None),
        }
    }

    /// A vector of tables; absent reads as empty.
    fn tables(&self, slot: usize, what: &str) -> R<Vector<'a>> {
        Ok(self.vector(slot, 4, what)?.unwrap_or(Vector::EMPTY))
    }

    /// A vector of i32; absent reads as empty.
    fn ints(&self, slot: usize, what: &str) -> R<Vector<'a>> {
        Ok(self.vector(slot, 4, what)?.unwrap_or(Vector::EMPTY))
    }

    fn string(&self, slot: usize, what: &str) -> R<()> {
        if let Some(s) = self.vector(slot, 1, what)? {
            // Strings carry a NUL terminator after their bytes.
            if self.b.bytes(s.start + s.len, 1)? != [0] {
                return bad(format!(
                    "{what} string at {} is not NUL-terminated",
                    s.start
                ));
            }
        }
        Ok(())
    }
}

#[derive(Clone, Copy)]
struct Vector<'a> {
    b: Option<Buf<'a>>,
    start: usize,
    len: usize,
}

impl<'a> Vector<'a> {
    const EMPTY: Vector<'static> = Vector {
        b: None,
        start: 0,
        len: 0,
    };

    fn at(b: Buf<'a>, pos: usize, elem: usize, what: &str) -> R<Self> {
        aligned(pos, 4, what)?;
        let len = b.u32(pos)? as usize;
        let start = pos + 4;
        let bytes = len.checked_mul(elem).map_or_else(
            || bad(format!("{what} vector at {pos} is impossibly long")),
            Ok,
        )?;
        b.bytes(start, bytes).map_err(|_| {
            Invalid(format!(
                "{what} vector at {pos} ({len} elements) runs past the end of the file"
            ))
        })?;
        Ok(Self {
            b: Some(b),
            start,
            len,
        })
    }

    /// Elements as i32 (only meaningful for 4-byte vectors).
    fn iter(&self) -> impl Iterator<Item = R<i32>> + '_ {
        (0..self.len).map(move |i| match self.b {
            Some(b) => Ok(b.u32(self.start + 4 * i)? as i32),
            None => bad("empty vector"),
        })
    }

    /// The `i`-th element of a vector of tables.
    fn table(&self, b: Buf<'a>, i: usize) -> R<Table<'a>> {
        Table::at(b, b.follow(self.start + 4 * i)?, "vector element")
    }
}

impl<'a> Vector<'a> {
    fn iter_t(&self) -> impl Iterator<Item = R<Table<'a>>> + '_ {
        (0..self.len).map(move |i| match self.b {
            Some(b) => self.table(b, i),
            None => bad("empty vector"),
        })
    }
}

#[cfg(test)]
mod tests {
    //! Each check is exercised on a hand-built model: one CONV_2D from a [1,4,4,1] input through
    //! a [1,1,1,1] constant filter to a [1,4,4,1] output. The builder lays objects out front to
    //! back (uoffsets must point forward), patching offsets once their targets exist.
    use super::check;

    #[derive(Clone, Copy)]
    enum F {
        U8(u8),
        I32(i32),
        Off, // patched later
    }

    #[derive(Default)]
    struct Builder {
        buf: Vec<u8>,
    }

    impl Builder {
        fn pad(&mut self, align: usize) {
            while self.buf.len() % align != 0 {
                self.buf.push(0);
            }
        }

        /// Writes a vtable and a table whose fields each take 4 bytes; returns the table
        /// position and the position of each `F::Off` field, in order.
        fn table(&mut self, fields: &[(usize, F)]) -> (usize, Vec<usize>) {
            let slots = fields.iter().map(|f| f.0 + 1).max().unwrap_or(0);
            self.pad(4);
            let vt = self.buf.len();
            let vt_len = 4 + 2 * slots;
            let inline = 4 + 4 * fields.len();
            self.buf.extend((vt_len as u16).to_le_bytes());
            self.buf.extend((inline as u16).to_le_bytes());
            let mut offs = vec![0u16; slots];
            for (i, (slot, _)) in fields.iter().enumerate() {
                offs[*slot] = (4 + 4 * i) as u16;
            }
            for o in offs {
                self.buf.extend(o.to_le_bytes());
            }
            self.pad(4);
            let t = self.buf.len();
            self.buf.extend(((t - vt) as i32).to_le_bytes());
            let mut patches = Vec::new();
            for (_, f) in fields {
                let pos = self.buf.len();
                match *f {
                    F::U8(v) => self.buf.extend([v, 0, 0, 0]),
                    F::I32(v) => self.buf.extend(v.to_le_bytes()),
                    F::Off => {
                        patches.push(pos);
                        self.buf.extend([0; 4]);
                    }
                }
            }
            (t, patches)
        }

        fn ints(&mut self, v: &[i32]) -> usize {
            self.pad(4);
            let p = self.buf.len();
            self.buf.extend((v.len() as u32).to_le_bytes());
            for x in v {
                self.buf.extend(x.to_le_bytes());
            }
            p
        }

        fn bytes(&mut self, v: &[u8]) -> usize {
            self.pad(4);
            let p = self.buf.len();
            self.buf.extend((v.len() as u32).to_le_bytes());
            self.buf.extend(v);
            p
        }

        /// A vector of `n` table offsets; returns its position and the element positions.
        fn offsets(&mut self, n: usize) -> (usize, Vec<usize>) {
            self.pad(4);
            let p = self.buf.len();
            self.buf.extend((n as u32).to_le_bytes());
            let elems = (0..n).map(|i| p + 4 + 4 * i).collect();
            self.buf.extend(vec![0; 4 * n]);
            (p, elems)
        }

        fn patch(&mut self, at: usize, target: usize) {
            assert!(target > at, "uoffsets point forward");
            self.buf[at..at + 4].copy_from_slice(&((target - at) as u32).to_le_bytes());
        }
    }

    /// The knobs the tests turn; `Default` is a valid model.
    struct Spec {
        input_shape: Vec<i32>,
        filter_buffer: i32,
        filter_data: usize,
        op_inputs: Vec<i32>,
        op_outputs: Vec<i32>,
        opcode_index: i32,
        stride: i32,
        padding: u8,
        subgraphs: usize,
    }

    impl Default for Spec {
        fn default() -> Self {
            Self {
                input_shape: vec![1, 4, 4, 1],
                filter_buffer: 1,
                filter_data: 4,
                op_inputs: vec![0, 1, -1],
                op_outputs: vec![2],
                opcode_index: 0,
                stride: 1,
                padding: 1,
                subgraphs: 1,
            }
        }
    }

    fn build(s: &Spec) -> Vec<u8> {
        let mut b = Builder::default();
        b.buf.extend([0, 0, 0, 0]);
        b.buf.extend(b"TFL3");
        // Model { version, operator_codes, subgraphs, buffers }
        let (model, mp) = b.table(&[(0, F::I32(3)), (1, F::Off), (2, F::Off), (4, F::Off)]);
        b.buf[0..4].copy_from_slice(&(model as u32).to_le_bytes());

        let (codes, ce) = b.offsets(1);
        b.patch(mp[0], codes);
        let (code, _) = b.table(&[(0, F::U8(3)), (2, F::I32(1)), (3, F::I32(3))]);
        b.patch(ce[0], code);

        let (sgs, se) = b.offsets(s.subgraphs);
        b.patch(mp[1], sgs);
        if s.subgraphs == 1 {
            // SubGraph { tensors, inputs, outputs, operators }
            let (sg, sp) = b.table(&[(0, F::Off), (1, F::Off), (2, F::Off), (3, F::Off)]);
            b.patch(se[0], sg);
            let (tensors, te) = b.offsets(3);
            b.patch(sp[0], tensors);
            let shapes = [s.input_shape.clone(), vec![1, 1, 1, 1], vec![1, 4, 4, 1]];
            let bufs = [0, s.filter_buffer, 0];
            for i in 0..3 {
                // Tensor { shape, type FLOAT32, buffer }
                let (t, tp) = b.table(&[(0, F::Off), (1, F::U8(0)), (2, F::I32(bufs[i]))]);
                b.patch(te[i], t);
                let shape = b.ints(&shapes[i]);
                b.patch(tp[0], shape);
            }
            let inputs = b.ints(&[0]);
            b.patch(sp[1], inputs);
            let outputs = b.ints(&[2]);
            b.patch(sp[2], outputs);
            let (ops, oe) = b.offsets(1);
            b.patch(sp[3], ops);
            // Operator { opcode_index, inputs, outputs, builtin_options_type Conv2D, options }
            let (op, opp) = b.table(&[
                (0, F::I32(s.opcode_index)),
                (1, F::Off),
                (2, F::Off),
                (3, F::U8(1)),
                (4, F::Off),
            ]);
            b.patch(oe[0], op);
            let ins = b.ints(&s.op_inputs);
            b.patch(opp[0], ins);
            let outs = b.ints(&s.op_outputs);
            b.patch(opp[1], outs);
            let (opts, _) = b.table(&[
                (0, F::U8(s.padding)),
                (1, F::I32(s.stride)),
                (2, F::I32(s.stride)),
            ]);
            b.patch(opp[2], opts);
        }
        let (bufs, be) = b.offsets(2);
        b.patch(mp[2], bufs);
        let (empty, _) = b.table(&[]);
        b.patch(be[0], empty);
        let (filter, fp) = b.table(&[(0, F::Off)]);
        b.patch(be[1], filter);
        let data = b.bytes(&vec![0; s.filter_data]);
        b.patch(fp[0], data);
        b.buf
    }

    fn error_of(s: Spec) -> String {
        match check(&build(&s)) {
            Ok(()) => panic!("the damaged model passed"),
            Err(e) => e.0,
        }
    }

    #[test]
    fn a_well_formed_model_passes() {
        assert_eq!(check(&build(&Spec::default())), Ok(()));
    }

    #[test]
    fn every_cut_of_a_model_is_rejected() {
        let full = build(&Spec::default());
        for len in 0..full.len() {
            assert!(check(&full[..len]).is_err(), "cut at {len} passed");
        }
    }

    #[test]
    fn rank_above_eight_is_rejected() {
        let e = error_of(Spec {
            input_shape: vec![1; 9],
            ..Spec::default()
        });
        assert!(e.contains("rank 9"), "{e}");
    }

    #[test]
    fn dangling_indices_are_rejected() {
        let e = error_of(Spec {
            filter_buffer: 7,
            ..Spec::default()
        });
        assert!(e.contains("buffer 7 is out of range"), "{e}");
        let e = error_of(Spec {
            op_inputs: vec![0, 3, -1],
            ..Spec::default()
        });
        assert!(e.contains("input 3 is out of range"), "{e}");
        let e = error_of(Spec {
            op_inputs: vec![0, -2, -1],
            ..Spec::default()
        });
        assert!(e.contains("input -2 is out of range"), "{e}");
        let e = error_of(Spec {
            opcode_index: 1,
            ..Spec::default()
        });
        assert!(e.contains("opcode_index 1 is out of range"), "{e}");
    }

    #[test]
    fn short_constant_data_is_rejected() {
        let e = error_of(Spec {
            filter_data: 3,
            ..Spec::default()
        });
        assert!(e.contains("3 bytes of data but its shape needs 4"), "{e}");
    }

    #[test]
    fn huge_tensors_are_rejected() {
        let e = error_of(Spec {
            input_shape: vec![1, 1 << 14, 1 << 14, 1],
            ..Spec::default()
        });
        assert!(e.contains("more than the"), "{e}");
    }

    #[test]
    fn operators_without_outputs_are_rejected() {
        let e = error_of(Spec {
            op_outputs: vec![],
            ..Spec::default()
        });
        assert!(e.contains("has no outputs"), "{e}");
    }

    #[test]
    fn conv_options_that_crash_kernels_are_rejected() {
        let e = error_of(Spec {
            stride: 0,
            ..Spec::default()
        });
        assert!(e.contains("not positive"), "{e}");
        let e = error_of(Spec {
            padding: 2,
            ..Spec::default()
        });
        assert!(e.contains("padding"), "{e}");
    }

    #[test]
    fn a_model_without_subgraphs_is_rejected() {
        let e = error_of(Spec {
            subgraphs: 0,
            ..Spec::default()
        });
        assert!(e.contains("no subgraphs"), "{e}");
    }
}
