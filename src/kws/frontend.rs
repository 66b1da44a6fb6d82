//! From the capture stream to the recognizer's 1 s windows.
//!
//! The microphone delivers interleaved S16 at whatever the card does (48 kHz stereo on the
//! Codec Zero; any rate/channel count when a WAV file is streamed instead), while the model
//! wants mono at the feature rate (16 kHz). [`Frontend`] downmixes by averaging the
//! channels, resamples with `rubato`'s FFT resampler (planned once per input format, fed
//! fixed-size blocks from preallocated buffers, so the steady state allocates nothing),
//! keeps the most recent audio in a ring, and every `hop` hands out the last `clip_samples`
//! as a [`Window`].
//!
//! Time is counted in samples, never read from a clock: a window's `end` is the number of
//! 16 kHz samples produced so far divided by the rate. The resampler's own delay is
//! removed (its first `output_delay` samples are dropped), so that `end` is also the
//! stream time of the last *input* sample in the window.
//!
//! Usage: after each [`Frontend::push`], call [`Frontend::next_window`] until it returns
//! `None`. At the end of a finite stream (a WAV file), call [`Frontend::flush`] and drain
//! windows again, so the last fraction of a second is not lost.
use std::time::Duration;

use rubato::{FftFixedInOut, Resampler};

use crate::audio::{AudioChunk, PcmFormat};

use super::meta::FeatureSpec;

/// Level reported for digital silence instead of minus infinity.
pub const MIN_DBFS: f32 = -120.0;

/// Extra ring space beyond one window, in seconds of output: how far `push` may run ahead
/// of `next_window` before windows are dropped.
const SLACK_SECONDS: usize = 2;

/// Target of one resampler block, in seconds of input (20 ms): small enough for latency,
/// large enough for an efficient FFT.
const BLOCK_DIVISOR: u32 = 50;

/// Samples gathered before they are copied to the ring when no resampling is needed.
const PASSTHROUGH_BLOCK: usize = 1024;

/// Geometry of the windows.
#[derive(Clone, Debug, PartialEq)]
pub struct FrontendConfig {
    /// Output (feature) sample rate, Hz.
    pub sample_rate: u32,
    /// Window length in output samples.
    pub clip_samples: usize,
    /// Distance between consecutive window ends (default 250 ms).
    pub hop: Duration,
}

impl Default for FrontendConfig {
    fn default() -> Self {
        FrontendConfig::from_features(&FeatureSpec::default())
    }
}

impl FrontendConfig {
    /// Windows as the model expects them, with the default 250 ms hop.
    pub fn from_features(spec: &FeatureSpec) -> Self {
        FrontendConfig {
            sample_rate: spec.sample_rate,
            clip_samples: spec.clip_samples,
            hop: Duration::from_millis(250),
        }
    }

    /// The hop in output samples (rounded to the nearest sample).
    pub fn hop_samples(&self) -> usize {
        (self.hop.as_secs_f64() * f64::from(self.sample_rate)).round() as usize
    }
}

/// Bad configuration or input that does not make sense.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FrontendError {
    #[error("keyword frontend: {field} {problem}")]
    Config {
        field: &'static str,
        problem: String,
    },
    #[error("keyword frontend: input format {format} is unusable: {problem}")]
    Format { format: PcmFormat, problem: String },
    #[error("keyword frontend: {len} samples is not a whole number of {channels}-channel frames; the capture must deliver whole frames")]
    PartialFrame { len: usize, channels: u16 },
    #[error("keyword frontend: resampler {format} -> {rate} Hz: {detail}")]
    Resampler {
        format: PcmFormat,
        rate: u32,
        detail: String,
    },
}

/// One analysis window: the last `clip_samples` of mono audio at the feature rate.
#[derive(Debug, Clone, Copy)]
pub struct Window<'a> {
    /// The samples, oldest first, in [-1, 1).
    pub samples: &'a [f32],
    /// Stream time of the end of the window (from sample counts).
    pub end: Duration,
    /// The same end as a sample index of the output timeline (what
    /// [`super::sliding::SlidingFeatures`] keys its columns by).
    pub end_sample: u64,
    /// RMS level relative to full scale, in dB (a full-scale sine is about -3 dBFS);
    /// [`MIN_DBFS`] for digital silence.
    pub rms_dbfs: f32,
}

impl Window<'_> {
    /// True if the window is below `threshold_dbfs`: a cheap gate that skips the model
    /// when nobody can be talking.
    pub fn is_quiet(&self, threshold_dbfs: f32) -> bool {
        self.rms_dbfs < threshold_dbfs
    }
}

/// RMS of `samples` in dBFS, floored at [`MIN_DBFS`].
pub fn rms_dbfs(samples: &[f32]) -> f32 {
    if samples.is_empty() {
        return MIN_DBFS;
    }
    // Eight independent f32 partial sums: vectorises (a single f64 sum is a serial chain
    // 16 000 additions long), and each lane adds only 1/8 of the window, so the rounding
    // error stays far below what a level in dB can show.
    let mut lanes = [0.0f32; 8];
    let chunks = samples.chunks_exact(8);
    let rest: f64 = chunks.remainder().iter().map(|&s| f64::from(s * s)).sum();
    for c in chunks {
        for (l, &s) in lanes.iter_mut().zip(c) {
            *l += s * s;
        }
    }
    let mean_sq = (lanes.iter().map(|&l| f64::from(l)).sum::<f64>() + rest) / samples.len() as f64;
    if mean_sq <= 0.0 {
        return MIN_DBFS;
    }
    ((10.0 * mean_sq.log10()) as f32).max(MIN_DBFS)
}

/// Output side: the most recent audio at the feature rate, addressed by absolute sample
/// index.
#[derive(Debug)]
struct Ring {
    buf: Vec<f32>,
    /// Samples written since the frontend was created (the output timeline).
    produced: u64,
}

impl Ring {
    /// The slot of absolute sample `at`.
    fn slot(&self, at: u64) -> usize {
        (at % self.buf.len() as u64) as usize
    }

    fn write(&mut self, samples: &[f32]) {
        let cap = self.buf.len();
        // Only the last `cap` samples can be held.
        let skip = samples.len().saturating_sub(cap);
        self.produced += skip as u64;
        let mut rest = &samples[skip..];
        while !rest.is_empty() {
            let at = self.slot(self.produced);
            let n = rest.len().min(cap - at);
            self.buf[at..at + n].copy_from_slice(&rest[..n]);
            self.produced += n as u64;
            rest = &rest[n..];
        }
    }

    fn write_zeros(&mut self, n: u64) {
        let cap = self.buf.len() as u64;
        self.produced += n.saturating_sub(cap);
        let mut left = n.min(cap) as usize;
        while left > 0 {
            let at = self.slot(self.produced);
            let k = left.min(self.buf.len() - at);
            self.buf[at..at + k].fill(0.0);
            self.produced += k as u64;
            left -= k;
        }
    }

    /// Copies samples `[end - out.len(), end)` into `out`; the caller ensures they are held.
    fn copy_ending_at(&self, end: u64, out: &mut [f32]) {
        let start = self.slot(end - out.len() as u64);
        let first = out.len().min(self.buf.len() - start);
        let (head, tail) = out.split_at_mut(first);
        head.copy_from_slice(&self.buf[start..start + first]);
        tail.copy_from_slice(&self.buf[..tail.len()]);
    }
}

/// Input side for one input format: downmix and (if needed) resample.
struct Stage {
    format: PcmFormat,
    /// Output rate, Hz.
    rate: u32,
    /// `None` when the input is already at the output rate.
    resampler: Option<FftFixedInOut<f32>>,
    block_in: Vec<Vec<f32>>,
    fill: usize,
    block_out: Vec<Vec<f32>>,
    /// Output samples still to drop to cancel the resampler's delay.
    skip: usize,
    /// Input frames accepted in this format.
    frames_in: u64,
    /// Output samples written to the ring from this format.
    frames_out: u64,
}

impl std::fmt::Debug for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stage")
            .field("format", &self.format)
            .field("resampling", &self.resampler.is_some())
            .field("block_in", &self.block_in[0].len())
            .finish_non_exhaustive()
    }
}

impl Stage {
    fn new(format: PcmFormat, rate: u32) -> Result<Stage, FrontendError> {
        if format.rate == 0 || format.channels == 0 {
            return Err(FrontendError::Format {
                format,
                problem: "rate and channel count must be > 0".into(),
            });
        }
        if format.rate == rate {
            return Ok(Stage {
                format,
                rate,
                resampler: None,
                block_in: vec![vec![0.0; PASSTHROUGH_BLOCK]],
                fill: 0,
                block_out: vec![Vec::new()],
                skip: 0,
                frames_in: 0,
                frames_out: 0,
            });
        }
        let block = (format.rate / BLOCK_DIVISOR).max(1) as usize;
        let resampler = FftFixedInOut::<f32>::new(format.rate as usize, rate as usize, block, 1)
            .map_err(|e| FrontendError::Resampler {
                format,
                rate,
                detail: e.to_string(),
            })?;
        let block_in = vec![vec![0.0; resampler.input_frames_max()]];
        let block_out = vec![vec![0.0; resampler.output_frames_max()]];
        let skip = resampler.output_delay();
        Ok(Stage {
            format,
            rate,
            resampler: Some(resampler),
            block_in,
            fill: 0,
            block_out,
            skip,
            frames_in: 0,
            frames_out: 0,
        })
    }

    /// Accepts mono samples: fills the resampler's input block and runs it each time it is
    /// full (or, at the output rate already, copies them straight to the ring).
    fn feed(
        &mut self,
        mut mono: impl Iterator<Item = f32>,
        ring: &mut Ring,
    ) -> Result<(), FrontendError> {
        loop {
            let block = &mut self.block_in[0];
            let room = block.len() - self.fill;
            let mut n = 0;
            // `zip` asks the block first, so no sample is taken when the block is full.
            for (dst, v) in block[self.fill..].iter_mut().zip(mono.by_ref()) {
                *dst = v;
                n += 1;
            }
            self.fill += n;
            self.frames_in += n as u64;
            if self.fill == self.block_in[0].len() {
                self.emit_block(ring)?;
            }
            if n < room {
                break;
            }
        }
        if self.resampler.is_none() && self.fill > 0 {
            self.emit_block(ring)?; // no delay at the output rate: hand out what we have
        }
        Ok(())
    }

    /// Sends the filled part of the input block on: through the resampler, or as is.
    fn emit_block(&mut self, ring: &mut Ring) -> Result<(), FrontendError> {
        if self.resampler.is_some() {
            return self.run_block(ring, u64::MAX);
        }
        ring.write(&self.block_in[0][..self.fill]);
        self.frames_out += self.fill as u64;
        self.fill = 0;
        Ok(())
    }

    /// Resamples the (full or zero-padded) input block and writes at most `limit` output
    /// samples of this format's timeline to the ring.
    fn run_block(&mut self, ring: &mut Ring, limit: u64) -> Result<(), FrontendError> {
        let Some(resampler) = self.resampler.as_mut() else {
            return Ok(());
        };
        self.block_in[0][self.fill..].fill(0.0);
        self.fill = 0;
        let (_, produced) = resampler
            .process_into_buffer(&self.block_in, &mut self.block_out, None)
            .map_err(|e| FrontendError::Resampler {
                format: self.format,
                rate: self.rate,
                detail: e.to_string(),
            })?;
        let out = &self.block_out[0][..produced];
        let skipped = self.skip.min(out.len());
        self.skip -= skipped;
        let out = &out[skipped..];
        let room = limit.saturating_sub(self.frames_out).min(out.len() as u64) as usize;
        ring.write(&out[..room]);
        self.frames_out += room as u64;
        Ok(())
    }

    /// Output samples this format's input amounts to at `rate`.
    fn expected_out(&self, rate: u32) -> u64 {
        ((u128::from(self.frames_in) * u128::from(rate) + u128::from(self.format.rate) / 2)
            / u128::from(self.format.rate)) as u64
    }

    /// Pushes the buffered input and the resampler's delayed tail out, so that exactly
    /// `expected_out` samples have been written for this format.
    fn drain(&mut self, rate: u32, ring: &mut Ring) -> Result<(), FrontendError> {
        let want = self.expected_out(rate);
        // Each block yields at least one output sample once the delay is consumed, so
        // this terminates; the bound guards against a resampler that yields nothing.
        let mut guard = 0;
        while self.frames_out < want && guard < 1_000 {
            self.run_block(ring, want)?;
            guard += 1;
        }
        if let Some(r) = self.resampler.as_mut() {
            r.reset();
            self.skip = r.output_delay();
        }
        self.frames_in = 0;
        self.frames_out = 0;
        Ok(())
    }
}

/// Capture-stream-to-windows converter. See the module doc for the contract.
#[derive(Debug)]
pub struct Frontend {
    cfg: FrontendConfig,
    hop: u64,
    clip: u64,
    stage: Option<Stage>,
    ring: Ring,
    /// End (absolute output sample) of the next window to hand out.
    next_end: u64,
    /// True once a window has been handed out since creation/reset.
    emitted_any: bool,
    window: Vec<f32>,
    dropped: u64,
    /// Capture frame index expected at the start of the next [`AudioChunk`].
    next_capture_frame: Option<u64>,
    gap_frames: u64,
}

impl Frontend {
    /// Checks the configuration and allocates the ring and window buffers. The resampler
    /// is planned on the first [`Frontend::push`], when the input format is known.
    pub fn new(cfg: FrontendConfig) -> Result<Frontend, FrontendError> {
        if cfg.sample_rate == 0 {
            return Err(FrontendError::Config {
                field: "sample_rate",
                problem: "must be > 0 Hz, e.g. 16000".into(),
            });
        }
        if cfg.clip_samples == 0 {
            return Err(FrontendError::Config {
                field: "clip_samples",
                problem: "must be > 0, e.g. 16000".into(),
            });
        }
        let hop = cfg.hop_samples();
        if hop == 0 || hop > cfg.clip_samples {
            return Err(FrontendError::Config {
                field: "hop",
                problem: format!(
                    "is {:?}; it must be at least one sample and at most one window ({} samples), e.g. 250 ms",
                    cfg.hop, cfg.clip_samples
                ),
            });
        }
        let cap = cfg.clip_samples + SLACK_SECONDS * cfg.sample_rate as usize;
        Ok(Frontend {
            hop: hop as u64,
            clip: cfg.clip_samples as u64,
            stage: None,
            ring: Ring {
                buf: vec![0.0; cap],
                produced: 0,
            },
            next_end: cfg.clip_samples as u64,
            emitted_any: false,
            window: vec![0.0; cfg.clip_samples],
            dropped: 0,
            next_capture_frame: None,
            gap_frames: 0,
            cfg,
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &FrontendConfig {
        &self.cfg
    }

    /// Adds interleaved S16 `samples` in `format`. A format different from the previous
    /// push flushes the old resampler's tail and plans a new one (this allocates; a steady
    /// stream does not).
    pub fn push(&mut self, samples: &[i16], format: PcmFormat) -> Result<(), FrontendError> {
        if format.channels == 0 || format.rate == 0 {
            return Err(FrontendError::Format {
                format,
                problem: "rate and channel count must be > 0".into(),
            });
        }
        let channels = usize::from(format.channels);
        if samples.len() % channels != 0 {
            return Err(FrontendError::PartialFrame {
                len: samples.len(),
                channels: format.channels,
            });
        }
        if self.stage.as_ref().map(|s| s.format) != Some(format) {
            if let Some(mut old) = self.stage.take() {
                old.drain(self.cfg.sample_rate, &mut self.ring)?;
            }
            self.stage = Some(Stage::new(format, self.cfg.sample_rate)?);
        }
        let Some(stage) = self.stage.as_mut() else {
            return Ok(());
        };
        let scale = 1.0 / (32768.0 * channels as f32);
        if channels == 2 {
            // The Codec Zero's format, spelled out so the downmix is a tight loop.
            let mono = samples
                .chunks_exact(2)
                .map(|f| (i32::from(f[0]) + i32::from(f[1])) as f32 * scale);
            stage.feed(mono, &mut self.ring)
        } else {
            let mono = samples
                .chunks_exact(channels)
                .map(|f| f.iter().map(|&s| i32::from(s)).sum::<i32>() as f32 * scale);
            stage.feed(mono, &mut self.ring)
        }
    }

    /// Adds a capture chunk. If frames were lost before it (its `first_frame` is past the
    /// end of the previous chunk: a slow subscriber lost some), the gap is filled with
    /// silence so that window times stay equal to capture stream times.
    pub fn push_chunk(&mut self, chunk: &AudioChunk) -> Result<(), FrontendError> {
        if let Some(expected) = self.next_capture_frame {
            if chunk.first_frame > expected
                && self.stage.as_ref().map(|s| s.format) == Some(chunk.format)
            {
                let gap = chunk.first_frame - expected;
                if let Some(stage) = self.stage.as_mut() {
                    stage.feed(std::iter::repeat_n(0.0, gap as usize), &mut self.ring)?;
                }
                self.gap_frames += gap;
            }
        }
        self.push(&chunk.samples, chunk.format)?;
        self.next_capture_frame = Some(chunk.first_frame + chunk.frames() as u64);
        Ok(())
    }

    /// Capture frames lost upstream and replaced by silence (see [`Frontend::push_chunk`]).
    pub fn gap_frames_filled(&self) -> u64 {
        self.gap_frames
    }

    /// Ends a finite stream: pushes out what the resampler still holds (exactly as many
    /// samples as the input amounts to), then pads with silence up to the next window end
    /// if some audio is not yet in any window. Pushing again afterwards starts a new
    /// segment on the same timeline.
    pub fn flush(&mut self) -> Result<(), FrontendError> {
        if let Some(stage) = self.stage.as_mut() {
            stage.drain(self.cfg.sample_rate, &mut self.ring)?;
        }
        let covered = if self.emitted_any {
            self.next_end - self.hop
        } else {
            0
        };
        if self.ring.produced > covered && self.ring.produced < self.next_end {
            self.ring.write_zeros(self.next_end - self.ring.produced);
        }
        Ok(())
    }

    /// Discards buffered audio (e.g. the toy's own voice while it played): the next
    /// window is a full window of audio pushed after this call. The timeline continues.
    pub fn reset(&mut self) {
        if let Some(stage) = self.stage.as_mut() {
            stage.fill = 0;
            if let Some(r) = stage.resampler.as_mut() {
                r.reset();
                stage.skip = r.output_delay();
            }
            // Keep the timeline aligned with the input: what was in the block is dropped.
            stage.frames_in = 0;
            stage.frames_out = 0;
        }
        self.ring.buf.fill(0.0);
        self.next_end = self.ring.produced + self.clip;
        self.emitted_any = false;
        // Audio skipped on purpose (while muted) is not a gap to fill with silence.
        self.next_capture_frame = None;
    }

    /// The next window, if enough audio has arrived. Windows end every `hop`; if the
    /// caller fell more than the ring's slack (2 s) behind, the oldest are skipped and
    /// counted in [`Frontend::dropped_windows`].
    pub fn next_window(&mut self) -> Option<Window<'_>> {
        let produced = self.ring.produced;
        if produced < self.next_end {
            return None;
        }
        let held = self.ring.buf.len() as u64;
        if produced - self.next_end > held - self.clip {
            let behind = produced - self.next_end - (held - self.clip);
            let skip = behind.div_ceil(self.hop);
            self.next_end += skip * self.hop;
            self.dropped += skip;
        }
        let end = self.next_end;
        self.ring.copy_ending_at(end, &mut self.window);
        self.next_end += self.hop;
        self.emitted_any = true;
        let nanos = u128::from(end) * 1_000_000_000 / u128::from(self.cfg.sample_rate);
        Some(Window {
            samples: &self.window,
            end: Duration::from_nanos(nanos as u64),
            end_sample: end,
            rms_dbfs: rms_dbfs(&self.window),
        })
    }

    /// Output samples produced so far (the 16 kHz timeline).
    pub fn samples_produced(&self) -> u64 {
        self.ring.produced
    }

    /// Windows skipped because `next_window` was not called often enough.
    pub fn dropped_windows(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    const STEREO_48K: PcmFormat = PcmFormat {
        rate: 48_000,
        channels: 2,
    };

    /// Interleaved S16 of `f(t)` on the left and `g(t)` on the right.
    fn stereo(n: usize, rate: u32, f: impl Fn(f64) -> f64, g: impl Fn(f64) -> f64) -> Vec<i16> {
        (0..n)
            .flat_map(|i| {
                let t = i as f64 / f64::from(rate);
                [
                    (f(t) * 32767.0).round() as i16,
                    (g(t) * 32767.0).round() as i16,
                ]
            })
            .collect()
    }

    /// Pushes `samples` in uneven chunks, as a capture thread would.
    fn push_chunked(fe: &mut Frontend, samples: &[i16], format: PcmFormat) {
        let ch = usize::from(format.channels);
        let mut rest = samples;
        let sizes = [441, 1000, 17, 4800, 960];
        let mut k = 0;
        while !rest.is_empty() {
            let n = (sizes[k % sizes.len()] * ch).min(rest.len());
            fe.push(&rest[..n], format).unwrap();
            rest = &rest[n..];
            k += 1;
        }
    }

    #[test]
    fn sine_48k_stereo_becomes_the_same_sine_at_16k_on_time() {
        // A 1 kHz tone gated on at 0.3 s: the gate edge makes a wrong latency visible
        // (the sine alone repeats every 16 samples and would hide whole-period shifts).
        // Left and right differ in level, so the downmix (average) is checked too.
        let onset = 0.3;
        let tone = |a: f64| {
            move |t: f64| {
                if t >= onset {
                    a * (2.0 * PI * 1000.0 * t).sin()
                } else {
                    0.0
                }
            }
        };
        let input = stereo(72_000, 48_000, tone(0.8), tone(0.4)); // 1.5 s
        let mut fe = Frontend::new(FrontendConfig::default()).unwrap();
        push_chunked(&mut fe, &input, STEREO_48K);
        fe.flush().unwrap();
        assert_eq!(
            fe.samples_produced(),
            24_000,
            "1.5 s at 16 kHz, no more, no less"
        );
        let mut ends = Vec::new();
        let mut worst: f64 = 0.0;
        while let Some(w) = fe.next_window() {
            assert_eq!(w.samples.len(), 16_000);
            ends.push(w.end);
            let start = w.end.as_secs_f64() - 1.0;
            for (n, &s) in w.samples.iter().enumerate() {
                let t = start + n as f64 / 16_000.0;
                // Skip 3 ms around the gate edge (ringing is expected there) and the
                // last 10 ms (the flush pads with zeros after 1.5 s).
                if (t - onset).abs() < 0.003 || t > 1.49 {
                    continue;
                }
                worst = worst.max((f64::from(s) - tone(0.6)(t)).abs());
            }
        }
        let ms = |m| Duration::from_millis(m);
        assert_eq!(ends, [ms(1000), ms(1250), ms(1500)]);
        assert!(
            worst < 0.01,
            "resampled sine differs from the ideal by {worst}"
        );
    }

    #[test]
    fn sixteen_khz_mono_passes_through_exactly() {
        let fmt = PcmFormat {
            rate: 16_000,
            channels: 1,
        };
        let input: Vec<i16> = (0..20_000)
            .map(|i| ((i * 37) % 2000 - 1000) as i16)
            .collect();
        let mut fe = Frontend::new(FrontendConfig::default()).unwrap();
        push_chunked(&mut fe, &input, fmt);
        let w = fe.next_window().expect("1 s is there");
        assert_eq!(w.end, Duration::from_secs(1));
        for (a, &b) in w.samples.iter().zip(&input[..16_000]) {
            assert_eq!(*a, f32::from(b) / 32768.0);
        }
        assert!(fe.next_window().is_some(), "1.25 s window");
        assert!(fe.next_window().is_none(), "1.5 s not reached yet");
    }

    #[test]
    fn short_file_gives_one_padded_window_after_flush() {
        let fmt = PcmFormat {
            rate: 44_100,
            channels: 1,
        };
        let input: Vec<i16> = (0..13_230)
            .map(|i| ((i % 100) * 100 - 5000) as i16)
            .collect(); // 0.3 s
        let mut fe = Frontend::new(FrontendConfig::default()).unwrap();
        fe.push(&input, fmt).unwrap();
        assert!(fe.next_window().is_none());
        fe.flush().unwrap();
        let w = fe.next_window().expect("flush pads to one window");
        assert_eq!(w.end, Duration::from_secs(1));
        assert!(w.samples[..4700].iter().any(|&s| s.abs() > 0.05));
        assert!(w.samples[4900..].iter().all(|&s| s == 0.0));
        assert!(fe.next_window().is_none());
    }

    #[test]
    fn level_and_quiet_gate() {
        let fmt = PcmFormat {
            rate: 16_000,
            channels: 1,
        };
        let mut fe = Frontend::new(FrontendConfig::default()).unwrap();
        fe.push(&vec![0i16; 16_000], fmt).unwrap();
        let w = fe.next_window().unwrap();
        assert_eq!(w.rms_dbfs, MIN_DBFS);
        assert!(w.is_quiet(-50.0));
        let sine: Vec<i16> = (0..4000)
            .map(|i| ((2.0 * PI * 500.0 * i as f64 / 16_000.0).sin() * 32767.0) as i16)
            .collect();
        fe.push(&sine, fmt).unwrap();
        let w = fe.next_window().unwrap();
        // A quarter of the window is a full-scale sine (-3.01 dBFS): -3.01 - 6.02 dB.
        assert!((w.rms_dbfs - (-9.03)).abs() < 0.05, "{}", w.rms_dbfs);
        assert!(!w.is_quiet(-50.0));
    }

    #[test]
    fn falling_behind_drops_windows_but_keeps_the_grid() {
        let fmt = PcmFormat {
            rate: 16_000,
            channels: 1,
        };
        let mut fe = Frontend::new(FrontendConfig::default()).unwrap();
        fe.push(&vec![100i16; 16_000 * 5], fmt).unwrap();
        let first = fe.next_window().unwrap().end;
        assert!(fe.dropped_windows() > 0);
        assert_eq!(first.as_millis() % 250, 0);
        assert!(
            first >= Duration::from_secs(3),
            "only the last 3 s are held: {first:?}"
        );
        let mut last = first;
        while let Some(w) = fe.next_window() {
            assert_eq!(w.end - last, Duration::from_millis(250));
            last = w.end;
        }
        assert_eq!(last, Duration::from_secs(5));
    }

    #[test]
    fn reset_waits_for_a_full_fresh_window() {
        let fmt = PcmFormat {
            rate: 16_000,
            channels: 1,
        };
        let mut fe = Frontend::new(FrontendConfig::default()).unwrap();
        fe.push(&vec![8000i16; 16_000], fmt).unwrap();
        assert!(fe.next_window().is_some());
        fe.reset();
        fe.push(&vec![0i16; 12_000], fmt).unwrap();
        assert!(
            fe.next_window().is_none(),
            "0.75 s after reset is not a window"
        );
        fe.push(&vec![0i16; 4_000], fmt).unwrap();
        let w = fe.next_window().unwrap();
        assert_eq!(w.end, Duration::from_secs(2));
        assert_eq!(w.rms_dbfs, MIN_DBFS, "nothing from before the reset");
    }

    #[test]
    fn bad_config_and_input_are_errors() {
        let bad_hop = FrontendConfig {
            hop: Duration::from_secs(2),
            ..FrontendConfig::default()
        };
        assert!(matches!(
            Frontend::new(bad_hop),
            Err(FrontendError::Config { field: "hop", .. })
        ));
        let zero_hop = FrontendConfig {
            hop: Duration::ZERO,
            ..FrontendConfig::default()
        };
        assert!(Frontend::new(zero_hop).is_err());
        let mut fe = Frontend::new(FrontendConfig::default()).unwrap();
        assert!(matches!(
            fe.push(&[1, 2, 3], STEREO_48K),
            Err(FrontendError::PartialFrame { .. })
        ));
        let none = PcmFormat {
            rate: 0,
            channels: 1,
        };
        assert!(matches!(
            fe.push(&[1], none),
            Err(FrontendError::Format { .. })
        ));
    }

    #[test]
    fn lost_capture_frames_become_silence_and_keep_time() {
        let fmt = PcmFormat {
            rate: 16_000,
            channels: 1,
        };
        let chunk = |first_frame: u64, n: usize| AudioChunk {
            format: fmt,
            first_frame,
            captured_at: std::time::Instant::now(),
            samples: vec![1000i16; n].into(),
        };
        let mut fe = Frontend::new(FrontendConfig::default()).unwrap();
        fe.push_chunk(&chunk(0, 4000)).unwrap();
        // Frames 4000..8000 were lost upstream.
        fe.push_chunk(&chunk(8000, 8000)).unwrap();
        assert_eq!(fe.gap_frames_filled(), 4000);
        let w = fe.next_window().expect("16000 frames of stream time");
        assert_eq!(w.end, Duration::from_secs(1));
        assert!(w.samples[..4000].iter().all(|&s| s > 0.0));
        assert!(w.samples[4000..8000].iter().all(|&s| s == 0.0));
        assert!(w.samples[8000..].iter().all(|&s| s > 0.0));
    }

    #[test]
    fn format_change_keeps_the_timeline() {
        let mut fe = Frontend::new(FrontendConfig::default()).unwrap();
        fe.push(&vec![0i16; 48_000], STEREO_48K).unwrap(); // 0.5 s
        let mono16 = PcmFormat {
            rate: 16_000,
            channels: 1,
        };
        fe.push(&vec![0i16; 8_000], mono16).unwrap(); // 0.5 s
        assert_eq!(fe.samples_produced(), 16_000);
        assert_eq!(fe.next_window().unwrap().end, Duration::from_secs(1));
    }
}
