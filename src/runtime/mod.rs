//! Builds the threads and channels for `run` and `sim`, and takes them down again.
//!
//! ```text
//!  button ──edges──┐                            ┌──> player ──> ALSA playback
//!  capture ─┬──────┼──> controller (Machine) ───┼──> recorder ──> recordings/
//!           │ hub  │                            ├──> leds
//!           └──> keyword listener ──heard──┘    └──> display
//! ```
//! Every arrow is a crossbeam channel. Only the capture thread opens the microphone;
//! the recorder and the keyword listener subscribe to its fan-out.

pub mod adapter_glue;
pub mod controller;
pub mod enroller;
pub mod sim;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{unbounded, Sender};

use crate::audio::capture::{spawn_capture, CaptureConfig, CaptureHub};
use crate::audio::library::{Library, LibraryError};
use crate::audio::playback_window::PlaybackWindow;
use crate::audio::player::{spawn_player, PlayerConfig};
use crate::audio::recorder::spawn_recorder;
use crate::audio::AudioBackend;
use crate::clock::Clock;
use crate::config::Config;
use crate::core::EnrollmentConfig;
use crate::core::Machine;
use crate::hw::button::{spawn_button_thread, ButtonPin};
use crate::hw::leds::{spawn_led_thread, LedPins};
use crate::hw::HwError;
use crate::kws::listener::{spawn_reloadable_listener, Recognizer, RecognizerConfig};
use crate::ui::Screen;
use enroller::{spawn_enroller, EnrollmentSetup, ReloadFn};

pub use controller::{ControlMsg, Status};

/// Puts a screen on the panel (OLED, terminal, or nothing).
pub type ShowScreen = Box<dyn FnMut(&Screen) -> Result<(), HwError> + Send>;

/// The hardware a running toy talks to: real on a Pi, simulated in `sim` and tests.
pub struct Hardware {
    pub audio: Arc<dyn AudioBackend>,
    /// The button pin to poll; `None` when button edges arrive as
    /// [`ControlMsg::Button`] (the sim's virtual-time driver).
    pub button: Option<Box<dyn ButtonPin>>,
    pub leds: Box<dyn LedPins>,
    /// Shows a screen (OLED, terminal, or nothing); an error means it is not on the
    /// panel, and the display thread tries the newest screen again a little later.
    pub display: ShowScreen,
    /// Show the current screen again this often while nothing changes (the OLED, whose
    /// driver then resends the panel its set-up); `None` for terminals and tests.
    pub display_refresh: Option<Duration>,
    pub clock: Arc<dyn Clock>,
}

/// Start-up choices that are not in the config file.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Seed for random clip choice (`None`: from the OS).
    pub seed: Option<u64>,
}

/// Why the toy could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Library(#[from] LibraryError),
    #[error("could not start the {thread} thread: {source}")]
    Thread {
        thread: &'static str,
        source: std::io::Error,
    },
}

/// A running toy.
pub struct App {
    control: Sender<ControlMsg>,
    stop: Arc<AtomicBool>,
    controller: JoinHandle<()>,
    workers: Vec<JoinHandle<()>>,
    hub: CaptureHub,
    playing: Arc<PlaybackWindow>,
}

fn thread_err(thread: &'static str) -> impl FnOnce(std::io::Error) -> StartError {
    move |source| StartError::Thread { thread, source }
}

/// Starts every thread.
pub fn start(cfg: &Config, hw: Hardware, opts: Options) -> Result<App, StartError> {
    start_with(cfg, hw, opts, None)
}

/// Starts every thread; with `enrollment`, the toy can also be taught its owner's voice
/// (the double-press-and-hold gesture, an enroller thread, a reloadable keyword listener).
pub fn start_with(
    cfg: &Config,
    hw: Hardware,
    opts: Options,
    enrollment: Option<EnrollmentSetup>,
) -> Result<App, StartError> {
    let library = Library::open(&cfg.library.recordings_dir)?;
    let clips = library.list()?;
    log::info!(
        "{} recording(s) in {}",
        clips.len(),
        library.dir().display()
    );
    if let Err(e) = library.check_writable() {
        log::warn!("{e}");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let hub = CaptureHub::new();
    let playing = Arc::new(PlaybackWindow::new());
    let mut workers = Vec::new();

    let (capture_status_tx, capture_status_rx) = unbounded();
    let format = cfg.capture_format();
    workers.push(
        spawn_capture(
            hw.audio.clone(),
            CaptureConfig {
                device: cfg.audio.capture_device.clone(),
                format,
                chunk_frames: (format.rate * cfg.audio.chunk_ms / 1000).max(1) as usize,
                pacing: cfg.audio.pace_capture,
            },
            hub.clone(),
            capture_status_tx,
            stop.clone(),
        )
        .map_err(thread_err("capture"))?,
    );

    let (player_tx, player_rx) = unbounded();
    let (player_report_tx, player_report_rx) = unbounded();
    workers.push(
        spawn_player(
            hw.audio.clone(),
            PlayerConfig {
                device: cfg.audio.playback_device.clone(),
                preferred: format,
                max_clip_seconds: cfg.audio.max_clip_seconds,
                idle_close: cfg.audio.speaker_idle_close(),
            },
            player_rx,
            player_report_tx,
        )
        .map_err(thread_err("player"))?,
    );

    let (recorder_tx, recorder_rx) = unbounded();
    let (recorder_report_tx, recorder_report_rx) = unbounded();
    let stall = Duration::from_secs_f32(cfg.button.record_seconds) + Duration::from_secs(5);
    workers.push(
        spawn_recorder(
            library.clone(),
            hub.clone(),
            stall,
            recorder_rx,
            recorder_report_tx,
        )
        .map_err(thread_err("recorder"))?,
    );

    let (led_tx, led_rx) = unbounded();
    workers.push(spawn_led_thread(hw.leds, led_rx).map_err(thread_err("leds"))?);

    let (screen_tx, screen_rx) = unbounded::<Screen>();
    let show = hw.display;
    let display_refresh = hw.display_refresh;
    workers.push(
        std::thread::Builder::new()
            .name("display".into())
            .spawn(move || show_screens(show, &screen_rx, display_refresh))
            .map_err(thread_err("display"))?,
    );

    let (edge_tx, edge_rx) = unbounded();
    let polled_button = hw.button.is_some();
    if let Some(pin) = hw.button {
        workers.push(
            spawn_button_thread(
                pin,
                hw.clock.clone(),
                Duration::from_millis(cfg.button.debounce_ms.into()),
                Duration::from_millis(cfg.button.poll_ms.into()),
                edge_tx,
                stop.clone(),
            )
            .map_err(thread_err("button"))?,
        );
    } else {
        drop(edge_tx);
    }

    let (control_tx, control_rx) = unbounded();
    // A model learned on the toy wins over the configured one when it is whole (every pin
    // checked; a damaged one is logged with the fix); the configured one stays the fallback.
    let model = enrollment
        .as_ref()
        .and_then(|e| crate::adapt::owner::resolve(&e.state_dir))
        .unwrap_or_else(|| cfg.keywords.model.clone());
    let (listening, swap) = if cfg.keywords.enabled {
        let mut start = |model: &std::path::Path| {
            start_listener(cfg, model, &hub, &playing, &stop, &control_tx, &mut workers)
        };
        let mut started = start(&model)?;
        if started.is_none() && model != cfg.keywords.model {
            log::warn!(
                "falling back to the shipped model {}",
                cfg.keywords.model.display()
            );
            started = start(&cfg.keywords.model)?;
        }
        (started.is_some(), started)
    } else {
        (false, None)
    };
    let seed = opts.seed.unwrap_or_else(rand::random);
    let mut machine_cfg = cfg.machine(listening, seed);
    if polled_button {
        machine_cfg.release_grace = cfg.button.release_grace();
    }
    let (enroll_report_tx, enroll_report_rx) = unbounded();
    machine_cfg.enrollment = None;
    let stop_learning = enrollment
        .as_ref()
        .map(|setup| setup.stop.clone())
        .unwrap_or_default();
    let enroll_tx = match enrollment {
        Some(setup) => {
            machine_cfg.enrollment = Some(EnrollmentConfig {
                words: if setup.words.is_empty() {
                    enroll_words(&model)
                } else {
                    setup.words.clone()
                },
                takes: setup.takes,
                other_words: setup.other_words.clone(),
                ..EnrollmentConfig::default()
            });
            let keywords = RecognizerConfig::from_config(&cfg.keywords);
            let reload: ReloadFn = Box::new(move |path| match &swap {
                Some(swap) => {
                    let r = Recognizer::load(path, &keywords).map_err(|e| e.to_string())?;
                    swap.send(r)
                        .map_err(|_| "the keyword listener has stopped".to_string())
                }
                None => Err("voice commands are off in this run".into()),
            });
            let (tx, rx) = unbounded();
            workers.push(
                spawn_enroller(setup, hub.clone(), reload, rx, enroll_report_tx)
                    .map_err(thread_err("enroller"))?,
            );
            Some(tx)
        }
        None => {
            drop(enroll_report_tx);
            None
        }
    };
    let machine = Machine::new(machine_cfg, clips);
    let controller = controller::Controller::new(
        machine,
        hw.clock.clone(),
        library,
        cfg.library.sounds_dir.clone(),
        cfg.keywords.commands.clone(),
        controller::Outputs {
            player: player_tx,
            recorder: recorder_tx,
            leds: led_tx,
            screens: screen_tx,
            enroll: enroll_tx,
            stop_learning,
        },
        playing.clone(),
    );
    let inputs = controller::Inputs {
        control: control_rx,
        edges: edge_rx,
        player: player_report_rx,
        recorder: recorder_report_rx,
        capture: capture_status_rx,
        enroll: enroll_report_rx,
    };
    let controller = std::thread::Builder::new()
        .name("controller".into())
        .spawn(move || controller.run(inputs))
        .map_err(thread_err("controller"))?;

    Ok(App {
        control: control_tx,
        stop,
        controller,
        workers,
        hub,
        playing,
    })
}

/// How soon a screen that did not reach the panel is tried again. The OLED driver backs off
/// further by itself (a missing panel is probed a few times a minute), so this only bounds
/// how long a panel that came back stays dark on an idle toy.
const DISPLAY_RETRY: Duration = Duration::from_secs(1);

/// The display thread: shows each screen, newest first, until the controller is gone.
/// A screen that failed (I2C error, panel unplugged or browned out) is shown again every
/// [`DISPLAY_RETRY`] until it works, even if nothing new arrives; the error is logged once
/// per episode, not per try. With `refresh`, the current screen is also shown again that
/// often while nothing changes, so the driver can resend the panel its set-up (an OLED
/// that lost power between two frames; see `hw::display::REFRESH_EVERY`).
fn show_screens(
    mut show: ShowScreen,
    screens: &crossbeam_channel::Receiver<Screen>,
    refresh: Option<Duration>,
) {
    let mut current: Option<Screen> = None;
    let mut shown = true;
    let mut failing = false;
    loop {
        let wait = match (&current, shown) {
            (Some(_), false) => Some(DISPLAY_RETRY),
            (Some(_), true) => refresh,
            (None, _) => None,
        };
        let next = match wait {
            None => screens.recv().ok(),
            Some(wait) => match screens.recv_timeout(wait) {
                Ok(s) => Some(s),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => current.take(),
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => None,
            },
        };
        let Some(mut screen) = next else { return };
        // Only the newest screen matters: skip any that queued up behind a slow I2C write.
        while let Ok(newer) = screens.try_recv() {
            screen = newer;
        }
        shown = match show(&screen) {
            Ok(()) => {
                if std::mem::take(&mut failing) {
                    log::info!("display: the screen is showing again");
                }
                true
            }
            Err(e) => {
                if !std::mem::replace(&mut failing, true) {
                    log::warn!("{e}");
                }
                false
            }
        };
        current = Some(screen);
    }
}

/// The words a teaching session asks for: the model's keywords, or the default eight when
/// its contract cannot be read.
fn enroll_words(model: &std::path::Path) -> Vec<String> {
    use crate::kws::meta::{is_keyword, KwsMeta};
    match KwsMeta::load(model) {
        Ok(meta) => meta.labels.into_iter().filter(|l| is_keyword(l)).collect(),
        Err(_) => EnrollmentConfig::default().words,
    }
}

/// Loads the keyword model and starts the listener; returns where to send a newly loaded
/// recognizer to replace it. A model that cannot be loaded is logged and the toy runs
/// without voice commands (`None`): the button must always work.
fn start_listener(
    cfg: &Config,
    model: &std::path::Path,
    hub: &CaptureHub,
    playing: &Arc<PlaybackWindow>,
    stop: &Arc<AtomicBool>,
    control: &Sender<ControlMsg>,
    workers: &mut Vec<JoinHandle<()>>,
) -> Result<Option<Sender<Recognizer>>, StartError> {
    let recognizer = match Recognizer::load(model, &RecognizerConfig::from_config(&cfg.keywords)) {
        Ok(r) => r,
        Err(e) => {
            log::warn!(
                "voice commands are off: {e} (set keywords.enabled = false to silence this)"
            );
            return Ok(None);
        }
    };
    log::info!(
        "listening for {}",
        recognizer
            .labels()
            .iter()
            .filter(|l| cfg.keywords.commands.lookup(l).is_some())
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    );
    // 2 s of buffering: inference hiccups must not cost words.
    let subscription = hub.subscribe("keywords", 100);
    let control = control.clone();
    let (swap_tx, swap_rx) = unbounded();
    workers.push(
        spawn_reloadable_listener(
            recognizer,
            swap_rx,
            subscription,
            playing.clone(),
            stop.clone(),
            move |d| {
                let _ = control.send(ControlMsg::Heard {
                    word: d.word,
                    confidence: d.confidence,
                });
            },
        )
        .map_err(thread_err("keywords"))?,
    );
    Ok(Some(swap_tx))
}

impl App {
    /// A sender for control messages (sim driver, signal handler, keyword listener).
    pub fn control(&self) -> Sender<ControlMsg> {
        self.control.clone()
    }

    /// The capture fan-out, for extra subscribers.
    pub fn hub(&self) -> &CaptureHub {
        &self.hub
    }

    /// When the toy is and was playing a sound.
    pub fn playing(&self) -> Arc<PlaybackWindow> {
        self.playing.clone()
    }

    /// Asks everything to stop and waits for it.
    pub fn shutdown(self) {
        let _ = self.control.send(ControlMsg::Shutdown);
        self.wait();
    }

    /// Waits for the controller to stop (after [`ControlMsg::Shutdown`]), then stops and
    /// joins every other thread.
    pub fn wait(self) {
        let App {
            control,
            stop,
            controller,
            workers,
            ..
        } = self;
        drop(control);
        if controller.join().is_err() {
            log::error!("the controller thread panicked");
        }
        stop.store(true, Ordering::SeqCst);
        for w in workers {
            let name = w.thread().name().unwrap_or("worker").to_string();
            if w.join().is_err() {
                log::error!("the {name} thread panicked");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_screen_that_failed_is_shown_again_without_a_new_one() {
        let (screen_tx, screen_rx) = unbounded::<Screen>();
        let (tried_tx, tried_rx) = unbounded::<bool>();
        let mut failures_left = 2;
        let show = Box::new(move |_: &Screen| {
            let ok = failures_left == 0;
            failures_left = (failures_left - 1).max(0);
            let _ = tried_tx.send(ok);
            if ok {
                Ok(())
            } else {
                Err(HwError::Gpio {
                    what: "test panel".into(),
                    detail: "no answer".into(),
                    fix: "none".into(),
                })
            }
        });
        let thread = std::thread::spawn(move || show_screens(show, &screen_rx, None));
        screen_tx
            .send(Screen::Erased { count: 1 })
            .expect("display thread");
        let wait = DISPLAY_RETRY * 5;
        let tries: Vec<bool> = (0..3)
            .map(|_| tried_rx.recv_timeout(wait).expect("tried again"))
            .collect();
        assert_eq!(tries, [false, false, true]);
        // Once it is on the panel, nothing more is sent until a new screen comes.
        assert!(tried_rx.recv_timeout(DISPLAY_RETRY * 2).is_err());
        drop(screen_tx);
        thread.join().unwrap();
    }

    #[test]
    fn with_a_refresh_the_current_screen_is_shown_again_while_nothing_changes() {
        let (screen_tx, screen_rx) = unbounded::<Screen>();
        let (shown_tx, shown_rx) = unbounded::<Screen>();
        let show = Box::new(move |s: &Screen| {
            let _ = shown_tx.send(s.clone());
            Ok(())
        });
        let refresh = Duration::from_millis(50);
        let thread = std::thread::spawn(move || show_screens(show, &screen_rx, Some(refresh)));
        screen_tx.send(Screen::Erased { count: 2 }).unwrap();
        for _ in 0..3 {
            let again = shown_rx
                .recv_timeout(Duration::from_secs(5))
                .expect("shown");
            assert_eq!(again, Screen::Erased { count: 2 });
        }
        drop(screen_tx);
        thread.join().unwrap();
    }
}
