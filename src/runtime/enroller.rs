//! The enroller thread: records, checks and saves the takes of a teaching session, then runs
//! the adapter and, when it switched to a new model, has the keyword listener load it.
//!
//! Like the recorder, it subscribes to the capture fan-out only while it records a take, so
//! the microphone stays with the capture thread. It never touches the recordings folder:
//! takes go to `<state_dir>/enroll/<word>/owner_nohash_<session>-<take>.wav` (the layout of
//! `chatterbox enroll`, written by the same [`crate::enroll`] functions, every third take
//! listed in `testing_list.txt`; the other words under `unknown/`), never into the clip library.

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{select, Receiver, Sender};

use super::adapter_glue::{StopFlag, VoiceAdapter};
use crate::audio::capture::CaptureHub;
use crate::core::{AdaptOutcome, TakeResult};
use crate::enroll::{make_take, save_take, EnrollError};

/// Reloads the keyword listener with the model at this path (a new one the adapter wrote).
pub type ReloadFn = Box<dyn FnMut(&Path) -> Result<(), String> + Send>;

/// What a running toy needs to teach itself a voice.
pub struct EnrollmentSetup {
    /// The toy's state folder: takes go to `<state_dir>/enroll/`.
    pub state_dir: PathBuf,
    /// Takes per word.
    pub takes: usize,
    /// The words to teach; empty: every keyword of the model in use.
    pub words: Vec<String>,
    /// Words that are not commands, said once each after the keywords (the `[adapt]
    /// other_words` of the model adapting starts from; empty: none).
    pub other_words: Vec<String>,
    /// The trainer (see [`super::adapter_glue`]).
    pub adapter: Box<dyn VoiceAdapter>,
    /// Requested by the controller when the toy stops waiting for the trainer.
    pub stop: StopFlag,
    /// Where the adapter puts the owner's model contract (`<state_dir>/models-owner/kws.toml`,
    /// later `crate::adapt::owner_model(state_dir)`): loaded after a switch, and at start
    /// instead of the shipped model when it exists.
    pub owner_model: PathBuf,
}

impl EnrollmentSetup {
    /// The folder the takes are saved in.
    pub fn takes_dir(&self) -> PathBuf {
        enroll_dir(&self.state_dir)
    }
}

/// `<state_dir>/enroll`.
pub fn enroll_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("enroll")
}

/// What the enroller is asked to do.
#[derive(Clone, Debug, PartialEq)]
pub enum EnrollCommand {
    /// A new session: its takes get a new name stamp.
    Begin,
    /// Record, check and save take `take` of `word`; answer with [`EnrollReport::Take`].
    Take {
        id: u64,
        word: String,
        take: usize,
        length: Duration,
    },
    /// Abandon the take being recorded (no answer).
    Cancel,
    /// Run the adapter on the takes; answer with [`EnrollReport::Adapted`].
    Adapt,
    Shutdown,
}

/// What the enroller did.
#[derive(Clone, Debug, PartialEq)]
pub enum EnrollReport {
    Take { id: u64, result: TakeResult },
    Adapted(Result<AdaptOutcome, String>),
}

/// How long past a take's length the enroller waits for audio before giving up.
pub const TAKE_STALL: Duration = Duration::from_secs(3);

/// Starts the enroller thread.
pub fn spawn_enroller(
    setup: EnrollmentSetup,
    hub: CaptureHub,
    mut reload: ReloadFn,
    commands: Receiver<EnrollCommand>,
    reports: Sender<EnrollReport>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("enroller".into())
        .spawn(move || {
            let dir = setup.takes_dir();
            let mut stamp = session_stamp();
            for cmd in commands.iter() {
                let report = match cmd {
                    EnrollCommand::Begin => {
                        stamp = session_stamp();
                        log::info!("teaching: takes go to {}", dir.display());
                        continue;
                    }
                    EnrollCommand::Cancel => continue,
                    EnrollCommand::Shutdown => return,
                    EnrollCommand::Take {
                        id,
                        word,
                        take,
                        length,
                    } => match record_take(&hub, length, &commands) {
                        Recorded::Audio(samples, format) => EnrollReport::Take {
                            id,
                            result: keep_take(&dir, &word, &stamp, take, &samples, format),
                        },
                        Recorded::Failed(why) => EnrollReport::Take {
                            id,
                            result: TakeResult::Failed(why),
                        },
                        Recorded::Cancelled => continue,
                        Recorded::ShutDown => return,
                    },
                    EnrollCommand::Adapt => EnrollReport::Adapted(adapt(&setup, &dir, &mut reload)),
                };
                if reports.send(report).is_err() {
                    return;
                }
            }
        })
}

fn session_stamp() -> String {
    chrono::Local::now().format("%Y%m%d-%H%M%S").to_string()
}

enum Recorded {
    Audio(Vec<i16>, crate::audio::PcmFormat),
    Failed(String),
    Cancelled,
    ShutDown,
}

/// `length` of microphone audio from the capture fan-out, as it comes (interleaved).
fn record_take(hub: &CaptureHub, length: Duration, commands: &Receiver<EnrollCommand>) -> Recorded {
    let sub = hub.subscribe("enroller", 200);
    let mut samples: Vec<i16> = Vec::new();
    let mut format = None;
    let mut target = usize::MAX;
    let stall = length + TAKE_STALL;
    while samples.len() < target {
        let chunk = select! {
            recv(sub.receiver()) -> c => match c {
                Ok(c) => c,
                Err(_) => return Recorded::Failed("the capture thread stopped".into()),
            },
            recv(commands) -> cmd => match cmd {
                Ok(EnrollCommand::Cancel) => return Recorded::Cancelled,
                Ok(EnrollCommand::Shutdown) | Err(_) => return Recorded::ShutDown,
                Ok(other) => {
                    log::warn!("enroller busy recording a take; ignored {other:?}");
                    continue;
                }
            },
            default(stall) => return Recorded::Failed(
                "no audio from the microphone: check `audio.capture_device` and `chatterbox devices`".into(),
            ),
        };
        match format {
            None => {
                format = Some(chunk.format);
                let frames = (length.as_secs_f64() * f64::from(chunk.format.rate)).round();
                target = frames as usize * usize::from(chunk.format.channels.max(1));
            }
            Some(f) if f != chunk.format => {
                return Recorded::Failed(
                    "the microphone's format changed during the take; try again".into(),
                )
            }
            Some(_) => {}
        }
        samples.extend_from_slice(&chunk.samples);
    }
    samples.truncate(target);
    match format {
        Some(f) => Recorded::Audio(samples, f),
        None => Recorded::Failed("nothing was recorded".into()),
    }
}

/// Checks a take and saves it; the verdict for the state machine.
fn keep_take(
    dir: &Path,
    word: &str,
    stamp: &str,
    take: usize,
    samples: &[i16],
    format: crate::audio::PcmFormat,
) -> TakeResult {
    let result = make_take(samples, format).and_then(|t| save_take(dir, word, stamp, take, &t));
    match result {
        Ok(path) => {
            log::info!("teaching: saved {}", path.display());
            TakeResult::Kept
        }
        Err(EnrollError::Refused(r)) => TakeResult::Refused {
            reason: r.short().to_string(),
            detail: r.to_string(),
        },
        Err(e) => {
            log::error!("teaching: {e}");
            TakeResult::Failed(e.to_string())
        }
    }
}

fn adapt(
    setup: &EnrollmentSetup,
    dir: &Path,
    reload: &mut ReloadFn,
) -> Result<AdaptOutcome, String> {
    let started = std::time::Instant::now();
    let outcome = setup.adapter.adapt(dir, &setup.stop).inspect_err(|e| {
        log::warn!("adapter: {e}");
    })?;
    log::info!(
        "adapter: {:.0} % -> {:.0} % on the held-out takes in {:.1} s; {}",
        outcome.before * 100.0,
        outcome.after * 100.0,
        started.elapsed().as_secs_f32(),
        if outcome.switched {
            "switched to the new model"
        } else {
            "kept the old model"
        }
    );
    if outcome.switched {
        if let Err(e) = reload(&setup.owner_model) {
            // The model is on disk and is used from the next start; say so, but the
            // learning itself worked.
            log::warn!(
                "the keyword listener could not load the new model {} now ({e}); it is used from the next start",
                setup.owner_model.display()
            );
        }
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::{AudioChunk, PcmFormat};
    use crate::runtime::adapter_glue::ClosureAdapter;
    use std::sync::Arc;

    const MONO16: PcmFormat = PcmFormat {
        rate: 16_000,
        channels: 1,
    };

    /// 2 s: a 0.5 s tone at `amp` from 0.5 s, silence around it, in 20 ms chunks.
    fn speak(hub: &CaptureHub, amp: f32) {
        let samples: Vec<i16> = (0..32_000)
            .map(|i| {
                let t = i as f32 / 16_000.0;
                if (0.5..1.0).contains(&t) {
                    (amp * 32767.0 * (t * 300.0 * std::f32::consts::TAU).sin()) as i16
                } else {
                    0
                }
            })
            .collect();
        for (n, c) in samples.chunks(320).enumerate() {
            hub.publish(AudioChunk {
                format: MONO16,
                first_frame: n as u64 * 320,
                captured_at: std::time::Instant::now(),
                samples: Arc::from(c),
            });
        }
    }

    fn until_subscribed(hub: &CaptureHub, n: usize) {
        while hub.subscriber_count() != n {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn takes_are_checked_saved_cancelled_and_adapted() {
        let state = tempfile::tempdir().unwrap();
        let hub = CaptureHub::new();
        let reloaded = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = reloaded.clone();
        let setup = EnrollmentSetup {
            state_dir: state.path().to_path_buf(),
            takes: 1,
            words: vec!["go".into()],
            other_words: Vec::new(),
            adapter: Box::new(ClosureAdapter::new(|_, stop| {
                assert!(!stop.requested());
                Ok(AdaptOutcome {
                    before: 0.5,
                    after: 0.9,
                    switched: true,
                })
            })),
            owner_model: state.path().join("models-owner/kws.toml"),
            stop: StopFlag::default(),
        };
        let (cmd_tx, cmd_rx) = crossbeam_channel::unbounded();
        let (rep_tx, rep_rx) = crossbeam_channel::unbounded();
        let reload: ReloadFn = Box::new(move |p: &Path| {
            seen.lock().unwrap().push(p.to_path_buf());
            Ok(())
        });
        let h = spawn_enroller(setup, hub.clone(), reload, cmd_rx, rep_tx).unwrap();
        let take = |id| EnrollCommand::Take {
            id,
            word: "go".into(),
            take: 1,
            length: Duration::from_secs(2),
        };
        cmd_tx.send(EnrollCommand::Begin).unwrap();
        // A take cancelled mid-way answers nothing and saves nothing.
        cmd_tx.send(take(1)).unwrap();
        until_subscribed(&hub, 1);
        cmd_tx.send(EnrollCommand::Cancel).unwrap();
        until_subscribed(&hub, 0);
        // A quiet take is refused with its reason.
        cmd_tx.send(take(2)).unwrap();
        until_subscribed(&hub, 1);
        speak(&hub, 0.001);
        match rep_rx.recv().unwrap() {
            EnrollReport::Take {
                id: 2,
                result: TakeResult::Refused { reason, .. },
            } => assert_eq!(reason, "too quiet"),
            other => panic!("{other:?}"),
        }
        // A clear one is kept, in the enroll layout.
        until_subscribed(&hub, 0);
        cmd_tx.send(take(3)).unwrap();
        until_subscribed(&hub, 1);
        speak(&hub, 0.4);
        assert_eq!(
            rep_rx.recv().unwrap(),
            EnrollReport::Take {
                id: 3,
                result: TakeResult::Kept
            }
        );
        let saved: Vec<_> = std::fs::read_dir(state.path().join("enroll/go"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(saved.len(), 1, "{saved:?}");
        assert!(saved[0].starts_with("owner_nohash_") && saved[0].ends_with("-1.wav"));
        // Adapting reports the outcome and has the listener load the new model.
        cmd_tx.send(EnrollCommand::Adapt).unwrap();
        assert_eq!(
            rep_rx.recv().unwrap(),
            EnrollReport::Adapted(Ok(AdaptOutcome {
                before: 0.5,
                after: 0.9,
                switched: true
            }))
        );
        assert_eq!(
            *reloaded.lock().unwrap(),
            vec![state.path().join("models-owner/kws.toml")]
        );
        cmd_tx.send(EnrollCommand::Shutdown).unwrap();
        h.join().unwrap();
    }
}
