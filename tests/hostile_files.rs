//! Hostile files in the recordings folder, through a whole `chatterbox sim` session:
//! truncated, empty, not audio, absurd headers, odd but valid formats, a compressed
//! format, a symlink out of the folder, a directory and a FIFO named `*.wav`, a name that
//! is not UTF-8. The session steps through every clip by voice ("right" = next) and must
//! play the good ones, refuse the bad ones with a warning naming the file, never follow
//! the link, never hang on the FIFO, and never panic.

mod common;

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::alsa::AlsaSandbox;

const RATE: u32 = 16_000;

/// A WAV file's bytes, written by hand so headers can lie.
fn wav_bytes(
    format_tag: u16,
    channels: u16,
    rate: u32,
    bits: u16,
    data: &[u8],
    data_len: u32,
) -> Vec<u8> {
    let block = channels * bits.div_ceil(8);
    let mut v = Vec::new();
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&format_tag.to_le_bytes());
    v.extend_from_slice(&channels.to_le_bytes());
    v.extend_from_slice(&rate.to_le_bytes());
    v.extend_from_slice(&(rate * u32::from(block)).to_le_bytes());
    v.extend_from_slice(&block.to_le_bytes());
    v.extend_from_slice(&bits.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&data_len.to_le_bytes());
    v.extend_from_slice(data);
    v
}

/// A ramp in `base..base + 3000`: distinct bases give patterns that cannot be mistaken
/// for each other.
fn pattern(base: i32, n: usize) -> Vec<i16> {
    (0..n)
        .map(|i| ((i as i32 * 97) % 3000 + base) as i16)
        .collect()
}

fn pcm16(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

fn write_valid(path: &Path, spec: hound::WavSpec, frames: usize) {
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..frames * usize::from(spec.channels) {
        let x = ((i as f32) * 0.05).sin() * 0.3;
        match (spec.sample_format, spec.bits_per_sample) {
            (hound::SampleFormat::Float, _) => w.write_sample(x).unwrap(),
            (_, 8) => w.write_sample((x * 127.0) as i8).unwrap(),
            (_, 16) => w.write_sample((x * 32767.0) as i16).unwrap(),
            (_, bits) => w
                .write_sample((x * ((1i64 << (bits - 1)) - 1) as f32) as i32)
                .unwrap(),
        }
    }
    w.finalize().unwrap();
}

struct Folder {
    sb: AlsaSandbox,
    rec: PathBuf,
    good: Vec<i16>,
    secret: Vec<i16>,
}

fn hostile_folder() -> Folder {
    let sb = AlsaSandbox::new().unwrap();
    let rec = sb.home().join("rec");
    std::fs::create_dir(&rec).unwrap();
    let f = |name: &str| rec.join(name);
    let good = pattern(-10_000, RATE as usize / 2);
    let secret = pattern(15_000, RATE as usize / 2);
    // Truncated: the header promises 1 s, 100 bytes follow.
    std::fs::write(
        f("a_truncated.wav"),
        wav_bytes(1, 1, RATE, 16, &[1; 100], RATE * 2),
    )
    .unwrap();
    std::fs::write(f("b_empty.wav"), b"").unwrap();
    std::fs::write(f("c_text.wav"), b"this is a shopping list, not audio\n").unwrap();
    // The data chunk claims 4 GB.
    std::fs::write(
        f("d_huge_data.wav"),
        wav_bytes(1, 2, RATE, 16, &[0; 64], 0xFFFF_FFF0),
    )
    .unwrap();
    // A fmt chunk that claims 2 GB.
    let mut huge_fmt = wav_bytes(1, 1, RATE, 16, &[0; 64], 64);
    huge_fmt[16..20].copy_from_slice(&0x7FFF_FFF0u32.to_le_bytes());
    std::fs::write(f("e_huge_fmt.wav"), huge_fmt).unwrap();
    // Absurd but well-formed numbers.
    std::fs::write(f("f_zero_rate.wav"), wav_bytes(1, 1, 0, 16, &[0; 64], 64)).unwrap();
    std::fs::write(
        f("g_zero_channels.wav"),
        wav_bytes(1, 0, RATE, 16, &[0; 64], 64),
    )
    .unwrap();
    std::fs::write(f("h_12_bit.wav"), wav_bytes(1, 1, RATE, 12, &[0; 64], 64)).unwrap();
    // 24-bit stereo whose channel count was damaged to 1: 6 bytes a frame for one 24-bit
    // channel (hound accepts it; the sample reader once indexed out of range on it).
    let mut block_lies = wav_bytes(1, 1, RATE, 24, &[7; 6 * 1000], 6 * 1000);
    block_lies[28..32].copy_from_slice(&(RATE * 6).to_le_bytes());
    block_lies[32..34].copy_from_slice(&6u16.to_le_bytes());
    std::fs::write(f("h2_block_align_lies.wav"), block_lies).unwrap();
    // IMA ADPCM (format tag 0x11): compressed, not supported.
    std::fs::write(f("i_adpcm.wav"), wav_bytes(0x11, 1, RATE, 4, &[0; 64], 64)).unwrap();
    // Odd but valid: these play.
    for (name, channels, rate, bits, fmt) in [
        ("j_8bit_8k.wav", 1, 8000, 8, hound::SampleFormat::Int),
        ("k_24bit_6ch.wav", 6, 44_100, 24, hound::SampleFormat::Int),
        (
            "l_float_stereo.wav",
            2,
            22_050,
            32,
            hound::SampleFormat::Float,
        ),
    ] {
        write_valid(
            &f(name),
            hound::WavSpec {
                channels,
                sample_rate: rate,
                bits_per_sample: bits,
                sample_format: fmt,
            },
            rate as usize / 4,
        );
    }
    // Things that are not regular files.
    let outside = sb.home().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(
        outside.join("secret.wav"),
        wav_bytes(1, 1, RATE, 16, &pcm16(&secret), (secret.len() * 2) as u32),
    )
    .unwrap();
    std::os::unix::fs::symlink(outside.join("secret.wav"), f("m_link_out.wav")).unwrap();
    std::fs::create_dir(f("n_folder.wav")).unwrap();
    let fifo = std::ffi::CString::new(f("o_fifo.wav").as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid path; mkfifo only creates the node.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let mut odd = rec.as_os_str().as_bytes().to_vec();
    odd.extend_from_slice(b"/p_\xff\xfe.wav");
    std::fs::write(
        std::ffi::OsStr::from_bytes(&odd),
        wav_bytes(1, 1, RATE, 16, &[0; 64], 64),
    )
    .unwrap();
    // The one ordinary clip, last in order.
    std::fs::write(
        f("z_good.wav"),
        wav_bytes(1, 1, RATE, 16, &pcm16(&good), (good.len() * 2) as u32),
    )
    .unwrap();
    Folder {
        sb,
        rec,
        good,
        secret,
    }
}

#[test]
fn hostile_files_are_refused_or_played_and_nothing_breaks() {
    let folder = hostile_folder();
    let sb = &folder.sb;
    let config = sb.home().join("c.toml");
    let sounds = Path::new(env!("CARGO_MANIFEST_DIR")).join("sounds");
    std::fs::write(
        &config,
        format!(
            "[audio]\ncapture_device = \"cb_null\"\nplayback_device = \"cb_speaker\"\n\
             rate = {RATE}\nchannels = 1\nvolume = 10\n\
             [library]\nrecordings_dir = \"rec\"\nsounds_dir = {sounds:?}\n\
             [keywords]\nenabled = false\n"
        ),
    )
    .unwrap();
    let script = sb.home().join("s.sim");
    // 14 clips are listed; step through all of them and round again, then press too.
    let mut text = "say right\nsettle\n".repeat(16);
    text.push_str("say left\nsettle\npress\nrelease\nsettle\nstatus\n");
    std::fs::write(&script, text).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_chatterbox"));
    sb.configure(&mut cmd);
    let out = cmd
        .arg("--config")
        .arg(&config)
        .args([
            "sim",
            "--allow-root",
            "--virtual-time",
            "--seed",
            "5",
            "--script",
        ])
        .arg(&script)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let ctx = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(out.status.success(), "{ctx}");
    assert!(!stderr.contains("panicked"), "{ctx}");
    assert!(
        stdout.contains("[status]") && stdout.contains("clips=14"),
        "{ctx}"
    );

    for bad in [
        "a_truncated.wav",
        "b_empty.wav",
        "c_text.wav",
        "d_huge_data.wav",
        "e_huge_fmt.wav",
        "f_zero_rate.wav",
        "g_zero_channels.wav",
        "h_12_bit.wav",
        "h2_block_align_lies.wav",
        "i_adpcm.wav",
    ] {
        assert!(
            stderr
                .lines()
                .any(|l| l.contains("cannot play clip") && l.contains(bad)),
            "no warning naming {bad}; {ctx}"
        );
    }
    for fine in ["j_8bit_8k.wav", "k_24bit_6ch.wav", "l_float_stereo.wav"] {
        assert!(
            !stderr
                .lines()
                .any(|l| l.contains("cannot play") && l.contains(fine)),
            "{fine} is valid and should play; {ctx}"
        );
    }
    assert!(
        stderr.contains("m_link_out.wav: symlinks are not followed"),
        "{ctx}"
    );
    assert!(stderr.contains("name is not UTF-8"), "{ctx}");

    let played = sb.read_speaker().unwrap();
    let contains = |needle: &[i16]| played.windows(64).any(|w| w == &needle[..64]);
    assert!(contains(&folder.good), "the good clip played; {ctx}");
    assert!(
        !contains(&folder.secret),
        "the symlink's target was played!"
    );
    // Nothing in the folder was changed or removed.
    assert_eq!(std::fs::read_dir(&folder.rec).unwrap().count(), 18);
}
