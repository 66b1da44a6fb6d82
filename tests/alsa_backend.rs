//! The ALSA backend and device listing, through userspace plugins (no sound card needed).
mod common;

use chatterbox::audio::alsa_backend::AlsaBackend;
use chatterbox::audio::devices::{list_devices, probe, render_report, Direction};
use chatterbox::audio::{AudioBackend, AudioError, PcmFormat};
use common::alsa::{ramp_i16, AlsaSandbox};

const MONO16: PcmFormat = PcmFormat {
    rate: 16000,
    channels: 1,
};
const STEREO48: PcmFormat = PcmFormat {
    rate: 48000,
    channels: 2,
};

/// Reads exactly `frames` frames (the infile plugin never signals EOF, so bound by count).
fn read_frames(
    stream: &mut dyn chatterbox::audio::pcm::CaptureStream,
    frames: usize,
    chunk: usize,
) -> Vec<i16> {
    let ch = usize::from(stream.format().channels);
    let mut got = Vec::with_capacity(frames * ch);
    let mut buf = vec![0i16; chunk * ch];
    while got.len() < frames * ch {
        let want = (frames * ch - got.len()).min(buf.len());
        let n = stream.read(&mut buf[..want]).expect("capture read failed");
        got.extend_from_slice(&buf[..n * ch]);
    }
    got
}

#[test]
fn capture_returns_exactly_the_fed_samples() {
    let sb = AlsaSandbox::shared();
    for (name, format) in [("t_cap_mono16", MONO16), ("t_cap_stereo48", STEREO48)] {
        let data = ramp_i16(format.rate as usize * usize::from(format.channels) / 2);
        sb.add_mic(name, &data).unwrap();
        let mut s = AlsaBackend.open_capture(name, format).unwrap();
        assert_eq!(s.format(), format);
        let frames = data.len() / usize::from(format.channels);
        let got = read_frames(s.as_mut(), frames, 320);
        assert_eq!(got, data, "{name}: captured data differs from the fed file");
    }
}

#[test]
fn config_changes_are_seen_without_restarting() {
    // alsa-lib re-reads ~/.asoundrc when it changes: a PCM defined after another one was
    // opened must be found (the shared sandbox and the lead's end-to-end tests rely on it).
    let sb = AlsaSandbox::shared();
    sb.add_mic("t_reload_a", &ramp_i16(1600)).unwrap();
    drop(AlsaBackend.open_capture("t_reload_a", MONO16).unwrap());
    let data: Vec<i16> = ramp_i16(1600).iter().map(|s| s.wrapping_add(5)).collect();
    sb.add_mic("t_reload_b", &data).unwrap();
    let mut s = AlsaBackend.open_capture("t_reload_b", MONO16).unwrap();
    assert_eq!(read_frames(s.as_mut(), 1600, 160), data);
}

#[test]
fn missing_device_is_not_found_and_named() {
    let _sb = AlsaSandbox::shared();
    let err = AlsaBackend
        .open_capture("t_no_such_mic", MONO16)
        .err()
        .expect("opening a missing device must fail");
    assert!(matches!(err, AudioError::NotFound { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("'t_no_such_mic'"), "{msg}");
    assert!(msg.contains("chatterbox devices"), "{msg}");
    let err = AlsaBackend
        .open_playback("t_no_such_speaker", STEREO48)
        .err()
        .expect("opening a missing device must fail");
    assert!(matches!(err, AudioError::NotFound { .. }), "{err:?}");
}

#[test]
fn mic_locked_to_16k_refuses_48k_and_says_what_it_supports() {
    let sb = AlsaSandbox::shared();
    let data = ramp_i16(3200);
    sb.add_mic("t_lock_raw", &data).unwrap();
    sb.add_rate_locked("t_lock16", "t_lock_raw", 16000).unwrap();
    let err = AlsaBackend
        .open_capture("t_lock16", STEREO48)
        .err()
        .expect("48 kHz must be refused");
    match &err {
        AudioError::Unsupported {
            device,
            requested,
            supported,
        } => {
            assert_eq!(device, "t_lock16");
            assert!(requested.contains("48000"), "{requested}");
            assert!(supported.contains("16000 Hz"), "{supported}");
            assert!(!supported.contains("48000"), "{supported}");
        }
        other => panic!("expected Unsupported, got {other:?}"),
    }
    // The rate it does support works, and the data passes through the plug unchanged.
    let mut s = AlsaBackend.open_capture("t_lock16", MONO16).unwrap();
    assert_eq!(read_frames(s.as_mut(), 3200, 320), data);
}

#[test]
fn playback_writes_the_samples_to_the_device() {
    let sb = AlsaSandbox::shared();
    let out = sb.add_speaker("t_play_raw").unwrap();
    let data = ramp_i16(48000); // 0.5 s of stereo 48 kHz
    {
        let mut s = AlsaBackend.open_playback("t_play_raw", STEREO48).unwrap();
        assert_eq!(s.format(), STEREO48);
        for slice in data.chunks(960 * 2) {
            s.write(slice).unwrap();
        }
        s.drain().unwrap();
        // A second clip on the same open stream (the player keeps it open).
        s.write(&data[..1920]).unwrap();
        s.drain().unwrap();
    }
    let got = sb.read_raw(&out).unwrap();
    let mut expected = data.clone();
    expected.extend_from_slice(&data[..1920]);
    assert_eq!(got.len(), expected.len());
    assert_eq!(got, expected);
}

#[test]
fn playback_falls_back_to_a_rate_the_speaker_supports() {
    let sb = AlsaSandbox::shared();
    sb.add_speaker("t_spk_lock_raw").unwrap();
    sb.add_rate_locked("t_spk_lock16", "t_spk_lock_raw", 16000)
        .unwrap();
    let s = AlsaBackend.open_playback("t_spk_lock16", STEREO48).unwrap();
    assert_eq!(s.format().rate, 16000);
    assert_eq!(
        s.format().channels,
        2,
        "same channel count is kept when possible"
    );
}

#[test]
fn probe_reports_verified_modes() {
    let sb = AlsaSandbox::shared();
    sb.add_mic("t_probe_raw", &[]).unwrap();
    sb.add_rate_locked("t_probe16", "t_probe_raw", 16000)
        .unwrap();
    let caps = probe("t_probe16", Direction::Capture).unwrap();
    assert!(!caps.modes.is_empty());
    assert!(caps.modes.iter().all(|m| m.rate == 16000), "{caps:?}");
    assert!(caps.modes.contains(&MONO16));
    let caps = probe("cb_null", Direction::Playback).unwrap();
    assert!(caps.modes.contains(&STEREO48), "{caps:?}");
    assert!(caps.formats.iter().any(|f| f == "S16_LE"));
    assert!(matches!(
        probe("t_probe_missing", Direction::Capture),
        Err(AudioError::NotFound { .. })
    ));
}

#[test]
fn device_list_shows_the_sandbox_pcms_with_roles() {
    let sb = AlsaSandbox::shared();
    sb.write_mic(&ramp_i16(100)).unwrap();
    let devices = list_devices();
    let find = |n: &str| devices.iter().find(|d| d.name == n);
    let mic = find("cb_mic").expect("cb_mic listed");
    assert!(mic.can_capture());
    let null = find("cb_null").expect("cb_null listed");
    assert!(null.can_play() && null.can_capture());
    let report = render_report(&devices);
    assert!(report.contains("cb_speaker"), "{report}");
    assert!(report.contains("Can serve as speaker:"), "{report}");
    println!("{report}");
}

#[test]
fn a_child_process_uses_its_own_sandbox_even_beside_the_shared_one() {
    // What the end-to-end tests do: a fresh sandbox per child, while this test process has
    // the shared sandbox (and its ALSA_CONFIG_PATH) active. Uses arecord from alsa-utils.
    let shared = AlsaSandbox::shared();
    shared.write_mic(&vec![7i16; 800]).unwrap();
    let child_box = AlsaSandbox::new().unwrap();
    let data = ramp_i16(800);
    child_box.write_mic(&data).unwrap();
    let out = child_box.home().join("arecord.raw");
    let mut cmd = std::process::Command::new("arecord");
    cmd.args([
        "-q", "-D", "cb_mic", "-f", "S16_LE", "-r", "16000", "-c", "1",
    ])
    .args(["-s", "800", "-t", "raw"])
    .arg(&out);
    let status = child_box
        .configure(&mut cmd)
        .status()
        .expect("arecord (apt-get install alsa-utils) is needed for this test");
    assert!(status.success());
    assert_eq!(child_box.read_raw(&out).unwrap(), data);
}
