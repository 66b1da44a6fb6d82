"""Writes what `chatterbox adapt` needs beside a trained embedding head: a replay set and the
layout of the head's weights inside head.tflite; pins both in the folder's kws.toml ([adapt]).

    ~/.cache/chatterbox/venv-train/bin/python -m kws.adapt_pack ../models/embedding   (from scripts/)

Re-run it after retraining the head (train_head.py): the layout is read from the new file,
the pins are rewritten.

* **Replay set** (`adapt_replay.bin`): precomputed [N, 96] embedding windows from TRAINING voice
  families only (config.split_of(family) == "train", with the current config): other voices'
  keywords, unknown words, real foreign speech (asterisk es/fr/it/ru) and silence/noise, from
  the cache train_head.py built the head from (named in metrics.json; else the newest
  `<cache>/embedding-*.npz`). The Rust trainer mixes them with
  the owner's takes so the adapted head does not forget everybody else.
  Format (little-endian):
      magic  b"CBREPLAY"            8 bytes
      u32    version = 1
      u32    count, u32 embeddings (N), u32 dim (96), u32 classes
      count x u8       label index (labels.txt order)
      count x f32      scale of the example (value = q * scale)
      count x N*dim i8 the quantized window, embedding-major (as the head's input)
  int8 with one scale per example (max |x| / 127): a third of the head's own input error budget
  (checked below: the shipped head's accuracy on the replay set is printed for float and int8).
* **Layout** (`adapt_layout.toml`): for every FULLY_CONNECTED op in execution order, the byte
  offset of its float32 kernel (row-major [out][in], i.e. row o holds the weights of output o)
  and bias ([out]) in head.tflite, its in/out sizes and activation. A layer whose input is
  longer than `in` is applied to each `in`-long row (the shared per-embedding layer). Found by
  locating the interpreter's constant tensors in the file bytes (each must occur exactly once)
  and verified by patching random weights and comparing the interpreter with a numpy forward.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import re
import struct
import tomllib
from pathlib import Path

import numpy as np

from . import config as C
from . import contract

REPLAY_FILE = "adapt_replay.bin"
LAYOUT_FILE = "adapt_layout.toml"
CALIB_FILE = "adapt_calib.bin"
MAGIC = b"CBREPLAY"


def head_layers(head: Path) -> list[dict]:
    """The Dense layers of a head .tflite, in execution order, located in the file bytes."""
    from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415
    raw = head.read_bytes()
    it = Interpreter(model_path=str(head))
    it.allocate_tensors()
    ops = it._get_ops_details()
    names = {d["index"]: d["name"] for d in it.get_tensor_details()}
    kinds = [o["op_name"] for o in ops if o["op_name"] != "DELEGATE"]
    allowed = {"FULLY_CONNECTED", "RESHAPE", "SOFTMAX"}
    if not set(kinds) <= allowed or kinds[-1] != "SOFTMAX":
        raise SystemExit(f"{head}: ops {kinds}: only Dense layers (+ reshape) ending in softmax "
                         "can be adapted")
    layers = []
    fcs = [o for o in ops if o["op_name"] == "FULLY_CONNECTED"]
    for k, o in enumerate(fcs):
        _, wi, bi = (int(i) for i in o["inputs"])
        w, b = it.get_tensor(wi), it.get_tensor(bi)
        if w.dtype != np.float32 or b.dtype != np.float32 or w.ndim != 2:
            raise SystemExit(f"{head}: layer {k} is not a float32 Dense layer")
        offs = []
        for t in (w, b):
            blob = t.astype("<f4").tobytes()
            at = raw.find(blob)
            if at < 0 or raw.find(blob, at + 1) >= 0:
                raise SystemExit(f"{head}: layer {k}: tensor bytes found {raw.count(blob)} times")
            offs.append(at)
        relu = "Relu" in names[int(o["outputs"][0])] and k < len(fcs) - 1
        layers.append({"in": int(w.shape[1]), "out": int(w.shape[0]),
                       "weight_offset": offs[0], "bias_offset": offs[1],
                       "activation": "relu" if relu else "none", "w": w, "b": b})
    return layers


def forward(layers: list[dict], x: np.ndarray) -> np.ndarray:
    """numpy forward of the head: x [n, N, 96] -> softmax [n, classes]."""
    h = x.reshape(len(x), -1).astype(np.float64)
    for L in layers:
        rows = h.reshape(len(h), -1, L["in"]) @ L["w"].T.astype(np.float64) + L["b"]
        if L["activation"] == "relu":
            rows = np.maximum(rows, 0)
        h = rows.reshape(len(h), -1)
    h = h - h.max(1, keepdims=True)
    e = np.exp(h)
    return e / e.sum(1, keepdims=True)


def run_tflite(path: Path, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415
    it = Interpreter(model_path=str(path), num_threads=1)
    it.allocate_tensors()
    i, o = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
    out = []
    for k in range(len(x)):
        it.set_tensor(i, x[k:k + 1].astype(np.float32))
        it.invoke()
        out.append(it.get_tensor(o)[0].copy())
    return np.array(out)


def patch(raw: bytes, layers: list[dict], weights: list[tuple[np.ndarray, np.ndarray]]) -> bytes:
    buf = bytearray(raw)
    for L, (w, b) in zip(layers, weights):
        for off, t in ((L["weight_offset"], w), (L["bias_offset"], b)):
            blob = np.ascontiguousarray(t, "<f4").tobytes()
            buf[off:off + len(blob)] = blob
    return bytes(buf)


def verify(head: Path, layers: list[dict], x: np.ndarray, tmp: Path) -> float:
    """Max |interpreter - numpy| over shipped weights and random patched ones."""
    err = float(np.abs(run_tflite(head, x) - forward(layers, x)).max())
    rng = np.random.default_rng(7)
    new = [(rng.normal(0, 0.1, L["w"].shape).astype(np.float32),
            rng.normal(0, 0.1, L["b"].shape).astype(np.float32)) for L in layers]
    tmp.write_bytes(patch(head.read_bytes(), layers, new))
    patched = [{**L, "w": w, "b": b} for L, (w, b) in zip(layers, new)]
    err = max(err, float(np.abs(run_tflite(tmp, x) - forward(patched, x)).max()))
    tmp.unlink()
    return err


def cache_of(folder: Path, cache_dir: Path, log=print) -> Path:
    """The embedding cache the head in `folder` was trained from (its metrics.json names it),
    else the newest one: the replay set should be the head's own training data."""
    m = folder / "metrics.json"
    if m.exists():
        import json  # noqa: PLC0415
        named = json.loads(m.read_text()).get("cache")
        if named and Path(named).exists():
            return Path(named)
        if named:
            log(f"replay: {named} (named by {m}) is gone; using the newest cache")
    files = sorted(glob.glob(str(cache_dir / "embedding-*.npz")))
    if not files:
        raise SystemExit(f"no {cache_dir}/embedding-*.npz: run `python -m kws.train_head` first")
    return Path(max(files, key=lambda f: Path(f).stat().st_mtime))


def pick_replay(src: Path, per_keyword: int, unknown: int, foreign: int, silence: int,
                seed: int, log=print):
    log(f"replay: from {src}")
    with np.load(src) as z:
        x, y = z["x_train"], z["y_train"]
        if "family_train" in z.files:  # v1 cache: one family per window, any split
            fam = z["family_train"]
            train = np.array([C.split_of(str(f)) == "train" for f in fam])
            real = fam == "asterisk-foreign"
        else:  # v3 cache: training windows only (train_head asserts it), by kind
            fam = z["kind_train"]
            train = np.ones(len(y), bool)
            real = fam == "real"
    rng = np.random.default_rng(seed)
    lab = {k: i for i, k in enumerate(C.LABELS)}
    picks = []
    for word in C.KEYWORDS:
        picks.append(_sample(rng, np.flatnonzero(train & (y == lab[word])), per_keyword))
    is_unk = train & (y == lab[C.UNKNOWN])
    picks.append(_sample(rng, np.flatnonzero(is_unk & ~real), unknown))
    picks.append(_sample(rng, np.flatnonzero(is_unk & real), foreign))
    picks.append(_sample(rng, np.flatnonzero(train & (y == lab[C.SILENCE])), silence))
    idx = np.sort(np.concatenate(picks))
    log(f"replay: {len(idx)} windows of {len(set(fam[idx].tolist()))} families/kinds "
        f"({int(train.sum())} training windows available)")
    return x[idx], y[idx], fam[idx], src


def _sample(rng, pool: np.ndarray, k: int) -> np.ndarray:
    return rng.choice(pool, size=min(k, len(pool)), replace=False)


def quantize(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    flat = x.reshape(len(x), -1)
    scale = np.maximum(np.abs(flat).max(1), 1e-12) / 127.0
    q = np.clip(np.round(flat / scale[:, None]), -127, 127).astype(np.int8)
    return q, scale.astype(np.float32)


def write_replay(path: Path, q: np.ndarray, scale: np.ndarray, y: np.ndarray, n: int, dim: int,
                 classes: int) -> None:
    with open(path, "wb") as f:
        f.write(MAGIC + struct.pack("<IIIII", 1, len(q), n, dim, classes))
        f.write(y.astype(np.uint8).tobytes())
        f.write(scale.astype("<f4").tobytes())
        f.write(q.tobytes())


def write_layout(path: Path, head: Path, layers: list[dict], n: int, dim: int) -> None:
    lines = ["# Written by scripts/kws/adapt_pack.py: where the head's Dense layers sit in head.tflite.",
             "# Kernels are float32 little-endian, row-major [out][in] (row o = weights of output o);",
             "# a layer whose input is longer than `in` applies to each `in`-long row (shared layer).",
             f'head_sha256 = "{hashlib.sha256(head.read_bytes()).hexdigest()}"',
             f"input = [{n}, {dim}]", ""]
    for L in layers:
        lines += ["[[layer]]", f'in = {L["in"]}', f'out = {L["out"]}',
                  f'weight_offset = {L["weight_offset"]}', f'bias_offset = {L["bias_offset"]}',
                  f'activation = "{L["activation"]}"', ""]
    path.write_text("\n".join(lines))


CALIB_MAGIC = b"CBCALIB3"


def calibration_fits(folder: Path, meta: dict) -> tuple[bool, str]:
    """Whether `folder/adapt_calib.bin` was written for the mel, embedding and head models the
    folder's kws.toml names (src/adapt/calibrate.rs: magic, then their three sha256 in hex)."""
    path = folder / CALIB_FILE
    if not path.is_file():
        return False, f"{path} is not there"
    with open(path, "rb") as f:
        header = f.read(8 + 3 * 64)
    if header[:8] != CALIB_MAGIC or len(header) < 8 + 3 * 64:
        return False, f"{path} is not a calibration stream of this version"
    written = [header[8 + 64 * i:8 + 64 * (i + 1)].decode("ascii", "replace").lower()
               for i in range(3)]
    files = [folder / meta["embedding"]["mel_file"], folder / meta["embedding"]["embedding_file"],
             folder / meta["model"]["file"]]
    have = [contract.sha256_of(f) for f in files]
    if written != have:
        return False, (f"{path} was written for other models (head {written[2][:12]}, "
                       f"the folder's is {have[2][:12]})")
    return True, ""


def pin_adapt_table(toml_path: Path) -> None:
    """Writes (or rewrites) the [adapt] table naming the replay set, the layout and, when it was
    written for the models in place, the calibration stream; contract.pin pins them."""
    text = toml_path.read_text()
    # Drop an old [adapt] table (up to the next table or the end).
    text = re.sub(r"\n\[adapt\]\n(?:(?!\n\[)[\s\S])*", "\n", text).rstrip() + "\n"
    other = ", ".join(json.dumps(w) for w in C.ENROLL_OTHER_WORDS)
    # The calibration stream is written by the Rust stream evaluation (`--calibration`) from
    # the head in place, after this script has written the replay set and layout it needs. A
    # stale one (another head) is left out with a warning: `adapt` then uses the fixed
    # stricter threshold until it is rewritten and this runs again with --table-only.
    fits, why = calibration_fits(toml_path.parent, tomllib.loads(text))
    if not fits and (toml_path.parent / CALIB_FILE).is_file():
        print(f"warning: {why}; not naming it. Rewrite it with `KWS_EVAL_META={toml_path} "
              f"cargo bench --bench kws_stream_eval -- --calibration "
              f"{toml_path.parent / CALIB_FILE}`, then rerun with --table-only")
    calib = f'calibration_file = "{CALIB_FILE}"\n' if fits else ""
    text += (f'\n[adapt]\nreplay_file = "{REPLAY_FILE}"\nlayout_file = "{LAYOUT_FILE}"\n'
             f"{calib}other_words = [{other}]\n")
    toml_path.write_text(text)
    contract.pin(toml_path)
    tomllib.loads(toml_path.read_text())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", type=Path, help="the embedding model folder (kws.toml, head.tflite)")
    p.add_argument("--cache", type=Path, default=C.default_cache())
    p.add_argument("--per-keyword", type=int, default=100)
    p.add_argument("--unknown", type=int, default=330)
    p.add_argument("--foreign", type=int, default=170)
    p.add_argument("--silence", type=int, default=200)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--table-only", action="store_true",
                   help="only rewrite and pin the [adapt] table (e.g. new other_words), "
                        "keeping the replay set and layout as they are")
    a = p.parse_args(argv)
    if a.table_only:
        pin_adapt_table(a.folder / "kws.toml")
        print(f"rewrote and pinned [adapt] of {a.folder / 'kws.toml'}")
        return 0
    meta = tomllib.loads((a.folder / "kws.toml").read_text())
    head = a.folder / meta["model"]["file"]
    n = int(meta["embedding"]["embeddings"])
    labels = (a.folder / meta["model"]["labels"]).read_text().split()
    if labels != C.LABELS:
        raise SystemExit(f"labels {labels} differ from config.LABELS {C.LABELS}")
    layers = head_layers(head)
    src = cache_of(a.folder, a.cache)
    x, y, fam, _ = pick_replay(src, a.per_keyword, a.unknown, a.foreign, a.silence, a.seed)
    dim = x.shape[2]
    if x.shape[1] != n:
        raise SystemExit(f"cached windows hold {x.shape[1]} embeddings, the head reads {n}")
    err = verify(head, layers, x[:32], a.folder / ".adapt-verify.tflite")
    print(f"layout: {len(layers)} Dense layers "
          f"{[(L['in'], L['out'], L['activation']) for L in layers]}; "
          f"interpreter vs numpy (shipped and patched weights): max |diff| {err:.2e}")
    if err > 1e-4:
        raise SystemExit("the layout does not reproduce the interpreter; not writing it")
    q, scale = quantize(x)
    deq = (q.astype(np.float32) * scale[:, None]).reshape(x.shape)
    acc_f = float((forward(layers, x).argmax(1) == y).mean())
    acc_q = float((forward(layers, deq).argmax(1) == y).mean())
    print(f"replay: shipped head on it: float {acc_f:.3f}, int8 {acc_q:.3f}")
    write_replay(a.folder / REPLAY_FILE, q, scale, y, n, dim, len(labels))
    write_layout(a.folder / LAYOUT_FILE, head, layers, n, dim)
    pin_adapt_table(a.folder / "kws.toml")
    size = (a.folder / REPLAY_FILE).stat().st_size
    print(f"wrote {a.folder / REPLAY_FILE} ({size} bytes, {len(q)} windows), "
          f"{a.folder / LAYOUT_FILE}; pinned in [adapt] of {a.folder / 'kws.toml'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
