//! The classifier a model contract names, as the recognizer runs it: the model's own head,
//! joined, when the contract has a `[combine]` table, with a second head over the same input.
//!
//! Owner models written by `chatterbox adapt` use this to keep the shipped head beside the
//! adapted one: a keyword is heard when the shipped head hears it at the detector threshold
//! or the adapted head at its own, one per keyword ([`Either`]; the recognizer gives each head
//! a detector of its own, [`super::either_detector`], through [`Classifier::either`]; the
//! joined scores serve single windows: `evaluate`, the held-out takes, `listen --all`);
//! owner models of the previous release answer, class by class, with the larger probability ([`max_into`]). The adapted
//! head adds what it learned of the owner's voice, and whatever the shipped head already
//! heard in other voices is still heard (the README's "Teach it your voice" says what that
//! is worth, measured).

use super::meta::{is_keyword, CombineRule, KwsMeta, ModelOutput};
use super::model::{Classifier, EitherScores, LiteRtClassifier, ModelError};

/// Writes into `scores`, class by class, the larger of `scores` and `other` (the
/// [`CombineRule::Max`] rule). Both are probabilities over the same labels in the same order.
/// A NaN on either side stays NaN (`f32::max` would drop it): a head gone wrong must show,
/// not hide behind the other's answer.
pub fn max_into(scores: &mut [f32], other: &[f32]) {
    for (s, o) in scores.iter_mut().zip(other) {
        *s = if s.is_nan() || o.is_nan() {
            f32::NAN
        } else {
            s.max(*o)
        };
    }
}

/// How the [`CombineRule::Either`] rule joins an owner's head with a second (the shipped) one.
///
/// Why: with one threshold for both heads (the [`CombineRule::Max`] rule) the owner model
/// must raise the threshold to keep its false accepts down, and then hears fewer of the
/// other voices' words than the shipped head did. Here the second head keeps the
/// detector's threshold, so what it hears in any voice is still heard, and only the
/// owner's head is held to thresholds of its own, one per keyword (strict for a word it
/// confuses with others', looser for one it confuses with nothing).
#[derive(Clone, Debug, PartialEq)]
pub struct Either {
    /// Per class, whether it is a keyword (else `silence`/`unknown`).
    pub keyword: Vec<bool>,
    /// Per class, what the own head needs for that keyword (matched word by word by
    /// `chatterbox adapt`; the entries of `silence`/`unknown` are not used).
    pub own_thresholds: Vec<f32>,
    /// What the second head needs: the detector's threshold.
    pub threshold: f32,
}

impl Either {
    /// Every keyword at the same `own_threshold`.
    pub fn uniform(keyword: Vec<bool>, own_threshold: f32, threshold: f32) -> Either {
        Either {
            own_thresholds: vec![own_threshold; keyword.len()],
            keyword,
            threshold,
        }
    }

    /// The own head's probability `p` of class `class` on the second head's scale: that
    /// class's own threshold goes to `threshold`, 0 to 0, 1 to 1, straight lines between.
    /// Monotone and continuous, so the detector's average over a few results still means
    /// what it meant.
    pub fn rescale(&self, class: usize, p: f32) -> f32 {
        let (t, th) = (self.own_thresholds[class], self.threshold);
        if p < t {
            p * th / t
        } else {
            th + (1.0 - th) * (p - t) / (1.0 - t)
        }
    }

    /// The own head's thresholds that go with the detector threshold `t` (the inverse of
    /// [`Self::rescale`], class by class): `own_thresholds` for the model's own threshold;
    /// for one the configuration sets instead, the points on the own head's scale that the
    /// joined scores would have compared with it.
    pub fn own_thresholds_at(&self, t: f32) -> Vec<f32> {
        let th = self.threshold;
        self.own_thresholds
            .iter()
            .map(|&o| {
                if t == th {
                    o
                } else if t < th {
                    t * o / th
                } else {
                    o + (1.0 - o) * (t - th) / (1.0 - th)
                }
            })
            .collect()
    }

    /// The strictest keyword's own threshold (what logs and reports name when one number
    /// must do).
    pub fn strictest(&self) -> f32 {
        strictest_keyword(&self.own_thresholds, &self.keyword)
    }

    /// The steepest slope of [`Self::rescale`] over the keywords: how much it can magnify a
    /// small difference in the own head's output (the self-check allows for it).
    pub fn slope(&self) -> f32 {
        let th = self.threshold;
        self.keyword_thresholds()
            .map(|t| (th / t).max((1.0 - th) / (1.0 - t)))
            .fold(1.0, f32::max)
    }

    fn keyword_thresholds(&self) -> impl Iterator<Item = f32> + '_ {
        self.own_thresholds
            .iter()
            .zip(&self.keyword)
            .filter(|(_, &k)| k)
            .map(|(&t, _)| t)
    }

    /// Writes into `own` (the model's own head's probabilities) the joined scores: for a
    /// keyword the larger of `second`'s and [`Self::rescale`]d own; for `silence`/`unknown`
    /// the smaller of the two, so neither stands in the way of a keyword one head is sure
    /// of. The result is not a distribution (its sum may pass 1); the detector and
    /// `evaluate` only compare and threshold it. A NaN on either side stays NaN.
    pub fn join_into(&self, own: &mut [f32], second: &[f32]) {
        debug_assert_eq!(
            self.own_thresholds.len(),
            self.keyword.len(),
            "one own threshold per class"
        );
        for (class, ((o, s), &k)) in own.iter_mut().zip(second).zip(&self.keyword).enumerate() {
            *o = if o.is_nan() || s.is_nan() {
                f32::NAN
            } else if k {
                s.max(self.rescale(class, *o))
            } else {
                s.min(*o)
            };
        }
    }
}

/// The largest of `thresholds` (one per class) over the classes `keyword` marks: what one
/// number stands for when an own head has a threshold per keyword ([`Either::strictest`]).
pub fn strictest_keyword(thresholds: &[f32], keyword: &[bool]) -> f32 {
    thresholds
        .iter()
        .zip(keyword)
        .filter(|(_, &k)| k)
        .map(|(&t, _)| t)
        .fold(0.0, f32::max)
}

/// A second head and the buffers its scores and the own head's unjoined ones go to
/// (allocated once, at load).
struct Second {
    rule: Rule,
    head: LiteRtClassifier,
    scores: Vec<f32>,
    own_scores: Vec<f32>,
}

/// A [`CombineRule`] with what it needs to run.
#[derive(Clone, Debug, PartialEq)]
enum Rule {
    Max,
    Either(Either),
}

/// The model's head, and the `[combine]` head if the contract names one.
pub struct Head {
    own: LiteRtClassifier,
    second: Option<Second>,
}

impl std::fmt::Debug for Head {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Head")
            .field("own", &self.own)
            .field("second", &self.second.as_ref().map(|s| (&s.rule, &s.head)))
            .finish()
    }
}

impl Head {
    /// Loads the head `meta` names and its `[combine]` head, each checked against its pin; a
    /// second head with another input shape is refused (it cannot read the same window).
    pub fn load(meta: &KwsMeta) -> Result<Head, ModelError> {
        let logits = meta.model.output == ModelOutput::Logits;
        let own = LiteRtClassifier::load(
            &meta.model_path(),
            meta.labels.clone(),
            logits,
            &meta.model.sha256,
        )?;
        let second = match (&meta.combine, meta.combine_path()) {
            (Some(spec), Some(path)) => {
                // The second head is one this contract's head was adapted from: same
                // training, same output kind.
                let head =
                    LiteRtClassifier::load(&path, meta.labels.clone(), logits, &spec.sha256)?;
                if head.input_shape() != own.input_shape() {
                    return Err(ModelError::Unsupported {
                        path,
                        what: format!(
                            "it is named in [combine] but reads input {:?}, and {} reads {:?}; the two heads must read the same window",
                            head.input_shape(),
                            own.path().display(),
                            own.input_shape()
                        ),
                    });
                }
                let rule = match (spec.rule, spec.own_threshold, meta.detector.threshold) {
                    (CombineRule::Max, _, _) => Rule::Max,
                    (CombineRule::Either, Some(own_threshold), Some(threshold)) => {
                        Rule::Either(Either {
                            keyword: meta.labels.iter().map(|l| is_keyword(l)).collect(),
                            own_thresholds: meta
                                .labels
                                .iter()
                                .map(|l| spec.own_threshold_of(l).unwrap_or(own_threshold))
                                .collect(),
                            threshold,
                        })
                    }
                    // `KwsMeta::parse` refuses these.
                    (CombineRule::Either, _, _) => {
                        return Err(ModelError::Unsupported {
                            path,
                            what: "it is named in [combine] with rule = \"either\", which needs combine.own_threshold and detector.threshold".into(),
                        })
                    }
                };
                Some(Second {
                    rule,
                    scores: vec![0.0; meta.labels.len()],
                    own_scores: vec![0.0; meta.labels.len()],
                    head,
                })
            }
            _ => None,
        };
        Ok(Head { own, second })
    }

    /// Whether a second head is joined with the model's own.
    pub fn is_combined(&self) -> bool {
        self.second.is_some()
    }
}

impl Classifier for Head {
    fn labels(&self) -> &[String] {
        self.own.labels()
    }

    fn input_shape(&self) -> &[usize] {
        self.own.input_shape()
    }

    fn classify(&mut self, features: &[f32], scores: &mut [f32]) -> Result<(), ModelError> {
        self.own.classify(features, scores)?;
        if let Some(s) = &mut self.second {
            s.head.classify(features, &mut s.scores)?;
            match &s.rule {
                Rule::Max => max_into(scores, &s.scores),
                Rule::Either(e) => {
                    s.own_scores.copy_from_slice(scores);
                    e.join_into(scores, &s.scores);
                }
            }
        }
        Ok(())
    }

    fn either(&self) -> Option<EitherScores<'_>> {
        match &self.second {
            Some(Second {
                rule: Rule::Either(rule),
                scores,
                own_scores,
                ..
            }) => Some(EitherScores {
                rule,
                own: own_scores,
                second: scores,
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_into_keeps_the_larger_probability_of_each_class() {
        let mut a = [0.7, 0.2, 0.1];
        max_into(&mut a, &[0.1, 0.85, 0.05]);
        assert_eq!(a, [0.7, 0.85, 0.1]);
    }

    #[test]
    fn a_nan_on_either_side_is_not_hidden() {
        let mut a = [f32::NAN, 0.2, 0.1];
        max_into(&mut a, &[0.9, f32::NAN, 0.05]);
        assert!(a[0].is_nan() && a[1].is_nan());
        assert_eq!(a[2], 0.1);
    }

    fn either() -> Either {
        Either::uniform(vec![false, false, true, true], 0.999, 0.98)
    }

    /// "go" at 0.999, "no" at 0.99.
    fn per_word() -> Either {
        Either {
            own_thresholds: vec![0.5, 0.5, 0.999, 0.99],
            ..either()
        }
    }

    #[test]
    fn the_own_thresholds_at_a_detector_threshold_undo_rescale() {
        for e in [either(), per_word()] {
            assert_eq!(e.own_thresholds_at(0.98), e.own_thresholds);
            for t in [0.5f32, 0.9, 0.97, 0.985, 0.99, 1.0] {
                let o = e.own_thresholds_at(t);
                for class in [2, 3] {
                    assert!((e.rescale(class, o[class]) - t).abs() < 1e-6, "{t}: {o:?}");
                }
            }
        }
    }

    #[test]
    fn rescale_puts_each_own_threshold_on_the_detector_threshold() {
        let e = per_word();
        for (class, own) in [(2, 0.999), (3, 0.99)] {
            assert_eq!(e.rescale(class, 0.0), 0.0);
            assert!((e.rescale(class, own) - 0.98).abs() < 1e-6);
            assert!((e.rescale(class, 1.0) - 1.0).abs() < 1e-6);
            // Below its own threshold the adapted head stays below the detector's; monotone.
            assert!(e.rescale(class, own - 0.001) < 0.98);
            let mut last = -1.0;
            for i in 0..=1000 {
                let r = e.rescale(class, i as f32 / 1000.0);
                assert!(r >= last, "{i}");
                last = r;
            }
        }
        // The steepest keyword's slope (0.02 / 0.001), the strictest keyword's threshold;
        // silence's and unknown's entries count for neither.
        assert!(e.slope() > 19.0 && e.slope() < 21.0, "{}", e.slope());
        assert_eq!(e.strictest(), 0.999);
        let loose = Either {
            own_thresholds: vec![0.9999, 0.9999, 0.99, 0.99],
            ..either()
        };
        assert_eq!(loose.strictest(), 0.99);
        assert!(loose.slope() < 2.5, "{}", loose.slope());
    }

    #[test]
    fn either_hears_a_keyword_one_head_is_sure_of_and_a_non_keyword_only_if_both_are() {
        let e = either();
        // silence, unknown, go, no. The shipped head hears "go" at 0.985; the adapted head
        // is unsure: the shipped answer stands, and `unknown` is the smaller of the two.
        let mut own = [0.0, 0.4, 0.5, 0.1];
        e.join_into(&mut own, &[0.0, 0.01, 0.985, 0.005]);
        assert_eq!(own[2], 0.985);
        assert_eq!(own[1], 0.01);
        // The shipped head is sure it is no keyword; the adapted head is sure of "no" at
        // 0.9995, above its own 0.999: "no" wins, above the detector's threshold.
        let mut own = [0.0, 0.0004, 0.0001, 0.9995];
        e.join_into(&mut own, &[0.001, 0.998, 0.0005, 0.0005]);
        assert!(own[3] > 0.98 && own[3] > own[1], "{own:?}");
        // A NaN on either side stays NaN.
        let mut own = [f32::NAN, 0.5, 0.5, 0.0];
        e.join_into(&mut own, &[0.0, f32::NAN, 0.5, 0.5]);
        assert!(own[0].is_nan() && own[1].is_nan());
    }
}
