//! The classifier a model contract names, as the recognizer runs it: the model's own head,
//! joined, when the contract has a `[combine]` table, with a second head over the same input.
//!
//! Owner models written by `chatterbox adapt` use this to keep the shipped head beside the
//! adapted one and answer, class by class, with the larger probability ([`max_into`]): the
//! adapted head adds what it learned of the owner's voice, and whatever the shipped head
//! already heard in other voices is still heard (the README's "Teach it your voice" says what
//! that is worth, measured).

use super::meta::{CombineRule, KwsMeta, ModelOutput};
use super::model::{Classifier, LiteRtClassifier, ModelError};

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

/// A second head and the buffer its scores go to (allocated once, at load).
struct Second {
    rule: CombineRule,
    head: LiteRtClassifier,
    scores: Vec<f32>,
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
            .field("second", &self.second.as_ref().map(|s| (s.rule, &s.head)))
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
                Some(Second {
                    rule: spec.rule,
                    scores: vec![0.0; meta.labels.len()],
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
            match s.rule {
                CombineRule::Max => max_into(scores, &s.scores),
            }
        }
        Ok(())
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
}
