"""Exports the held-out material for the Rust streaming evaluation (benches/kws_stream_eval.rs).

The bench mixes its streams itself (deterministically, from a seed); this only copies the raw
ingredients out of the model pipeline's cache into plain files Rust can read without numpy:

- keywords: every keyword the held-out test families said (clean, unpadded synthesis);
- words: the same families' non-keywords (near-misses such as goat/nope/top and everyday
  words), minus the few the training itself does not count as "unknown" because they sound
  like a keyword (write/right, going/go, ...);
- asterisk: the real recorded prompts whose transcript has no keyword;
- backgrounds: the real background recordings reserved for testing (one in five).

Each set is `<name>.s16` (16 kHz mono int16 little-endian, clips back to back) and
`<name>.tsv` (label, family, offset, length in samples). Nothing here is committed: the
output goes under target/.

Usage: python -m scripts.kws.export_stream_eval [--cache DIR] [--out target/kws-eval]
"""

from __future__ import annotations

import argparse
import glob
from pathlib import Path

import numpy as np

from scripts.kws import config as C
from scripts.kws import sounds


def write_set(out: Path, name: str, items: list[tuple[str, str, np.ndarray]]) -> None:
    offset = 0
    with open(out / f"{name}.s16", "wb") as raw, open(out / f"{name}.tsv", "w") as index:
        for label, family, audio in items:
            a = np.asarray(audio, dtype="<i2")
            raw.write(a.tobytes())
            index.write(f"{label}\t{family}\t{offset}\t{len(a)}\n")
            offset += len(a)
    print(f"{name}: {len(items)} clips, {offset / C.SAMPLE_RATE / 60:.1f} min")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=C.default_cache())
    ap.add_argument("--out", type=Path, default=Path("target/kws-eval"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    keywords, words = [], []
    for f in sorted(glob.glob(str(args.cache / "clips" / "*.npz"))):
        family = Path(f).name.split("__")[0]
        if C.split_of(family) != "test":
            continue
        with np.load(f) as z:
            for word in z.files:
                if word in C.KEYWORDS:
                    keywords.append((word, family, z[word]))
                elif word not in C.NOT_UNKNOWN:
                    words.append((word, family, z[word]))
    if not keywords:
        raise SystemExit(f"no held-out clips under {args.cache}/clips; run scripts/train_kws.py first")
    write_set(args.out, "keywords", keywords)
    write_set(args.out, "words", words)

    speech = sounds.load_asterisk(args.cache)
    write_set(args.out, "asterisk", [(k, "asterisk", v) for k, v in sorted(speech.items())])

    _, test_bg = sounds.split_backgrounds(sounds.load_backgrounds(args.cache))
    write_set(args.out, "backgrounds", [(k, "gcompris", v) for k, v in sorted(test_bg.items())])


if __name__ == "__main__":
    main()
