"""Material for the measured trial of `chatterbox adapt` (benches/adapt.rs measures; this
prepares). A held-out TEST voice family plays the owner, as in finetune_trial.py.

    ~/.cache/chatterbox/venv-train/bin/python -m kws.adapt_trial      (from scripts/)
    cargo bench --bench adapt                                         (then, from the root)

With `--split val` VALIDATION voice families play the owners instead (default mbrola-us2,
cmu-ked, mbrola-de5, espeak-en-gb-x-gbclan: every validation family), and everything below comes from the validation split: the
eval sets are the protocol's VALIDATION clips, "other voices" are the
other validation families, the false-accept speech is the VALIDATION half of the real English
speech; it is written to `<cache>/adapt-trial-val/`. This is the mode to CHOOSE on (the
training variant of `adapt`); the test mode only reports, once.

    ~/.cache/chatterbox/venv-train/bin/python -m kws.adapt_trial --split val
    ADAPT_TRIAL_SPLIT=val cargo bench --bench adapt

Writes to `<cache>/adapt-trial/` (test split; "test" below reads "val" with `--split val`):

* `<family>/takes/<word>/owner_nohash_<i>.wav`: `--per-word` takes of every keyword in that
  voice (quiet room, speech near -12 dBFS, the recipe finetune_trial.py uses too), every third listed
  in `testing_list.txt`: 9 per word gives 8 words x 6 takes for training and 3 held out;
  rates (and pitch, where the engine has one) inside the narrow TAKE_BANDS;
  and `<family>/takes/unknown/owner_nohash_<i>.wav`: config.ENROLL_OTHER_WORDS once each in
  that voice, as `enroll` and the toy ask for them after the keywords (every third held out);
* `eval-<family>.bin`: that family's clips of the synthetic noisy TEST set (the protocol's
  test clips, `dataset.eval_audio_only`, or with `--embedding` an older embedding cache's
  `x_test`; centred as `chatterbox evaluate` places them),
  every test family, in the
  replay format of adapt_pack.py; for the owner families also `eval-<family>-unlike.bin`: only
  the clips whose rate and pitch lie outside the takes' bands (a test clip at a take's setting
  would be a near-copy of it);
* `eval-asterisk-en.bin`: every 80 ms window over the TEST half of the real English speech
  (asterisk-core-sounds-en prompts without a keyword; sounds.speech_split), each prompt streamed
  after 1 s of zeros, labelled unknown, in stream order: the false-accept material;
* `eval-meta.json`: what each file holds (durations for the per-hour figures).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import tomllib
from pathlib import Path

import numpy as np
import soundfile as sf

from . import augment as A
from . import config as C
from . import embedding as E
from . import sounds, synth
from .adapt_pack import quantize, write_replay

VOICES = {"pico-en-gb": ("pico", "en-GB"), "pico-en-us": ("pico", "en-US"),
          "hibari-heart": ("hibari", "heart"),
          "cmu-awb": ("flite", "awb"), "espeak-en-029": ("espeak", "en-029"),
          # validation families (--split val): one engine and voice of each plays the owner
          "mbrola-us2": ("espeak", "mb-us2"), "cmu-ked": ("festival", "ked_diphone"),
          "espeak-en-gb-x-gbclan": ("espeak", "en-gb-x-gbclan+shelby"),
          "mbrola-de5": ("espeak", "mb-de5-en")}
DEFAULT_FAMILIES = {"test": ["pico-en-gb", "hibari-heart", "cmu-awb"],
                    "val": ["mbrola-us2", "cmu-ked", "mbrola-de5", "espeak-en-gb-x-gbclan"]}
OUT_DIR = {"test": "adapt-trial", "val": "adapt-trial-val"}
# (rate band, pitch band or None); flite's and festival's rate is duration_stretch, hibari's
# a speed factor.
TAKE_BANDS = {"pico": ((95, 110), (95, 110)), "espeak": ((150, 170), (45, 55)),
              "hibari": ((0.95, 1.05), None), "flite": ((0.95, 1.05), None),
              "festival": ((0.95, 1.05), None)}


def outside_bands(engine: str, rate: float, pitch: float) -> bool:
    (r0, r1), pb = TAKE_BANDS[engine]
    if r0 <= rate <= r1:
        return False
    return pb is None or not (pb[0] <= pitch <= pb[1])


def unlike_takes(family: str, setting: dict) -> bool:
    """Whether a cached clip setting of `family` is unlike the owner's takes: another engine
    or voice of the family (another synthesizer or espeak variant of the same speaker), or the
    takes' engine and voice outside their bands."""
    engine, voice = VOICES[family]
    if (setting["engine"], setting["voice"]) != (engine, voice):
        return True
    return outside_bands(engine, setting["rate"], setting["pitch"])


def _take(rng, root: Path, family: str, folder: str, name: str, text: str, sid: str) -> None:
    """One take of `text` in `family`'s voice at a setting inside its TAKE_BANDS."""
    engine, voice = VOICES[family]
    (r0, r1), pb = TAKE_BANDS[engine]
    rate = float(rng.uniform(r0, r1)) if isinstance(r0, float) else float(rng.integers(r0, r1 + 1))
    pitch = float(rng.integers(pb[0], pb[1] + 1)) if pb else float(20_000 + len(sid))
    s = synth.Setting(id=sid, family=family, engine=engine, voice=voice,
                      rate=rate, pitch=pitch, words=[text], texts=[text])
    with tempfile.TemporaryDirectory(prefix="kws-adapt-trial-") as td:
        (x, sr), = synth.ENGINES[engine](s, Path(td))
    y = A.place(rng, synth.trim(synth.to_16k(x, sr)), jitter=True)
    y = y * (10 ** (-12 / 20) / (np.abs(y).max() + 1e-9))
    y = y + rng.standard_normal(len(y)).astype(np.float32) * 10 ** (-60 / 20)
    (root / folder).mkdir(parents=True, exist_ok=True)
    sf.write(root / folder / name, A._finish(y), C.SAMPLE_RATE, subtype="PCM_16")


def record_takes(root: Path, family: str, per_word: int, seed: int) -> None:
    rng = np.random.default_rng([seed, 5])
    listed = []
    for w in C.KEYWORDS:
        for i in range(per_word):
            name = f"owner_nohash_{i}.wav"
            _take(rng, root, family, w, name, w, f"trial-{w}-{i}")
            if i % 3 == 2:
                listed.append(f"{w}/{name}")
    (root / "testing_list.txt").write_text("\n".join(listed) + "\n")


def record_other_takes(root: Path, family: str, seed: int) -> None:
    """The owner's non-keywords, as the toy asks for them: one take of each of
    config.ENROLL_OTHER_WORDS in `<root>/unknown/`, every third held out (appended to
    testing_list.txt). Its own random stream, so the keyword takes stay as they were."""
    rng = np.random.default_rng([seed, 6])
    listed = []
    for i, w in enumerate(C.ENROLL_OTHER_WORDS):
        name = f"owner_nohash_{i}.wav"
        _take(rng, root, family, C.UNKNOWN, name, w, f"trial-other-{i}")
        if i % 3 == 2:
            listed.append(f"{C.UNKNOWN}/{name}")
    with open(root / "testing_list.txt", "a") as f:
        f.write("\n".join(listed) + "\n")


def test_clip_settings(cache: Path, fam: np.ndarray) -> list[str | None]:
    """The setting id of every test (or val: pass `family_val`) example of the embedding cache
    (None for silence), from the order train_head.build walks the clip files in (checked
    against the stored families)."""
    fams = set(fam) - {"silence"}
    unk = set(C.UNKNOWN_WORDS) - set(C.NOT_UNKNOWN)
    ids: list[str | None] = []
    for f in sorted((cache / "clips").glob("*.npz")):
        family = f.name.split("__")[0]
        if family not in fams:
            continue
        with np.load(f) as z:
            ids += [f.stem for w in z.files if w in C.KEYWORDS or w in unk]
    ids += [None] * int((fam == "silence").sum())
    if len(ids) != len(fam) or any(i is not None and i.split("__")[0] != f
                                   for i, f in zip(ids, fam)):
        raise SystemExit("cannot map the cached examples to their settings")
    return ids


def eval_clips(cache: Path, split: str, embedding: Path | None):
    """The split's synthetic noisy clips as head inputs: (x [B, N, 96], y, family, setting id
    or None, where from).

    The protocol's own evaluation clips (`dataset.eval_audio_only`: the clips every model's
    test figures are measured on, made without the training set), centred and embedded as
    `chatterbox evaluate` does, the embeddings kept in the cache by the clips' hash; or, with
    `embedding`, the `x_<split>` of an embedding cache in the layout train_head.py wrote
    before the protocol's split (the clips earlier releases' adapt figures were measured on)."""
    src = embedding
    if src is not None:
        with np.load(src) as z:
            if f"x_{split}" not in z.files:
                raise SystemExit(f"{src} holds no x_{split}: give an older embedding cache "
                                 "that does, or leave out --embedding for the protocol's clips")
            x, y, fam = z[f"x_{split}"], z[f"y_{split}"], z[f"family_{split}"]
        return x, y, fam, test_clip_settings(cache, fam), src.name
    from . import dataset, train_head  # noqa: PLC0415

    settings = synth.synthesize(cache, train_head.DATA_SEED, scale=train_head.DATA_SCALE)
    ev = dataset.eval_audio_only(cache, settings, train_head.DATA_SEED, split)
    n = tomllib.loads((E.MODELS_DIR / "kws.toml").read_text())["embedding"]["embeddings"]
    x = train_head.clip_embeddings(ev["audio"], n, cache=cache)
    # The protocol calls its silence clips' family "noise"; the bench reads eval-silence.bin.
    fam = np.where(ev["fam"] == "noise", "silence", ev["fam"])
    ids = [str(i) or None for i in ev["setting"]]
    return x, ev["y"], fam, ids, f"protocol {split} clips (dataset.eval_audio_only)"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cache", type=Path, default=C.default_cache())
    p.add_argument("--split", choices=["test", "val"], default="test",
                   help="the split the owners and every eval set come from (val: to choose on)")
    p.add_argument("--families", nargs="+",
                   help="owner families of that split (default: " + "; ".join(
                       f"{k}: {' '.join(v)}" for k, v in DEFAULT_FAMILIES.items()) + ")")
    p.add_argument("--embedding", type=Path,
                   help="measure on the x_<split> of this older embedding cache instead of "
                        "the protocol's own clips (the default)")
    p.add_argument("--per-word", type=int, default=9,
                   help="takes of each keyword (every third held out; the toy asks for 6)")
    p.add_argument("--out", type=Path,
                   help="where to write (default <cache>/adapt-trial[-val]; the bench reads "
                        "ADAPT_TRIAL_DIR)")
    p.add_argument("--seed", type=int, default=1234)
    a = p.parse_args(argv)
    split = a.split
    a.families = a.families or DEFAULT_FAMILIES[split]
    out = a.out or a.cache / OUT_DIR[split]
    out.mkdir(parents=True, exist_ok=True)
    meta: dict = {"split": split, "families": a.families, "per_word": a.per_word, "files": {}}
    for fam in a.families:
        if C.split_of(fam) != split:
            raise SystemExit(f"{fam} is not a held-out {split} family")
        takes = out / fam / "takes"
        if not (takes / "testing_list.txt").exists():
            print(f"takes: {fam} ...", flush=True)
            record_takes(takes, fam, a.per_word, a.seed)
        if not (takes / C.UNKNOWN).exists():
            print(f"other-word takes: {fam} ...", flush=True)
            record_other_takes(takes, fam, a.seed)
    x, y, fam, ids, meta["embedding"] = eval_clips(a.cache, split, a.embedding)
    by_id = {s["id"]: s for s in json.loads((a.cache / "settings.json").read_text())}
    classes = len(C.LABELS)

    def dump(name: str, sel: np.ndarray, xs=None, ys=None) -> None:
        xs = x[sel] if xs is None else xs
        ys = y[sel] if ys is None else ys
        q, s = quantize(xs)
        write_replay(out / name, q, s, ys, xs.shape[1], xs.shape[2], classes)
        meta["files"][name] = {"windows": int(len(xs))}

    missing = [f for f in a.families if f not in set(fam)]
    if missing:
        raise SystemExit(f"{meta['embedding']} holds no {split} clips of {missing}")
    meta["eval_families"] = []
    for f in sorted(set(fam)):
        if C.split_of(str(f)) == split or f == "silence":
            dump(f"eval-{f}.bin", fam == f)
            meta["eval_families"].append(str(f))
    for f in a.families:
        unlike = np.array([i is not None and fam[k] == f and i in by_id
                           and unlike_takes(f, by_id[i]) for k, i in enumerate(ids)])
        dump(f"eval-{f}-unlike.bin", unlike)
    speech = sounds.split_speech(sounds.load_asterisk(a.cache))[split]
    fe = E.SpeechEmbedding()
    n = x.shape[1]
    wins, seconds = [], 0.0
    for k in sorted(speech):
        if k.startswith("silence"):
            continue
        audio = np.concatenate([np.zeros(16000, np.int16), speech[k]]).astype(np.float32)
        emb = fe.stream_embeddings(audio)
        seconds += len(speech[k]) / 16000
        for j in range(n - 1, len(emb)):
            wins.append(emb[j + 1 - n:j + 1])
    xs = np.stack(wins).astype(np.float32)
    dump("eval-asterisk-en.bin", None, xs, np.full(len(xs), C.LABELS.index(C.UNKNOWN)))
    meta["files"]["eval-asterisk-en.bin"]["speech_seconds"] = seconds
    meta["files"]["eval-asterisk-en.bin"]["prompts"] = len([k for k in speech if not k.startswith("silence")])
    (out / "eval-meta.json").write_text(json.dumps(meta, indent=1))
    print(f"wrote {out}: {json.dumps(meta['files'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
