"""The feature contract shared with the Rust runtime (src/kws/features.rs).

|scipy.signal.stft(x, fs=16000, nperseg=255, noverlap=124, nfft=256)| on 16000 samples of
int16/32768 audio -> (129 bins, 124 frames), then ln(x + log_epsilon), then (x - mean) / std.
models/kws.toml records every number; the runtime reads it instead of hard-coding them.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import stft

from . import config as C


def magnitude(x: np.ndarray) -> np.ndarray:
    """x: (..., 16000) float in -1..1 -> (..., 129, 124) float32, exactly scipy's |Zxx|."""
    _, _, z = stft(x, fs=C.SAMPLE_RATE, nperseg=C.NPERSEG, noverlap=C.NOVERLAP, nfft=C.NFFT)
    return np.abs(z).astype(np.float32)


def log_magnitude(x: np.ndarray) -> np.ndarray:
    return np.log(magnitude(x) + C.LOG_EPSILON).astype(np.float32)


def batch_log_features(clips_int16: np.ndarray, batch: int = 512) -> np.ndarray:
    """(N, 16000) int16 -> (N, 129, 124) float16 log-magnitudes (normalization comes later)."""
    out = np.empty((len(clips_int16), C.N_BINS, C.N_FRAMES), np.float16)
    for i in range(0, len(clips_int16), batch):
        x = clips_int16[i:i + batch].astype(np.float32) / 32768.0
        out[i:i + batch] = log_magnitude(x)
    return out


def normalize(logf: np.ndarray, mean: float, std: float) -> np.ndarray:
    return ((logf.astype(np.float32) - mean) / std).astype(np.float32)


def toml_text(mean: float, std: float, output: str = "softmax",
              model_file: str = "kws.tflite") -> str:
    """models/kws.toml, the only place the runtime learns the post-processing."""
    return (
        "# Written by scripts/train_kws.py; read by the Rust runtime (unknown keys rejected).\n"
        'front_end = "stft"\n'
        "[features]\n"
        f"sample_rate = {C.SAMPLE_RATE}\n"
        f"clip_samples = {C.CLIP_SAMPLES}\n"
        f"nperseg = {C.NPERSEG}\n"
        f"noverlap = {C.NOVERLAP}\n"
        f"nfft = {C.NFFT}\n"
        'layout = "bins_frames"\n'
        f"log_epsilon = {C.LOG_EPSILON!r}\n"
        f"mean = {float(mean)!r}\n"
        f"std = {float(std)!r}\n"
        "\n[model]\n"
        f'file = "{model_file}"\n'
        'labels = "labels.txt"\n'
        f'output = "{output}"\n'
    )
