//! Teaching the toy its owner's voice, without a keyboard: the enrollment session.
//!
//! Pure, like the rest of `core`: the [`Machine`](super::Machine) owns one [`Enrollment`]
//! while a session runs, hands it the time with every event, and carries out the
//! [`Action`]s it returns. The session walks through every word `takes` times:
//!
//! 1. **prompt** — the screen says which word and which take ("say: LEFT  take 3/6"), for
//!    [`EnrollmentConfig::prompt_time`], so the owner can read it. If a sound is still
//!    playing (the clip the gesture's first press started) it waits for the speaker.
//! 2. **listening** — green LED on, [`Action::RecordTake`] asks the enroller thread for
//!    [`EnrollmentConfig::take_length`] of microphone audio; it checks and saves the take and
//!    answers with a [`TakeResult`]. A watchdog ([`EnrollmentConfig::take_timeout`] past the
//!    take's end) turns a missing answer into a failure, so a dead thread cannot wedge it.
//! 3. **result** — "got it" (green blinks twice) and on to the next take, or the refusal's
//!    reason ("too quiet — again", red blinks twice) and the same word again. After
//!    [`EnrollmentConfig::max_refusals`] refusals in a row the session gives up (a dead or
//!    badly placed microphone must not keep the toy asking forever).
//! 4. **learning** — after the last take, [`Action::Adapt`]; the toy shows "learning…" and
//!    waits for [`Input::AdaptFinished`](super::Input::AdaptFinished), or until
//!    [`EnrollmentConfig::adapt_timeout`]: then [`Action::StopLearning`] tells the adapter
//!    not to switch models any more, and the screen says "Not learned".
//!
//! After the keywords come the owner's **other words** ([`EnrollmentConfig::other_words`],
//! the model's `[adapt] other_words`), once each, saved as `unknown` takes: a head taught
//! only the owner's keywords would start hearing keywords in whatever else that voice says.
//!
//! The log says at each step what the screen and LEDs say.

use std::time::Duration;

use super::machine::{Action, LedPattern};
use crate::hw::leds::Led;
use crate::ui::Screen;

/// The keywords, in the order a session asks for them.
pub const DEFAULT_WORDS: [&str; 8] = ["yes", "no", "up", "down", "left", "right", "go", "stop"];

/// How a session runs. Defaults are the product's behaviour.
#[derive(Clone, Debug, PartialEq)]
pub struct EnrollmentConfig {
    /// The words to teach, in order.
    pub words: Vec<String>,
    /// Takes of each word.
    pub takes: usize,
    /// Words that are not commands, asked for once each after the keywords and saved in the
    /// [`OTHER_WORDS_FOLDER`] (empty: none).
    pub other_words: Vec<String>,
    /// How long the prompt shows before listening starts.
    pub prompt_time: Duration,
    /// Microphone audio recorded per take (the take kept is the 1 s around the word).
    pub take_length: Duration,
    /// How long "got it" / "too quiet — again" shows.
    pub result_time: Duration,
    /// Refused takes in a row after which the session gives up.
    pub max_refusals: u32,
    /// A take not answered this long after it should have ended counts as failed.
    pub take_timeout: Duration,
    /// Learning not answered within this counts as failed.
    pub adapt_timeout: Duration,
}

impl Default for EnrollmentConfig {
    fn default() -> Self {
        EnrollmentConfig {
            words: DEFAULT_WORDS.iter().map(|w| w.to_string()).collect(),
            takes: 6,
            other_words: Vec::new(),
            prompt_time: Duration::from_millis(800),
            take_length: Duration::from_secs(2),
            result_time: Duration::from_secs(1),
            max_refusals: 5,
            take_timeout: Duration::from_secs(5),
            adapt_timeout: Duration::from_secs(600),
        }
    }
}

/// What the enroller thread made of one take.
#[derive(Clone, Debug, PartialEq)]
pub enum TakeResult {
    /// Checked and saved.
    Kept,
    /// The take is unusable; ask again. `reason` is short, for the screen ("too quiet",
    /// "clipped", "too long", "too short"); `detail` is the full sentence for the log.
    Refused { reason: String, detail: String },
    /// Recording or saving failed (no audio from the microphone, disk error): the session
    /// stops, because asking again would not help.
    Failed(String),
}

/// The adapter's answer: held-out accuracy before and after, 0..=1, and whether the new
/// model was switched to (it is only when it is better).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdaptOutcome {
    pub before: f32,
    pub after: f32,
    pub switched: bool,
}

/// The folder (and class) the owner's other words are saved under: the model's `unknown`.
pub const OTHER_WORDS_FOLDER: &str = crate::kws::meta::UNKNOWN;

/// Which word and take a session is at: every keyword `takes` times, then every other word
/// once (counted as takes 1..=n of one group, so the screen and the held-out rule treat them
/// like the takes of one word).
#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    words: Vec<String>,
    takes: usize,
    others: Vec<String>,
    /// Index into `words`, then `words.len() + i` for other word `i`.
    word: usize,
    /// 1-based take of the current keyword.
    take: usize,
    /// Refusals in a row.
    refusals: u32,
    /// Takes kept so far.
    kept: usize,
}

impl Progress {
    /// A session over `words` x `takes`, then `others` once each; `None` when there is no
    /// keyword to record (other words alone teach nothing).
    pub fn new(words: &[String], takes: usize, others: &[String]) -> Option<Progress> {
        if words.is_empty() || takes == 0 {
            return None;
        }
        Some(Progress {
            words: words.to_vec(),
            takes,
            others: others.to_vec(),
            word: 0,
            take: 1,
            refusals: 0,
            kept: 0,
        })
    }

    /// Index of the current other word, once the keywords are done.
    fn other(&self) -> Option<usize> {
        self.word.checked_sub(self.words.len())
    }

    /// The word to say now.
    pub fn word(&self) -> &str {
        match self.other() {
            None => &self.words[self.word],
            Some(i) => self.others.get(i).map_or("", String::as_str),
        }
    }

    /// The folder the take is saved in: the keyword, or [`OTHER_WORDS_FOLDER`].
    pub fn folder(&self) -> &str {
        match self.other() {
            None => &self.words[self.word],
            Some(_) => OTHER_WORDS_FOLDER,
        }
    }

    /// The take of the current word, 1-based (for an other word: which of them).
    pub fn take(&self) -> usize {
        self.other().map_or(self.take, |i| i + 1)
    }

    /// Takes per word (for the other words: how many there are).
    pub fn takes(&self) -> usize {
        if self.other().is_some() {
            self.others.len()
        } else {
            self.takes
        }
    }

    /// Takes kept so far, all words.
    pub fn kept(&self) -> usize {
        self.kept
    }

    /// Takes the session asks for in all.
    pub fn total(&self) -> usize {
        self.words.len() * self.takes + self.others.len()
    }

    /// `true` once every take of every word is kept.
    pub fn done(&self) -> bool {
        self.word >= self.words.len() + self.others.len()
    }

    /// Counts a kept take and moves on.
    pub fn keep(&mut self) {
        self.kept += 1;
        self.refusals = 0;
        if self.other().is_some() || self.take >= self.takes {
            self.word += 1;
            self.take = 1;
        } else {
            self.take += 1;
        }
    }

    /// `true` while asking for the other words (every keyword take is kept).
    pub fn in_other_words(&self) -> bool {
        self.other().is_some() && !self.done()
    }

    /// Gives up on the remaining other words: the session is done.
    pub fn skip_other_words(&mut self) {
        self.word = self.words.len() + self.others.len();
    }

    /// Counts a refusal; returns how many in a row.
    pub fn refuse(&mut self) -> u32 {
        self.refusals += 1;
        self.refusals
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Step {
    /// Showing which word to say until then.
    Prompt { until: Duration },
    /// The prompt is over but a sound is still playing: listen once it ends.
    WaitSpeaker,
    /// A take with this id is being recorded; failed if unanswered by `watchdog`.
    Listening { id: u64, watchdog: Duration },
    /// "got it" / "again" until then.
    Result { until: Duration },
    /// The adapter is at work; failed if unanswered by `watchdog`.
    Learning { watchdog: Duration },
}

/// How a session ended, for the machine.
#[derive(Clone, Debug, PartialEq)]
pub enum Ended {
    /// Still running.
    No,
    /// Over; the machine shows its idle screen (after whatever screen was just pushed,
    /// for the given time, if any).
    Yes { message_for: Option<Duration> },
}

/// A running session.
#[derive(Clone, Debug, PartialEq)]
pub struct Enrollment {
    cfg: EnrollmentConfig,
    progress: Progress,
    step: Step,
    next_take_id: u64,
}

impl Enrollment {
    /// Starts a session at `at`: the first prompt. `None` (and nothing to do) when the
    /// config asks for no takes.
    pub fn start(cfg: &EnrollmentConfig, at: Duration, out: &mut Vec<Action>) -> Option<Self> {
        let progress = Progress::new(&cfg.words, cfg.takes, &cfg.other_words)?;
        log::info!(
            "teaching the toy a voice: {} word(s) x {} take(s), then {} other word(s) once each",
            cfg.words.len(),
            cfg.takes,
            cfg.other_words.len()
        );
        let mut e = Enrollment {
            cfg: cfg.clone(),
            progress,
            step: Step::Prompt { until: at },
            next_take_id: 1,
        };
        out.push(Action::BeginEnrollment);
        e.prompt(at, out);
        Some(e)
    }

    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// `true` while waiting for a worker thread (a take or the adapter); virtual time
    /// must not jump then.
    pub fn is_busy(&self) -> bool {
        matches!(self.step, Step::Listening { .. } | Step::Learning { .. })
    }

    /// `true` while the adapter runs: a press cannot cancel it.
    pub fn is_learning(&self) -> bool {
        matches!(self.step, Step::Learning { .. })
    }

    /// When the session next wants a tick.
    pub fn deadline(&self) -> Option<Duration> {
        match self.step {
            Step::Prompt { until } | Step::Result { until } => Some(until),
            Step::Listening { watchdog, .. } | Step::Learning { watchdog } => Some(watchdog),
            Step::WaitSpeaker => None,
        }
    }

    /// The screen this step shows (what the toy returns to after a fault clears, say).
    pub fn screen(&self) -> Screen {
        let p = &self.progress;
        match self.step {
            Step::Prompt { .. } | Step::WaitSpeaker => self.say_screen(false),
            Step::Listening { .. } => self.say_screen(true),
            Step::Result { .. } => self.say_screen(false),
            Step::Learning { .. } => Screen::EnrollLearning { takes: p.kept() },
        }
    }

    fn say_screen(&self, listening: bool) -> Screen {
        Screen::EnrollSay {
            word: self.progress.word().to_string(),
            take: self.progress.take(),
            takes: self.progress.takes(),
            other_word: self.progress.in_other_words(),
            listening,
        }
    }

    /// Fires the step's deadline if it is due at `due`. `speaker_busy`: a sound is playing.
    pub fn fire(&mut self, due: Duration, speaker_busy: bool, out: &mut Vec<Action>) -> Ended {
        if self.deadline() != Some(due) {
            return Ended::No;
        }
        match self.step {
            Step::Prompt { .. } if speaker_busy => {
                log::info!("teaching: waiting for the speaker to finish before listening");
                self.step = Step::WaitSpeaker;
                Ended::No
            }
            Step::Prompt { .. } => {
                self.listen(due, out);
                Ended::No
            }
            Step::Result { .. } if self.progress.done() => {
                self.learn(due, out);
                Ended::No
            }
            Step::Result { .. } => {
                self.prompt(due, out);
                Ended::No
            }
            Step::Listening { id, .. } => {
                // The enroller may still be at it: it must neither save the take after the
                // session has ended nor be busy with it when the next one starts.
                out.push(Action::CancelTake);
                self.take_finished(
                    id,
                    TakeResult::Failed("no take arrived from the microphone in time".into()),
                    due,
                    out,
                )
            }
            Step::Learning { .. } => {
                out.push(Action::StopLearning);
                let why = format!(
                    "learning took over {} min; the takes are saved for `chatterbox adapt`",
                    self.cfg.adapt_timeout.as_secs().div_ceil(60)
                );
                self.adapt_finished(Err(why), out)
            }
            Step::WaitSpeaker => Ended::No,
        }
    }

    /// The speaker went quiet.
    pub fn speaker_free(&mut self, at: Duration, out: &mut Vec<Action>) {
        if self.step == Step::WaitSpeaker {
            self.listen(at, out);
        }
    }

    /// The enroller's answer for take `id`.
    pub fn take_finished(
        &mut self,
        id: u64,
        result: TakeResult,
        at: Duration,
        out: &mut Vec<Action>,
    ) -> Ended {
        match self.step {
            Step::Listening { id: current, .. } if current == id => {}
            _ => {
                log::debug!("teaching: stale report for take {id} ignored: {result:?}");
                return Ended::No;
            }
        }
        out.push(Action::Led(Led::Green, LedPattern::Off));
        let word = self.progress.word().to_string();
        let (take, takes) = (self.progress.take(), self.progress.takes());
        let other_word = self.progress.in_other_words();
        let count = if other_word { "other word" } else { "take" };
        match result {
            TakeResult::Kept => {
                log::info!("teaching: got it — \"{word}\" {count} {take}/{takes}");
                self.progress.keep();
                out.push(Action::Led(Led::Green, LedPattern::GOT_IT));
                out.push(Action::Show(Screen::EnrollGotIt {
                    word,
                    take,
                    takes,
                    other_word,
                }));
                self.step = Step::Result {
                    until: at + self.cfg.result_time,
                };
                Ended::No
            }
            TakeResult::Refused { reason, detail } => {
                let n = self.progress.refuse();
                if n >= self.cfg.max_refusals && self.progress.in_other_words() {
                    // Every keyword take is kept: learn from them rather than lose the
                    // session over a word that is not even a command.
                    log::warn!("teaching: {n} takes of \"{word}\" refused in a row (the last: {detail}); learning without the remaining other words");
                    self.progress.skip_other_words();
                    self.learn(at, out);
                    return Ended::No;
                }
                if n >= self.cfg.max_refusals {
                    log::warn!("teaching stopped: {n} takes of \"{word}\" refused in a row; the last: {detail}");
                    return self.fail(
                        format!("{n} takes of \"{word}\" in a row were {reason}"),
                        out,
                    );
                }
                log::info!("teaching: {reason} — \"{word}\" again ({detail})");
                out.push(Action::Led(Led::Red, LedPattern::AGAIN));
                out.push(Action::Show(Screen::EnrollAgain { word, reason }));
                self.step = Step::Result {
                    until: at + self.cfg.result_time,
                };
                Ended::No
            }
            TakeResult::Failed(why) => {
                log::warn!("teaching stopped: take {take} of \"{word}\" failed: {why}");
                self.fail(why, out)
            }
        }
    }

    /// The adapter's answer.
    pub fn adapt_finished(
        &mut self,
        result: Result<AdaptOutcome, String>,
        out: &mut Vec<Action>,
    ) -> Ended {
        if !self.is_learning() {
            log::debug!("teaching: adapter report while not learning ignored: {result:?}");
            return Ended::No;
        }
        out.push(Action::Led(Led::Green, LedPattern::Off));
        match result {
            Ok(o) => {
                if o.switched {
                    log::info!(
                        "learned your voice: {:.0} % -> {:.0} % on your held-out takes; the new model is in use",
                        o.before * 100.0,
                        o.after * 100.0
                    );
                    out.push(Action::Led(Led::Green, LedPattern::GOT_IT));
                } else {
                    log::info!(
                        "kept the old model: {:.0} % -> {:.0} % on your held-out takes is no better",
                        o.before * 100.0,
                        o.after * 100.0
                    );
                }
                out.push(Action::Show(Screen::EnrollResult {
                    before: o.before,
                    after: o.after,
                    switched: o.switched,
                }));
                Ended::Yes {
                    message_for: Some(self.cfg.result_time * 5),
                }
            }
            Err(why) => {
                log::warn!("teaching: learning failed: {why}");
                self.fail(why, out)
            }
        }
    }

    /// A press cancelled the session.
    pub fn cancel(&mut self, out: &mut Vec<Action>) -> Ended {
        log::info!(
            "teaching cancelled by a press ({} take(s) kept so far stay in the enroll folder)",
            self.progress.kept()
        );
        if matches!(self.step, Step::Listening { .. }) {
            out.push(Action::CancelTake);
        }
        out.push(Action::Led(Led::Green, LedPattern::Off));
        Ended::Yes { message_for: None }
    }

    fn fail(&mut self, why: String, out: &mut Vec<Action>) -> Ended {
        out.push(Action::Led(Led::Red, LedPattern::FAILED));
        out.push(Action::Show(Screen::Error {
            title: "Not learned".into(),
            detail: why,
        }));
        Ended::Yes {
            message_for: Some(self.cfg.result_time * 4),
        }
    }

    fn prompt(&mut self, at: Duration, out: &mut Vec<Action>) {
        let p = &self.progress;
        log::info!(
            "teaching: say \"{}\" ({} {}/{})",
            p.word(),
            if p.in_other_words() {
                "other word"
            } else {
                "take"
            },
            p.take(),
            p.takes()
        );
        self.step = Step::Prompt {
            until: at + self.cfg.prompt_time,
        };
        out.push(Action::Show(self.say_screen(false)));
    }

    fn listen(&mut self, at: Duration, out: &mut Vec<Action>) {
        let id = self.next_take_id;
        self.next_take_id += 1;
        log::info!("teaching: listening for \"{}\"", self.progress.word());
        self.step = Step::Listening {
            id,
            watchdog: at + self.cfg.take_length + self.cfg.take_timeout,
        };
        out.push(Action::RecordTake {
            id,
            word: self.progress.folder().to_string(),
            take: self.progress.take(),
            length: self.cfg.take_length,
        });
        out.push(Action::Led(Led::Green, LedPattern::On));
        out.push(Action::Show(self.say_screen(true)));
    }

    fn learn(&mut self, at: Duration, out: &mut Vec<Action>) {
        log::info!("teaching: learning from {} take(s)…", self.progress.kept());
        self.step = Step::Learning {
            watchdog: at + self.cfg.adapt_timeout,
        };
        out.push(Action::Adapt);
        out.push(Action::Led(Led::Green, LedPattern::LEARNING));
        out.push(Action::Show(self.screen()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(ws: &[&str]) -> Vec<String> {
        ws.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn progress_walks_every_word_and_take() {
        let mut p = Progress::new(&words(&["go", "stop"]), 2, &[]).unwrap();
        let mut seen = vec![];
        while !p.done() {
            seen.push((p.word().to_string(), p.take()));
            p.keep();
        }
        assert_eq!(
            seen,
            [
                ("go".to_string(), 1),
                ("go".to_string(), 2),
                ("stop".to_string(), 1),
                ("stop".to_string(), 2)
            ]
        );
        assert_eq!((p.kept(), p.total()), (4, 4));
        assert_eq!(p.word(), "", "no word past the end, and no panic");
        assert!(Progress::new(&[], 3, &[]).is_none());
        assert!(Progress::new(&words(&["go"]), 0, &[]).is_none());
        assert!(
            Progress::new(&[], 3, &words(&["rainbow"])).is_none(),
            "other words alone teach nothing"
        );
    }

    #[test]
    fn other_words_follow_the_keywords_once_each_into_the_unknown_folder() {
        let others = words(&["rainbow", "cookie", "hippo"]);
        let mut p = Progress::new(&words(&["go"]), 2, &others).unwrap();
        let mut seen = vec![];
        while !p.done() {
            seen.push((
                p.word().to_string(),
                p.folder().to_string(),
                p.take(),
                p.takes(),
            ));
            p.keep();
        }
        let row = |w: &str, f: &str, t, n| (w.to_string(), f.to_string(), t, n);
        assert_eq!(
            seen,
            [
                row("go", "go", 1, 2),
                row("go", "go", 2, 2),
                row("rainbow", "unknown", 1, 3),
                row("cookie", "unknown", 2, 3),
                row("hippo", "unknown", 3, 3),
            ]
        );
        assert_eq!((p.kept(), p.total()), (5, 5));
        assert_eq!(
            (p.word(), p.folder()),
            ("", "unknown"),
            "no panic past the end"
        );
    }

    #[test]
    fn refusals_of_an_other_word_end_in_learning_not_in_failure() {
        let cfg = EnrollmentConfig {
            words: words(&["go"]),
            takes: 1,
            other_words: words(&["rainbow", "cookie"]),
            max_refusals: 2,
            ..EnrollmentConfig::default()
        };
        let mut out = Vec::new();
        let mut e = Enrollment::start(&cfg, Duration::ZERO, &mut out).unwrap();
        let next = |e: &mut Enrollment, out: &mut Vec<Action>| {
            let due = e.deadline().unwrap();
            assert_eq!(e.fire(due, false, out), Ended::No);
            due
        };
        let refused = || TakeResult::Refused {
            reason: "too long".into(),
            detail: "too long".into(),
        };
        let at = next(&mut e, &mut out); // listen: "go"
        e.take_finished(1, TakeResult::Kept, at, &mut out);
        assert!(out.contains(&Action::Show(Screen::EnrollGotIt {
            word: "go".into(),
            take: 1,
            takes: 1,
            other_word: false,
        })));
        next(&mut e, &mut out); // prompt: "rainbow"
        let at = next(&mut e, &mut out); // listen
        assert!(e.progress().in_other_words());
        // Said once: the screen counts words, not takes of it.
        assert_eq!(
            e.screen(),
            Screen::EnrollSay {
                word: "rainbow".into(),
                take: 1,
                takes: 2,
                other_word: true,
                listening: true,
            }
        );
        e.take_finished(2, refused(), at, &mut out);
        next(&mut e, &mut out); // prompt again
        let at = next(&mut e, &mut out); // listen again
        out.clear();
        assert_eq!(e.take_finished(3, refused(), at, &mut out), Ended::No);
        assert!(e.is_learning(), "{out:?}");
        assert!(out.contains(&Action::Adapt), "{out:?}");
        assert!(
            !out.iter()
                .any(|a| matches!(a, Action::Show(Screen::Error { .. }))),
            "{out:?}"
        );
        assert_eq!(e.progress().kept(), 1);
    }

    #[test]
    fn the_last_other_word_kept_is_shown_as_a_word() {
        let cfg = EnrollmentConfig {
            words: words(&["go"]),
            takes: 1,
            other_words: words(&["rainbow"]),
            ..EnrollmentConfig::default()
        };
        let mut out = Vec::new();
        let mut e = Enrollment::start(&cfg, Duration::ZERO, &mut out).unwrap();
        let next = |e: &mut Enrollment, out: &mut Vec<Action>| {
            let due = e.deadline().unwrap();
            e.fire(due, false, out);
            due
        };
        let at = next(&mut e, &mut out); // listen: "go"
        e.take_finished(1, TakeResult::Kept, at, &mut out);
        next(&mut e, &mut out); // prompt: "rainbow"
        let at = next(&mut e, &mut out); // listen
        out.clear();
        e.take_finished(2, TakeResult::Kept, at, &mut out);
        // Read before the session moved on (it is done now): still an other word.
        assert!(e.progress().done());
        assert!(
            out.contains(&Action::Show(Screen::EnrollGotIt {
                word: "rainbow".into(),
                take: 1,
                takes: 1,
                other_word: true,
            })),
            "{out:?}"
        );
    }

    #[test]
    fn a_learning_that_outlasts_the_watchdog_is_told_to_stop() {
        let cfg = EnrollmentConfig {
            words: words(&["go"]),
            takes: 1,
            ..EnrollmentConfig::default()
        };
        let mut out = Vec::new();
        let mut e = Enrollment::start(&cfg, Duration::ZERO, &mut out).unwrap();
        let due = e.deadline().unwrap();
        e.fire(due, false, &mut out); // listening
        e.take_finished(1, TakeResult::Kept, due, &mut out);
        let due = e.deadline().unwrap();
        e.fire(due, false, &mut out); // learning
        assert!(e.is_learning());
        let watchdog = e.deadline().unwrap();
        assert_eq!(watchdog, due + cfg.adapt_timeout);
        out.clear();
        let ended = e.fire(watchdog, false, &mut out);
        assert!(matches!(ended, Ended::Yes { .. }), "{ended:?}");
        assert!(out.contains(&Action::StopLearning), "{out:?}");
        assert!(
            out.iter().any(
                |a| matches!(a, Action::Show(Screen::Error { title, .. }) if title == "Not learned")
            ),
            "{out:?}"
        );
    }

    #[test]
    fn refusals_count_in_a_row_and_reset_on_a_kept_take() {
        let mut p = Progress::new(&words(&["go"]), 3, &[]).unwrap();
        assert_eq!(p.refuse(), 1);
        assert_eq!(p.refuse(), 2);
        p.keep();
        assert_eq!(p.refuse(), 1);
        assert_eq!(p.take(), 2, "a refusal does not advance the take");
    }
}
