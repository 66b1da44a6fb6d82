"""A measured trial of the owner loop, with a held-out synthetic voice as the "owner".

Real owners cannot be recorded here, so this plays the part: it records `--takes` takes of
every keyword in one voice family the model never heard (as `chatterbox enroll` would:
1 s, 16 kHz, every third take in testing_list.txt), fine-tunes the base model on them
(`train_kws.py --finetune`), and measures, before and after:

* the owner's held-out takes (what `chatterbox evaluate --held-out` reports), and
* the clips of that family in the synthetic *test* split whose speaking rate AND pitch
  lie outside the narrow bands the takes were recorded in (TAKE_BANDS): the same speaker
  in noise, rooms and voice settings the takes never showed. The engines are
  deterministic, so a test clip at a take's rate and pitch would be a near-copy of it;
  the bands keep those out;
* the other held-out families, to show what fine-tuning costs everybody else.

    python -m kws.finetune_trial --family pico-en-gb      (from scripts/, in the venv)
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

from . import config as C
from . import dataset
from . import features as F
from .evaluate import TfliteModel
from .pipeline import REPO, main as pipeline_main
# The voices, the narrow (rate, pitch) bands the takes are recorded in, and the recording
# of the takes are shared with the on-device trial (adapt_trial.py): one recipe.
from .adapt_trial import TAKE_BANDS, VOICES, outside_bands, record_takes


def family_accuracy(model_dir: Path, X: np.ndarray, y: np.ndarray, fam: np.ndarray,
                    family: str, unlike_takes: np.ndarray) -> dict:
    """Accuracy on the owner's family (only clips unlike the takes) and on the others."""
    import tomllib  # noqa: PLC0415

    f = tomllib.loads((model_dir / "kws.toml").read_text())["features"]
    m = TfliteModel(model_dir / "kws.tflite")
    out = {}
    for name, sel in (("owner_family", (fam == family) & unlike_takes),
                      ("other_families", fam != family)):
        pred = m.predict(F.normalize(X[sel], f["mean"], f["std"])).argmax(1)
        out[name] = {"accuracy": float((pred == y[sel]).mean()), "n": int(sel.sum())}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="finetune_trial")
    p.add_argument("--family", default="pico-en-gb", choices=sorted(VOICES))
    p.add_argument("--takes", type=int, default=6, help="takes per keyword (as enroll --takes)")
    p.add_argument("--base", type=Path, default=REPO / "models")
    p.add_argument("--cache", type=Path, default=C.default_cache())
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--epochs", type=int, default=6)
    args = p.parse_args(argv)
    if args.family not in C.TEST_FAMILIES:
        raise SystemExit(f"{args.family} is not a held-out test family")
    work = args.cache / f"trial-{args.family}"
    shutil.rmtree(work, ignore_errors=True)
    takes, out = work / "takes", work / "model"
    record_takes(takes, args.family, args.takes, args.seed)
    rc = pipeline_main(["--finetune", str(takes), "--base", str(args.base), "--out", str(out),
                        "--cache", str(args.cache), "--seed", str(args.seed),
                        "--epochs", str(args.epochs)])
    if rc != 0:
        return rc
    # The base model's own data set (cached by its training run).
    m = json.loads((args.base / "metrics.json").read_text())
    data, path, settings = dataset.from_metrics_with_path(
        args.cache, {"seed": args.seed, "scale": 2.0, "aug_copies": 3, **m})
    X, yy, fam = data["test"]
    fam = np.array(fam)
    by_id = {s.id: s for s in settings}
    ids = dataset.eval_audio(path, "test")["setting"]
    engine = VOICES[args.family][0]
    unlike = np.array([i in by_id and outside_bands(engine, by_id[i].rate, by_id[i].pitch)
                       for i in ids])
    result = {"family": args.family, "takes_per_word": args.takes,
              "take_bands": TAKE_BANDS[engine],
              "finetune": json.loads((out / "metrics.json").read_text())["finetune"],
              "base": family_accuracy(args.base, X, yy, fam, args.family, unlike),
              "tuned": family_accuracy(out, X, yy, fam, args.family, unlike)}
    (work / "trial.json").write_text(json.dumps(result, indent=1))
    ft = result["finetune"]
    a = ft["after"][ft["shipped"]]
    print(f"trial {args.family}, {args.takes} takes/word:")
    print(f"  owner held-out takes: {ft['before']['owner_test']:.3f} -> {a['owner_test']:.3f}")
    for k in ("owner_family", "other_families"):
        b, t = result["base"][k], result["tuned"][k]
        print(f"  synthetic test, {k} ({b['n']} clips): {b['accuracy']:.3f} -> "
              f"{t['accuracy']:.3f}")
    print(f"  -> {work / 'trial.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
