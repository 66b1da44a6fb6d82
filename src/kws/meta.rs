//! The feature contract shared with the Python trainer: `models/kws.toml`.
//!
//! The classifier only works if the firmware computes *exactly* the features it was trained
//! on, so the trainer writes its STFT parameters, layout and normalisation next to the model
//! and the firmware reads them instead of hard-coding them. Python reads the same file with
//! `tomllib`. Unknown keys are errors on both sides: a typo must not silently fall back to a
//! default and produce features the model has never seen.
//!
//! Every file the contract names carries its sha256, which the trainer writes and the loader
//! checks before LiteRT sees a byte: a damaged, truncated or swapped file is refused with a
//! message naming it, and the rest of the toy (the button) keeps working.
//!
//! Two front ends (architecture notes, "Two front ends, one recognizer"):
//!
//! ```toml
//! front_end = "stft"       # the default when absent
//! [features]
//! sample_rate = 16000      # Hz
//! clip_samples = 16000     # 1 s window
//! nperseg = 255
//! noverlap = 124           # hop = nperseg - noverlap = 131
//! nfft = 256
//! layout = "bins_frames"   # or "frames_bins"
//! log_epsilon = 1e-6       # optional: x -> ln(x + log_epsilon); absent = no log
//! mean = 0.0               # then (x - mean) / std; defaults 0 and 1
//! std = 1.0
//! [model]
//! file = "kws.tflite"      # relative to the toml's folder
//! sha256 = "…64 hex digits…"
//! labels = "labels.txt"    # one label per line, in output order
//! output = "softmax"       # or "logits"
//! ```
//!
//! ```toml
//! front_end = "embedding"  # openWakeWord's mel + speech embedding (kws::embedding); no [features]
//! [embedding]
//! mel_file = "melspectrogram.tflite"
//! mel_sha256 = "…"
//! embedding_file = "embedding_model.tflite"
//! embedding_sha256 = "…"
//! embeddings = 16          # N: the head reads the last N embeddings (80 ms apart)
//! [model]                  # the head: input [1, N, 96] (or any shape of N * 96 values)
//! file = "head.tflite"
//! sha256 = "…"
//! labels = "labels.txt"
//! output = "softmax"
//! [adapt]                # optional: what `chatterbox adapt` needs (scripts/kws/adapt_pack.py)
//! replay_file = "adapt_replay.bin"   # precomputed training-family embeddings (src/adapt/replay.rs)
//! replay_sha256 = "…"
//! layout_file = "adapt_layout.toml"  # where the head's Dense weights sit in head.tflite
//! layout_sha256 = "…"
//! calibration_file = "adapt_calib.bin"  # optional: the owner threshold is matched on it
//! calibration_sha256 = "…"                # (src/adapt/calibrate.rs)
//! other_words = ["elephant", …]      # said once each when teaching, trained as `unknown`
//! [combine]              # optional (owner models by `chatterbox adapt`): a second head
//! rule = "either"        # a keyword when either head hears it (kws::head); or "max": per
//!                        # class, the larger of the two heads' probabilities
//! file = "shipped_head.tflite"  # relative to the toml's folder, or absolute
//! sha256 = "…"
//! own_threshold = 0.9995 # "either" only: what this head needs; the [combine] head needs
//!                        # [detector] threshold
//! [combine.own_thresholds]  # optional, "either" only: keywords whose own-head threshold
//! yes = 0.98                # differs from own_threshold
//! ```
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Label the classifier uses for "nobody is talking". Never reported as a word.
pub const SILENCE: &str = "silence";
/// Label the classifier uses for "speech, but not one of the keywords". Never reported.
pub const UNKNOWN: &str = "unknown";

/// Whether a label names a word to act on: anything but [`SILENCE`] and [`UNKNOWN`].
pub fn is_keyword(label: &str) -> bool {
    label != SILENCE && label != UNKNOWN
}

/// Largest FFT length accepted in `kws.toml`.
pub const MAX_NFFT: usize = 1 << 16;
/// Largest window accepted in `kws.toml` (a minute at 16 kHz).
pub const MAX_CLIP_SAMPLES: usize = 960_000;

/// Everything that can be wrong with `models/kws.toml` or its labels file. Each message names
/// the file (and the field) and says what is allowed.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("cannot read the keyword model description '{path}': {source}. Train the model (scripts/) or point the config at the folder holding kws.toml")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("'{path}' is not a valid keyword model description: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("'{path}': field `{field}` {problem}")]
    Invalid {
        path: PathBuf,
        field: &'static str,
        problem: String,
    },
    #[error("cannot read the labels file '{path}' (named by `model.labels`): {source}")]
    LabelsRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("labels file '{path}': {problem}")]
    Labels { path: PathBuf, problem: String },
}

/// How the 2-D feature array is laid out in the flat tensor the model takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// Element `[bin][frame]`: scipy's `Zxx` array as it comes (tensor `[1, bins, frames, 1]`).
    BinsFrames,
    /// Element `[frame][bin]`: the transpose (tensor `[1, frames, bins, 1]`).
    FramesBins,
}

/// What the model's output tensor holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelOutput {
    /// Probabilities that already sum to 1.
    Softmax,
    /// Raw scores; the runtime applies a softmax before detection.
    Logits,
}

fn default_mean() -> f32 {
    0.0
}
fn default_std() -> f32 {
    1.0
}

/// The `[features]` table: how to turn 1 s of 16 kHz audio into the model's input.
///
/// The STFT is `scipy.signal.stft(x, fs=sample_rate, nperseg, noverlap, nfft)` with scipy's
/// defaults (periodic Hann, `boundary='zeros'`, `padded=True`, `scaling='spectrum'`), of
/// which only the magnitude is kept.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureSpec {
    /// Sample rate of the audio the features are computed on, in Hz.
    pub sample_rate: u32,
    /// Length of one analysis window in samples (shorter input is zero-padded).
    pub clip_samples: usize,
    /// Segment length of the STFT (the Hann window's length).
    pub nperseg: usize,
    /// Overlap between segments; the hop is `nperseg - noverlap`.
    pub noverlap: usize,
    /// FFT length (each segment is zero-padded to it).
    pub nfft: usize,
    /// Element order of the flat feature tensor.
    pub layout: Layout,
    /// If present, magnitudes become `ln(x + log_epsilon)`.
    #[serde(default)]
    pub log_epsilon: Option<f32>,
    /// Subtracted after the log (if any).
    #[serde(default = "default_mean")]
    pub mean: f32,
    /// Divides after subtracting `mean`; must be > 0.
    #[serde(default = "default_std")]
    pub std: f32,
}

impl Default for FeatureSpec {
    /// The values the project trains with: 1 s at 16 kHz, 255/124/256, scipy's layout.
    fn default() -> Self {
        FeatureSpec {
            sample_rate: 16_000,
            clip_samples: 16_000,
            nperseg: 255,
            noverlap: 124,
            nfft: 256,
            layout: Layout::BinsFrames,
            log_epsilon: None,
            mean: 0.0,
            std: 1.0,
        }
    }
}

impl FeatureSpec {
    /// Number of frequency bins of the one-sided spectrum: `nfft / 2 + 1`.
    pub fn bins(&self) -> usize {
        self.nfft / 2 + 1
    }

    /// Distance between segment starts, in samples.
    pub fn hop(&self) -> usize {
        self.nperseg.saturating_sub(self.noverlap).max(1)
    }

    /// Zeros scipy adds on each side with `boundary='zeros'`.
    pub fn boundary_pad(&self) -> usize {
        self.nperseg / 2
    }

    /// Number of STFT frames for one window, computed as scipy does with
    /// `boundary='zeros', padded=True`: extend by `nperseg//2` zeros each side, then pad
    /// with zeros to a whole number of hops, then count segments.
    pub fn frames(&self) -> usize {
        let extended = self.clip_samples + 2 * self.boundary_pad();
        if extended < self.nperseg {
            // Unreachable for a validated spec (clip_samples >= nperseg).
            return 0;
        }
        let hop = self.hop();
        // Python: nadd = (-(len - nperseg) % nstep) % nperseg, with a floor modulo.
        let nadd = ((hop - (extended - self.nperseg) % hop) % hop) % self.nperseg;
        (extended + nadd - self.nperseg) / hop + 1
    }

    /// Frames that lie wholly inside the signal (no boundary or end padding), as a range:
    /// their values depend only on the audio under them, so a window that slides by a
    /// whole number of hops can reuse them (see `kws::sliding`).
    pub fn interior_frames(&self) -> std::ops::Range<usize> {
        let hop = self.hop();
        let pad = self.boundary_pad();
        let first = pad.div_ceil(hop);
        let end = match (self.clip_samples + pad).checked_sub(self.nperseg) {
            Some(room) => (room / hop + 1).min(self.frames()),
            None => 0,
        };
        first..end.max(first)
    }

    /// The declared transform, in place: `ln(x + log_epsilon)` if declared, then
    /// `(x - mean) / std`.
    pub fn transform(&self, values: &mut [f32]) {
        let inv_std = 1.0 / self.std;
        let mean = self.mean;
        match self.log_epsilon {
            Some(eps) => super::ln::ln_affine_in_place(values, eps, mean, inv_std),
            None if mean == 0.0 && self.std == 1.0 => {}
            None => values.iter_mut().for_each(|v| *v = (*v - mean) * inv_std),
        }
    }

    /// Number of values in one feature tensor: `bins() * frames()`.
    pub fn len(&self) -> usize {
        self.bins() * self.frames()
    }

    /// True if the spec describes an empty tensor (never for a validated spec).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks the values scipy itself would refuse, and those that make no sense for us.
    /// Returns the offending field and what is allowed.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.sample_rate == 0 {
            return Err((
                "features.sample_rate",
                "must be > 0 (Hz), e.g. 16000".into(),
            ));
        }
        if self.nperseg < 2 {
            return Err((
                "features.nperseg",
                format!("is {}; it must be at least 2", self.nperseg),
            ));
        }
        if self.clip_samples < self.nperseg {
            // scipy silently shrinks nperseg for such short input; refuse instead.
            return Err((
                "features.clip_samples",
                format!(
                    "is {} but must be >= nperseg ({}), e.g. 16000 for 1 s at 16 kHz",
                    self.clip_samples, self.nperseg
                ),
            ));
        }
        // Upper bounds only guard against absurd files allocating gigabytes.
        if self.nfft > MAX_NFFT {
            return Err((
                "features.nfft",
                format!("is {}; at most {MAX_NFFT} is supported", self.nfft),
            ));
        }
        if self.clip_samples > MAX_CLIP_SAMPLES {
            return Err((
                "features.clip_samples",
                format!(
                    "is {}; at most {MAX_CLIP_SAMPLES} is supported",
                    self.clip_samples
                ),
            ));
        }
        if self.nfft < self.nperseg {
            return Err((
                "features.nfft",
                format!(
                    "is {} but must be >= nperseg ({}), as scipy requires",
                    self.nfft, self.nperseg
                ),
            ));
        }
        if self.noverlap >= self.nperseg {
            return Err((
                "features.noverlap",
                format!(
                    "is {} but must be < nperseg ({}), as scipy requires",
                    self.noverlap, self.nperseg
                ),
            ));
        }
        if let Some(eps) = self.log_epsilon {
            if !(eps.is_finite() && eps > 0.0) {
                return Err((
                    "features.log_epsilon",
                    format!("is {eps}; it must be a finite number > 0 (e.g. 1e-6), or be left out for no log"),
                ));
            }
        }
        if !self.mean.is_finite() {
            return Err(("features.mean", "must be a finite number".into()));
        }
        if !(self.std.is_finite() && self.std > 0.0) {
            return Err((
                "features.std",
                format!("is {}; it must be a finite number > 0", self.std),
            ));
        }
        Ok(())
    }
}

/// The `[model]` table: which files hold the network and its labels.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// The `.tflite` file, relative to the folder of `kws.toml` (see [`KwsMeta::model_path`]).
    pub file: PathBuf,
    /// The file's sha256 (hex), written by the trainer; checked before the model is parsed.
    #[serde(default)]
    pub sha256: String,
    /// The labels file, relative to the folder of `kws.toml`.
    pub labels: PathBuf,
    /// Whether the output tensor is already a softmax.
    pub output: ModelOutput,
}

/// Which front end turns audio into the classifier's input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FrontEndKind {
    /// scipy-exact STFT of a 1 s window (`kws::features`, `kws::sliding`), `[features]`.
    #[default]
    Stft,
    /// openWakeWord's mel + speech-embedding models (`kws::embedding`), `[embedding]`.
    Embedding,
}

/// Largest `embedding.embeddings` accepted: 10 s of embeddings.
pub const MAX_EMBEDDINGS: usize = 125;

/// The `[embedding]` table: the two pinned feature models and how many embeddings the head reads.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingSpec {
    /// `melspectrogram.tflite`, relative to the toml's folder.
    pub mel_file: PathBuf,
    #[serde(default)]
    pub mel_sha256: String,
    /// `embedding_model.tflite`, relative to the toml's folder.
    pub embedding_file: PathBuf,
    #[serde(default)]
    pub embedding_sha256: String,
    /// N: the head's input is the last N embeddings (one per 80 ms), oldest first.
    pub embeddings: usize,
}

/// The optional `[adapt]` table: the replay set and the head's weight layout that
/// `chatterbox adapt` reads (written and pinned by `scripts/kws/adapt_pack.py`). Only the
/// embedding front end has it; a model without it simply cannot be adapted.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdaptSpec {
    /// `adapt_replay.bin`, relative to the toml's folder.
    pub replay_file: PathBuf,
    #[serde(default)]
    pub replay_sha256: String,
    /// `adapt_layout.toml`, relative to the toml's folder.
    pub layout_file: PathBuf,
    #[serde(default)]
    pub layout_sha256: String,
    /// `adapt_calib.bin`, relative to the toml's folder: the calibration stream the owner
    /// model's detector threshold is matched on (`crate::adapt::calibrate`). Optional: without
    /// it the owner model gets the fixed stricter threshold of `owner_threshold`.
    #[serde(default)]
    pub calibration_file: Option<PathBuf>,
    #[serde(default)]
    pub calibration_sha256: String,
    /// Words that are not commands, which teaching asks the owner to say once each after the
    /// keywords; kept as `unknown` takes. Why: a head taught only the owner's keywords starts
    /// hearing keywords in whatever else that voice says. Words the head never trained or was
    /// measured on (`scripts/kws/config.py` ENROLL_OTHER_WORDS). Empty: none are asked for.
    #[serde(default)]
    pub other_words: Vec<String>,
}

/// How [`CombineSpec`] joins the two heads' outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CombineRule {
    /// Class by class, the larger of the two probabilities (`kws::head::max_into`).
    Max,
    /// A keyword is heard when either head hears it: the second head at the detector's
    /// threshold, the model's own at [`CombineSpec::own_threshold_of`] that keyword; `silence` and `unknown`
    /// need both heads (`kws::head::Either::join_into`, for single windows). The recognizer
    /// runs the two heads through two detectors side by side (`kws::either_detector`).
    Either,
}

/// The optional `[combine]` table: a second head over the same input, whose probabilities
/// are joined with the model's own by `rule`. `chatterbox adapt` writes it into owner models
/// to keep a copy of the shipped head the adapted one came from (`crate::adapt::plan` says
/// why). The second head must read the same input (checked at load) and give the same
/// labels in the same order (only their count is checked: it is read with this contract's
/// labels file).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CombineSpec {
    pub rule: CombineRule,
    /// The second head's `.tflite`, relative to the toml's folder (or absolute).
    pub file: PathBuf,
    #[serde(default)]
    pub sha256: String,
    /// [`CombineRule::Either`] only: the averaged probability the model's own head needs for
    /// a keyword, where the second head needs the detector's threshold.
    #[serde(default)]
    pub own_threshold: Option<f32>,
    /// [`CombineRule::Either`] only: own-head thresholds of the keywords it names, in place
    /// of `own_threshold` (`[combine.own_thresholds]`, `go = 0.998`). `chatterbox adapt`
    /// matches each keyword's on its own (`adapt::calibrate::matched_either`) and names every
    /// keyword.
    #[serde(default)]
    pub own_thresholds: std::collections::BTreeMap<String, f32>,
}

impl CombineSpec {
    /// The own head's threshold for `label`: its entry in `own_thresholds`, else
    /// `own_threshold` (`None` for a `max` rule).
    pub fn own_threshold_of(&self, label: &str) -> Option<f32> {
        self.own_thresholds
            .get(label)
            .copied()
            .or(self.own_threshold)
    }
}

/// The optional `[detector]` table: what the model was tuned to on the validation streams
/// (`cargo bench --bench kws_stream_eval -- --tune`), used while `keywords.threshold` is
/// `"model"` (the default). A model without it gets the config's defaults.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorSpec {
    /// The averaged score a word needs, 0..1.
    pub threshold: Option<f32>,
}

/// `models/kws.toml` as written: `[features]` for the STFT front end, `[embedding]` for the
/// other; checked and turned into [`KwsMeta`] by [`KwsMeta::parse`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MetaFile {
    #[serde(default)]
    front_end: FrontEndKind,
    features: Option<FeatureSpec>,
    embedding: Option<EmbeddingSpec>,
    model: ModelSpec,
    adapt: Option<AdaptSpec>,
    combine: Option<CombineSpec>,
    #[serde(default)]
    detector: DetectorSpec,
}

/// `models/kws.toml` once loaded and checked, with its labels.
#[derive(Clone, Debug, PartialEq)]
pub struct KwsMeta {
    pub front_end: FrontEndKind,
    /// The STFT settings; for the embedding front end, a 16 kHz spec whose `clip_samples` is the
    /// audio the head's N embeddings cover (what the keyword frontend keeps as its window).
    pub features: FeatureSpec,
    /// The embedding front end's files and N (`Some` exactly when `front_end` is `embedding`).
    pub embedding: Option<EmbeddingSpec>,
    pub model: ModelSpec,
    /// What `chatterbox adapt` needs (`None`: this model cannot be adapted).
    pub adapt: Option<AdaptSpec>,
    /// A second head joined with the model's own (`None`: the model is its own head alone).
    pub combine: Option<CombineSpec>,
    /// The detector settings the model was tuned to (`[detector]`, optional).
    pub detector: DetectorSpec,
    /// The labels, in the model's output order (from `model.labels`).
    pub labels: Vec<String>,
    /// The folder the toml was read from; `model.file` and `model.labels` are relative to it.
    pub dir: PathBuf,
}

impl KwsMeta {
    /// Reads `path`, checks every field, and reads the labels file it names.
    pub fn load(path: impl AsRef<Path>) -> Result<KwsMeta, MetaError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| MetaError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let mut meta = Self::parse(&text, path)?;
        meta.dir = dir;
        let labels_path = meta.labels_path();
        let labels_text =
            std::fs::read_to_string(&labels_path).map_err(|source| MetaError::LabelsRead {
                path: labels_path.clone(),
                source,
            })?;
        meta.labels = parse_labels(&labels_text).map_err(|problem| MetaError::Labels {
            path: labels_path,
            problem,
        })?;
        // Neither a label nor holding one ("go home"): the owner's keyword would be trained
        // as not a command.
        let has_label = |w: &String| {
            std::iter::once(w.trim())
                .chain(w.split_whitespace())
                .any(|part| meta.labels.iter().any(|l| l.eq_ignore_ascii_case(part)))
        };
        if let Some(w) = meta
            .combine
            .iter()
            .flat_map(|c| c.own_thresholds.keys())
            .find(|w| !(is_keyword(w) && meta.labels.iter().any(|l| l == *w)))
        {
            return Err(MetaError::Invalid {
                path: path.to_path_buf(),
                field: "combine.own_thresholds",
                problem: format!("names '{w}', which is not a keyword of the model's labels; remove it or rerun `chatterbox adapt`"),
            });
        }
        let mut other = meta.adapt.iter().flat_map(|a| &a.other_words);
        if let Some(w) = other.find(|w| has_label(w)) {
            return Err(MetaError::Invalid {
                path: path.to_path_buf(),
                field: "adapt.other_words",
                problem: format!("holds '{w}', a label of the model: the owner's takes of it would be trained as not a command; remove it"),
            });
        }
        Ok(meta)
    }

    /// Parses and checks the toml text alone (no labels are read; `labels` stays empty and
    /// `dir` is empty). `origin` only names the text in error messages.
    pub fn parse(text: &str, origin: &Path) -> Result<KwsMeta, MetaError> {
        let raw: MetaFile = toml::from_str(text).map_err(|source| MetaError::Parse {
            path: origin.to_path_buf(),
            source,
        })?;
        let invalid = |field: &'static str, problem: String| MetaError::Invalid {
            path: origin.to_path_buf(),
            field,
            problem,
        };
        let features = match (raw.front_end, raw.features, &raw.embedding) {
            (FrontEndKind::Stft, Some(f), None) => f,
            (FrontEndKind::Stft, None, _) => {
                return Err(invalid(
                    "features",
                    "is missing; the stft front end needs the [features] table the trainer writes"
                        .into(),
                ))
            }
            (FrontEndKind::Stft, Some(_), Some(_)) => {
                return Err(invalid(
                    "embedding",
                    "is only for front_end = \"embedding\"; remove it or set front_end".into(),
                ))
            }
            (FrontEndKind::Embedding, Some(_), _) => {
                return Err(invalid(
                    "features",
                    "is only for front_end = \"stft\"; the embedding front end has fixed settings"
                        .into(),
                ))
            }
            (FrontEndKind::Embedding, None, None) => {
                return Err(invalid(
                    "embedding",
                    "is missing; front_end = \"embedding\" needs the [embedding] table (mel_file, mel_sha256, embedding_file, embedding_sha256, embeddings)".into(),
                ))
            }
            (FrontEndKind::Embedding, None, Some(e)) => embedding_window_spec(e.embeddings),
        };
        features
            .validate()
            .map_err(|(field, problem)| invalid(field, problem))?;
        if raw.model.file.as_os_str().is_empty() {
            return Err(invalid(
                "model.file",
                "is empty; name the .tflite file, e.g. \"kws.tflite\"".into(),
            ));
        }
        check_pin("model.sha256", &raw.model.sha256, &raw.model.file)
            .map_err(|p| invalid("model.sha256", p))?;
        if raw.model.labels.as_os_str().is_empty() {
            return Err(invalid(
                "model.labels",
                "is empty; name the labels file, e.g. \"labels.txt\"".into(),
            ));
        }
        if let Some(e) = &raw.embedding {
            if e.embeddings == 0 || e.embeddings > MAX_EMBEDDINGS {
                return Err(invalid(
                    "embedding.embeddings",
                    format!(
                        "is {}; it must be 1..={MAX_EMBEDDINGS} (the head's N, e.g. 16)",
                        e.embeddings
                    ),
                ));
            }
            for (field, file) in [
                ("embedding.mel_file", &e.mel_file),
                ("embedding.embedding_file", &e.embedding_file),
            ] {
                if file.as_os_str().is_empty() {
                    return Err(invalid(field, "is empty; name the .tflite file".into()));
                }
            }
            check_pin("embedding.mel_sha256", &e.mel_sha256, &e.mel_file)
                .map_err(|p| invalid("embedding.mel_sha256", p))?;
            check_pin(
                "embedding.embedding_sha256",
                &e.embedding_sha256,
                &e.embedding_file,
            )
            .map_err(|p| invalid("embedding.embedding_sha256", p))?;
        }
        if let Some(a) = &raw.adapt {
            if raw.front_end != FrontEndKind::Embedding {
                return Err(invalid(
                    "adapt",
                    "is only for front_end = \"embedding\" (only its head can be adapted); remove it".into(),
                ));
            }
            let calibration = a
                .calibration_file
                .as_ref()
                .map(|f| ("adapt.calibration_sha256", f, &a.calibration_sha256));
            for (field, file, pin) in [
                ("adapt.replay_sha256", &a.replay_file, &a.replay_sha256),
                ("adapt.layout_sha256", &a.layout_file, &a.layout_sha256),
            ]
            .into_iter()
            .chain(calibration)
            {
                if file.as_os_str().is_empty() {
                    return Err(invalid(
                        field,
                        "names an empty file; rerun scripts/kws/adapt_pack.py".into(),
                    ));
                }
                check_pin(field, pin, file).map_err(|p| invalid(field, p))?;
            }
            if let Some(w) = a
                .other_words
                .iter()
                .find(|w| w.trim().is_empty() || w.chars().count() > 12)
            {
                return Err(invalid(
                    "adapt.other_words",
                    format!("holds {w:?}; each must be a word or two of at most 12 letters (the most the toy's screen shows whole)"),
                ));
            }
        }
        if let Some(c) = &raw.combine {
            if c.file.as_os_str().is_empty() {
                return Err(invalid(
                    "combine.file",
                    "is empty; name the second head's .tflite file".into(),
                ));
            }
            check_pin("combine.sha256", &c.sha256, &c.file)
                .map_err(|p| invalid("combine.sha256", p))?;
            match (c.rule, c.own_threshold) {
                (CombineRule::Either, None) => {
                    return Err(invalid(
                        "combine.own_threshold",
                        "is missing; rule = \"either\" needs the threshold of the model's own head".into(),
                    ))
                }
                (CombineRule::Either, Some(t)) if !(t > 0.0 && t < 1.0) => {
                    return Err(invalid(
                        "combine.own_threshold",
                        format!("is {t}; it must lie between 0 and 1 (exclusive)"),
                    ))
                }
                (CombineRule::Either, Some(_)) if raw.detector.threshold.is_none() => {
                    return Err(invalid(
                        "detector.threshold",
                        "is missing; rule = \"either\" in [combine] needs the threshold the second head is heard at".into(),
                    ))
                }
                (CombineRule::Max, Some(_)) => {
                    return Err(invalid(
                        "combine.own_threshold",
                        "is set, but only rule = \"either\" reads it; remove it".into(),
                    ))
                }
                _ => {}
            }
            if c.rule == CombineRule::Max && !c.own_thresholds.is_empty() {
                return Err(invalid(
                    "combine.own_thresholds",
                    "is set, but only rule = \"either\" reads it; remove it".into(),
                ));
            }
            if let Some((w, t)) = c
                .own_thresholds
                .iter()
                .find(|(_, t)| !(**t > 0.0 && **t < 1.0))
            {
                return Err(invalid(
                    "combine.own_thresholds",
                    format!("gives '{w}' {t}; each must lie between 0 and 1 (exclusive)"),
                ));
            }
        }
        if let Some(t) = raw.detector.threshold {
            if !(t > 0.0 && t < 1.0) {
                return Err(invalid(
                    "detector.threshold",
                    format!("is {t}; it must lie between 0 and 1 (exclusive)"),
                ));
            }
        }
        Ok(KwsMeta {
            front_end: raw.front_end,
            features,
            embedding: raw.embedding,
            model: raw.model,
            adapt: raw.adapt,
            combine: raw.combine,
            detector: raw.detector,
            labels: Vec::new(),
            dir: PathBuf::new(),
        })
    }

    /// Where the `.tflite` file is: `model.file` resolved against the toml's folder.
    pub fn model_path(&self) -> PathBuf {
        self.dir.join(&self.model.file)
    }

    /// Where the labels file is: `model.labels` resolved against the toml's folder.
    pub fn labels_path(&self) -> PathBuf {
        self.dir.join(&self.model.labels)
    }

    /// The replay set and layout paths of `[adapt]`, resolved against the toml's folder.
    pub fn adapt_paths(&self) -> Option<(PathBuf, PathBuf)> {
        self.adapt
            .as_ref()
            .map(|a| (self.dir.join(&a.replay_file), self.dir.join(&a.layout_file)))
    }

    /// The calibration stream of `[adapt]`, resolved against the toml's folder, if it names
    /// one.
    pub fn calibration_path(&self) -> Option<PathBuf> {
        let a = self.adapt.as_ref()?;
        a.calibration_file.as_ref().map(|f| self.dir.join(f))
    }

    /// The `[combine]` table's second head, resolved against the toml's folder (an absolute
    /// path stays as it is).
    pub fn combine_path(&self) -> Option<PathBuf> {
        self.combine.as_ref().map(|c| self.dir.join(&c.file))
    }

    /// The embedding front end's mel and embedding model paths, resolved against the toml's
    /// folder (`None` for the STFT front end).
    pub fn embedding_paths(&self) -> Option<(PathBuf, PathBuf)> {
        self.embedding
            .as_ref()
            .map(|e| (self.dir.join(&e.mel_file), self.dir.join(&e.embedding_file)))
    }
}

/// The keyword frontend's window for the embedding front end: the audio N embeddings read,
/// 13 280 samples for the first and 1 280 more for each further one.
fn embedding_window_spec(embeddings: usize) -> FeatureSpec {
    use super::embedding::{BLOCK_SAMPLES, MEL_CALL_SAMPLES};
    let first = (super::embedding::EMBEDDING_WINDOW / super::embedding::MEL_FRAMES_PER_BLOCK)
        * BLOCK_SAMPLES
        + MEL_CALL_SAMPLES;
    FeatureSpec {
        sample_rate: super::embedding::SAMPLE_RATE,
        clip_samples: first + embeddings.saturating_sub(1) * BLOCK_SAMPLES,
        ..FeatureSpec::default()
    }
}

/// A pin must be 64 hex digits. The message says how to make one.
fn check_pin(field: &str, pin: &str, file: &Path) -> Result<(), String> {
    let pin = pin.trim();
    if pin.is_empty() {
        return Err(format!(
            "is missing: every model file must be pinned by its sha256. Retrain (the trainer writes it) or, for a file you trust, run `sha256sum {}` and write `{field} = \"<hex>\"`",
            file.display()
        ));
    }
    if pin.len() != 64 || !pin.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "is '{pin}', not a sha256 (64 hex digits as `sha256sum {}` prints)",
            file.display()
        ));
    }
    Ok(())
}

/// One label per line, in output order. Trailing blank lines are ignored; a blank line in
/// the middle is an error because it would shift every label after it.
pub fn parse_labels(text: &str) -> Result<Vec<String>, String> {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let used = lines
        .iter()
        .rposition(|l| !l.is_empty())
        .map_or(0, |last| last + 1);
    let mut labels: Vec<String> = Vec::with_capacity(used);
    for (i, line) in lines[..used].iter().enumerate() {
        if line.is_empty() {
            return Err(format!(
                "line {} is blank; write one label per line with no gaps",
                i + 1
            ));
        }
        if labels.iter().any(|l| l == line) {
            return Err(format!("label '{line}' appears twice (line {})", i + 1));
        }
        labels.push((*line).to_string());
    }
    for required in [SILENCE, UNKNOWN] {
        if !labels.iter().any(|l| l == required) {
            return Err(format!(
                "has no '{required}' label; the model must have both '{SILENCE}' and '{UNKNOWN}' classes"
            ));
        }
    }
    if labels.len() < 3 {
        return Err("has no keyword besides 'silence' and 'unknown'".into());
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_geometry_matches_scipy() {
        let spec = FeatureSpec::default();
        assert_eq!(spec.bins(), 129);
        // scipy.signal.stft(np.zeros(16000), nperseg=255, noverlap=124, nfft=256)[2].shape
        assert_eq!(spec.frames(), 124);
        assert_eq!(spec.hop(), 131);
    }

    #[test]
    fn frames_follow_scipy_padding_for_other_lengths() {
        // Printed by scipy 1.15.3: stft(np.zeros(len), nperseg=, noverlap=, nfft=)[2].shape[1]
        let cases = [
            (8000, 255, 124, 256, 63),
            (255, 255, 124, 256, 3),
            (16000, 256, 128, 256, 126),
            (100, 16, 8, 16, 14),
            (1000, 64, 0, 64, 17),
            (999, 100, 99, 128, 1000),
        ];
        for (len, nperseg, noverlap, nfft, want) in cases {
            let spec = FeatureSpec {
                clip_samples: len,
                nperseg,
                noverlap,
                nfft,
                ..FeatureSpec::default()
            };
            assert_eq!(spec.frames(), want, "len {len} nperseg {nperseg}");
        }
    }

    /// A whole embedding contract, every pin 64 hex digits, for the optional tables' tests.
    fn embedding_toml() -> String {
        format!(
            "front_end = \"embedding\"\n[embedding]\nmel_file = \"m\"\nmel_sha256 = \"{p}\"\nembedding_file = \"e\"\nembedding_sha256 = \"{p}\"\nembeddings = 16\n[model]\nfile = \"h\"\nsha256 = \"{p}\"\nlabels = \"l\"\noutput = \"softmax\"\n",
            p = "a".repeat(64)
        )
    }

    #[test]
    fn the_adapt_table_is_optional_pinned_and_strict() {
        let base = embedding_toml();
        let origin = Path::new("kws.toml");
        assert!(KwsMeta::parse(&base, origin).unwrap().adapt.is_none());
        let table = format!(
            "[adapt]\nreplay_file = \"r\"\nreplay_sha256 = \"{p}\"\nlayout_file = \"l\"\nlayout_sha256 = \"{p}\"\n",
            p = "b".repeat(64)
        );
        let with = KwsMeta::parse(&format!("{base}{table}"), origin).unwrap();
        assert_eq!(with.adapt.unwrap().replay_file, Path::new("r"));
        let typo = table.replace("replay_file", "replay_fil");
        assert!(KwsMeta::parse(&format!("{base}{typo}"), origin).is_err());
        let unpinned = table.replace(&format!("layout_sha256 = \"{}\"\n", "b".repeat(64)), "");
        let err = KwsMeta::parse(&format!("{base}{unpinned}"), origin)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("adapt.layout_sha256") && err.contains("missing"),
            "{err}"
        );
        // The owner's other words: optional, shown on the screen, never a label.
        assert!(KwsMeta::parse(&format!("{base}{table}"), origin)
            .unwrap()
            .adapt
            .unwrap()
            .other_words
            .is_empty());
        let other = format!("{base}{table}other_words = [\"rainbow\", \"lunch time\"]\n");
        let parsed = KwsMeta::parse(&other, origin).unwrap().adapt.unwrap();
        assert_eq!(parsed.other_words, ["rainbow", "lunch time"]);
        for bad in ["\"\"", "\"far too long to show\""] {
            let text = format!("{base}{table}other_words = [{bad}]\n");
            let err = KwsMeta::parse(&text, origin).unwrap_err().to_string();
            assert!(err.contains("adapt.other_words"), "{err}");
        }
    }

    #[test]
    fn the_combine_table_is_optional_pinned_and_names_its_rule() {
        let base = embedding_toml();
        let origin = Path::new("kws.toml");
        assert!(KwsMeta::parse(&base, origin).unwrap().combine.is_none());
        let table = format!(
            "[combine]\nrule = \"max\"\nfile = \"/models/head.tflite\"\nsha256 = \"{}\"\n",
            "c".repeat(64)
        );
        let mut meta = KwsMeta::parse(&format!("{base}{table}"), origin).unwrap();
        assert_eq!(meta.combine.as_ref().unwrap().rule, CombineRule::Max);
        // An absolute path stays as it is; a relative one is the toml's folder's.
        meta.dir = PathBuf::from("/state/models-owner");
        assert_eq!(
            meta.combine_path().unwrap(),
            Path::new("/models/head.tflite")
        );
        let relative = table.replace("/models/head.tflite", "shipped.tflite");
        let mut meta = KwsMeta::parse(&format!("{base}{relative}"), origin).unwrap();
        meta.dir = PathBuf::from("/state/models-owner");
        assert_eq!(
            meta.combine_path().unwrap(),
            Path::new("/state/models-owner/shipped.tflite")
        );
        // Only the rules the runtime knows; every file pinned; no empty name.
        let mean = table.replace("\"max\"", "\"mean\"");
        let err = KwsMeta::parse(&format!("{base}{mean}"), origin)
            .unwrap_err()
            .to_string();
        assert!(err.contains("mean") && err.contains("max"), "{err}");
        let unpinned = table.replace(&format!("sha256 = \"{}\"\n", "c".repeat(64)), "");
        let err = KwsMeta::parse(&format!("{base}{unpinned}"), origin)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("combine.sha256") && err.contains("missing"),
            "{err}"
        );
        let empty = table.replace("/models/head.tflite", "");
        let err = KwsMeta::parse(&format!("{base}{empty}"), origin)
            .unwrap_err()
            .to_string();
        assert!(err.contains("combine.file"), "{err}");
        // `either` names the adapted head's own threshold, and needs the detector's.
        let either = table.replace("\"max\"", "\"either\"");
        let with_detector = |t: &str| format!("{base}[detector]\nthreshold = 0.984\n{t}");
        let meta = KwsMeta::parse(
            &with_detector(&format!("{either}own_threshold = 0.9995\n")),
            origin,
        )
        .unwrap();
        let c = meta.combine.unwrap();
        assert_eq!(
            (c.rule, c.own_threshold),
            (CombineRule::Either, Some(0.9995))
        );
        let err = KwsMeta::parse(&with_detector(&either), origin)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("combine.own_threshold") && err.contains("missing"),
            "{err}"
        );
        let err = KwsMeta::parse(
            &with_detector(&format!("{either}own_threshold = 1.0\n")),
            origin,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("combine.own_threshold") && err.contains("between"),
            "{err}"
        );
        let err = KwsMeta::parse(&format!("{base}{either}own_threshold = 0.999\n"), origin)
            .unwrap_err()
            .to_string();
        assert!(err.contains("detector.threshold"), "{err}");
        let err = KwsMeta::parse(
            &with_detector(&format!("{table}own_threshold = 0.999\n")),
            origin,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("only rule = \"either\""), "{err}");
        // Per-keyword thresholds override `own_threshold` for the words they name.
        let per_word = |t: &str| {
            with_detector(&format!(
                "{either}own_threshold = 0.9995\n[combine.own_thresholds]\n{t}"
            ))
        };
        let c = KwsMeta::parse(&per_word("go = 0.99\n"), origin)
            .unwrap()
            .combine
            .unwrap();
        assert_eq!(
            (c.own_threshold_of("go"), c.own_threshold_of("no")),
            (Some(0.99), Some(0.9995))
        );
        for bad in ["go = 1.0\n", "go = 0.0\n", "go = nan\n"] {
            let err = KwsMeta::parse(&per_word(bad), origin)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("combine.own_thresholds") && err.contains("between"),
                "{bad}: {err}"
            );
        }
        let err = KwsMeta::parse(
            &format!("{base}{table}[combine.own_thresholds]\ngo = 0.99\n"),
            origin,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("combine.own_thresholds") && err.contains("only rule"),
            "{err}"
        );
    }

    /// Writes `bytes` to `dir/name` and returns its sha256 pin.
    fn pinned(dir: &Path, name: &str, bytes: &[u8]) -> String {
        std::fs::write(dir.join(name), bytes).unwrap();
        crate::kws::model::sha256_hex(bytes)
    }

    /// A folder with pinned mel, embedding and head files ("m", "e", "h") and a labels file
    /// (go, stop, unknown, silence), and the contract's text up to the end of `[model]`.
    fn embedding_model_dir() -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let pin = |name: &str, bytes: &[u8]| pinned(dir.path(), name, bytes);
        let (m, e, h) = (pin("m", b"mel"), pin("e", b"emb"), pin("h", b"head"));
        std::fs::write(
            dir.path().join("labels.txt"),
            "go\nstop\nunknown\nsilence\n",
        )
        .unwrap();
        let head = format!(
            "front_end = \"embedding\"\n[embedding]\nmel_file = \"m\"\nmel_sha256 = \"{m}\"\nembedding_file = \"e\"\nembedding_sha256 = \"{e}\"\nembeddings = 16\n[model]\nfile = \"h\"\nsha256 = \"{h}\"\nlabels = \"labels.txt\"\noutput = \"softmax\"\n"
        );
        (dir, head)
    }

    #[test]
    fn an_other_word_that_is_a_label_is_refused_at_load() {
        let (dir, head) = embedding_model_dir();
        let (r, l) = (
            pinned(dir.path(), "r", b"replay"),
            pinned(dir.path(), "lay", b"layout"),
        );
        let toml = |other: &str| {
            format!(
                "{head}[adapt]\nreplay_file = \"r\"\nreplay_sha256 = \"{r}\"\nlayout_file = \"lay\"\nlayout_sha256 = \"{l}\"\nother_words = [{other}]\n"
            )
        };
        let path = dir.path().join("kws.toml");
        std::fs::write(&path, toml("\"rainbow\"")).unwrap();
        KwsMeta::load(&path).expect("a word the model does not know");
        for bad in ["Stop", "go home"] {
            std::fs::write(&path, toml(&format!("\"rainbow\", \"{bad}\""))).unwrap();
            let err = KwsMeta::load(&path).unwrap_err().to_string();
            assert!(
                err.contains("adapt.other_words") && err.contains(bad),
                "{err}"
            );
        }
    }

    #[test]
    fn a_per_word_threshold_must_name_a_keyword_of_the_labels() {
        let (dir, head) = embedding_model_dir();
        let s = pinned(dir.path(), "s", b"shipped");
        let toml = |word: &str| {
            format!(
                "{head}[detector]\nthreshold = 0.98\n[combine]\nrule = \"either\"\nfile = \"s\"\nsha256 = \"{s}\"\nown_threshold = 0.999\n[combine.own_thresholds]\n{word} = 0.99\n"
            )
        };
        let path = dir.path().join("kws.toml");
        std::fs::write(&path, toml("stop")).unwrap();
        let meta = KwsMeta::load(&path).expect("a keyword of the labels");
        assert_eq!(meta.combine.unwrap().own_threshold_of("stop"), Some(0.99));
        for bad in ["left", "unknown"] {
            std::fs::write(&path, toml(bad)).unwrap();
            let err = KwsMeta::load(&path).unwrap_err().to_string();
            assert!(
                err.contains("combine.own_thresholds") && err.contains(bad),
                "{err}"
            );
        }
    }

    #[test]
    fn labels_need_silence_unknown_and_no_gaps() {
        assert!(parse_labels("silence\nunknown\ngo\n\n").is_ok());
        assert!(parse_labels("silence\ngo\n")
            .unwrap_err()
            .contains("unknown"));
        assert!(parse_labels("silence\n\nunknown\ngo")
            .unwrap_err()
            .contains("line 2"));
        assert!(parse_labels("silence\nunknown\ngo\ngo")
            .unwrap_err()
            .contains("twice"));
    }
}
