//! The chatter-box state machine.
//!
//! Events with timestamps go in, actions come out. Nothing here sleeps, spawns, reads a
//! clock or touches a file: the controller thread feeds it and carries out what it asks,
//! and tests drive it with a fake clock to the millisecond.
//!
//! # Behaviour
//! * **Short press** (released before `record_hold`, 10 s): stops playback if something is
//!   playing, otherwise plays a random clip; with no clips, plays the "empty" cue and
//!   blinks red.
//! * **Held `record_hold`**: plays the burp cue, then records a clip (green LED on while
//!   recording). The recording finishes even if the button is released meanwhile.
//! * **Held `erase_hold`** (20 s): a second cue and the red LED tell the person to let go;
//!   on release every recording is erased, including one just made. Saying "no" before
//!   letting go abandons the erase.
//! * A press that *begins* while a recording is being made is ignored until released: the
//!   microphone is busy and playing a clip would end up in the recording.
//! * Voice commands map to the same actions (see [`VoiceCommand`]); they are ignored while
//!   recording, except "cancel", which can still abandon a pending erase.
//! * **Tap, then press and hold `enroll_hold`** (2 s) — a double press whose second press is
//!   held — teaches the toy its owner's voice (see [`super::enrollment`]). The first tap (held
//!   at most `double_press_window`, 0.6 s) is an ordinary short press: it plays (or stops) a
//!   clip at once, so no press waits to find out whether a second one follows. The second
//!   press must begin within `double_press_window` of the tap's release; at 2 s the clip the
//!   tap started is stopped, the green LED lights and the screen says "let go"; releasing
//!   then starts the session. Released before 2 s it is an ordinary short press (it stops the
//!   clip, as a second press always did); held on to 10 s it records, as any hold does. So
//!   nothing that worked before the gesture existed does anything else now, except a second
//!   press held 2-10 s right after a tap, which used to be a slow "stop".
//! * While a session runs, voice commands are ignored (the words said *are* the commands)
//!   and a press of any length cancels it, except while learning, when presses are ignored.
//!
//! Deadlines (the 10 s and 20 s marks, screen time-outs, the recording countdown) are the
//! machine's own: [`Machine::next_deadline`] says when it next wants a
//! [`Input::Tick`], and every event first fires the deadlines that fell before it, so a
//! release stamped exactly at 10 s counts as a hold even if no tick arrived in between.
//!
//! **Hold decisions follow the stamps, not the order of arrival.** A debounced release
//! reaches the controller [`MachineConfig::release_grace`] after the moment it is stamped
//! with (the debouncer must see the new level hold first). So a hold mark is confirmed only
//! once that grace has passed after it: a release stamped at 19.98 s but delivered at
//! 20.01 s is still a release before 20 s, and erases nothing. The other way round, a
//! release stamped past a mark that no tick has confirmed yet first reaches that mark.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::clip_order::{recording_order, sort_clips};
use super::commands::VoiceCommand;
use super::enrollment::{AdaptOutcome, Ended, Enrollment, EnrollmentConfig, TakeResult};
use crate::hw::leds::Led;
use crate::ui::Screen;

/// Timing and limits of the machine. Defaults are the product's behaviour.
#[derive(Clone, Debug, PartialEq)]
pub struct MachineConfig {
    /// Holding this long records a clip.
    pub record_hold: Duration,
    /// Holding this long erases every clip on release.
    pub erase_hold: Duration,
    /// Length of a recorded clip.
    pub record_length: Duration,
    /// How long transient screens ("heard", "erased", errors) stay up.
    pub message_time: Duration,
    /// Volume at start, 0..=10.
    pub initial_volume: u8,
    /// Whether the keyword recognizer is running (shown on the idle screen).
    pub listening: bool,
    /// Seed for picking random clips; fixed in tests, from the OS otherwise.
    pub seed: u64,
    /// How long after its stamp a button release may arrive (debounce + polling + thread
    /// wake-up). Hold marks fire this much late so a release stamped before a mark is
    /// never overtaken by it; zero when edges arrive in order (virtual time, tests).
    pub release_grace: Duration,
    /// Longest tap, and longest gap between its release and the second press, that make a
    /// double press.
    pub double_press_window: Duration,
    /// How long the second press of a double press is held to teach the toy a voice.
    pub enroll_hold: Duration,
    /// The teaching session; `None`: the gesture does nothing special (no enroller thread).
    pub enrollment: Option<EnrollmentConfig>,
}

impl Default for MachineConfig {
    fn default() -> Self {
        MachineConfig {
            record_hold: Duration::from_secs(10),
            erase_hold: Duration::from_secs(20),
            record_length: Duration::from_secs(5),
            message_time: Duration::from_secs(2),
            initial_volume: 7,
            listening: false,
            seed: 0,
            release_grace: Duration::ZERO,
            double_press_window: Duration::from_millis(600),
            enroll_hold: Duration::from_secs(2),
            enrollment: Some(EnrollmentConfig::default()),
        }
    }
}

/// A timestamped input. `at` is the time since the program started.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub at: Duration,
    pub input: Input,
}

impl Event {
    pub fn new(at: Duration, input: Input) -> Self {
        Event { at, input }
    }
}

/// What can happen to the toy.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// The (debounced) button went down.
    ButtonDown,
    /// The (debounced) button came up.
    ButtonUp,
    /// Time passed; fire any deadline that is due.
    Tick,
    /// The player finished the sound it was given under `id` (played through, stopped,
    /// or failed — the machine treats them alike: the speaker is free again).
    PlaybackFinished { id: u64 },
    /// The recorder finished: `Ok(name)` of the new clip, or why it failed.
    RecordingFinished { result: Result<String, String> },
    /// Every clip was erased (`Ok(count)`), or erasing failed.
    Erased { result: Result<usize, String> },
    /// The library was (re)read: every clip name, any order.
    LibraryScanned { clips: Vec<String> },
    /// The keyword recognizer heard `word`; `command` is what the word map says it means.
    Heard {
        word: String,
        confidence: f32,
        command: Option<VoiceCommand>,
    },
    /// A device needs attention (`Some(title, detail)`) or is fine again (`None`).
    Fault(Option<(String, String)>),
    /// The enroller finished the take asked for under `id` (see [`Action::RecordTake`]).
    TakeFinished { id: u64, result: TakeResult },
    /// The adapter finished (see [`Action::Adapt`]).
    AdaptFinished {
        result: Result<AdaptOutcome, String>,
    },
}

/// A sound the machine asks the player for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sound {
    /// A recording, by file name inside the library.
    Clip(String),
    /// A built-in cue.
    Cue(Cue),
}

/// The built-in cues (files in `sounds/`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cue {
    /// Held 10 s: recording is about to start.
    Burp,
    /// Held 20 s: let go to erase everything.
    EraseWarning,
    /// Short press with no recordings.
    Empty,
}

impl Cue {
    /// The cue's file name in the sounds folder.
    pub fn file_name(self) -> &'static str {
        match self {
            Cue::Burp => "burp.wav",
            Cue::EraseWarning => "erase.wav",
            Cue::Empty => "empty.wav",
        }
    }
}

/// What an LED should do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LedPattern {
    Off,
    On,
    /// Blink `times` times (`None`: until told otherwise), then stay off.
    Blink {
        on: Duration,
        off: Duration,
        times: Option<u32>,
    },
}

impl LedPattern {
    /// One short flash: acknowledges a voice command.
    pub const FLASH: LedPattern = LedPattern::Blink {
        on: Duration::from_millis(150),
        off: Duration::from_millis(0),
        times: Some(1),
    };
    /// Three slow blinks: "nothing to play".
    pub const EMPTY: LedPattern = LedPattern::Blink {
        on: Duration::from_millis(200),
        off: Duration::from_millis(200),
        times: Some(3),
    };
    /// Fast blinking until cleared: something is wrong (disk full, no microphone).
    pub const FAULT: LedPattern = LedPattern::Blink {
        on: Duration::from_millis(100),
        off: Duration::from_millis(100),
        times: None,
    };
    /// Six fast blinks: an operation failed.
    pub const FAILED: LedPattern = LedPattern::Blink {
        on: Duration::from_millis(100),
        off: Duration::from_millis(100),
        times: Some(6),
    };
    /// Two quick blinks (green): a take was kept, or the toy learned the voice.
    pub const GOT_IT: LedPattern = LedPattern::Blink {
        on: Duration::from_millis(150),
        off: Duration::from_millis(150),
        times: Some(2),
    };
    /// Two slower blinks (red): the take was refused, say it again.
    pub const AGAIN: LedPattern = LedPattern::Blink {
        on: Duration::from_millis(250),
        off: Duration::from_millis(250),
        times: Some(2),
    };
    /// Slow blinking until cleared (green): learning the voice.
    pub const LEARNING: LedPattern = LedPattern::Blink {
        on: Duration::from_millis(500),
        off: Duration::from_millis(500),
        times: None,
    };
}

/// What the machine asks the rest of the program to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Play `sound`; the player answers with [`Input::PlaybackFinished`] carrying `id`.
    /// Starting a sound replaces whatever was playing.
    Play {
        id: u64,
        sound: Sound,
    },
    /// Stop whatever is playing.
    StopPlayback,
    /// Record a clip of this length; the recorder answers [`Input::RecordingFinished`].
    StartRecording {
        length: Duration,
    },
    /// Erase every clip; the recorder answers [`Input::Erased`].
    EraseAll,
    /// Playback volume, 0..=10.
    SetVolume(u8),
    Led(Led, LedPattern),
    Show(Screen),
    /// A teaching session starts: the enroller opens a new set of takes.
    BeginEnrollment,
    /// Record one take of `word` (its `take`-th) for `length`, check it, and save it if it
    /// is good; the enroller answers [`Input::TakeFinished`] with `id`.
    RecordTake {
        id: u64,
        word: String,
        take: usize,
        length: Duration,
    },
    /// Abandon the take being recorded (nothing is saved, no answer is needed).
    CancelTake,
    /// Learn from the saved takes; the adapter answers [`Input::AdaptFinished`].
    Adapt,
    /// The toy stopped waiting for the learning (it says "Not learned"): the adapter must not
    /// switch models any more, and its late answer is ignored.
    StopLearning,
}

/// How far the current press has got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hold {
    /// Released before `record_hold`: a short press.
    Short,
    /// Past `record_hold`: a recording was asked for.
    Record,
    /// Past `erase_hold`: release erases.
    Erase,
    /// Past `erase_hold` but "no" was said: release does nothing.
    EraseCancelled,
    /// The press began while recording: ignored until release.
    Ignored,
    /// The second press of a double press, not yet held `enroll_hold`: released now it is
    /// a short press.
    Armed,
    /// The second press of a double press held past `enroll_hold`: release teaches.
    EnrollReady,
    /// A press during a teaching session: release cancels it, whatever the length.
    Cancel,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Button {
    Up,
    Down { since: Duration, hold: Hold },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Recording {
    Idle,
    /// The burp cue with this playback id is playing; recording starts when it ends.
    AfterCue(u64),
    /// The recorder is at work; it started at this time.
    Running {
        started: Duration,
    },
}

/// The chatter-box state. See the module docs for the behaviour.
#[derive(Debug)]
pub struct Machine {
    cfg: MachineConfig,
    rng: StdRng,
    /// Clip names in recording order (see [`super::clip_order`]), oldest first.
    clips: Vec<String>,
    /// Index in `clips` of the clip last asked for (for previous/next).
    cursor: Option<usize>,
    next_id: u64,
    button: Button,
    /// Playback id of what is playing, if anything.
    playing: Option<u64>,
    recording: Recording,
    /// Erase asked for while a recording was running: done when it finishes.
    erase_after_recording: bool,
    /// An erase was sent to the recorder and has not been reported yet.
    erasing: bool,
    volume: u8,
    /// A transient screen is up until then; the idle screen returns after.
    message_until: Option<Duration>,
    /// Next whole-second update of the recording countdown.
    countdown_at: Option<Duration>,
    fault: Option<(String, String)>,
    /// Release time of the last tap (a short press no longer than `double_press_window`).
    last_tap: Option<Duration>,
    /// The teaching session, while one runs.
    enrollment: Option<Enrollment>,
}

impl Machine {
    /// A machine at rest with the given clips in the library.
    pub fn new(cfg: MachineConfig, clips: Vec<String>) -> Self {
        let mut m = Machine {
            rng: StdRng::seed_from_u64(cfg.seed),
            volume: cfg.initial_volume.min(10),
            cfg,
            clips: Vec::new(),
            cursor: None,
            next_id: 1,
            button: Button::Up,
            playing: None,
            recording: Recording::Idle,
            erase_after_recording: false,
            erasing: false,
            message_until: None,
            countdown_at: None,
            fault: None,
            last_tap: None,
            enrollment: None,
        };
        m.set_clips(clips);
        m
    }

    /// The actions to take at start-up: LEDs off, volume, the idle screen.
    pub fn start(&self) -> Vec<Action> {
        vec![
            Action::Led(Led::Green, LedPattern::Off),
            Action::Led(Led::Red, LedPattern::Off),
            Action::SetVolume(self.volume),
            Action::Show(self.idle_screen()),
        ]
    }

    /// Clip names currently known, in recording order.
    pub fn clips(&self) -> &[String] {
        &self.clips
    }

    /// Current volume, 0..=10.
    pub fn volume(&self) -> u8 {
        self.volume
    }

    /// `true` between a button press and its release.
    pub fn is_button_down(&self) -> bool {
        self.button != Button::Up
    }

    /// `true` when nothing is playing, recording or being erased and the button is up.
    pub fn is_idle(&self) -> bool {
        self.is_settled() && self.button == Button::Up
    }

    /// `true` when nothing is playing, recording or being erased (the button may be
    /// held): a scripted session may let time jump.
    pub fn is_settled(&self) -> bool {
        self.playing.is_none()
            && self.recording == Recording::Idle
            && !self.erase_after_recording
            && !self.erasing
            && !self.enrollment.as_ref().is_some_and(Enrollment::is_busy)
    }

    /// `true` while a teaching session runs (from the gesture to the result).
    pub fn is_enrolling(&self) -> bool {
        self.enrollment.is_some()
    }

    /// `true` while a sound is playing (the keyword recognizer is muted then, so the toy
    /// does not hear itself).
    pub fn is_playing(&self) -> bool {
        self.playing.is_some()
    }

    /// `true` while a recording is being made or about to start.
    pub fn is_recording(&self) -> bool {
        self.recording != Recording::Idle
    }

    /// When the machine next wants an [`Input::Tick`], if ever.
    pub fn next_deadline(&self) -> Option<Duration> {
        let hold = self
            .next_hold_mark()
            .map(|mark| mark + self.cfg.release_grace);
        let enroll = self.enrollment.as_ref().and_then(Enrollment::deadline);
        [hold, self.message_until, self.countdown_at, enroll]
            .into_iter()
            .flatten()
            .min()
    }

    /// The next hold mark (10 s or 20 s after the press) the held button has not reached
    /// yet, if the button is down and can still reach one.
    fn next_hold_mark(&self) -> Option<Duration> {
        match self.button {
            Button::Down {
                since,
                hold: Hold::Short,
            } => Some(since + self.cfg.record_hold),
            Button::Down {
                since,
                hold: Hold::Record,
            } => Some(since + self.cfg.erase_hold),
            Button::Down {
                since,
                hold: Hold::Armed,
            } => Some(since + self.cfg.enroll_hold),
            Button::Down {
                since,
                hold: Hold::EnrollReady,
            } => Some(since + self.cfg.record_hold),
            _ => None,
        }
    }

    /// Feeds one event; returns what to do, in order.
    pub fn handle(&mut self, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        self.advance(event.at, &mut out);
        let at = event.at;
        match event.input {
            Input::Tick => {}
            Input::ButtonDown => self.button_down(at, &mut out),
            Input::ButtonUp => self.button_up(at, &mut out),
            Input::PlaybackFinished { id } => self.playback_finished(id, at, &mut out),
            Input::RecordingFinished { result } => self.recording_finished(result, at, &mut out),
            Input::Erased { result } => self.erased(result, at, &mut out),
            Input::LibraryScanned { clips } => {
                self.set_clips(clips);
                self.refresh_idle(&mut out);
            }
            Input::Heard {
                word,
                confidence,
                command,
            } => self.heard(word, confidence, command, at, &mut out),
            Input::Fault(fault) => self.set_fault(fault, at, &mut out),
            Input::TakeFinished { id, result } => match self.enrollment.as_mut() {
                Some(e) => {
                    let ended = e.take_finished(id, result, at, &mut out);
                    self.enrollment_ended(ended, at, &mut out);
                }
                None => log::debug!("take {id} finished after teaching ended: {result:?}"),
            },
            Input::AdaptFinished { result } => match self.enrollment.as_mut() {
                Some(e) => {
                    let ended = e.adapt_finished(result, &mut out);
                    self.enrollment_ended(ended, at, &mut out);
                }
                None => log::warn!("adapter answered with no teaching session: {result:?}"),
            },
        }
        out
    }

    /// Starts a teaching session (the gesture was completed at `at`).
    fn start_enrollment(&mut self, at: Duration, out: &mut Vec<Action>) {
        let Some(cfg) = self.cfg.enrollment.clone() else {
            return;
        };
        self.message_until = None;
        out.push(Action::Led(Led::Green, LedPattern::Off));
        self.enrollment = Enrollment::start(&cfg, at, out);
        if self.enrollment.is_none() {
            out.push(Action::Show(self.resting_screen(at)));
        }
    }

    /// Clears the session if it ended; shows the idle screen or leaves a message up.
    fn enrollment_ended(&mut self, ended: Ended, at: Duration, out: &mut Vec<Action>) {
        let Ended::Yes { message_for } = ended else {
            return;
        };
        self.enrollment = None;
        match message_for {
            Some(d) => self.message_until = Some(at + d),
            None => out.push(Action::Show(self.resting_screen(at))),
        }
    }

    /// Fires every deadline at or before `now`, each at its own time, in order.
    fn advance(&mut self, now: Duration, out: &mut Vec<Action>) {
        // Every firing moves its deadline forward or clears it; the bound only guards
        // against a future bug turning into a hung controller.
        for _ in 0..1024 {
            match self.next_deadline().filter(|d| *d <= now) {
                Some(due) => self.fire(due, out),
                None => return,
            }
        }
        log::error!("state machine: deadlines did not settle at {now:?}");
    }

    fn fire(&mut self, due: Duration, out: &mut Vec<Action>) {
        if self.next_hold_mark().map(|m| m + self.cfg.release_grace) == Some(due) {
            self.reach_hold_mark(out);
            return;
        }
        if self.countdown_at == Some(due) {
            self.countdown(due, out);
            return;
        }
        let speaker_busy = self.playing.is_some();
        if let Some(e) = self.enrollment.as_mut() {
            if e.deadline() == Some(due) {
                let ended = e.fire(due, speaker_busy, out);
                self.enrollment_ended(ended, due, out);
                return;
            }
        }
        if self.message_until == Some(due) {
            self.message_until = None;
            out.push(Action::Show(self.resting_screen(due)));
        }
    }

    fn button_down(&mut self, at: Duration, out: &mut Vec<Action>) {
        if self.button != Button::Up {
            // Two downs in a row: the debouncer lost an up. Keep the first press.
            log::debug!("button down while already down; ignored");
            return;
        }
        let tap = self.last_tap.take();
        let hold = if let Some(e) = &self.enrollment {
            if e.is_learning() {
                log::info!("button pressed while learning: ignored");
                Hold::Ignored
            } else {
                Hold::Cancel
            }
        } else if self.recording != Recording::Idle {
            log::info!("button pressed while recording: ignored until released");
            Hold::Ignored
        } else if self.cfg.enrollment.is_some()
            && self.cfg.enroll_hold < self.cfg.record_hold
            && tap.is_some_and(|t| at.saturating_sub(t) <= self.cfg.double_press_window)
        {
            log::debug!("second press of a double press: hold it to teach the toy a voice");
            Hold::Armed
        } else {
            Hold::Short
        };
        self.button = Button::Down { since: at, hold };
        let _ = out;
    }

    fn button_up(&mut self, at: Duration, out: &mut Vec<Action>) {
        // Marks the release's own stamp has passed but whose grace has not run out yet.
        while let Some(mark) = self.next_hold_mark().filter(|m| *m <= at) {
            log::debug!("release stamped {at:?} is past the hold mark {mark:?}");
            self.reach_hold_mark(out);
        }
        let Button::Down { hold, since } = self.button else {
            log::debug!("button up while already up; ignored");
            return;
        };
        log::info!(
            "button released after {:.3} s",
            at.saturating_sub(since).as_secs_f64()
        );
        self.button = Button::Up;
        match hold {
            Hold::Short | Hold::Armed => {
                if hold == Hold::Short && at.saturating_sub(since) <= self.cfg.double_press_window {
                    self.last_tap = Some(at);
                }
                if self.playing.is_some() {
                    self.stop(out);
                } else {
                    self.play_random(at, out);
                }
            }
            Hold::EnrollReady => self.start_enrollment(at, out),
            Hold::Cancel => {
                if let Some(e) = self.enrollment.as_mut() {
                    let ended = e.cancel(out);
                    self.enrollment_ended(ended, at, out);
                }
            }
            Hold::Record | Hold::Ignored => {}
            Hold::EraseCancelled => {
                out.push(Action::Led(Led::Red, LedPattern::Off));
                out.push(Action::Show(self.resting_screen(at)));
            }
            Hold::Erase => {
                out.push(Action::Led(Led::Red, LedPattern::Off));
                match self.recording {
                    Recording::Running { .. } => self.erase_after_recording = true,
                    Recording::AfterCue(_) => {
                        // The burp is still playing: no clip exists yet, so don't make one.
                        self.recording = Recording::Idle;
                        out.push(Action::Led(Led::Green, LedPattern::Off));
                        self.erase(out);
                    }
                    Recording::Idle => self.erase(out),
                }
            }
        }
    }

    /// Moves the held button past its next hold mark.
    fn reach_hold_mark(&mut self, out: &mut Vec<Action>) {
        match self.button {
            Button::Down {
                since,
                hold: Hold::Short,
            } => self.reached_record_hold(since, out),
            Button::Down {
                since,
                hold: Hold::Record,
            } => self.reached_erase_hold(since, out),
            Button::Down {
                since,
                hold: Hold::Armed,
            } => self.reached_enroll_hold(since, out),
            Button::Down {
                since,
                hold: Hold::EnrollReady,
            } => {
                // Still held at 10 s: an ordinary record hold after all.
                out.push(Action::Led(Led::Green, LedPattern::Off));
                self.reached_record_hold(since, out);
            }
            _ => {}
        }
    }

    fn reached_enroll_hold(&mut self, since: Duration, out: &mut Vec<Action>) {
        self.button = Button::Down {
            since,
            hold: Hold::EnrollReady,
        };
        log::info!(
            "double press held {:?}: let go to teach the toy a voice",
            self.cfg.enroll_hold
        );
        // The clip the tap started is no longer wanted.
        self.stop(out);
        out.push(Action::Led(Led::Green, LedPattern::On));
        self.message_until = None;
        out.push(Action::Show(Screen::TeachReady));
    }

    fn reached_record_hold(&mut self, since: Duration, out: &mut Vec<Action>) {
        self.button = Button::Down {
            since,
            hold: Hold::Record,
        };
        let id = self.play(Sound::Cue(Cue::Burp), out);
        self.recording = Recording::AfterCue(id);
    }

    fn reached_erase_hold(&mut self, since: Duration, out: &mut Vec<Action>) {
        self.button = Button::Down {
            since,
            hold: Hold::Erase,
        };
        // Don't cut the burp short: the recording is waiting for it to end.
        if !matches!(self.recording, Recording::AfterCue(_)) {
            self.play(Sound::Cue(Cue::EraseWarning), out);
        }
        out.push(Action::Led(Led::Red, LedPattern::On));
        self.message_until = None;
        out.push(Action::Show(Screen::ReleaseToErase));
    }

    fn playback_finished(&mut self, id: u64, at: Duration, out: &mut Vec<Action>) {
        if self.playing == Some(id) {
            self.playing = None;
        }
        if let Some(e) = self.enrollment.as_mut() {
            if self.playing.is_none() {
                e.speaker_free(at, out);
            }
            return;
        }
        if self.recording == Recording::AfterCue(id) {
            self.recording = Recording::Running { started: at };
            out.push(Action::StartRecording {
                length: self.cfg.record_length,
            });
            out.push(Action::Led(Led::Green, LedPattern::On));
            self.countdown_at = Some(at);
            self.countdown(at, out);
        } else if self.playing.is_none() && self.message_until.is_none() {
            out.push(Action::Show(self.resting_screen(at)));
        }
    }

    fn countdown(&mut self, now: Duration, out: &mut Vec<Action>) {
        let Recording::Running { started } = self.recording else {
            self.countdown_at = None;
            return;
        };
        let elapsed = now.saturating_sub(started);
        let left = self.cfg.record_length.saturating_sub(elapsed);
        let seconds_left = left.as_secs_f32().ceil() as u8;
        if seconds_left == 0 {
            // The recorder's own report ends the recording; until then show "0".
            self.countdown_at = None;
        } else {
            self.countdown_at = Some(now + Duration::from_secs(1));
        }
        if !matches!(
            self.button,
            Button::Down {
                hold: Hold::Erase,
                ..
            }
        ) {
            out.push(Action::Show(Screen::Recording { seconds_left }));
        }
    }

    fn recording_finished(
        &mut self,
        result: Result<String, String>,
        at: Duration,
        out: &mut Vec<Action>,
    ) {
        if !matches!(self.recording, Recording::Running { .. }) {
            log::warn!("recorder reported a recording nobody asked for: {result:?}");
        }
        self.recording = Recording::Idle;
        self.countdown_at = None;
        out.push(Action::Led(Led::Green, LedPattern::Off));
        match result {
            Ok(name) => {
                if let Err(pos) = self.clips.binary_search_by(|c| recording_order(c, &name)) {
                    self.clips.insert(pos, name);
                }
            }
            Err(why) => self.show_failure("Recording failed", why, at, out),
        }
        if std::mem::take(&mut self.erase_after_recording) {
            self.erase(out);
        } else if self.message_until.is_none() && !self.erase_pending_on_release() {
            out.push(Action::Show(self.resting_screen(at)));
        }
    }

    fn erase(&mut self, out: &mut Vec<Action>) {
        self.erasing = true;
        out.push(Action::EraseAll);
    }

    fn erased(&mut self, result: Result<usize, String>, at: Duration, out: &mut Vec<Action>) {
        self.erasing = false;
        match result {
            Ok(count) => {
                self.clips.clear();
                self.cursor = None;
                self.message_until = Some(at + self.cfg.message_time);
                out.push(Action::Show(Screen::Erased { count }));
            }
            Err(why) => self.show_failure("Erase failed", why, at, out),
        }
    }

    fn heard(
        &mut self,
        word: String,
        confidence: f32,
        command: Option<VoiceCommand>,
        at: Duration,
        out: &mut Vec<Action>,
    ) {
        if self.enrollment.is_some() {
            // The words said while teaching are the commands themselves.
            log::info!("heard \"{word}\" while teaching: not a command");
            return;
        }
        let recording = self.recording != Recording::Idle;
        if !recording {
            out.push(Action::Led(Led::Green, LedPattern::FLASH));
            self.message_until = Some(at + self.cfg.message_time);
            out.push(Action::Show(Screen::Heard { word, confidence }));
        }
        let Some(command) = command else { return };
        if recording && command != VoiceCommand::Cancel {
            log::info!("voice command {command} ignored while recording");
            return;
        }
        match command {
            VoiceCommand::PlayRandom => self.play_random(at, out),
            VoiceCommand::Stop => self.stop(out),
            VoiceCommand::VolumeUp => self.set_volume(self.volume.saturating_add(1), out),
            VoiceCommand::VolumeDown => self.set_volume(self.volume.saturating_sub(1), out),
            VoiceCommand::Previous => self.step(-1, at, out),
            VoiceCommand::Next => self.step(1, at, out),
            VoiceCommand::PlayNewest => match self.clips.len() {
                0 => self.play_empty(out),
                n => self.play_clip(n - 1, out),
            },
            VoiceCommand::Cancel => {
                if let Button::Down {
                    since,
                    hold: Hold::Erase,
                } = self.button
                {
                    self.button = Button::Down {
                        since,
                        hold: Hold::EraseCancelled,
                    };
                    out.push(Action::Led(Led::Red, LedPattern::Off));
                }
                self.erase_after_recording = false;
                if !recording {
                    self.stop(out);
                }
            }
            VoiceCommand::Ignore => {}
        }
    }

    fn set_fault(&mut self, fault: Option<(String, String)>, at: Duration, out: &mut Vec<Action>) {
        if fault == self.fault {
            return;
        }
        self.fault = fault;
        match &self.fault {
            Some(_) => out.push(Action::Led(Led::Red, LedPattern::FAULT)),
            None => out.push(Action::Led(Led::Red, LedPattern::Off)),
        }
        if self.message_until.is_none() && self.recording == Recording::Idle {
            out.push(Action::Show(self.resting_screen(at)));
        }
    }

    fn show_failure(&mut self, title: &str, why: String, at: Duration, out: &mut Vec<Action>) {
        out.push(Action::Led(Led::Red, LedPattern::FAILED));
        self.message_until = Some(at + self.cfg.message_time * 2);
        out.push(Action::Show(Screen::Error {
            title: title.to_string(),
            detail: why,
        }));
    }

    fn play_random(&mut self, _at: Duration, out: &mut Vec<Action>) {
        if self.clips.is_empty() {
            self.play_empty(out);
        } else {
            let i = self.rng.random_range(0..self.clips.len());
            self.play_clip(i, out);
        }
    }

    fn step(&mut self, delta: isize, at: Duration, out: &mut Vec<Action>) {
        let n = self.clips.len();
        if n == 0 {
            return self.play_empty(out);
        }
        let i = match self.cursor {
            None if delta < 0 => n - 1,
            None => 0,
            Some(c) => (c as isize + delta).rem_euclid(n as isize) as usize,
        };
        let _ = at;
        self.play_clip(i, out);
    }

    fn play_clip(&mut self, index: usize, out: &mut Vec<Action>) {
        self.cursor = Some(index);
        let name = self.clips[index].clone();
        if self.message_until.is_none() {
            out.push(Action::Show(Screen::Playing { name: name.clone() }));
        }
        self.play(Sound::Clip(name), out);
    }

    fn play_empty(&mut self, out: &mut Vec<Action>) {
        self.play(Sound::Cue(Cue::Empty), out);
        out.push(Action::Led(Led::Red, LedPattern::EMPTY));
    }

    fn play(&mut self, sound: Sound, out: &mut Vec<Action>) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.playing = Some(id);
        out.push(Action::Play { id, sound });
        id
    }

    fn stop(&mut self, out: &mut Vec<Action>) {
        // A burp that leads into a recording is not the person's to stop.
        if let Some(id) = self.playing {
            if self.recording != Recording::AfterCue(id) {
                out.push(Action::StopPlayback);
            }
        }
    }

    fn set_volume(&mut self, volume: u8, out: &mut Vec<Action>) {
        self.volume = volume.min(10);
        out.push(Action::SetVolume(self.volume));
        if self.message_until.is_none() {
            out.push(Action::Show(self.idle_screen()));
        }
    }

    fn set_clips(&mut self, mut clips: Vec<String>) {
        sort_clips(&mut clips);
        self.clips = clips;
        self.cursor = self.cursor.filter(|c| *c < self.clips.len());
    }

    fn refresh_idle(&mut self, out: &mut Vec<Action>) {
        if self.is_idle() && self.message_until.is_none() && self.enrollment.is_none() {
            out.push(Action::Show(self.idle_screen()));
        }
    }

    fn erase_pending_on_release(&self) -> bool {
        matches!(
            self.button,
            Button::Down {
                hold: Hold::Erase,
                ..
            }
        )
    }

    /// The screen to return to when no message is up.
    fn resting_screen(&self, _at: Duration) -> Screen {
        if self.erase_pending_on_release() {
            return Screen::ReleaseToErase;
        }
        if let Some(e) = &self.enrollment {
            return e.screen();
        }
        if let Some((title, detail)) = &self.fault {
            return Screen::Error {
                title: title.clone(),
                detail: detail.clone(),
            };
        }
        self.idle_screen()
    }

    fn idle_screen(&self) -> Screen {
        Screen::Idle {
            clips: self.clips.len(),
            listening: self.cfg.listening,
            volume: self.volume,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn secs(n: f64) -> Duration {
        Duration::from_secs_f64(n)
    }

    /// A machine plus a fake clock and helpers to drive it.
    struct Rig {
        m: Machine,
    }

    impl Rig {
        fn new(clips: &[&str]) -> Self {
            let cfg = MachineConfig {
                seed: 7,
                ..MachineConfig::default()
            };
            Rig {
                m: Machine::new(cfg, clips.iter().map(|s| s.to_string()).collect()),
            }
        }
        fn at(&mut self, t: Duration, input: Input) -> Vec<Action> {
            self.m.handle(Event::new(t, input))
        }
        /// Button down at 0 s and still held: the burp (id 1) plays at 10 s, recording
        /// runs 10.5-15.5 s and makes `name`.
        fn hold_and_record(&mut self, name: &str) {
            self.at(secs(0.0), Input::ButtonDown);
            self.at(secs(10.0), Input::Tick);
            self.at(secs(10.5), Input::PlaybackFinished { id: 1 });
            self.at(
                secs(15.5),
                Input::RecordingFinished {
                    result: Ok(name.into()),
                },
            );
        }
        fn press(&mut self, down: Duration, up: Duration) -> Vec<Action> {
            let mut out = self.at(down, Input::ButtonDown);
            out.extend(self.at(up, Input::ButtonUp));
            out
        }
    }

    fn plays(actions: &[Action]) -> Vec<(u64, Sound)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Play { id, sound } => Some((*id, sound.clone())),
                _ => None,
            })
            .collect()
    }

    fn has(actions: &[Action], wanted: &Action) -> bool {
        actions.iter().any(|a| a == wanted)
    }

    #[test]
    fn short_press_plays_a_clip_from_the_library() {
        let mut r = Rig::new(&["a.wav", "b.wav"]);
        let out = r.press(secs(1.0), secs(1.2));
        let p = plays(&out);
        assert_eq!(p.len(), 1);
        assert!(matches!(&p[0].1, Sound::Clip(n) if n == "a.wav" || n == "b.wav"));
        assert!(r.m.is_playing());
    }

    #[test]
    fn random_choice_reaches_every_clip() {
        let mut r = Rig::new(&["a.wav", "b.wav", "c.wav"]);
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..60u64 {
            let out = r.press(secs(i as f64 * 2.0), secs(i as f64 * 2.0 + 0.1));
            if let Some((id, Sound::Clip(n))) = plays(&out).pop() {
                seen.insert(n);
                r.at(secs(i as f64 * 2.0 + 0.5), Input::PlaybackFinished { id });
            }
        }
        assert_eq!(seen.len(), 3, "{seen:?}");
    }

    #[test]
    fn release_at_9_999_s_is_a_short_press() {
        let mut r = Rig::new(&["a.wav"]);
        r.at(secs(0.0), Input::ButtonDown);
        let tick = r.at(ms(9_999), Input::Tick);
        assert!(plays(&tick).is_empty(), "nothing happens before 10 s");
        let out = r.at(ms(9_999), Input::ButtonUp);
        assert_eq!(plays(&out), vec![(1, Sound::Clip("a.wav".into()))]);
        assert!(!r.m.is_recording());
    }

    /// A rig whose releases arrive up to 60 ms after their stamps, as from the real
    /// button thread.
    fn rig_with_grace(clips: &[&str]) -> Rig {
        let cfg = MachineConfig {
            seed: 7,
            release_grace: ms(60),
            ..MachineConfig::default()
        };
        Rig {
            m: Machine::new(cfg, clips.iter().map(|s| s.to_string()).collect()),
        }
    }

    fn erases(actions: &[Action]) -> bool {
        has(actions, &Action::EraseAll)
    }

    #[test]
    fn a_late_release_stamped_before_20_s_does_not_erase() {
        let mut r = rig_with_grace(&["a.wav", "b.wav"]);
        r.at(secs(0.0), Input::ButtonDown);
        r.at(ms(10_060), Input::Tick); // the burp
        r.at(ms(10_500), Input::PlaybackFinished { id: 1 });
        r.at(
            ms(15_500),
            Input::RecordingFinished {
                result: Ok("c.wav".into()),
            },
        );
        assert_eq!(r.m.next_deadline(), Some(ms(20_060)));
        // The timer wakes at 20.03 s (say, a heard word): not yet past the grace.
        let early = r.at(ms(20_030), Input::Tick);
        assert!(!has(&early, &Action::Show(Screen::ReleaseToErase)));
        // The release stamped 19.98 s arrives now.
        let out = r.at(ms(19_980), Input::ButtonUp);
        assert!(!erases(&out), "{out:?}");
        assert_eq!(r.m.next_deadline(), None);
        assert_eq!(r.m.clips().len(), 3);
    }

    #[test]
    fn a_release_stamped_after_20_s_erases_even_before_the_timer_fires() {
        let mut r = rig_with_grace(&["a.wav"]);
        r.at(secs(0.0), Input::ButtonDown);
        r.at(ms(10_060), Input::Tick);
        r.at(ms(10_500), Input::PlaybackFinished { id: 1 });
        r.at(
            ms(15_500),
            Input::RecordingFinished {
                result: Ok("c.wav".into()),
            },
        );
        let out = r.at(ms(20_020), Input::ButtonUp);
        assert!(has(&out, &Action::Led(Led::Red, LedPattern::On)));
        assert!(erases(&out), "{out:?}");
    }

    #[test]
    fn a_late_release_stamped_before_10_s_is_a_short_press() {
        let mut r = rig_with_grace(&["a.wav"]);
        r.at(secs(0.0), Input::ButtonDown);
        assert_eq!(r.m.next_deadline(), Some(ms(10_060)));
        assert!(plays(&r.at(ms(10_030), Input::Tick)).is_empty());
        let out = r.at(ms(9_980), Input::ButtonUp);
        assert_eq!(plays(&out), vec![(1, Sound::Clip("a.wav".into()))]);
        assert!(!r.m.is_recording());
    }

    #[test]
    fn a_release_stamped_after_10_s_records_even_before_the_timer_fires() {
        let mut r = rig_with_grace(&["a.wav"]);
        r.at(secs(0.0), Input::ButtonDown);
        let out = r.at(ms(10_020), Input::ButtonUp);
        assert_eq!(plays(&out), vec![(1, Sound::Cue(Cue::Burp))]);
        assert!(r.m.is_recording());
    }

    #[test]
    fn newest_is_the_highest_sequence_number_not_the_latest_time() {
        // The clock was an hour behind when the last clip was made.
        let mut r = Rig::new(&[
            "00001_2026-11-23_14-00-00_voice.wav",
            "00002_2026-11-23_13-10-00_voice.wav",
            "2026-11-22_09-00-00_voice.wav",
        ]);
        let out = r.at(
            secs(1.0),
            Input::Heard {
                word: "yes".into(),
                confidence: 0.9,
                command: Some(VoiceCommand::PlayNewest),
            },
        );
        assert_eq!(
            plays(&out),
            vec![(1, Sound::Clip("00002_2026-11-23_13-10-00_voice.wav".into()))]
        );
        r.at(secs(2.0), Input::PlaybackFinished { id: 1 });
        // A new recording lands at the end, whatever its time.
        r.at(secs(3.0), Input::ButtonDown);
        r.at(secs(13.0), Input::Tick);
        r.at(secs(13.5), Input::PlaybackFinished { id: 2 });
        r.at(
            secs(18.5),
            Input::RecordingFinished {
                result: Ok("00003_2026-11-23_12-00-00_voice.wav".into()),
            },
        );
        assert_eq!(
            r.m.clips().last().map(String::as_str),
            Some("00003_2026-11-23_12-00-00_voice.wav")
        );
        assert_eq!(r.m.clips()[0], "2026-11-22_09-00-00_voice.wav");
    }

    #[test]
    fn holding_exactly_10_s_plays_burp_then_records() {
        let mut r = Rig::new(&["a.wav"]);
        r.at(secs(0.0), Input::ButtonDown);
        assert_eq!(r.m.next_deadline(), Some(secs(10.0)));
        let out = r.at(secs(10.0), Input::Tick);
        assert_eq!(plays(&out), vec![(1, Sound::Cue(Cue::Burp))]);
        assert!(!out
            .iter()
            .any(|a| matches!(a, Action::StartRecording { .. })));
        // The recording starts only once the burp has finished, so it is not recorded.
        let out = r.at(secs(10.6), Input::PlaybackFinished { id: 1 });
        assert!(has(&out, &Action::StartRecording { length: secs(5.0) }));
        assert!(has(&out, &Action::Led(Led::Green, LedPattern::On)));
        assert!(has(
            &out,
            &Action::Show(Screen::Recording { seconds_left: 5 })
        ));
    }

    #[test]
    fn release_stamped_at_10_s_without_a_tick_still_counts_as_hold() {
        let mut r = Rig::new(&["a.wav"]);
        r.at(secs(0.0), Input::ButtonDown);
        let out = r.at(secs(10.0), Input::ButtonUp);
        assert_eq!(plays(&out), vec![(1, Sound::Cue(Cue::Burp))]);
        assert!(r.m.is_recording());
    }

    #[test]
    fn recording_completes_after_release_and_joins_the_library() {
        let mut r = Rig::new(&[]);
        r.at(secs(0.0), Input::ButtonDown);
        r.at(secs(10.0), Input::Tick);
        r.at(secs(11.0), Input::ButtonUp); // let go during the burp
        let out = r.at(secs(11.5), Input::PlaybackFinished { id: 1 });
        assert!(out
            .iter()
            .any(|a| matches!(a, Action::StartRecording { .. })));
        let out = r.at(
            secs(16.5),
            Input::RecordingFinished {
                result: Ok("2026-11-23_10-00-11_voice.wav".into()),
            },
        );
        assert!(has(&out, &Action::Led(Led::Green, LedPattern::Off)));
        assert_eq!(r.m.clips(), ["2026-11-23_10-00-11_voice.wav"]);
        assert!(r.m.is_idle());
        let out = r.press(secs(20.0), secs(20.1));
        assert_eq!(
            plays(&out),
            vec![(2, Sound::Clip("2026-11-23_10-00-11_voice.wav".into()))]
        );
    }

    #[test]
    fn recording_countdown_ticks_each_second() {
        let mut r = Rig::new(&[]);
        r.at(secs(0.0), Input::ButtonDown);
        r.at(secs(10.0), Input::ButtonUp);
        r.at(secs(10.5), Input::PlaybackFinished { id: 1 });
        let mut shown = vec![];
        for t in [11.5, 12.5, 13.5, 14.5, 15.5] {
            for a in r.at(secs(t), Input::Tick) {
                if let Action::Show(Screen::Recording { seconds_left }) = a {
                    shown.push(seconds_left);
                }
            }
        }
        assert_eq!(shown, vec![4, 3, 2, 1, 0]);
        assert_eq!(r.m.next_deadline(), None);
    }

    #[test]
    fn held_19_999_s_then_released_does_not_erase() {
        let mut r = Rig::new(&["a.wav"]);
        r.hold_and_record("b.wav");
        let out = r.at(ms(19_999), Input::Tick);
        assert!(plays(&out).is_empty());
        let out = r.at(ms(19_999), Input::ButtonUp);
        assert!(!has(&out, &Action::EraseAll));
        assert_eq!(r.m.clips().len(), 2);
    }

    #[test]
    fn held_20_s_warns_then_erases_on_release_including_new_clip() {
        let mut r = Rig::new(&["a.wav"]);
        r.hold_and_record("b.wav");
        let out = r.at(secs(20.0), Input::Tick);
        assert_eq!(plays(&out), vec![(2, Sound::Cue(Cue::EraseWarning))]);
        assert!(has(&out, &Action::Led(Led::Red, LedPattern::On)));
        assert!(has(&out, &Action::Show(Screen::ReleaseToErase)));
        let out = r.at(secs(25.0), Input::ButtonUp);
        assert!(has(&out, &Action::EraseAll));
        assert!(has(&out, &Action::Led(Led::Red, LedPattern::Off)));
        r.at(secs(25.0), Input::PlaybackFinished { id: 2 });
        assert!(
            !r.m.is_settled(),
            "busy until the recorder reports the erase"
        );
        let out = r.at(secs(25.1), Input::Erased { result: Ok(2) });
        assert!(r.m.is_idle());
        assert!(has(&out, &Action::Show(Screen::Erased { count: 2 })));
        assert!(r.m.clips().is_empty());
    }

    #[test]
    fn erase_waits_for_a_recording_still_running_at_release() {
        let cfg = MachineConfig {
            record_length: secs(15.0),
            ..MachineConfig::default()
        };
        let mut m = Machine::new(cfg, vec![]);
        m.handle(Event::new(secs(0.0), Input::ButtonDown));
        m.handle(Event::new(secs(10.0), Input::Tick));
        m.handle(Event::new(secs(10.5), Input::PlaybackFinished { id: 1 }));
        m.handle(Event::new(secs(20.0), Input::Tick));
        let out = m.handle(Event::new(secs(21.0), Input::ButtonUp));
        assert!(!has(&out, &Action::EraseAll), "the clip is not written yet");
        let out = m.handle(Event::new(
            secs(25.5),
            Input::RecordingFinished {
                result: Ok("new.wav".into()),
            },
        ));
        assert!(has(&out, &Action::EraseAll), "erase runs after the write");
    }

    #[test]
    fn saying_no_abandons_a_pending_erase() {
        let mut r = Rig::new(&["a.wav"]);
        r.hold_and_record("b.wav");
        r.at(secs(20.0), Input::Tick);
        let out = r.at(
            secs(21.0),
            Input::Heard {
                word: "no".into(),
                confidence: 0.9,
                command: Some(VoiceCommand::Cancel),
            },
        );
        assert!(has(&out, &Action::Led(Led::Red, LedPattern::Off)));
        let out = r.at(secs(22.0), Input::ButtonUp);
        assert!(!has(&out, &Action::EraseAll));
        assert_eq!(r.m.clips().len(), 2);
    }

    #[test]
    fn release_during_the_burp_cue_still_records() {
        let mut r = Rig::new(&[]);
        r.at(secs(0.0), Input::ButtonDown);
        r.at(secs(10.0), Input::Tick);
        let out = r.at(secs(10.1), Input::ButtonUp);
        assert!(
            !has(&out, &Action::StopPlayback),
            "release must not stop the burp"
        );
        let out = r.at(secs(10.4), Input::PlaybackFinished { id: 1 });
        assert!(out
            .iter()
            .any(|a| matches!(a, Action::StartRecording { .. })));
    }

    #[test]
    fn short_press_during_the_burp_does_not_cancel_the_recording() {
        let mut r = Rig::new(&["a.wav"]);
        r.at(secs(0.0), Input::ButtonDown);
        r.at(secs(10.0), Input::ButtonUp);
        let out = r.press(secs(10.1), secs(10.2));
        assert!(out.is_empty(), "{out:?}");
        let out = r.at(secs(10.5), Input::PlaybackFinished { id: 1 });
        assert!(out
            .iter()
            .any(|a| matches!(a, Action::StartRecording { .. })));
    }

    #[test]
    fn press_during_recording_is_ignored_even_when_held_long() {
        let mut r = Rig::new(&["a.wav"]);
        r.at(secs(0.0), Input::ButtonDown);
        r.at(secs(10.0), Input::ButtonUp);
        r.at(secs(10.5), Input::PlaybackFinished { id: 1 });
        // A new press starts mid-recording and is held for 25 s.
        r.at(secs(11.0), Input::ButtonDown);
        assert_eq!(r.m.next_deadline(), Some(secs(11.5)), "only the countdown");
        let out = r.at(
            secs(15.5),
            Input::RecordingFinished {
                result: Ok("b.wav".into()),
            },
        );
        assert!(plays(&out).is_empty());
        let out = r.at(secs(36.0), Input::ButtonUp);
        assert!(plays(&out).is_empty());
        assert!(!has(&out, &Action::EraseAll));
        assert_eq!(r.m.clips().len(), 2);
    }

    #[test]
    fn short_press_during_playback_stops_it() {
        let mut r = Rig::new(&["a.wav"]);
        r.press(secs(1.0), secs(1.1));
        let out = r.press(secs(2.0), secs(2.1));
        assert_eq!(out, vec![Action::StopPlayback]);
        // The player confirms; the next press plays again.
        r.at(secs(2.12), Input::PlaybackFinished { id: 1 });
        let out = r.press(secs(3.0), secs(3.1));
        assert_eq!(plays(&out).len(), 1);
    }

    #[test]
    fn stale_finish_reports_do_not_confuse_the_machine() {
        let mut r = Rig::new(&["a.wav"]);
        r.press(secs(1.0), secs(1.1)); // id 1
        r.at(secs(1.5), Input::PlaybackFinished { id: 1 });
        r.press(secs(2.0), secs(2.1)); // id 2
        r.at(secs(2.2), Input::PlaybackFinished { id: 1 }); // late duplicate
        assert!(r.m.is_playing(), "id 2 is still playing");
    }

    #[test]
    fn press_with_empty_library_plays_empty_cue_and_blinks_red() {
        let mut r = Rig::new(&[]);
        let out = r.press(secs(1.0), secs(1.05));
        assert_eq!(plays(&out), vec![(1, Sound::Cue(Cue::Empty))]);
        assert!(has(&out, &Action::Led(Led::Red, LedPattern::EMPTY)));
    }

    #[test]
    fn voice_commands_drive_the_same_actions() {
        let mut r = Rig::new(&["1.wav", "2.wav", "3.wav"]);
        let heard = |c: VoiceCommand| Input::Heard {
            word: c.name().into(),
            confidence: 0.8,
            command: Some(c),
        };
        let out = r.at(secs(1.0), heard(VoiceCommand::PlayNewest));
        assert_eq!(plays(&out), vec![(1, Sound::Clip("3.wav".into()))]);
        assert!(has(&out, &Action::Led(Led::Green, LedPattern::FLASH)));
        let out = r.at(secs(2.0), heard(VoiceCommand::Next));
        assert_eq!(plays(&out), vec![(2, Sound::Clip("1.wav".into()))]);
        let out = r.at(secs(3.0), heard(VoiceCommand::Previous));
        assert_eq!(plays(&out), vec![(3, Sound::Clip("3.wav".into()))]);
        let out = r.at(secs(4.0), heard(VoiceCommand::Stop));
        assert!(has(&out, &Action::StopPlayback));
        let out = r.at(secs(5.0), heard(VoiceCommand::VolumeUp));
        assert!(has(&out, &Action::SetVolume(8)));
        for i in 0..20 {
            r.at(secs(6.0 + i as f64), heard(VoiceCommand::VolumeUp));
        }
        assert_eq!(r.m.volume(), 10, "volume is capped");
        for i in 0..20 {
            r.at(secs(30.0 + i as f64), heard(VoiceCommand::VolumeDown));
        }
        assert_eq!(r.m.volume(), 0);
    }

    #[test]
    fn heard_word_shows_then_returns_to_idle() {
        let mut r = Rig::new(&[]);
        let out = r.at(
            secs(1.0),
            Input::Heard {
                word: "left".into(),
                confidence: 0.91,
                command: None,
            },
        );
        assert!(has(
            &out,
            &Action::Show(Screen::Heard {
                word: "left".into(),
                confidence: 0.91
            })
        ));
        assert_eq!(r.m.next_deadline(), Some(secs(3.0)));
        let out = r.at(secs(3.0), Input::Tick);
        assert!(matches!(
            out.as_slice(),
            [Action::Show(Screen::Idle { .. })]
        ));
    }

    #[test]
    fn voice_commands_are_ignored_while_recording() {
        let mut r = Rig::new(&["a.wav"]);
        r.at(secs(0.0), Input::ButtonDown);
        r.at(secs(10.0), Input::ButtonUp);
        r.at(secs(10.5), Input::PlaybackFinished { id: 1 });
        let out = r.at(
            secs(12.0),
            Input::Heard {
                word: "go".into(),
                confidence: 0.99,
                command: Some(VoiceCommand::PlayRandom),
            },
        );
        assert!(plays(&out).is_empty());
    }

    #[test]
    fn failed_recording_reports_and_keeps_library() {
        let mut r = Rig::new(&["a.wav"]);
        r.at(secs(0.0), Input::ButtonDown);
        r.at(secs(10.0), Input::ButtonUp);
        r.at(secs(10.5), Input::PlaybackFinished { id: 1 });
        let out = r.at(
            secs(15.5),
            Input::RecordingFinished {
                result: Err("disk full".into()),
            },
        );
        assert!(has(&out, &Action::Led(Led::Red, LedPattern::FAILED)));
        assert!(out.iter().any(
            |a| matches!(a, Action::Show(Screen::Error { detail, .. }) if detail == "disk full")
        ));
        assert_eq!(r.m.clips(), ["a.wav"]);
        assert!(r.m.is_idle());
    }

    #[test]
    fn double_down_and_double_up_are_harmless() {
        let mut r = Rig::new(&["a.wav"]);
        r.at(secs(0.0), Input::ButtonDown);
        r.at(secs(0.5), Input::ButtonDown);
        let out = r.at(secs(1.0), Input::ButtonUp);
        assert_eq!(plays(&out).len(), 1);
        let out = r.at(secs(1.1), Input::ButtonUp);
        assert!(out.is_empty());
    }

    #[test]
    fn a_long_silence_fires_every_deadline_in_order() {
        // One event an hour later must replay 10 s, 20 s, and screens in order.
        let mut r = Rig::new(&[]);
        r.at(secs(0.0), Input::ButtonDown);
        let out = r.at(secs(3600.0), Input::Tick);
        assert_eq!(plays(&out), vec![(1, Sound::Cue(Cue::Burp))]);
        assert!(has(&out, &Action::Show(Screen::ReleaseToErase)));
        // The burp was not cut by the 20 s cue.
        assert!(!plays(&out)
            .iter()
            .any(|(_, s)| *s == Sound::Cue(Cue::EraseWarning)));
    }

    #[test]
    fn faults_show_until_cleared() {
        let mut r = Rig::new(&[]);
        let out = r.at(
            secs(1.0),
            Input::Fault(Some(("No microphone".into(), "hw:Zero missing".into()))),
        );
        assert!(has(&out, &Action::Led(Led::Red, LedPattern::FAULT)));
        let again = r.at(
            secs(2.0),
            Input::Fault(Some(("No microphone".into(), "hw:Zero missing".into()))),
        );
        assert!(again.is_empty(), "same fault is not re-announced");
        let out = r.at(secs(3.0), Input::Fault(None));
        assert!(has(&out, &Action::Led(Led::Red, LedPattern::Off)));
        assert!(out
            .iter()
            .any(|a| matches!(a, Action::Show(Screen::Idle { .. }))));
    }

    // --- Teaching the toy a voice: the gesture and the session -------------------------

    use crate::core::enrollment::{AdaptOutcome, EnrollmentConfig, TakeResult};

    fn teach_cfg(words: &[&str], takes: usize, grace: Duration) -> MachineConfig {
        MachineConfig {
            seed: 7,
            release_grace: grace,
            enrollment: Some(EnrollmentConfig {
                words: words.iter().map(|w| w.to_string()).collect(),
                takes,
                ..EnrollmentConfig::default()
            }),
            ..MachineConfig::default()
        }
    }

    fn teach_rig(clips: &[&str], words: &[&str], takes: usize) -> Rig {
        Rig {
            m: Machine::new(
                teach_cfg(words, takes, Duration::ZERO),
                clips.iter().map(|s| s.to_string()).collect(),
            ),
        }
    }

    /// The take asked for in `out`: (id, word, take).
    fn take_asked(out: &[Action]) -> Option<(u64, String, usize)> {
        out.iter().find_map(|a| match a {
            Action::RecordTake { id, word, take, .. } => Some((*id, word.clone(), *take)),
            _ => None,
        })
    }

    fn shows(out: &[Action], pred: impl Fn(&Screen) -> bool) -> bool {
        out.iter().any(|a| matches!(a, Action::Show(s) if pred(s)))
    }

    /// Tap at `t0` (0.1 s), second press 0.3 s later, held to `t0 + 2.4`, released at
    /// `t0 + 2.5`; the empty cue the tap played finishes when the gesture stops it. Returns
    /// the actions of the release.
    fn gesture(r: &mut Rig, t0: f64) -> Vec<Action> {
        r.press(secs(t0), secs(t0 + 0.1));
        r.at(secs(t0 + 0.4), Input::ButtonDown);
        r.at(secs(t0 + 2.4), Input::Tick);
        r.at(secs(t0 + 2.45), Input::PlaybackFinished { id: 1 });
        r.at(secs(t0 + 2.5), Input::ButtonUp)
    }

    #[test]
    fn a_tap_then_a_2_s_hold_starts_teaching() {
        let mut r = teach_rig(&["a.wav"], &["left", "right"], 2);
        let out = r.press(secs(0.0), secs(0.1));
        assert_eq!(
            plays(&out),
            vec![(1, Sound::Clip("a.wav".into()))],
            "the tap plays at once: no press waits for a possible second one"
        );
        r.at(secs(0.5), Input::ButtonDown);
        assert_eq!(r.m.next_deadline(), Some(secs(2.5)), "the 2 s mark");
        let out = r.at(secs(2.5), Input::Tick);
        assert!(has(&out, &Action::StopPlayback), "the tap's clip stops");
        assert!(has(&out, &Action::Led(Led::Green, LedPattern::On)));
        assert!(has(&out, &Action::Show(Screen::TeachReady)));
        assert!(!r.m.is_enrolling(), "not before the release");
        r.at(secs(2.55), Input::PlaybackFinished { id: 1 });
        let out = r.at(secs(3.0), Input::ButtonUp);
        assert!(has(&out, &Action::BeginEnrollment));
        assert!(has(
            &out,
            &Action::Show(Screen::EnrollSay {
                word: "left".into(),
                take: 1,
                takes: 2,
                other_word: false,
                listening: false
            })
        ));
        assert!(r.m.is_enrolling());
        assert!(plays(&out).is_empty());
    }

    #[test]
    fn the_second_press_must_begin_within_the_window() {
        // Released at 0.1 s; a second press at exactly 0.7 s is inside (0.6 s), at 0.701 not.
        for (down, armed) in [(0.699, true), (0.7, true), (0.701, false), (1.5, false)] {
            let mut r = teach_rig(&["a.wav"], &["go"], 1);
            r.press(secs(0.0), secs(0.1));
            r.at(secs(down), Input::ButtonDown);
            let out = r.at(secs(down + 2.0), Input::Tick);
            assert_eq!(
                has(&out, &Action::Show(Screen::TeachReady)),
                armed,
                "second press at {down} s"
            );
            let out = r.at(secs(down + 2.1), Input::ButtonUp);
            assert_eq!(r.m.is_enrolling(), armed, "second press at {down} s");
            if !armed {
                assert_eq!(out, vec![Action::StopPlayback], "an ordinary short press");
            }
        }
    }

    #[test]
    fn only_a_tap_opens_the_window() {
        // The first press lasted 0.61 s: longer than a tap.
        let mut r = teach_rig(&["a.wav"], &["go"], 1);
        r.press(secs(0.0), secs(0.61));
        r.at(secs(0.7), Input::ButtonDown);
        let out = r.at(secs(2.7), Input::Tick);
        assert!(!has(&out, &Action::Show(Screen::TeachReady)));
        assert_eq!(r.m.next_deadline(), Some(secs(10.7)), "an ordinary hold");
    }

    #[test]
    fn released_just_before_the_2_s_mark_is_a_short_press() {
        let mut r = teach_rig(&["a.wav"], &["go"], 1);
        r.press(secs(0.0), secs(0.1));
        r.at(secs(0.5), Input::ButtonDown);
        let out = r.at(ms(2_499), Input::ButtonUp);
        assert_eq!(out, vec![Action::StopPlayback]);
        assert!(!r.m.is_enrolling());
    }

    #[test]
    fn late_releases_around_the_2_s_mark_follow_their_stamps() {
        // Releases reach the machine up to 60 ms after their stamps.
        let rig = || Rig {
            m: Machine::new(teach_cfg(&["go"], 1, ms(60)), vec!["a.wav".to_string()]),
        };
        // Stamped 2.49 s (before the mark at 2.5 s), delivered at 2.53 s.
        let mut r = rig();
        r.press(secs(0.0), secs(0.1));
        r.at(secs(0.5), Input::ButtonDown);
        assert_eq!(r.m.next_deadline(), Some(ms(2_560)));
        let early = r.at(ms(2_530), Input::Tick);
        assert!(!has(&early, &Action::Show(Screen::TeachReady)));
        let out = r.at(ms(2_490), Input::ButtonUp);
        assert_eq!(out, vec![Action::StopPlayback], "a short press");
        assert!(!r.m.is_enrolling());
        // Stamped 2.51 s, before the timer confirmed the mark: the mark is reached first.
        let mut r = rig();
        r.press(secs(0.0), secs(0.1));
        r.at(secs(0.5), Input::ButtonDown);
        let out = r.at(ms(2_510), Input::ButtonUp);
        assert!(has(&out, &Action::Show(Screen::TeachReady)), "{out:?}");
        assert!(has(&out, &Action::BeginEnrollment), "{out:?}");
        assert!(r.m.is_enrolling());
    }

    #[test]
    fn holding_the_second_press_on_to_10_s_still_records() {
        let mut r = teach_rig(&[], &["go"], 1);
        r.press(secs(0.0), secs(0.1)); // the empty cue, id 1
        r.at(secs(0.3), Input::ButtonDown);
        r.at(secs(2.3), Input::Tick);
        r.at(secs(2.35), Input::PlaybackFinished { id: 1 });
        let out = r.at(secs(10.3), Input::Tick);
        assert!(has(&out, &Action::Led(Led::Green, LedPattern::Off)));
        assert_eq!(plays(&out), vec![(2, Sound::Cue(Cue::Burp))]);
        r.at(secs(10.4), Input::ButtonUp);
        let out = r.at(secs(10.9), Input::PlaybackFinished { id: 2 });
        assert!(has(&out, &Action::StartRecording { length: secs(5.0) }));
        assert!(!r.m.is_enrolling());
    }

    #[test]
    fn without_an_enroller_the_gesture_is_two_short_presses() {
        let cfg = MachineConfig {
            seed: 7,
            enrollment: None,
            ..MachineConfig::default()
        };
        let mut m = Machine::new(cfg, vec!["a.wav".into()]);
        m.handle(Event::new(secs(0.0), Input::ButtonDown));
        m.handle(Event::new(secs(0.1), Input::ButtonUp));
        m.handle(Event::new(secs(0.4), Input::ButtonDown));
        assert_eq!(m.next_deadline(), Some(secs(10.4)));
        let out = m.handle(Event::new(secs(3.0), Input::ButtonUp));
        assert_eq!(out, vec![Action::StopPlayback]);
    }

    #[test]
    fn a_whole_session_prompts_listens_refuses_keeps_and_learns() {
        let mut r = teach_rig(&[], &["go", "stop"], 2);
        gesture(&mut r, 0.0);
        let cfg = EnrollmentConfig::default();
        let mut now = secs(2.5);
        let mut asked = vec![];
        let mut refused_once = false;
        let mut takes_seen = 0;
        while takes_seen < 4 {
            // The prompt shows, then listening starts.
            now += cfg.prompt_time;
            assert!(r.m.is_settled(), "time may jump during a prompt");
            let out = r.at(now, Input::Tick);
            let (id, word, take) = take_asked(&out).expect("a take is asked for");
            assert!(has(&out, &Action::Led(Led::Green, LedPattern::On)));
            assert!(shows(&out, |s| matches!(
                s,
                Screen::EnrollSay {
                    listening: true,
                    ..
                }
            )));
            assert!(!r.m.is_settled(), "waiting for the enroller");
            asked.push((word.clone(), take));
            now += cfg.take_length;
            let result = if word == "stop" && !refused_once {
                refused_once = true;
                TakeResult::Refused {
                    reason: "too quiet".into(),
                    detail: "the take was silent".into(),
                }
            } else {
                takes_seen += 1;
                TakeResult::Kept
            };
            let kept = result == TakeResult::Kept;
            let out = r.at(now, Input::TakeFinished { id, result });
            assert!(has(&out, &Action::Led(Led::Green, LedPattern::Off)));
            if kept {
                assert!(has(&out, &Action::Led(Led::Green, LedPattern::GOT_IT)));
                assert!(has(
                    &out,
                    &Action::Show(Screen::EnrollGotIt {
                        word: word.clone(),
                        take,
                        takes: 2,
                        other_word: false,
                    })
                ));
            } else {
                assert!(has(&out, &Action::Led(Led::Red, LedPattern::AGAIN)));
                assert!(has(
                    &out,
                    &Action::Show(Screen::EnrollAgain {
                        word: word.clone(),
                        reason: "too quiet".into()
                    })
                ));
            }
            now += cfg.result_time;
            if takes_seen < 4 {
                let out = r.at(now, Input::Tick);
                assert!(shows(&out, |s| matches!(
                    s,
                    Screen::EnrollSay {
                        listening: false,
                        ..
                    }
                )));
            }
        }
        assert_eq!(
            asked,
            [
                ("go".to_string(), 1),
                ("go".to_string(), 2),
                ("stop".to_string(), 1),
                ("stop".to_string(), 1),
                ("stop".to_string(), 2)
            ],
            "the refused take is asked again"
        );
        let out = r.at(now, Input::Tick);
        assert!(has(&out, &Action::Adapt));
        assert!(has(
            &out,
            &Action::Show(Screen::EnrollLearning { takes: 4 })
        ));
        assert!(!r.m.is_settled());
        let out = r.at(
            now + secs(3.0),
            Input::AdaptFinished {
                result: Ok(AdaptOutcome {
                    before: 0.78,
                    after: 0.96,
                    switched: true,
                }),
            },
        );
        assert!(has(
            &out,
            &Action::Show(Screen::EnrollResult {
                before: 0.78,
                after: 0.96,
                switched: true
            })
        ));
        assert!(!r.m.is_enrolling());
        assert!(r.m.is_idle());
        // The result stays up, then the idle screen returns.
        let back = r.m.next_deadline().expect("the result times out");
        let out = r.at(back, Input::Tick);
        assert!(shows(&out, |s| matches!(s, Screen::Idle { .. })));
    }

    /// Runs the gesture and the first prompt; returns the first take's id and the time.
    fn listening(r: &mut Rig) -> (u64, Duration) {
        gesture(r, 0.0);
        let at = secs(2.5) + EnrollmentConfig::default().prompt_time;
        let out = r.at(at, Input::Tick);
        (take_asked(&out).expect("listening").0, at)
    }

    #[test]
    fn while_teaching_voice_commands_do_nothing_and_a_press_cancels() {
        let mut r = teach_rig(&["a.wav"], &["go"], 2);
        let (id, at) = listening(&mut r);
        let out = r.at(
            at + ms(500),
            Input::Heard {
                word: "go".into(),
                confidence: 0.99,
                command: Some(VoiceCommand::PlayRandom),
            },
        );
        assert!(out.is_empty(), "the word said is not a command: {out:?}");
        // A short press cancels; the take in flight is abandoned.
        let out = r.press(at + ms(800), at + ms(900));
        assert!(has(&out, &Action::CancelTake));
        assert!(has(&out, &Action::Led(Led::Green, LedPattern::Off)));
        assert!(plays(&out).is_empty(), "the press plays nothing");
        assert!(shows(&out, |s| matches!(s, Screen::Idle { .. })));
        assert!(!r.m.is_enrolling());
        // The enroller's late answer is ignored.
        let out = r.at(
            at + secs(2.0),
            Input::TakeFinished {
                id,
                result: TakeResult::Kept,
            },
        );
        assert!(out.is_empty(), "{out:?}");
        assert!(r.m.is_idle());
    }

    #[test]
    fn a_long_press_while_teaching_cancels_and_neither_records_nor_erases() {
        let mut r = teach_rig(&["a.wav"], &["go"], 2);
        let (_, at) = listening(&mut r);
        r.at(at + ms(100), Input::ButtonDown);
        let out = r.at(at + secs(25.0), Input::ButtonUp);
        assert!(!has(&out, &Action::EraseAll));
        assert!(plays(&out).is_empty());
        assert!(!r.m.is_enrolling());
        assert_eq!(r.m.clips().len(), 1);
    }

    #[test]
    fn a_take_that_never_comes_back_fails_the_session_instead_of_hanging() {
        let mut r = teach_rig(&[], &["go"], 2);
        let (_, at) = listening(&mut r);
        let cfg = EnrollmentConfig::default();
        let watchdog = at + cfg.take_length + cfg.take_timeout;
        assert_eq!(r.m.next_deadline(), Some(watchdog));
        let out = r.at(watchdog, Input::Tick);
        assert!(has(&out, &Action::Led(Led::Red, LedPattern::FAILED)));
        // The enroller is told to drop the late take: it must not save it after the session
        // ended, nor be busy with it (ignoring every command) when the next session starts.
        assert!(has(&out, &Action::CancelTake), "{out:?}");
        assert!(shows(
            &out,
            |s| matches!(s, Screen::Error { title, .. } if title == "Not learned")
        ));
        assert!(!r.m.is_enrolling());
        assert!(r.m.is_idle());
    }

    #[test]
    fn a_failed_take_ends_the_session_with_its_reason() {
        let mut r = teach_rig(&[], &["go"], 2);
        let (id, at) = listening(&mut r);
        let out = r.at(
            at + secs(2.0),
            Input::TakeFinished {
                id,
                result: TakeResult::Failed("no audio from the microphone".into()),
            },
        );
        assert!(shows(
            &out,
            |s| matches!(s, Screen::Error { detail, .. } if detail.contains("no audio"))
        ));
        assert!(!r.m.is_enrolling());
    }

    #[test]
    fn too_many_refusals_in_a_row_give_up() {
        let mut r = teach_rig(&[], &["go"], 2);
        let (mut id, mut at) = listening(&mut r);
        let cfg = EnrollmentConfig::default();
        for n in 1..=cfg.max_refusals {
            at += cfg.take_length;
            let out = r.at(
                at,
                Input::TakeFinished {
                    id,
                    result: TakeResult::Refused {
                        reason: "clipped".into(),
                        detail: "the take was clipped".into(),
                    },
                },
            );
            if n == cfg.max_refusals {
                assert!(
                    shows(&out, |s| matches!(s, Screen::Error { .. })),
                    "{out:?}"
                );
                assert!(!r.m.is_enrolling());
                return;
            }
            at += cfg.result_time;
            r.at(at, Input::Tick);
            at += cfg.prompt_time;
            id = take_asked(&r.at(at, Input::Tick)).expect("asked again").0;
        }
        panic!("never gave up");
    }

    #[test]
    fn listening_waits_for_the_speaker_to_be_quiet() {
        let mut r = teach_rig(&["a.wav"], &["go"], 1);
        r.press(secs(0.0), secs(0.1)); // plays a.wav (id 1)
        r.at(secs(0.4), Input::ButtonDown);
        r.at(secs(2.4), Input::Tick); // asks the player to stop
        r.at(secs(2.5), Input::ButtonUp);
        // The player has not confirmed yet when the prompt is over.
        let out = r.at(
            secs(2.5) + EnrollmentConfig::default().prompt_time,
            Input::Tick,
        );
        assert!(take_asked(&out).is_none(), "the clip would be in the take");
        let out = r.at(secs(3.5), Input::PlaybackFinished { id: 1 });
        assert!(take_asked(&out).is_some());
    }

    #[test]
    fn presses_while_learning_are_ignored_and_a_failure_is_shown() {
        let mut r = teach_rig(&[], &["go"], 1);
        let (id, at) = listening(&mut r);
        let cfg = EnrollmentConfig::default();
        r.at(
            at + ms(100),
            Input::TakeFinished {
                id,
                result: TakeResult::Kept,
            },
        );
        let out = r.at(at + ms(100) + cfg.result_time, Input::Tick);
        assert!(has(&out, &Action::Adapt));
        let t = at + secs(2.0);
        let out = r.press(t, t + ms(100));
        assert!(out.is_empty(), "{out:?}");
        assert!(r.m.is_enrolling());
        let out = r.at(
            t + secs(1.0),
            Input::AdaptFinished {
                result: Err("not enough takes".into()),
            },
        );
        assert!(shows(
            &out,
            |s| matches!(s, Screen::Error { detail, .. } if detail == "not enough takes")
        ));
        assert!(!r.m.is_enrolling());
    }

    #[test]
    fn kept_the_old_model_is_said_without_a_red_light() {
        let mut r = teach_rig(&[], &["go"], 1);
        let (id, at) = listening(&mut r);
        r.at(
            at,
            Input::TakeFinished {
                id,
                result: TakeResult::Kept,
            },
        );
        r.at(at + secs(1.0), Input::Tick);
        let out = r.at(
            at + secs(2.0),
            Input::AdaptFinished {
                result: Ok(AdaptOutcome {
                    before: 0.8,
                    after: 0.7,
                    switched: false,
                }),
            },
        );
        assert!(has(
            &out,
            &Action::Show(Screen::EnrollResult {
                before: 0.8,
                after: 0.7,
                switched: false
            })
        ));
        assert!(!out.iter().any(|a| matches!(a, Action::Led(Led::Red, _))));
    }
}
