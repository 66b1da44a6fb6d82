//! The player thread: through ALSA's file plugin (content checks) and the memory backend
//! (real-time stop mid-clip, device loss).
mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chatterbox::audio::alsa_backend::AlsaBackend;
use chatterbox::audio::memory::{FailKind, MemoryBackend};
use chatterbox::audio::pcm::DeviceStatus;
use chatterbox::audio::player::{
    spawn_player, PlayOutcome, PlayerCommand, PlayerConfig, PlayerReport,
};
use chatterbox::audio::{AudioBackend, PcmFormat};
use common::alsa::AlsaSandbox;
use crossbeam_channel::{Receiver, Sender};

const GUARD: Duration = Duration::from_secs(20);
const STEREO48: PcmFormat = PcmFormat {
    rate: 48000,
    channels: 2,
};

/// Writes a 32-bit float mono WAV holding a sine.
fn sine_wav(path: &Path, rate: u32, freq: f32, seconds: f32, amp: f32) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    let n = (rate as f32 * seconds) as usize;
    for i in 0..n {
        let v = amp * (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin();
        w.write_sample(v).unwrap();
    }
    w.finalize().unwrap();
}

struct Player {
    commands: Sender<PlayerCommand>,
    reports: Receiver<PlayerReport>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Player {
    /// Spawns a player; `queued` commands are in the channel before the thread starts, so
    /// "Play then Stop" is seen as back-to-back, independent of timing.
    fn start(backend: Arc<dyn AudioBackend>, device: &str, queued: Vec<PlayerCommand>) -> Self {
        Self::start_with(backend, device, queued, None)
    }

    fn start_with(
        backend: Arc<dyn AudioBackend>,
        device: &str,
        queued: Vec<PlayerCommand>,
        idle_close: Option<Duration>,
    ) -> Self {
        let (ctx, crx) = crossbeam_channel::unbounded();
        let (rtx, rrx) = crossbeam_channel::unbounded();
        for c in queued {
            ctx.send(c).unwrap();
        }
        let cfg = PlayerConfig {
            device: device.into(),
            preferred: STEREO48,
            max_clip_seconds: 30.0,
            idle_close,
        };
        let handle = spawn_player(backend, cfg, crx, rtx).unwrap();
        Self {
            commands: ctx,
            reports: rrx,
            handle: Some(handle),
        }
    }

    fn play(&self, id: u64, path: &Path) {
        self.commands
            .send(PlayerCommand::Play {
                id,
                path: path.to_path_buf(),
            })
            .unwrap();
    }

    /// Next report that is not a device status.
    fn next_clip_report(&self) -> PlayerReport {
        loop {
            match self.reports.recv_timeout(GUARD).expect("player went quiet") {
                PlayerReport::Device(_) => continue,
                r => return r,
            }
        }
    }

    fn expect_finished(&self, id: u64) -> PlayOutcome {
        loop {
            match self.next_clip_report() {
                PlayerReport::Finished { id: got, outcome } if got == id => return outcome,
                PlayerReport::Started { .. } => continue,
                other => panic!("expected Finished for {id}, got {other:?}"),
            }
        }
    }

    /// Shuts down, joins, and returns every report not consumed yet.
    fn shutdown(mut self) -> Vec<PlayerReport> {
        let _ = self.commands.send(PlayerCommand::Shutdown);
        if let Some(h) = self.handle.take() {
            h.join().expect("player thread panicked");
        }
        self.reports.try_iter().collect()
    }
}

fn zero_crossing_freq(samples: &[f32], rate: u32) -> f32 {
    let crossings = samples
        .windows(2)
        .filter(|w| (w[0] < 0.0) != (w[1] < 0.0))
        .count();
    crossings as f32 / 2.0 / (samples.len() as f32 / rate as f32)
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn plays_a_16k_mono_float_wav_on_a_48k_stereo_device() {
    let sb = AlsaSandbox::shared();
    let out = sb.add_speaker("t_player_spk").unwrap();
    let dir = temp_dir();
    let wav = dir.path().join("a440.wav");
    sine_wav(&wav, 16000, 440.0, 0.5, 0.5);
    let p = Player::start(Arc::new(AlsaBackend), "t_player_spk", vec![]);
    p.play(7, &wav);
    assert_eq!(p.next_clip_report(), PlayerReport::Started { id: 7 });
    assert_eq!(p.expect_finished(7), PlayOutcome::Completed);
    p.shutdown();

    let got = sb.read_raw(&out).unwrap();
    assert_eq!(got.len(), 24000 * 2, "0.5 s at 48 kHz stereo");
    let left: Vec<f32> = got
        .iter()
        .step_by(2)
        .map(|&s| f32::from(s) / 32768.0)
        .collect();
    let right: Vec<f32> = got
        .iter()
        .skip(1)
        .step_by(2)
        .map(|&s| f32::from(s) / 32768.0)
        .collect();
    assert_eq!(left, right);
    let f = zero_crossing_freq(&left[2400..21600], 48000);
    assert!((f - 440.0).abs() < 5.0, "played at {f} Hz");
    let peak = left.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!((peak - 0.5).abs() < 0.03, "level {peak}");
}

#[test]
fn stop_right_after_play_cuts_the_clip_within_a_slice() {
    let sb = AlsaSandbox::shared();
    let out = sb.add_speaker("t_player_stop").unwrap();
    let dir = temp_dir();
    let wav = dir.path().join("long.wav");
    sine_wav(&wav, 48000, 300.0, 5.0, 0.3);
    let p = Player::start(
        Arc::new(AlsaBackend),
        "t_player_stop",
        vec![
            PlayerCommand::Play {
                id: 1,
                path: wav.clone(),
            },
            PlayerCommand::Stop,
        ],
    );
    assert_eq!(p.next_clip_report(), PlayerReport::Started { id: 1 });
    assert_eq!(p.expect_finished(1), PlayOutcome::Stopped);
    p.shutdown();
    let frames = sb.read_raw(&out).unwrap().len() / 2;
    // One 20 ms slice = 960 frames was handed over before the Stop was seen.
    assert!(
        frames > 0 && frames <= 960,
        "{frames} frames reached the device"
    );
}

#[test]
fn play_while_playing_replaces_the_clip() {
    let sb = AlsaSandbox::shared();
    let out = sb.add_speaker("t_player_replace").unwrap();
    let dir = temp_dir();
    let long = dir.path().join("long.wav");
    sine_wav(&long, 48000, 300.0, 5.0, 0.3);
    let short = dir.path().join("short.wav");
    sine_wav(&short, 48000, 1000.0, 0.25, 0.3);
    let p = Player::start(
        Arc::new(AlsaBackend),
        "t_player_replace",
        vec![
            PlayerCommand::Play {
                id: 1,
                path: long.clone(),
            },
            PlayerCommand::Play {
                id: 2,
                path: short.clone(),
            },
        ],
    );
    assert_eq!(p.next_clip_report(), PlayerReport::Started { id: 1 });
    assert_eq!(
        p.next_clip_report(),
        PlayerReport::Finished {
            id: 1,
            outcome: PlayOutcome::Stopped
        }
    );
    assert_eq!(p.next_clip_report(), PlayerReport::Started { id: 2 });
    assert_eq!(p.expect_finished(2), PlayOutcome::Completed);
    p.shutdown();
    let frames = sb.read_raw(&out).unwrap().len() / 2;
    assert!(
        (12000..=12000 + 960).contains(&frames),
        "the whole short clip after at most one slice of the long one: {frames}"
    );
}

#[test]
fn missing_speaker_fails_the_clip_then_recovers_on_the_next_play() {
    let sb = AlsaSandbox::shared();
    let dir = temp_dir();
    let wav = dir.path().join("beep.wav");
    sine_wav(&wav, 16000, 440.0, 0.1, 0.3);
    let p = Player::start(Arc::new(AlsaBackend), "t_player_late", vec![]);
    p.play(1, &wav);
    match p.reports.recv_timeout(GUARD).unwrap() {
        PlayerReport::Device(DeviceStatus::Down { device, error }) => {
            assert_eq!(device, "t_player_late");
            assert!(error.contains("not found"), "{error}");
        }
        other => panic!("expected Device(Down), got {other:?}"),
    }
    match p.next_clip_report() {
        PlayerReport::Finished {
            id: 1,
            outcome: PlayOutcome::Failed(msg),
        } => assert!(msg.contains("'t_player_late'"), "{msg}"),
        other => panic!("expected Failed, got {other:?}"),
    }
    // The speaker appears (e.g. the HAT driver finished loading); the next Play uses it.
    let out = sb.add_speaker("t_player_late").unwrap();
    p.play(2, &wav);
    assert!(matches!(
        p.reports.recv_timeout(GUARD).unwrap(),
        PlayerReport::Device(DeviceStatus::Up { .. })
    ));
    assert_eq!(p.expect_finished(2), PlayOutcome::Completed);
    p.shutdown();
    assert_eq!(sb.read_raw(&out).unwrap().len(), 4800 * 2);
}

#[test]
fn unreadable_clip_fails_with_its_name_and_the_player_carries_on() {
    let mem = MemoryBackend::new();
    let dir = temp_dir();
    let bad = dir.path().join("broken clip.wav");
    std::fs::write(&bad, b"RIFF....WAVEjunk").unwrap();
    let good = dir.path().join("good.wav");
    sine_wav(&good, 48000, 440.0, 0.1, 0.3);
    let p = Player::start(Arc::new(mem.clone()), "mem", vec![]);
    p.play(1, &bad);
    match p.expect_finished(1) {
        PlayOutcome::Failed(msg) => assert!(msg.contains("broken clip.wav"), "{msg}"),
        other => panic!("expected Failed, got {other:?}"),
    }
    p.play(2, &good);
    assert_eq!(p.expect_finished(2), PlayOutcome::Completed);
    p.shutdown();
    assert_eq!(mem.played_len(), 4800 * 2);
}

#[test]
fn stop_mid_clip_on_a_real_time_device() {
    let mem = MemoryBackend::new();
    mem.set_playback_realtime(true);
    let dir = temp_dir();
    let wav = dir.path().join("ten_seconds.wav");
    sine_wav(&wav, 16000, 440.0, 10.0, 0.3);
    let p = Player::start(Arc::new(mem.clone()), "mem", vec![]);
    p.play(1, &wav);
    assert_eq!(p.next_clip_report(), PlayerReport::Started { id: 1 });
    p.commands.send(PlayerCommand::Stop).unwrap();
    assert_eq!(p.expect_finished(1), PlayOutcome::Stopped);
    let played = mem.played_len() / 2;
    assert!(played < 480_000, "stopped early: {played} of 480000 frames");
    assert_eq!(mem.stops(), 1, "queued audio was dropped");
    p.shutdown();
}

#[test]
fn device_lost_mid_clip_fails_it_and_the_next_play_reopens() {
    let mem = MemoryBackend::new();
    mem.set_playback_realtime(true);
    let dir = temp_dir();
    let wav = dir.path().join("clip.wav");
    sine_wav(&wav, 48000, 440.0, 10.0, 0.3);
    let short = dir.path().join("short.wav");
    sine_wav(&short, 48000, 440.0, 0.05, 0.3);
    let p = Player::start(Arc::new(mem.clone()), "mem", vec![]);
    p.play(1, &wav);
    assert!(matches!(
        p.reports.recv_timeout(GUARD).unwrap(),
        PlayerReport::Device(DeviceStatus::Up { .. })
    ));
    assert_eq!(p.next_clip_report(), PlayerReport::Started { id: 1 });
    mem.disconnect_playback();
    assert!(matches!(
        p.reports.recv_timeout(GUARD).unwrap(),
        PlayerReport::Device(DeviceStatus::Down { .. })
    ));
    assert!(matches!(p.expect_finished(1), PlayOutcome::Failed(_)));
    p.play(2, &short);
    assert!(matches!(
        p.reports.recv_timeout(GUARD).unwrap(),
        PlayerReport::Device(DeviceStatus::Up { .. })
    ));
    assert_eq!(p.expect_finished(2), PlayOutcome::Completed);
    assert_eq!(mem.playback_opens(), 2);
    p.shutdown();
}

#[test]
fn busy_speaker_fails_the_clip_and_keeps_the_device_open_between_clips() {
    let mem = MemoryBackend::new();
    // The open at start-up and the retry at the first Play both find it busy.
    mem.fail_playback_opens(2, FailKind::Busy);
    let dir = temp_dir();
    let wav = dir.path().join("clip.wav");
    sine_wav(&wav, 48000, 440.0, 0.05, 0.3);
    let p = Player::start(Arc::new(mem.clone()), "mem", vec![]);
    // Reported at start-up, before any clip is asked for.
    match p.reports.recv_timeout(GUARD).unwrap() {
        PlayerReport::Device(DeviceStatus::Down { error, .. }) => {
            assert!(error.contains("busy"), "{error}")
        }
        other => panic!("expected Device(Down) at start-up, got {other:?}"),
    }
    p.play(1, &wav);
    match p.reports.recv_timeout(GUARD).unwrap() {
        PlayerReport::Finished {
            id: 1,
            outcome: PlayOutcome::Failed(msg),
        } => assert!(msg.contains("busy"), "{msg}"),
        other => panic!("expected Failed (and no second Down), got {other:?}"),
    }
    p.play(2, &wav);
    assert!(matches!(
        p.reports.recv_timeout(GUARD).unwrap(),
        PlayerReport::Device(DeviceStatus::Up { .. })
    ));
    assert_eq!(p.expect_finished(2), PlayOutcome::Completed);
    for id in 3..6 {
        p.play(id, &wav);
        assert_eq!(p.expect_finished(id), PlayOutcome::Completed);
    }
    assert_eq!(mem.playback_opens(), 1, "one open serves every clip");
    p.shutdown();
}

#[test]
fn every_play_gets_exactly_one_finished_and_gain_applies() {
    let mem = MemoryBackend::new();
    let dir = temp_dir();
    let wav = dir.path().join("clip.wav");
    sine_wav(&wav, 48000, 440.0, 0.2, 0.5);
    let missing = PathBuf::from("/nonexistent/clip.wav");
    let mut queued = vec![PlayerCommand::SetGain(0.5)];
    for id in 0..6u64 {
        let path = if id == 3 {
            missing.clone()
        } else {
            wav.clone()
        };
        queued.push(PlayerCommand::Play { id, path });
    }
    queued.push(PlayerCommand::Stop);
    let p = Player::start(Arc::new(mem.clone()), "mem", queued);
    let mut finished = Vec::new();
    while finished.len() < 6 {
        if let PlayerReport::Finished { id, .. } = p.next_clip_report() {
            finished.push(id);
        }
    }
    let rest = p.shutdown();
    assert_eq!(finished, vec![0, 1, 2, 3, 4, 5]);
    assert!(
        !rest
            .iter()
            .any(|r| matches!(r, PlayerReport::Finished { .. })),
        "{rest:?}"
    );
    let peak = mem
        .played()
        .iter()
        .map(|s| s.unsigned_abs())
        .max()
        .unwrap_or(0);
    assert!(
        (8000..=8400).contains(&peak),
        "gain 0.5 on a 0.5 sine: peak {peak}"
    );
}

#[test]
fn clips_are_converted_to_whatever_the_device_can_do() {
    let mem = MemoryBackend::new();
    mem.set_playback_format(PcmFormat {
        rate: 16000,
        channels: 1,
    });
    let dir = temp_dir();
    let wav = dir.path().join("clip.wav");
    sine_wav(&wav, 44100, 440.0, 0.5, 0.5);
    let p = Player::start(Arc::new(mem.clone()), "mem", vec![]);
    p.play(1, &wav);
    match p.reports.recv_timeout(GUARD).unwrap() {
        PlayerReport::Device(DeviceStatus::Up { format, .. }) => {
            assert_eq!(format.rate, 16000)
        }
        other => panic!("expected Device(Up), got {other:?}"),
    }
    assert_eq!(p.expect_finished(1), PlayOutcome::Completed);
    p.shutdown();
    let played: Vec<f32> = mem
        .played()
        .iter()
        .map(|&s| f32::from(s) / 32768.0)
        .collect();
    assert_eq!(played.len(), 8000, "0.5 s at 16 kHz mono");
    let f = zero_crossing_freq(&played[800..7200], 16000);
    assert!((f - 440.0).abs() < 5.0, "{f} Hz");
}

#[test]
fn with_an_idle_close_the_speaker_closes_between_clips_and_reopens_for_the_next() {
    let dir = temp_dir();
    let wav = dir.path().join("clip.wav");
    sine_wav(&wav, 48000, 440.0, 0.05, 0.3);
    for idle_close in [Some(Duration::from_millis(200)), None] {
        let mem = MemoryBackend::new();
        let p = Player::start_with(Arc::new(mem.clone()), "mem", vec![], idle_close);
        p.play(1, &wav);
        assert_eq!(p.expect_finished(1), PlayOutcome::Completed);
        let opens_after_first = mem.playback_opens();
        // Idle for well over the idle close.
        std::thread::sleep(Duration::from_millis(800));
        p.play(2, &wav);
        assert_eq!(p.expect_finished(2), PlayOutcome::Completed);
        let reopened = mem.playback_opens() - opens_after_first;
        assert_eq!(
            reopened,
            usize::from(idle_close.is_some()),
            "idle close {idle_close:?}: opens for the second clip"
        );
        p.shutdown();
    }
}
