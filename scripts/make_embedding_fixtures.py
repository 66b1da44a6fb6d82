#!/usr/bin/env python3
"""Write the fixtures that prove src/kws/embedding.rs computes what the Python trainer does.

The signal is made from committed keyword clips (tests/fixtures/kws_clips) with a stretch of
digital silence between them, because silence next to speech is where the mel model's
(max - 80 dB) clip engages and where feeding audio differently would change the values.
The reference runs scripts/kws/embedding.py (block by block, the contract both sides follow)
with ai-edge-litert 2.1.4 and the two pinned models in models/embedding/.

Files in tests/fixtures/embedding/:

    stream.wav          16 kHz mono int16, the input
    stream.mel.f32      mel frames, scaled x/10 + 2, shape (frames, 32), little-endian float32
    stream.emb.f32      embeddings, shape (embeddings, 96), little-endian float32
    whole.mel.f32       the mel model called ONCE on the whole signal (same scaling), only to
                        measure how far the block cut is from a whole-file call
    manifest.toml       shapes and the versions that made them

Usage: ~/.cache/chatterbox/venv-train/bin/python scripts/make_embedding_fixtures.py
"""
from __future__ import annotations

import sys
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from kws import embedding as E  # noqa: E402

CLIPS = ROOT / "tests" / "fixtures" / "kws_clips"
OUT = ROOT / "tests" / "fixtures" / "embedding"
PARTS = ["go__cmu-rms.wav", None, "yes__hibari-heart.wav", "silence__noise.wav", "stop__cstr-don.wav"]
SILENCE_SAMPLES = 8000  # 0.5 s of digital zeros


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (16000, 1, 2):
            raise SystemExit(f"{path}: expected 16 kHz mono 16-bit")
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


def main() -> None:
    parts = [read_wav(CLIPS / p) if p else np.zeros(SILENCE_SAMPLES, dtype="<i2") for p in PARTS]
    signal = np.concatenate(parts).astype("<i2")
    OUT.mkdir(parents=True, exist_ok=True)
    with wave.open(str(OUT / "stream.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(signal.tobytes())
    fe = E.SpeechEmbedding()
    x = signal.astype(np.float32)
    mels = fe.stream_mels(x)
    embs = fe.stream_embeddings(x)
    whole = fe.whole_file_mels(x)[: len(mels)]
    mels.astype("<f4").tofile(OUT / "stream.mel.f32")
    embs.astype("<f4").tofile(OUT / "stream.emb.f32")
    whole.astype("<f4").tofile(OUT / "whole.mel.f32")
    import ai_edge_litert  # noqa: PLC0415
    from importlib.metadata import version  # noqa: PLC0415

    (OUT / "manifest.toml").write_text(
        "# Written by scripts/make_embedding_fixtures.py; read by tests/kws_embedding.rs.\n"
        f"samples = {len(signal)}\n"
        f"mel_frames = {mels.shape[0]}\n"
        f"embeddings = {embs.shape[0]}\n"
        f"parts = {[p or f'{SILENCE_SAMPLES} zeros' for p in PARTS]!r}\n".replace("'", '"')
        + f'ai_edge_litert = "{version("ai-edge-litert")}"\n'
        f'numpy = "{np.__version__}"\n'
    )
    diff = np.abs(whole - mels)
    print(f"{len(signal)} samples -> {mels.shape[0]} mel frames, {embs.shape[0]} embeddings; "
          f"block cut vs whole-file mel: max |diff| {diff.max():.4f}, "
          f"frames differing > 1e-3: {(diff.max(axis=1) > 1e-3).sum()} of {len(mels)}")
    del ai_edge_litert


if __name__ == "__main__":
    main()
