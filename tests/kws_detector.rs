//! The streaming detector, driven by synthetic posterior streams at a 250 ms hop.
use std::time::Duration;

use chatterbox::kws::detector::{softmax, Detection, Detector, DetectorConfig, DetectorError};

const HOP: Duration = Duration::from_millis(250);
const SILENCE: usize = 0;
const UNKNOWN: usize = 1;
const GO: usize = 2;
const STOP: usize = 3;

fn labels() -> Vec<String> {
    ["silence", "unknown", "go", "stop"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn detector(cfg: DetectorConfig) -> Detector {
    Detector::new(cfg, &labels()).expect("valid config and labels")
}

/// Posteriors with `p` on `label` and the rest spread evenly over the other labels.
fn peaked(label: usize, p: f32) -> Vec<f32> {
    let rest = (1.0 - p) / 3.0;
    (0..4).map(|i| if i == label { p } else { rest }).collect()
}

/// Feeds `stream` at hop k -> time k * HOP and returns every detection.
fn run(det: &mut Detector, stream: &[Vec<f32>]) -> Vec<Detection> {
    stream
        .iter()
        .enumerate()
        .filter_map(|(k, s)| det.push(HOP * k as u32, s).expect("valid scores"))
        .collect()
}

fn silence(n: usize) -> Vec<Vec<f32>> {
    vec![peaked(SILENCE, 0.97); n]
}

/// A word as a 1 s-window classifier sees it: rising, confident, fading.
fn utterance(word: usize) -> Vec<Vec<f32>> {
    [0.5, 0.9, 0.95, 0.9, 0.6]
        .iter()
        .map(|&p| peaked(word, p))
        .collect()
}

#[test]
fn one_utterance_gives_one_event_at_the_right_time() {
    let mut det = detector(DetectorConfig::default());
    let stream = [silence(8), utterance(GO), silence(8)].concat();
    let events = run(&mut det, &stream);
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!((e.word.as_str(), e.index), ("go", GO));
    // 750 ms window = the last 3 results. Hop 8: (s, s, .5); hop 9: (s, .5, .9) -> 0.467;
    // hop 10: (.5, .9, .95) -> 0.783 >= 0.7: reported at 10 * 250 ms.
    assert_eq!(e.at, Duration::from_millis(2500));
    assert!((e.confidence - (0.5 + 0.9 + 0.95) / 3.0).abs() < 1e-6);
}

#[test]
fn a_word_held_longer_than_refractory_is_still_one_event() {
    let mut det = detector(DetectorConfig::default());
    let stream = [silence(4), vec![peaked(GO, 0.95); 16], silence(4)].concat();
    assert_eq!(run(&mut det, &stream).len(), 1);
}

#[test]
fn two_utterances_apart_give_two_events_close_give_one() {
    let cfg = DetectorConfig::default();
    let mut det = detector(cfg.clone());
    let stream = [
        silence(4),
        utterance(GO),
        silence(4),
        utterance(GO),
        silence(4),
    ]
    .concat();
    let events = run(&mut det, &stream);
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(events[1].at - events[0].at > cfg.refractory);

    // Different words, far apart: both reported, in order.
    let mut det = detector(cfg.clone());
    let stream = [utterance(STOP), silence(6), utterance(GO)].concat();
    let words: Vec<String> = run(&mut det, &stream).into_iter().map(|e| e.word).collect();
    assert_eq!(words, ["stop", "go"]);

    // Two bursts 250 ms apart, with a 2 s refractory: the second one (confident again
    // at 2.5 s, 1 s after the first report) is suppressed.
    let mut det = detector(DetectorConfig {
        refractory: Duration::from_secs(2),
        ..cfg
    });
    let burst = vec![peaked(GO, 0.95); 3];
    let stream = [
        silence(4),
        burst.clone(),
        silence(1),
        burst.clone(),
        silence(4),
    ]
    .concat();
    let events = run(&mut det, &stream);
    assert_eq!(events.len(), 1, "{events:?}");
    // The same stream with the default 1 s refractory: the second burst is a new word.
    let mut det = detector(DetectorConfig::default());
    let stream = [silence(4), burst.clone(), silence(1), burst, silence(4)].concat();
    let events = run(&mut det, &stream);
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[1].at - events[0].at, Duration::from_secs(1));
}

/// Tiny deterministic generator so the noise test needs no extra crate.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 40) as f32 / (1u64 << 24) as f32
    }
}

#[test]
fn noise_and_lukewarm_posteriors_never_force_a_word() {
    let mut det = detector(DetectorConfig::default());
    let mut rng = Lcg(7);
    let noise: Vec<Vec<f32>> = (0..400)
        .map(|_| {
            let v: Vec<f32> = (0..4).map(|_| rng.next() + 0.01).collect();
            let sum: f32 = v.iter().sum();
            v.into_iter().map(|x| x / sum).collect()
        })
        .collect();
    assert_eq!(run(&mut det, &noise), []);
    let mut det = detector(DetectorConfig::default());
    // Occasional single-window spikes are averaged away.
    let spiky: Vec<Vec<f32>> = (0..100)
        .map(|k| {
            if k % 4 == 0 {
                peaked(GO, 0.99)
            } else {
                peaked(UNKNOWN, 0.4)
            }
        })
        .collect();
    assert_eq!(run(&mut det, &spiky), []);
    let mut det = detector(DetectorConfig::default());
    // A keyword that is top but never confident.
    assert_eq!(run(&mut det, &vec![peaked(STOP, 0.6); 40]), []);
}

#[test]
fn threshold_is_inclusive_and_exact() {
    let cfg = DetectorConfig {
        threshold: 0.75,
        ..DetectorConfig::default()
    };
    let mut below = detector(cfg.clone());
    assert_eq!(run(&mut below, &vec![peaked(GO, 0.7499); 12]), []);
    let mut at = detector(cfg);
    let events = run(&mut at, &vec![peaked(GO, 0.75); 12]);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].confidence, 0.75);
}

#[test]
fn each_word_is_held_to_its_own_threshold() {
    let cfg = DetectorConfig {
        threshold: 0.75,
        ..DetectorConfig::default()
    };
    // "go" needs 0.9, "stop" only 0.6; silence and unknown's entries are never used.
    let per_word = [0.01, 0.01, 0.9, 0.6];
    let det = || {
        detector(cfg.clone())
            .with_word_thresholds(&per_word)
            .unwrap()
    };
    assert_eq!(run(&mut det(), &vec![peaked(GO, 0.8999); 12]), []);
    assert_eq!(run(&mut det(), &vec![peaked(GO, 0.9); 12]).len(), 1);
    let stop = run(&mut det(), &vec![peaked(STOP, 0.6); 12]);
    assert_eq!((stop.len(), stop[0].index), (1, STOP));
    assert_eq!(run(&mut det(), &vec![peaked(STOP, 0.5999); 12]), []);
    assert_eq!(det().word_threshold(GO), Some(0.9));
    // Silence's and unknown's 0.01 are never used: sure silence or unknown reports nothing.
    assert_eq!(run(&mut det(), &silence(12)), []);
    assert_eq!(run(&mut det(), &vec![peaked(UNKNOWN, 0.97); 12]), []);
    // Without them, the configuration's threshold for every word.
    assert_eq!(
        run(&mut detector(cfg.clone()), &vec![peaked(STOP, 0.6); 12]),
        []
    );
    assert_eq!(detector(cfg.clone()).word_threshold(GO), Some(0.75));
    // One per label, each in (0, 1] for a keyword; else a named error, no panic.
    for bad in [
        &[0.5, 0.5, 0.9][..],
        &[0.5, 0.5, 0.9, 1.5],
        &[0.5, 0.5, f32::NAN, 0.6],
    ] {
        let err = detector(cfg.clone()).with_word_thresholds(bad).unwrap_err();
        assert!(
            matches!(
                err,
                DetectorError::Config {
                    field: "word thresholds",
                    ..
                }
            ),
            "{bad:?}: {err}"
        );
    }
}

#[test]
fn silence_and_unknown_are_never_reported() {
    let mut det = detector(DetectorConfig::default());
    let stream = [
        vec![peaked(UNKNOWN, 0.99); 20],
        vec![peaked(SILENCE, 1.0); 20],
    ]
    .concat();
    assert_eq!(run(&mut det, &stream), []);
}

#[test]
fn waits_for_min_results() {
    let cfg = DetectorConfig {
        min_results: 3,
        ..DetectorConfig::default()
    };
    let mut det = detector(cfg);
    let sure = peaked(GO, 1.0);
    assert_eq!(det.push(Duration::ZERO, &sure).unwrap(), None);
    assert_eq!(det.push(HOP, &sure).unwrap(), None);
    let e = det
        .push(HOP * 2, &sure)
        .unwrap()
        .expect("third result decides");
    assert_eq!(e.at, HOP * 2);
}

#[test]
fn quiet_hops_count_as_silence() {
    // A confident word with the gate closing every other hop averages to (0.95*2)/3 < 0.7.
    let mut det = detector(DetectorConfig::default());
    let word = peaked(GO, 0.95);
    let mut events = Vec::new();
    for k in 0..20u32 {
        let at = HOP * k;
        let r = if k % 2 == 0 {
            det.push(at, &word).unwrap()
        } else {
            det.push_silence(at).unwrap()
        };
        events.extend(r);
    }
    assert_eq!(events, []);
    // A quiet hop does not erase an ongoing word on its own: gate closes once, word wins.
    let mut det = detector(DetectorConfig::default());
    det.push_silence(Duration::ZERO).unwrap();
    let mut events = Vec::new();
    for k in 1..6u32 {
        events.extend(det.push(HOP * k, &word).unwrap());
    }
    assert_eq!(events.len(), 1);
}

#[test]
fn reset_forgets_history_and_allows_a_new_stream() {
    let mut det = detector(DetectorConfig::default());
    let word = peaked(GO, 0.95);
    assert_eq!(det.push(Duration::from_secs(10), &word).unwrap(), None);
    det.reset();
    // Time starts again, and the one result before reset does not count toward min_results.
    assert_eq!(det.push(Duration::ZERO, &word).unwrap(), None);
    assert!(det.push(HOP, &word).unwrap().is_some());
    // Reset also ends the refractory period and the latch.
    det.reset();
    assert_eq!(det.push(HOP * 2, &word).unwrap(), None);
    assert!(det.push(HOP * 3, &word).unwrap().is_some());
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let mut det = detector(DetectorConfig::default());
    assert_eq!(
        det.push(Duration::ZERO, &[0.5, 0.5, 0.0]),
        Err(DetectorError::ScoreCount {
            expected: 4,
            got: 3
        })
    );
    assert!(matches!(
        det.push(Duration::ZERO, &[f32::NAN, 0.0, 1.0, 0.0]),
        Err(DetectorError::NonFinite { index: 0, .. })
    ));
    det.push(HOP * 4, &peaked(SILENCE, 1.0)).unwrap();
    assert!(matches!(
        det.push(HOP, &peaked(SILENCE, 1.0)),
        Err(DetectorError::TimeWentBack { .. })
    ));
    let only_fillers = vec!["silence".to_string(), "unknown".to_string()];
    assert!(matches!(
        Detector::new(DetectorConfig::default(), &only_fillers),
        Err(DetectorError::Labels { .. })
    ));
    for cfg in [
        DetectorConfig {
            threshold: 0.0,
            ..DetectorConfig::default()
        },
        DetectorConfig {
            threshold: 1.5,
            ..DetectorConfig::default()
        },
        DetectorConfig {
            min_results: 0,
            ..DetectorConfig::default()
        },
        DetectorConfig {
            average_window: Duration::ZERO,
            ..DetectorConfig::default()
        },
    ] {
        let err = Detector::new(cfg, &labels()).unwrap_err();
        assert!(matches!(err, DetectorError::Config { .. }), "{err}");
    }
}

#[test]
fn softmax_turns_logits_into_probabilities() {
    // exp(1000) overflows f32: this only works if the maximum is subtracted first.
    let mut v = [1000.0f32, 1000.0 + 2f32.ln(), 0.0, -1000.0];
    softmax(&mut v);
    assert!((v.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    // 1000 + ln 2 is only representable to ~6e-5 in f32, hence the tolerance.
    assert!(
        (v[0] - 1.0 / 3.0).abs() < 1e-4 && (v[1] - 2.0 / 3.0).abs() < 1e-4,
        "{v:?}"
    );
    assert_eq!((v[2], v[3]), (0.0, 0.0));
}
