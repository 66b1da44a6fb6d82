#!/usr/bin/env python3
"""Build the tiny keyword models and parity fixtures used by tests/kws_model.rs.

Why this exists: the Rust side runs .tflite files through LiteRT's C API. To prove it computes
the same numbers as the reference Python interpreter (the one the trainer evaluates with), we
need models with the *real* input/output contract but small enough to commit, plus the Python
interpreter's outputs for fixed inputs.

What it writes into tests/fixtures/models/ (or --out):
  kws_tiny_float.tflite   float32 in/out, dynamic batch dimension, outputs logits (no softmax)
  kws_tiny_int8.tflite    full-int8 (int8 in/out, int8 kernels), batch fixed at 1, ends in softmax
  labels.txt              the 10 class labels in output order
  inputs.f32              N feature tensors [1,129,124,1], little-endian f32, concatenated
  float_logits.f32        Python interpreter output of the float model (N x 10)
  float_probs.f32         softmax of float_logits computed in float64, stored as f32
  int8_quantized_inputs.i8  the int8 inputs fed to the int8 model (N x 15996)
  int8_raw.i8             raw int8 output of the int8 model (N x 10)
  int8_probs.f32          int8_raw dequantized with the output scale/zero point (f32 math)
  manifest.toml           shapes, counts, quantization parameters, versions, seed

Run it in the pinned venv (about 2 minutes on a laptop, mostly installing tensorflow):
  python3 -m venv .venv-testmodels
  .venv-testmodels/bin/pip install -r scripts/requirements-testmodels.txt
  .venv-testmodels/bin/python scripts/make_test_models.py

The int8 input quantization deliberately uses round-half-away-from-zero (C's roundf, the rule of
TFLite's own QUANTIZE kernel); src/kws/model.rs uses the same rule, so int8 parity is exact.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

LABELS = ["silence", "unknown", "yes", "no", "up", "down", "left", "right", "go", "stop"]
INPUT_SHAPE = (1, 129, 124, 1)
SEED = 20260523
N_FIXTURES = 3
MAX_MODEL_BYTES = 100 * 1024


def feature_batch(rng: np.random.Generator, kind: str) -> np.ndarray:
    """A feature tensor shaped like the real input: log-magnitude-ish values with structure.

    Plain white noise would make every output near-uniform; a few bright time/frequency bands
    make the random network's outputs differ between inputs, so parity checks see real spread.
    """
    base = rng.normal(-6.0, 1.5, size=INPUT_SHAPE).astype(np.float32)
    if kind == "quiet":
        return np.full(INPUT_SHAPE, -11.5, dtype=np.float32) + rng.normal(
            0.0, 0.2, size=INPUT_SHAPE
        ).astype(np.float32)
    if kind == "voiced":
        t0 = int(rng.integers(10, 60))
        for harmonic in (6, 12, 18, 24):
            base[0, t0 : t0 + 40, harmonic : harmonic + 2, 0] += 6.0
    if kind == "burst":
        f0 = int(rng.integers(20, 100))
        base[0, 50:80, f0 : f0 + 20, 0] += 5.0
    return base


def build_keras_model(tf, batch_size: int | None):
    """Same op mix as the tutorial-style KWS CNN the trainer uses, shrunk to a few thousand weights.

    batch_size=None gives a dynamic batch dimension (shape_signature [-1,129,124,1]), which is
    what Keras exports by default; the Rust loader must fix it to 1.
    """
    keras = tf.keras
    layers = keras.layers
    keras.utils.set_random_seed(SEED)
    model = keras.Sequential(
        [
            keras.Input(shape=INPUT_SHAPE[1:], batch_size=batch_size),
            layers.Resizing(32, 32),
            layers.Rescaling(1.0 / 4.0, offset=1.5),
            layers.Conv2D(8, 3, activation="relu"),
            layers.Conv2D(16, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dense(16, activation="relu"),
            layers.Dense(len(LABELS)),
        ]
    )
    # Random init gives logits within about +-0.5; scale the head so the softmax is not flat
    # and the int8 output actually uses several quantization steps.
    head = model.layers[-1]
    w, b = head.get_weights()
    head.set_weights([w * 6.0, b])
    return model


def convert(tf, model, representative: list[np.ndarray] | None) -> bytes:
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if representative is not None:
        conv.optimizations = [tf.lite.Optimize.DEFAULT]

        def rep():
            for x in representative:
                yield [x]

        conv.representative_dataset = rep
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    return conv.convert()


def quantize_half_away(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    v = x.astype(np.float32) / np.float32(scale)
    r = np.sign(v) * np.floor(np.abs(v) + np.float32(0.5))
    return np.clip(r + zero_point, -128, 127).astype(np.int8)


def run_interpreter(path: Path, inputs: list[np.ndarray]) -> tuple[list[np.ndarray], dict, dict]:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path), num_threads=1)
    interp.allocate_tensors()
    (inp,) = interp.get_input_details()
    (out,) = interp.get_output_details()
    outs = []
    for x in inputs:
        interp.set_tensor(inp["index"], x)
        interp.invoke()
        outs.append(interp.get_tensor(out["index"]).copy())
    return outs, inp, out


def softmax64(x: np.ndarray) -> np.ndarray:
    z = x.astype(np.float64)
    z = np.exp(z - z.max())
    return z / z.sum()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "models",
    )
    args = ap.parse_args()
    out_dir: Path = args.out
    out_dir.mkdir(parents=True, exist_ok=True)

    import tensorflow as tf
    import ai_edge_litert

    rng = np.random.default_rng(SEED)
    representative = [
        feature_batch(rng, kind) for kind in ("noise", "quiet", "voiced", "burst") * 25
    ]
    kinds = ["voiced", "quiet", "burst"][:N_FIXTURES]
    fixtures = [feature_batch(rng, kind) for kind in kinds]

    float_path = out_dir / "kws_tiny_float.tflite"
    int8_path = out_dir / "kws_tiny_int8.tflite"
    # Float: dynamic batch, logits out. Int8: fixed batch of 1, ends in a softmax. Same weights.
    float_path.write_bytes(convert(tf, build_keras_model(tf, None), None))
    fixed = build_keras_model(tf, 1)
    with_softmax = tf.keras.Sequential([fixed, tf.keras.layers.Softmax()])
    int8_path.write_bytes(convert(tf, with_softmax, representative))
    for p in (float_path, int8_path):
        size = p.stat().st_size
        if size >= MAX_MODEL_BYTES:
            print(f"error: {p} is {size} bytes, budget is {MAX_MODEL_BYTES}", file=sys.stderr)
            return 1

    float_outs, f_in, f_out = run_interpreter(float_path, fixtures)
    assert f_in["dtype"] == np.float32 and tuple(f_in["shape"]) == INPUT_SHAPE, f_in
    assert f_in["shape_signature"][0] == -1, f_in  # dynamic batch, as Keras exports it
    assert f_out["dtype"] == np.float32 and tuple(f_out["shape"]) == (1, len(LABELS)), f_out

    # Read the int8 model's input quantization first, then feed it the quantized fixtures.
    from ai_edge_litert.interpreter import Interpreter

    probe = Interpreter(model_path=str(int8_path))
    in_scale, in_zp = probe.get_input_details()[0]["quantization"]
    q_inputs = [quantize_half_away(x, in_scale, in_zp) for x in fixtures]
    int8_outs, i_in, i_out = run_interpreter(int8_path, q_inputs)
    assert i_in["dtype"] == np.int8 and tuple(i_in["shape"]) == INPUT_SHAPE, i_in
    assert tuple(i_in["shape_signature"]) == INPUT_SHAPE, i_in
    assert i_out["dtype"] == np.int8 and tuple(i_out["shape"]) == (1, len(LABELS)), i_out
    out_scale, out_zp = i_out["quantization"]
    int8_probs = [
        (o.astype(np.float32) - np.float32(out_zp)) * np.float32(out_scale) for o in int8_outs
    ]

    def write(name: str, arrays: list[np.ndarray], dtype) -> None:
        data = b"".join(np.ascontiguousarray(a, dtype=dtype).tobytes() for a in arrays)
        (out_dir / name).write_bytes(data)

    write("inputs.f32", fixtures, "<f4")
    write("float_logits.f32", float_outs, "<f4")
    write("float_probs.f32", [softmax64(o) for o in float_outs], "<f4")
    write("int8_quantized_inputs.i8", q_inputs, "i1")
    write("int8_raw.i8", int8_outs, "i1")
    write("int8_probs.f32", int8_probs, "<f4")
    (out_dir / "labels.txt").write_text("\n".join(LABELS) + "\n")

    spread = [int(np.unique(o).size) for o in int8_outs]
    manifest = f"""# Written by scripts/make_test_models.py; do not edit by hand.
seed = {SEED}
tensorflow = "{tf.__version__}"
ai_edge_litert = "{getattr(ai_edge_litert, '__version__', '2.1.4')}"
count = {len(fixtures)}
kinds = {kinds!r}
input_shape = {list(INPUT_SHAPE)!r}
labels = "labels.txt"
inputs = "inputs.f32"

[float]
model = "{float_path.name}"
sha256 = "{hashlib.sha256(float_path.read_bytes()).hexdigest()}"
dynamic_batch = true
output_is_logits = true
logits = "float_logits.f32"
probs = "float_probs.f32"

[int8]
model = "{int8_path.name}"
sha256 = "{hashlib.sha256(int8_path.read_bytes()).hexdigest()}"
dynamic_batch = false
output_is_logits = false
input_scale = {float(in_scale)!r}
input_zero_point = {int(in_zp)}
output_scale = {float(out_scale)!r}
output_zero_point = {int(out_zp)}
quantized_inputs = "int8_quantized_inputs.i8"
raw = "int8_raw.i8"
probs = "int8_probs.f32"
""".replace("'", '"')
    (out_dir / "manifest.toml").write_text(manifest)

    print(f"wrote {out_dir}")
    for p in (float_path, int8_path):
        print(f"  {p.name}: {p.stat().st_size} bytes")
    for k, lo, io, s in zip(kinds, float_outs, int8_outs, spread):
        print(f"  {k:7s} float argmax={LABELS[int(lo.argmax())]:8s} int8 argmax="
              f"{LABELS[int(io.argmax())]:8s} distinct int8 outputs={s}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
