"""Fine-tuning a trained keyword model on the owner's own takes (`chatterbox enroll`).

    train_kws.py --finetune TAKES_DIR [--base models] [--out models-owner]

Starts from `<base>/kws.weights.h5` (written by every training run) with the feature
contract of `<base>/kws.toml` unchanged: mean and std are part of the contract, so the Rust
runtime needs nothing but the new files. It trains a few epochs at a low learning rate on
augmented copies of the owner's takes mixed with a replay sample of the synthetic training
set, so that `unknown`, `silence` and the other voices are not forgotten, and reports the
accuracy on the owner's held-out takes (`testing_list.txt`, every third take) and on the
synthetic test set before and after. Everything the fine-tune DECIDES (int8 or float, and
whether the result beats the base model at all) is decided on a validation part instead:
the takes in `validation_list.txt` if the folder has one, otherwise every fourth of the
remaining takes of each word, and the synthetic validation voices; the held-out takes and
the synthetic test voices are only measured, so their figures stay honest. The result goes
to `--out` (default `models-owner/`), never over the base model: point `[keywords] model`
at `<out>/kws.toml` to use it.

TensorFlow training wants a PC; copy the takes off the Pi, fine-tune, copy `<out>` back.
"""

from __future__ import annotations

import json
import shutil
import time
import tomllib
from pathlib import Path

import numpy as np

from . import augment as A
from . import config as C
from . import contract, dataset
from . import features as F
from . import sounds

LABEL_INDEX = {l: i for i, l in enumerate(C.LABELS)}


class FinetuneError(Exception):
    """Something the person running the fine-tune must fix; the message says what."""


def load_base(base: Path) -> dict:
    """The base model's contract (mean/std), architecture and weights path."""
    toml_p, weights = base / "kws.toml", base / "kws.weights.h5"
    if not toml_p.exists():
        raise FinetuneError(f"{toml_p} is missing: --base must be a folder written by "
                            "train_kws.py (the repository's models/ is one)")
    if not weights.exists():
        raise FinetuneError(f"{weights} is missing: this model was trained before weights were "
                            "saved; retrain it with train_kws.py (see its README.md)")
    meta = tomllib.loads(toml_p.read_text())
    metrics_p = base / "metrics.json"
    metrics = json.loads(metrics_p.read_text()) if metrics_p.exists() else {}
    return {"mean": float(meta["features"]["mean"]), "std": float(meta["features"]["std"]),
            "arch": metrics.get("arch", "ds-cnn-s"), "weights": weights, "metrics": metrics,
            "readme": (base / "README.md").read_text() if (base / "README.md").exists()
            else ""}


def owner_takes(takes: Path, log=print):
    """(train, validation, test) lists of (label index, int16 clip) from the enroll folder.

    Test: the takes `testing_list.txt` names (reported, never used to decide). Validation:
    the takes `validation_list.txt` names, or without that file every fourth non-test take
    of each word (with 6 takes per word: 3 train, 1 validation, 2 test)."""
    if not takes.is_dir():
        raise FinetuneError(f"{takes} is not a folder: give the folder `chatterbox enroll` "
                            "wrote (one sub-folder per word)")
    items, _ = dataset._speech_commands(takes, log)
    listed_val = (takes / "validation_list.txt").exists()
    train, val, test = [], [], []
    seen: dict[str, int] = {}
    for split, label, a in items:
        if split == "test":
            test.append((LABEL_INDEX[label], a))
            continue
        k = seen[label] = seen.get(label, -1) + 1
        is_val = split == "val" if listed_val else k % 4 == 3
        (val if is_val else train).append((LABEL_INDEX[label], a))
    if not train:
        raise FinetuneError(f"{takes} holds no takes to train on: record some with "
                            "`chatterbox enroll` (every third take is kept for testing)")
    return train, val, test


def owner_examples(train, pools: A.Pools, copies: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Each take as recorded plus `copies` augmented copies (shift, gain, noise, room)."""
    audio, labels = [], []
    for i, (label, clip) in enumerate(train):
        rng = np.random.default_rng([seed, 77, i])
        audio.append(A.augment_word(rng, clip, pools, strength=0.0))
        labels.append(label)
        for _ in range(copies):
            audio.append(A.augment_word(rng, clip, pools, strength=1.0))
            labels.append(label)
    return F.batch_log_features(np.stack(audio)), np.array(labels, np.int64)


def replay_set(args, base_metrics: dict, n: int, log) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """A sample of the synthetic train, validation and test splits (unnormalized),
    from the data set the base model was trained on (its metrics.json says how it was
    made; the command line fills in what an older metrics.json lacks)."""
    m = {"seed": args.seed, "scale": args.scale, "aug_copies": args.aug_copies,
         "balance_engines": args.balance_engines, "engines": args.engines, **base_metrics}
    log(f"finetune: replay from the data set of seed {m['seed']}, scale {m['scale']}, aug "
        f"{m['aug_copies']}, balance {m['balance_engines']}, engines {m['engines'] or 'all'}")
    data = dataset.from_metrics(args.cache, m, jobs=args.jobs, log=log)
    rng = np.random.default_rng([args.seed, 78])
    out = {}
    for split, size in (("train", n), ("val", n // 2), ("test", n // 2)):
        X, y, _ = data[split]
        idx = np.sort(rng.choice(len(X), size=min(size, len(X)), replace=False))
        out[split] = (X[idx], y[idx])
    return out


def accuracy(predict, X: np.ndarray, y: np.ndarray) -> float | None:
    if len(y) == 0:
        return None
    return float((predict(X).argmax(1) == y).mean())


def run(args, log=print) -> int:
    try:
        return _run(args, log)
    except FinetuneError as e:
        log(f"finetune: {e}")
        return 2


def _run(args, log) -> int:
    t0 = time.time()
    if args.out.resolve() == args.base.resolve():
        raise FinetuneError(f"--out {args.out} is the base model's folder: choose another, so "
                            "the base model stays as it was")
    base = load_base(args.base)
    mean, std = base["mean"], base["std"]
    train, val, test = owner_takes(args.finetune, log)
    log(f"finetune: base {args.base} ({base['arch']}), {len(train)} takes to train on, "
        f"{len(val)} to decide with, {len(test)} held out")
    # Training rooms and backgrounds only: the validation and test ones stay unheard.
    bgs = sounds.split_backgrounds(sounds.load_backgrounds(args.cache, log))
    rooms = sounds.split_rooms(sounds.load_named_rirs(args.cache, args.seed, log))
    pools = A.Pools([r for _, r in rooms["train"]], list(bgs["train"].values()))
    Xo, yo = owner_examples(train, pools, args.owner_copies, args.seed)
    Xv, yv = as_recorded(val)
    Xt, yt = as_recorded(test)
    if args.no_replay:
        log("finetune: --no-replay: the model may forget unknown/silence and other voices")
        replay = {s: (np.zeros((0, C.N_BINS, C.N_FRAMES), np.float16), np.zeros(0, np.int64))
                  for s in ("train", "val", "test")}
    else:
        replay = replay_set(args, base["metrics"], args.replay, log)
    norm = lambda X: F.normalize(X, mean, std)  # noqa: E731  (the base model's contract)
    X_train = np.concatenate([norm(Xo), norm(replay["train"][0])])
    y_train = np.concatenate([yo, replay["train"][1]])
    X_syn, y_syn = norm(replay["test"][0]), replay["test"][1]
    X_synv, y_synv = norm(replay["val"][0]), replay["val"][1]
    X_own, X_ownv = norm(Xt), norm(Xv)

    def measure(predict) -> dict:
        return {"owner_val": accuracy(predict, X_ownv, yv),
                "synthetic_val": accuracy(predict, X_synv, y_synv),
                "owner_test": accuracy(predict, X_own, yt),
                "synthetic_test": accuracy(predict, X_syn, y_syn)}

    from . import train as T  # noqa: PLC0415  (TensorFlow loads only from here on)

    tf, keras = T.setup_tf(args.threads, args.seed)
    from .model import SpecAugment, build, load_weights  # noqa: PLC0415

    core = build(base["arch"])
    load_weights(core, base["arch"], base["weights"])
    predict = lambda X: core.predict(X[..., None], verbose=0, batch_size=256)  # noqa: E731
    before = measure(predict)
    log(f"finetune: before: owner held-out {before['owner_test']}, "
        f"synthetic test {before['synthetic_test']}")
    net = keras.Sequential([keras.Input((C.N_BINS, C.N_FRAMES, 1)),
                            SpecAugment(seed=args.seed), core])
    batch = 64
    steps = (len(X_train) + batch - 1) // batch
    if args.max_steps:
        steps = min(steps, args.max_steps)
    sched = keras.optimizers.schedules.CosineDecay(args.lr, decay_steps=steps * args.epochs,
                                                   alpha=0.1)
    net.compile(keras.optimizers.Adam(sched),
                keras.losses.CategoricalCrossentropy(label_smoothing=T.LABEL_SMOOTHING))
    y1 = keras.utils.to_categorical(y_train, len(C.LABELS))
    rng = np.random.default_rng([args.seed, 79])
    for epoch in range(args.epochs):
        order = rng.permutation(len(X_train))
        losses = []
        for s in range(steps):
            i = np.sort(order[s * batch:(s + 1) * batch])
            r = net.train_on_batch(X_train[i][..., None], y1[i])
            losses.append(float(np.ravel(r)[0]))
        log(f"finetune: epoch {epoch + 1}/{args.epochs}: loss {np.mean(losses):.3f} "
            f"{time.time() - t0:.0f}s")

    tmp = args.cache / "finetune-export"
    shutil.rmtree(tmp, ignore_errors=True)
    rep = X_train[rng.choice(len(X_train), size=min(400, len(X_train)), replace=False)]
    paths = T.export(core, tmp, rep, log=log)
    from .evaluate import TfliteModel  # noqa: PLC0415

    after = {}
    for kind, p in paths.items():
        m = TfliteModel(p)
        after[kind] = measure(m.predict)
        log(f"finetune: after ({kind}): owner validation {after[kind]['owner_val']}, "
            f"owner held-out {after[kind]['owner_test']}, synthetic test "
            f"{after[kind]['synthetic_test']}")
    chosen = "int8"
    if validation_score(after["float"]) - validation_score(after["int8"]) > 0.015:
        chosen = "float"  # int8 must not cost more than 1.5 points on validation
    keep, why = keep_verdict(before, after[chosen])
    log(f"finetune: {'keep' if keep else 'DISCARD'} ({why})")

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(paths[chosen], out / "kws.tflite")
    if chosen == "int8":
        shutil.copy(paths["float"], out / "kws-float.tflite")
    (out / "labels.txt").write_text("\n".join(C.LABELS) + "\n")
    (out / "kws.toml").write_text(F.toml_text(mean, std))
    contract.pin(out / "kws.toml")  # the runtime refuses unpinned model files
    core.save_weights(out / "kws.weights.h5")
    info = {"takes": str(args.finetune), "train_takes": len(train), "test_takes": len(test),
            "owner_copies": args.owner_copies, "replay": 0 if args.no_replay else args.replay,
            "val_takes": len(val), "epochs": args.epochs, "lr": args.lr, "before": before,
            "after": after, "shipped": chosen, "keep": keep, "keep_reason": why,
            "seconds": time.time() - t0}
    metrics = dict(base["metrics"], arch=base["arch"], finetune=info)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    (out / "README.md").write_text(base["readme"] + "\n" + card_section(info))
    log(f"finetune: done in {info['seconds'] / 60:.1f} min -> {out}")
    return 0


def as_recorded(takes) -> tuple[np.ndarray, np.ndarray]:
    """Takes as recorded (enroll writes exactly 1 s; anything else is centred)."""
    if not takes:
        return np.zeros((0, C.N_BINS, C.N_FRAMES), np.float16), np.zeros(0, np.int64)
    one_second = [A._finish(A.place(None, A._f(a), jitter=False)) for _, a in takes]
    return (F.batch_log_features(np.stack(one_second)),
            np.array([label for label, _ in takes], np.int64))


def validation_score(acc: dict) -> float:
    """What decisions compare: the owner's validation takes and the synthetic validation
    voices, equally weighted (whichever exist)."""
    parts = [v for v in (acc["owner_val"], acc["synthetic_val"]) if v is not None]
    return float(np.mean(parts)) if parts else 0.0


# The synthetic validation voices may lose this much before the fine-tune is discarded:
# a little forgetting is the price of learning the owner, a lot means it went wrong.
MAX_SYNTHETIC_LOSS = 0.03


def keep_verdict(before: dict, after: dict) -> tuple[bool, str]:
    """Is the fine-tuned model better than the base, judged on validation only?"""
    ob, oa = before["owner_val"], after["owner_val"]
    sb, sa = before["synthetic_val"], after["synthetic_val"]
    if sb is not None and sa is not None and sb - sa > MAX_SYNTHETIC_LOSS:
        return False, (f"the synthetic validation voices fell from {sb:.1%} to {sa:.1%}: "
                       "it forgot too much; keep using the base model")
    if ob is None:
        return True, ("no validation takes (record at least 4 takes per word, or list some "
                      "in validation_list.txt): judged on the synthetic voices only")
    if oa < ob:
        return False, (f"your validation takes fell from {ob:.1%} to {oa:.1%}; keep using "
                       "the base model")
    return True, f"your validation takes {ob:.1%} -> {oa:.1%}"


def card_section(info: dict) -> str:
    pct = lambda v: "n/a" if v is None else f"{100 * v:.1f} %"  # noqa: E731
    a = info["after"][info["shipped"]]
    return (
        "## Fine-tuned on the owner's voice\n\n"
        f"This model is the one above, fine-tuned on `{info['takes']}` "
        f"({info['train_takes']} takes, each with {info['owner_copies']} augmented copies, plus "
        f"{info['replay']} replayed synthetic examples; {info['epochs']} epochs at "
        f"learning rate {info['lr']}). Shipped: {info['shipped']} (chosen on validation). "
        f"Verdict on validation: **{'keep' if info.get('keep', True) else 'discard'}** — "
        f"{info.get('keep_reason', '')}.\n\n"
        "| Accuracy | before | after |\n|---|---|---|\n"
        f"| owner's validation takes ({info.get('val_takes', 0)}, decide) | "
        f"{pct(info['before'].get('owner_val'))} | {pct(a.get('owner_val'))} |\n"
        f"| synthetic validation voices (sample, decide) | "
        f"{pct(info['before'].get('synthetic_val'))} | {pct(a.get('synthetic_val'))} |\n"
        f"| owner's held-out takes ({info['test_takes']}, reported) | "
        f"{pct(info['before']['owner_test'])} | {pct(a['owner_test'])} |\n"
        f"| synthetic held-out voices (sample) | {pct(info['before']['synthetic_test'])} | "
        f"{pct(a['synthetic_test'])} |\n"
    )
