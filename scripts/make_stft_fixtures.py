#!/usr/bin/env python3
"""Write the STFT fixtures that prove src/kws/features.rs matches scipy.

Each fixture is a 16 kHz mono signal and the magnitudes scipy itself computes for it with
the project's feature parameters:

    abs(scipy.signal.stft(x, fs=16000, nperseg=255, noverlap=124, nfft=256)[2])

Files (all raw little-endian float32, no header), in tests/fixtures/stft/:

    <name>.signal.f32   the input samples
    <name>.mag.f32      |Zxx|, shape (bins, frames) = (129, 124), C order ([bin][frame])
    manifest.toml       names, lengths, shapes, parameters, numpy/scipy versions

scipy is fed the float32 samples upcast to float64, so the reference is as exact as scipy
gets. A signal shorter than one clip is compared with scipy on the signal zero-padded to
`clip_samples`, because that is the firmware's contract for short input (the model always
sees 124 frames).

Usage (pinned versions so regenerated files are identical):

    python3 -m venv .venv-fixtures
    .venv-fixtures/bin/pip install -r scripts/requirements-fixtures.txt
    .venv-fixtures/bin/python scripts/make_stft_fixtures.py

The spoken-word fixture needs `espeak-ng` and `sox` (apt-get install -y espeak-ng sox);
without them it is skipped with a message.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np
import scipy
import scipy.signal

FS = 16000
CLIP = 16000
NPERSEG = 255
NOVERLAP = 124
NFFT = 256


def reference(x: np.ndarray) -> np.ndarray:
    padded = np.zeros(CLIP, dtype=np.float64)
    padded[: len(x)] = x.astype(np.float64)
    _, _, zxx = scipy.signal.stft(padded, fs=FS, nperseg=NPERSEG, noverlap=NOVERLAP, nfft=NFFT)
    return np.abs(zxx)


def sine() -> np.ndarray:
    t = np.arange(CLIP) / FS
    return (0.5 * np.sin(2 * np.pi * 1000.0 * t)).astype(np.float32)


def noise() -> np.ndarray:
    rng = np.random.default_rng(20240611)
    return np.clip(rng.normal(0.0, 0.1, CLIP), -1.0, 1.0).astype(np.float32)


def chirp() -> np.ndarray:
    t = np.arange(CLIP) / FS
    return (0.8 * scipy.signal.chirp(t, f0=100.0, t1=1.0, f1=7000.0, method="logarithmic")).astype(
        np.float32
    )


def spoken(word: str) -> np.ndarray | None:
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        print("espeak-ng or sox not installed: skipping the spoken-word fixture", file=sys.stderr)
        return None
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        out = Path(tmp) / "16k.wav"
        subprocess.run(["espeak-ng", "-w", str(raw), word], check=True)
        # -D: no dither, so regenerated files are byte-identical.
        subprocess.run(
            ["sox", "-D", str(raw), "-r", str(FS), "-c", "1", "-b", "16", str(out)], check=True
        )
        with wave.open(str(out), "rb") as w:
            pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    x = pcm.astype(np.float32) / 32768.0
    x = x[:CLIP]
    # Centre the word in the clip, like the Speech Commands recordings.
    start = (CLIP - len(x)) // 2
    clip = np.zeros(CLIP, dtype=np.float32)
    clip[start : start + len(x)] = x
    return clip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "stft",
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    fixtures: list[tuple[str, str, np.ndarray]] = [
        ("sine", "1 kHz sine, amplitude 0.5", sine()),
        ("noise", "white Gaussian noise, sigma 0.1, seed 20240611", noise()),
        ("chirp", "logarithmic chirp 100 Hz -> 7 kHz over 1 s, amplitude 0.8", chirp()),
    ]
    word = spoken("go")
    if word is not None:
        fixtures.append(("word_go", "espeak-ng 'go', resampled to 16 kHz by sox, centred", word))
        nz = np.flatnonzero(word)
        fixtures.append(
            ("short", "0.4 s cut of the word: shorter than a clip, so zero-padded", word[nz[0] : nz[0] + 6400])
        )

    lines = [
        "# Written by scripts/make_stft_fixtures.py; do not edit by hand.",
        f'numpy = "{np.__version__}"',
        f'scipy = "{scipy.__version__}"',
        f"sample_rate = {FS}",
        f"clip_samples = {CLIP}",
        f"nperseg = {NPERSEG}",
        f"noverlap = {NOVERLAP}",
        f"nfft = {NFFT}",
        "",
    ]
    for name, description, x in fixtures:
        mag = reference(x)
        # For information: how far scipy's own float32 path is from the float64 reference.
        padded32 = np.zeros(CLIP, dtype=np.float32)
        padded32[: len(x)] = x
        mag32 = np.abs(
            scipy.signal.stft(padded32, fs=FS, nperseg=NPERSEG, noverlap=NOVERLAP, nfft=NFFT)[2]
        )
        rel32 = np.max(np.abs(mag32 - mag)) / np.max(mag)
        x.astype("<f4").tofile(args.out / f"{name}.signal.f32")
        mag.astype("<f4").tofile(args.out / f"{name}.mag.f32")
        lines += [
            "[[fixture]]",
            f'name = "{name}"',
            f'description = "{description}"',
            f"samples = {len(x)}",
            f"bins = {mag.shape[0]}",
            f"frames = {mag.shape[1]}",
            f"peak = {float(np.max(mag))!r}",
            "",
        ]
        print(f"{name}: {len(x)} samples, |Zxx| {mag.shape}, peak {np.max(mag):.6f}, "
              f"scipy float32 vs float64 rel err {rel32:.2e}")
    (args.out / "manifest.toml").write_text("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
