//! Play command → first frame handed to the device, through the ALSA file plugin and the
//! memory backend; plus what reopening the device per clip would cost.
//!
//! Run: `cargo bench --bench player_latency` (prints a table; no sound card needed).
#[path = "../tests/common/alsa.rs"]
mod alsa_sandbox;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chatterbox::audio::alsa_backend::AlsaBackend;
use chatterbox::audio::memory::MemoryBackend;
use chatterbox::audio::pcm::{CaptureStream, PlaybackStream};
use chatterbox::audio::player::{spawn_player, PlayerCommand, PlayerConfig, PlayerReport};
use chatterbox::audio::{AudioBackend, AudioError, PcmFormat};

const STEREO48: PcmFormat = PcmFormat {
    rate: 48000,
    channels: 2,
};
const RUNS: usize = 30;

/// Wraps a backend and records when the first `write` of a clip begins.
struct Probe<B> {
    inner: B,
    first_write: Arc<Mutex<Option<Instant>>>,
}

struct ProbeStream {
    inner: Box<dyn PlaybackStream>,
    first_write: Arc<Mutex<Option<Instant>>>,
}

impl PlaybackStream for ProbeStream {
    fn format(&self) -> PcmFormat {
        self.inner.format()
    }
    fn write(&mut self, samples: &[i16]) -> Result<(), AudioError> {
        {
            let mut slot = self.first_write.lock().unwrap();
            if slot.is_none() {
                *slot = Some(Instant::now());
            }
        }
        self.inner.write(samples)
    }
    fn drain(&mut self) -> Result<(), AudioError> {
        self.inner.drain()
    }
    fn stop(&mut self) -> Result<(), AudioError> {
        self.inner.stop()
    }
}

impl<B: AudioBackend> AudioBackend for Probe<B> {
    fn open_capture(
        &self,
        device: &str,
        format: PcmFormat,
    ) -> Result<Box<dyn CaptureStream>, AudioError> {
        self.inner.open_capture(device, format)
    }
    fn open_playback(
        &self,
        device: &str,
        preferred: PcmFormat,
    ) -> Result<Box<dyn PlaybackStream>, AudioError> {
        Ok(Box::new(ProbeStream {
            inner: self.inner.open_playback(device, preferred)?,
            first_write: self.first_write.clone(),
        }))
    }
}

fn write_wav(path: &Path, rate: u32, channels: u16, float: bool, seconds: f32) {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: if float { 32 } else { 16 },
        sample_format: if float {
            hound::SampleFormat::Float
        } else {
            hound::SampleFormat::Int
        },
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..(rate as f32 * seconds) as usize {
        let v = 0.3 * (2.0 * std::f32::consts::PI * 440.0 * i as f32 / rate as f32).sin();
        for _ in 0..channels {
            if float {
                w.write_sample(v).unwrap();
            } else {
                w.write_sample((v * 32767.0) as i16).unwrap();
            }
        }
    }
    w.finalize().unwrap();
}

fn stats(label: &str, mut v: Vec<Duration>) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{label:58} min {:6.2}  median {:6.2}  p90 {:6.2}  max {:6.2}  (ms, n={})",
        ms(v[0]),
        ms(v[v.len() / 2]),
        ms(v[v.len() * 9 / 10]),
        ms(v[v.len() - 1]),
        v.len()
    );
}

fn measure<B: AudioBackend + 'static>(label: &str, backend: B, device: &str, clip: &Path) {
    let first_write = Arc::new(Mutex::new(None));
    let probe = Probe {
        inner: backend,
        first_write: first_write.clone(),
    };
    let (ctx, crx) = crossbeam_channel::unbounded();
    let (rtx, rrx) = crossbeam_channel::unbounded();
    let cfg = PlayerConfig {
        device: device.into(),
        preferred: STEREO48,
        max_clip_seconds: 30.0,
        idle_close: None,
    };
    let handle = spawn_player(Arc::new(probe), cfg, crx, rtx).unwrap();
    let mut samples = Vec::new();
    for run in 0..=RUNS {
        *first_write.lock().unwrap() = None;
        let t0 = Instant::now();
        ctx.send(PlayerCommand::Play {
            id: run as u64,
            path: clip.to_path_buf(),
        })
        .unwrap();
        loop {
            match rrx.recv_timeout(Duration::from_secs(30)).unwrap() {
                PlayerReport::Finished { outcome, .. } => {
                    assert_eq!(
                        outcome,
                        chatterbox::audio::player::PlayOutcome::Completed,
                        "{label}"
                    );
                    break;
                }
                _ => continue,
            }
        }
        let t1 = first_write.lock().unwrap().expect("no write");
        // Run 0 is the first play after the thread started (cold caches); report it apart.
        if run == 0 {
            println!(
                "{label:58} first play after spawn: {:.2} ms",
                (t1 - t0).as_secs_f64() * 1000.0
            );
        } else {
            samples.push(t1 - t0);
        }
    }
    ctx.send(PlayerCommand::Shutdown).unwrap();
    handle.join().unwrap();
    stats(label, samples);
}

fn main() {
    let sb = alsa_sandbox::AlsaSandbox::shared();
    sb.add_speaker("bench_spk").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let native = dir.path().join("native_48k_stereo_s16_5s.wav");
    write_wav(&native, 48000, 2, false, 5.0);
    let resampled = dir.path().join("16k_mono_float_5s.wav");
    write_wav(&resampled, 16000, 1, true, 5.0);
    let cd = dir.path().join("44k1_stereo_s16_5s.wav");
    write_wav(&cd, 44100, 2, false, 5.0);

    println!("Play command -> first frame handed to the device (player thread, device kept open)");
    for (name, clip) in [
        ("48 kHz stereo S16, 5 s (no resampling)", &native),
        ("16 kHz mono float, 5 s (resample x3)", &resampled),
        ("44.1 kHz stereo S16, 5 s (resample 147:160)", &cd),
    ] {
        measure(
            &format!("memory backend, {name}"),
            MemoryBackend::new(),
            "mem",
            clip,
        );
        measure(
            &format!("ALSA file plugin, {name}"),
            AlsaBackend,
            "bench_spk",
            clip,
        );
    }

    println!("\nWhat reopening per clip would add (open + hw params + close):");
    let mut opens = Vec::new();
    for _ in 0..RUNS {
        let t0 = Instant::now();
        let s = AlsaBackend.open_playback("bench_spk", STEREO48).unwrap();
        opens.push(t0.elapsed());
        drop(s);
    }
    stats("ALSA file plugin open_playback", opens);
}
