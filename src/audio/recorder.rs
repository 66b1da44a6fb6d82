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
    let mut format_rate: u32 = 1;
    // The frame index the next chunk should start at, and how many frames never arrived.
    let mut next_frame: Option<u64> = None;
    let mut lost: u64 = 0;
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
                format_rate = chunk.format.rate.max(1);
                match library.begin_clip(chunk.format) {
                    Ok(w) => writer.insert(w),
                    Err(e) => {
                        log::error!("{e}");
                        return Outcome::Done(Err(e.to_string()));
                    }
                }
            }
        };
        if w.format() != chunk.format {
            log::error!("recording: the microphone's format changed mid-clip; clip abandoned");
            return Outcome::Done(Err(
                "the microphone's format changed while recording; try again".into(),
            ));
        }
        let channels = usize::from(chunk.format.channels.max(1));
        // Audio the recorder never received (its queue overflowed, or the microphone was
        // reopened) is kept as silence of the same length, so the clip keeps its timing and
        // length and the log says what was lost, instead of the gap closing up unnoticed.
        if let Some(expected) = next_frame {
            let missing = match chunk.first_frame.checked_sub(expected) {
                Some(n) => n,
                None => {
                    log::warn!("recording: the microphone restarted mid-clip; the gap cannot be measured and is left out");
                    0
                }
            };
            if missing > 0 {
                lost += missing;
                let silence = (target - w.frames()).min(missing) as usize;
                if let Err(e) = w.write(&vec![0; silence * channels]) {
                    log::error!("{e}");
                    return Outcome::Done(Err(e.to_string()));
                }
            }
        }
        next_frame = Some(chunk.first_frame + chunk.frames() as u64);
        let wanted = (target - w.frames()).min(chunk.frames() as u64) as usize;
        if let Err(e) = w.write(&chunk.samples[..wanted * channels]) {
            log::error!("{e}");
            return Outcome::Done(Err(e.to_string()));
        }
        if w.frames() >= target {
            break;
        }
        crate::supervise::test_panic_point("recorder");
    }
    if lost > 0 && sub.dropped() > 0 {
        log::warn!(
            "recording: {:.0} ms of audio did not reach the recorder in time (the SD card or CPU was too slow) and are silence in the clip",
            lost as f64 * 1000.0 / f64::from(format_rate)
        );
    } else if lost > 0 {
        log::warn!(
            "recording: {:.0} ms of audio were missing from the microphone and are silence in the clip",
            lost as f64 * 1000.0 / f64::from(format_rate)
        );
    }
    drop(sub);
    let Some(w) = writer else {
        return Outcome::Done(Err("nothing was recorded".into()));
    };
    let name = match library.name_for(started) {
        Ok(name) => name,
        Err(e) => {
            log::error!("{e}");
            return Outcome::Done(Err(e.to_string()));
        }
    };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::capture::{spawn_capture, CaptureConfig};
    use crate::audio::memory::MemoryBackend;
    use crate::audio::{AudioChunk, PcmFormat};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    const FMT: PcmFormat = PcmFormat {
        rate: 8000,
        channels: 2,
    };

    struct Rig {
        _dir: tempfile::TempDir,
        library: Library,
        backend: MemoryBackend,
        commands: Sender<RecorderCommand>,
        reports: Receiver<RecorderReport>,
        stop: Arc<AtomicBool>,
        threads: Vec<JoinHandle<()>>,
    }

    impl Rig {
        fn new(stall: Duration) -> Rig {
            let dir = tempfile::tempdir().unwrap();
            let library = Library::open(dir.path().join("rec")).unwrap();
            let backend = MemoryBackend::new();
            let hub = CaptureHub::new();
            let stop = Arc::new(AtomicBool::new(false));
            let (status_tx, _status_rx) = crossbeam_channel::unbounded();
            let capture = spawn_capture(
                Arc::new(backend.clone()),
                CaptureConfig {
                    device: "mem".into(),
                    format: FMT,
                    chunk_frames: 160,
                    pacing: crate::audio::capture::Pacing::Never,
                },
                hub.clone(),
                status_tx,
                stop.clone(),
            )
            .unwrap();
            let (commands, cmd_rx) = crossbeam_channel::unbounded();
            let (rep_tx, reports) = crossbeam_channel::unbounded();
            let recorder = spawn_recorder(library.clone(), hub, stall, cmd_rx, rep_tx).unwrap();
            Rig {
                _dir: dir,
                library,
                backend,
                commands,
                reports,
                stop,
                threads: vec![capture, recorder],
            }
        }

        fn report(&self) -> RecorderReport {
            self.reports.recv_timeout(Duration::from_secs(30)).unwrap()
        }

        /// Stops the threads; the folder lives as long as the returned guard.
        fn finish(self) -> tempfile::TempDir {
            let _ = self.commands.send(RecorderCommand::Shutdown);
            self.stop.store(true, Ordering::SeqCst);
            for t in self.threads {
                t.join().unwrap();
            }
            self._dir
        }
    }

    #[test]
    fn records_exactly_the_asked_length_from_the_fan_out() {
        let rig = Rig::new(Duration::from_secs(10));
        // 2 s of a ramp; the clip is 0.5 s = 4000 frames.
        let fed: Vec<i16> = (0..2 * 8000 * 2).map(|i| (i % 20000) as i16).collect();
        rig.backend.feed_capture(&fed);
        rig.commands
            .send(RecorderCommand::Record {
                length: Duration::from_millis(500),
            })
            .unwrap();
        let RecorderReport::Recorded(Ok(name)) = rig.report() else {
            panic!("recording failed");
        };
        let mut r = hound::WavReader::open(rig.library.dir().join(&name)).unwrap();
        assert_eq!(r.spec().sample_rate, 8000);
        let got: Vec<i16> = r.samples::<i16>().map(Result::unwrap).collect();
        assert_eq!(got.len(), 4000 * 2);
        // Contiguous audio from the stream: consecutive ramp values, no gaps.
        assert!(
            got.windows(2).all(|w| w[1] == w[0] + 1 || w[1] == 0),
            "gap in audio"
        );
        assert_eq!(rig.library.list().unwrap(), vec![name]);
        let _ = rig.finish();
    }

    #[test]
    fn a_silent_microphone_fails_the_recording_and_leaves_nothing() {
        let rig = Rig::new(Duration::from_millis(300));
        // Unplugged, and every reopen fails: no audio can arrive however slow the machine.
        rig.backend
            .fail_capture_opens(1000, crate::audio::memory::FailKind::NotFound);
        rig.backend.disconnect_capture();
        rig.commands
            .send(RecorderCommand::Record {
                length: Duration::from_secs(5),
            })
            .unwrap();
        match rig.report() {
            RecorderReport::Recorded(Err(why)) => assert!(why.contains("microphone"), "{why}"),
            other => panic!("expected a failure, got {other:?}"),
        }
        assert_eq!(std::fs::read_dir(rig.library.dir()).unwrap().count(), 0);
        let _ = rig.finish();
    }

    #[test]
    fn shutdown_mid_recording_discards_the_clip() {
        let rig = Rig::new(Duration::from_secs(10));
        rig.backend.feed_capture(&vec![7i16; 8000 * 2]); // 1 s, then silence forever
        rig.commands
            .send(RecorderCommand::Record {
                length: Duration::from_secs(600),
            })
            .unwrap();
        // Wait for the temp file to appear, then shut down.
        let dir = rig.library.dir().to_path_buf();
        for _ in 0..1000 {
            if std::fs::read_dir(&dir).unwrap().count() > 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "temp file while recording"
        );
        rig.commands.send(RecorderCommand::Shutdown).unwrap();
        let _keep = rig.finish();
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "nothing left");
    }

    #[test]
    fn chunks_that_never_arrived_become_silence_of_the_same_length() {
        let dir = tempfile::tempdir().unwrap();
        let library = Library::open(dir.path().join("rec")).unwrap();
        let hub = CaptureHub::new();
        let (commands, cmd_rx) = crossbeam_channel::unbounded();
        let (rep_tx, reports) = crossbeam_channel::unbounded();
        let recorder = spawn_recorder(
            library.clone(),
            hub.clone(),
            Duration::from_secs(10),
            cmd_rx,
            rep_tx,
        )
        .unwrap();
        commands
            .send(RecorderCommand::Record {
                length: Duration::from_millis(100), // 800 frames at 8 kHz
            })
            .unwrap();
        while hub.subscriber_count() == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        let chunk = |first: u64, value: i16| AudioChunk {
            format: FMT,
            first_frame: first,
            captured_at: std::time::Instant::now(),
            samples: vec![value; 160 * 2].into(),
        };
        // Frames 160..480 were lost on the way (two chunks).
        for (first, value) in [(0, 1), (480, 4), (640, 5), (800, 6)] {
            hub.publish(chunk(first, value));
        }
        let report = reports.recv_timeout(Duration::from_secs(10)).unwrap();
        let RecorderReport::Recorded(Ok(name)) = report else {
            panic!("{report:?}");
        };
        let mut r = hound::WavReader::open(library.dir().join(&name)).unwrap();
        let samples: Vec<i16> = r.samples::<i16>().map(|s| s.unwrap()).collect();
        let frames: Vec<i16> = samples.iter().step_by(2).copied().collect();
        assert_eq!(frames.len(), 800, "the asked length");
        assert!(frames[..160].iter().all(|&v| v == 1));
        assert!(
            frames[160..480].iter().all(|&v| v == 0),
            "the gap is silence"
        );
        assert!(
            frames[480..640].iter().all(|&v| v == 4),
            "later audio keeps its place"
        );
        assert!(frames[640..800].iter().all(|&v| v == 5));
        commands.send(RecorderCommand::Shutdown).unwrap();
        recorder.join().unwrap();
    }

    #[test]
    fn erase_reports_the_count() {
        let rig = Rig::new(Duration::from_secs(10));
        for name in ["a.wav", "b.wav"] {
            let mut w = rig.library.begin_clip(FMT).unwrap();
            w.write(&[1, 2]).unwrap();
            w.commit(name).unwrap();
        }
        rig.commands.send(RecorderCommand::EraseAll).unwrap();
        assert_eq!(rig.report(), RecorderReport::Erased(Ok(2)));
        assert!(rig.library.list().unwrap().is_empty());
        let _ = rig.finish();
    }
}
