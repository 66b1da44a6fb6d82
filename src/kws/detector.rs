//! From a stream of per-window posteriors to discrete "heard a word" events.
//!
//! The classifier runs on overlapping 1 s windows every hop, so one spoken word shows up in
//! several consecutive results, and a single noisy window can spike on any label. Like
//! TensorFlow Lite Micro's `RecognizeCommands`, this:
//!
//! 1. averages the posteriors of the results inside `average_window`;
//! 2. waits until at least `min_results` results are in that window;
//! 3. takes the top label of the average and reports it only if it is a keyword (never
//!    `silence` or `unknown`), its average is at least `threshold` (or that word's own,
//!    [`Detector::with_word_thresholds`]), and
//! 4. no word was reported within `refractory` before, and the word is *new*: after a word
//!    is reported it must first stop being the confident top label before it can be
//!    reported again, so one long utterance gives one event.
//!
//! Pure: no clock, no thread. The caller passes the stream time of each result (the end of
//! the audio window it was computed on), so tests drive it with synthetic time.
use std::collections::VecDeque;
use std::time::Duration;

use super::meta::{is_keyword, SILENCE, UNKNOWN};

/// Tuning of the detector. The defaults suit a 250 ms hop with 1 s windows.
#[derive(Clone, Debug, PartialEq)]
pub struct DetectorConfig {
    /// Results younger than this (relative to the newest) are averaged.
    pub average_window: Duration,
    /// Minimum averaged posterior for a keyword to be reported, in (0, 1] (for every
    /// keyword, unless [`Detector::with_word_thresholds`] gives each its own).
    pub threshold: f32,
    /// After a report, nothing is reported for this long.
    pub refractory: Duration,
    /// Fewer results than this in the averaging window: no decision yet.
    pub min_results: usize,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            average_window: Duration::from_millis(750),
            threshold: 0.7,
            refractory: Duration::from_secs(1),
            min_results: 2,
        }
    }
}

/// A keyword was heard.
#[derive(Clone, Debug, PartialEq)]
pub struct Detection {
    /// The label, as in the labels file.
    pub word: String,
    /// Its index in the labels (and in the model's output).
    pub index: usize,
    /// Its averaged posterior.
    pub confidence: f32,
    /// Stream time of the result that triggered the report.
    pub at: Duration,
}

/// Misuse of the detector: bad configuration, or results that do not fit the labels.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DetectorError {
    #[error("detector: {field} {problem}")]
    Config {
        field: &'static str,
        problem: String,
    },
    #[error("detector: the labels {problem}; check the model's labels file")]
    Labels { problem: String },
    #[error("detector: the model gave {got} scores but there are {expected} labels; the labels file does not belong to this model")]
    ScoreCount { expected: usize, got: usize },
    #[error("detector: score {index} ('{label}') is {value}, not a finite number; the model or its input is broken")]
    NonFinite {
        index: usize,
        label: String,
        value: f32,
    },
    #[error("detector: result at {at:?} is earlier than the previous one at {previous:?}; stream times must not go back (call reset() when restarting a stream)")]
    TimeWentBack { previous: Duration, at: Duration },
}

/// Turns logits into probabilities in place (for models whose `kws.toml` says
/// `output = "logits"`): the detector's threshold is a probability. Shifts by the maximum
/// first so large logits cannot overflow.
pub fn softmax(scores: &mut [f32]) {
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        return;
    }
    let mut sum = 0.0;
    for s in scores.iter_mut() {
        *s = (*s - max).exp();
        sum += *s;
    }
    scores.iter_mut().for_each(|s| *s /= sum);
}

/// Streaming smoother/thresholder over classifier posteriors.
#[derive(Debug)]
pub struct Detector {
    cfg: DetectorConfig,
    labels: Vec<String>,
    is_keyword: Vec<bool>,
    silence: Option<usize>,
    /// Results in the averaging window, oldest first.
    history: VecDeque<(Duration, Vec<f32>)>,
    /// Score vectors of results that left the window, reused to avoid allocating per push.
    spare: Vec<Vec<f32>>,
    average: Vec<f32>,
    last_at: Option<Duration>,
    last_detection: Option<Duration>,
    /// Index of the word reported last, until it stops being the confident top label.
    latched: Option<usize>,
    /// Per label, what its average must reach: `cfg.threshold` for every label unless
    /// [`Detector::with_word_thresholds`] set others.
    word_threshold: Vec<f32>,
}

impl Detector {
    /// Checks the configuration and the labels. Labels named `silence` and `unknown` are
    /// never reported; at least one other label must exist.
    pub fn new(cfg: DetectorConfig, labels: &[String]) -> Result<Detector, DetectorError> {
        if !(cfg.threshold > 0.0 && cfg.threshold <= 1.0) {
            return Err(DetectorError::Config {
                field: "threshold",
                problem: format!("is {}; it must be in (0, 1], e.g. 0.7", cfg.threshold),
            });
        }
        if cfg.average_window.is_zero() {
            return Err(DetectorError::Config {
                field: "average_window",
                problem: "is 0; it must be > 0, e.g. 750 ms".into(),
            });
        }
        if cfg.min_results == 0 {
            return Err(DetectorError::Config {
                field: "min_results",
                problem: "is 0; it must be >= 1, e.g. 2".into(),
            });
        }
        let is_keyword: Vec<bool> = labels.iter().map(|l| is_keyword(l)).collect();
        if !is_keyword.iter().any(|&k| k) {
            return Err(DetectorError::Labels {
                problem: format!(
                    "contain no keyword (only '{SILENCE}'/'{UNKNOWN}' or nothing): {labels:?}"
                ),
            });
        }
        Ok(Detector {
            silence: labels.iter().position(|l| l == SILENCE),
            labels: labels.to_vec(),
            is_keyword,
            history: VecDeque::new(),
            spare: Vec::new(),
            average: vec![0.0; labels.len()],
            last_at: None,
            last_detection: None,
            latched: None,
            word_threshold: vec![cfg.threshold; labels.len()],
            cfg,
        })
    }

    /// The same detector with a threshold of its own for each label (one per label, in
    /// score order; those of `silence` and `unknown` are never used). Why: the adapted head of
    /// an owner model is matched to the shipped model's false accepts word by word, and a
    /// word it is sure of in every voice ("no", near "know") needs a stricter threshold than
    /// one it confuses with nothing (`adapt::calibrate::matched_either`).
    pub fn with_word_thresholds(mut self, thresholds: &[f32]) -> Result<Detector, DetectorError> {
        if thresholds.len() != self.labels.len() {
            return Err(DetectorError::Config {
                field: "word thresholds",
                problem: format!(
                    "are {} for {} labels; give one per label",
                    thresholds.len(),
                    self.labels.len()
                ),
            });
        }
        if let Some((i, t)) = thresholds
            .iter()
            .enumerate()
            .find(|&(i, t)| self.is_keyword[i] && !(*t > 0.0 && *t <= 1.0))
        {
            return Err(DetectorError::Config {
                field: "word thresholds",
                problem: format!(
                    "give '{}' {t}; each must be in (0, 1], e.g. 0.7",
                    self.labels[i]
                ),
            });
        }
        self.word_threshold = thresholds.to_vec();
        Ok(self)
    }

    /// What the average of label `index` must reach to be reported.
    pub fn word_threshold(&self, index: usize) -> Option<f32> {
        self.word_threshold.get(index).copied()
    }

    /// The configuration in use.
    pub fn config(&self) -> &DetectorConfig {
        &self.cfg
    }

    /// The labels, in score order.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// Adds the classifier's posteriors for the window ending at `at`, and reports a word if
    /// the rules in the module doc say so. `scores` must have one value per label
    /// (probabilities: apply softmax to logits first).
    pub fn push(
        &mut self,
        at: Duration,
        scores: &[f32],
    ) -> Result<Option<Detection>, DetectorError> {
        if scores.len() != self.labels.len() {
            return Err(DetectorError::ScoreCount {
                expected: self.labels.len(),
                got: scores.len(),
            });
        }
        if let Some((index, &value)) = scores.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(DetectorError::NonFinite {
                index,
                label: self.labels[index].clone(),
                value,
            });
        }
        self.check_time(at)?;
        let mut slot = self.spare.pop().unwrap_or_default();
        slot.clear();
        slot.extend_from_slice(scores);
        self.record(at, slot);
        Ok(self.decide(at))
    }

    /// Records a window that was not classified because it was quiet (the energy gate): it
    /// counts as a confident `silence` result (all zeros if the labels have no `silence`),
    /// so it pulls the average down exactly as the model would have.
    pub fn push_silence(&mut self, at: Duration) -> Result<Option<Detection>, DetectorError> {
        self.check_time(at)?;
        let mut slot = self.spare.pop().unwrap_or_default();
        slot.clear();
        slot.resize(self.labels.len(), 0.0);
        if let Some(s) = self.silence {
            slot[s] = 1.0;
        }
        self.record(at, slot);
        Ok(self.decide(at))
    }

    /// The word reported last (or that would have been), while it is still the confident
    /// top label: the detector will not report it again until it fades.
    pub fn latched(&self) -> Option<usize> {
        self.latched
    }

    /// When the last word was reported (or would have been).
    pub(crate) fn last_detection(&self) -> Option<Duration> {
        self.last_detection
    }

    /// Takes back the report the last push made, as if its word had fallen inside the
    /// refractory time: not latched, and the refractory time running from `last` as before
    /// the push (`last_detection()` then). For a caller that drops the report
    /// ([`super::either_detector`]); a push that reports had nothing latched before it.
    pub(crate) fn take_back_report(&mut self, last: Option<Duration>) {
        self.latched = None;
        self.last_detection = last;
    }

    /// Forgets everything heard so far (history, refractory, latched word). Used while the
    /// toy plays a sound, so its own voice cannot trigger a command, and when a stream
    /// restarts (times may then start again from zero).
    pub fn reset(&mut self) {
        while let Some((_, v)) = self.history.pop_front() {
            self.spare.push(v);
        }
        self.last_at = None;
        self.last_detection = None;
        self.latched = None;
    }

    fn check_time(&self, at: Duration) -> Result<(), DetectorError> {
        match self.last_at {
            Some(previous) if at < previous => Err(DetectorError::TimeWentBack { previous, at }),
            _ => Ok(()),
        }
    }

    fn record(&mut self, at: Duration, scores: Vec<f32>) {
        self.last_at = Some(at);
        self.history.push_back((at, scores));
        while let Some((t, _)) = self.history.front() {
            if at - *t >= self.cfg.average_window {
                if let Some((_, v)) = self.history.pop_front() {
                    self.spare.push(v);
                }
            } else {
                break;
            }
        }
    }

    fn decide(&mut self, at: Duration) -> Option<Detection> {
        if self.history.len() < self.cfg.min_results {
            return None;
        }
        self.average.fill(0.0);
        for (_, scores) in &self.history {
            for (a, s) in self.average.iter_mut().zip(scores) {
                *a += s;
            }
        }
        let n = self.history.len() as f32;
        self.average.iter_mut().for_each(|a| *a /= n);
        // First maximum wins ties, so the result does not depend on float noise ordering.
        let (top, confidence) = super::model::top(&self.average)?;
        let confident_keyword = self.is_keyword[top] && confidence >= self.word_threshold[top];
        if self.latched.is_some() && (self.latched != Some(top) || !confident_keyword) {
            // The reported word has faded: the next utterance may be reported.
            self.latched = None;
        }
        if !confident_keyword || self.latched.is_some() {
            return None;
        }
        if let Some(last) = self.last_detection {
            if at.saturating_sub(last) < self.cfg.refractory {
                return None;
            }
        }
        self.last_detection = Some(at);
        self.latched = Some(top);
        Some(Detection {
            word: self.labels[top].clone(),
            index: top,
            confidence,
            at,
        })
    }
}
