//! WAV clips: reading any common PCM WAV safely, and converting it to what a device plays.
//!
//! The toy plays files a person copied onto the SD card, so reading is defensive: every
//! failure is an error naming the file, never a panic, and nothing is allocated from a length
//! the header merely *claims* (reads are capped by `max_seconds`).
//!
//! Conversion ([`Converter`]) is streaming — it produces the output a slice at a time — so
//! the player can hand the first 20 ms to the device without converting the whole clip
//! first. Resampling uses rubato: its FFT resampler for the usual rate pairs (44.1/48/16 kHz
//! share large common divisors), its sinc resampler for odd ones.
use std::fmt;
use std::path::{Path, PathBuf};

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
    let meta = std::fs::metadata(path).map_err(|source| WavError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    if meta.len() == 0 {
        return Err(WavError::Empty {
            path: path.to_path_buf(),
        });
    }
    // hound is well behaved on the inputs we tested, but a malformed file must never take
    // the player thread down; turn any panic inside the decoder into an error.
    let owned = path.to_path_buf();
    let max_seconds = if max_seconds.is_finite() {
        max_seconds.max(0.0)
    } else {
        0.0
    };
    std::panic::catch_unwind(move || decode(&owned, max_seconds)).unwrap_or_else(|_| {
        Err(WavError::NotWav {
            path: path.to_path_buf(),
            detail: "the decoder failed on this file".into(),
        })
    })
}

fn decode(path: &Path, max_seconds: f32) -> Result<Clip, WavError> {
    let not_wav = |detail: String| WavError::NotWav {
        path: path.to_path_buf(),
        detail,
    };
    let unsupported = |detail: String| WavError::Unsupported {
        path: path.to_path_buf(),
        detail,
    };
    let mut reader = match hound::WavReader::open(path) {
        Ok(r) => r,
        Err(hound::Error::IoError(source))
            if source.kind() != std::io::ErrorKind::UnexpectedEof =>
        {
            return Err(WavError::Open {
                path: path.to_path_buf(),
                source,
            })
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
    let ch = usize::from(spec.channels);
    let declared = reader.len() as usize;
    let cap_frames = (f64::from(max_seconds) * f64::from(spec.sample_rate)).floor() as usize;
    let cap = cap_frames.saturating_mul(ch);
    let wanted = declared.min(cap);
    if declared > cap {
        log::info!(
            "'{}' is longer than {max_seconds} s; playing only the first {max_seconds} s",
            path.display()
        );
    }
    let mut samples: Vec<f32> = Vec::with_capacity(wanted);
    let truncated = |got: usize| WavError::Truncated {
        path: path.to_path_buf(),
        detail: format!("the header promises {declared} samples but only {got} could be read"),
    };
    match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Float, 32) => {
            for s in reader.samples::<f32>().take(wanted) {
                let v = s.map_err(|_| truncated(samples.len()))?;
                samples.push(if v.is_finite() {
                    v.clamp(-1.0, 1.0)
                } else {
                    0.0
                });
            }
        }
        (hound::SampleFormat::Int, bits @ (8 | 16 | 24 | 32)) => {
            let scale = 1.0 / (1u64 << (bits - 1)) as f64;
            for s in reader.samples::<i32>().take(wanted) {
                let v = s.map_err(|_| truncated(samples.len()))?;
                samples.push((f64::from(v) * scale) as f32);
            }
        }
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
    if samples.len() < wanted {
        return Err(truncated(samples.len()));
    }
    samples.truncate(samples.len() - samples.len() % ch);
    let mut clip = Clip {
        rate: spec.sample_rate,
        channels: spec.channels,
        samples,
    };
    if clip.channels > 2 {
        clip = Clip {
            rate: clip.rate,
            channels: 1,
            samples: to_mono_f32(&clip.samples, clip.channels),
        };
    }
    Ok(clip)
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

/// Streaming clip → device-format conversion; see the module docs.
pub struct Converter {
    /// Source audio, planar, already reduced to `work_channels`.
    planar: Vec<Vec<f32>>,
    /// Next source frame to feed the resampler (or to emit, without resampling).
    pos: usize,
    resampler: Option<Box<dyn VecResampler<f32>>>,
    /// Resampled output not yet emitted, planar, from `pending_pos`.
    pending: Vec<Vec<f32>>,
    pending_pos: usize,
    /// Resampler delay (output frames) still to discard from the front.
    skip: usize,
    /// Output frames still to emit.
    remaining: usize,
    total: usize,
    to: PcmFormat,
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
    pub fn new(clip: &Clip, to: PcmFormat) -> Result<Self, WavError> {
        if clip.channels == 0 || clip.rate == 0 {
            return Err(convert_error(format!(
                "the clip claims {} Hz and {} channels",
                clip.rate, clip.channels
            )));
        }
        if to.channels == 0 || to.rate == 0 {
            return Err(convert_error(format!("the device format {to} is empty")));
        }
        let src_ch = usize::from(clip.channels);
        let dst_ch = usize::from(to.channels);
        let frames = clip.frames();
        // Reduce channels before resampling (less work); expand after.
        let planar: Vec<Vec<f32>> = if dst_ch == 1 && src_ch > 1 {
            vec![to_mono_f32(&clip.samples[..frames * src_ch], clip.channels)]
        } else {
            let work = src_ch.min(dst_ch.max(1));
            (0..work)
                .map(|c| {
                    clip.samples
                        .chunks_exact(src_ch)
                        .map(|frame| frame[c])
                        .collect()
                })
                .collect()
        };
        let work_ch = planar.len();
        let total =
            (frames as u64 * u64::from(to.rate) + u64::from(clip.rate) / 2) / u64::from(clip.rate);
        let total = total as usize;
        let (resampler, skip) = if clip.rate == to.rate {
            (None, 0)
        } else {
            let r = make_resampler(clip.rate, to.rate, work_ch)?;
            let delay = r.output_delay();
            (Some(r), delay)
        };
        let (pending, pending_pos) = if resampler.is_none() {
            // No resampling: the source itself is the pending output.
            (planar.clone(), 0)
        } else {
            (vec![Vec::new(); work_ch], 0)
        };
        Ok(Self {
            planar: if resampler.is_none() {
                Vec::new()
            } else {
                planar
            },
            pos: 0,
            resampler,
            pending,
            pending_pos,
            skip,
            remaining: total,
            total,
            to,
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
            if !self.refill()? {
                break;
            }
        }
        let n = want.min(self.pending_len());
        let dst_ch = usize::from(self.to.channels);
        let work_ch = self.pending.len();
        out.reserve(n * dst_ch);
        for i in self.pending_pos..self.pending_pos + n {
            for c in 0..dst_ch {
                let v = if work_ch == 1 {
                    self.pending[0][i]
                } else {
                    self.pending[c % work_ch][i]
                };
                out.push(to_i16(v, gain));
            }
        }
        self.pending_pos += n;
        self.remaining -= n;
        if n < want {
            // The resampler produced less than promised (rounding): pad with silence so the
            // output length is exactly `total`, which callers and tests rely on.
            let pad = want - n;
            out.extend(std::iter::repeat_n(0i16, pad * dst_ch));
            self.remaining -= pad;
            return Ok(want);
        }
        Ok(n)
    }

    fn pending_len(&self) -> usize {
        self.pending.first().map_or(0, |p| p.len()) - self.pending_pos
    }

    /// Runs the resampler once; false when there is nothing more to get.
    fn refill(&mut self) -> Result<bool, WavError> {
        let Some(r) = self.resampler.as_mut() else {
            return Ok(false);
        };
        let need = r.input_frames_next();
        let len = self.planar.first().map_or(0, |p| p.len());
        let end = (self.pos + need).min(len);
        let input: Vec<Vec<f32>> = self
            .planar
            .iter()
            .map(|p| p[self.pos..end].to_vec())
            .collect();
        let produced = if end - self.pos == need {
            r.process(&input, None)
        } else if end > self.pos {
            // The tail, zero-padded to a whole chunk.
            r.process_partial(Some(&input), None)
        } else {
            // Past the end: zeros that flush the filter's delay.
            r.process_partial(None, None)
        }
        .map_err(|e| convert_error(format!("resampler: {e}")))?;
        self.pos = end;
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
