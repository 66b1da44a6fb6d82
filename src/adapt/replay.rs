//! The replay set shipped beside the head (`adapt_replay.bin`, written by
//! `scripts/kws/adapt_pack.py`; format in that script's docs): precomputed embedding windows of
//! training voices, unknown words, real foreign speech and noise, mixed into adaptation so the
//! head keeps knowing everybody else.

use super::trainer::Example;

const MAGIC: &[u8; 8] = b"CBREPLAY";

/// Decodes the file (already checked against its pin) into examples of `input_len` values.
pub fn parse(bytes: &[u8], input_len: usize, classes: usize) -> Result<Vec<Example>, String> {
    let header = 8 + 5 * 4;
    if bytes.len() < header || &bytes[..8] != MAGIC {
        return Err("not a chatterbox replay set (bad magic)".into());
    }
    let word = |i: usize| {
        let at = 8 + 4 * i;
        u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize
    };
    let (version, count, n, dim, file_classes) = (word(0), word(1), word(2), word(3), word(4));
    if version != 1 {
        return Err(format!("version {version}; this program reads version 1"));
    }
    if n.saturating_mul(dim) != input_len || file_classes != classes {
        return Err(format!(
            "windows of {n} x {dim} values and {file_classes} classes, but the head reads {input_len} values and has {classes} classes"
        ));
    }
    let need = count
        .checked_mul(1 + 4 + input_len)
        .and_then(|b| b.checked_add(header));
    if need != Some(bytes.len()) {
        return Err(format!(
            "{} bytes, not the {:?} its header announces",
            bytes.len(),
            need
        ));
    }
    let labels = &bytes[header..header + count];
    let scales = &bytes[header + count..header + 5 * count];
    let data = &bytes[header + 5 * count..];
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let label = usize::from(labels[i]);
        if label >= classes {
            return Err(format!("example {i} has class {label} of {classes}"));
        }
        let s = &scales[4 * i..4 * i + 4];
        let scale = f32::from_le_bytes([s[0], s[1], s[2], s[3]]);
        if !scale.is_finite() {
            return Err(format!("example {i} has scale {scale}"));
        }
        let q = &data[i * input_len..(i + 1) * input_len];
        out.push(Example {
            x: q.iter().map(|&b| f32::from(b as i8) * scale).collect(),
            label,
        });
    }
    Ok(out)
}
