#!/usr/bin/env python3
"""Time scipy.signal.stft on one 1 s window, to compare with `cargo bench --bench stft`.

Same input as benches/stft.rs (1 kHz + 3.3 kHz sines, float32, 16 kHz) and the same
parameters as models/kws.toml's defaults; includes np.abs, as the firmware computes
magnitudes. Reports wall time and this thread's CPU time (the latter stays meaningful on
a loaded machine), like the Rust bench's `cpu/` variant. Run with the fixtures venv (scripts/requirements-fixtures.txt):

    nice -n 10 .venv-fixtures/bin/python scripts/bench_stft_scipy.py
"""
import time
import timeit

import numpy as np
import scipy
import scipy.signal

FS = 16000
t = np.arange(FS, dtype=np.float32) / np.float32(FS)
x = (0.5 * np.sin(2 * np.pi * 1000.0 * t) + 0.25 * np.sin(2 * np.pi * 3300.0 * t)).astype(
    np.float32
)


def once(sig):
    return np.abs(scipy.signal.stft(sig, fs=FS, nperseg=255, noverlap=124, nfft=256)[2])


for label, sig in (("float32 input", x), ("float64 input", x.astype(np.float64))):
    once(sig)
    for clock_name, clock in (("wall", time.perf_counter), ("cpu", time.thread_time)):
        timer = timeit.Timer(lambda: once(sig), timer=clock)
        loops, _ = timer.autorange()
        runs = sorted(t / loops for t in timer.repeat(repeat=7, number=loops))
        print(f"scipy {scipy.__version__} stft+abs, {label}, {clock_name} time: "
              f"best {runs[0] * 1e6:.1f} us, median {runs[3] * 1e6:.1f} us per 1 s window "
              f"(7 x {loops} loops)")
