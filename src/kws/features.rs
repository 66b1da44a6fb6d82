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
//!
//! Speed: rather than one real FFT per frame, two windowed frames `a` and `b` are packed
//! into one complex signal `a + i b` and all pairs go through a single batched complex FFT
//! (rustfft's SIMD kernels are much faster batched than `realfft`'s per-call unpacking,
//! which profiling showed to be the largest cost). The two spectra are separated with
//! `A[k] = (Z[k] + conj Z[N-k]) / 2` and `B[k] = (Z[k] - conj Z[N-k]) / 2i`. The result is
//! the same STFT (fixtures agree with scipy to ~1e-7 of the peak).
use std::sync::Arc;

use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

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
    /// Periodic Hann divided by twice its sum: `scaling='spectrum'` and the 1/2 of the
    /// pair separation folded in.
    window: Vec<f32>,
    fft: Arc<dyn Fft<f32>>,
    /// `ceil(frames / 2)` packed frame pairs of `nfft` values each, transformed in place.
    batch: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
    /// The two windowed frames of one pair, then their magnitudes.
    seg: [Vec<f32>; 2],
    mags: [Vec<f32>; 2],
    /// The frames packed into each pair of `batch` by the last `compute_frames`.
    pair_frames: Vec<[usize; 2]>,
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

/// Writes segment `frame` of `signal`, windowed, into `dst` (`window.len()` values).
/// Samples in scipy's zero boundary and zero padding read as zeros.
fn window_segment(window: &[f32], start: isize, signal: &[f32], dst: &mut [f32]) {
    let nperseg = window.len();
    if start >= 0 && start as usize + nperseg <= signal.len() {
        // Interior segment: a straight multiply the compiler vectorises.
        let seg = &signal[start as usize..start as usize + nperseg];
        for ((d, x), w) in dst.iter_mut().zip(seg).zip(window) {
            *d = x * w;
        }
    } else {
        for (k, (d, w)) in dst.iter_mut().zip(window).enumerate() {
            let i = start + k as isize;
            let x = if i >= 0 && (i as usize) < signal.len() {
                signal[i as usize]
            } else {
                0.0
            };
            *d = x * w;
        }
    }
}

impl Stft {
    /// Plans the FFT and allocates every buffer `compute` will need.
    pub fn new(spec: &FeatureSpec) -> Result<Stft, FeatureError> {
        spec.validate()
            .map_err(|(field, problem)| FeatureError::InvalidSpec { field, problem })?;
        let hann = periodic_hann(spec.nperseg);
        let sum: f64 = hann.iter().sum();
        let window = hann.iter().map(|w| (0.5 * w / sum) as f32).collect();
        let fft = FftPlanner::<f32>::new().plan_fft_forward(spec.nfft);
        let pairs = spec.frames().div_ceil(2);
        let batch = vec![Complex::default(); pairs * spec.nfft];
        let scratch = vec![Complex::default(); fft.get_inplace_scratch_len()];
        Ok(Stft {
            bins: spec.bins(),
            frames: spec.frames(),
            hop: spec.hop(),
            pad: spec.boundary_pad(),
            spec: spec.clone(),
            window,
            fft,
            batch,
            scratch,
            seg: [vec![0.0; spec.nperseg], vec![0.0; spec.nperseg]],
            mags: [vec![0.0; spec.bins()], vec![0.0; spec.bins()]],
            pair_frames: vec![[usize::MAX; 2]; pairs],
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
        self.compute_frames(signal, 0..self.frames, 0..0, false, out)
    }

    /// The model's input: [`Stft::compute`] with the spec's transform applied as each
    /// frame is written (the same values as `compute` then [`FeatureSpec::transform`]).
    pub fn features(&mut self, signal: &[f32], out: &mut [f32]) -> Result<(), FeatureError> {
        self.compute_frames(signal, 0..self.frames, 0..0, true, out)
    }

    /// Number of frames per window.
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// Computes only the frames in `head` and `tail` (in range) and leaves every
    /// other column of `out` as it was: what [`super::sliding::SlidingFeatures`] needs to
    /// recompute just the columns a hop changed. `transform` applies the spec's transform.
    pub(crate) fn compute_frames(
        &mut self,
        signal: &[f32],
        head: std::ops::Range<usize>,
        tail: std::ops::Range<usize>,
        transform: bool,
        out: &mut [f32],
    ) -> Result<(), FeatureError> {
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
        let frames_total = self.frames;
        let mut todo = head.chain(tail).filter(|&f| f < frames_total);
        let n = self.spec.nfft;
        let nperseg = self.spec.nperseg;
        // Pack: the pair's first frame in the real part, its second in the imaginary part.
        // Segment starts are in the boundary-extended signal; signal index = that - pad.
        // `pair_frames[p]` remembers which frames pair p holds (usize::MAX: none).
        let mut pairs = 0;
        for (pair, frames) in self
            .batch
            .chunks_exact_mut(n)
            .zip(self.pair_frames.iter_mut())
        {
            *frames = [todo.next().unwrap_or(usize::MAX), usize::MAX];
            if frames[0] == usize::MAX {
                break;
            }
            frames[1] = todo.next().unwrap_or(usize::MAX);
            for (seg, &frame) in self.seg.iter_mut().zip(frames.iter()) {
                if frame == usize::MAX {
                    seg.fill(0.0);
                } else {
                    let start = (frame * self.hop) as isize - self.pad as isize;
                    window_segment(&self.window, start, signal, seg);
                }
            }
            let [a, b] = &self.seg;
            for ((z, &re), &im) in pair.iter_mut().zip(a).zip(b) {
                *z = Complex::new(re, im);
            }
            pair[nperseg..].fill(Complex::default()); // nfft zero-padding
            pairs += 1;
        }
        if pairs == 0 {
            return Ok(());
        }
        self.fft
            .process_with_scratch(&mut self.batch[..pairs * n], &mut self.scratch);
        let bins = self.bins;
        for (z, &[fa, fb]) in self
            .batch
            .chunks_exact(n)
            .zip(&self.pair_frames)
            .take(pairs)
        {
            let [ma, mb] = &mut self.mags;
            // Separate A[k] = (Z[k] + conj Z[N-k]) / 2 and B[k] = (Z[k] - conj Z[N-k]) / 2i;
            // store |A|^2 and |B|^2 times 4 (the 1/2 is folded into the window).
            let sep = |zk: Complex<f32>, w: Complex<f32>| {
                (
                    (zk.re + w.re) * (zk.re + w.re) + (zk.im - w.im) * (zk.im - w.im),
                    (zk.re - w.re) * (zk.re - w.re) + (zk.im + w.im) * (zk.im + w.im),
                )
            };
            (ma[0], mb[0]) = sep(z[0], z[0]);
            let forward = z[1..bins].iter();
            let mirrored = z[n + 1 - bins..].iter().rev(); // Z[N-1], Z[N-2], ..., Z[N-bins+1]
            for (((a, b), &zk), &w) in ma[1..]
                .iter_mut()
                .zip(&mut mb[1..])
                .zip(forward)
                .zip(mirrored)
            {
                (*a, *b) = sep(zk, w);
            }
            // Square roots (and the transform) over contiguous memory so they vectorise.
            ma.iter_mut().for_each(|m| *m = m.sqrt());
            mb.iter_mut().for_each(|m| *m = m.sqrt());
            if transform {
                self.spec.transform(ma);
                if fb != usize::MAX {
                    self.spec.transform(mb);
                }
            }
            let [ma, mb] = &self.mags;
            let frames = self.frames;
            match self.spec.layout {
                Layout::BinsFrames if fb == fa + 1 => {
                    // Neighbouring frames are neighbours in every bin row: one 8-byte store.
                    for (bin, (&a, &b)) in ma.iter().zip(mb).enumerate() {
                        let at = bin * frames + fa;
                        out[at..at + 2].copy_from_slice(&[a, b]);
                    }
                }
                Layout::BinsFrames => {
                    for (frame, m) in [(fa, ma), (fb, mb)] {
                        if frame != usize::MAX {
                            for (bin, &v) in m.iter().enumerate() {
                                out[bin * frames + frame] = v;
                            }
                        }
                    }
                }
                Layout::FramesBins => {
                    for (frame, m) in [(fa, ma), (fb, mb)] {
                        if frame != usize::MAX {
                            out[frame * bins..(frame + 1) * bins].copy_from_slice(m);
                        }
                    }
                }
            }
        }
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
        stft.spec().transform(&mut v);
        let want = [((1e-6f32).ln() + 2.0) / 4.0, 0.5, 0.75];
        for (got, want) in v.iter().zip(want) {
            assert!((got - want).abs() < 1e-5, "{got} vs {want}");
        }
    }

    /// scipy's STFT written out from its definition with a direct DFT in f64: an
    /// independent check of geometries the fixtures do not cover (odd frame count, odd
    /// nfft, no overlap).
    fn naive_stft(spec: &FeatureSpec, x: &[f32]) -> Vec<Vec<f64>> {
        let w = periodic_hann(spec.nperseg);
        let sum: f64 = w.iter().sum();
        let pad = spec.nperseg / 2;
        let mut ext = vec![0.0f64; pad];
        ext.extend(x.iter().map(|&v| f64::from(v)));
        ext.resize(pad + spec.clip_samples + pad, 0.0);
        let hop = spec.nperseg - spec.noverlap;
        let nadd = (hop - (ext.len() - spec.nperseg) % hop) % hop % spec.nperseg;
        ext.resize(ext.len() + nadd, 0.0);
        let frames = (ext.len() - spec.nperseg) / hop + 1;
        (0..spec.nfft / 2 + 1)
            .map(|k| {
                (0..frames)
                    .map(|f| {
                        let (mut re, mut im) = (0.0, 0.0);
                        for (n, wn) in w.iter().enumerate() {
                            let v = ext[f * hop + n] * wn / sum;
                            let ph =
                                -2.0 * std::f64::consts::PI * (k * n) as f64 / spec.nfft as f64;
                            re += v * ph.cos();
                            im += v * ph.sin();
                        }
                        (re * re + im * im).sqrt()
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn matches_the_definition_for_odd_geometries() {
        for (clip, nperseg, noverlap, nfft) in
            [(1000, 64, 0, 65), (777, 50, 13, 64), (300, 31, 30, 31)]
        {
            let spec = FeatureSpec {
                clip_samples: clip,
                nperseg,
                noverlap,
                nfft,
                ..FeatureSpec::default()
            };
            let x: Vec<f32> = (0..clip - 7)
                .map(|i| ((i as f32 * 0.37).sin() + ((i * 31) % 17) as f32 / 17.0 - 0.5) * 0.5)
                .collect();
            let want = naive_stft(&spec, &x);
            assert_eq!(want.len(), spec.bins());
            assert_eq!(want[0].len(), spec.frames(), "frame count for {spec:?}");
            let mut stft = Stft::new(&spec).unwrap();
            let mut got = vec![0.0; stft.len()];
            stft.compute(&x, &mut got).unwrap();
            let fb_spec = FeatureSpec {
                layout: Layout::FramesBins,
                ..spec.clone()
            };
            let mut fb = vec![0.0; stft.len()];
            Stft::new(&fb_spec).unwrap().compute(&x, &mut fb).unwrap();
            for bin in 0..spec.bins() {
                for frame in 0..spec.frames() {
                    assert_eq!(
                        got[bin * spec.frames() + frame],
                        fb[frame * spec.bins() + bin]
                    );
                }
            }
            let peak = want.iter().flatten().fold(0.0f64, |m, &v| m.max(v));
            for (bin, row) in want.iter().enumerate() {
                for (frame, &w) in row.iter().enumerate() {
                    let g = f64::from(got[bin * spec.frames() + frame]);
                    assert!(
                        (g - w).abs() <= 1e-5 * peak,
                        "{spec:?} bin {bin} frame {frame}: {g} vs {w}"
                    );
                }
            }
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
