"""Fine-tuning the speech-embedding keyword head on the owner's takes (`chatterbox enroll`).

    train_kws.py --finetune TAKES_DIR --base models/embedding [--out models-owner]

`train_kws.py --finetune` comes here when the --base folder's kws.toml declares
`front_end = "embedding"`. Only the head is retrained: the two feature models (mel and
embedding) are frozen and copied unchanged with their pins, so the contract is the base's
but for the head's sha256. The head starts from the Dense weights of `<base>/head.tflite`
(kws.train_head.dense_weights: no separate weights file), the owner's takes (each as recorded plus augmented copies, placed in the
window the head reads as kws.train_head does) are mixed with a replay sample of the base's
own training windows (its embedding cache, `metrics.json` "cache"), and the rules are
kws.finetune's: validation decides (the owner's validation takes and the protocol's
validation clips), held-out takes and test clips are only reported, the base folder is
never written.
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
from . import contract, sounds
from . import embedding as E
from . import train_head as H
from .finetune import FinetuneError, card_section, keep_verdict, owner_takes


def is_embedding(base: Path) -> bool:
    p = base / "kws.toml"
    return p.is_file() and tomllib.loads(p.read_text()).get("front_end") == "embedding"


def _windows(takes, pools: A.Pools, copies: int, seed: int, w: int):
    """Each take centred in the window (as recorded), plus `copies` augmented copies
    placed in background noise or centred, as kws.train_head places its keywords."""
    out, labels = [], []
    for i, (label, clip) in enumerate(takes):
        rng = np.random.default_rng([seed, 77, i])
        out.append(H.centred(A.augment_word(rng, clip, pools, strength=0.0), w))
        labels.append(label)
        for _ in range(copies):
            aug = A.augment_word(rng, clip, pools, strength=1.0)
            out.append(H.in_noise(rng, aug, w, pools) if rng.random() < 0.7 else H.centred(aug, w))
            labels.append(label)
    return out, np.array(labels, np.int64)


def _as_recorded(takes, n: int, workers: int) -> tuple[np.ndarray, np.ndarray]:
    if not takes:
        return np.zeros((0, n, E.EMBEDDING_DIM), np.float32), np.zeros(0, np.int64)
    one_second = np.stack([A._finish(A.place(None, A._f(a), jitter=False)) for _, a in takes])
    return H.clip_embeddings(one_second, n, workers), np.array([lab for lab, _ in takes])


def _protocol_split(cache: Path, metrics: dict, split: str, n: int, workers: int, size: int,
                    seed: int):
    """A sample of the protocol's clips of `split` (the data set the base was measured on),
    or None when they are not in the cache."""
    name = metrics.get("protocol_dataset")
    if not name:
        return None
    h = Path(name).stem.split("-")[-1]
    p = cache / f"eval-{split}-{h}.npz"
    if not p.exists():
        return None
    with np.load(p) as z:
        audio, y = z["audio"], z["y"]
    x = H.clip_embeddings(audio, n, workers, cache)  # cached by kws.train_head / kws.protocol
    idx = np.sort(np.random.default_rng([seed, 80]).choice(len(x), min(size, len(x)),
                                                           replace=False))
    return x[idx], y[idx]


def run(args, log=print) -> int:
    try:
        return _run(args, log)
    except FinetuneError as e:
        log(f"finetune: {e}")
        return 2


def _run(args, log) -> int:
    t0 = time.time()
    base, out = args.base, args.out
    if out.resolve() == base.resolve():
        raise FinetuneError(f"--out {out} is the base model's folder: choose another, so "
                            "the base model stays as it was")
    meta = tomllib.loads((base / "kws.toml").read_text())
    head_file = base / meta["model"]["file"]
    if not head_file.exists():
        raise FinetuneError(f"{head_file} is missing: --base must be a model folder written "
                            "by `python -m kws.train_head` (models/embedding is one)")
    metrics = json.loads((base / "metrics.json").read_text()) if (base / "metrics.json").exists() \
        else {}
    n = int(meta["embedding"]["embeddings"])
    arch = metrics.get("arch", "shared")
    head = metrics.get("head", {})
    train, val, test = owner_takes(args.finetune, log)
    log(f"finetune: embedding head of {base} ({arch}, N = {n}), {len(train)} takes to train "
        f"on, {len(val)} to decide with, {len(test)} held out; feature models frozen")
    bgs = sounds.split_backgrounds(sounds.load_backgrounds(args.cache, log))
    rooms = sounds.split_rooms(sounds.load_named_rirs(args.cache, args.seed, log))
    pools = A.Pools([r for _, r in rooms["train"]], list(bgs["train"].values()))
    wins, yo = _windows(train, pools, args.owner_copies, args.seed, H.window_samples(n))
    xo = H.embed_all(wins, args.jobs)
    xv, yv = _as_recorded(val, n, args.jobs)
    xt, yt = _as_recorded(test, n, args.jobs)
    xr = np.zeros((0, n, E.EMBEDDING_DIM), np.float32)
    yr = np.zeros(0, np.int64)
    syn_val = syn_test = None
    if args.no_replay:
        log("finetune: --no-replay: the head may forget unknown/silence and other voices")
    else:
        cache_file = Path(metrics.get("cache", ""))
        if not cache_file.is_file():
            where = metrics.get("cache") or "metrics.json names none"
            raise FinetuneError(f"the base's training embeddings ({where}) are not here: run "
                                "`python -m kws.train_head` with the base's command once, or "
                                "pass --no-replay")
        with np.load(cache_file) as z:
            rng = np.random.default_rng([args.seed, 78])
            idx = np.sort(rng.choice(len(z["y_train"]), min(args.replay, len(z["y_train"])),
                                     replace=False))
            xr, yr = z["x_train"][idx], z["y_train"][idx]
        syn_val = _protocol_split(args.cache, metrics, "val", n, args.jobs, args.replay // 2,
                                  args.seed)
        syn_test = _protocol_split(args.cache, metrics, "test", n, args.jobs,
                                   args.replay // 2, args.seed)

    def acc(model_fn, x, y):
        return None if x is None or len(y) == 0 else float((model_fn(x).argmax(1) == y).mean())

    def measure(model_fn) -> dict:
        return {"owner_val": acc(model_fn, xv, yv),
                "synthetic_val": acc(model_fn, *syn_val) if syn_val else None,
                "owner_test": acc(model_fn, xt, yt),
                "synthetic_test": acc(model_fn, *syn_test) if syn_test else None}

    import keras  # noqa: PLC0415  (TensorFlow loads only from here on)

    model = H.make_head(n, args.seed, arch, head.get("shared", 64), head.get("hidden", 64))
    try:
        H.load_dense_weights(model, head_file)  # the head's Dense weights, from its .tflite
    except ValueError as e:
        raise FinetuneError(str(e)) from e
    predict = lambda x: model.predict(x, verbose=0, batch_size=256)  # noqa: E731
    before = measure(predict)
    log(f"finetune: before: owner held-out {before['owner_test']}, "
        f"synthetic test {before['synthetic_test']}")
    x_train = np.concatenate([xo, xr]).astype(np.float32)
    y_train = np.concatenate([yo, yr])
    model.compile(optimizer=keras.optimizers.Adam(args.lr),
                  loss="sparse_categorical_crossentropy")
    batch = 64
    steps = (len(x_train) + batch - 1) // batch
    if args.max_steps:
        steps = min(steps, args.max_steps)
    rng = np.random.default_rng([args.seed, 79])
    for epoch in range(args.epochs):
        order = rng.permutation(len(x_train))
        losses = [float(np.ravel(model.train_on_batch(
            x_train[np.sort(order[s * batch:(s + 1) * batch])],
            y_train[np.sort(order[s * batch:(s + 1) * batch])]))[0]) for s in range(steps)]
        log(f"finetune: epoch {epoch + 1}/{args.epochs}: loss {np.mean(losses):.3f} "
            f"{time.time() - t0:.0f}s")

    out.mkdir(parents=True, exist_ok=True)
    H.export(model, out / "head.tflite", n, False)
    from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415

    it = Interpreter(model_path=str(out / "head.tflite"), num_threads=1)
    it.allocate_tensors()
    i_in, i_out = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]

    def tflite_predict(x):
        res = np.empty((len(x), len(C.LABELS)), np.float32)
        for k in range(len(x)):
            it.set_tensor(i_in, x[k:k + 1].astype(np.float32))
            it.invoke()
            res[k] = it.get_tensor(i_out)[0]
        return res

    after = {"float": measure(tflite_predict)}
    keep, why = keep_verdict(before, after["float"])
    log(f"finetune: after: owner validation {after['float']['owner_val']}, owner held-out "
        f"{after['float']['owner_test']}; {'keep' if keep else 'DISCARD'} ({why})")
    for f in ("labels.txt", E.MEL_FILE, E.EMBEDDING_FILE, "NOTICE.md", "LICENSE-openwakeword.txt"):
        if (base / f).is_file():
            shutil.copy(base / f, out / f)
    shutil.copy(base / "kws.toml", out / "kws.toml")
    contract.pin(out / "kws.toml")  # only the head's pin changes
    info = {"takes": str(args.finetune), "train_takes": len(train), "test_takes": len(test),
            "owner_copies": args.owner_copies, "replay": 0 if args.no_replay else len(yr),
            "val_takes": len(val), "epochs": args.epochs, "lr": args.lr, "before": before,
            "after": after, "shipped": "float", "keep": keep, "keep_reason": why,
            "retrained": "head only (mel and embedding models frozen)",
            "seconds": time.time() - t0}
    (out / "metrics.json").write_text(json.dumps(dict(metrics, finetune=info), indent=1))
    readme = (base / "README.md").read_text() if (base / "README.md").exists() else ""
    (out / "README.md").write_text(readme + "\n" + card_section(info))
    log(f"finetune: done in {info['seconds'] / 60:.1f} min -> {out}")
    return 0
