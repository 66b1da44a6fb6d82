//! `chatterbox sim`: the toy driven from a keyboard or a script instead of a GPIO pin.
//!
//! Script lines (also typed at the prompt):
//!
//! | line | meaning |
//! |---|---|
//! | `press` / `release` | the button goes down / up |
//! | `hold 12` | press, hold 12 s, release |
//! | `wait 2.5` | let 2.5 s pass |
//! | `settle` | wait until nothing is playing or recording |
//! | `say go [0.9]` | pretend the keyword recognizer heard a word |
//! | `status` | print clips, volume, time |
//! | `quit` | stop (end of input does the same) |
//!
//! `#` starts a comment. With real time (the default) `hold 12` takes 12 s and the
//! button goes through the same debouncer as on the Pi. With `--virtual-time` the
//! script's clock jumps: `hold 25` costs only the real time of the audio involved. Virtual
//! time only moves while the toy is settled (nothing playing or recording), so a burp, a
//! recording or a clip takes its natural course before the next jump, as it would for a
//! person holding the button.

use std::time::Duration;

use crossbeam_channel::{bounded, select, Receiver, Sender};

use super::controller::{ControlMsg, Status};
use crate::clock::{Clock, ManualClock};
use crate::hw::button::{Edge, SimPin};
use crate::ui::Screen;

/// One script line.
#[derive(Clone, Debug, PartialEq)]
pub enum SimCommand {
    Press,
    Release,
    Hold(Duration),
    Wait(Duration),
    Settle,
    Say { word: String, confidence: f32 },
    Status,
    Quit,
}

/// A script line that could not be understood.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {message}. Commands: press, release, hold SECONDS, wait SECONDS, settle, say WORD [CONFIDENCE], status, quit")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

fn seconds(arg: Option<&str>, what: &str) -> Result<Duration, String> {
    let arg = arg.ok_or_else(|| format!("`{what}` needs a number of seconds, e.g. `{what} 12`"))?;
    let s: f64 = arg
        .parse()
        .map_err(|_| format!("`{arg}` is not a number of seconds"))?;
    if !(0.0..=86_400.0 * 365.0).contains(&s) {
        return Err(format!("{s} s is out of range (0 to a year)"));
    }
    Ok(Duration::from_secs_f64(s))
}

/// Parses one line; `Ok(None)` for blank lines and comments.
pub fn parse_line(text: &str, line: usize) -> Result<Option<SimCommand>, ParseError> {
    let text = text.split('#').next().unwrap_or("").trim();
    let mut words = text.split_whitespace();
    let Some(verb) = words.next() else {
        return Ok(None);
    };
    let arg = words.next();
    let extra = words.next();
    let err = |message: String| ParseError { line, message };
    let cmd = match verb.to_ascii_lowercase().as_str() {
        "press" | "p" => SimCommand::Press,
        "release" | "r" => SimCommand::Release,
        "hold" | "h" => SimCommand::Hold(seconds(arg, "hold").map_err(err)?),
        "wait" | "w" => SimCommand::Wait(seconds(arg, "wait").map_err(err)?),
        "settle" => SimCommand::Settle,
        "status" => SimCommand::Status,
        "quit" | "exit" | "q" => SimCommand::Quit,
        "say" => {
            let word = arg
                .ok_or_else(|| err("`say` needs a word, e.g. `say go`".into()))?
                .to_ascii_lowercase();
            let confidence = match extra {
                None => 0.9,
                Some(c) => c
                    .parse::<f32>()
                    .ok()
                    .filter(|c| (0.0..=1.0).contains(c))
                    .ok_or_else(|| err(format!("confidence `{c}` must be between 0 and 1")))?,
            };
            return Ok(Some(SimCommand::Say { word, confidence }));
        }
        other => return Err(err(format!("unknown command `{other}`"))),
    };
    if arg.is_some()
        && matches!(
            cmd,
            SimCommand::Press
                | SimCommand::Release
                | SimCommand::Settle
                | SimCommand::Status
                | SimCommand::Quit
        )
    {
        return Err(err(format!("`{verb}` takes no argument")));
    }
    if extra.is_some() {
        return Err(err(format!("too many words after `{verb}`")));
    }
    Ok(Some(cmd))
}

/// How the sim moves time and the button.
pub enum SimButton {
    /// Real time: the pin is polled and debounced by the button thread.
    Real(SimPin),
    /// Virtual time: the driver stamps edges itself and moves the clock.
    Virtual(ManualClock),
}

/// Something went wrong while driving the toy.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("the toy stopped responding (controller gone)")]
    Gone,
    #[error("timed out after {0:?} waiting for playback/recording to finish; is the audio device working? (`chatterbox devices`)")]
    Stuck(Duration),
    #[error("interrupted")]
    Interrupted,
}

/// Feeds [`SimCommand`]s to a running toy.
pub struct SimDriver {
    control: Sender<ControlMsg>,
    button: SimButton,
    /// Anything arriving here (a signal) abandons a wait.
    interrupt: Receiver<i32>,
    /// Longest wait for the toy to settle.
    pub settle_timeout: Duration,
}

impl SimDriver {
    pub fn new(control: Sender<ControlMsg>, button: SimButton, interrupt: Receiver<i32>) -> Self {
        SimDriver {
            control,
            button,
            interrupt,
            settle_timeout: Duration::from_secs(120),
        }
    }

    /// Carries out one command; returns `false` on `quit`.
    pub fn run(&mut self, cmd: &SimCommand) -> Result<bool, SimError> {
        match cmd {
            SimCommand::Press => self.set_button(true)?,
            SimCommand::Release => self.set_button(false)?,
            SimCommand::Hold(d) => {
                // The hold is timed from the pin's change, as a finger would time it; only
                // the release waits for the toy to see it.
                if let SimButton::Real(pin) = &self.button {
                    pin.set(true);
                } else {
                    self.set_button(true)?;
                }
                self.pass(*d)?;
                self.set_button(false)?;
            }
            SimCommand::Wait(d) => self.pass(*d)?,
            SimCommand::Settle => {
                self.settled()?;
            }
            SimCommand::Say { word, confidence } => self.send(ControlMsg::Heard {
                word: word.clone(),
                confidence: *confidence,
            })?,
            SimCommand::Status => {
                let s = self.status()?;
                println!(
                    "[status] t={:.3}s clips={} volume={} {}",
                    s.at.as_secs_f64(),
                    s.clips.len(),
                    s.volume,
                    if s.settled { "settled" } else { "busy" }
                );
            }
            SimCommand::Quit => return Ok(false),
        }
        Ok(true)
    }

    fn send(&self, msg: ControlMsg) -> Result<(), SimError> {
        self.control.send(msg).map_err(|_| SimError::Gone)
    }

    fn set_button(&mut self, down: bool) -> Result<(), SimError> {
        match &self.button {
            SimButton::Real(pin) => {
                pin.set(down);
                self.until_button_seen(down)
            }
            SimButton::Virtual(clock) => {
                let at = clock.now();
                self.send(ControlMsg::Button(if down {
                    Edge::Down(at)
                } else {
                    Edge::Up(at)
                }))
            }
        }
    }

    /// Lets `d` pass: really, or by jumping the virtual clock from deadline to deadline,
    /// letting the toy settle after each.
    fn pass(&mut self, d: Duration) -> Result<(), SimError> {
        let clock = match &self.button {
            SimButton::Real(_) => {
                return match self.interrupt.recv_timeout(d) {
                    Ok(_) => Err(SimError::Interrupted),
                    Err(_) => Ok(()),
                };
            }
            SimButton::Virtual(clock) => clock.clone(),
        };
        let end = clock.now() + d;
        loop {
            let status = self.settled()?;
            match status.next_deadline {
                Some(due) if due <= end => {
                    clock.set(due);
                    self.send(ControlMsg::Tick)?;
                }
                _ => break,
            }
        }
        clock.set(end);
        self.send(ControlMsg::Tick)?;
        Ok(())
    }

    /// Waits until the controller has seen the (debounced) button level, so the next
    /// command, `settle` in particular, sees the edge's effect: with the real button thread
    /// an edge arrives tens of milliseconds after the pin changed.
    fn until_button_seen(&self, down: bool) -> Result<(), SimError> {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while self.status()?.button_down != down {
            if std::time::Instant::now() > deadline {
                // A stuck pin or a dead button thread: the next `settle` will say more.
                log::warn!("sim: the toy did not see the button change within 5 s");
                return Ok(());
            }
            if self
                .interrupt
                .recv_timeout(Duration::from_millis(2))
                .is_ok()
            {
                return Err(SimError::Interrupted);
            }
        }
        Ok(())
    }

    fn status(&self) -> Result<Status, SimError> {
        let (tx, rx) = bounded(1);
        self.send(ControlMsg::Status(tx))?;
        rx.recv().map_err(|_| SimError::Gone)
    }

    /// Waits until nothing is playing or recording.
    pub fn settled(&self) -> Result<Status, SimError> {
        let (tx, rx) = bounded(1);
        self.send(ControlMsg::WhenSettled(tx))?;
        select! {
            recv(rx) -> s => s.map_err(|_| SimError::Gone),
            recv(self.interrupt) -> _ => Err(SimError::Interrupted),
            default(self.settle_timeout) => Err(SimError::Stuck(self.settle_timeout)),
        }
    }
}

/// A one-line description of a screen, for the terminal.
pub fn describe(screen: &Screen) -> String {
    match screen {
        Screen::Idle {
            clips,
            listening,
            volume,
        } => format!(
            "idle: {clips} clip(s), volume {volume}/10{}",
            if *listening { ", listening" } else { "" }
        ),
        Screen::Heard { word, confidence } => {
            format!("heard \"{word}\" ({:.0} %)", confidence * 100.0)
        }
        Screen::Playing { name } => format!("playing {name}"),
        Screen::Recording { seconds_left } => format!("recording… {seconds_left} s"),
        Screen::ReleaseToErase => "release to erase everything".into(),
        Screen::Erased { count } => format!("erased {count} clip(s)"),
        Screen::Error { title, detail } => format!("{title}: {detail}"),
        Screen::TeachReady => "let go to teach me your voice".into(),
        Screen::EnrollSay {
            word,
            take,
            takes,
            other_word,
            listening,
        } => format!(
            "say: {} {} {take}/{takes}{}",
            word.to_uppercase(),
            if *other_word { "word" } else { "take" },
            if *listening { " — listening…" } else { "" }
        ),
        Screen::EnrollGotIt {
            word,
            take,
            takes,
            other_word,
        } => format!(
            "got it: {} {} {take}/{takes}",
            word.to_uppercase(),
            if *other_word { "word" } else { "take" }
        ),
        Screen::EnrollAgain { word, reason } => {
            format!("{reason} — again: {}", word.to_uppercase())
        }
        Screen::EnrollLearning { takes } => format!("learning… ({takes} takes)"),
        Screen::EnrollResult {
            before,
            after,
            switched,
        } => format!(
            "{}: {:.0} % -> {:.0} %",
            if *switched {
                "learned your voice"
            } else {
                "kept the old model"
            },
            before * 100.0,
            after * 100.0
        ),
        #[allow(unreachable_patterns)]
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_command() {
        let cases = [
            ("press", SimCommand::Press),
            ("  release  # up", SimCommand::Release),
            ("hold 12", SimCommand::Hold(Duration::from_secs(12))),
            ("wait 0.5", SimCommand::Wait(Duration::from_millis(500))),
            ("settle", SimCommand::Settle),
            (
                "say Go",
                SimCommand::Say {
                    word: "go".into(),
                    confidence: 0.9,
                },
            ),
            (
                "say no 0.75",
                SimCommand::Say {
                    word: "no".into(),
                    confidence: 0.75,
                },
            ),
            ("status", SimCommand::Status),
            ("quit", SimCommand::Quit),
        ];
        for (text, want) in cases {
            assert_eq!(parse_line(text, 1).unwrap(), Some(want), "{text}");
        }
        assert_eq!(parse_line("   # just a comment", 1).unwrap(), None);
        assert_eq!(parse_line("", 1).unwrap(), None);
    }

    #[test]
    fn bad_lines_say_what_is_wrong_and_where() {
        for (text, needle) in [
            ("hold", "needs a number"),
            ("hold ten", "not a number"),
            ("hold -3", "out of range"),
            ("jump", "unknown command `jump`"),
            ("press 3", "takes no argument"),
            ("say", "needs a word"),
            ("say go 7", "between 0 and 1"),
            ("wait 1 2", "too many"),
        ] {
            let e = parse_line(text, 7).unwrap_err().to_string();
            assert!(e.contains(needle) && e.contains("line 7"), "{text}: {e}");
        }
    }
}
