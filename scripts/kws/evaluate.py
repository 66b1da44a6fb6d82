"""Checking exported .tflite models with the same LiteRT library the Rust runtime links:
clip accuracy, confusion matrix, and a streaming detector over long audio.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import augment as A
from . import config as C
from . import features as F

HOP = 4000  # 250 ms
AVG = 3  # posteriors averaged: ~750 ms
REFRACTORY_S = 1.0


class TfliteModel:
    """One .tflite model behind ai_edge_litert's interpreter; quantizes int8 I/O itself."""

    def __init__(self, path):
        from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415

        self.it = Interpreter(model_path=str(path), num_threads=1)
        self.it.allocate_tensors()
        self.inp = self.it.get_input_details()[0]
        self.out = self.it.get_output_details()[0]

    def predict(self, x_norm: np.ndarray) -> np.ndarray:
        """x_norm: (N, 129, 124) normalized features -> (N, n_classes) probabilities."""
        res = []
        d_in, d_out = self.inp, self.out
        for x in x_norm:
            v = x.astype(np.float32)[None, :, :, None]
            if d_in["dtype"] == np.int8:
                s, z = d_in["quantization"]
                v = np.clip(np.round(v / s + z), -128, 127).astype(np.int8)
            self.it.set_tensor(d_in["index"], v)
            self.it.invoke()
            o = self.it.get_tensor(d_out["index"])[0]
            if d_out["dtype"] == np.int8:
                s, z = d_out["quantization"]
                o = (o.astype(np.float32) - z) * s
            res.append(o.astype(np.float32))
        return np.stack(res)


def confusion(y_true, y_pred, n=len(C.LABELS)) -> np.ndarray:
    m = np.zeros((n, n), np.int64)
    np.add.at(m, (y_true, y_pred), 1)
    return m


def clip_report(probs: np.ndarray, y: np.ndarray, fam: list[str]) -> dict:
    pred = probs.argmax(1)
    ok = pred == y
    fams = sorted(set(fam))
    famarr = np.array(fam)
    per_fam = {f: (float(ok[famarr == f].mean()), int((famarr == f).sum())) for f in fams}
    cm = confusion(y, pred)
    recall = cm.diagonal() / np.maximum(cm.sum(1), 1)
    return {"accuracy": float(ok.mean()), "n": int(len(y)),
            "macro_recall": float(recall.mean()),
            "per_class_recall": {C.LABELS[i]: float(r) for i, r in enumerate(recall)},
            "per_family": per_fam, "confusion": cm.tolist()}


# --- streaming --------------------------------------------------------------------------

@dataclass
class Stream:
    audio: np.ndarray  # int16
    events: list[tuple[int, int, int]]  # (label, start sample, end sample) of keywords

    @property
    def hours(self) -> float:
        return len(self.audio) / C.SAMPLE_RATE / 3600


def build_stream(rng, words: list[tuple[int, np.ndarray]], pools: A.Pools,
                 gap=(0.4, 1.8), noise_db=(-60, -38), peak_db=(-22, -4)) -> Stream:
    """Words (label, int16 clip) one after another with gaps, over a background bed."""
    pieces, events, pos = [], [], 0
    for label, clip in words:
        g = int(rng.uniform(*gap) * C.SAMPLE_RATE)
        pieces.append(np.zeros(g, np.float32))
        pos += g
        x = clip.astype(np.float32) / 32768
        x = x * (10 ** (rng.uniform(*peak_db) / 20) / (np.abs(x).max() + 1e-9))
        pieces.append(x)
        if label < len(C.KEYWORDS):
            events.append((label, pos, pos + len(x)))
        pos += len(x)
    pieces.append(np.zeros(C.SAMPLE_RATE, np.float32))
    y = np.concatenate(pieces)
    bed = np.concatenate([A.background(rng, pools, n=C.SAMPLE_RATE * 10, babble_ok=False)
                          for _ in range(len(y) // (C.SAMPLE_RATE * 10) + 1)])[: len(y)]
    bed = bed * 10 ** (rng.uniform(*noise_db) / 20) / (np.sqrt(np.mean(bed ** 2)) + 1e-9)
    y = y + bed
    return Stream(np.round(np.clip(y, -1, 1) * 32767).astype(np.int16), events)


def stream_posteriors(model: TfliteModel, audio: np.ndarray, mean: float, std: float,
                      batch: int = 256) -> np.ndarray:
    """Probabilities for every 1 s window ending at each 250 ms hop."""
    n = (len(audio) - C.CLIP_SAMPLES) // HOP + 1
    out = []
    for a in range(0, n, batch):
        idx = np.arange(a, min(n, a + batch))
        win = np.stack([audio[i * HOP:i * HOP + C.CLIP_SAMPLES] for i in idx])
        feats = F.normalize(F.log_magnitude(win.astype(np.float32) / 32768.0), mean, std)
        out.append(model.predict(feats))
    return np.concatenate(out) if out else np.zeros((0, len(C.LABELS)), np.float32)


def detect(posts: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """(label, window index) detections: averaged keyword posterior over threshold,
    then a refractory period."""
    kw = len(C.KEYWORDS)
    avg = np.stack([posts[max(0, i - AVG + 1):i + 1].mean(0) for i in range(len(posts))]) \
        if len(posts) else posts
    refr = int(REFRACTORY_S * C.SAMPLE_RATE / HOP)
    dets, last = [], -10 ** 9
    for i, p in enumerate(avg):
        k = int(np.argmax(p[:kw]))
        if p[k] >= threshold and i - last > refr:
            dets.append((k, i))
            last = i
    return dets


def score_stream(stream: Stream, dets) -> tuple[int, int, int]:
    """(hits, misses, false accepts). A detection hits a keyword event of the same label
    if its window ends between the word's middle and 1.5 s after its end."""
    used = set()
    hits = fa = 0
    for k, i in dets:
        t_end = i * HOP + C.CLIP_SAMPLES
        match = None
        for j, (lab, s, e) in enumerate(stream.events):
            if j in used:
                continue
            if (s + e) // 2 <= t_end <= e + int(1.5 * C.SAMPLE_RATE) and lab == k:
                match = j
                break
        if match is None:
            fa += 1
        else:
            used.add(match)
            hits += 1
    return hits, len(stream.events) - hits, fa
