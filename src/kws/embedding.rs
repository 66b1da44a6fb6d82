//! The speech-embedding front end: 16 kHz audio → log-mel frames every 10 ms → one 96-value
//! speech embedding every 80 ms → a ring of the last N embeddings, which the keyword head reads.
//!
//! The two feature models are openWakeWord's frozen `melspectrogram.tflite` and
//! `embedding_model.tflite` (Google's `speech_embedding`, trained on real speech; see
//! `models/embedding/NOTICE.md`). Only the small head on top is trained here, so what it learns
//! from synthetic voices carries over to real ones.
//!
//! # How the audio is cut, and why
//! The mel model clips its log output at (max − 80 dB) over *everything it is given in one
//! call*. Feeding it whatever the capture delivers, or a whole file at once, would therefore
//! change the values wherever speech meets near-silence (measured on the committed fixture: up to
//! 11.4 on the scaled mel scale, in 119 of 440 frames, between one call over 4.5 s and the cut
//! below). So the cut is part of the contract, fixed independently of how audio arrives:
//!
//! * **block k** = stream samples `[1280 k, 1280 k + 1760)`: 80 ms of new audio plus the 480
//!   samples (3 mel hops) before it, one mel call, 8 frames (`8k .. 8k+7`);
//! * **embedding j** = the 76 frames `[8j + 4, 8j + 80)`, computed as soon as block `j + 9`
//!   is in, i.e. the window always ends at a block's end.
//!
//! This is openWakeWord 0.4.0's streaming arithmetic (`AudioFeatures._streaming_features`:
//! 1280 new samples + 480 of context per mel call, one embedding from the last 76 frames) with
//! the start fixed so nothing is padded: the first embedding exists after 13 280 samples
//! (830 ms). `scripts/kws/embedding.py` implements the same cut and the trainer computes every
//! training embedding through it; `tests/kws_embedding.rs` checks this module against fixtures
//! it wrote.
//!
//! The mel step runs as the `.tflite` in LiteRT: it costs a tenth of the embedding step, so a
//! hand-written Rust mel (rustfft) could save little and would need its own tolerance story.
//!
//! Steady state allocates nothing: the sample, mel and embedding buffers are made once and
//! shifted in place (at most 76 × 32 floats per block).

use std::path::Path;

use super::model::float_fn::FloatFunction;
use super::model::ModelError;

/// Sample rate the feature models were trained at.
pub const SAMPLE_RATE: u32 = 16_000;
/// New samples per mel call and per embedding: 80 ms.
pub const BLOCK_SAMPLES: usize = 1280;
/// Samples before each block fed with it, so its 8 frames (512 samples each) are whole.
pub const CONTEXT_SAMPLES: usize = 480;
/// Samples per mel call.
pub const MEL_CALL_SAMPLES: usize = BLOCK_SAMPLES + CONTEXT_SAMPLES;
/// Mel frames (10 ms hop) per block.
pub const MEL_FRAMES_PER_BLOCK: usize = 8;
/// Mel bands per frame.
pub const MEL_BINS: usize = 32;
/// Mel frames one embedding reads.
pub const EMBEDDING_WINDOW: usize = 76;
/// Values per embedding.
pub const EMBEDDING_DIM: usize = 96;

/// Number of embeddings a stream of `samples` samples gives (the Python side's
/// `embeddings_for_length`).
pub fn embeddings_for_length(samples: usize) -> usize {
    if samples < MEL_CALL_SAMPLES {
        return 0;
    }
    let blocks = (samples - CONTEXT_SAMPLES) / BLOCK_SAMPLES;
    let frames = blocks * MEL_FRAMES_PER_BLOCK;
    if frames < EMBEDDING_WINDOW {
        0
    } else {
        (frames - EMBEDDING_WINDOW) / MEL_FRAMES_PER_BLOCK + 1
    }
}

/// The two feature models as functions. A trait so the ring arithmetic can be tested without
/// LiteRT, and so a cheaper embedding (quantized, or every other block) can be swapped in.
pub trait SpeechModels: Send {
    /// `block`: [`MEL_CALL_SAMPLES`] samples in int16 range (−32768..32767, as f32).
    /// Writes `MEL_FRAMES_PER_BLOCK * MEL_BINS` raw (unscaled) mel values, frame-major.
    fn mel(&mut self, block: &[f32], frames: &mut [f32]) -> Result<(), ModelError>;
    /// `mels`: [`EMBEDDING_WINDOW`] scaled frames, frame-major. Writes [`EMBEDDING_DIM`] values.
    fn embed(&mut self, mels: &[f32], embedding: &mut [f32]) -> Result<(), ModelError>;
    /// The embeddings of every window of consecutive frames in `frames`: `frames` holds
    /// `EMBEDDING_WINDOW + MEL_FRAMES_PER_BLOCK * (c - 1)` scaled frames for `c` windows (each
    /// starting [`MEL_FRAMES_PER_BLOCK`] frames after the last), `embeddings` gets `c *
    /// EMBEDDING_DIM` values, each window's as [`Self::embed`] gives it (exactly, or within
    /// the float kernels' summation order: see [`EMBEDDINGS_PER_RUN`]).
    ///
    /// The default calls `embed` per window; a model that can do better in one call (LiteRT
    /// over a longer input, see [`LiteRtSpeechModels`]) overrides it, and a decorator must
    /// pass it on.
    fn embed_run(&mut self, frames: &[f32], embeddings: &mut [f32]) -> Result<(), ModelError> {
        embed_each(self, frames, embeddings)
    }
}

/// Windows in a run of `frames` values (see [`SpeechModels::embed_run`]); `None` if it is not
/// a whole run.
fn run_windows(frames: usize) -> Option<usize> {
    let f = frames / MEL_BINS;
    let whole = frames % MEL_BINS == 0
        && f >= EMBEDDING_WINDOW
        && (f - EMBEDDING_WINDOW) % MEL_FRAMES_PER_BLOCK == 0;
    whole.then(|| (f - EMBEDDING_WINDOW) / MEL_FRAMES_PER_BLOCK + 1)
}

/// [`SpeechModels::embed_run`] one window at a time.
fn embed_each<M: SpeechModels + ?Sized>(
    models: &mut M,
    frames: &[f32],
    embeddings: &mut [f32],
) -> Result<(), ModelError> {
    debug_assert!(run_windows(frames.len()).is_some_and(|c| c * EMBEDDING_DIM >= embeddings.len()));
    let (step, window) = (MEL_FRAMES_PER_BLOCK * MEL_BINS, EMBEDDING_WINDOW * MEL_BINS);
    for (i, out) in embeddings.chunks_exact_mut(EMBEDDING_DIM).enumerate() {
        models.embed(&frames[i * step..i * step + window], out)?;
    }
    Ok(())
}

/// Windows the embedding model reads in one call of [`SpeechModels::embed_run`] on LiteRT.
///
/// Why this works: every layer of `speech_embedding` is unpadded along time (3-frame
/// convolutions, 2-frame pools three times, so a stride of 8 frames and a reach of 76), so the
/// same model over `76 + 8 (K - 1)` frames gives the K windows' embeddings in one pass and
/// shares the work the windows overlap on. Measured here: 16 windows in 3.6 ms against 1.3 ms
/// for one, a sixth of the cost per embedding (`cargo bench --bench embedding`). The
/// listener gets one new window per block and gains nothing; `adapt` and `evaluate`, which
/// have whole clips, do.
///
/// The values: on x86_64 the same as one call per window, bit for bit; on aarch64 (qemu,
/// Cortex-A72) XNNPACK sums the wider convolutions in another order and they differ in the
/// last bits, by at most 4.2e-5 on values up to about 75 (`tests/kws_embedding.rs`, which
/// CI runs on both).
pub const EMBEDDINGS_PER_RUN: usize = 16;

/// The feature models run by LiteRT, each file checked against its pinned sha256 first.
#[derive(Debug)]
pub struct LiteRtSpeechModels {
    mel: FloatFunction,
    embedding: FloatFunction,
    /// The embedding model over [`EMBEDDINGS_PER_RUN`] windows, compiled the first time a run
    /// of windows is asked for (the listener never asks), with its pin checked again then.
    wide: Wide,
    /// The embedding model's pin, to check the file again when the wide model is compiled.
    embedding_sha256: String,
    /// Scratch: a run shorter than [`EMBEDDINGS_PER_RUN`] padded to its length, and the
    /// wide model's output for it.
    padded: (Vec<f32>, Vec<f32>),
}

/// The wide embedding model's state ([`LiteRtSpeechModels`]).
#[derive(Debug)]
enum Wide {
    NotYet,
    Ready(FloatFunction),
    /// It could not be compiled (a LiteRT build that refuses the resize, say): runs are
    /// computed one window at a time, the same values, only slower.
    Unavailable,
}

/// Fewest windows a short run computes with the wide model (the rest go one by one): one
/// wide call costs about what three single ones do.
const WIDE_FROM: usize = 3;

impl LiteRtSpeechModels {
    /// Loads both models; a file whose sha256 differs from its pin is refused.
    pub fn load(
        mel: &Path,
        mel_sha256: &str,
        embedding: &Path,
        embedding_sha256: &str,
    ) -> Result<Self, ModelError> {
        let mel_fn = FloatFunction::load(mel, mel_sha256, &[1, MEL_CALL_SAMPLES])?;
        let want = MEL_FRAMES_PER_BLOCK * MEL_BINS;
        if mel_fn.output_len() != want {
            return Err(ModelError::Unsupported {
                path: mel.to_path_buf(),
                what: format!(
                    "{MEL_CALL_SAMPLES} samples give output shape {:?}, not {MEL_FRAMES_PER_BLOCK} frames of {MEL_BINS} mel bands; this is not openWakeWord's melspectrogram model",
                    mel_fn.output_dims()
                ),
            });
        }
        let emb_fn = FloatFunction::load(
            embedding,
            embedding_sha256,
            &[1, EMBEDDING_WINDOW, MEL_BINS, 1],
        )?;
        if emb_fn.output_len() != EMBEDDING_DIM {
            return Err(ModelError::Unsupported {
                path: embedding.to_path_buf(),
                what: format!(
                    "output shape {:?} is not {EMBEDDING_DIM} values; this is not openWakeWord's embedding model",
                    emb_fn.output_dims()
                ),
            });
        }
        Ok(Self {
            mel: mel_fn,
            embedding: emb_fn,
            wide: Wide::NotYet,
            embedding_sha256: embedding_sha256.to_string(),
            padded: (Vec::new(), Vec::new()),
        })
    }

    /// The embedding model over [`EMBEDDINGS_PER_RUN`] windows (compiled on first use);
    /// `None` if it cannot be, which is said once in the log.
    fn wide(&mut self) -> Option<&mut FloatFunction> {
        if matches!(self.wide, Wide::NotYet) {
            self.wide = match self.compile_wide() {
                Ok(f) => Wide::Ready(f),
                Err(e) => {
                    log::warn!(
                        "computing speech embeddings one window at a time, which is slower: {e}"
                    );
                    Wide::Unavailable
                }
            };
        }
        match &mut self.wide {
            Wide::Ready(f) => Some(f),
            _ => None,
        }
    }

    /// Compiles the wide model and checks it against one call per window on a probe input
    /// (the same windows to within [`RUN_TOLERANCE`]), so a LiteRT that resizes the model
    /// but computes something else is caught here, once, and never used.
    fn compile_wide(&mut self) -> Result<FloatFunction, ModelError> {
        let path = self.embedding.path().to_path_buf();
        let frames = EMBEDDING_WINDOW + MEL_FRAMES_PER_BLOCK * (EMBEDDINGS_PER_RUN - 1);
        let mut wide =
            FloatFunction::load_resized(&path, &self.embedding_sha256, &[1, frames, MEL_BINS, 1])?;
        let refused = |what: String| ModelError::Unsupported {
            path: path.clone(),
            what,
        };
        if wide.output_len() != EMBEDDINGS_PER_RUN * EMBEDDING_DIM {
            return Err(refused(format!(
                "over {frames} frames its output shape is {:?}, not {EMBEDDINGS_PER_RUN} embeddings: it is not convolutional along time",
                wide.output_dims()
            )));
        }
        // Scaled mel values lie in about 0..6: a deterministic pattern over that range.
        let probe: Vec<f32> = (0..frames * MEL_BINS)
            .map(|i| ((i * 7919) % 613) as f32 / 100.0)
            .collect();
        let mut together = vec![0.0f32; EMBEDDINGS_PER_RUN * EMBEDDING_DIM];
        wide.run(&probe, &mut together)?;
        let mut apart = vec![0.0f32; together.len()];
        embed_each(self, &probe, &mut apart)?;
        let worst = together
            .iter()
            .zip(&apart)
            .map(|(a, b)| (a - b).abs())
            .fold(
                0.0f32,
                |m, d| if d.is_nan() { f32::INFINITY } else { m.max(d) },
            );
        if worst > RUN_TOLERANCE {
            return Err(refused(format!(
                "over {frames} frames it differs from one call per window by up to {worst}"
            )));
        }
        Ok(wide)
    }

    /// Whether runs of windows are computed in one call (compiling the wide model now if it
    /// was not yet); false if it could not be, and they go one window at a time.
    pub fn runs_in_one_call(&mut self) -> bool {
        self.wide().is_some()
    }
}

/// How far a run's embeddings may be from one call per window before the wide model is not
/// used: the bound the Rust front end is held to against the Python reference
/// (`tests/kws_embedding.rs`), 20 times what aarch64 differs by.
pub const RUN_TOLERANCE: f32 = 1e-3;

impl SpeechModels for LiteRtSpeechModels {
    fn mel(&mut self, block: &[f32], frames: &mut [f32]) -> Result<(), ModelError> {
        self.mel.run(block, frames)
    }

    fn embed(&mut self, mels: &[f32], embedding: &mut [f32]) -> Result<(), ModelError> {
        self.embedding.run(mels, embedding)
    }

    /// Up to [`EMBEDDINGS_PER_RUN`] windows per call; a last run of [`WIDE_FROM`] or more
    /// windows but fewer than that is padded with zero frames, whose extra outputs are
    /// dropped (no window's embedding reads a frame past its own 76).
    fn embed_run(&mut self, frames: &[f32], embeddings: &mut [f32]) -> Result<(), ModelError> {
        let count = embeddings.len() / EMBEDDING_DIM;
        if count == 0 {
            return Ok(());
        }
        if embeddings.len() % EMBEDDING_DIM != 0 {
            return Err(ModelError::ScoresLength {
                path: self.embedding.path().to_path_buf(),
                got: embeddings.len(),
                want: count * EMBEDDING_DIM,
            });
        }
        if run_windows(frames.len()) != Some(count) {
            return Err(ModelError::InputLength {
                path: self.embedding.path().to_path_buf(),
                got: frames.len(),
                want: (EMBEDDING_WINDOW + MEL_FRAMES_PER_BLOCK * (count - 1)) * MEL_BINS,
                shape: vec![frames.len() / MEL_BINS, MEL_BINS],
            });
        }
        let step = MEL_FRAMES_PER_BLOCK * MEL_BINS;
        let wide_len = (EMBEDDING_WINDOW * MEL_BINS) + step * (EMBEDDINGS_PER_RUN - 1);
        let mut done = 0;
        while done < count {
            let n = (count - done).min(EMBEDDINGS_PER_RUN);
            let from = done * step;
            let out = &mut embeddings[done * EMBEDDING_DIM..(done + n) * EMBEDDING_DIM];
            if n < WIDE_FROM || self.wide().is_none() {
                embed_each(self, &frames[from..], out)?;
            } else if n == EMBEDDINGS_PER_RUN {
                let wide = self.wide().expect("checked above");
                wide.run(&frames[from..from + wide_len], out)?;
            } else {
                let (mut padded, mut all) = std::mem::take(&mut self.padded);
                padded.clear();
                padded.extend_from_slice(&frames[from..]);
                padded.resize(wide_len, 0.0);
                all.resize(EMBEDDINGS_PER_RUN * EMBEDDING_DIM, 0.0);
                let wide = self.wide().expect("checked above");
                let ran = wide.run(&padded, &mut all);
                if ran.is_ok() {
                    out.copy_from_slice(&all[..n * EMBEDDING_DIM]);
                }
                self.padded = (padded, all);
                ran?;
            }
            done += n;
        }
        Ok(())
    }
}

/// [`SpeechModels`] that remember the mel frames of an all-zero block; every other input goes
/// to `M`.
///
/// Why: `chatterbox adapt` streams each training take inside about a second of zeros on
/// either side (`adapt::takes`), so on every take the same silent blocks would be computed
/// again. The answer is reused only for a block equal, value for value, to the one it was
/// computed from, so the stream gives exactly what `M` alone gives (LiteRT on one thread is
/// deterministic). (The all-silent windows' embeddings are not remembered: they are computed
/// inside a run of windows, [`SpeechModels::embed_run`], where a window costs about a sixth
/// of a call of its own, and leaving them out would split the run.)
#[derive(Debug)]
pub struct SilenceMemo<M> {
    inner: M,
    /// Raw mel frames of an all-zero block.
    silent_mel: Option<Vec<f32>>,
}

impl<M: SpeechModels> SilenceMemo<M> {
    pub fn new(inner: M) -> Self {
        Self {
            inner,
            silent_mel: None,
        }
    }
}

impl<M: SpeechModels> SpeechModels for SilenceMemo<M> {
    fn mel(&mut self, block: &[f32], frames: &mut [f32]) -> Result<(), ModelError> {
        // +0.0 only (bit for bit), so "equal" is exact even for a model that could tell -0.0.
        if !block.iter().all(|&v| v.to_bits() == 0) {
            return self.inner.mel(block, frames);
        }
        match &self.silent_mel {
            Some(m) if m.len() == frames.len() => frames.copy_from_slice(m),
            _ => {
                self.inner.mel(block, frames)?;
                self.silent_mel = Some(frames.to_vec());
            }
        }
        Ok(())
    }

    fn embed(&mut self, mels: &[f32], embedding: &mut [f32]) -> Result<(), ModelError> {
        self.inner.embed(mels, embedding)
    }

    fn embed_run(&mut self, frames: &[f32], embeddings: &mut [f32]) -> Result<(), ModelError> {
        self.inner.embed_run(frames, embeddings)
    }
}

/// What one push produced, in stream order (for tests and diagnostics).
#[derive(Debug, Clone, Copy)]
pub enum Produced<'a> {
    /// The 8 new scaled mel frames of a block, frame-major.
    MelFrames(&'a [f32]),
    /// A new embedding.
    Embedding(&'a [f32]),
}

/// Streaming audio → embeddings, cut as the module docs say, keeping the last `ring_len`.
pub struct EmbeddingStream {
    models: Box<dyn SpeechModels>,
    /// Samples of the next block, int16 range; a block runs when it holds
    /// [`MEL_CALL_SAMPLES`], then keeps its last [`CONTEXT_SAMPLES`].
    pending: Vec<f32>,
    /// The last [`EMBEDDING_WINDOW`] scaled mel frames, oldest first.
    mels: Vec<f32>,
    /// Mel frames computed since the last reset.
    mel_frames: u64,
    /// Scratch for one block's frames.
    block_frames: Vec<f32>,
    /// The last `ring_len` embeddings, oldest first.
    ring: Vec<f32>,
    ring_len: usize,
    /// Embeddings computed since the last reset.
    embeddings: u64,
    /// Scratch for one embedding.
    embedding: Vec<f32>,
}

impl std::fmt::Debug for EmbeddingStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddingStream")
            .field("ring_len", &self.ring_len)
            .field("mel_frames", &self.mel_frames)
            .field("embeddings", &self.embeddings)
            .finish()
    }
}

impl EmbeddingStream {
    /// A stream whose ring keeps the last `ring_len` (≥ 1) embeddings.
    pub fn new(models: Box<dyn SpeechModels>, ring_len: usize) -> Self {
        let ring_len = ring_len.max(1);
        Self {
            models,
            pending: Vec::with_capacity(MEL_CALL_SAMPLES),
            mels: vec![0.0; EMBEDDING_WINDOW * MEL_BINS],
            mel_frames: 0,
            block_frames: vec![0.0; MEL_FRAMES_PER_BLOCK * MEL_BINS],
            ring: vec![0.0; ring_len * EMBEDDING_DIM],
            ring_len,
            embeddings: 0,
            embedding: vec![0.0; EMBEDDING_DIM],
        }
    }

    /// Embeddings the ring holds when full.
    pub fn ring_len(&self) -> usize {
        self.ring_len
    }

    /// Embeddings computed since the last reset.
    pub fn embeddings(&self) -> u64 {
        self.embeddings
    }

    /// The last `ring_len` embeddings, oldest first (`ring_len * 96` values), once that many
    /// have been computed since the last reset.
    pub fn ring(&self) -> Option<&[f32]> {
        (self.embeddings >= self.ring_len as u64).then_some(self.ring.as_slice())
    }

    /// Forgets all audio, frames and embeddings: the next sample is block 0's first.
    pub fn reset(&mut self) {
        self.pending.clear();
        self.mel_frames = 0;
        self.embeddings = 0;
    }

    /// Feeds mono 16 kHz samples in [-1, 1) (the keyword frontend's scale); returns how many
    /// embeddings they completed.
    pub fn push(&mut self, samples: &[f32]) -> Result<usize, ModelError> {
        self.push_observed(samples, &mut |_| {})
    }

    /// [`Self::push`], calling `observe` with every block's mel frames and every embedding.
    pub fn push_observed(
        &mut self,
        samples: &[f32],
        observe: &mut dyn FnMut(Produced<'_>),
    ) -> Result<usize, ModelError> {
        let mut new = 0;
        let mut rest = samples;
        while !rest.is_empty() {
            let room = MEL_CALL_SAMPLES - self.pending.len();
            let (now, later) = rest.split_at(room.min(rest.len()));
            // The models take int16-range values; x * 32768 undoes the frontend's scaling
            // exactly (a power of two).
            self.pending.extend(now.iter().map(|&x| x * 32768.0));
            rest = later;
            if self.pending.len() == MEL_CALL_SAMPLES {
                if self.run_block(observe)? {
                    new += 1;
                }
                self.pending.drain(..BLOCK_SAMPLES);
            }
        }
        Ok(new)
    }

    /// [`Self::reset`], then [`Self::push_observed`] of `samples`: the same frames, the same
    /// embeddings (to the last bit on x86_64, see [`EMBEDDINGS_PER_RUN`]), and the same state
    /// after, so pushing more goes on as usual. The embeddings are computed in runs ([`SpeechModels::embed_run`], a sixth of the
    /// cost each on LiteRT), which only pays with a whole clip at hand (`adapt`, `evaluate`),
    /// not for the listener's blocks. `observe` sees every block's frames first, then every
    /// embedding. After an error the stream is half fed, as after a failed `push`: reset it.
    pub fn push_fresh(
        &mut self,
        samples: &[f32],
        observe: &mut dyn FnMut(Produced<'_>),
    ) -> Result<usize, ModelError> {
        self.reset();
        let mut frames = Vec::new();
        let mut rest = samples;
        while rest.len() >= MEL_CALL_SAMPLES {
            self.pending.clear();
            self.pending
                .extend(rest[..MEL_CALL_SAMPLES].iter().map(|&x| x * 32768.0));
            self.mel_block(observe)?;
            frames.extend_from_slice(&self.block_frames);
            rest = &rest[BLOCK_SAMPLES..];
        }
        // What `push` keeps: the samples after the last whole block's first 1280.
        self.pending.clear();
        self.pending.extend(rest.iter().map(|&x| x * 32768.0));
        let count = embeddings_for_length(samples.len());
        if count == 0 {
            return Ok(0);
        }
        // Embedding j reads frames [8j + 4, 8j + 80) (module docs): the last 76 of the ten
        // blocks that complete embedding 0.
        let first = (MEL_FRAMES_PER_BLOCK * EMBEDDING_WINDOW.div_ceil(MEL_FRAMES_PER_BLOCK)
            - EMBEDDING_WINDOW)
            * MEL_BINS;
        let end = first + (EMBEDDING_WINDOW + MEL_FRAMES_PER_BLOCK * (count - 1)) * MEL_BINS;
        let mut embeddings = vec![0.0f32; count * EMBEDDING_DIM];
        self.models
            .embed_run(&frames[first..end], &mut embeddings)?;
        for e in embeddings.chunks_exact(EMBEDDING_DIM) {
            self.embedding.copy_from_slice(e);
            self.keep_embedding(observe);
        }
        Ok(count)
    }

    /// One mel call on the pending block; then an embedding if 76 frames are in.
    fn run_block(&mut self, observe: &mut dyn FnMut(Produced<'_>)) -> Result<bool, ModelError> {
        self.mel_block(observe)?;
        if self.mel_frames < EMBEDDING_WINDOW as u64 {
            return Ok(false);
        }
        self.models.embed(&self.mels, &mut self.embedding)?;
        self.keep_embedding(observe);
        Ok(true)
    }

    /// One mel call on the pending block, its frames scaled and added to the last 76.
    fn mel_block(&mut self, observe: &mut dyn FnMut(Produced<'_>)) -> Result<(), ModelError> {
        self.models.mel(&self.pending, &mut self.block_frames)?;
        // openWakeWord's scaling, which brings the model's output to what speech_embedding was
        // trained on.
        self.block_frames
            .iter_mut()
            .for_each(|v| *v = *v / 10.0 + 2.0);
        observe(Produced::MelFrames(&self.block_frames));
        let n = self.block_frames.len();
        self.mels.copy_within(n.., 0);
        let keep = self.mels.len() - n;
        self.mels[keep..].copy_from_slice(&self.block_frames);
        self.mel_frames += MEL_FRAMES_PER_BLOCK as u64;
        Ok(())
    }

    /// The embedding just computed, observed and put at the ring's end.
    fn keep_embedding(&mut self, observe: &mut dyn FnMut(Produced<'_>)) {
        observe(Produced::Embedding(&self.embedding));
        self.ring.copy_within(EMBEDDING_DIM.., 0);
        let keep = self.ring.len() - EMBEDDING_DIM;
        self.ring[keep..].copy_from_slice(&self.embedding);
        self.embeddings += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mel frame values record which samples they saw; an embedding records its first and
    /// last frame, so the tests can check the cut without LiteRT.
    struct Probe;

    impl SpeechModels for Probe {
        fn mel(&mut self, block: &[f32], frames: &mut [f32]) -> Result<(), ModelError> {
            assert_eq!(block.len(), MEL_CALL_SAMPLES);
            for (f, frame) in frames.chunks_mut(MEL_BINS).enumerate() {
                // The ramp's sample at the frame start is its stream index; pre-scaled so that
                // x/10 + 2 gives the index back.
                frame.fill((block[f * 160] - 2.0) * 10.0);
            }
            Ok(())
        }

        fn embed(&mut self, mels: &[f32], embedding: &mut [f32]) -> Result<(), ModelError> {
            assert_eq!(mels.len(), EMBEDDING_WINDOW * MEL_BINS);
            embedding.fill(0.0);
            embedding[0] = mels[0];
            embedding[1] = mels[mels.len() - 1];
            Ok(())
        }
    }

    /// A ramp: sample i carries i / 32768 so the probe can read stream positions back.
    fn ramp(n: usize) -> Vec<f32> {
        (0..n).map(|i| i as f32 / 32768.0).collect()
    }

    fn run(chunks: &[usize], total: usize) -> (Vec<f32>, Vec<[f32; 2]>) {
        let mut s = EmbeddingStream::new(Box::new(Probe), 3);
        let audio = ramp(total);
        let (mut frames, mut embs) = (Vec::new(), Vec::new());
        let mut at = 0;
        let mut i = 0;
        while at < total {
            let n = chunks[i % chunks.len()].min(total - at);
            s.push_observed(&audio[at..at + n], &mut |p| match p {
                Produced::MelFrames(f) => frames.extend(f.chunks(MEL_BINS).map(|c| c[0])),
                Produced::Embedding(e) => embs.push([e[0], e[1]]),
            })
            .unwrap();
            at += n;
            i += 1;
        }
        (frames, embs)
    }

    #[test]
    fn frames_sit_on_the_10ms_grid_and_embeddings_read_frames_8j_plus_4_to_8j_plus_79() {
        let total = 13_280 + 2 * 1280 + 100;
        let (frames, embs) = run(&[1280], total);
        let starts: Vec<f32> = (0..frames.len()).map(|f| (f * 160) as f32).collect();
        assert_eq!(frames, starts);
        assert_eq!(embs.len(), embeddings_for_length(total));
        assert_eq!(embs.len(), 3);
        for (j, e) in embs.iter().enumerate() {
            assert_eq!(
                e[0],
                ((8 * j + 4) * 160) as f32,
                "embedding {j} first frame"
            );
            assert_eq!(
                e[1],
                ((8 * j + 79) * 160) as f32,
                "embedding {j} last frame"
            );
        }
    }

    #[test]
    fn the_cut_does_not_depend_on_how_audio_arrives() {
        let total = 40_000;
        let reference = run(&[total], total);
        for chunks in [&[1][..], &[7, 300, 4096], &[1279, 1281], &[160]] {
            assert_eq!(run(chunks, total), reference, "chunks {chunks:?}");
        }
    }

    /// A deterministic stand-in whose every output depends on every input value, counting
    /// its calls (mel, embedding, runs of embeddings).
    #[derive(Clone, Default)]
    struct Counting(std::sync::Arc<[std::sync::atomic::AtomicUsize; 3]>);

    impl Counting {
        fn calls(&self) -> [usize; 3] {
            use std::sync::atomic::Ordering::Relaxed;
            [0, 1, 2].map(|i| self.0[i].load(Relaxed))
        }
    }

    impl SpeechModels for Counting {
        fn mel(&mut self, block: &[f32], frames: &mut [f32]) -> Result<(), ModelError> {
            self.0[0].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let sum: f32 = block
                .iter()
                .enumerate()
                .map(|(i, v)| v * (i % 7) as f32)
                .sum();
            frames
                .iter_mut()
                .enumerate()
                .for_each(|(i, f)| *f = sum + i as f32);
            Ok(())
        }

        fn embed(&mut self, mels: &[f32], embedding: &mut [f32]) -> Result<(), ModelError> {
            self.0[1].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let sum: f32 = mels
                .iter()
                .enumerate()
                .map(|(i, v)| v * (i % 5) as f32)
                .sum();
            embedding
                .iter_mut()
                .enumerate()
                .for_each(|(i, e)| *e = sum - i as f32);
            Ok(())
        }

        fn embed_run(&mut self, frames: &[f32], embeddings: &mut [f32]) -> Result<(), ModelError> {
            self.0[2].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            embed_each(self, frames, embeddings)
        }
    }

    /// Every embedding of `clips`, each streamed as `adapt` streams a take: 16 480 zeros, the
    /// clip, 16 480 zeros.
    fn embeddings_of(models: Box<dyn SpeechModels>, clips: &[Vec<f32>]) -> Vec<f32> {
        let mut s = EmbeddingStream::new(models, 1);
        let mut out = Vec::new();
        for clip in clips {
            let mut audio = vec![0.0f32; 16_480];
            audio.extend_from_slice(clip);
            audio.extend(std::iter::repeat_n(0.0, 16_480));
            s.reset();
            s.push_observed(&audio, &mut |p| {
                if let Produced::Embedding(e) = p {
                    out.extend_from_slice(e);
                }
            })
            .unwrap();
        }
        out
    }

    #[test]
    fn the_silence_memo_changes_no_value_and_saves_the_silent_calls() {
        let clips: Vec<Vec<f32>> = (1..4)
            .map(|k| {
                (0..16_000)
                    .map(|i| ((i * k) % 97) as f32 / 200.0 + 0.01)
                    .collect()
            })
            .collect();
        let plain = Counting::default();
        let reference = embeddings_of(Box::new(plain.clone()), &clips);
        let inner = Counting::default();
        let memo = embeddings_of(Box::new(SilenceMemo::new(inner.clone())), &clips);
        assert_eq!(memo, reference, "the same values, value for value");
        assert_eq!(reference.len(), 3 * 28 * EMBEDDING_DIM);
        // Each clip's 48 960 samples are blocks 0-36, of which 0-11 and 26-36 are silent, and
        // embeddings 0-27, of which 0-2 and 26-27 read only silent blocks (embedding j reads
        // blocks j..=j+9): each computed once, on the first clip.
        let ([pm, pe, _], [mm, me, _]) = (plain.calls(), inner.calls());
        assert_eq!((pm, pe), (3 * 37, 3 * 28));
        assert_eq!((pm - mm, pe - me), (3 * 23 - 1, 0));
    }

    #[test]
    fn the_silence_memo_passes_runs_of_windows_on_whole() {
        // `adapt` pushes its takes through the memo with `push_fresh`: each clip's windows must
        // reach the model as one run (LiteRT's fast path), not one call each.
        let inner = Counting::default();
        let mut s = EmbeddingStream::new(Box::new(SilenceMemo::new(inner.clone())), 1);
        let audio: Vec<f32> = (0..48_960).map(|i| ((i % 97) as f32) / 200.0).collect();
        for _ in 0..2 {
            assert_eq!(s.push_fresh(&audio, &mut |_| {}).unwrap(), 28);
        }
        let [_, single, runs] = inner.calls();
        // Counting's own run computes each window with `embed`, counted as single calls.
        assert_eq!((runs, single), (2, 2 * 28));
    }

    /// Everything a stream gives and keeps for `samples` then `more`: frames, embeddings,
    /// ring, counters.
    type Seen = (Vec<f32>, Vec<f32>, Option<Vec<f32>>, u64, Vec<f32>);

    fn seen(fresh: bool, samples: &[f32], more: &[f32]) -> Seen {
        let mut s = EmbeddingStream::new(Box::new(Counting::default()), 3);
        // Something in the stream before, which both ways must forget.
        s.push(&ramp(20_000)).unwrap();
        let (mut frames, mut embs) = (Vec::new(), Vec::new());
        let mut observe = |p: Produced<'_>| match p {
            Produced::MelFrames(f) => frames.extend_from_slice(f),
            Produced::Embedding(e) => embs.extend_from_slice(e),
        };
        let n = if fresh {
            s.push_fresh(samples, &mut observe).unwrap()
        } else {
            s.reset();
            s.push_observed(samples, &mut observe).unwrap()
        };
        assert_eq!(n, embeddings_for_length(samples.len()));
        let ring = s.ring().map(<[f32]>::to_vec);
        let embeddings = s.embeddings();
        let mut after = Vec::new();
        s.push_observed(more, &mut |p| {
            if let Produced::Embedding(e) = p {
                after.extend_from_slice(e)
            }
        })
        .unwrap();
        (frames, embs, ring, embeddings, after)
    }

    #[test]
    fn a_fresh_push_in_runs_gives_and_keeps_what_reset_and_push_do() {
        let audio: Vec<f32> = (0..60_000)
            .map(|i| ((i * 37) % 101) as f32 / 300.0)
            .collect();
        for len in [
            0,
            100,
            1759,
            1760,
            13_279,
            13_280,
            13_280 + 1279,
            13_280 + 1280,
            59_999,
        ] {
            let (samples, more) = (&audio[..len], &audio[len.min(57_000)..]);
            let want = seen(false, samples, more);
            assert_eq!(seen(true, samples, more), want, "{len} samples");
        }
    }

    #[test]
    fn first_embedding_needs_830_ms_and_the_ring_fills_after_ring_len() {
        assert_eq!(embeddings_for_length(13_279), 0);
        assert_eq!(embeddings_for_length(13_280), 1);
        assert_eq!(embeddings_for_length(13_280 + 1279), 1);
        assert_eq!(embeddings_for_length(13_280 + 1280), 2);
        let mut s = EmbeddingStream::new(Box::new(Probe), 2);
        s.push(&ramp(13_280 + 1279)).unwrap();
        assert!(s.ring().is_none(), "one embedding, ring of two");
        assert_eq!(s.push(&[0.0]).unwrap(), 1);
        let ring = s.ring().expect("two embeddings fill a ring of two");
        assert_eq!(ring.len(), 2 * EMBEDDING_DIM);
        assert_eq!(ring[0], (4 * 160) as f32, "oldest first");
        assert_eq!(ring[EMBEDDING_DIM], (12 * 160) as f32);
        s.reset();
        assert!(s.ring().is_none());
        assert_eq!(s.embeddings(), 0);
    }
}
