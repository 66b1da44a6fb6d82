//! Where the head's Dense layers sit inside `head.tflite` (`adapt_layout.toml`, written by
//! `scripts/kws/adapt_pack.py`), and reading / patching them there.
//!
//! Patching bytes in place instead of writing a new flatbuffer means no `.tflite` writer is
//! needed and LiteRT runs the adapted head through exactly the graph it ran before. The layout
//! is data, not constants, so a retrained head with another Dense stack only needs the script
//! rerun.

use std::path::Path;

use serde::Deserialize;

/// Activation after a layer's affine map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Relu,
    None,
}

/// One Dense layer: kernel float32 little-endian row-major `[out][in]` at `weight_offset`,
/// bias `[out]` at `bias_offset`. Its input is cut into rows of `in` values (a shared layer
/// applied to each embedding has more than one row).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerLayout {
    #[serde(rename = "in")]
    pub inputs: usize,
    #[serde(rename = "out")]
    pub outputs: usize,
    pub weight_offset: usize,
    pub bias_offset: usize,
    pub activation: Activation,
}

/// The whole file.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layout {
    /// sha256 of the head.tflite this layout was read from.
    pub head_sha256: String,
    /// The head's input: `[embeddings, dim]`.
    pub input: [usize; 2],
    #[serde(rename = "layer")]
    pub layers: Vec<LayerLayout>,
}

/// Largest layer accepted (guards allocations against an absurd file).
const MAX_PARAMS: usize = 16 << 20;

impl Layout {
    /// Parses and checks the layout against the head's bytes and its number of classes.
    pub fn parse(
        text: &str,
        head: &[u8],
        head_sha256: &str,
        classes: usize,
    ) -> Result<Layout, String> {
        let layout: Layout = toml::from_str(text).map_err(|e| e.to_string())?;
        if !layout.head_sha256.eq_ignore_ascii_case(head_sha256.trim()) {
            return Err(format!(
                "it was written for head sha256 {} but the head is {}; rerun scripts/kws/adapt_pack.py on this model folder",
                layout.head_sha256, head_sha256
            ));
        }
        if layout.layers.is_empty() {
            return Err("it lists no layer".into());
        }
        let mut len = layout.input[0].saturating_mul(layout.input[1]);
        for (k, l) in layout.layers.iter().enumerate() {
            if l.inputs == 0 || l.outputs == 0 || len == 0 || len % l.inputs != 0 {
                return Err(format!(
                    "layer {k}: {} inputs do not divide the {len} values it is given",
                    l.inputs
                ));
            }
            let params = l.inputs.saturating_mul(l.outputs);
            if params > MAX_PARAMS {
                return Err(format!(
                    "layer {k}: {params} weights is more than this head can be"
                ));
            }
            for (what, off, n) in [
                ("kernel", l.weight_offset, params),
                ("bias", l.bias_offset, l.outputs),
            ] {
                if off.checked_add(4 * n).is_none_or(|end| end > head.len()) {
                    return Err(format!("layer {k}: its {what} lies outside the head file"));
                }
            }
            len = len / l.inputs * l.outputs;
        }
        let last = &layout.layers[layout.layers.len() - 1];
        if len != classes || last.activation != Activation::None {
            return Err(format!(
                "the last layer gives {len} values ({:?}) but the head has {classes} classes before its softmax",
                last.activation
            ));
        }
        Ok(layout)
    }

    /// Values the head reads: embeddings x dim.
    pub fn input_len(&self) -> usize {
        self.input[0] * self.input[1]
    }
}

/// Reads `n` little-endian f32 at `offset` (checked by [`Layout::parse`]).
pub fn read_f32s(bytes: &[u8], offset: usize, n: usize) -> Vec<f32> {
    bytes[offset..offset + 4 * n]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Writes `values` little-endian at `offset` (checked by [`Layout::parse`]).
pub fn write_f32s(bytes: &mut [u8], offset: usize, values: &[f32]) {
    for (c, v) in bytes[offset..offset + 4 * values.len()]
        .chunks_exact_mut(4)
        .zip(values)
    {
        c.copy_from_slice(&v.to_le_bytes());
    }
}

/// Reads a pinned file whole; the error says which file and why.
pub fn read_pinned(path: &Path, sha256: &str) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let actual = crate::kws::model::sha256_hex(&bytes);
    if !actual.eq_ignore_ascii_case(sha256.trim()) {
        return Err(format!(
            "{}: sha256 is {actual} but kws.toml pins {}; the file is damaged or not the one the contract names",
            path.display(),
            sha256.trim()
        ));
    }
    Ok(bytes)
}
