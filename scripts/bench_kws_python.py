#!/usr/bin/env python3
"""The Python side of the keyword-recognizer bench (issue 3); run by scripts/bench_kws.sh.

Two subcommands:

  build OUT.tflite   Builds the ORIGINAL architecture of the toy's first keyword recognizer
                     (Input 129x124x1 -> Resizing 32x32 -> Conv2D 32 -> Conv2D 64 -> MaxPool
                     -> Dropout -> Flatten -> Dense 128 -> Dropout -> Dense 10) with fixed
                     random weights from a seed, converts it to a float .tflite and checks
                     its size (about 6.5 MB) and multiply-accumulates (about 16.4 M). The
                     weights are random because only the cost is measured, never the answers.
  bench MODEL OUT.toml
                     Times, per 1 s window, (a) the original loop as written: scipy STFT,
                     then a tf.lite.Interpreter created, allocated and invoked for every
                     window; (b) the same with the interpreter created once (tf.lite and
                     ai-edge-litert); (c) scipy's STFT alone on the same input as
                     benches/stft.rs. Writes the medians as TOML for benches/kws_pipeline.rs.

The original loop's cost depends on glibc's allocator: by default its mmap threshold adapts
as the process frees large blocks, and the loop (which builds and drops a 6.5 MB interpreter
per window) then costs 1.8-4 ms here; with the threshold fixed (MALLOC_MMAP_THRESHOLD_ set,
e.g. to glibc's own initial 131072) every interpreter gets fresh pages and it costs 6-8.6 ms,
which is what reproduces the issue's 6.7 ms. scripts/bench_kws.sh times both.

Both wall time and CPU time are recorded: the bench machine may be shared, and CPU time
(this process, all threads) stays meaningful when wall time mostly measures waiting.
"""
import argparse
import os
import statistics
import sys
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# tf.lite.Interpreter warns it is deprecated; the original loop used it, so it is timed.
warnings.filterwarnings("ignore", category=UserWarning)

import numpy as np  # noqa: E402
import scipy  # noqa: E402
import scipy.signal  # noqa: E402

FS = 16000
NPERSEG, NOVERLAP, NFFT = 255, 124, 256
SEED = 20260323


def build(out_path):
    import tensorflow as tf

    keras = tf.keras
    keras.utils.set_random_seed(SEED)
    model = keras.Sequential(
        [
            keras.layers.Input(shape=(129, 124, 1)),
            keras.layers.Resizing(32, 32),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.Conv2D(64, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Dropout(0.25),
            keras.layers.Flatten(),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(10),
        ]
    )
    macs = 0
    for layer in model.layers:
        out_shape = layer.output.shape
        if isinstance(layer, keras.layers.Conv2D):
            k = layer.kernel.shape  # (kh, kw, cin, cout)
            macs += int(np.prod(out_shape[1:])) * k[0] * k[1] * k[2]
        elif isinstance(layer, keras.layers.Dense):
            macs += int(np.prod(layer.kernel.shape))
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    tflite = converter.convert()
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with open(out_path, "wb") as f:
        f.write(tflite)
    size = len(tflite)
    params = model.count_params()
    print(
        f"original architecture: {params} parameters, {size / 1e6:.2f} MB float .tflite, "
        f"{macs / 1e6:.2f} M MACs -> {out_path}"
    )
    if not (6.0e6 <= size <= 7.0e6):
        sys.exit(f"original model is {size} bytes; expected about 6.5 MB: the architecture drifted")
    if not (15.5e6 <= macs <= 17.0e6):
        sys.exit(f"original model has {macs} MACs; expected about 16.4 M: the architecture drifted")
    with open(out_path + ".toml", "w") as f:
        f.write(f"size_bytes = {size}\nmacs = {macs}\nparams = {params}\nseed = {SEED}\n")


def windows(n):
    """`n` deterministic 1 s windows of speech-level noise (int16/32768, like the original)."""
    rng = np.random.default_rng(SEED)
    return [(rng.standard_normal(FS) * 0.05).astype(np.float32) for _ in range(n)]


def stft_mag(x):
    return np.abs(scipy.signal.stft(x, fs=FS, nperseg=NPERSEG, noverlap=NOVERLAP, nfft=NFFT)[2])


def timed(fn, items):
    """Per-item wall and process-CPU times in seconds (lists)."""
    wall, cpu = [], []
    for item in items:
        w0, c0 = time.perf_counter(), time.process_time()
        fn(item)
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return wall, cpu


def med_ms(v):
    return statistics.median(v) * 1e3


def bench(model_path, out_path, n_fresh, n_once, as_written_only=False):
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter as LiteRtInterpreter

    def original_as_written(x):
        # The original loop: a new interpreter for every window.
        spec = stft_mag(x)
        interpreter = tf.lite.Interpreter(model_path=model_path)
        interpreter.allocate_tensors()
        inp = interpreter.get_input_details()[0]
        outp = interpreter.get_output_details()[0]
        interpreter.set_tensor(inp["index"], spec.reshape(1, 129, 124, 1).astype(np.float32))
        interpreter.invoke()
        return interpreter.get_tensor(outp["index"])

    def once_created(make):
        interpreter = make(model_path=model_path)
        interpreter.allocate_tensors()
        inp = interpreter.get_input_details()[0]["index"]
        outp = interpreter.get_output_details()[0]["index"]

        def run(x):
            spec = stft_mag(x)
            interpreter.set_tensor(inp, spec.reshape(1, 129, 124, 1).astype(np.float32))
            interpreter.invoke()
            return interpreter.get_tensor(outp)

        return run

    results = {}
    warm = windows(5)
    loops = [("original_as_written", original_as_written, n_fresh)]
    if not as_written_only:
        loops += [("once_tflite", once_created(tf.lite.Interpreter), n_once),
                  ("once_litert", once_created(LiteRtInterpreter), n_once)]
    for name, fn, n in loops:
        for x in warm:
            fn(x)
        wall, cpu = timed(fn, windows(n))
        results[name] = (med_ms(wall), med_ms(cpu), n)
        print(
            f"python {name:20s} median wall {med_ms(wall):7.3f} ms, CPU {med_ms(cpu):7.3f} ms "
            f"per window ({n} windows)"
        )

    # scipy STFT alone, on the same input as benches/stft.rs (1 kHz + 3.3 kHz sines).
    if not as_written_only:
        t = np.arange(FS, dtype=np.float32) / np.float32(FS)
        sine = (0.5 * np.sin(2 * np.pi * 1000.0 * t) + 0.25 * np.sin(2 * np.pi * 3300.0 * t)).astype(
            np.float32
        )
        wall, cpu = timed(stft_mag, [sine] * 2000)
        results["scipy_stft"] = (med_ms(wall), med_ms(cpu), 2000)
        print(f"python scipy {scipy.__version__} stft+abs median wall {med_ms(wall) * 1e3:.1f} us, "
              f"CPU {med_ms(cpu) * 1e3:.1f} us per window")

    with open(out_path, "w") as f:
        f.write("# Written by scripts/bench_kws_python.py; medians per 1 s window, in ms.\n")
        f.write(f'versions = "python {sys.version.split()[0]}, tensorflow {tf.__version__}, '
                f'numpy {np.__version__}, scipy {scipy.__version__}"\n')
        mmap = os.environ.get("MALLOC_MMAP_THRESHOLD_")
        f.write(f'malloc = "{"MALLOC_MMAP_THRESHOLD_=" + mmap if mmap else "glibc default"}"\n')
        for name, (wall, cpu, n) in results.items():
            f.write(f"[{name}]\nwall_ms = {wall:.6f}\ncpu_ms = {cpu:.6f}\nwindows = {n}\n")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("out")
    r = sub.add_parser("bench")
    r.add_argument("model")
    r.add_argument("out")
    r.add_argument("--fresh-windows", type=int, default=100)
    r.add_argument("--once-windows", type=int, default=300)
    r.add_argument("--as-written-only", action="store_true",
                   help="time only the original loop (for a second allocator setting)")
    a = p.parse_args()
    if a.cmd == "build":
        build(a.out)
    else:
        bench(a.model, a.out, a.fresh_windows, a.once_windows, a.as_written_only)


if __name__ == "__main__":
    main()
