"""Building the train/val/test example arrays from synthesized clips (and, optionally, a
real Speech Commands folder).

Each example is (log-magnitude features float16 [129,124], label index, family name).
Example i of a split draws all its randomness from default_rng([seed, split_no, i]), so the
arrays are identical across runs and across worker counts.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from . import augment as A
from . import config as C
from . import features as F
from . import sounds, synth
from .synth import Setting, load_clips, to_16k

LABEL_INDEX = {l: i for i, l in enumerate(C.LABELS)}
SPLIT_NO = {"train": 0, "val": 1, "test": 2, "test_clean": 3}


@dataclass
class Job:
    kind: str  # "word" | "silence" | "speech" (a crop of running non-keyword speech)
    label: int
    family: str
    clip: np.ndarray | None
    strength: float
    setting: str = ""  # the voice setting's id (empty for silence and running speech)


_POOLS: dict[str, A.Pools] = {}


def _run_job(args):
    seed, split, i, job = args
    rng = np.random.default_rng([seed, SPLIT_NO[split], i])
    pools = _POOLS[split]
    if job.kind == "silence":
        audio = A.make_silence(rng, pools)
    elif job.kind == "speech":
        audio = A.augment_word(rng, running_speech(rng, pools.babble), pools, job.strength)
    else:
        audio = A.augment_word(rng, job.clip, pools, job.strength)
    return audio


def running_speech(rng, words: list[np.ndarray]) -> np.ndarray:
    """1 s cut at random from 3-5 non-keywords said one after the other (gaps 0-200 ms):
    what the listener's windows hold while people talk, words cut at both edges. Labelled
    `unknown`, it teaches the model that running speech is not a keyword; isolated words
    alone never show it a window that starts or ends mid-word."""
    parts = []
    for _ in range(int(rng.integers(3, 6))):
        parts.append(words[int(rng.integers(len(words)))].astype(np.float32))
        parts.append(np.zeros(int(rng.integers(0, 3200)), np.float32))
    x = np.concatenate(parts)
    if len(x) <= C.CLIP_SAMPLES:
        x = np.pad(x, (0, C.CLIP_SAMPLES - len(x) + 1))
    a = int(rng.integers(0, len(x) - C.CLIP_SAMPLES + 1))
    return x[a:a + C.CLIP_SAMPLES].astype(np.int16)


def _render(jobs: list[Job], split: str, seed: int, workers: int) -> np.ndarray:
    args = [(seed, split, i, j) for i, j in enumerate(jobs)]
    if workers > 1:
        with mp.get_context("fork").Pool(workers) as pool:
            audio = pool.map(_run_job, args, chunksize=64)
    else:
        audio = [_run_job(a) for a in args]
    return np.stack(audio) if audio else np.zeros((0, C.CLIP_SAMPLES), np.int16)


def _speech_commands(root: Path, log=print):
    """Official layout: <root>/<word>/<speaker>_nohash_<n>.wav, validation_list.txt,
    testing_list.txt, _background_noise_/. Yields (split, label, wav int16) and backgrounds."""
    val = set((root / "validation_list.txt").read_text().split()) \
        if (root / "validation_list.txt").exists() else set()
    test = set((root / "testing_list.txt").read_text().split()) \
        if (root / "testing_list.txt").exists() else set()
    items, bgs = [], []
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        for f in sorted(d.glob("*.wav")):
            x, sr = sf.read(f, dtype="float32", always_2d=True)
            y = to_16k(x[:, 0], sr)
            a = np.round(np.clip(y, -1, 1) * 32767).astype(np.int16)
            if d.name == "_background_noise_":
                bgs.append(a)
                continue
            rel = f"{d.name}/{f.name}"
            split = "test" if rel in test else "val" if rel in val else "train"
            label = d.name if d.name in C.KEYWORDS else C.UNKNOWN
            items.append((split, label, a))
    log(f"speech-commands: {len(items)} clips, {len(bgs)} background files from {root}")
    return items, bgs


def engine_copies(settings: list[Setting], aug_copies: int) -> dict[str, int]:
    """Augmented copies of each training keyword clip, per engine, so that the engines with
    few voices weigh more: espeak-ng gives most of the settings, yet most held-out voices
    come from other engines. Copies scale with sqrt(largest engine / this engine), with
    the largest engine at 2/3 of `aug_copies` (at least 1)."""
    counts: dict[str, int] = {}
    for s in settings:
        if s.split == "train":
            counts[s.engine] = counts.get(s.engine, 0) + 1
    if not counts:
        return {}
    top = max(counts.values())
    return {e: max(1, round(aug_copies * 2 / 3 * (top / n) ** 0.5)) for e, n in counts.items()}


def from_metrics(cache: Path, m: dict, jobs: int = 2, log=print):
    """The data set a training run used, rebuilt from its metrics.json (seed, scale,
    aug_copies, engines, balance_engines, speech_negatives): served from the cache when that
    run's arrays are there, otherwise synthesized and augmented again."""
    return from_metrics_with_path(cache, m, jobs, log)[0]


def from_metrics_with_path(cache: Path, m: dict, jobs: int = 2, log=print):
    """from_metrics, plus the data set's path (for eval_audio) and its settings."""
    engines = set(m["engines"].split(",")) if m.get("engines") else None
    settings = synth.synthesize(cache, m["seed"], jobs=jobs, scale=m["scale"], engines=engines,
                                log=log)
    data, path = build(cache, settings, m["seed"], aug_copies=m["aug_copies"], workers=jobs,
                       balance_engines=m.get("balance_engines", False),
                       speech_negatives=m.get("speech_negatives", 0.0), log=log)
    return data, path, settings


def _key(settings: list[Setting], seed: int, aug_copies: int, unknown_keep: float,
         eval_unknown_keep: float, silence_ratio: float, speech_commands: Path | None,
         per_engine: dict[str, int], speech_negatives: float) -> str:
    """The cache key of a data set: its arrays and its evaluation clips are named by it."""
    key = {"seed": seed, "aug": aug_copies, "uk": unknown_keep, "euk": eval_unknown_keep,
           "sil": silence_ratio, "ids": [s.id for s in settings],
           "sc": str(speech_commands), "v": 5}
    if per_engine:
        key["balance"] = per_engine  # absent otherwise, so older caches stay valid
    if speech_negatives:
        key["speech_neg"] = speech_negatives
    return hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]


def _split_jobs(cache: Path, settings: list[Setting], seed: int, aug_copies: int,
                unknown_keep: float, eval_unknown_keep: float, silence_ratio: float,
                speech_commands: Path | None, per_engine: dict[str, int],
                speech_negatives: float, log=print):
    """Yields (split, jobs) for train, val, test, test_clean in that order, with the pools
    each split's jobs are rendered from set. The unknown words kept are drawn from one
    generator across the splits in this order, so a split's jobs are the same whether or
    not the splits before it are rendered (`eval_audio_only`)."""
    rng = np.random.default_rng([seed, 99])
    by_split: dict[str, list[tuple[Setting, str, np.ndarray]]] = {"train": [], "val": [],
                                                                   "test": []}
    for s, w, clip in load_clips(cache, settings):
        if w not in C.NOT_UNKNOWN:
            by_split[s.split].append((s, w, clip))
    # Rooms and background recordings are split three ways (config.ROOM_PERIOD,
    # BACKGROUND_BUCKETS): validation (epoch and candidate choice) never hears the test
    # acoustics.
    bgs = sounds.split_backgrounds(sounds.load_backgrounds(cache, log))
    rooms = sounds.split_rooms(sounds.load_named_rirs(cache, seed, log))

    def rirs(split):
        return [r for _, r in rooms[split]]

    sc_items, sc_bgs = ([], [])
    if speech_commands is not None:
        sc_items, sc_bgs = _speech_commands(speech_commands, log)

    def babble(split):
        return [c for (s, w, c) in by_split[split] if w not in C.KEYWORDS]

    _POOLS["train"] = A.Pools(rirs("train"), list(bgs["train"].values()) + sc_bgs,
                              babble("train"))
    for sp in ("val", "test", "test_clean"):
        src = "test" if sp != "val" else "val"
        _POOLS[sp] = A.Pools(rirs(src), list(bgs[src].values()), babble(src))

    for split in ("train", "val", "test", "test_clean"):
        src = "test" if split == "test_clean" else split
        copies = aug_copies if split == "train" else 1
        strength = 0.0 if split == "test_clean" else 1.0
        jobs: list[Job] = []
        for s, w, clip in by_split[src]:
            if w in C.KEYWORDS:
                n_copies = per_engine.get(s.engine, copies) if split == "train" else copies
                for _ in range(n_copies):
                    jobs.append(Job("word", LABEL_INDEX[w], s.family, clip, strength, s.id))
            elif rng.random() < (unknown_keep if split == "train" else eval_unknown_keep):
                jobs.append(Job("word", LABEL_INDEX[C.UNKNOWN], s.family, clip, strength,
                                s.id))
        for sp, label, a in sc_items:
            if sp == src:
                jobs.append(Job("word", LABEL_INDEX[label], "speech-commands", a,
                                {"train": 1.0, "test_clean": 0.0}.get(split, 0.3)))
        n_kw = sum(1 for j in jobs if j.label < len(C.KEYWORDS))
        if split == "train" and speech_negatives and _POOLS["train"].babble:
            n_speech = int(speech_negatives * n_kw / len(C.KEYWORDS))
            jobs += [Job("speech", LABEL_INDEX[C.UNKNOWN], "running-speech", None, 1.0)
                     for _ in range(n_speech)]
        n_sil = int(silence_ratio * n_kw / len(C.KEYWORDS)) if n_kw else 8
        jobs += [Job("silence", LABEL_INDEX[C.SILENCE], "noise", None, 1.0)
                 for _ in range(n_sil)]
        yield split, jobs


def _eval_path(cache: Path, split: str, h: str) -> Path:
    """Where the evaluation clips of split `split` of the data set keyed `h` are kept."""
    return cache / f"eval-{split}-{h}.npz"


def _save_eval(cache: Path, h: str, split: str, audio: np.ndarray, jobs: list[Job]) -> None:
    """The evaluation clips as audio, so that a model with another front end (not this
    STFT) is measured on exactly the same clips (kws.protocol)."""
    dst = _eval_path(cache, split, h)
    tmp_a = dst.with_suffix(".tmp.npz")
    np.savez(tmp_a, audio=audio, y=np.array([j.label for j in jobs], np.int64),
             fam=np.array([j.family for j in jobs]),
             setting=np.array([j.setting for j in jobs]))
    tmp_a.replace(dst)


# build()'s defaults, which eval_audio_only reproduces.
UNKNOWN_KEEP, EVAL_UNKNOWN_KEEP, SILENCE_RATIO = 0.7, 0.25, 1.5


def build(cache: Path, settings: list[Setting], seed: int, aug_copies: int = 3,
          unknown_keep: float = UNKNOWN_KEEP, eval_unknown_keep: float = EVAL_UNKNOWN_KEEP,
          silence_ratio: float = SILENCE_RATIO, workers: int = 2,
          speech_commands: Path | None = None, balance_engines: bool = False,
          speech_negatives: float = 0.0, log=print):
    """Returns {split: (X float16 [N,129,124], y int64 [N], fam list[str])} and cache path."""
    per_engine = engine_copies(settings, aug_copies) if balance_engines else {}
    if speech_negatives:
        log(f"dataset: training copies per engine {per_engine}")
    h = _key(settings, seed, aug_copies, unknown_keep, eval_unknown_keep, silence_ratio,
             speech_commands, per_engine, speech_negatives)
    dst = cache / f"dataset-{h}.npz"
    if dst.exists():
        log(f"dataset: cached {dst}")
        z = np.load(dst, allow_pickle=False)
        return {s: (z[f"{s}_X"], z[f"{s}_y"], list(z[f"{s}_fam"])) for s in SPLIT_NO}, dst

    t0 = time.time()
    out = {}
    for split, jobs in _split_jobs(cache, settings, seed, aug_copies, unknown_keep,
                                   eval_unknown_keep, silence_ratio, speech_commands,
                                   per_engine, speech_negatives, log):
        audio = _render(jobs, split, seed, workers)
        X = F.batch_log_features(audio)
        y = np.array([j.label for j in jobs], np.int64)
        fam = [j.family for j in jobs]
        out[split] = (X, y, fam)
        log(f"dataset: {split}: {len(y)} examples "
            f"({np.bincount(y, minlength=len(C.LABELS)).tolist()}) "
            f"{time.time() - t0:.0f}s")
        if split == "test_clean":
            np.save(cache / f"test-clean-audio-{h}.npy", audio)
        if split != "train":
            _save_eval(cache, h, split, audio, jobs)
    tmp = dst.with_suffix(".tmp.npz")
    np.savez(tmp, **{f"{s}_X": v[0] for s, v in out.items()},
             **{f"{s}_y": v[1] for s, v in out.items()},
             **{f"{s}_fam": np.array(v[2]) for s, v in out.items()})
    tmp.replace(dst)
    return out, dst


def eval_audio_only(cache: Path, settings: list[Setting], seed: int, split: str,
                    aug_copies: int = 3, workers: int = 2, log=print) -> dict[str, np.ndarray]:
    """`eval_audio` of the data set `build` makes from these arguments (its other defaults),
    without rendering or featurizing the training set: the same clips, value for value, in
    minutes instead of the training set's hour. The file is the one `build` writes, so
    either serves the other."""
    if split not in SPLIT_NO or split == "train":
        raise ValueError(f"{split!r} is not an evaluation split (val, test, test_clean)")
    defaults = (UNKNOWN_KEEP, EVAL_UNKNOWN_KEEP, SILENCE_RATIO, None)
    h = _key(settings, seed, aug_copies, *defaults, {}, 0.0)
    if not _eval_path(cache, split, h).exists():
        for sp, jobs in _split_jobs(cache, settings, seed, aug_copies, *defaults, {}, 0.0,
                                    log):
            if sp == split:
                t0 = time.time()
                _save_eval(cache, h, split, _render(jobs, split, seed, workers), jobs)
                log(f"dataset: {split} clips alone: {len(jobs)} in {time.time() - t0:.0f}s")
                break
    return eval_audio(cache / f"dataset-{h}.npz", split)


def eval_audio(ds_path: Path, split: str) -> dict[str, np.ndarray]:
    """The evaluation clips of one split ("val", "test", "test_clean") of the data set at
    `ds_path` as audio: {audio int16 [N, 16000], y, fam, setting}."""
    p = _eval_path(ds_path.parent, split, ds_path.stem.split("-")[-1])
    if not p.exists():
        raise FileNotFoundError(f"{p} is missing: rebuild the data set (train_kws.py, or "
                                "python -m kws.protocol, which builds it)")
    with np.load(p) as z:
        return {k: z[k] for k in z.files}
