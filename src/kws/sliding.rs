//! Features of a sliding window, recomputing only the columns a hop changed.
//!
//! Consecutive recognizer windows overlap by all but one hop (875 of 1000 ms at the
//! default hop), and an STFT frame that lies wholly inside the window depends only on the
//! audio under it. So when the window has moved by a whole number `m` of STFT hops, the
//! new window's interior frame `k` *is* the old window's frame `k + m`: it is copied, and
//! only the frames that are new or touch scipy's zero boundary/padding are computed
//! (18 of 124 frames at a 122.8 ms hop). The recognizer rounds its hop to whole STFT hops
//! for this reason.
//!
//! Frames are keyed by absolute sample position: the caller passes the window's end as a
//! sample index of the 16 kHz timeline, and anything that is not a forward move by whole
//! STFT hops (the first window, a reset, dropped windows that broke the grid) simply
//! computes every frame. [`SlidingFeatures::invalidate`] must be called when audio that
//! was already produced can change (the frontend's reset zeroes its ring).
//!
//! Values are the same as [`Stft::features`] up to float rounding: a frame is packed with
//! a different partner in the batched FFT (see `features.rs`), which moves low-order bits.
use super::features::{FeatureError, Stft};
use super::meta::{FeatureSpec, Layout};

/// Feature tensor of the latest window, updated incrementally.
#[derive(Debug)]
pub struct SlidingFeatures {
    stft: Stft,
    values: Vec<f32>,
    /// End sample of the window `values` describes, if they are valid.
    last_end: Option<u64>,
    interior: std::ops::Range<usize>,
    frames_computed: u64,
    frames_reused: u64,
}

impl SlidingFeatures {
    pub fn new(spec: &FeatureSpec) -> Result<SlidingFeatures, FeatureError> {
        let stft = Stft::new(spec)?;
        Ok(SlidingFeatures {
            values: vec![0.0; stft.len()],
            interior: spec.interior_frames(),
            stft,
            last_end: None,
            frames_computed: 0,
            frames_reused: 0,
        })
    }

    /// The spec this was planned for.
    pub fn spec(&self) -> &FeatureSpec {
        self.stft.spec()
    }

    /// Features (transformed, in the spec's layout) of `window`, a full window of
    /// `clip_samples` ending at absolute sample `end`.
    pub fn compute(&mut self, window: &[f32], end: u64) -> Result<&[f32], FeatureError> {
        let frames = self.stft.frames();
        let hop = self.spec().hop() as u64;
        let full_window = window.len() == self.spec().clip_samples;
        let shift = match self.last_end {
            Some(last) if full_window && end > last && (end - last) % hop == 0 => {
                usize::try_from((end - last) / hop).ok()
            }
            _ => None,
        };
        let keep = self.interior.clone();
        // Old interior frames k + m (k + m < keep.end) become new frames k (k >= keep.start).
        let reuse = shift.filter(|&m| keep.start + m < keep.end);
        self.last_end = None; // invalid until the computation below succeeded
        match reuse {
            Some(m) => {
                let moved = keep.start..keep.end - m;
                self.shift_columns(m, moved.clone());
                self.stft.compute_frames(
                    window,
                    0..keep.start,
                    moved.end..frames,
                    true,
                    &mut self.values,
                )?;
                self.frames_reused += moved.len() as u64;
                self.frames_computed += (frames - moved.len()) as u64;
            }
            None => {
                self.stft.features(window, &mut self.values)?;
                self.frames_computed += frames as u64;
            }
        }
        if full_window {
            self.last_end = Some(end);
        }
        Ok(&self.values)
    }

    /// Moves columns `moved.start + m .. moved.end + m` to `moved`.
    fn shift_columns(&mut self, m: usize, moved: std::ops::Range<usize>) {
        let frames = self.stft.frames();
        let bins = self.spec().bins();
        match self.spec().layout {
            Layout::BinsFrames => {
                for row in self.values.chunks_exact_mut(frames) {
                    row.copy_within(moved.start + m..moved.end + m, moved.start);
                }
            }
            Layout::FramesBins => {
                self.values.copy_within(
                    (moved.start + m) * bins..(moved.end + m) * bins,
                    moved.start * bins,
                );
            }
        }
    }

    /// Forgets the cached columns: the next window computes every frame.
    pub fn invalidate(&mut self) {
        self.last_end = None;
    }

    /// Frames computed and frames reused so far (for benches and logs).
    pub fn counters(&self) -> (u64, u64) {
        (self.frames_computed, self.frames_reused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(layout: Layout) -> FeatureSpec {
        FeatureSpec {
            layout,
            log_epsilon: Some(1e-6),
            mean: -9.6,
            std: 2.1,
            ..FeatureSpec::default()
        }
    }

    /// A deterministic signal with structure at every scale: chirp plus pseudo-noise.
    fn signal(len: usize) -> Vec<f32> {
        let mut state = 0x2545_f491_u32;
        (0..len)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                let noise = (state as f32 / u32::MAX as f32 - 0.5) * 0.05;
                let t = i as f32 / 16_000.0;
                0.3 * (2.0 * std::f32::consts::PI * (200.0 + 900.0 * t) * t).sin() + noise
            })
            .collect()
    }

    fn assert_close(got: &[f32], want: &[f32], what: &str) {
        let worst = got
            .iter()
            .zip(want)
            .map(|(g, w)| (g - w).abs())
            .fold(0.0f32, f32::max);
        // Normalised log features span about -3..+4; 1e-3 is far below int8's step.
        assert!(worst < 1e-3, "{what}: worst difference {worst}");
    }

    #[test]
    fn interior_frames_of_the_shipped_geometry() {
        // Frame k covers samples [131k - 127, 131k + 128): 1..=121 are inside 0..16000.
        assert_eq!(spec(Layout::BinsFrames).interior_frames(), 1..122);
    }

    #[test]
    fn sliding_by_whole_hops_equals_full_recompute() {
        for layout in [Layout::BinsFrames, Layout::FramesBins] {
            let spec = spec(layout);
            let clip = spec.clip_samples;
            let audio = signal(clip + 131 * 400);
            let mut sliding = SlidingFeatures::new(&spec).unwrap();
            let mut full = Stft::new(&spec).unwrap();
            let mut want = vec![0.0; full.len()];
            // Whole-hop moves of 15, 1, 60 and 121 frames, then 122 (nothing to reuse).
            let mut end = clip;
            for step in [0, 15, 15, 1, 60, 121, 122, 15] {
                end += step * 131;
                let window = &audio[end - clip..end];
                let got = sliding.compute(window, end as u64).unwrap().to_vec();
                full.features(window, &mut want).unwrap();
                assert_close(
                    &got,
                    &want,
                    &format!("{layout:?} after a {step}-frame move"),
                );
            }
            let (computed, reused) = sliding.counters();
            assert!(reused > 0, "{layout:?}: nothing was reused");
            assert_eq!(computed + reused, 8 * 124);
            // 15-frame moves reuse 121 - 1 - 15 + 1 = 106 columns each.
            assert!(reused >= 3 * 106, "{layout:?}: reused only {reused}");
        }
    }

    #[test]
    fn moves_off_the_frame_grid_and_invalidation_recompute_everything() {
        let spec = spec(Layout::BinsFrames);
        let clip = spec.clip_samples;
        let audio = signal(clip + 8000);
        let mut sliding = SlidingFeatures::new(&spec).unwrap();
        let mut full = Stft::new(&spec).unwrap();
        let mut want = vec![0.0; full.len()];
        let mut check = |sliding: &mut SlidingFeatures, end: usize| {
            let window = &audio[end - clip..end];
            let got = sliding.compute(window, end as u64).unwrap().to_vec();
            full.features(window, &mut want).unwrap();
            assert_close(&got, &want, &format!("window ending at {end}"));
        };
        check(&mut sliding, clip);
        check(&mut sliding, clip + 2000); // 2000 is not a multiple of 131
        assert_eq!(sliding.counters(), (248, 0));
        check(&mut sliding, clip + 2000 + 131);
        assert_eq!(sliding.counters().1, 120);
        // Same position after invalidation: nothing may be reused.
        sliding.invalidate();
        check(&mut sliding, clip + 2000 + 262);
        assert_eq!(sliding.counters().1, 120);
        // Moving backwards recomputes too.
        check(&mut sliding, clip + 131);
        assert_eq!(sliding.counters().1, 120);
    }

    #[test]
    fn changed_audio_under_a_reused_column_is_not_noticed_without_invalidate() {
        // Documents the contract: reuse trusts that produced audio never changes.
        let spec = spec(Layout::BinsFrames);
        let clip = spec.clip_samples;
        let audio = signal(clip + 131);
        let mut sliding = SlidingFeatures::new(&spec).unwrap();
        sliding.compute(&audio[..clip], clip as u64).unwrap();
        let silent = vec![0.0; clip];
        let reused = sliding.compute(&silent, (clip + 131) as u64).unwrap()[10];
        sliding.invalidate();
        let fresh = sliding.compute(&silent, (clip + 131) as u64).unwrap()[10];
        assert!(reused > fresh + 1.0, "reused {reused} vs fresh {fresh}");
    }
}
