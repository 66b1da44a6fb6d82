//! The front end the feature contract names, behind one type: the listener, `evaluate` and
//! `listen` call [`FrontEnd`] and never ask which one it is, so both models share one detector
//! and one evaluation path.
//!
//! * `stft`: [`SlidingFeatures`] over each 1 s window.
//! * `embedding`: an [`EmbeddingStream`] fed the audio each window adds; its ring of the last N
//!   embeddings is the head's input. The keyword frontend's window is exactly the audio those N
//!   embeddings read, so after a reset (or a gap longer than the window) the whole window is fed
//!   and the ring is full again at once.

use std::time::Duration;

use super::embedding::{EmbeddingStream, LiteRtSpeechModels, SpeechModels, BLOCK_SAMPLES};
use super::listener::KwsError;
use super::meta::{FrontEndKind, KwsMeta};
use super::model::ModelError;
use super::sliding::SlidingFeatures;

/// Audio windows in, the classifier's input out.
#[derive(Debug)]
pub enum FrontEnd {
    Stft(SlidingFeatures),
    Embedding(EmbeddingFeatures),
}

impl FrontEnd {
    /// The front end `meta` names; the embedding models are loaded and checked against their
    /// pins here.
    pub fn load(meta: &KwsMeta) -> Result<FrontEnd, KwsError> {
        match (meta.front_end, &meta.embedding, meta.embedding_paths()) {
            (FrontEndKind::Embedding, Some(spec), Some((mel, emb))) => {
                let models =
                    LiteRtSpeechModels::load(&mel, &spec.mel_sha256, &emb, &spec.embedding_sha256)?;
                Ok(Self::embedding(meta, Box::new(models)))
            }
            _ => Ok(FrontEnd::Stft(SlidingFeatures::new(&meta.features)?)),
        }
    }

    /// The embedding front end with any [`SpeechModels`] (tests use stand-ins).
    pub fn embedding(meta: &KwsMeta, models: Box<dyn SpeechModels>) -> FrontEnd {
        let n = meta.embedding.as_ref().map_or(1, |e| e.embeddings);
        FrontEnd::Embedding(EmbeddingFeatures {
            stream: EmbeddingStream::new(models, n),
            window: meta.features.clip_samples,
            last_end: None,
        })
    }

    /// Classifier input for `window`, the last `clip_samples` ending at absolute sample `end`;
    /// `None` while the embedding ring is not full yet.
    pub fn compute(&mut self, window: &[f32], end: u64) -> Result<Option<&[f32]>, KwsError> {
        match self {
            FrontEnd::Stft(s) => Ok(Some(s.compute(window, end)?)),
            FrontEnd::Embedding(e) => Ok(e.compute(window, end)?),
        }
    }

    /// Forgets what was cached: the next window starts afresh.
    pub fn invalidate(&mut self) {
        match self {
            FrontEnd::Stft(s) => s.invalidate(),
            FrontEnd::Embedding(e) => e.invalidate(),
        }
    }

    /// The hop the recognizer uses. STFT: `requested` on the STFT frame grid (see
    /// [`super::listener::hop_on_frame_grid`]). Embedding: always 80 ms, one head run per new
    /// embedding: the head costs far less than the embedding that feeds it, so a longer hop
    /// would only add latency.
    pub fn hop(&self, requested: Duration, meta: &KwsMeta) -> Duration {
        match self {
            FrontEnd::Stft(_) => super::listener::hop_on_frame_grid(requested, &meta.features),
            FrontEnd::Embedding(_) => Duration::from_nanos(
                BLOCK_SAMPLES as u64 * 1_000_000_000 / u64::from(meta.features.sample_rate),
            ),
        }
    }

    /// Classifier input for one clip (16 kHz, [-1, 1)), as the trainer computes it: STFT of the
    /// first `clip_samples` (zero-padded); embedding: the clip centred in a window of
    /// `clip_samples` zeros (cut to its middle if longer), streamed from the start.
    pub fn clip(&mut self, clip: &[f32]) -> Result<&[f32], KwsError> {
        let len = match self {
            FrontEnd::Stft(s) => s.spec().clip_samples,
            FrontEnd::Embedding(e) => e.window,
        };
        let mut padded = vec![0.0f32; len];
        match self {
            FrontEnd::Stft(_) => {
                let n = clip.len().min(len);
                padded[..n].copy_from_slice(&clip[..n]);
            }
            FrontEnd::Embedding(_) => {
                if clip.len() >= len {
                    let skip = (clip.len() - len) / 2;
                    padded.copy_from_slice(&clip[skip..skip + len]);
                } else {
                    let lead = (len - clip.len()) / 2;
                    padded[lead..lead + clip.len()].copy_from_slice(clip);
                }
            }
        }
        let out = match self {
            FrontEnd::Stft(s) => {
                s.invalidate();
                Some(s.compute(&padded, len as u64)?)
            }
            FrontEnd::Embedding(e) => e.fresh(&padded, len as u64)?,
        };
        out.ok_or_else(|| {
            KwsError::Folder(format!(
                "the embedding front end's window ({len} samples) gives fewer embeddings than the head reads; kws.toml is inconsistent"
            ))
        })
    }
}

/// The embedding front end on the keyword frontend's windows.
#[derive(Debug)]
pub struct EmbeddingFeatures {
    stream: EmbeddingStream,
    /// Samples per window (the audio N embeddings read).
    window: usize,
    /// End sample of the last window fed.
    last_end: Option<u64>,
}

impl EmbeddingFeatures {
    fn compute(&mut self, window: &[f32], end: u64) -> Result<Option<&[f32]>, ModelError> {
        let new = match self.last_end {
            Some(last) if end > last && end - last <= window.len() as u64 => {
                &window[window.len() - (end - last) as usize..]
            }
            Some(last) if end == last => &[][..],
            _ => {
                self.stream.reset();
                window
            }
        };
        // Invalid until the models ran: an error mid-way must not leave a half-fed stream.
        self.last_end = None;
        self.stream.push(new)?;
        self.last_end = Some(end);
        Ok(self.stream.ring())
    }

    /// [`Self::compute`] on a window that starts afresh (a clip), with the embeddings
    /// computed in runs ([`EmbeddingStream::push_fresh`]): the same values (to the float
    /// kernels' summation order).
    fn fresh(&mut self, window: &[f32], end: u64) -> Result<Option<&[f32]>, ModelError> {
        self.last_end = None;
        self.stream.push_fresh(window, &mut |_| {})?;
        self.last_end = Some(end);
        Ok(self.stream.ring())
    }

    fn invalidate(&mut self) {
        self.last_end = None;
    }

    /// The stream (for benches and diagnostics).
    pub fn stream(&self) -> &EmbeddingStream {
        &self.stream
    }
}

/// Loads the classifier (the STFT model, or the embedding head, and a `[combine]` head if the
/// contract names one) that `meta` names, each checked against its pin.
pub fn load_classifier(meta: &KwsMeta) -> Result<super::head::Head, ModelError> {
    super::head::Head::load(meta)
}
