"""Trains a keyword head on the speech-embedding front end (scripts/kws/embedding.py).

    ~/.cache/chatterbox/venv-train/bin/python -m kws.train_head --out models/embedding   (from scripts/)

1. Training windows, from the evaluation protocol's TRAINING material only (kws.protocol,
   config.split_of: seed 1234, scale 2; training rooms and background recordings): every
   keyword of every training voice setting, augmented (augment.augment_word: speed, room,
   colour, level, background) `--kw-copies` times and placed in the audio N embeddings read
   (`window_samples(N)`), in background noise or centred in zeros. `silence` is background
   alone. `unknown`: the training voices' non-keywords (never config.CONFUSERS nor
   NOT_UNKNOWN), windows of running non-keyword speech, and real recorded speech that is not
   English prompts: asterisk-core-sounds-es/-fr/-it/-ru, asterisk-prompt-es-co,
   -fr-armelle, -it-menardi and klettres-data (letters and syllables in 20 languages). The
   English asterisk prompts stay out: they are the held-out false-accept test.
2. Embeddings of every window are computed once through the pinned LiteRT models, block by
   block exactly as the firmware does, and cached (`<cache>/embedding-<hash>.npz`; a new
   recipe gets a new hash, old caches stay).
3. The head (Dense+ReLU layers only: a shared 96->64 layer per embedding, then
   (N*64)->64->10) trains in minutes on the cache; the epoch is picked on the protocol's
   VALIDATION clips; the protocol's test clips are only measured, through
   kws.protocol.EmbeddingTfliteScorer (the same clips as the STFT model's figures).
4. Written to --out: head.tflite (float32; `train_kws.py --finetune` starts from its Dense
   weights), labels.txt, kws.toml (front_end = "embedding", every file pinned by
   contract.pin), metrics.json and README.md (the card, from metrics.json only).
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import shutil
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np

from . import augment as A
from . import config as C
from . import contract, sounds, synth
from . import embedding as E

# Real recorded speech used as `unknown` (never a keyword: other languages, letters and
# syllables). The English asterisk prompts (en_US_f_Allison) are NOT here: they are the
# held-out false-accept test (sounds.load_asterisk, split val/test).
ASTERISK_ROOT = Path("/usr/share/asterisk/sounds")
REAL_NEGATIVE_DIRS = [  # (package, folder under ASTERISK_ROOT)
    # Not asterisk-core-sounds-es (es_MX_f_Allison): Allison also recorded the English
    # prompts, the held-out real-speech test, so her voice must not train the head.
    ("asterisk-core-sounds-fr", "fr_CA_f_June"),
    ("asterisk-core-sounds-it", "it_IT_m_Carlo"),
    ("asterisk-core-sounds-ru", "ru_RU_f_IvrvoiceRU"),
    ("asterisk-prompt-es-co", "es"),
    ("asterisk-prompt-fr-armelle", "fr"),
    ("asterisk-prompt-fr-armelle", "digits"),
    ("asterisk-prompt-fr-armelle", "letters"),
    ("asterisk-prompt-fr-armelle", "phonetic"),
    ("asterisk-prompt-fr-armelle", "dictate"),
    ("asterisk-prompt-it-menardi", "it_IT_f_Menardi"),
]
KLETTRES_ROOT = Path("/usr/share/klettres")  # klettres-data: letters and syllables, 20 languages
AUDIO_EXT = (".wav", ".gsm", ".ogg", ".mp3")
# The protocol's data (kws.protocol's defaults): the synthesized clips this head trains on
# are exactly the protocol's training settings, so its val/test families are never heard.
DATA_SEED = 1234
DATA_SCALE = 2.0


def window_samples(n_embeddings: int) -> int:
    return E.MEL_CALL_SAMPLES + (E.EMBEDDING_WINDOW // E.MEL_FRAMES_PER_BLOCK) * E.BLOCK_SAMPLES \
        + (n_embeddings - 1) * E.BLOCK_SAMPLES


def centred(clip: np.ndarray, w: int) -> np.ndarray:
    """The Rust FrontEnd::clip placement: centred in zeros (its middle if longer)."""
    out = np.zeros(w, np.int16)
    if len(clip) >= w:
        a = (len(clip) - w) // 2
        return clip[a:a + w].astype(np.int16)
    lead = (w - len(clip)) // 2
    out[lead:lead + len(clip)] = clip
    return out


def in_noise(rng, clip: np.ndarray, w: int, pools: A.Pools) -> np.ndarray:
    """A 1 s augmented clip inside a window of background at a level near the clip's own."""
    bg = A.background(rng, pools, n=w, babble_ok=False)
    level = 10 ** (rng.uniform(-75, -35) / 20)
    bg = bg * (level / (np.sqrt(np.mean(bg ** 2)) + 1e-9))
    y = bg.copy()
    # The word's second ends somewhere in the last 60 % of the window (where the detector sees it).
    end = int(rng.integers(int(w * 0.55), w + 1))
    start = max(0, end - len(clip))
    y[start:end] += clip[len(clip) - (end - start):].astype(np.float32) / 32768.0
    return np.round(np.clip(y, -1, 1) * 32767).astype(np.int16)


def _decode(path: str) -> np.ndarray | None:
    """Any of AUDIO_EXT -> 16 kHz int16 mono (sox for .gsm/.mp3, soundfile otherwise)."""
    import subprocess  # noqa: PLC0415

    import soundfile as sf  # noqa: PLC0415
    try:
        if path.endswith((".gsm", ".mp3")):
            raw = subprocess.run(["sox", path, "-r", "16000", "-c", "1", "-t", "raw", "-e", "signed",
                                  "-b", "16", "-"], check=True, capture_output=True).stdout
            return np.frombuffer(raw, "<i2").copy()
        x, sr = sf.read(path, dtype="float32", always_2d=True)
        return np.round(np.clip(synth.to_16k(x.mean(axis=1), sr), -1, 1) * 32767).astype(np.int16)
    except Exception:  # a damaged file is skipped, not fatal
        return None


def real_negative_files() -> dict[str, list[str]]:
    """{source: [files]} of every installed real-speech negative."""
    out: dict[str, list[str]] = {}
    for pkg, d in REAL_NEGATIVE_DIRS:
        files = sorted(f for f in glob.glob(str(ASTERISK_ROOT / d / "**" / "*"), recursive=True)
                       if f.endswith(AUDIO_EXT))
        if files:
            out[f"{pkg}:{d}"] = files
    for lang in sorted(p.name for p in KLETTRES_ROOT.glob("*") if p.is_dir()):
        files = sorted(f for f in glob.glob(str(KLETTRES_ROOT / lang / "**" / "*.ogg"), recursive=True))
        if files:
            out[f"klettres-data:{lang}"] = files
    return out


def load_real_negatives(cache: Path, workers: int = 2, log=print) -> dict[str, np.ndarray]:
    """{source/file: int16 16 kHz} of the real-speech negatives, decoded once and cached
    (`<cache>/real-negatives-<hash>.npz`, keyed by the file list)."""
    files = real_negative_files()
    key = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:12]
    dst = cache / f"real-negatives-{key}.npz"
    if dst.exists():
        with np.load(dst) as z:
            return {k: z[k] for k in z.files}
    names = [(src, f) for src, fs in files.items() for f in fs]
    with Pool(workers) as p:
        audio = p.map(_decode, [f for _, f in names], chunksize=16)
    out = {}
    for (src, f), a in zip(names, audio):
        if a is not None and len(a) >= 4000 and np.abs(a).max() > 300:
            out[f"{src}/{Path(f).name}"] = a
    for src, fs in files.items():
        kept = [k for k in out if k.startswith(src + "/")]
        log(f"real negatives: {src}: {len(fs)} files, {len(kept)} kept, "
            f"{sum(len(out[k]) for k in kept) / 16000 / 60:.1f} min")
    tmp = dst.with_suffix(".tmp.npz")
    np.savez(tmp, **out)
    tmp.replace(dst)
    return out


_FE = None


def _embed(x: np.ndarray) -> np.ndarray:
    global _FE
    if _FE is None:
        _FE = E.SpeechEmbedding()
    return _FE.stream_embeddings(x.astype(np.float32))


def embed_all(windows: list[np.ndarray], workers: int) -> np.ndarray:
    if workers <= 1:
        return np.stack([_embed(w) for w in windows])
    with Pool(workers) as p:
        return np.stack(p.map(_embed, windows, chunksize=64))


def _embed_clip(args) -> np.ndarray:
    clip, w, n = args
    return _embed(centred(clip, w))[-n:]


def clip_embeddings(audio: np.ndarray, n: int, workers: int = 2, cache: Path | None = None,
                    log=print) -> np.ndarray:
    """[B, 16000] int16 clips -> [B, n, 96]: each clip centred in zeros in the window n
    embeddings read and streamed from the start, exactly as the Rust FrontEnd::clip does
    (`chatterbox evaluate`). With `cache`, the result is kept there by the clips' hash (the
    embedding models are pinned, so it depends on nothing else)."""
    dst = None
    if cache is not None:
        h = hashlib.sha256(np.ascontiguousarray(audio).tobytes()).hexdigest()[:16]
        dst = cache / f"embedding-clips-{h}-n{n}.npy"
        if dst.exists():
            return np.load(dst)
    w = window_samples(n)
    t = time.time()
    jobs = [(a, w, n) for a in audio]
    if workers <= 1 or len(jobs) < 64:
        out = [_embed_clip(j) for j in jobs]
    else:
        with Pool(workers) as p:
            out = p.map(_embed_clip, jobs, chunksize=32)
    x = np.stack(out).astype(np.float32) if out else np.zeros((0, n, E.EMBEDDING_DIM), np.float32)
    if dst is not None:
        tmp = dst.with_suffix(".tmp.npy")
        np.save(tmp, x)
        tmp.replace(dst)
        log(f"embeddings: {len(audio)} clips in {time.time() - t:.0f} s -> {dst.name}")
    return x


def running_words(rng, words: list[np.ndarray], w: int) -> np.ndarray:
    """A window of non-keywords said one after the other (gaps 0-250 ms), cut anywhere:
    what the listener hears while people talk."""
    parts, total = [], 0
    while total < w + 8000:
        c = words[int(rng.integers(len(words)))].astype(np.float32)
        g = np.zeros(int(rng.integers(0, 4000)), np.float32)
        parts += [c, g]
        total += len(c) + len(g)
    x = np.concatenate(parts)
    a = int(rng.integers(0, len(x) - w + 1))
    return x[a:a + w]


def _level(rng, x: np.ndarray, pools: A.Pools, w: int) -> np.ndarray:
    """Speech at -35..-3 dBFS peak over a background bed 5..35 dB below its RMS."""
    x = x.astype(np.float32) / 32768.0 if x.dtype == np.int16 else x
    x = x * (10 ** (rng.uniform(-35, -3) / 20) / (np.abs(x).max() + 1e-9))
    if pools.rirs and rng.random() < 0.3:
        x = A.reverberate(rng, x, pools.rirs)[:w]
    bg = A.background(rng, pools, n=w, babble_ok=False)
    rms = np.sqrt(np.mean(x ** 2)) + 1e-9
    bg = bg * (rms / (np.sqrt(np.mean(bg ** 2)) + 1e-9) * 10 ** (-rng.uniform(5, 35) / 20))
    return np.round(np.clip(x + bg, -1, 1) * 32767).astype(np.int16)


def augment_ending(rng, clip: np.ndarray, pools: A.Pools, w: int) -> np.ndarray:
    """augment_word's speed, room, colour, level and background, but with the word (the
    trimmed synthesized clip) ENDING 0-400 ms before the window's end: where the detector
    must already be sure, to fire soon after the word (latency)."""
    x = A._f(clip)
    if rng.random() < 0.5:
        x = A.perturb_speed(rng, x)
    if pools.rirs and rng.random() < 0.45:
        x = A.reverberate(rng, x, pools.rirs)[:len(x) + 1600]
    if rng.random() < 0.35:
        x = A.colour(rng, x)
    x = x[-min(len(x), w):]
    peak_db = rng.uniform(-30, -2)
    x = x * (10 ** (peak_db / 20) / (np.abs(x).max() + 1e-9))
    end = w - int(rng.uniform(0, 0.4) * C.SAMPLE_RATE)
    y = np.zeros(w, np.float32)
    a = max(0, end - len(x))
    y[a:end] = x[len(x) - (end - a):]
    nz = A.background(rng, pools, n=w, babble_ok=False)
    snr = rng.uniform(0, 30) if rng.random() < 0.15 else rng.uniform(5, 30)
    rms = np.sqrt(np.mean(x ** 2)) + 1e-9
    y = y + nz * (rms / ((np.sqrt(np.mean(nz ** 2)) + 1e-9) * 10 ** (snr / 20)))
    y = y + rng.standard_normal(w).astype(np.float32) * 10 ** (rng.uniform(-90, -65) / 20)
    return np.round(np.clip(y, -1, 1) * 32767).astype(np.int16)


def _build_extra(cache: Path, n: int, seed: int, workers: int, near_copies: int,
                 noise_windows: int, end_copies: int = 0, log=print) -> dict:
    """Windows added on top of the base set: more near-misses, steady noise, keywords
    ending near the window's end."""
    w = window_samples(n)
    rng = np.random.default_rng([seed, 12])
    settings = [s for s in synth.make_settings(DATA_SEED, scale=DATA_SCALE) if s.split == "train"]
    rooms = [r for _, r in sounds.split_rooms(sounds.load_named_rirs(cache, DATA_SEED, log))["train"]]
    bgs = list(sounds.split_backgrounds(sounds.load_backgrounds(cache, log))["train"].values())
    clips = list(synth.load_clips(cache, settings))
    near_clips = [(word, clip) for s, word, clip in clips
                  if word in C.NEAR_MISSES and word not in C.NOT_UNKNOWN
                  and word not in C.CONFUSERS]
    kw_clips = [(word, clip) for s, word, clip in clips if word in C.KEYWORDS]
    pools = A.Pools(rooms, bgs)
    label_of = {k: i for i, k in enumerate(C.LABELS)}
    windows, labels, kinds = [], [], []

    def add(win, lab, kind):
        windows.append(win)
        labels.append(lab)
        kinds.append(kind)

    # More of the near-misses (goat, top, nope, lift ... said by the training voices): the
    # synthetic non-keywords are where the stream false accepts come from.
    near = [c for _, c in near_clips]
    for _ in range(near_copies):
        for clip in near:
            aug = A.augment_word(rng, clip, pools)
            add(in_noise(rng, aug, w, pools) if rng.random() < 0.7 else centred(aug, w),
                label_of[C.UNKNOWN], "near-miss")
    # Steady noise over the whole window, as the streams have between words: white,
    # brown-ish or a training background recording at -60..-25 dBFS.
    for _ in range(noise_windows):
        k = rng.integers(3)
        if k == 0:
            x = rng.uniform(-1, 1, w)
        elif k == 1:
            from scipy.signal import lfilter  # noqa: PLC0415
            x = lfilter([1.0], [1.0, -0.98], rng.uniform(-1, 1, w))
        else:
            x = A.background(rng, pools, n=w, babble_ok=False)
        x = x * (10 ** (rng.uniform(-60, -25) / 20) / (np.sqrt(np.mean(x ** 2)) + 1e-9))
        add(np.round(np.clip(x, -1, 1) * 32767).astype(np.int16), label_of[C.SILENCE], "noise")
    for _ in range(end_copies):
        for word, clip in kw_clips:
            add(augment_ending(rng, clip, pools, w), label_of[word], "keyword-end")
    t = time.time()
    log(f"embeddings: extra: {len(windows)} windows ...")
    out = {"x_train": embed_all(windows, workers).astype(np.float32),
           "y_train": np.array(labels, np.int64), "kind_train": np.array(kinds)}
    log(f"embeddings: extra: {time.time() - t:.0f} s")
    return out


def build(cache: Path, n: int, seed: int, workers: int, kw_copies: int, real_windows: int,
          running_windows: int, near_copies: int = 0, noise_windows: int = 0,
          end_copies: int = 0, log=print):
    """Training windows (and their embeddings, cached) from the protocol's TRAINING
    settings only. Validation and test are the protocol's own clips (kws.protocol), not
    built here. Returns ({x_train, y_train, kind_train}, cache file). `near_copies` and
    `noise_windows` add windows on top of the base set (its own cache file, so the base's
    embeddings are reused)."""
    real_key = hashlib.sha256(json.dumps(real_negative_files(), sort_keys=True).encode()
                              ).hexdigest()[:8]
    desc = (f"v3 n={n} seed={seed} data={DATA_SEED}/{DATA_SCALE} kw={kw_copies} "
            f"real={real_windows}/{real_key} running={running_windows}")
    if near_copies or noise_windows or end_copies:
        # Each addition is cached on top of the one before: base, + near/noise, + end.
        if end_copies:
            base, _ = build(cache, n, seed, workers, kw_copies, real_windows, running_windows,
                            near_copies, noise_windows, log=log)
        else:
            base, _ = build(cache, n, seed, workers, kw_copies, real_windows, running_windows,
                            log=log)
        suffix = f" near={near_copies} noise={noise_windows}"
        kinds = ("near-miss", "noise")
        if end_copies:
            suffix += f" end={end_copies}"
            kinds = ("keyword-end",)
            near_copies = noise_windows = 0  # already in `base`
        desc += suffix
        key = hashlib.sha256(desc.encode()).hexdigest()[:12]
        dst = cache / f"embedding-{key}.npz"
        if dst.exists():
            log(f"embeddings: cached {dst} ({desc})")
            with np.load(dst) as z:
                return {k: z[k] for k in z.files}, dst
        # The additions do not depend on the real speech: reuse them from a v2 cache.
        v2 = (f"v2 n={n} seed={seed} data={DATA_SEED}/{DATA_SCALE} kw={kw_copies} "
              f"real={real_windows} running={running_windows}{suffix}")
        old = cache / f"embedding-{hashlib.sha256(v2.encode()).hexdigest()[:12]}.npz"
        if old.exists():
            with np.load(old) as z:
                keep = np.isin(z["kind_train"], kinds)
                extra = {k: z[k][keep] for k in z.files}
            log(f"embeddings: {', '.join(kinds)} from {old}")
        else:
            extra = _build_extra(cache, n, seed, workers, near_copies, noise_windows,
                                 end_copies, log)
        out = {k: np.concatenate([base[k], extra[k]]) for k in base}
        tmp = dst.with_suffix(".tmp.npz")
        np.savez(tmp, **out)
        tmp.replace(dst)
        return out, dst
    key = hashlib.sha256(desc.encode()).hexdigest()[:12]
    dst = cache / f"embedding-{key}.npz"
    if dst.exists():
        log(f"embeddings: cached {dst} ({desc})")
        with np.load(dst) as z:
            return {k: z[k] for k in z.files}, dst
    syn = _build_synthetic(cache, n, seed, workers, kw_copies, real_windows, running_windows, log)
    real = _build_real(cache, n, seed, workers, real_windows, log)
    out = {k: np.concatenate([syn[k], real[k]]) for k in syn}
    tmp = dst.with_suffix(".tmp.npz")
    np.savez(tmp, **out)
    tmp.replace(dst)
    return out, dst


def _build_real(cache: Path, n: int, seed: int, workers: int, real_windows: int, log=print):
    """Windows of real recorded non-English speech (unknown) at stream-like levels over
    training backgrounds."""
    w = window_samples(n)
    rng = np.random.default_rng([seed, 13])
    rooms = [r for _, r in sounds.split_rooms(sounds.load_named_rirs(cache, DATA_SEED, log))["train"]]
    bgs = list(sounds.split_backgrounds(sounds.load_backgrounds(cache, log))["train"].values())
    pools = A.Pools(rooms, bgs)
    real = load_real_negatives(cache, workers, log)
    names = sorted(real)
    windows = []
    for _ in range(real_windows):
        x = real[names[int(rng.integers(len(names)))]]
        win = np.zeros(w, np.int16)
        if len(x) > w:
            a = int(rng.integers(0, len(x) - w + 1))
            win[:] = x[a:a + w]
        else:  # a short prompt or letter lands anywhere in the window
            a = int(rng.integers(0, w - len(x) + 1))
            win[a:a + len(x)] = x
        windows.append(_level(rng, win, pools, w))
    t = time.time()
    log(f"embeddings: real speech: {len(windows)} windows ...")
    out = {"x_train": embed_all(windows, workers).astype(np.float32),
           "y_train": np.full(len(windows), C.LABELS.index(C.UNKNOWN), np.int64),
           "kind_train": np.array(["real"] * len(windows))}
    log(f"embeddings: real speech: {time.time() - t:.0f} s")
    return out


def _build_synthetic(cache: Path, n: int, seed: int, workers: int, kw_copies: int,
                     real_windows: int, running_windows: int, log=print):
    """The synthesized part of the base set: keywords, non-keywords, silence, running
    speech. The first version of this cache (v2) held the real speech too, drawn after
    everything else from the same generator, so its non-real rows are exactly this part."""
    v2 = (f"v2 n={n} seed={seed} data={DATA_SEED}/{DATA_SCALE} kw={kw_copies} "
          f"real={real_windows} running={running_windows}")
    old = cache / f"embedding-{hashlib.sha256(v2.encode()).hexdigest()[:12]}.npz"
    if old.exists():
        with np.load(old) as z:
            keep = z["kind_train"] != "real"
            log(f"embeddings: synthetic part from {old}")
            return {k: z[k][keep] for k in z.files}
    desc = (f"v3syn n={n} seed={seed} data={DATA_SEED}/{DATA_SCALE} kw={kw_copies} "
            f"running={running_windows}")
    dst = cache / f"embedding-{hashlib.sha256(desc.encode()).hexdigest()[:12]}.npz"
    if dst.exists():
        with np.load(dst) as z:
            return {k: z[k] for k in z.files}
    w = window_samples(n)
    rng = np.random.default_rng([seed, 11])
    settings = [s for s in synth.make_settings(DATA_SEED, scale=DATA_SCALE) if s.split == "train"]
    rooms = [r for _, r in sounds.split_rooms(sounds.load_named_rirs(cache, DATA_SEED, log))["train"]]
    bgs = list(sounds.split_backgrounds(sounds.load_backgrounds(cache, log))["train"].values())
    label_of = {k: i for i, k in enumerate(C.LABELS)}
    # Never `unknown`: homophones / words holding a keyword (NOT_UNKNOWN), and the protocol's
    # confuser words (config.CONFUSERS: "never trained on", they are a false-accept test).
    excluded = set(C.NOT_UNKNOWN) | set(C.CONFUSERS)
    kw_clips, unk_clips = [], []
    for s, word, clip in synth.load_clips(cache, settings):
        assert C.split_of(s.family) == "train"
        if word in C.KEYWORDS:
            kw_clips.append((label_of[word], s.family, clip))
        elif word not in excluded:
            unk_clips.append((label_of[C.UNKNOWN], s.family, clip))
    if not kw_clips:
        raise SystemExit(f"no training clips under {cache}/clips: run `python -m kws.protocol "
                         "models` (or scripts/train_kws.py) once to synthesize them")
    pools = A.Pools(rooms, bgs, [c for _, _, c in unk_clips])
    windows, labels, kinds = [], [], []

    def add(win, lab, kind):
        windows.append(win)
        labels.append(lab)
        kinds.append(kind)

    for lab, fam, clip in kw_clips:
        for _ in range(kw_copies):
            aug = A.augment_word(rng, clip, pools)
            add(in_noise(rng, aug, w, pools) if rng.random() < 0.7 else centred(aug, w), lab,
                "keyword")
    for lab, fam, clip in unk_clips:
        if rng.random() < 0.7:
            aug = A.augment_word(rng, clip, pools)
            add(in_noise(rng, aug, w, pools) if rng.random() < 0.7 else centred(aug, w), lab,
                "word")
    for _ in range(max(40, len(kw_clips) * kw_copies // 8)):
        s = A.make_silence(rng, pools)
        add(centred(s, w) if rng.random() < 0.5 else in_noise(rng, np.zeros(0, np.int16), w, pools),
            label_of[C.SILENCE], "silence")
    words = [c for _, _, c in unk_clips]
    for _ in range(running_windows):
        add(_level(rng, running_words(rng, words, w), pools, w), label_of[C.UNKNOWN], "running")
    t = time.time()
    log(f"embeddings: train: {len(windows)} windows of {w} samples "
        f"({np.bincount(labels, minlength=len(C.LABELS)).tolist()}) ...")
    out = {"x_train": embed_all(windows, workers).astype(np.float32),
           "y_train": np.array(labels, np.int64), "kind_train": np.array(kinds)}
    log(f"embeddings: train: {time.time() - t:.0f} s")
    tmp = dst.with_suffix(".tmp.npz")
    np.savez(tmp, **out)
    tmp.replace(dst)
    return out


def make_head(n: int, seed: int, arch: str, shared: int = 64, hidden: int = 64):
    """Dense layers with ReLU only (the on-device trainer retrains exactly these):
    `shared`: one 96->`shared` layer applied to each of the N embeddings, flattened, then
    (N*shared)->`hidden`->10 (the default 96->64, 1024->64->10 has 72 k parameters).
    `mlp`: the issue's trial, flatten then (N*96)->256->128->10."""
    import keras  # noqa: PLC0415
    keras.utils.set_random_seed(seed)
    inp = keras.Input((n, E.EMBEDDING_DIM))
    if arch == "shared":
        x = keras.layers.Dense(shared, activation="relu")(inp)  # shared across the N embeddings
        x = keras.layers.Flatten()(x)
        x = keras.layers.Dropout(0.3)(x)
        x = keras.layers.Dense(hidden, activation="relu")(x)
    else:
        x = keras.layers.Flatten()(inp)
        x = keras.layers.Dense(256, activation="relu")(x)
        x = keras.layers.Dropout(0.3)(x)
        x = keras.layers.Dense(128, activation="relu")(x)
    x = keras.layers.Dropout(0.2)(x)
    out = keras.layers.Dense(len(C.LABELS), activation="softmax")(x)
    m = keras.Model(inp, out)
    m.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
    return m


def export(model, path: Path, n: int, weights_int8: bool) -> None:
    """A SavedModel with a fixed [1, n, 96] signature (the converter then freezes the variables,
    as scripts/kws/train.py does), converted to .tflite; `weights_int8` stores the weights as
    int8 (dynamic-range quantization: float input and output, a quarter of the bytes)."""
    import tempfile  # noqa: PLC0415

    import keras  # noqa: PLC0415
    import tensorflow as tf  # noqa: PLC0415
    with tempfile.TemporaryDirectory() as tmp:
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint("serve", lambda x: model(x, training=False),
                             input_signature=[tf.TensorSpec([1, n, E.EMBEDDING_DIM], tf.float32)])
        archive.write_out(tmp, verbose=False)
        conv = tf.lite.TFLiteConverter.from_saved_model(tmp)
        if weights_int8:
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
        path.write_bytes(conv.convert())


def dense_weights(head: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (kernel [in, out], bias) of every Dense layer of a float head.tflite, in order:
    the FULLY_CONNECTED ops' constant inputs. `--finetune` starts from these, so the model
    folder needs no separate weights file."""
    from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415
    it = Interpreter(model_path=str(head), num_threads=1)
    it.allocate_tensors()
    out = []
    for op in it._get_ops_details():
        if op["op_name"] == "FULLY_CONNECTED":
            _, w, b = (int(i) for i in op["inputs"])
            kernel = it.get_tensor(w).T.copy()
            # An all-zero bias is dropped by the converter (input index -1).
            bias = it.get_tensor(b).copy() if b >= 0 else np.zeros(kernel.shape[1], kernel.dtype)
            out.append((kernel, bias))
    if not out or any(k.dtype != np.float32 for k, _ in out):
        raise ValueError(f"{head}: no float32 Dense layers found (an int8-weight head cannot "
                         "be fine-tuned; retrain it with kws.train_head)")
    return out


def load_dense_weights(model, head: Path) -> None:
    """Sets the Dense layers of a make_head model from a head.tflite (same architecture)."""
    dense = [l for l in model.layers if l.__class__.__name__ == "Dense"]
    weights = dense_weights(head)
    if [tuple(d.kernel.shape) for d in dense] != [k.shape for k, _ in weights]:
        raise ValueError(f"{head}: its Dense layers {[k.shape for k, _ in weights]} differ from "
                         f"the architecture in metrics.json {[tuple(d.kernel.shape) for d in dense]}")
    for d, (k, b) in zip(dense, weights):
        d.set_weights([k, b])


def protocol_clips(cache: Path, n: int, workers: int, log=print) -> dict[str, dict]:
    """The protocol's clip sets (kws.protocol: val, test, test_clean; seed 1234, scale 2)
    as embeddings {split: {x, y, fam}}: the same 1 s clips the STFT model is measured on."""
    from . import dataset  # noqa: PLC0415
    _, path, _ = dataset.from_metrics_with_path(
        cache, {"seed": DATA_SEED, "scale": DATA_SCALE, "aug_copies": 3}, jobs=workers, log=log)
    out = {}
    for split in ("val", "test", "test_clean"):
        ev = dataset.eval_audio(path, split)
        out[split] = {"x": clip_embeddings(ev["audio"], n, workers, cache, log), "y": ev["y"],
                      "fam": ev["fam"]}
    out["dataset"] = path.name
    return out


def protocol_figures(head: Path, n: int, clips: dict[str, dict]) -> dict:
    """kws.protocol's clip figures of a head, through the protocol's own embedding scorer."""
    from . import protocol  # noqa: PLC0415
    scorer = protocol.EmbeddingTfliteScorer(head.parent, head.name, n)
    out = {}
    for split in ("val", "test", "test_clean"):
        c = clips[split]
        m = protocol.clip_metrics(scorer.head_probs(c["x"]), c["y"], c["fam"])
        out[split] = {k: m[k] for k in ("accuracy", "keyword_accuracy", "unknown_as_keyword", "n")}
        out[split]["per_family"] = {f: round(v[0], 4) for f, v in m["per_family"].items()}
        out[split]["per_family_keyword"] = {f: round(v[0], 4) for f, v in
                                            m["per_family_keyword"].items()}
    return out


def _p(x) -> str:
    return "—" if x is None else f"{x * 100:.1f} %"


def model_card(m: dict) -> str:
    """README.md of the model folder, from metrics.json only (so every figure is measured)."""
    c = m["protocol_clips"]
    fam = "\n".join(f"| {k} | {_p(v)} |" for k, v in c["test"]["per_family_keyword"].items())
    head = m["head"]
    shape = (f"a 96->{head['shared']} Dense+ReLU layer shared by the {m['embeddings']} "
             f"embeddings, flattened, {m['embeddings'] * head['shared']}->{head['hidden']} "
             f"Dense+ReLU, {head['hidden']}->10 Dense+softmax"
             if m["arch"] == "shared" else
             f"flatten, {m['embeddings'] * 96}->256->128 Dense+ReLU, 128->10 Dense+softmax")
    side = ""
    st = m.get("streams")
    if st:
        rows = "\n".join(
            f"| {r['figure']} | {r['stft']} | {r['head']} |" for r in st["rows"])
        cands = ""
        if st.get("candidates"):
            cands = ("\n## Candidates (chosen on validation only)\n"
                     "Every head trained in this search, with the same data seed; validation "
                     "stream figures at average 250 ms, threshold 0.95, 2 results: hit rate / "
                     "false accepts per hour non-keyword / confusers / median latency ms "
                     "(— = not streamed).\n\n"
                     "| run | `python -m kws.train_head` flags | validation clips | validation streams |\n"
                     "|---|---|---|---|\n"
                     + "\n".join(f"| {c['run']} | {c['flags']} | {c['val_clips']} | "
                                 f"{c['val_stream_095']} |" for c in st["candidates"]) + "\n")
        cmds = "\n".join(f"- {k}: `{v}`" for k, v in st.get("commands", {}).items())
        if cmds:
            cands += "\nCommands:\n" + cmds + "\n"
        side = f"""
## Side by side under the evaluation protocol (issue 15)
{st['intro']}

| figure | STFT model (`models/`) | this head |
|---|---|---|
{rows}

{st['outro']}
{cands}"""
    return f"""# chatterbox keyword head on the speech-embedding front end

Written by `scripts/kws/train_head.py` from `metrics.json`; every figure below is measured on
voice families, rooms, backgrounds and real speech the head never heard (the protocol's split,
`scripts/kws/config.py`; nothing was chosen on the test split).

## Files
- `head.tflite`: the head, {'int8 weights, float input and output' if m['weights_int8'] else 'float32'}, {m['head_bytes']} bytes, {head['parameters']} parameters:
  {shape} (Dropout in training only). Input `[1, {m['embeddings']}, 96]` (the last
  {m['embeddings']} embeddings, oldest first), output softmax over `labels.txt`.
- `melspectrogram.tflite`, `embedding_model.tflite`: openWakeWord's frozen feature models
  (pyopen-wakeword 1.1.0, Apache-2.0; provenance and licence in `NOTICE.md`).
- `kws.toml`: the contract (`front_end = "embedding"`, N, every file pinned by sha256).
  All model files together: {m['model_files_bytes']} bytes.

## Front end
16 kHz audio, cut into fixed blocks of 1 280 new + 480 earlier samples, one mel call per block
(8 frames of 32 bands, scaled x/10 + 2), one 96-value embedding per block from the last 76
frames (`scripts/kws/embedding.py`, `src/kws/embedding.rs`, bit-exact with each other on x86_64).

## Data
Training: the protocol's training voice settings only ({m['data']['settings']}; seed
{m['data']['seed']}, scale {m['data']['scale']}), training rooms and background recordings;
each keyword {m['data']['kw_copies']}x augmented (speed, room, colour, level, background) in
{m['embeddings']} embeddings' worth of audio (in background noise, or centred in zeros), plus
{m['data'].get('end_copies', 0)} more copies ending 0-400 ms before the window's end (where the detector
must already be sure); {m['data'].get('noise', 0)} extra windows of steady noise as `silence`.
`unknown`: the training voices' non-keywords (never the confuser words nor the homophones:
config.CONFUSERS, NOT_UNKNOWN; near-misses {1 + m['data'].get('near_copies', 0)}x),
{m['data']['running']} windows of running non-keyword speech
and {m['data']['real']} windows of real recorded speech, {m['data']['real_minutes']:.0f} min from
{len(m['data']['real_sources'])} sources ({', '.join(sorted({s.split(':')[0] for s in m['data']['real_sources']}))});
the English asterisk prompts stay out (the held-out real-speech test), and so do the Spanish
ones of asterisk-core-sounds-es, spoken by the same Allison.
Examples: {m['examples']['train']} training windows ({m['examples']['by_kind']}).
The epoch is chosen on the protocol's validation clips.

## Results: the protocol's clips (`python -m kws.protocol`, 10 classes, noisy)
| split | 10-class | keyword-only | unknown taken for a keyword | clips |
|---|---|---|---|---|
| validation | {_p(c['val']['accuracy'])} | {_p(c['val']['keyword_accuracy'])} | {_p(c['val']['unknown_as_keyword'])} | {c['val']['n']} |
| **test** | **{_p(c['test']['accuracy'])}** | **{_p(c['test']['keyword_accuracy'])}** | {_p(c['test']['unknown_as_keyword'])} | {c['test']['n']} |
| test, clean | {_p(c['test_clean']['accuracy'])} | {_p(c['test_clean']['keyword_accuracy'])} | {_p(c['test_clean']['unknown_as_keyword'])} | {c['test_clean']['n']} |

Keyword-only accuracy by test family:

| test family | keywords right |
|---|---|
{fam}

Cost of training: embeddings {m['embedding_seconds']:.0f} s (computed once, cached), head {m['train_seconds']:.0f} s.
Command: `{m['command']}`
{side}"""


def parameters(model) -> int:
    return int(sum(int(np.prod(w.shape)) for w in model.weights))


def write_card(folder: Path, streams: Path | None = None) -> None:
    """Rewrites README.md from metrics.json; `streams` (a JSON file: intro, rows of
    {figure, stft, head}, outro, commands) first goes into metrics.json as "streams": the
    Rust bench's figures (cargo bench --bench kws_stream_eval), which this script cannot
    measure itself."""
    m = json.loads((folder / "metrics.json").read_text())
    if streams is not None:
        m["streams"] = json.loads(streams.read_text())
        (folder / "metrics.json").write_text(json.dumps(m, indent=1))
    (folder / "README.md").write_text(model_card(m))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--cache", type=Path, default=C.default_cache())
    p.add_argument("--embeddings", type=int, default=16, help="N, embeddings the head reads")
    p.add_argument("--seed", type=int, default=1, help="augmentation and initialisation seed")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--kw-copies", type=int, default=2, help="augmented copies of each keyword")
    p.add_argument("--real", type=int, default=8000, help="windows of real recorded speech (unknown)")
    p.add_argument("--running", type=int, default=3000, help="windows of running synthetic non-keywords")
    p.add_argument("--near-copies", type=int, default=0,
                   help="extra augmented copies of the training voices' near-miss words (unknown)")
    p.add_argument("--end-copies", type=int, default=0,
                   help="extra copies of each keyword ending 0-400 ms before the window's end")
    p.add_argument("--noise", type=int, default=0,
                   help="extra windows of steady noise (silence), as between words in a stream")
    p.add_argument("--arch", choices=["shared", "mlp"], default="shared")
    p.add_argument("--shared", type=int, default=64, help="units of the shared per-embedding layer")
    p.add_argument("--hidden", type=int, default=64, help="units of the layer after it")
    p.add_argument("--unknown-weight", type=float, default=1.0,
                   help="loss weight of unknown/silence examples (class weighting)")
    p.add_argument("--weights-int8", action="store_true", help="int8 weights (dynamic range)")
    p.add_argument("--card", action="store_true",
                   help="only rewrite --out/README.md from --out/metrics.json")
    p.add_argument("--streams", type=Path, default=None,
                   help="with --card: the Rust stream figures (JSON) to put in metrics.json")
    a = p.parse_args(argv)
    if a.card:
        write_card(a.out, a.streams)
        return 0
    t0 = time.time()
    d, cache_file = build(a.cache, a.embeddings, a.seed, a.workers, a.kw_copies, a.real, a.running,
                          a.near_copies, a.noise, a.end_copies)
    clips = protocol_clips(a.cache, a.embeddings, a.workers)
    t_embed = time.time() - t0
    import keras  # noqa: PLC0415
    model = make_head(a.embeddings, a.seed, a.arch, a.shared, a.hidden)
    ckpt = a.cache / f"head-best-{time.time_ns()}.weights.h5"
    best = keras.callbacks.ModelCheckpoint(str(ckpt), monitor="val_accuracy",
                                           save_best_only=True, save_weights_only=True)
    y = d["y_train"]
    sw = np.where(y < len(C.KEYWORDS), 1.0, a.unknown_weight).astype(np.float32)
    t1 = time.time()
    hist = model.fit(d["x_train"], y, sample_weight=sw,
                     validation_data=(clips["val"]["x"], clips["val"]["y"]),
                     epochs=a.epochs, batch_size=64, callbacks=[best], verbose=2)
    model.load_weights(str(ckpt))
    ckpt.unlink()
    t_train = time.time() - t1
    a.out.mkdir(parents=True, exist_ok=True)
    export(model, a.out / "head.tflite", a.embeddings, a.weights_int8)
    (a.out / "labels.txt").write_text("\n".join(C.LABELS) + "\n")
    for f in (E.MEL_FILE, E.EMBEDDING_FILE):
        if (a.out / f).resolve() != (E.MODELS_DIR / f).resolve():
            shutil.copy(E.MODELS_DIR / f, a.out / f)
    for f in ("NOTICE.md", "LICENSE-openwakeword.txt"):
        if (E.MODELS_DIR / f).is_file() and (a.out / f).resolve() != (E.MODELS_DIR / f).resolve():
            shutil.copy(E.MODELS_DIR / f, a.out / f)
    (a.out / "kws.toml").write_text(
        "# Written by scripts/kws/train_head.py; read by the Rust runtime (unknown keys rejected).\n"
        'front_end = "embedding"\n\n[embedding]\n'
        f'mel_file = "{E.MEL_FILE}"\nembedding_file = "{E.EMBEDDING_FILE}"\n'
        f"embeddings = {a.embeddings}\n\n[model]\n"
        'file = "head.tflite"\nlabels = "labels.txt"\noutput = "softmax"\n')
    pins = contract.pin(a.out / "kws.toml")
    figures = protocol_figures(a.out / "head.tflite", a.embeddings, clips)
    real = load_real_negatives(a.cache, a.workers)
    kinds, counts = np.unique(d["kind_train"], return_counts=True)
    metrics = {
        "front_end": "embedding", "embeddings": a.embeddings, "seed": a.seed, "arch": a.arch,
        "head": {"shared": a.shared, "hidden": a.hidden, "parameters": parameters(model),
                 "layers": [(l.__class__.__name__, getattr(l, "units", None))
                            for l in model.layers if l.__class__.__name__ == "Dense"]},
        "weights_int8": a.weights_int8, "unknown_weight": a.unknown_weight,
        "data": {"seed": DATA_SEED, "scale": DATA_SCALE, "kw_copies": a.kw_copies,
                 "running": a.running, "real": a.real, "near_copies": a.near_copies,
                 "noise": a.noise, "end_copies": a.end_copies,
                 "settings": f"{len([s for s in synth.make_settings(DATA_SEED, scale=DATA_SCALE) if s.split == 'train'])} training voice settings",
                 "real_sources": sorted({k.split('/')[0] for k in real}),
                 "real_minutes": sum(len(v) for v in real.values()) / 16000 / 60},
        "examples": {"train": int(len(y)),
                     "by_kind": ", ".join(f"{k} {c}" for k, c in zip(kinds, counts))},
        "best_val_accuracy_keras": float(max(hist.history["val_accuracy"])),
        "best_epoch": int(np.argmax(hist.history["val_accuracy"])) + 1,
        "protocol_clips": figures,
        "val_accuracy": figures["val"]["accuracy"],
        "test_accuracy_noisy": figures["test"]["accuracy"],
        "head_bytes": (a.out / "head.tflite").stat().st_size,
        "model_files_bytes": sum((a.out / f).stat().st_size for f in pins),
        "pins": pins,
        "embedding_seconds": round(t_embed, 1), "train_seconds": round(t_train, 1),
        "cache": str(cache_file), "protocol_dataset": clips["dataset"],
        "command": "python -m kws.train_head " + " ".join(argv if argv is not None else
                                                          __import__("sys").argv[1:]),
    }
    (a.out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    (a.out / "README.md").write_text(model_card(metrics))
    print(json.dumps({k: v for k, v in metrics.items() if k not in ("pins", "protocol_clips")},
                     indent=1))
    print(f"protocol clips: val {_p(figures['val']['accuracy'])}, test "
          f"{_p(figures['test']['accuracy'])}, test clean {_p(figures['test_clean']['accuracy'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
