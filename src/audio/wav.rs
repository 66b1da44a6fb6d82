//! WAV clips: reading any common PCM WAV safely, and converting it to what a device plays.
//!
//! The toy plays files a person copied onto the SD card, so reading is defensive: every
//! failure is an error naming the file, never a panic, and nothing is allocated from a length
//! the header merely *claims* (reads are capped by `max_seconds`).
//!
//! Reading ([`open_clip`] → [`WavStream`]) and conversion ([`Converter`]) are streaming —
//! the header is checked up front, then samples are decoded and converted a slice at a
//! time — so the player hands the first 20 ms to the device without decoding the whole clip
//! first. [`read_clip`] and [`convert`] do the whole thing at once for everyone else. Resampling uses rubato: its FFT resampler for the usual rate pairs (44.1/48/16 kHz
//! share large common divisors), its sinc resampler for odd ones.
use std::fmt;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rubato::{
    FftFixedIn, SincFixedIn, SincInterpolationParameters, SincInterpolationType, VecResampler,
    WindowFunction,
};

use super::pcm::PcmFormat;

/// Lowest and highest sample rates accepted in a file.
pub const MIN_RATE: u32 = 1000;
pub const MAX_RATE: u32 = 384_000;
/// Most channels accepted in a file (more are downmixed to mono).
pub const MAX_CHANNELS: u16 = 32;
/// Input frames per resampler call: ~20-60 ms of audio, small enough for a quick first slice.
const RESAMPLE_CHUNK: usize = 1024;
/// Above this many input frames per FFT period, rubato's FFT resampler gets huge FFTs; use
/// the sinc resampler instead.
const FFT_MAX_MIN_CHUNK: usize = 1024;

/// A decoded clip: interleaved samples in -1..1.
#[derive(Clone, Debug, PartialEq)]
pub struct Clip {
    pub rate: u32,
    pub channels: u16,
    pub samples: Vec<f32>,
}

impl Clip {
    /// Number of frames (samples per channel).
    pub fn frames(&self) -> usize {
        self.samples.len() / usize::from(self.channels.max(1))
    }

    /// Length in seconds.
    pub fn seconds(&self) -> f32 {
        self.frames() as f32 / self.rate.max(1) as f32
    }
}

/// Why a clip could not be read or converted. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum WavError {
    #[error("cannot open '{}': {source}", path.display())]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("'{}' is empty (0 bytes); record it again or delete it", path.display())]
    Empty { path: PathBuf },
    #[error("'{}' is not a usable WAV file: {detail}. Convert it with e.g. `sox in.mp3 -b 16 out.wav`", path.display())]
    NotWav { path: PathBuf, detail: String },
    #[error("'{}' has an unsupported format: {detail}. Use 8/16/24/32-bit integer or 32-bit float PCM", path.display())]
    Unsupported { path: PathBuf, detail: String },
    #[error("'{}' is truncated: {detail}. The copy is incomplete; copy or record it again", path.display())]
    Truncated { path: PathBuf, detail: String },
    #[error("cannot convert clip{}: {detail}", name.as_ref().map(|n| format!(" '{n}'")).unwrap_or_default())]
    Convert {
        name: Option<String>,
        detail: String,
    },
}

/// Reads any PCM WAV (8/16/24/32-bit int, 32-bit float; 1-32 channels; 1-384 kHz),
/// keeping at most `max_seconds` of audio. Files with more than two channels are downmixed
/// to mono. Refuses empty, non-WAV, truncated and absurd files with an error naming `path`.
pub fn read_clip(path: &Path, max_seconds: f32) -> Result<Clip, WavError> {
    let mut stream = open_clip(path, max_seconds)?;
    let mut samples = Vec::with_capacity(stream.total_frames() * usize::from(stream.channels()));
    while stream.read_frames(8192, &mut samples)? > 0 {}
    Ok(Clip {
        rate: stream.rate(),
        channels: stream.channels(),
        samples,
    })
}

/// Opens a WAV for reading a piece at a time (what the player does, so a long clip does not
/// delay the first sound). The header is checked here — format, rate, channels, and that the
/// file really holds the data the header promises — so a broken file is refused before it
/// starts playing.
pub fn open_clip(path: &Path, max_seconds: f32) -> Result<WavStream, WavError> {
    let meta = std::fs::metadata(path).map_err(|source| WavError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    if meta.len() == 0 {
        return Err(WavError::Empty {
            path: path.to_path_buf(),
        });
    }
    let max_seconds = if max_seconds.is_finite() {
        max_seconds.max(0.0)
    } else {
        0.0
    };
    // hound is well behaved on the inputs we tested, but a malformed file must never take
    // the player thread down; turn any panic inside the decoder into an error.
    let owned = path.to_path_buf();
    let file_len = meta.len();
    crate::supervise::contain_panics(move || WavStream::open(owned, file_len, max_seconds))
        .unwrap_or_else(|_| Err(decoder_panicked(path)))
}

fn decoder_panicked(path: &Path) -> WavError {
    WavError::NotWav {
        path: path.to_path_buf(),
        detail: "the decoder failed on this file".into(),
    }
}

/// Counts the bytes hound consumes, to learn where the sample data starts.
struct CountingReader {
    inner: BufReader<File>,
    count: Arc<AtomicU64>,
}

impl Read for CountingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Where samples come from once the header is read.
enum Decoder {
    /// hound: samples exactly as wide as their container, and float.
    Hound(hound::WavReader<CountingReader>),
    /// Integer samples narrower than their container (24 valid bits in 4 bytes), which
    /// hound reads from the low bytes. WAV stores them left-justified (the valid bits are
    /// the top ones, the rest zero: WAVE_FORMAT_EXTENSIBLE says so, and the older format
    /// for sizes that are not whole bytes), so they are read here as full-width words.
    Padded {
        data: CountingReader,
        /// Bytes per sample in the file (`block_align / channels`).
        container: usize,
        /// Raw bytes, reused between reads.
        bytes: Vec<u8>,
    },
}

/// A WAV being read piece by piece; see [`open_clip`].
pub struct WavStream {
    path: PathBuf,
    decoder: Decoder,
    spec: hound::WavSpec,
    /// Samples (over all file channels) still to read, capped by `max_seconds`.
    remaining: usize,
    total_frames: usize,
    /// Decoded file samples, reused between reads.
    scratch: Vec<f32>,
}

impl fmt::Debug for WavStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WavStream")
            .field("path", &self.path)
            .field("spec", &self.spec)
            .field("remaining", &self.remaining)
            .finish()
    }
}

impl WavStream {
    fn open(path: PathBuf, file_len: u64, max_seconds: f32) -> Result<Self, WavError> {
        let not_wav = |detail: String| WavError::NotWav {
            path: path.clone(),
            detail,
        };
        let unsupported = |detail: String| WavError::Unsupported {
            path: path.clone(),
            detail,
        };
        let file = File::open(&path).map_err(|source| WavError::Open {
            path: path.clone(),
            source,
        })?;
        let count = Arc::new(AtomicU64::new(0));
        let counting = CountingReader {
            inner: BufReader::new(file),
            count: count.clone(),
        };
        let reader = match hound::WavReader::new(counting) {
            Ok(r) => r,
            Err(hound::Error::IoError(source))
                if source.kind() != std::io::ErrorKind::UnexpectedEof =>
            {
                return Err(WavError::Open { path, source })
            }
            Err(hound::Error::Unsupported) => {
                return Err(unsupported("compressed or unknown sample encoding".into()))
            }
            Err(e) => return Err(not_wav(e.to_string())),
        };
        let spec = reader.spec();
        if spec.channels == 0 || spec.channels > MAX_CHANNELS {
            return Err(not_wav(format!(
                "header says {} channels (expected 1-{MAX_CHANNELS})",
                spec.channels
            )));
        }
        if !(MIN_RATE..=MAX_RATE).contains(&spec.sample_rate) {
            return Err(not_wav(format!(
                "header says {} Hz (expected {MIN_RATE}-{MAX_RATE})",
                spec.sample_rate
            )));
        }
        match (spec.sample_format, spec.bits_per_sample) {
            (hound::SampleFormat::Float, 32) | (hound::SampleFormat::Int, 8 | 16 | 24 | 32) => {}
            (fmt, bits) => {
                return Err(unsupported(format!(
                    "{bits}-bit {}",
                    match fmt {
                        hound::SampleFormat::Float => "float",
                        hound::SampleFormat::Int => "integer",
                    }
                )))
            }
        }
        let ch = usize::from(spec.channels);
        // Bytes each sample takes in the file. hound does not say, and the bit depth is not
        // it: 24-bit samples often sit in 4-byte containers.
        let container = block_align(&path)
            .map(|align| usize::from(align) / ch)
            .filter(|&c| c * 8 >= usize::from(spec.bits_per_sample))
            .unwrap_or_else(|| usize::from(spec.bits_per_sample.div_ceil(8)));
        // No sample format here is wider than 4 bytes: a wider container means the block
        // size and the channel count disagree (a damaged header).
        if container > 4 {
            return Err(WavError::NotWav {
                path: path.clone(),
                detail: format!(
                    "the header is damaged: {} bytes per frame for {ch} channel(s) of {}-bit samples",
                    container * ch,
                    spec.bits_per_sample
                ),
            });
        }
        let declared = reader.len() as usize;
        let cap_frames = (f64::from(max_seconds) * f64::from(spec.sample_rate)).floor() as usize;
        let wanted = declared.min(cap_frames.saturating_mul(ch));
        let wanted = wanted - wanted % ch;
        if declared > wanted + ch {
            log::info!(
                "'{}' is longer than {max_seconds} s; playing only the first {max_seconds} s",
                path.display()
            );
        }
        // Does the file hold what we are about to read? (Checked against the file size, so
        // a copy cut short is refused before it starts playing.)
        let data_start = count.load(Ordering::Relaxed);
        let bytes_needed = wanted as u64 * container as u64;
        let bytes_present = file_len.saturating_sub(data_start);
        if bytes_present < bytes_needed {
            return Err(WavError::Truncated {
                path,
                detail: format!(
                    "the header promises {declared} samples but the file holds only about {}",
                    bytes_present / container as u64
                ),
            });
        }
        let padded = spec.sample_format == hound::SampleFormat::Int
            && container * 8 > usize::from(spec.bits_per_sample);
        let decoder = if padded {
            Decoder::Padded {
                data: reader.into_inner(),
                container,
                bytes: Vec::new(),
            }
        } else {
            Decoder::Hound(reader)
        };
        Ok(Self {
            path,
            decoder,
            spec,
            remaining: wanted,
            total_frames: wanted / ch,
            scratch: Vec::new(),
        })
    }

    /// Sample rate of the file.
    pub fn rate(&self) -> u32 {
        self.spec.sample_rate
    }

    /// Channels delivered: the file's, or 1 when a file with more than two is downmixed.
    pub fn channels(&self) -> u16 {
        if self.spec.channels > 2 {
            1
        } else {
            self.spec.channels
        }
    }

    /// Frames this stream delivers in total (after the `max_seconds` cap).
    pub fn total_frames(&self) -> usize {
        self.total_frames
    }

    /// Appends up to `max_frames` frames (interleaved, -1..1) to `out`; 0 at the end.
    pub fn read_frames(
        &mut self,
        max_frames: usize,
        out: &mut Vec<f32>,
    ) -> Result<usize, WavError> {
        let ch = usize::from(self.spec.channels);
        let n = (max_frames.saturating_mul(ch)).min(self.remaining);
        if n == 0 {
            return Ok(0);
        }
        self.scratch.clear();
        let path = &self.path;
        let truncated = || WavError::Truncated {
            path: path.clone(),
            detail: "the sample data ends early or cannot be read".into(),
        };
        let bits = u32::from(self.spec.bits_per_sample);
        match &mut self.decoder {
            Decoder::Hound(reader) if self.spec.sample_format == hound::SampleFormat::Float => {
                for s in reader.samples::<f32>().take(n) {
                    let v = s.map_err(|_| truncated())?;
                    self.scratch.push(if v.is_finite() {
                        v.clamp(-1.0, 1.0)
                    } else {
                        0.0
                    });
                }
            }
            Decoder::Hound(reader) => {
                let scale = 1.0 / (1u64 << (bits - 1)) as f64;
                for s in reader.samples::<i32>().take(n) {
                    let v = s.map_err(|_| truncated())?;
                    self.scratch.push((f64::from(v) * scale) as f32);
                }
            }
            Decoder::Padded {
                data,
                container,
                bytes,
            } => {
                bytes.resize(n * *container, 0);
                data.read_exact(bytes).map_err(|_| truncated())?;
                // The valid bits are the top `bits` of the container; anything below them
                // is padding and must not count.
                let keep = u32::MAX << (32 - bits.min(32));
                let scale = 1.0 / 2_147_483_648.0;
                for sample in bytes.chunks_exact(*container) {
                    let mut word = [0u8; 4];
                    word[4 - sample.len()..].copy_from_slice(sample);
                    let v = (u32::from_le_bytes(word) & keep) as i32;
                    self.scratch.push((f64::from(v) * scale) as f32);
                }
            }
        }
        if self.scratch.len() < n {
            return Err(truncated());
        }
        self.remaining -= n;
        if ch > 2 {
            out.extend(to_mono_f32(&self.scratch, self.spec.channels));
        } else {
            out.extend_from_slice(&self.scratch);
        }
        Ok(n / ch)
    }
}

/// `block_align` (bytes per frame) from the file's `fmt ` chunk, or None if it cannot be
/// found (hound has already accepted the header; this only re-reads one field of it).
fn block_align(path: &Path) -> Option<u16> {
    use std::io::{Seek, SeekFrom};
    let mut f = BufReader::new(File::open(path).ok()?);
    let mut riff = [0u8; 12];
    f.read_exact(&mut riff).ok()?;
    if &riff[..4] != b"RIFF" || &riff[8..] != b"WAVE" {
        return None;
    }
    // A bounded walk: a file of thousands of tiny chunks is not worth following.
    for _ in 0..64 {
        let mut head = [0u8; 8];
        f.read_exact(&mut head).ok()?;
        let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        if &head[..4] == b"fmt " {
            let mut fmt = [0u8; 14];
            f.read_exact(&mut fmt).ok()?;
            return Some(u16::from_le_bytes([fmt[12], fmt[13]]));
        }
        // Chunks are padded to an even length.
        f.seek(SeekFrom::Current(i64::from(len) + i64::from(len & 1)))
            .ok()?;
    }
    None
}

/// Averages interleaved `channels`-channel samples down to mono.
pub fn to_mono_f32(samples: &[f32], channels: u16) -> Vec<f32> {
    let ch = usize::from(channels.max(1));
    if ch == 1 {
        return samples.to_vec();
    }
    samples
        .chunks_exact(ch)
        .map(|frame| frame.iter().sum::<f32>() / ch as f32)
        .collect()
}

/// Averages interleaved S16 samples down to mono floats in -1..1 (for the recognizer and
/// level meters).
pub fn i16_to_mono_f32(samples: &[i16], channels: u16) -> Vec<f32> {
    let ch = usize::from(channels.max(1));
    samples
        .chunks_exact(ch)
        .map(|frame| frame.iter().map(|&s| f32::from(s)).sum::<f32>() / (ch as f32 * 32768.0))
        .collect()
}

/// Scales a -1..1 sample by `gain` and clips it to i16.
pub fn to_i16(sample: f32, gain: f32) -> i16 {
    let v = (sample * gain * 32767.0).round();
    if v.is_nan() {
        0
    } else {
        v.clamp(-32768.0, 32767.0) as i16
    }
}

/// Converts a whole clip to interleaved S16 in `to` (channel mapping, resampling, gain,
/// clipping). The player uses [`Converter`] directly to start playing before the end.
pub fn convert(clip: &Clip, to: PcmFormat, gain: f32) -> Result<Vec<i16>, WavError> {
    let mut conv = Converter::new(clip, to)?;
    let mut out = Vec::with_capacity(conv.total_frames() * usize::from(to.channels));
    while conv.next_block(4096, gain, &mut out)? > 0 {}
    Ok(out)
}

/// Where a [`Converter`] pulls audio from: a decoded [`Clip`] or a [`WavStream`].
pub trait FrameSource: Send {
    fn rate(&self) -> u32;
    fn channels(&self) -> u16;
    /// Frames the source delivers in total.
    fn total_frames(&self) -> usize;
    /// Appends up to `max_frames` interleaved frames to `out`; 0 at the end.
    fn read_frames(&mut self, max_frames: usize, out: &mut Vec<f32>) -> Result<usize, WavError>;
}

impl FrameSource for WavStream {
    fn rate(&self) -> u32 {
        WavStream::rate(self)
    }
    fn channels(&self) -> u16 {
        WavStream::channels(self)
    }
    fn total_frames(&self) -> usize {
        WavStream::total_frames(self)
    }
    fn read_frames(&mut self, max_frames: usize, out: &mut Vec<f32>) -> Result<usize, WavError> {
        WavStream::read_frames(self, max_frames, out)
    }
}

/// A decoded clip as a [`FrameSource`].
pub struct ClipSource {
    clip: Clip,
    pos: usize,
}

impl ClipSource {
    pub fn new(clip: Clip) -> Self {
        Self { clip, pos: 0 }
    }
}

impl FrameSource for ClipSource {
    fn rate(&self) -> u32 {
        self.clip.rate
    }
    fn channels(&self) -> u16 {
        self.clip.channels
    }
    fn total_frames(&self) -> usize {
        self.clip.frames()
    }
    fn read_frames(&mut self, max_frames: usize, out: &mut Vec<f32>) -> Result<usize, WavError> {
        let ch = usize::from(self.clip.channels.max(1));
        let n = max_frames.min(self.clip.frames() - self.pos);
        out.extend_from_slice(&self.clip.samples[self.pos * ch..(self.pos + n) * ch]);
        self.pos += n;
        Ok(n)
    }
}

/// Streaming source → device-format conversion; see the module docs.
pub struct Converter {
    source: Box<dyn FrameSource>,
    src_channels: usize,
    /// Channels carried through the resampler: the source's, reduced first when the device
    /// has fewer (mono device: average), expanded only at output.
    work_channels: usize,
    resampler: Option<Box<dyn VecResampler<f32>>>,
    /// Converted output not yet emitted, planar, from `pending_pos`.
    pending: Vec<Vec<f32>>,
    pending_pos: usize,
    /// Resampler delay (output frames) still to discard from the front.
    skip: usize,
    /// Output frames still to emit.
    remaining: usize,
    total: usize,
    to: PcmFormat,
    /// Interleaved frames pulled from the source, reused.
    scratch: Vec<f32>,
}

impl fmt::Debug for Converter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Converter")
            .field("to", &self.to)
            .field("total", &self.total)
            .field("remaining", &self.remaining)
            .finish()
    }
}

fn convert_error(detail: impl Into<String>) -> WavError {
    WavError::Convert {
        name: None,
        detail: detail.into(),
    }
}

impl Converter {
    /// Converts a decoded clip (copied).
    pub fn new(clip: &Clip, to: PcmFormat) -> Result<Self, WavError> {
        Self::from_source(Box::new(ClipSource::new(clip.clone())), to)
    }

    /// Converts whatever `source` delivers, pulling from it only as output is requested.
    pub fn from_source(source: Box<dyn FrameSource>, to: PcmFormat) -> Result<Self, WavError> {
        let (rate, channels) = (source.rate(), source.channels());
        if channels == 0 || rate == 0 {
            return Err(convert_error(format!(
                "the clip claims {rate} Hz and {channels} channels"
            )));
        }
        if to.channels == 0 || to.rate == 0 {
            return Err(convert_error(format!("the device format {to} is empty")));
        }
        let src_channels = usize::from(channels);
        let dst_channels = usize::from(to.channels);
        let work_channels = src_channels.min(dst_channels);
        let frames = source.total_frames() as u64;
        let total =
            ((frames * u64::from(to.rate) + u64::from(rate) / 2) / u64::from(rate)) as usize;
        let (resampler, skip) = if rate == to.rate {
            (None, 0)
        } else {
            let r = make_resampler(rate, to.rate, work_channels)?;
            let delay = r.output_delay();
            (Some(r), delay)
        };
        Ok(Self {
            source,
            src_channels,
            work_channels,
            resampler,
            pending: vec![Vec::new(); work_channels],
            pending_pos: 0,
            skip,
            remaining: total,
            total,
            to,
            scratch: Vec::new(),
        })
    }

    /// Total output frames the clip converts to.
    pub fn total_frames(&self) -> usize {
        self.total
    }

    /// Output frames not yet produced.
    pub fn remaining_frames(&self) -> usize {
        self.remaining
    }

    /// Appends up to `max_frames` frames of interleaved S16 output (scaled by `gain`) to
    /// `out`; returns how many frames were appended (0 = the clip is done).
    pub fn next_block(
        &mut self,
        max_frames: usize,
        gain: f32,
        out: &mut Vec<i16>,
    ) -> Result<usize, WavError> {
        let want = max_frames.min(self.remaining);
        if want == 0 {
            return Ok(0);
        }
        while self.pending_len() < want {
            if !self.refill(want)? {
                break;
            }
        }
        let n = want.min(self.pending_len());
        let dst_ch = usize::from(self.to.channels);
        let work_ch = self.work_channels;
        out.reserve(want * dst_ch);
        for i in self.pending_pos..self.pending_pos + n {
            for c in 0..dst_ch {
                out.push(to_i16(self.pending[c % work_ch][i], gain));
            }
        }
        self.pending_pos += n;
        self.remaining -= n;
        if n < want {
            // The source or resampler delivered less than the rounded length: pad with
            // silence so the output length is exactly `total`, which callers rely on.
            let pad = want - n;
            out.extend(std::iter::repeat_n(0i16, pad * dst_ch));
            self.remaining -= pad;
        }
        Ok(want)
    }

    fn pending_len(&self) -> usize {
        self.pending.first().map_or(0, |p| p.len()) - self.pending_pos
    }

    /// Pulls up to `frames` source frames, reduced to the working channels, planar.
    fn pull(&mut self, frames: usize) -> Result<Vec<Vec<f32>>, WavError> {
        self.scratch.clear();
        let n = self.source.read_frames(frames, &mut self.scratch)?;
        let src = self.src_channels;
        let work = self.work_channels;
        let mut planar = vec![Vec::with_capacity(n); work];
        for frame in self.scratch.chunks_exact(src).take(n) {
            if work == 1 && src > 1 {
                planar[0].push(frame.iter().sum::<f32>() / src as f32);
            } else {
                for (c, p) in planar.iter_mut().enumerate() {
                    p.push(frame[c]);
                }
            }
        }
        Ok(planar)
    }

    /// Converts one more piece into `pending`; false when there is nothing more to get.
    fn refill(&mut self, want: usize) -> Result<bool, WavError> {
        let produced = if self.resampler.is_none() {
            let input = self.pull(want.max(RESAMPLE_CHUNK))?;
            if input.first().is_none_or(|p| p.is_empty()) {
                return Ok(false);
            }
            input
        } else {
            let need = self.resampler.as_ref().map_or(0, |r| r.input_frames_next());
            let input = self.pull(need)?;
            let got = input.first().map_or(0, |p| p.len());
            let Some(r) = self.resampler.as_mut() else {
                return Ok(false);
            };
            if got == need {
                r.process(&input, None)
            } else if got > 0 {
                // The tail, zero-padded to a whole chunk.
                r.process_partial(Some(&input), None)
            } else {
                // Past the end: zeros that flush the filter's delay.
                r.process_partial(None, None)
            }
            .map_err(|e| convert_error(format!("resampler: {e}")))?
        };
        // Drop what was already emitted, then append the new output minus the delay.
        let skip = self.skip.min(produced.first().map_or(0, |p| p.len()));
        for (p, new) in self.pending.iter_mut().zip(produced) {
            p.drain(..self.pending_pos);
            p.extend_from_slice(&new[skip..]);
        }
        self.skip -= skip;
        self.pending_pos = 0;
        Ok(true)
    }
}

fn make_resampler(
    from: u32,
    to: u32,
    channels: usize,
) -> Result<Box<dyn VecResampler<f32>>, WavError> {
    let (from_u, to_u) = (from as usize, to as usize);
    let g = gcd(from_u, to_u);
    let err =
        |e: &dyn fmt::Display| convert_error(format!("cannot resample {from} Hz to {to} Hz: {e}"));
    if from_u / g <= FFT_MAX_MIN_CHUNK {
        FftFixedIn::<f32>::new(from_u, to_u, RESAMPLE_CHUNK, 2, channels)
            .map(|r| Box::new(r) as Box<dyn VecResampler<f32>>)
            .map_err(|e| err(&e))
    } else {
        let params = SincInterpolationParameters {
            sinc_len: 128,
            f_cutoff: 0.95,
            oversampling_factor: 128,
            interpolation: SincInterpolationType::Cubic,
            window: WindowFunction::BlackmanHarris2,
        };
        SincFixedIn::<f32>::new(
            f64::from(to) / f64::from(from),
            1.0,
            params,
            RESAMPLE_CHUNK,
            channels,
        )
        .map(|r| Box::new(r) as Box<dyn VecResampler<f32>>)
        .map_err(|e| err(&e))
    }
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write_wav(path: &Path, spec: hound::WavSpec, frames: usize, f: impl Fn(usize) -> f64) {
        let mut w = hound::WavWriter::create(path, spec).unwrap();
        for i in 0..frames {
            let v = f(i);
            for _ in 0..spec.channels {
                match (spec.sample_format, spec.bits_per_sample) {
                    (hound::SampleFormat::Float, _) => w.write_sample(v as f32).unwrap(),
                    (_, 8) => w.write_sample((v * 127.0).round() as i8).unwrap(),
                    (_, 16) => w.write_sample((v * 32767.0).round() as i16).unwrap(),
                    (_, 24) => w.write_sample((v * 8_388_607.0).round() as i32).unwrap(),
                    (_, 32) => w
                        .write_sample((v * 2_147_483_647.0).round() as i32)
                        .unwrap(),
                    _ => unreachable!(),
                }
            }
        }
        w.finalize().unwrap();
    }

    fn spec(channels: u16, rate: u32, bits: u16, float: bool) -> hound::WavSpec {
        hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: bits,
            sample_format: if float {
                hound::SampleFormat::Float
            } else {
                hound::SampleFormat::Int
            },
        }
    }

    fn ramp(i: usize) -> f64 {
        // -0.5 .. 0.5, distinct values, exact in every format down to 8 bits.
        ((i % 100) as f64 - 50.0) / 100.0
    }

    #[test]
    fn reads_every_sample_format_and_scales_to_unit_range() {
        let dir = tempfile::tempdir().unwrap();
        for (bits, float, tol) in [
            (8, false, 1.0 / 127.0),
            (16, false, 1e-4),
            (24, false, 1e-6),
            (32, false, 1e-6),
            (32, true, 1e-7),
        ] {
            for channels in [1u16, 2] {
                let path = dir.path().join(format!("b{bits}_{float}_{channels}.wav"));
                write_wav(&path, spec(channels, 22050, bits, float), 500, ramp);
                let clip = read_clip(&path, 10.0).unwrap();
                assert_eq!((clip.rate, clip.channels), (22050, channels));
                assert_eq!(clip.frames(), 500, "{bits}-bit");
                for (i, frame) in clip.samples.chunks(channels as usize).enumerate() {
                    for &s in frame {
                        assert!(
                            (f64::from(s) - ramp(i)).abs() <= tol,
                            "{bits}-bit float={float} ch={channels} frame {i}: {s} vs {}",
                            ramp(i)
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn more_than_two_channels_are_downmixed_to_mono() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("quad.wav");
        let mut w = hound::WavWriter::create(&path, spec(4, 16000, 16, false)).unwrap();
        for _ in 0..10 {
            for s in [1000i16, 3000, -2000, 2000] {
                w.write_sample(s).unwrap();
            }
        }
        w.finalize().unwrap();
        let clip = read_clip(&path, 10.0).unwrap();
        assert_eq!(clip.channels, 1);
        assert_eq!(clip.frames(), 10);
        assert!((clip.samples[0] - 1000.0 / 32768.0).abs() < 1e-6);
    }

    #[test]
    fn long_files_are_cut_at_max_seconds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("long.wav");
        write_wav(&path, spec(2, 8000, 16, false), 8000 * 3, ramp);
        let clip = read_clip(&path, 1.5).unwrap();
        assert_eq!(clip.frames(), 12000);
    }

    fn assert_refused(path: &Path, what: &str) -> WavError {
        let err = read_clip(path, 10.0).expect_err(what);
        let msg = err.to_string();
        let name = path.file_name().unwrap().to_string_lossy();
        assert!(
            msg.contains(name.as_ref()),
            "{what}: message must name the file: {msg}"
        );
        err
    }

    #[test]
    fn hostile_files_are_refused_with_errors_naming_them() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();

        let empty = d.join("empty.wav");
        std::fs::write(&empty, b"").unwrap();
        assert!(matches!(
            assert_refused(&empty, "zero bytes"),
            WavError::Empty { .. }
        ));

        let text = d.join("notes.wav");
        std::fs::write(&text, "this is not audio, just a text file\n".repeat(20)).unwrap();
        assert!(matches!(
            assert_refused(&text, "text"),
            WavError::NotWav { .. }
        ));

        let missing = d.join("missing.wav");
        assert!(matches!(
            assert_refused(&missing, "missing"),
            WavError::Open { .. }
        ));

        // A good file cut in the middle of its data.
        let good = d.join("good.wav");
        write_wav(&good, spec(1, 16000, 16, false), 16000, ramp);
        let bytes = std::fs::read(&good).unwrap();
        let cut = d.join("cut.wav");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        assert!(matches!(
            assert_refused(&cut, "truncated data"),
            WavError::Truncated { .. }
        ));

        // Cut inside the header.
        let header_cut = d.join("header_cut.wav");
        std::fs::write(&header_cut, &bytes[..30]).unwrap();
        assert_refused(&header_cut, "truncated header");

        // A header declaring ~4 GB of data in a tiny file: no huge allocation, an error.
        let mut huge = bytes[..44].to_vec();
        huge[40..44].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        huge.extend_from_slice(&[0u8; 64]);
        let huge_path = d.join("huge.wav");
        std::fs::write(&huge_path, &huge).unwrap();
        // Even with a large max_seconds, the read is bounded by the real data.
        let err = read_clip(&huge_path, 100_000.0).expect_err("huge declared length");
        assert!(matches!(err, WavError::Truncated { .. }), "{err}");

        // Absurd format fields.
        for (name, offset, value) in [
            ("zero_channels.wav", 22usize, 0u32),
            ("rate_zero.wav", 24, 0),
            ("rate_absurd.wav", 24, 50_000_000),
            ("bits_12.wav", 34, 12),
            ("format_mp3.wav", 20, 0x55),
        ] {
            let mut b = bytes.clone();
            let width = if offset == 24 { 4 } else { 2 };
            b[offset..offset + width].copy_from_slice(&value.to_le_bytes()[..width]);
            let p = d.join(name);
            std::fs::write(&p, &b).unwrap();
            assert_refused(&p, name);
        }

        // Random garbage after a RIFF/WAVE header.
        let mut garbage = b"RIFF\xff\xff\xff\xffWAVE".to_vec();
        let mut x: u32 = 12345;
        for _ in 0..2000 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            garbage.push((x >> 16) as u8);
        }
        let gp = d.join("garbage.wav");
        std::fs::File::create(&gp)
            .unwrap()
            .write_all(&garbage)
            .unwrap();
        assert_refused(&gp, "garbage");
    }

    fn dominant_freq(samples: &[f32], rate: u32) -> f32 {
        // Zero crossings of a clean sine: 2 per period.
        let crossings = samples
            .windows(2)
            .filter(|w| (w[0] < 0.0) != (w[1] < 0.0))
            .count();
        crossings as f32 / 2.0 / (samples.len() as f32 / rate as f32)
    }

    #[test]
    fn convert_resamples_maps_channels_and_keeps_length_and_pitch() {
        let rate = 16000;
        let n = 8000; // 0.5 s
        let sine: Vec<f32> = (0..n)
            .map(|i| 0.5 * (2.0 * std::f32::consts::PI * 440.0 * i as f32 / rate as f32).sin())
            .collect();
        let clip = Clip {
            rate,
            channels: 1,
            samples: sine,
        };
        let out = convert(
            &clip,
            PcmFormat {
                rate: 48000,
                channels: 2,
            },
            1.0,
        )
        .unwrap();
        assert_eq!(out.len(), 24000 * 2, "0.5 s at 48 kHz stereo");
        let left: Vec<f32> = out
            .iter()
            .step_by(2)
            .map(|&s| f32::from(s) / 32768.0)
            .collect();
        let right: Vec<f32> = out
            .iter()
            .skip(1)
            .step_by(2)
            .map(|&s| f32::from(s) / 32768.0)
            .collect();
        assert_eq!(left, right, "mono is copied to both channels");
        let f = dominant_freq(&left[2400..21600], 48000);
        assert!((f - 440.0).abs() < 5.0, "pitch preserved: {f} Hz");
        let peak = left[2400..21600].iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!((peak - 0.5).abs() < 0.03, "level preserved: {peak}");
        // The resampler delay was removed: the sine starts at the start, not later.
        let early_peak = left[..480].iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!(early_peak > 0.3, "no leading silence: {early_peak}");

        // Down: 44.1 kHz stereo -> 16 kHz mono, with gain and clipping.
        let stereo = Clip {
            rate: 44100,
            channels: 2,
            samples: (0..44100)
                .flat_map(|i| {
                    let v = 0.8 * (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 44100.0).sin();
                    [v, v]
                })
                .collect(),
        };
        let out = convert(
            &stereo,
            PcmFormat {
                rate: 16000,
                channels: 1,
            },
            2.0,
        )
        .unwrap();
        assert_eq!(out.len(), 16000);
        let mono: Vec<f32> = out.iter().map(|&s| f32::from(s) / 32768.0).collect();
        let f = dominant_freq(&mono[1600..14400], 16000);
        assert!((f - 1000.0).abs() < 10.0, "{f}");
        assert!(out.contains(&i16::MAX), "gain 2 on 0.8 must clip");
        assert!(out.iter().all(|&s| s >= -32768));
    }

    #[test]
    fn odd_rates_use_the_sinc_resampler_and_keep_length() {
        let clip = Clip {
            rate: 44101,
            channels: 1,
            samples: vec![0.25; 44101 / 2],
        };
        let out = convert(
            &clip,
            PcmFormat {
                rate: 48000,
                channels: 1,
            },
            1.0,
        )
        .unwrap();
        // 22050 frames * 48000 / 44101 = 23999.46 -> 23999
        assert_eq!(out.len(), 23999);
        let mid = out[12000];
        assert!((i32::from(mid) - 8192).abs() < 100, "level kept: {mid}");
    }

    #[test]
    fn same_rate_conversion_is_exact() {
        let clip = Clip {
            rate: 48000,
            channels: 2,
            samples: vec![0.5, -0.5, 0.25, -0.25],
        };
        let out = convert(
            &clip,
            PcmFormat {
                rate: 48000,
                channels: 2,
            },
            1.0,
        )
        .unwrap();
        assert_eq!(out, vec![16384, -16384, 8192, -8192]);
        let mono = convert(
            &clip,
            PcmFormat {
                rate: 48000,
                channels: 1,
            },
            1.0,
        )
        .unwrap();
        assert_eq!(mono, vec![0, 0]);
    }

    #[test]
    fn streaming_blocks_add_up_to_the_whole() {
        let clip = Clip {
            rate: 22050,
            channels: 1,
            samples: (0..22050)
                .map(|i| ((i % 50) as f32 - 25.0) / 50.0)
                .collect(),
        };
        let to = PcmFormat {
            rate: 48000,
            channels: 2,
        };
        let whole = convert(&clip, to, 1.0).unwrap();
        let mut conv = Converter::new(&clip, to).unwrap();
        let mut pieces = Vec::new();
        while conv.next_block(960, 1.0, &mut pieces).unwrap() > 0 {}
        assert_eq!(pieces, whole);
        assert_eq!(conv.remaining_frames(), 0);
    }

    #[test]
    fn streamed_file_converts_exactly_like_the_decoded_clip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.wav");
        write_wav(&path, spec(2, 44100, 24, false), 30000, ramp);
        let to = PcmFormat {
            rate: 16000,
            channels: 1,
        };
        let whole = convert(&read_clip(&path, 10.0).unwrap(), to, 0.7).unwrap();
        let stream = open_clip(&path, 10.0).unwrap();
        assert_eq!(stream.total_frames(), 30000);
        let mut conv = Converter::from_source(Box::new(stream), to).unwrap();
        let mut streamed = Vec::new();
        while conv.next_block(320, 0.7, &mut streamed).unwrap() > 0 {}
        assert_eq!(streamed, whole);
    }

    #[test]
    fn empty_and_broken_clips_do_not_panic() {
        let empty = Clip {
            rate: 16000,
            channels: 1,
            samples: vec![],
        };
        assert!(convert(
            &empty,
            PcmFormat {
                rate: 48000,
                channels: 2
            },
            1.0
        )
        .unwrap()
        .is_empty());
        let broken = Clip {
            rate: 0,
            channels: 1,
            samples: vec![0.1],
        };
        assert!(convert(
            &broken,
            PcmFormat {
                rate: 48000,
                channels: 2
            },
            1.0
        )
        .is_err());
        assert_eq!(to_i16(f32::NAN, 1.0), 0);
        assert_eq!(to_i16(10.0, 1.0), i16::MAX);
        assert_eq!(to_i16(-10.0, 1.0), i16::MIN);
    }

    /// A WAVE_FORMAT_EXTENSIBLE file, mono 16 kHz, `valid` bits in `container`-byte
    /// samples, written by hand (hound writes only what it reads back right).
    fn extensible_wav(valid: u16, container: u16, samples: &[i32]) -> Vec<u8> {
        let data: Vec<u8> = samples
            .iter()
            .flat_map(|&v| {
                // Left-justified: the valid bits on top, zeros below.
                let word = (v << (32 - valid)) as u32;
                word.to_le_bytes()[4 - usize::from(container)..].to_vec()
            })
            .collect();
        let mut b = Vec::new();
        b.extend_from_slice(b"RIFF");
        b.extend_from_slice(&(4 + 8 + 40 + 8 + data.len() as u32).to_le_bytes());
        b.extend_from_slice(b"WAVEfmt ");
        b.extend_from_slice(&40u32.to_le_bytes());
        b.extend_from_slice(&0xFFFEu16.to_le_bytes()); // WAVE_FORMAT_EXTENSIBLE
        b.extend_from_slice(&1u16.to_le_bytes()); // channels
        b.extend_from_slice(&16_000u32.to_le_bytes());
        b.extend_from_slice(&(16_000 * u32::from(container)).to_le_bytes());
        b.extend_from_slice(&container.to_le_bytes()); // block_align
        b.extend_from_slice(&(container * 8).to_le_bytes()); // container bits
        b.extend_from_slice(&22u16.to_le_bytes());
        b.extend_from_slice(&valid.to_le_bytes());
        b.extend_from_slice(&4u32.to_le_bytes()); // channel mask: front centre
                                                  // KSDATAFORMAT_SUBTYPE_PCM
        b.extend_from_slice(&[
            0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38,
            0x9B, 0x71,
        ]);
        b.extend_from_slice(b"data");
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(&data);
        b
    }

    #[test]
    fn left_justified_24_bit_in_32_bit_containers_reads_at_the_right_level() {
        let dir = tempfile::tempdir().unwrap();
        let full = (1 << 23) - 1;
        let values = [0, full / 2, -(full / 2), full, -(1 << 23), 1];
        let p = dir.path().join("ext24.wav");
        std::fs::write(&p, extensible_wav(24, 4, &values)).unwrap();
        let clip = read_clip(&p, 10.0).unwrap();
        let expected: Vec<f32> = values
            .iter()
            .map(|&v| v as f32 / (1 << 23) as f32)
            .collect();
        assert_eq!(clip.samples.len(), values.len());
        for (got, want) in clip.samples.iter().zip(&expected) {
            assert!(
                (got - want).abs() < 1e-6,
                "{:?} vs {expected:?}",
                clip.samples
            );
        }
        // Padding bits below the valid ones are ignored, not added as noise.
        let mut bytes = extensible_wav(24, 4, &[full / 2]);
        let last = bytes.len() - 4;
        bytes[last] = 0xFF;
        std::fs::write(&p, &bytes).unwrap();
        let clip = read_clip(&p, 10.0).unwrap();
        assert!((clip.samples[0] - 0.5).abs() < 1e-6, "{:?}", clip.samples);
    }

    #[test]
    fn a_cut_file_with_padded_samples_is_refused_before_it_plays() {
        let dir = tempfile::tempdir().unwrap();
        // 1 s of 24-in-32; cut to 80 % of its data: more than 3/4, so a check counting
        // 3 bytes per sample would let it start and fail mid-way.
        let bytes = extensible_wav(24, 4, &vec![1000; 16_000]);
        let header = bytes.len() - 64_000;
        let cut = &bytes[..header + 64_000 * 8 / 10];
        let p = dir.path().join("cut24.wav");
        std::fs::write(&p, cut).unwrap();
        let err = open_clip(&p, 10.0).expect_err("refused at open");
        assert!(matches!(err, WavError::Truncated { .. }), "{err}");
        assert!(err.to_string().contains("cut24.wav"), "{err}");
        // Whole, it opens and reads to the end.
        std::fs::write(&p, &bytes).unwrap();
        assert_eq!(read_clip(&p, 10.0).unwrap().samples.len(), 16_000);
    }
}
