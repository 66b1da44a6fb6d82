//! The recorder thread: the only writer of the recordings folder.
//!
//! It subscribes to the capture fan-out only while it records, so the microphone stays
//! with the capture thread and the keyword recognizer keeps listening throughout. Erasing
//! runs on this thread too, which orders it after any recording in flight.

use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{select, Receiver, RecvTimeoutError, Sender};

use super::capture::CaptureHub;
use super::library::{ClipWriter, Library};

/// What the recorder is asked to do.
#[derive(Clone, Debug, PartialEq)]
pub enum RecorderCommand {
    /// Record a clip of this length from the microphone.
    Record { length: Duration },
    /// Remove every clip.
    EraseAll,
    /// Stop; a recording in flight is discarded (its temp file removed).
    Shutdown,
}

/// What the recorder did.
#[derive(Clone, Debug, PartialEq)]
pub enum RecorderReport {
    /// The new clip's file name, or why there is none.
    Recorded(Result<String, String>),
    /// How many clips were erased, or why not.
    Erased(Result<usize, String>),
}

/// Starts the recorder. `stall` is how long it waits for audio before giving up on a
/// recording (the microphone is gone or the capture thread is retrying).
pub fn spawn_recorder(
    library: Library,
    hub: CaptureHub,
    stall: Duration,
    commands: Receiver<RecorderCommand>,
    reports: Sender<RecorderReport>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("recorder".into())
        .spawn(move || {
            for cmd in commands.iter() {
                let report = match cmd {
                    RecorderCommand::Record { length } => {
                        match record(&library, &hub, length, stall, &commands) {
                            Outcome::Done(r) => RecorderReport::Recorded(r),
                            Outcome::ShutDown => return,
                        }
                    }
                    RecorderCommand::EraseAll => {
                        let r = library.erase_all().map_err(|e| e.to_string());
                        match &r {
                            Ok(n) => log::info!("erased {n} recording(s)"),
                            Err(e) => log::error!("{e}"),
                        }
                        RecorderReport::Erased(r)
                    }
                    RecorderCommand::Shutdown => return,
                };
                if reports.send(report).is_err() {
                    return;
                }
            }
        })
}

enum Outcome {
    Done(Result<String, String>),
    ShutDown,
}

fn record(
    library: &Library,
    hub: &CaptureHub,
    length: Duration,
    stall: Duration,
    commands: &Receiver<RecorderCommand>,
) -> Outcome {
    // Name from the start time: that is when the person spoke.
    let started = chrono::Local::now();
    // 2 s of buffering: disk hiccups on an SD card must not lose audio.
    let sub = hub.subscribe("recorder", 100);
    let mut writer: Option<ClipWriter> = None;
    let mut target: u64 = 0;
    loop {
        let chunk = select! {
            recv(sub.receiver()) -> c => match c {
                Ok(c) => c,
                Err(_) => return Outcome::Done(Err("the capture thread stopped".into())),
            },
            recv(commands) -> cmd => match cmd {
                Ok(RecorderCommand::Shutdown) | Err(_) => {
                    log::warn!("shutting down mid-recording: the unfinished clip was discarded");
                    return Outcome::ShutDown;
                }
                Ok(other) => {
                    log::warn!("recorder busy recording; ignored {other:?}");
                    continue;
                }
            },
            default(stall) => {
                let e = RecvTimeoutError::Timeout;
                log::error!("no audio from the microphone for {stall:?} ({e}); recording abandoned");
                return Outcome::Done(Err(
                    "no audio from the microphone: check `audio.capture_device` and `chatterbox devices`".into(),
                ));
            }
        };
        let w = match writer.as_mut() {
            Some(w) => w,
            None => {
                target = (length.as_secs_f64() * f64::from(chunk.format.rate)).round() as u64;
                match library.begin_clip(chunk.format) {
                    Ok(w) => writer.insert(w),
                    Err(e) => {
                        log::error!("{e}");
                        return Outcome::Done(Err(e.to_string()));
                    }
                }
            }
        };
        let channels = usize::from(chunk.format.channels.max(1));
        let wanted = (target - w.frames()).min(chunk.frames() as u64) as usize;
        if let Err(e) = w.write(&chunk.samples[..wanted * channels]) {
            log::error!("{e}");
            return Outcome::Done(Err(e.to_string()));
        }
        if w.frames() >= target {
            break;
        }
    }
    drop(sub);
    let Some(w) = writer else {
        return Outcome::Done(Err("nothing was recorded".into()));
    };
    let name = library.name_for(started);
    match w.commit(&name) {
        Ok(path) => {
            log::info!("recorded {}", path.display());
            Outcome::Done(Ok(name))
        }
        Err(e) => {
            log::error!("{e}");
            Outcome::Done(Err(e.to_string()))
        }
    }
}
