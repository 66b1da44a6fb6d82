//! scipy-exact magnitude STFT, then the trainer's log/normalisation.
//!
//! The model was trained on `abs(scipy.signal.stft(x, fs, nperseg, noverlap, nfft)[2])`, so
//! this reproduces scipy's defaults exactly rather than any "usual" STFT:
//!
//! * window: `get_window('hann', nperseg)`, which is the *periodic* Hann
//!   `0.5 - 0.5 cos(2 pi n / nperseg)`;
//! * `boundary='zeros'`: `nperseg // 2` zeros before and after the signal;
//! * `padded=True`: zeros after that up to a whole number of hops;
//! * `detrend=False`, one-sided spectrum, each segment zero-padded to `nfft`;
//! * `scaling='spectrum'`: everything divided by the window's sum.
//!
//! Input shorter than `clip_samples` is zero-padded at the end (as if the clip were
//! recorded in silence), which is what the trainer does with short clips.
//!
//! The FFT is planned once in [`Stft::new`] and all scratch is allocated there, so
//! [`Stft::compute`] allocates nothing: it runs every hop on a Raspberry Pi.
use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

use super::meta::{FeatureSpec, Layout};

/// Misuse of [`Stft`] by its caller (lengths that do not match the spec).
#[derive(Debug, thiserror::Error)]
pub enum FeatureError {
    #[error("feature input has {got} samples but the model's window is {max} (features.clip_samples); pass at most one window")]
    SignalTooLong { got: usize, max: usize },
    #[error("feature output buffer has {got} values but the spec needs {want} (bins x frames); size it with Stft::len()")]
    OutputLength { got: usize, want: usize },
    #[error("the feature spec is invalid: field `{field}` {problem}")]
    InvalidSpec {
        field: &'static str,
        problem: String,
    },
    #[error("FFT failed: {0}")]
    Fft(String),
}

/// A planned STFT for one [`FeatureSpec`], with its scratch buffers.
pub struct Stft {
    spec: FeatureSpec,
    bins: usize,
    frames: usize,
    hop: usize,
    pad: usize,
    /// Periodic Hann already divided by its sum (`scaling='spectrum'` folded in).
    window: Vec<f32>,
    fft: Arc<dyn RealToComplex<f32>>,
    segment: Vec<f32>,
    spectrum: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
}

impl std::fmt::Debug for Stft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stft")
            .field("spec", &self.spec)
            .field("bins", &self.bins)
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

/// scipy's `get_window('hann', n)` (periodic): `0.5 - 0.5 cos(2 pi k / n)`, k in 0..n.
pub fn periodic_hann(n: usize) -> Vec<f64> {
    (0..n)
        .map(|k| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * k as f64 / n as f64).cos())
        .collect()
}

/// `|c|` as `sqrt(re^2 + im^2)`: several times faster than `Complex::norm` (`hypot`),
/// and exact enough here (no overflow risk for audio-scale values).
#[inline]
fn magnitude(c: &Complex<f32>) -> f32 {
    (c.re * c.re + c.im * c.im).sqrt()
}

impl Stft {
    /// Plans the FFT and allocates every buffer `compute` will need.
    pub fn new(spec: &FeatureSpec) -> Result<Stft, FeatureError> {
        spec.validate()
            .map_err(|(field, problem)| FeatureError::InvalidSpec { field, problem })?;
        let hann = periodic_hann(spec.nperseg);
        let sum: f64 = hann.iter().sum();
        let window = hann.iter().map(|w| (w / sum) as f32).collect();
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(spec.nfft);
        let segment = fft.make_input_vec();
        let spectrum = fft.make_output_vec();
        let scratch = fft.make_scratch_vec();
        Ok(Stft {
            bins: spec.bins(),
            frames: spec.frames(),
            hop: spec.hop(),
            pad: spec.boundary_pad(),
            spec: spec.clone(),
            window,
            fft,
            segment,
            spectrum,
            scratch,
        })
    }

    /// The spec this STFT was planned for.
    pub fn spec(&self) -> &FeatureSpec {
        &self.spec
    }

    /// Number of values `compute` writes: `bins * frames`.
    pub fn len(&self) -> usize {
        self.bins * self.frames
    }

    /// Never true for a planned STFT; here because `len` is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes `|Zxx|` of `signal` (at most `clip_samples` long, zero-padded to it) into
    /// `out` (exactly [`Stft::len`] values) in the spec's layout. No log, no normalisation:
    /// this is what the fixtures compare with scipy. Allocates nothing.
    pub fn compute(&mut self, signal: &[f32], out: &mut [f32]) -> Result<(), FeatureError> {
        let clip = self.spec.clip_samples;
        if signal.len() > clip {
            return Err(FeatureError::SignalTooLong {
                got: signal.len(),
                max: clip,
            });
        }
        if out.len() != self.len() {
            return Err(FeatureError::OutputLength {
                got: out.len(),
                want: self.len(),
            });
        }
        let nperseg = self.spec.nperseg;
        for frame in 0..self.frames {
            // Segment start in the boundary-extended signal; signal index = that - pad.
            let start = (frame * self.hop) as isize - self.pad as isize;
            let (head, tail) = self.segment.split_at_mut(nperseg);
            tail.fill(0.0); // nfft zero-padding (the FFT uses the buffer as scratch)
            if start >= 0 && start as usize + nperseg <= signal.len() {
                // Interior segment: a straight multiply the compiler vectorises.
                let seg = &signal[start as usize..start as usize + nperseg];
                for ((dst, x), w) in head.iter_mut().zip(seg).zip(&self.window) {
                    *dst = x * w;
                }
            } else {
                // Segment overlapping the zero boundary or the zero padding.
                for (k, (dst, w)) in head.iter_mut().zip(&self.window).enumerate() {
                    let i = start + k as isize;
                    *dst = if i >= 0 && (i as usize) < signal.len() {
                        signal[i as usize] * w
                    } else {
                        0.0
                    };
                }
            }
            self.fft
                .process_with_scratch(&mut self.segment, &mut self.spectrum, &mut self.scratch)
                .map_err(|e| FeatureError::Fft(e.to_string()))?;
            match self.spec.layout {
                Layout::BinsFrames => {
                    for (bin, c) in self.spectrum.iter().enumerate() {
                        out[bin * self.frames + frame] = magnitude(c);
                    }
                }
                Layout::FramesBins => {
                    let row = &mut out[frame * self.bins..(frame + 1) * self.bins];
                    for (dst, c) in row.iter_mut().zip(&self.spectrum) {
                        *dst = magnitude(c);
                    }
                }
            }
        }
        Ok(())
    }

    /// Applies the spec's transform in place: `ln(x + log_epsilon)` if declared, then
    /// `(x - mean) / std`.
    pub fn apply_transform(&self, values: &mut [f32]) {
        let FeatureSpec {
            log_epsilon,
            mean,
            std,
            ..
        } = self.spec;
        let inv_std = 1.0 / std;
        match log_epsilon {
            Some(eps) => values
                .iter_mut()
                .for_each(|v| *v = ((*v + eps).ln() - mean) * inv_std),
            None if mean == 0.0 && std == 1.0 => {}
            None => values.iter_mut().for_each(|v| *v = (*v - mean) * inv_std),
        }
    }

    /// The model's input: [`Stft::compute`] then [`Stft::apply_transform`].
    pub fn features(&mut self, signal: &[f32], out: &mut [f32]) -> Result<(), FeatureError> {
        self.compute(signal, out)?;
        self.apply_transform(out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_wrong_lengths_instead_of_panicking() {
        let spec = FeatureSpec::default();
        let mut stft = Stft::new(&spec).unwrap();
        let mut out = vec![0.0; stft.len()];
        let long = vec![0.0; spec.clip_samples + 1];
        assert!(matches!(
            stft.compute(&long, &mut out),
            Err(FeatureError::SignalTooLong { .. })
        ));
        let mut short_out = vec![0.0; 10];
        assert!(matches!(
            stft.compute(&[0.0; 100], &mut short_out),
            Err(FeatureError::OutputLength { .. })
        ));
    }

    #[test]
    fn short_input_equals_zero_padded_input() {
        let spec = FeatureSpec::default();
        let mut stft = Stft::new(&spec).unwrap();
        let short: Vec<f32> = (0..5000)
            .map(|i| ((i * 7919) % 97) as f32 / 97.0 - 0.5)
            .collect();
        let mut padded = short.clone();
        padded.resize(spec.clip_samples, 0.0);
        let mut a = vec![0.0; stft.len()];
        let mut b = vec![1.0; stft.len()];
        stft.compute(&short, &mut a).unwrap();
        stft.compute(&padded, &mut b).unwrap();
        assert_eq!(a, b);
        stft.compute(&[], &mut a).unwrap();
        assert!(a.iter().all(|&v| v == 0.0));
    }

    #[test]
    fn layouts_are_transposes() {
        let mut spec = FeatureSpec::default();
        let signal: Vec<f32> = (0..16000).map(|i| (i as f32 * 0.3).sin()).collect();
        let mut bf = Stft::new(&spec).unwrap();
        spec.layout = Layout::FramesBins;
        let mut fb = Stft::new(&spec).unwrap();
        let (bins, frames) = (spec.bins(), spec.frames());
        let mut a = vec![0.0; bins * frames];
        let mut b = vec![0.0; bins * frames];
        bf.compute(&signal, &mut a).unwrap();
        fb.compute(&signal, &mut b).unwrap();
        for bin in 0..bins {
            for frame in 0..frames {
                assert_eq!(a[bin * frames + frame], b[frame * bins + bin]);
            }
        }
    }

    #[test]
    fn transform_logs_then_normalises() {
        let spec = FeatureSpec {
            log_epsilon: Some(1e-6),
            mean: -2.0,
            std: 4.0,
            ..FeatureSpec::default()
        };
        let stft = Stft::new(&spec).unwrap();
        let mut v = [0.0f32, 1.0, std::f32::consts::E];
        stft.apply_transform(&mut v);
        let want = [((1e-6f32).ln() + 2.0) / 4.0, 0.5, 0.75];
        for (got, want) in v.iter().zip(want) {
            assert!((got - want).abs() < 1e-5, "{got} vs {want}");
        }
    }

    #[test]
    fn invalid_spec_is_an_error() {
        let spec = FeatureSpec {
            nfft: 128,
            ..FeatureSpec::default()
        };
        let err = Stft::new(&spec).unwrap_err().to_string();
        assert!(err.contains("features.nfft"), "{err}");
    }
}
