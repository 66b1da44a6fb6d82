//! Two [`Detector`]s side by side, for an owner model that keeps the shipped head beside its
//! adapted one (`[combine] rule = "either"`, [`super::head::Either`]).
//!
//! Why not one detector over the joined scores: the detector averages a few results before
//! it thresholds, and the average of a window-by-window maximum is larger than the larger of
//! the two averages. Where the shipped head gives a non-keyword 0.99, 0.96, 0.97 (average
//! 0.973, below its 0.98) and the adapted head, rescaled, 0.96, 0.99, 0.97, the joined
//! average is 0.983: a false accept neither head makes. On the validation owners' calibration
//! stream that artifact alone added 8-15 false accepts to the shipped head's 117, whatever
//! the adapted head's own threshold, and matching them cost the shipped head its threshold
//! (0.98 → 0.984-0.986), so the owner model heard fewer of the other voices' words.
//! Side by side, each head is averaged and thresholded on its own, so the shipped head's
//! near misses stay misses whatever the adapted head says.
//!
//! A detection of either is reported, the shipped head's first when both come at the same
//! result, and nothing is reported within `refractory` after a report, whichever head made
//! it: one word heard by both heads is one event. A word that falls inside that time is
//! taken back from the detector that heard it (not latched, its refractory time not
//! restarted), as one detector would treat it. Each detector keeps its own latch, so a
//! word one head has reported (or would have, inside the shared refractory time) is not
//! reported by that head again until it fades; nor by the other head while the first is
//! still latched on it (a long word the shipped head heard at its start and the adapted head
//! is sure of only later is one event, as it is for the shipped model alone).

use std::time::Duration;

use super::detector::{Detection, Detector, DetectorConfig, DetectorError};

/// The shipped head's detector and the adapted head's, reporting as one.
#[derive(Debug)]
pub struct EitherDetector {
    /// Over the second (shipped) head's scores, at the detector's threshold.
    second: Detector,
    /// Over the model's own (adapted) head's scores, at its own threshold for each label.
    own: Detector,
    last_report: Option<Duration>,
}

impl EitherDetector {
    /// `cfg` is the detector as the second head runs it; the own head's runs with the same
    /// settings and, per label, `own_thresholds` (one per label; those of `silence` and
    /// `unknown` are not used).
    pub fn new(
        cfg: DetectorConfig,
        own_thresholds: &[f32],
        labels: &[String],
    ) -> Result<EitherDetector, DetectorError> {
        let second = Detector::new(cfg.clone(), labels)?;
        // The configuration's own threshold is never read once every label has one; it only
        // has to be a valid one.
        let own = Detector::new(cfg, labels)?.with_word_thresholds(own_thresholds)?;
        Ok(EitherDetector {
            second,
            own,
            last_report: None,
        })
    }

    /// The second head's detector settings (the model's threshold).
    pub fn config(&self) -> &DetectorConfig {
        self.second.config()
    }

    /// The own head's threshold for label `index`.
    pub fn own_threshold(&self, index: usize) -> Option<f32> {
        self.own.word_threshold(index)
    }

    pub fn labels(&self) -> &[String] {
        self.second.labels()
    }

    /// Adds both heads' probabilities for the window ending at `at`.
    pub fn push(
        &mut self,
        at: Duration,
        own: &[f32],
        second: &[f32],
    ) -> Result<Option<Detection>, DetectorError> {
        let before = self.before();
        let s = self.second.push(at, second)?;
        let o = self.own.push(at, own)?;
        Ok(self.report(at, s, o, before))
    }

    /// A quiet window for both heads ([`Detector::push_silence`]).
    pub fn push_silence(&mut self, at: Duration) -> Result<Option<Detection>, DetectorError> {
        let before = self.before();
        let s = self.second.push_silence(at)?;
        let o = self.own.push_silence(at)?;
        Ok(self.report(at, s, o, before))
    }

    /// Forgets everything heard so far, in both detectors.
    pub fn reset(&mut self) {
        self.second.reset();
        self.own.reset();
        self.last_report = None;
    }

    fn before(&self) -> (Option<Duration>, Option<Duration>) {
        (self.second.last_detection(), self.own.last_detection())
    }

    fn report(
        &mut self,
        at: Duration,
        second: Option<Detection>,
        own: Option<Detection>,
        (second_before, own_before): (Option<Duration>, Option<Duration>),
    ) -> Option<Detection> {
        let refractory = self.second.config().refractory;
        if self
            .last_report
            .is_some_and(|last| at.saturating_sub(last) < refractory)
        {
            // Inside the refractory time of a report: as one detector does, the word is
            // neither reported nor latched, so it is heard once the time is over if it is
            // still being said, and the detector's own refractory time is the shared one.
            if second.is_some() {
                self.second.take_back_report(second_before);
            }
            if own.is_some() {
                self.own.take_back_report(own_before);
            }
            return None;
        }
        // A word the other detector is latched on is the utterance it already heard (unless
        // both heard it at this very result); the detector that drops it stays latched.
        let second = second.filter(|d| {
            self.own.latched() != Some(d.index) || own.as_ref().is_some_and(|o| o.index == d.index)
        });
        let own = own.filter(|d| self.second.latched() != Some(d.index));
        let found = second.or(own)?;
        self.last_report = Some(at);
        Some(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Vec<String> {
        ["silence", "unknown", "go", "no"]
            .map(String::from)
            .to_vec()
    }

    fn cfg() -> DetectorConfig {
        DetectorConfig {
            average_window: Duration::from_millis(250),
            threshold: 0.98,
            refractory: Duration::from_secs(1),
            min_results: 2,
        }
    }

    fn go(p: f32) -> [f32; 4] {
        [0.0, 1.0 - p, p, 0.0]
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Feeds `(own, second)` pairs 80 ms apart; returns the times reported.
    fn run(d: &mut EitherDetector, pairs: &[([f32; 4], [f32; 4])]) -> Vec<u64> {
        pairs
            .iter()
            .enumerate()
            .filter_map(|(i, (o, s))| {
                let at = ms(80 * (i as u64 + 1));
                d.push(at, o, s).unwrap().map(|d| d.at.as_millis() as u64)
            })
            .collect()
    }

    #[test]
    fn each_head_is_heard_at_its_own_threshold() {
        let mut d = EitherDetector::new(cfg(), &[0.999; 4], &labels()).unwrap();
        // The shipped head alone at 0.985: heard, though the own head gives 0.99 < 0.999.
        let shipped = run(&mut d, &[(go(0.99), go(0.985)), (go(0.99), go(0.985))]);
        assert_eq!(shipped, vec![160]);
        let mut d = EitherDetector::new(cfg(), &[0.999; 4], &labels()).unwrap();
        // The own head alone at 0.9995: heard, though the shipped head gives 0.5.
        let own = run(&mut d, &[(go(0.9995), go(0.5)), (go(0.9995), go(0.5))]);
        assert_eq!(own, vec![160]);
        let mut d = EitherDetector::new(cfg(), &[0.999; 4], &labels()).unwrap();
        // Both just below their thresholds: nothing.
        let neither = run(&mut d, &[(go(0.998), go(0.979)); 6]);
        assert!(neither.is_empty(), "{neither:?}");
    }

    #[test]
    fn each_word_of_the_own_head_is_heard_at_its_own_threshold() {
        // "go" needs 0.99 of the own head, "no" 0.9999.
        let per_word = [0.5, 0.5, 0.99, 0.9999];
        let mut d = EitherDetector::new(cfg(), &per_word, &labels()).unwrap();
        assert_eq!(run(&mut d, &[(go(0.992), go(0.5)); 2]), vec![160]);
        let mut d = EitherDetector::new(cfg(), &per_word, &labels()).unwrap();
        assert!(run(&mut d, &[(no(0.9995), no(0.5)); 6]).is_empty());
        let mut d = EitherDetector::new(cfg(), &per_word, &labels()).unwrap();
        assert_eq!(run(&mut d, &[(no(0.99995), no(0.5)); 2]), vec![160]);
        assert_eq!(d.own_threshold(3), Some(0.9999));
        // A threshold per label, each a valid one.
        assert!(EitherDetector::new(cfg(), &[0.99; 3], &labels()).is_err());
        assert!(EitherDetector::new(cfg(), &[0.5, 0.5, 0.99, 1.5], &labels()).is_err());
    }

    #[test]
    fn alternating_near_misses_of_two_heads_are_not_a_detection() {
        // Shipped 0.99, 0.95, 0.99, 0.95 (average at most 0.977 over any two to four) and the
        // own head the
        // other way round, on the shipped head's scale (`Either::rescale`): the average of the
        // window-by-window maximum is 0.99, over the threshold; neither head's own average is.
        let e = super::super::head::Either::uniform(vec![false, false, true, true], 0.999, 0.98);
        let own_for = |scaled: f32| {
            // The own-head probability that `rescale` maps to `scaled` (below 0.98).
            scaled * e.own_thresholds[2] / e.threshold
        };
        let pairs: Vec<_> = (0..8)
            .map(|i| {
                let (s, o) = if i % 2 == 0 {
                    (0.99, 0.95)
                } else {
                    (0.95, 0.99)
                };
                let o = if o > 0.98 { 0.9995 } else { own_for(o) };
                (go(o), go(s))
            })
            .collect();
        let mut d = EitherDetector::new(cfg(), &[0.999; 4], &labels()).unwrap();
        assert!(run(&mut d, &pairs).is_empty());
        // The same stream through one detector over the joined scores fires.
        let mut one = Detector::new(cfg(), &labels()).unwrap();
        let joined_fires = pairs.iter().enumerate().any(|(i, (o, s))| {
            let mut j = o.to_vec();
            e.join_into(&mut j, s);
            one.push(ms(80 * (i as u64 + 1)), &j).unwrap().is_some()
        });
        assert!(
            joined_fires,
            "the stream must show the artifact it guards against"
        );
    }

    #[test]
    fn one_word_heard_by_both_heads_is_one_event() {
        // The shipped head hears it first; the own head reaches its threshold three results
        // later, inside the refractory time.
        let mut pairs = vec![(go(0.5), go(0.99)); 2];
        pairs.extend([(go(0.9999), go(0.5)); 5]);
        let mut own_alone = EitherDetector::new(cfg(), &[0.999; 4], &labels()).unwrap();
        let own_stream: Vec<_> = pairs.iter().map(|(o, _)| (*o, go(0.0))).collect();
        assert_eq!(run(&mut own_alone, &own_stream), vec![480]);
        let mut d = EitherDetector::new(cfg(), &[0.999; 4], &labels()).unwrap();
        assert_eq!(run(&mut d, &pairs), vec![160]);
        // After the refractory time a new word is heard again.
        let later: Vec<_> = (0..3)
            .map(|i| d.push(ms(1500 + 80 * i), &go(0.0), &go(0.99)).unwrap())
            .collect();
        assert_eq!(later.iter().flatten().count(), 1);
    }

    #[test]
    fn a_long_word_the_adapted_head_is_sure_of_late_is_still_one_event() {
        let mut d = EitherDetector::new(cfg(), &[0.999; 4], &labels()).unwrap();
        // The shipped head hears "go" at once and stays sure of it for 2 s; the adapted head
        // is sure of it only from 1.2 s on, after the refractory time.
        let pairs: Vec<_> = (0..25)
            .map(|i| (go(if i >= 15 { 0.9999 } else { 0.5 }), go(0.99)))
            .collect();
        assert_eq!(run(&mut d, &pairs), vec![160]);
        // Once the shipped head's word fades, the adapted head's next word is heard.
        let mut d = EitherDetector::new(cfg(), &[0.999; 4], &labels()).unwrap();
        let mut pairs: Vec<_> = (0..4).map(|_| (go(0.5), go(0.99))).collect();
        pairs.extend((0..12).map(|_| (go(0.5), go(0.2))));
        pairs.extend((0..4).map(|_| (go(0.9999), go(0.5))));
        assert_eq!(run(&mut d, &pairs), vec![160, 1600]);
    }

    fn no(p: f32) -> [f32; 4] {
        [0.0, 1.0 - p, 0.0, p]
    }

    #[test]
    fn a_word_inside_the_refractory_time_is_heard_when_it_is_over() {
        // The adapted head hears "go" (reported at 160 ms); the shipped head hears "no" from
        // 400 ms, inside the refractory second, and still hears it after: reported at the
        // first result from 1160 ms on, as one detector would.
        let mut pairs = vec![(go(0.9999), go(0.5)); 2];
        pairs.extend([(go(0.0), go(0.0)); 2]);
        pairs.extend([(go(0.0), no(0.99)); 13]);
        let mut d = EitherDetector::new(cfg(), &[0.999; 4], &labels()).unwrap();
        assert_eq!(run(&mut d, &pairs), vec![160, 1200]);
        // The same with the heads' parts swapped.
        let mut swapped = vec![(go(0.5), go(0.99)); 2];
        swapped.extend([(go(0.0), go(0.0)); 2]);
        swapped.extend([(no(0.9999), go(0.0)); 13]);
        let mut d = EitherDetector::new(cfg(), &[0.999; 4], &labels()).unwrap();
        assert_eq!(run(&mut d, &swapped), vec![160, 1200]);
    }

    #[test]
    fn silence_and_reset_reach_both_detectors() {
        let mut d = EitherDetector::new(cfg(), &[0.999; 4], &labels()).unwrap();
        // A sure result of the adapted head, a quiet window, another sure result: the quiet
        // one must pull its average down (were it skipped, the two sure ones would report).
        d.push(ms(80), &go(0.9999), &go(0.0)).unwrap();
        assert_eq!(d.push_silence(ms(160)).unwrap(), None);
        assert_eq!(d.push(ms(240), &go(0.9999), &go(0.0)).unwrap(), None);
        // The same for the shipped head.
        let mut d = EitherDetector::new(cfg(), &[0.999; 4], &labels()).unwrap();
        d.push(ms(80), &go(0.0), &go(0.99)).unwrap();
        assert_eq!(d.push_silence(ms(160)).unwrap(), None);
        assert_eq!(d.push(ms(240), &go(0.0), &go(0.99)).unwrap(), None);
        d.reset();
        // After a reset, times may start again and one result is not enough (min_results).
        assert_eq!(d.push(ms(80), &go(0.9999), &go(0.99)).unwrap(), None);
        assert!(d.push(ms(160), &go(0.9999), &go(0.99)).unwrap().is_some());
        assert_eq!(d.own_threshold(2), Some(0.999));
        assert_eq!(d.config().threshold, 0.98);
        assert_eq!(d.labels(), labels().as_slice());
    }
}
