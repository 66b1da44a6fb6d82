//! The controller thread: the one owner of state.
//!
//! It turns everything that happens (button edges, player and recorder reports, device
//! status, heard words, timer deadlines) into [`Input`]s for the pure [`Machine`], then
//! hands each resulting [`Action`] to the thread that performs it. It never blocks on
//! those threads: every outgoing channel is unbounded or drained by a thread that does
//! nothing else, so a slow SD card or display cannot stall the button.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{never, select, Receiver, Sender};

use super::enroller::{EnrollCommand, EnrollReport};
use crate::audio::library::Library;
use crate::audio::pcm::DeviceStatus;
use crate::audio::playback_window::PlaybackWindow;
use crate::audio::player::{PlayOutcome, PlayerCommand, PlayerReport};
use crate::audio::recorder::{RecorderCommand, RecorderReport};
use crate::clock::Clock;
use crate::core::{Action, CommandMap, Event, Input, LedPattern, Machine, Sound, TakeResult};
use crate::hw::button::Edge;
use crate::hw::leds::Led;
use crate::ui::Screen;

/// Messages for the controller from anything that is not one of its worker threads.
#[derive(Debug)]
pub enum ControlMsg {
    /// A debounced button edge (the sim's virtual button sends these directly).
    Button(Edge),
    /// The keyword recognizer heard a word.
    Heard { word: String, confidence: f32 },
    /// The clock moved (virtual time): fire what is due.
    Tick,
    /// Reply with the current [`Status`] at once.
    Status(Sender<Status>),
    /// Reply with the [`Status`] once nothing is playing or recording.
    WhenSettled(Sender<Status>),
    /// Stop everything cleanly.
    Shutdown,
}

/// A snapshot of the controller, for the sim driver and tests.
#[derive(Clone, Debug, PartialEq)]
pub struct Status {
    pub at: Duration,
    /// Nothing playing, recording or being erased (the button may be held).
    pub settled: bool,
    pub next_deadline: Option<Duration>,
    pub clips: Vec<String>,
    pub volume: u8,
    /// The controller has seen the button go down and not yet come up.
    pub button_down: bool,
    /// A teaching session is running.
    pub enrolling: bool,
}

/// Why a take or learning fails at once: the enroller thread is gone (a session is only
/// offered when one was started, so it died: its panic is in the log).
const ENROLLER_STOPPED: &str =
    "the enroller thread has stopped (see the log); restart the toy to teach it again";

/// Where the controller sends the work.
pub struct Outputs {
    pub player: Sender<PlayerCommand>,
    pub recorder: Sender<RecorderCommand>,
    pub leds: Sender<(Led, LedPattern)>,
    pub screens: Sender<Screen>,
    /// The enroller thread, when the toy can teach itself a voice.
    pub enroll: Option<Sender<EnrollCommand>>,
    /// Shared with the enroller's adapter: set when the toy stops waiting for it.
    pub stop_learning: super::adapter_glue::StopFlag,
}

/// Where the controller hears from.
pub struct Inputs {
    pub control: Receiver<ControlMsg>,
    pub edges: Receiver<Edge>,
    pub player: Receiver<PlayerReport>,
    pub recorder: Receiver<RecorderReport>,
    /// Capture device status (the microphone).
    pub capture: Receiver<DeviceStatus>,
    /// The enroller's reports (`never()` without one).
    pub enroll: Receiver<EnrollReport>,
}

/// The controller's state and its connections.
pub struct Controller {
    machine: Machine,
    clock: Arc<dyn Clock>,
    library: Library,
    sounds_dir: PathBuf,
    commands: CommandMap,
    out: Outputs,
    /// Set while the toy plays a sound: the keyword recognizer ignores the microphone
    /// then, so the toy does not answer its own speaker.
    playing: Arc<PlaybackWindow>,
    waiters: Vec<Sender<Status>>,
    mic_fault: Option<String>,
    speaker_fault: Option<String>,
    /// The take the enroller is recording, and whether the machine still waits for its
    /// learning: what to report failed if the enroller thread goes away, so the machine is
    /// never left waiting.
    pending_take: Option<u64>,
    adapting: bool,
}

impl Controller {
    pub fn new(
        machine: Machine,
        clock: Arc<dyn Clock>,
        library: Library,
        sounds_dir: PathBuf,
        commands: CommandMap,
        out: Outputs,
        playing: Arc<PlaybackWindow>,
    ) -> Self {
        Controller {
            machine,
            clock,
            library,
            sounds_dir,
            commands,
            out,
            playing,
            waiters: Vec::new(),
            mic_fault: None,
            speaker_fault: None,
            pending_take: None,
            adapting: false,
        }
    }

    /// Runs until [`ControlMsg::Shutdown`] or until every control sender is gone.
    pub fn run(mut self, inputs: Inputs) {
        let start = self.machine.start();
        self.execute(start);
        // A receive on a closed channel is always ready: a closed input is swapped for
        // `never()` the first time it reports closed, or the loop would spin a core.
        let Inputs {
            control,
            mut edges,
            mut player,
            mut recorder,
            mut capture,
            mut enroll,
        } = inputs;
        loop {
            let timeout = match self.machine.next_deadline() {
                Some(d) if !self.clock.is_manual() => crossbeam_channel::at(
                    std::time::Instant::now() + d.saturating_sub(self.clock.now()),
                ),
                _ => never(),
            };
            let input = select! {
                recv(control) -> m => match m {
                    Ok(ControlMsg::Shutdown) | Err(_) => break,
                    Ok(ControlMsg::Button(Edge::Down(at))) => Some((at, Input::ButtonDown)),
                    Ok(ControlMsg::Button(Edge::Up(at))) => Some((at, Input::ButtonUp)),
                    Ok(ControlMsg::Heard { word, confidence }) => {
                        let command = self.commands.lookup(&word);
                        log::info!("heard \"{word}\" ({:.0} %) -> {}", confidence * 100.0,
                            command.map_or("nothing".to_string(), |c| c.to_string()));
                        Some((self.clock.now(), Input::Heard { word, confidence, command }))
                    }
                    Ok(ControlMsg::Tick) => Some((self.clock.now(), Input::Tick)),
                    Ok(ControlMsg::Status(reply)) => {
                        let _ = reply.send(self.status());
                        None
                    }
                    Ok(ControlMsg::WhenSettled(reply)) => {
                        self.waiters.push(reply);
                        None
                    }
                },
                recv(edges) -> e => match e {
                    Ok(Edge::Down(at)) => Some((at, Input::ButtonDown)),
                    Ok(Edge::Up(at)) => Some((at, Input::ButtonUp)),
                    Err(_) => closed(&mut edges, "button"),
                },
                recv(player) -> r => match r {
                    Ok(r) => self.player_report(r),
                    Err(_) => closed(&mut player, "player"),
                },
                recv(recorder) -> r => match r {
                    Ok(r) => Some((self.clock.now(), match r {
                        RecorderReport::Recorded(result) => Input::RecordingFinished { result },
                        RecorderReport::Erased(result) => Input::Erased { result },
                    })),
                    Err(_) => closed(&mut recorder, "recorder"),
                },
                recv(capture) -> s => match s {
                    Ok(s) => {
                        self.mic_fault = match s {
                            DeviceStatus::Up { .. } => None,
                            DeviceStatus::Down { error, .. } => Some(error),
                        };
                        Some((self.clock.now(), self.fault_input()))
                    }
                    Err(_) => closed(&mut capture, "capture"),
                },
                recv(enroll) -> r => match r {
                    Ok(EnrollReport::Take { id, result }) => {
                        self.pending_take = None;
                        Some((self.clock.now(), Input::TakeFinished { id, result }))
                    }
                    Ok(EnrollReport::Adapted(result)) => {
                        self.adapting = false;
                        Some((self.clock.now(), Input::AdaptFinished { result }))
                    }
                    Err(_) => {
                        closed::<_, ()>(&mut enroll, "enroller");
                        self.out.enroll = None;
                        self.enroller_gone()
                    }
                },
                recv(timeout) -> _ => Some((self.clock.now(), Input::Tick)),
            };
            if let Some((at, input)) = input {
                self.feed(at, input);
            }
            self.answer_waiters();
        }
        let _ = self.out.recorder.send(RecorderCommand::Shutdown);
        let _ = self.out.player.send(PlayerCommand::Shutdown);
        if let Some(enroll) = &self.out.enroll {
            // A learning still running must not switch models while the toy stops.
            self.out.stop_learning.request();
            let _ = enroll.send(EnrollCommand::Shutdown);
        }
    }

    /// The enroller thread is gone: whatever the machine waits for from it has failed.
    fn enroller_gone(&mut self) -> Option<(Duration, Input)> {
        const WHY: &str = "the enroller thread stopped";
        let now = self.clock.now();
        if let Some(id) = self.pending_take.take() {
            log::error!("{WHY} during a take");
            return Some((
                now,
                Input::TakeFinished {
                    id,
                    result: TakeResult::Failed(WHY.into()),
                },
            ));
        }
        if std::mem::take(&mut self.adapting) {
            log::error!("{WHY} while learning");
            return Some((
                now,
                Input::AdaptFinished {
                    result: Err(WHY.into()),
                },
            ));
        }
        None
    }

    /// Sends to the enroller; `false` when there is none (any more).
    fn send_enroller(&mut self, cmd: EnrollCommand) -> bool {
        match &self.out.enroll {
            Some(tx) => tx.send(cmd).is_ok(),
            None => false,
        }
    }

    fn player_report(&mut self, report: PlayerReport) -> Option<(Duration, Input)> {
        let now = self.clock.now();
        match report {
            PlayerReport::Started { .. } => None,
            PlayerReport::Finished { id, outcome } => {
                if let PlayOutcome::Failed(why) = &outcome {
                    log::warn!("playback {id} failed: {why}");
                }
                Some((now, Input::PlaybackFinished { id }))
            }
            PlayerReport::Device(s) => {
                self.speaker_fault = match s {
                    DeviceStatus::Up { .. } => None,
                    DeviceStatus::Down { error, .. } => Some(error),
                };
                Some((now, self.fault_input()))
            }
        }
    }

    fn fault_input(&self) -> Input {
        let fault = match (&self.mic_fault, &self.speaker_fault) {
            (Some(e), _) => Some(("No microphone".to_string(), e.clone())),
            (None, Some(e)) => Some(("No speaker".to_string(), e.clone())),
            (None, None) => None,
        };
        Input::Fault(fault)
    }

    /// Feeds one input, then whatever inputs its actions produce right away.
    fn feed(&mut self, at: Duration, input: Input) {
        crate::supervise::test_panic_point("controller");
        let mut queue = VecDeque::from([input]);
        while let Some(input) = queue.pop_front() {
            let actions = self.machine.handle(Event::new(at, input));
            queue.extend(self.execute(actions));
        }
        self.playing.set_playing(self.machine.is_playing());
    }

    /// Carries out actions; returns inputs that result immediately (e.g. a clip that
    /// vanished from the folder counts as finished at once).
    fn execute(&mut self, actions: Vec<Action>) -> Vec<Input> {
        let mut follow_up = Vec::new();
        for action in actions {
            match action {
                Action::Play { id, sound } => {
                    let path = match &sound {
                        Sound::Cue(cue) => Ok(self.sounds_dir.join(cue.file_name())),
                        Sound::Clip(name) => self.library.path_of(name),
                    };
                    match path {
                        Ok(path) => {
                            log::info!("playing {}", path.display());
                            let _ = self.out.player.send(PlayerCommand::Play { id, path });
                        }
                        Err(e) => {
                            log::warn!("{e}; re-reading the recordings folder");
                            follow_up.push(Input::PlaybackFinished { id });
                            if let Ok(clips) = self.library.list() {
                                follow_up.push(Input::LibraryScanned { clips });
                            }
                        }
                    }
                }
                Action::StopPlayback => {
                    let _ = self.out.player.send(PlayerCommand::Stop);
                }
                Action::StartRecording { length } => {
                    log::info!("recording {:.1} s", length.as_secs_f32());
                    let _ = self.out.recorder.send(RecorderCommand::Record { length });
                }
                Action::EraseAll => {
                    let _ = self.out.recorder.send(RecorderCommand::EraseAll);
                }
                Action::SetVolume(v) => {
                    let _ = self.out.player.send(PlayerCommand::SetGain(volume_gain(v)));
                }
                Action::Led(led, pattern) => {
                    let _ = self.out.leds.send((led, pattern));
                }
                Action::Show(screen) => {
                    let _ = self.out.screens.send(screen);
                }
                Action::BeginEnrollment => {
                    self.send_enroller(EnrollCommand::Begin);
                }
                Action::RecordTake {
                    id,
                    word,
                    take,
                    length,
                } => {
                    if self.send_enroller(EnrollCommand::Take {
                        id,
                        word,
                        take,
                        length,
                    }) {
                        self.pending_take = Some(id);
                    } else {
                        follow_up.push(Input::TakeFinished {
                            id,
                            result: TakeResult::Failed(ENROLLER_STOPPED.into()),
                        });
                    }
                }
                Action::CancelTake => {
                    self.pending_take = None;
                    self.send_enroller(EnrollCommand::Cancel);
                }
                Action::StopLearning => {
                    if !self.out.stop_learning.request() {
                        log::warn!("the toy stopped waiting for the learning just after it began switching models: the new model goes into use all the same (`chatterbox adapt --undo` goes back)");
                    }
                    self.adapting = false;
                }
                Action::Adapt => {
                    self.out.stop_learning.clear();
                    if self.send_enroller(EnrollCommand::Adapt) {
                        self.adapting = true;
                    } else {
                        follow_up.push(Input::AdaptFinished {
                            result: Err(ENROLLER_STOPPED.into()),
                        });
                    }
                }
            }
        }
        follow_up
    }

    fn status(&self) -> Status {
        Status {
            at: self.clock.now(),
            settled: self.machine.is_settled(),
            next_deadline: self.machine.next_deadline(),
            clips: self.machine.clips().to_vec(),
            volume: self.machine.volume(),
            button_down: self.machine.is_button_down(),
            enrolling: self.machine.is_enrolling(),
        }
    }

    fn answer_waiters(&mut self) {
        if self.waiters.is_empty() || !self.machine.is_settled() {
            return;
        }
        let status = self.status();
        for w in self.waiters.drain(..) {
            let _ = w.send(status.clone());
        }
    }
}

/// Replaces a closed input with one that never fires. Every input's sender lives in a
/// thread that runs as long as the toy does (or, for the button, is dropped at start when
/// edges come from the sim), so a close mid-run means a thread is gone: said once.
fn closed<T, U>(input: &mut Receiver<T>, what: &str) -> Option<U> {
    log::debug!("controller: the {what} channel closed; no longer listening to it");
    *input = never();
    None
}

/// Volume step (0..=10) to linear gain: square law, so each step sounds about as big
/// as the last; 10 is full scale, 0 is silent.
pub fn volume_gain(volume: u8) -> f32 {
    let v = f32::from(volume.min(10)) / 10.0;
    v * v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_gain_is_monotonic_from_silent_to_full() {
        assert_eq!(volume_gain(0), 0.0);
        assert_eq!(volume_gain(10), 1.0);
        assert_eq!(volume_gain(200), 1.0);
        for v in 0..10 {
            assert!(volume_gain(v) < volume_gain(v + 1));
        }
    }
}
