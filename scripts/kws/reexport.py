"""Re-export a trained model folder with the current graph layout, same weights.

    python -m kws.reexport MODELS_DIR --out NEW_DIR      (from scripts/)

Why: `model._stem` now folds the first convolution's 4 frames into channels, a faster graph
for XNNPACK that computes the same function. A folder trained before that change (a stem
kernel of shape (10, 4, 1, C) in kws.weights.h5) is rebuilt here without training:

1. the weights are loaded into the new layout (`model.load_weights` converts the stem);
2. the float and int8 .tflite files are exported exactly as the training pipeline does,
   calibrated on the same 400 training examples (rebuilt from the cached data set that
   metrics.json describes, picked with the same seed);
3. both are checked against the old files on the synthetic test split: the float model must
   agree to 1e-5, the int8 model (if it is the shipped one) must give the same top class on
   99.5 % of clips, and the shipped model the same accuracy to 0.2 points, or nothing is
   written.

The folder's metrics.json gains a "reexport" record with those figures and the model card
(README.md) says so; every other file (labels, kws.toml, tests' fixtures) stays valid
because the features and the function are unchanged.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np

from . import config as C
from . import contract, dataset, report


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m kws.reexport", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", type=Path, help="a folder train_kws.py wrote (e.g. models)")
    p.add_argument("--out", type=Path, required=True, help="where the re-exported folder goes")
    p.add_argument("--cache", type=Path, default=C.default_cache())
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--max-test", type=int, default=0,
                   help="compare on at most this many test clips (0 = all)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    src, out = args.models, args.out
    if out.resolve() == src.resolve():
        print("reexport: --out must differ from the source folder (nothing is overwritten "
              "in place)", file=sys.stderr)
        return 2
    for name in ("kws.weights.h5", "metrics.json", "kws.tflite", "kws.toml", "labels.txt"):
        if not (src / name).is_file():
            print(f"reexport: {src / name} is missing", file=sys.stderr)
            return 2
    m = json.loads((src / "metrics.json").read_text())
    if "finetune" in m:
        # Its int8 model was calibrated on the owner's takes, which this cannot rebuild.
        print(f"reexport: {src} is a fine-tuned model; run `train_kws.py --finetune TAKES` again "
              "on the current models/ instead (about a minute)", file=sys.stderr)
        return 2
    missing = [k for k in ("seed", "scale", "aug_copies", "mean", "std") if k not in m]
    if missing:
        print(f"reexport: {src / 'metrics.json'} lacks {', '.join(missing)}: it does not say "
              "which data set calibrates the int8 model; retrain it with train_kws.py",
              file=sys.stderr)
        return 2
    seed, arch = m["seed"], m.get("arch", "ds-cnn-s")
    data = dataset.from_metrics(args.cache, m, jobs=args.jobs)

    from . import train as T  # noqa: PLC0415
    from .evaluate import TfliteModel  # noqa: PLC0415
    from .model import build, load_weights  # noqa: PLC0415

    T.setup_tf(args.jobs, seed)
    mean, std = m["mean"], m["std"]
    # The pipeline's calibration sample: normalized in place, then 400 rows picked by a
    # fresh generator of the run's seed.
    Xtr = data["train"][0]
    rng = np.random.default_rng(seed)
    rep = Xtr[rng.choice(len(Xtr), size=min(400, len(Xtr)), replace=False)]
    rep = T.normalize_inplace(rep.copy(), mean, std)
    Xte, yte, _ = data["test"]
    if args.max_test:
        Xte, yte = Xte[:args.max_test], yte[:args.max_test]
    Xte = T.normalize_inplace(Xte.copy(), mean, std)

    core = build(arch)
    load_weights(core, arch, src / "kws.weights.h5")
    tmp = args.cache / "reexport"
    paths = T.export(core, tmp, rep, log=print)

    # kws.tflite is the int8 model unless training shipped the float one (int8 cost too
    # much accuracy); then only the float model exists to compare against.
    shipped = m.get("shipped", "int8")
    old_float = src / ("kws-float.tflite" if shipped == "int8" else "kws.tflite")
    fl_old = TfliteModel(old_float).predict(Xte)
    fl_new = TfliteModel(paths["float"]).predict(Xte)
    record = {"clips": int(len(Xte)), "shipped": shipped,
              "float_max_diff": float(np.abs(fl_old - fl_new).max())}
    ok = record["float_max_diff"] <= 1e-5
    old_p, new_p = fl_old, fl_new
    if shipped == "int8":
        old_p = TfliteModel(src / "kws.tflite").predict(Xte)
        new_p = TfliteModel(paths["int8"]).predict(Xte)
        record["int8_max_prob_diff"] = float(np.abs(old_p - new_p).max())
        record["int8_same_top_class"] = float(np.mean(old_p.argmax(1) == new_p.argmax(1)))
        ok = ok and record["int8_same_top_class"] >= 0.995
    record["test_accuracy_old"] = float(np.mean(old_p.argmax(1) == yte))
    record["test_accuracy_new"] = float(np.mean(new_p.argmax(1) == yte))
    ok = ok and abs(record["test_accuracy_new"] - record["test_accuracy_old"]) <= 0.002
    print(f"reexport: {json.dumps(record)}")
    if not ok:
        print("reexport: the new export does not compute the same model; nothing written",
              file=sys.stderr)
        return 1

    out.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.is_file():
            shutil.copy(f, out / f.name)
    shutil.copy(paths[shipped], out / "kws.tflite")
    if shipped == "int8":
        shutil.copy(paths["float"], out / "kws-float.tflite")
    core.save_weights(out / "kws.weights.h5")
    contract.pin(out / "kws.toml")  # kws.tflite changed: its pin must follow
    m["reexport"] = record
    m.setdefault("sizes", {})["int8"] = paths["int8"].stat().st_size
    m["sizes"]["float"] = paths["float"].stat().st_size
    (out / "metrics.json").write_text(json.dumps(m, indent=1))
    (out / "README.md").write_text(report.model_card(m))
    print(f"reexport: wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
