"""Writes tests/fixtures/adapt_owner/: a synthetic "owner" (SVOX Pico en-GB, a held-out test
voice) saying every keyword 3 times, in the layout `chatterbox enroll` writes (every third take
in testing_list.txt), for the end-to-end test of `chatterbox adapt` (tests/adapt_cli.rs); and
tests/fixtures/adapt_owner_other/unknown/: the same voice saying config.ENROLL_OTHER_WORDS once
each (what `enroll` asks for after the keywords), with its own testing_list.txt.

    ~/.cache/chatterbox/venv-train/bin/python -m kws.adapt_fixtures      (from scripts/)

Takes are cut to 0.8 s (the word is centred by adapt_trial.record_takes' placement) to keep the
committed files small.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from .adapt_trial import record_other_takes, record_takes

OUT = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "adapt_owner"
OUT_OTHER = OUT.with_name("adapt_owner_other")


def _cut(src: Path, dst: Path) -> None:
    """The 0.8 s of `src` with the most energy."""
    x, sr = sf.read(src, dtype="int16")
    energy = np.convolve(x.astype(np.float32) ** 2, np.ones(12800), "valid")
    a = int(np.argmax(energy))
    dst.parent.mkdir(parents=True, exist_ok=True)
    sf.write(dst, x[a:a + 12800], sr, subtype="PCM_16")


def write_other() -> None:
    with tempfile.TemporaryDirectory() as td:
        root = Path(td) / "takes"
        root.mkdir()
        record_other_takes(root, "pico-en-gb", seed=77)
        shutil.rmtree(OUT_OTHER, ignore_errors=True)
        OUT_OTHER.mkdir(parents=True)
        shutil.copy(root / "testing_list.txt", OUT_OTHER / "testing_list.txt")
        for wav in sorted(root.glob("*/*.wav")):
            _cut(wav, OUT_OTHER / wav.parent.name / wav.name)


def main() -> int:
    with tempfile.TemporaryDirectory() as td:
        root = Path(td) / "takes"
        record_takes(root, "pico-en-gb", 3, seed=77)
        shutil.rmtree(OUT, ignore_errors=True)
        OUT.mkdir(parents=True)
        shutil.copy(root / "testing_list.txt", OUT / "testing_list.txt")
        for wav in sorted(root.glob("*/*.wav")):
            _cut(wav, OUT / wav.parent.name / wav.name)
    write_other()
    print(f"wrote {OUT} and {OUT_OTHER}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
