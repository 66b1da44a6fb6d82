"""Exports the validation and test material for the Rust streaming evaluation
(benches/kws_stream_eval.rs: `--tune` reads validation/, `--report` reads test/).

The bench mixes its streams itself (deterministically, from a seed); this only copies the raw
ingredients out of the model pipeline's cache into plain files Rust can read without numpy.
For each split (validation/ and test/), only that split's material (config.py, sounds.py):

- keywords: every keyword the split's voice families said (clean, unpadded synthesis);
- words: the same families' non-keywords (near-misses such as goat/nope/top and everyday
  words), minus the confusers below;
- confusers: the same voices saying homophones of a keyword and words containing one
  (config.CONFUSERS: write, know, going, ago, yesterday ...), a false-accept stream of
  their own;
- asterisk: the split's half of the real recorded prompts whose transcript has no keyword;
- backgrounds: the split's real background recordings.

Nothing depends on the model's front end: these are audio clips. Each set is
`<split>/<name>.s16` (16 kHz mono int16 little-endian, clips back to back) and
`<split>/<name>.tsv` (label, family, offset, length in samples). Nothing here is committed:
the output goes under target/.

Usage: python -m scripts.kws.export_stream_eval [--cache DIR] [--out target/kws-eval]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from scripts.kws import config as C
from scripts.kws import sounds, synth


def write_set(out: Path, name: str, items: list[tuple[str, str, np.ndarray]]) -> None:
    offset = 0
    with open(out / f"{name}.s16", "wb") as raw, open(out / f"{name}.tsv", "w") as index:
        for label, family, audio in items:
            a = np.asarray(audio, dtype="<i2")
            raw.write(a.tobytes())
            index.write(f"{label}\t{family}\t{offset}\t{len(a)}\n")
            offset += len(a)
    print(f"{name}: {len(items)} clips, {offset / C.SAMPLE_RATE / 60:.1f} min")


def export_split(cache: Path, out: Path, split: str, seed: int, scale: float) -> None:
    settings = [st for st in synth.make_settings(seed, scale=scale) if st.split == split]
    keywords, words = [], []
    for st, word, clip in synth.load_clips(cache, settings):
        if word in C.KEYWORDS:
            keywords.append((word, st.family, clip))
        elif word not in C.NOT_UNKNOWN and word not in C.CONFUSERS:
            words.append((word, st.family, clip))
    if not keywords:
        raise SystemExit(f"no {split} clips under {cache}/clips; run scripts/train_kws.py "
                         "first")
    confusers = [(w, st.family, clip) for st, w, clip in
                 synth.load_confusers(cache, synth.confuser_settings(settings, seed))]
    if not confusers:
        raise SystemExit(f"no confusers under {cache}/confusers; run scripts/train_kws.py "
                         "(or python -m kws.protocol) first")
    out.mkdir(parents=True, exist_ok=True)
    print(f"{split}:")
    write_set(out, "keywords", keywords)
    write_set(out, "words", words)
    write_set(out, "confusers", confusers)
    speech = sounds.split_speech(sounds.load_asterisk(cache))[split]
    write_set(out, "asterisk", [(k, "asterisk", v) for k, v in sorted(speech.items())])
    bg = sounds.split_backgrounds(sounds.load_backgrounds(cache))[split]
    write_set(out, "backgrounds", [(k, "gcompris", v) for k, v in sorted(bg.items())])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=C.default_cache())
    ap.add_argument("--out", type=Path, default=Path("target/kws-eval"))
    ap.add_argument("--seed", type=int, default=1234, help="the protocol data's seed")
    ap.add_argument("--scale", type=float, default=2.0)
    args = ap.parse_args()
    for split, folder in (("val", "validation"), ("test", "test")):
        export_split(args.cache, args.out / folder, split, args.seed, args.scale)


if __name__ == "__main__":
    main()
