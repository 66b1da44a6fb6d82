"""The measurement protocol every keyword model is judged by, whatever its front end.

    python -m kws.protocol MODEL_DIR [--out FILE.json]      (from scripts/, in the venv)

Rules (issue 15), so that a test figure means "voices and acoustics nothing was trained or
chosen on":

* The split (config.py, checked by protocol_split.check) is by recorded speaker, with
  espeak-ng variants, rooms, background recordings and the real speech split as well.
* Anything CHOSEN — epoch, candidate, int8 vs float, detector settings, fine-tune keep or
  discard — is chosen on the validation split (validation voices, rooms, backgrounds and
  the validation half of the real speech). The test split is measured, never chosen on.
* What a user feels is reported beside the 10-class clip accuracy: keyword-only accuracy
  (silence and unknown clips are easy and inflate the 10-class figure), per family, false
  accepts per hour on real speech apart from synthetic speech, a stream of homophones and
  words containing a keyword (config.CONFUSERS), and latency on keywords drawn at random
  from the split (not on hand-picked clips).

The protocol works on audio, not on features: a model is a `Scorer` that maps 1 s clips of
16 kHz int16 audio to class probabilities. `SCORERS` maps the front end a model's kws.toml
declares to the code that runs it; a model with a new front end (the speech-embedding
model of issue 11) adds its own entry and is then measured on exactly the same clips and
streams, side by side.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from . import augment as A
from . import config as C
from . import dataset, evaluate, sounds, synth
from . import features as F

N_KW = len(C.KEYWORDS)
THRESHOLDS = [0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.97]


# --- models behind their front end ------------------------------------------------------

class StftTfliteScorer:
    """The STFT front end of models/kws.toml (layout bins_frames) + a .tflite model."""

    front_end = "stft"

    def __init__(self, model_path: Path, mean: float, std: float):
        self.mean, self.std = float(mean), float(std)
        self.model = evaluate.TfliteModel(model_path)

    @classmethod
    def from_toml(cls, toml_path: Path, meta: dict) -> "StftTfliteScorer":
        f = meta["features"]
        return cls(toml_path.parent / meta["model"]["file"], f["mean"], f["std"])

    def __call__(self, audio: np.ndarray, batch: int = 256) -> np.ndarray:
        out = [self.model.predict(F.normalize(F.batch_log_features(audio[i:i + batch]),
                                              self.mean, self.std))
               for i in range(0, len(audio), batch)]
        return np.concatenate(out) if out else np.zeros((0, len(C.LABELS)), np.float32)


class EmbeddingTfliteScorer:
    """The speech-embedding front end of models/embedding/kws.toml (front_end = "embedding")
    + its head: each 1 s clip is centred in zeros in the window the head's N embeddings read
    and streamed from the start through the pinned mel and embedding models, exactly as the
    Rust `FrontEnd::clip` does (`chatterbox evaluate`), then the head gives the probabilities.

    The embeddings of a large batch (the protocol's clip sets) are kept in the data cache by
    the clips' hash: they depend only on the audio and the two pinned models, so measuring
    another head on the same clips costs only the head."""

    front_end = "embedding"
    CACHE_MIN = 1000  # batches this large (clip sets, not stream chunks) are cached

    def __init__(self, folder: Path, head_file: str, n: int, cache: Path | None = None,
                 workers: int = 2):
        from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415

        from . import embedding as E  # noqa: PLC0415
        for f in (E.MEL_FILE, E.EMBEDDING_FILE):
            E.check_pin(folder / f, E.PINNED[f])  # the scorer's front end is the pinned one
        self.n, self.cache, self.workers = int(n), cache, workers
        self.head = Interpreter(model_path=str(folder / head_file), num_threads=1)
        self.head.allocate_tensors()
        self._in = self.head.get_input_details()[0]["index"]
        self._out = self.head.get_output_details()[0]["index"]

    @classmethod
    def from_toml(cls, toml_path: Path, meta: dict) -> "EmbeddingTfliteScorer":
        return cls(toml_path.parent, meta["model"]["file"], meta["embedding"]["embeddings"],
                   cache=C.default_cache())

    def embed(self, audio: np.ndarray) -> np.ndarray:
        from . import train_head  # noqa: PLC0415
        cache = self.cache if len(audio) >= self.CACHE_MIN else None
        return train_head.clip_embeddings(audio, self.n, self.workers, cache)

    def head_probs(self, x: np.ndarray) -> np.ndarray:
        out = np.empty((len(x), len(C.LABELS)), np.float32)
        for k in range(len(x)):
            self.head.set_tensor(self._in, x[k:k + 1].astype(np.float32))
            self.head.invoke()
            out[k] = self.head.get_tensor(self._out)[0]
        return out

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        return self.head_probs(self.embed(audio))


# The front end a kws.toml declares -> the scorer that runs such a model: STFT models by
# their features.layout, the speech-embedding models by front_end = "embedding".
SCORERS: dict[str, Callable[[Path, dict], Callable[[np.ndarray], np.ndarray]]] = {
    "bins_frames": StftTfliteScorer.from_toml,
    "embedding": EmbeddingTfliteScorer.from_toml,
}


def scorer_key(meta: dict) -> str | None:
    if meta.get("front_end", "stft") == "embedding":
        return "embedding"
    return meta.get("features", {}).get("layout")


def load_scorer(toml_path: Path):
    meta = tomllib.loads(toml_path.read_text())
    layout = scorer_key(meta)
    if layout not in SCORERS:
        raise SystemExit(f"{toml_path}: front end {layout!r} has no scorer in "
                         "kws.protocol.SCORERS; add one (audio in, probabilities out)")
    labels = (toml_path.parent / meta["model"]["labels"]).read_text().split()
    if labels != C.LABELS:
        raise SystemExit(f"{toml_path}: labels {labels} differ from {C.LABELS}")
    return SCORERS[layout](toml_path, meta)


# --- clips --------------------------------------------------------------------------------

def clip_metrics(probs: np.ndarray, y: np.ndarray, fam) -> dict:
    """10-class figures plus what a user feels: keyword-only accuracy (of clips that ARE a
    keyword, the share recognized as that keyword) and non-keyword clips taken for a keyword,
    overall and per family."""
    rep = evaluate.clip_report(probs, y, list(fam))
    pred = probs.argmax(1)
    famarr = np.array(fam)
    kw = y < N_KW
    nonkw_speech = y == C.LABELS.index(C.UNKNOWN)
    rep["keyword_accuracy"] = float((pred[kw] == y[kw]).mean()) if kw.any() else None
    rep["keyword_clips"] = int(kw.sum())
    rep["unknown_as_keyword"] = (float((pred[nonkw_speech] < N_KW).mean())
                                 if nonkw_speech.any() else None)
    rep["per_family_keyword"] = {
        f: (float((pred[kw & (famarr == f)] == y[kw & (famarr == f)]).mean()),
            int((kw & (famarr == f)).sum()))
        for f in sorted(set(famarr[kw]))}
    return rep


# --- streams ------------------------------------------------------------------------------

@dataclass
class SplitMaterial:
    """Everything of one split (val or test) that streams are made of."""
    keywords: list[tuple[int, str, np.ndarray]]  # (label, family, clean clip)
    words: list[tuple[int, str, np.ndarray]]  # non-keywords
    confusers: list[tuple[str, str, np.ndarray]]  # (word, family, clip)
    speech: dict[str, np.ndarray]  # real recorded prompts of this split's half
    backgrounds: dict[str, np.ndarray]


def split_material(cache: Path, settings: list[synth.Setting], split: str, seed: int,
                   log=print) -> SplitMaterial:
    mine = [s for s in settings if s.split == split]
    kw, words = [], []
    for s, w, clip in synth.load_clips(cache, mine):
        if w in C.KEYWORDS:
            kw.append((C.KEYWORDS.index(w), s.family, clip))
        elif w not in C.NOT_UNKNOWN:
            words.append((N_KW, s.family, clip))
    conf = [(w, s.family, clip) for s, w, clip in
            synth.load_confusers(cache, synth.confuser_settings(mine, seed))]
    speech = sounds.split_speech(sounds.load_asterisk(cache, log))[split]
    bg = sounds.split_backgrounds(sounds.load_backgrounds(cache, log))[split]
    return SplitMaterial(kw, words, conf, speech, bg)


def build_streams(mat: SplitMaterial, seed: int, split: str, n_keywords: int):
    """{name: evaluate.Stream} over this split's own background recordings. The keywords
    are drawn at random from the split (each at most once)."""
    rng = np.random.default_rng([seed, 7, 0 if split == "val" else 1])
    pools = A.Pools([], list(mat.backgrounds.values()))
    kw = [(lab, clip) for lab, _, clip in mat.keywords]
    unk = [(lab, clip) for lab, _, clip in mat.words]
    rng.shuffle(kw)
    rng.shuffle(unk)
    kw = kw[:n_keywords]
    mixed = kw + unk[:len(kw)]
    order = rng.permutation(len(mixed))
    streams = {"keywords": evaluate.build_stream(rng, [mixed[i] for i in order], pools),
               "synthetic_nonkw": evaluate.build_stream(rng, unk[len(kw):], pools),
               "real_speech": evaluate.build_stream(
                   rng, [(N_KW, v) for _, v in sorted(mat.speech.items())], pools,
                   gap=(0.3, 1.2), noise_db=(-65, -50), peak_db=(-12, -3)),
               "confusers": evaluate.build_stream(
                   rng, [(N_KW, clip) for _, _, clip in mat.confusers], pools)}
    bg_long = np.concatenate([
        np.round(np.clip(A.background(rng, pools, n=C.SAMPLE_RATE * 30, babble_ok=False)
                         * 10 ** (rng.uniform(-40, -20) / 20), -1, 1) * 32767
                 ).astype(np.int16) for _ in range(20)])
    streams["background"] = evaluate.Stream(bg_long, [])
    return streams


def stream_posteriors(scorer, audio: np.ndarray) -> np.ndarray:
    """Probabilities for every 1 s window ending at each evaluate.HOP."""
    n = max(0, (len(audio) - C.CLIP_SAMPLES) // evaluate.HOP + 1)
    out = []
    for a in range(0, n, 512):
        idx = range(a, min(n, a + 512))
        out.append(scorer(np.stack([audio[i * evaluate.HOP:i * evaluate.HOP + C.CLIP_SAMPLES]
                                    for i in idx])))
    return np.concatenate(out) if out else np.zeros((0, len(C.LABELS)), np.float32)


def hits_and_latency(stream: evaluate.Stream, dets) -> tuple[int, int, list[float]]:
    """(hits, false accepts, latencies in ms): evaluate.score_stream's matching, plus the
    time from the word's end to the end of the window that fired."""
    used, lat, fa = set(), [], 0
    for k, i in dets:
        t_end = i * evaluate.HOP + C.CLIP_SAMPLES
        match = next((j for j, (lab, s, e) in enumerate(stream.events)
                      if j not in used and lab == k
                      and (s + e) // 2 <= t_end <= e + int(1.5 * C.SAMPLE_RATE)), None)
        if match is None:
            fa += 1
        else:
            used.add(match)
            lat.append((t_end - stream.events[match][2]) / C.SAMPLE_RATE * 1000)
    return len(used), fa, lat


def stream_metrics(scorer, streams: dict, log=print) -> dict:
    posts = {}
    for name, st in streams.items():
        t0 = time.time()
        posts[name] = stream_posteriors(scorer, st.audio)
        log(f"stream {name}: {st.hours * 60:.1f} min, {len(st.events)} keywords "
            f"({time.time() - t0:.0f}s)")
    sweep = []
    kw = streams["keywords"]
    for th in THRESHOLDS:
        hits, fa, lat = hits_and_latency(kw, evaluate.detect(posts["keywords"], th))
        row = {"threshold": th, "hit_rate": hits / max(1, len(kw.events)),
               "fa_in_keyword_stream_per_hour": fa / kw.hours,
               "latency_ms_median": float(np.median(lat)) if lat else None,
               "latency_ms_p90": float(np.percentile(lat, 90)) if lat else None}
        total, hours = 0, 0.0
        for name in ("synthetic_nonkw", "real_speech", "confusers", "background"):
            n = len(evaluate.detect(posts[name], th))  # no keyword in these: all false
            row[f"{name}_fa"] = n
            row[f"{name}_fa_per_hour"] = n / streams[name].hours
            if name != "confusers":  # confusers are reported on their own
                total, hours = total + n, hours + streams[name].hours
        row["nonkw_fa_per_hour"] = total / hours
        sweep.append(row)
    real = posts["real_speech"]
    return {"hours": {k: v.hours for k, v in streams.items()},
            "keyword_events": len(kw.events),
            "real_speech_window_keyword_rate": float((real.argmax(1) < N_KW).mean())
            if len(real) else None,
            "sweep": sweep}


# --- everything ---------------------------------------------------------------------------

def measure(scorer, data_path: Path, cache: Path, settings, seed: int,
            stream_keywords: int = 800, streams: bool = True, log=print) -> dict:
    """Clip and stream figures of one model on validation (what may be chosen on) and test
    (what is reported)."""
    out: dict = {"front_end": getattr(scorer, "front_end", "?"), "clips": {}, "streams": {}}
    for split in ("val", "test", "test_clean"):
        ev = dataset.eval_audio(data_path, split)
        out["clips"][split] = clip_metrics(scorer(ev["audio"]), ev["y"], ev["fam"])
        c = out["clips"][split]
        log(f"protocol {split}: 10-class {c['accuracy']:.4f}, keyword-only "
            f"{c['keyword_accuracy']:.4f}")
    if streams:
        for split in ("val", "test"):
            mat = split_material(cache, settings, split, seed, log)
            out["streams"][split] = stream_metrics(
                scorer, build_streams(mat, seed, split, stream_keywords), log)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m kws.protocol", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", type=Path, help="a model folder (its kws.toml) or a kws.toml")
    p.add_argument("--cache", type=Path, default=C.default_cache())
    p.add_argument("--seed", type=int, default=1234, help="the protocol data's seed")
    p.add_argument("--scale", type=float, default=2.0)
    p.add_argument("--aug-copies", type=int, default=3)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--stream-keywords", type=int, default=800)
    p.add_argument("--no-stream", action="store_true")
    p.add_argument("--out", type=Path, default=None, help="write the figures here (JSON)")
    args = p.parse_args(argv)
    toml_path = args.model / "kws.toml" if args.model.is_dir() else args.model
    if not toml_path.is_file():
        print(f"protocol: {toml_path} is missing: give a model folder written by "
              "train_kws.py (models/ is one) or its kws.toml", file=sys.stderr)
        return 2
    scorer = load_scorer(toml_path)
    # The protocol's data are a function of seed and scale only, never of the model.
    _, path, settings = dataset.from_metrics_with_path(
        args.cache, {"seed": args.seed, "scale": args.scale, "aug_copies": args.aug_copies},
        jobs=args.jobs)
    synth.synthesize_confusers(args.cache, settings, args.seed, jobs=args.jobs)
    res = measure(scorer, path, args.cache, settings, args.seed, args.stream_keywords,
                  not args.no_stream)
    res["model"] = str(toml_path)
    res["data"] = {"seed": args.seed, "scale": args.scale, "dataset": path.name}
    text = json.dumps(res, indent=1)
    if args.out:
        args.out.write_text(text)
    print(summary(res))
    return 0


def compact(res: dict, threshold: float = 0.85) -> dict:
    """The figures a side-by-side table needs, from a `measure` result."""
    c = res["clips"]
    out = {k: {"accuracy": c[k]["accuracy"], "keyword_accuracy": c[k]["keyword_accuracy"],
               "n": c[k]["n"]} for k in ("val", "test", "test_clean")}
    for split, st in res.get("streams", {}).items():
        row = next((r for r in st["sweep"] if r["threshold"] == threshold), None)
        if row:
            out[f"stream_{split}"] = {k: row[k] for k in (
                "threshold", "hit_rate", "latency_ms_median", "real_speech_fa_per_hour",
                "synthetic_nonkw_fa_per_hour", "confusers_fa_per_hour",
                "background_fa_per_hour", "nonkw_fa_per_hour")}
    out["front_end"] = res.get("front_end", "?")
    return out


def _pct(x) -> str:
    return "—" if x is None else f"{100 * x:.1f} %"


def summary(res: dict) -> str:
    """A few lines a person reads first."""
    L = []
    for split in ("val", "test", "test_clean"):
        c = res["clips"][split]
        L.append(f"{split}: 10-class {_pct(c['accuracy'])}, keyword-only "
                 f"{_pct(c['keyword_accuracy'])}, unknown taken for a keyword "
                 f"{_pct(c['unknown_as_keyword'])} ({c['n']} clips)")
    for split, st in res.get("streams", {}).items():
        row = next(r for r in st["sweep"] if r["threshold"] == 0.85)
        L.append(f"{split} streams at 0.85: hit {_pct(row['hit_rate'])}, FA/h real speech "
                 f"{row['real_speech_fa_per_hour']:.1f}, synthetic "
                 f"{row['synthetic_nonkw_fa_per_hour']:.1f}, confusers "
                 f"{row['confusers_fa_per_hour']:.1f}, background "
                 f"{row['background_fa_per_hour']:.1f}; latency median "
                 + (f"{row['latency_ms_median']:.0f} ms" if row["latency_ms_median"] is not None
                    else "—"))
    return "\n".join(L)


if __name__ == "__main__":
    raise SystemExit(main())
