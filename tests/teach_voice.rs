//! Teaching the toy its owner's voice, assembled: the real threads (controller, capture,
//! player, recorder, enroller, LEDs, display) in process, a virtual clock and button, an
//! in-memory microphone, and a fake adapter in place of the trainer.
//!
//! A "mouth" thread speaks into the microphone whenever the enroller is listening (it
//! watches the capture hub's subscriber count, so the audio lands in the take and nowhere
//! else): first a take far too quiet, then clear ones.
//!
//! Checked: the gesture starts a session; the quiet take is refused with its reason on the
//! screen and in the log and the word is asked again; the takes land in the enroll layout
//! under the state folder (and none in the recordings folder); the adapter is called on
//! that folder and its result is shown; and an enroller thread that dies while learning
//! does not wedge the controller.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chatterbox::audio::memory::MemoryBackend;
use chatterbox::clock::{Clock, ManualClock};
use chatterbox::config::Config;
use chatterbox::core::AdaptOutcome;
use chatterbox::hw::leds::{Led, LedPins};
use chatterbox::runtime::adapter_glue::{ClosureAdapter, StopFlag};
use chatterbox::runtime::enroller::EnrollmentSetup;
use chatterbox::runtime::sim::{SimButton, SimCommand, SimDriver};
use chatterbox::runtime::{self, App, ControlMsg, Hardware, Options};
use chatterbox::ui::Screen;
use common::log_capture;

const RATE: u32 = 16_000;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// 2 s at 16 kHz mono: 0.6 s of silence, a 0.5 s 300 Hz "word" at `amp`, silence.
fn utterance(amp: f32) -> Vec<i16> {
    (0..2 * RATE as usize)
        .map(|i| {
            let t = i as f32 / RATE as f32;
            if (0.6..1.1).contains(&t) {
                (amp * 32767.0 * (t * 300.0 * std::f32::consts::TAU).sin()) as i16
            } else {
                0
            }
        })
        .collect()
}

struct NoLeds;

impl LedPins for NoLeds {
    fn set(&mut self, _led: Led, _on: bool) -> Result<(), chatterbox::hw::HwError> {
        Ok(())
    }
}

/// What the fake trainer does when the toy asks it to learn.
#[derive(Clone, Copy)]
enum Trainer {
    /// Answers at once.
    Answers(AdaptOutcome),
    /// Panics (the enroller thread dies).
    Crashes,
    /// Runs until the toy asks it to stop (at most 30 s of real time), then says it stopped.
    RunsUntilStopped,
}

struct Toy {
    app: Option<App>,
    driver: SimDriver,
    clock: ManualClock,
    /// For each call of the trainer: whether the stop was already requested when it began,
    /// and whether it saw the stop before it returned.
    stops: Arc<Mutex<Vec<(bool, bool)>>>,
    screens: Arc<Mutex<Vec<Screen>>>,
    state: tempfile::TempDir,
    adapted: Arc<Mutex<Vec<PathBuf>>>,
    mouth_stop: Arc<AtomicBool>,
    mouth: Option<std::thread::JoinHandle<usize>>,
}

impl Toy {
    /// A toy teaching `words` x `takes`, then `other_words` once each, with a fake `trainer`.
    /// The mouth says `takes_said` in order, one per take listened for.
    fn start(
        words: &[&str],
        takes: usize,
        other_words: &[&str],
        trainer: Trainer,
        takes_said: Vec<Vec<i16>>,
    ) -> Toy {
        log_capture::init();
        let state = tempfile::tempdir().unwrap();
        let mut cfg = Config::default();
        cfg.audio.capture_device = "mem".into();
        cfg.audio.playback_device = "mem".into();
        cfg.audio.rate = RATE;
        cfg.audio.channels = 1;
        cfg.audio.pace_capture = chatterbox::audio::capture::Pacing::Never;
        cfg.keywords.enabled = false;
        cfg.library.recordings_dir = state.path().join("rec");
        cfg.library.sounds_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sounds");

        let backend = MemoryBackend::new();
        let clock = ManualClock::new();
        let screens = Arc::new(Mutex::new(Vec::new()));
        let shown = screens.clone();
        let adapted = Arc::new(Mutex::new(Vec::new()));
        let calls = adapted.clone();
        let stops = Arc::new(Mutex::new(Vec::new()));
        let seen = stops.clone();
        let adapter = ClosureAdapter::new(move |dir: &Path, stop: &StopFlag| {
            calls.lock().unwrap().push(dir.to_path_buf());
            let at_start = stop.requested();
            match trainer {
                Trainer::Answers(o) => {
                    seen.lock().unwrap().push((at_start, stop.requested()));
                    Ok(o)
                }
                Trainer::Crashes => panic!("simulated: the trainer crashed"),
                Trainer::RunsUntilStopped => {
                    let t = std::time::Instant::now();
                    while !stop.requested() && t.elapsed() < Duration::from_secs(30) {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    seen.lock().unwrap().push((at_start, stop.requested()));
                    Err("simulated: stopped".into())
                }
            }
        });
        let setup = EnrollmentSetup {
            state_dir: state.path().to_path_buf(),
            takes,
            words: words.iter().map(|w| w.to_string()).collect(),
            other_words: other_words.iter().map(|w| w.to_string()).collect(),
            adapter: Box::new(adapter),
            owner_model: state.path().join("models-owner/kws.toml"),
            stop: StopFlag::default(),
        };
        let virtual_clock = clock.clone();
        let app = runtime::start_with(
            &cfg,
            Hardware {
                audio: Arc::new(backend.clone()),
                button: None,
                leds: Box::new(NoLeds),
                display: Box::new(move |s| {
                    shown.lock().unwrap().push(s.clone());
                    Ok(())
                }),
                display_refresh: None,
                clock: Arc::new(clock.clone()),
            },
            Options { seed: Some(1) },
            Some(setup),
        )
        .expect("start");

        // The mouth: speaks one utterance into each take the enroller listens for.
        let hub = app.hub().clone();
        let idle = hub.subscriber_count();
        let mouth_stop = Arc::new(AtomicBool::new(false));
        let stop = mouth_stop.clone();
        let mouth = std::thread::spawn(move || {
            let mut said = 0;
            for take in takes_said {
                loop {
                    if stop.load(Ordering::SeqCst) {
                        return said;
                    }
                    if hub.subscriber_count() > idle {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                backend.feed_capture(&take);
                said += 1;
                while hub.subscriber_count() > idle && !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            said
        });

        let (_tx, interrupt) = crossbeam_channel::unbounded();
        std::mem::forget(_tx);
        let driver = SimDriver::new(app.control(), SimButton::Virtual(clock), interrupt);
        Toy {
            app: Some(app),
            driver,
            clock: virtual_clock,
            stops,
            screens,
            state,
            adapted,
            mouth_stop,
            mouth: Some(mouth),
        }
    }

    fn run(&mut self, cmds: &[SimCommand]) {
        for c in cmds {
            self.driver.run(c).expect("the toy answers");
        }
    }

    /// Tap, then press again and hold past 2 s, let go.
    fn gesture(&mut self) {
        self.run(&[
            SimCommand::Press,
            SimCommand::Wait(secs(0.1)),
            SimCommand::Release,
            SimCommand::Wait(secs(0.3)),
            SimCommand::Press,
            SimCommand::Wait(secs(2.2)),
            SimCommand::Release,
        ]);
    }

    /// Lets virtual time pass until the session is over (bounded).
    fn until_taught(&mut self) {
        for _ in 0..400 {
            let s = self.driver.settled().expect("the toy answers");
            if !s.enrolling {
                return;
            }
            self.run(&[SimCommand::Wait(secs(0.5))]);
        }
        panic!("the session never ended; screens: {:?}", self.screens());
    }

    fn screens(&self) -> Vec<Screen> {
        self.screens.lock().unwrap().clone()
    }

    /// Waits (bounded) until the panel shows a screen matching `pred`. The display thread
    /// shows only the newest of screens that queue up, so a screen that was up for no real
    /// time may never reach the panel: transient ones are checked in the log instead.
    fn shows(&self, pred: impl Fn(&Screen) -> bool) -> bool {
        for _ in 0..5000 {
            if self.screens().last().is_some_and(&pred) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        false
    }

    fn enroll_dir(&self) -> PathBuf {
        self.state.path().join("enroll")
    }

    /// Stops the toy; returns how many takes the mouth spoke.
    fn stop(mut self) -> usize {
        self.mouth_stop.store(true, Ordering::SeqCst);
        let said = self.mouth.take().unwrap().join().unwrap();
        self.app.take().unwrap().shutdown();
        said
    }
}

fn wavs(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if e.path().is_dir() {
            for f in wavs(&e.path()) {
                out.push(format!("{name}/{f}"));
            }
        } else if name.ends_with(".wav") {
            out.push(name);
        }
    }
    out.sort();
    out
}

#[test]
fn the_gesture_teaches_refuses_a_quiet_take_saves_the_rest_and_shows_the_result() {
    let mut said = vec![utterance(0.001)]; // about -60 dBFS: too quiet
    said.extend((0..9).map(|_| utterance(0.4)));
    let outcome = AdaptOutcome {
        before: 0.78,
        after: 0.96,
        switched: true,
    };
    let others = ["rainbow", "cookie", "hippo"];
    let mut toy = Toy::start(&["go", "stop"], 3, &others, Trainer::Answers(outcome), said);
    toy.gesture();
    assert!(
        toy.driver.settled().unwrap().enrolling,
        "{:?}",
        toy.screens()
    );
    toy.until_taught();

    // The quiet take: refused with its reason in the log (and on the screen: the machine's
    // own tests check the screens step by step); the word is asked again.
    let said = |needle: &str| log_capture::count(log::Level::Info, needle);
    assert!(
        said("let go to teach the toy a voice") >= 1,
        "the 2 s mark was reached"
    );
    assert_eq!(
        said("teaching: too quiet — \"go\" again"),
        1,
        "{:?}",
        log_capture::all()
    );
    assert_eq!(said("teaching: say \"go\" (take 1/3)"), 2, "asked again");
    for (word, take) in [
        ("go", 1),
        ("go", 2),
        ("go", 3),
        ("stop", 1),
        ("stop", 2),
        ("stop", 3),
    ] {
        assert_eq!(
            said(&format!("teaching: got it — \"{word}\" take {take}/3")),
            1
        );
    }
    // Then the other words, once each, kept as `unknown` takes.
    for (take, word) in others.iter().enumerate() {
        assert_eq!(
            said(&format!(
                "teaching: got it — \"{word}\" other word {}/3",
                take + 1
            )),
            1,
            "{:?}",
            log_capture::all()
        );
    }
    assert_eq!(said("teaching: learning from 9 take(s)"), 1);
    // The takes, in the enroll layout under the state folder; none in the clip library.
    let takes = wavs(&toy.enroll_dir());
    assert_eq!(takes.len(), 9, "{takes:?}");
    for word in ["go", "stop", "unknown"] {
        assert_eq!(
            takes
                .iter()
                .filter(|t| t.starts_with(&format!("{word}/owner_nohash_")))
                .count(),
            3,
            "{takes:?}"
        );
    }
    let held_out = std::fs::read_to_string(toy.enroll_dir().join("testing_list.txt")).unwrap();
    assert_eq!(held_out.lines().count(), 3, "{held_out}");
    assert!(held_out.contains("unknown/owner_nohash_"), "{held_out}");
    assert!(
        held_out.lines().all(|l| l.ends_with("-3.wav")),
        "{held_out}"
    );
    let take = hound::WavReader::open(toy.enroll_dir().join(&takes[0])).unwrap();
    assert_eq!(
        (take.spec().sample_rate, take.spec().channels, take.len()),
        (16_000, 1, 16_000)
    );
    assert!(wavs(&toy.state.path().join("rec")).is_empty());

    // The adapter ran on that folder, and its answer was shown.
    assert_eq!(*toy.adapted.lock().unwrap(), vec![toy.enroll_dir()]);
    assert!(
        toy.shows(|s| *s
            == Screen::EnrollResult {
                before: 0.78,
                after: 0.96,
                switched: true
            }),
        "{:?}",
        toy.screens()
    );
    assert_eq!(said("learned your voice: 78 % -> 96 %"), 1);
    assert_eq!(
        toy.stop(),
        10,
        "one quiet take and nine good ones were spoken"
    );
}

#[test]
fn an_enroller_that_dies_while_learning_does_not_wedge_the_toy() {
    let said = (0..1).map(|_| utterance(0.4)).collect();
    let mut toy = Toy::start(&["yes"], 1, &[], Trainer::Crashes, said);
    toy.gesture();
    toy.until_taught();
    assert_eq!(
        toy.adapted.lock().unwrap().len(),
        1,
        "the adapter was called"
    );
    assert!(
        toy.shows(|s| matches!(s, Screen::Error { title, detail } if title == "Not learned" && detail.contains("enroller thread stopped"))),
        "{:?}",
        toy.screens()
    );
    // The toy still works: a press plays (the empty cue) and it settles again.
    let before = toy.screens().len();
    toy.run(&[
        SimCommand::Wait(secs(5.0)),
        SimCommand::Press,
        SimCommand::Release,
        SimCommand::Settle,
    ]);
    let status = toy.driver.settled().unwrap();
    assert!(!status.enrolling && !status.button_down);
    assert!(toy.screens().len() > before, "screens keep coming");
    // A new gesture now fails at once, saying what to do, instead of hanging.
    toy.run(&[SimCommand::Wait(secs(1.0))]);
    toy.gesture();
    toy.until_taught();
    assert!(toy.shows(
        |s| matches!(s, Screen::Error { detail, .. } if detail.contains("restart the toy"))
    ));
    toy.stop();
}

#[test]
fn a_learning_past_the_watchdog_is_told_to_stop_and_the_next_one_starts_clear() {
    let said = (0..2).map(|_| utterance(0.4)).collect();
    let mut toy = Toy::start(&["yes"], 1, &[], Trainer::RunsUntilStopped, said);
    // Learning keeps the toy busy, so the driver cannot wait it out: it gives up quickly, and
    // the test moves the virtual clock itself.
    toy.driver.settle_timeout = Duration::from_secs(2);
    toy.gesture();
    for _ in 0..100 {
        if !toy.adapted.lock().unwrap().is_empty() {
            break;
        }
        let _ = toy.driver.run(&SimCommand::Wait(secs(0.5)));
    }
    assert_eq!(toy.adapted.lock().unwrap().len(), 1, "learning began");
    assert!(toy.stops.lock().unwrap().is_empty(), "and is still running");
    // Ten minutes and a second later the watchdog fires.
    toy.clock.set(toy.clock.now() + Duration::from_secs(601));
    let control = toy.app.as_ref().unwrap().control();
    control.send(ControlMsg::Tick).unwrap();
    for _ in 0..5000 {
        if !toy.stops.lock().unwrap().is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(
        *toy.stops.lock().unwrap(),
        [(false, true)],
        "the running trainer was told to stop"
    );
    assert!(
        toy.shows(|s| matches!(s, Screen::Error { title, detail } if title == "Not learned" && detail.contains("chatterbox adapt"))),
        "{:?}",
        toy.screens()
    );
    // The next session's learning starts with the stop cleared.
    toy.run(&[SimCommand::Settle, SimCommand::Wait(secs(6.0))]);
    toy.gesture();
    for _ in 0..100 {
        if toy.adapted.lock().unwrap().len() == 2 {
            break;
        }
        let _ = toy.driver.run(&SimCommand::Wait(secs(0.5)));
    }
    assert_eq!(toy.adapted.lock().unwrap().len(), 2, "{:?}", toy.screens());
    // Stopping the toy stops that learning too (else shutting down would wait for it).
    let stops = toy.stops.clone();
    let t = std::time::Instant::now();
    toy.stop();
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    let stops = stops.lock().unwrap().clone();
    assert_eq!(
        stops,
        [(false, true), (false, true)],
        "the second learning began with the stop cleared and was stopped by the shutdown"
    );
}
