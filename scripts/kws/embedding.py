"""The speech-embedding front end, the reference the Rust runtime (src/kws/embedding.rs) matches.

openWakeWord's two frozen models turn 16 kHz audio into one 96-value embedding every 80 ms:

* `melspectrogram.tflite`: float32 samples in int16 range -> 32 log-mel values per 10 ms frame
  (512-sample frames, 160-sample hop, no centre padding). Its output is clipped at
  (max - 80 dB) over *everything it is given at once*, so its values depend on how the audio
  is cut into calls.
* `embedding_model.tflite`: the last 76 mel frames, scaled `x / 10 + 2` -> 96 values.

Because of that clipping the front end is defined by a fixed cut that does not depend on how
audio arrives (capture chunks, whole files, batches): **block k** is the samples
`[1280 k, 1280 k + 1760)` of the stream, i.e. 80 ms of new audio plus the 480 samples (3 mel
hops) before it, fed to the mel model alone; it yields mel frames `8k .. 8k + 7`, which are
exactly the frames a whole-file call would give at those positions except where the clip
engages. Embedding j reads frames `[8j + 4, 8j + 80)` (76 frames, the window ending at the end
of block j + 9). This is openWakeWord 0.4.0's streaming arithmetic (`AudioFeatures`: 1280 new
samples plus 480 of context per mel call, one embedding from the last 76 frames per 1280
samples), with the start fixed so that nothing is padded: the stream's first embedding appears
after 9 x 1280 + 1760 = 13 280 samples (830 ms).

The trainer computes every training embedding through `stream_embeddings`, so the head learns
on exactly the values the firmware will compute.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
BLOCK_SAMPLES = 1280  # 80 ms of new audio per mel call and per embedding
CONTEXT_SAMPLES = 480  # 3 mel hops before the block, so its 8 frames are whole
MEL_CALL_SAMPLES = BLOCK_SAMPLES + CONTEXT_SAMPLES  # 1760
MEL_FRAMES_PER_BLOCK = 8
MEL_BINS = 32
EMBEDDING_WINDOW = 76  # mel frames per embedding
EMBEDDING_DIM = 96
# Blocks before the first whole embedding window: 76 frames end at frame 80 = block 9's end.
FIRST_EMBEDDING_BLOCK = (EMBEDDING_WINDOW + MEL_FRAMES_PER_BLOCK - 1) // MEL_FRAMES_PER_BLOCK - 1

MODELS_DIR = Path(__file__).resolve().parents[2] / "models" / "embedding"
MEL_FILE = "melspectrogram.tflite"
EMBEDDING_FILE = "embedding_model.tflite"
# The files of pyopen-wakeword 1.1.0 (models/embedding/NOTICE.md); checked before loading.
PINNED = {
    MEL_FILE: "96fa0adccb6e8cf95cb14465409a1a2898ee4a96a85bb9ed3c7eb0e68bf163e8",
    EMBEDDING_FILE: "c0aea21eb84a4ce90a08c870da41b7a7173b45269e6a3207c71d67c40f3a59d8",
}


def sha256_of(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def check_pin(path: Path, expected: str) -> None:
    actual = sha256_of(path)
    if actual != expected:
        raise SystemExit(
            f"{path}: sha256 is {actual} but {expected} was expected; the file is damaged or "
            f"not the pinned model (copy it again from the pyopen-wakeword 1.1.0 wheel, see "
            f"models/embedding/NOTICE.md)"
        )


def embeddings_for_length(n_samples: int) -> int:
    """How many embeddings a stream of `n_samples` gives (0 if shorter than 830 ms)."""
    if n_samples < MEL_CALL_SAMPLES:
        return 0
    blocks = (n_samples - CONTEXT_SAMPLES) // BLOCK_SAMPLES
    return max(0, blocks - FIRST_EMBEDDING_BLOCK)


class SpeechEmbedding:
    """The two pinned models behind ai_edge_litert interpreters (one thread each)."""

    def __init__(self, models_dir: Path = MODELS_DIR, num_threads: int = 1):
        from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415

        mel_path, emb_path = Path(models_dir) / MEL_FILE, Path(models_dir) / EMBEDDING_FILE
        for path in (mel_path, emb_path):
            check_pin(path, PINNED[path.name])
        self.mel = Interpreter(model_path=str(mel_path), num_threads=num_threads)
        mel_in = self.mel.get_input_details()[0]["index"]
        self.mel.resize_tensor_input(mel_in, [1, MEL_CALL_SAMPLES])
        self.mel.allocate_tensors()
        self._mel_in = mel_in
        self._mel_out = self.mel.get_output_details()[0]["index"]
        self.emb = Interpreter(model_path=str(emb_path), num_threads=num_threads)
        self.emb.allocate_tensors()
        self._emb_in = self.emb.get_input_details()[0]["index"]
        self._emb_out = self.emb.get_output_details()[0]["index"]

    def mel_block(self, block: np.ndarray) -> np.ndarray:
        """1760 samples in int16 range -> (8, 32) mel frames, already scaled x/10 + 2."""
        x = np.asarray(block, dtype=np.float32).reshape(1, MEL_CALL_SAMPLES)
        self.mel.set_tensor(self._mel_in, x)
        self.mel.invoke()
        out = self.mel.get_tensor(self._mel_out).reshape(MEL_FRAMES_PER_BLOCK, MEL_BINS)
        return out / np.float32(10.0) + np.float32(2.0)

    def stream_mels(self, samples: np.ndarray) -> np.ndarray:
        """All mel frames of a stream, block by block: shape (8 * blocks, 32)."""
        x = np.asarray(samples, dtype=np.float32)
        blocks = max(0, (len(x) - CONTEXT_SAMPLES) // BLOCK_SAMPLES)
        out = np.empty((blocks * MEL_FRAMES_PER_BLOCK, MEL_BINS), dtype=np.float32)
        for k in range(blocks):
            start = k * BLOCK_SAMPLES
            out[k * 8 : k * 8 + 8] = self.mel_block(x[start : start + MEL_CALL_SAMPLES])
        return out

    def embed_window(self, mels76: np.ndarray) -> np.ndarray:
        self.emb.set_tensor(self._emb_in, mels76.reshape(1, EMBEDDING_WINDOW, MEL_BINS, 1))
        self.emb.invoke()
        return self.emb.get_tensor(self._emb_out).reshape(EMBEDDING_DIM).copy()

    def stream_embeddings(self, samples: np.ndarray) -> np.ndarray:
        """Embeddings of a stream (int16-range samples): shape (embeddings_for_length, 96)."""
        mels = self.stream_mels(samples)
        n = embeddings_for_length(len(samples))
        out = np.empty((n, EMBEDDING_DIM), dtype=np.float32)
        for j in range(n):
            end = (FIRST_EMBEDDING_BLOCK + 1 + j) * MEL_FRAMES_PER_BLOCK
            out[j] = self.embed_window(mels[end - EMBEDDING_WINDOW : end])
        return out

    def whole_file_mels(self, samples: np.ndarray) -> np.ndarray:
        """The mel model called once on all of `samples` (for measuring the clip's effect)."""
        x = np.asarray(samples, dtype=np.float32).reshape(1, -1)
        self.mel.resize_tensor_input(self._mel_in, list(x.shape))
        self.mel.allocate_tensors()
        self.mel.set_tensor(self._mel_in, x)
        self.mel.invoke()
        out = self.mel.get_tensor(self._mel_out).reshape(-1, MEL_BINS) / 10.0 + 2.0
        self.mel.resize_tensor_input(self._mel_in, [1, MEL_CALL_SAMPLES])
        self.mel.allocate_tensors()
        return out.astype(np.float32)
