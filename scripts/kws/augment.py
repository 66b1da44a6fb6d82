"""Turning one clean synthesized word into one realistic 1 s microphone clip.

Every random choice comes from the numpy Generator passed in, which the dataset builder
seeds from (global seed, example index): the whole data set is reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.signal import butter, fftconvolve, resample_poly, sosfilt

from . import config as C
from . import sounds

N = C.CLIP_SAMPLES


@dataclass
class Pools:
    """Everything augmentation draws from; each split gets its own (no leakage)."""
    rirs: list[np.ndarray]
    backgrounds: list[np.ndarray]  # int16 real recordings
    babble: list[np.ndarray] = field(default_factory=list)  # int16 non-keyword words


def _f(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32) / 32768.0 if x.dtype == np.int16 else x.astype(np.float32)


def perturb_speed(rng, x):
    """Resampling by ±10 %: tempo, pitch and formants move together."""
    num = int(rng.integers(90, 111))
    return resample_poly(x, num, 100).astype(np.float32) if num != 100 else x


def reverberate(rng, x, rirs):
    h = rirs[int(rng.integers(len(rirs)))]
    y = fftconvolve(x, h)[: len(x) + len(h) // 3]
    return (y * (np.abs(x).max() / (np.abs(y).max() + 1e-9))).astype(np.float32)


def colour(rng, x):
    """Band-limiting (phone, cheap speaker) and small-speaker/MEMS-mic colouring."""
    kind = rng.integers(0, 4)
    if kind == 0:  # telephone-like band
        sos = butter(4, [rng.uniform(200, 400), rng.uniform(3000, 3800)], "bandpass",
                     fs=C.SAMPLE_RATE, output="sos")
    elif kind == 1:  # small speaker: no bass
        sos = butter(2, rng.uniform(300, 700), "highpass", fs=C.SAMPLE_RATE, output="sos")
    elif kind == 2:  # muffled / far
        sos = butter(2, rng.uniform(2000, 5000), "lowpass", fs=C.SAMPLE_RATE, output="sos")
    else:  # MEMS mic: DC-blocking high-pass plus a gentle presence lift
        sos = butter(1, rng.uniform(60, 200), "highpass", fs=C.SAMPLE_RATE, output="sos")
        hp = sosfilt(butter(2, 2500, "highpass", fs=C.SAMPLE_RATE, output="sos"), x)
        x = x + rng.uniform(0.1, 0.6) * hp
    return sosfilt(sos, x).astype(np.float32)


def place(rng, x, jitter=True):
    """Put a word somewhere inside the 1 s window (time-shift augmentation)."""
    out = np.zeros(N, np.float32)
    if len(x) >= N:
        # Keep the loud middle of over-long words.
        a = (len(x) - N) // 2
        out[:] = x[a:a + N]
        return out
    slack = N - len(x)
    off = int(rng.integers(0, slack + 1)) if jitter else slack // 2
    out[off:off + len(x)] = x
    return out


def background(rng, pools: Pools, n=N, babble_ok=True):
    k = rng.random()
    if k < 0.4 and pools.backgrounds:
        b = _f(pools.backgrounds[int(rng.integers(len(pools.backgrounds)))])
        if len(b) < n:
            b = np.tile(b, n // len(b) + 1)
        a = int(rng.integers(0, len(b) - n + 1))
        y = b[a:a + n]
    elif k < 0.55 and babble_ok and pools.babble:
        y = np.zeros(n, np.float32)
        for _ in range(int(rng.integers(2, 6))):
            w = _f(pools.babble[int(rng.integers(len(pools.babble)))])[:n]
            o = int(rng.integers(-len(w) // 2, n - len(w) // 2))
            a, b0 = max(0, o), min(n, o + len(w))
            y[a:b0] += w[a - o:b0 - o] * rng.uniform(0.3, 1.0)
    else:
        y = sounds.generated_noise(rng, n)
    return y.astype(np.float32)


def _rms(x):
    return float(np.sqrt(np.mean(x ** 2) + 1e-12))


def _finish(y):
    return np.round(np.clip(y, -1.0, 1.0) * 32767).astype(np.int16)


def augment_word(rng, clip: np.ndarray, pools: Pools, strength: float = 1.0) -> np.ndarray:
    """clip: int16 word -> int16 1 s clip. strength 0 gives a clean, centred-ish clip."""
    x = _f(clip)
    if rng.random() < 0.5 * strength:
        x = perturb_speed(rng, x)
    if pools.rirs and rng.random() < 0.45 * strength:
        x = reverberate(rng, x, pools.rirs)
    y = place(rng, x, jitter=True)
    if rng.random() < 0.35 * strength:
        y = colour(rng, y)
    peak_db = rng.uniform(-30, -2) if strength > 0 else rng.uniform(-20, -6)
    y = y * (10 ** (peak_db / 20) / (np.abs(y).max() + 1e-9))
    if rng.random() < 0.85 * strength:
        snr = rng.uniform(0, 30) if rng.random() < 0.15 else rng.uniform(5, 30)
        nz = background(rng, pools)
        speech_rms = _rms(x) * (10 ** (peak_db / 20) / (np.abs(x).max() + 1e-9))
        y = y + nz * (speech_rms / (_rms(nz) * 10 ** (snr / 20)))
    # A faint floor, as every real microphone has.
    y = y + rng.standard_normal(N).astype(np.float32) * 10 ** (rng.uniform(-90, -65) / 20)
    return _finish(y)


def make_silence(rng, pools: Pools) -> np.ndarray:
    """A 'silence' example: no speech, anything from digital zero to loud machinery."""
    r = rng.random()
    if r < 0.05:
        return np.zeros(N, np.int16)
    y = background(rng, pools, babble_ok=False)
    if rng.random() < 0.3:
        y = y + background(rng, pools, babble_ok=False) * rng.uniform(0.2, 1.0)
    if rng.random() < 0.3:
        y = colour(rng, y)
    level_db = rng.uniform(-75, -12)
    y = y * (10 ** (level_db / 20) / (_rms(y) + 1e-9))
    return _finish(y)
