#!/usr/bin/env python3
"""Smoke test of the keyword-model pipeline: a tiny espeak-ng-only data set, two epochs of
a few steps, export, LiteRT check, and the files the Rust runtime reads.

Needs the training venv (TensorFlow, ai-edge-litert) and espeak-ng, so it is not part of
`cargo test`:
    ${CHATTERBOX_VENV:-~/.cache/chatterbox/venv-train}/bin/python scripts/test_train_smoke.py
(also collectable by pytest). Prints 'N passed, N failed'.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import tomllib
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import stft

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from kws import config as C  # noqa: E402
from kws import features as F  # noqa: E402

TOML_KEYS = {
    "features": {"sample_rate", "clip_samples", "nperseg", "noverlap", "nfft", "layout",
                 "log_epsilon", "mean", "std"},
    "model": {"file", "labels", "output"},
}


def test_features_match_scipy_contract():
    """The training features are exactly |scipy.signal.stft| with the contract settings."""
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(16000) * 3000).astype(np.int16).astype(np.float32) / 32768
    _, _, z = stft(x, fs=16000, nperseg=255, noverlap=124, nfft=256)
    mag = F.magnitude(x)
    assert mag.shape == (129, 124)
    np.testing.assert_allclose(mag, np.abs(z), rtol=1e-5, atol=1e-9)
    logf = F.log_magnitude(x)
    np.testing.assert_allclose(logf, np.log(np.abs(z) + 1e-6), rtol=1e-5, atol=1e-6)


def test_pipeline_tiny_run():
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is missing: run scripts/setup-train-venv.sh")
    from kws.pipeline import main  # noqa: PLC0415

    tmp = Path(tempfile.mkdtemp(prefix="kws-smoke-"))
    try:
        out, fx, cache = tmp / "models", tmp / "fixtures", tmp / "cache"
        rc = main(["--cache", str(cache), "--out", str(out), "--fixtures", str(fx),
                   "--engines", "espeak", "--scale", "0.1", "--aug-copies", "1",
                   "--epochs", "2", "--max-steps", "2", "--jobs", "1", "--threads", "1",
                   "--no-stream"])
        assert rc == 0
        for f in ("kws.tflite", "labels.txt", "kws.toml", "README.md", "metrics.json"):
            assert (out / f).stat().st_size > 0, f
        import json  # noqa: PLC0415

        metrics = json.loads((out / "metrics.json").read_text())
        # After two steps the choice is a coin toss; both exports must exist and load.
        shipped = metrics["shipped"]
        assert shipped in ("int8", "float")
        assert metrics["sizes"]["int8"] > 0 and metrics["sizes"]["float"] > 0
        assert (out / "kws-float.tflite").exists() == (shipped == "int8")
        labels = (out / "labels.txt").read_text().split("\n")[:-1]
        assert labels == C.LABELS
        meta = tomllib.loads((out / "kws.toml").read_text())
        assert set(meta) == set(TOML_KEYS)
        for sec, keys in TOML_KEYS.items():
            assert set(meta[sec]) == keys, (sec, set(meta[sec]) ^ keys)
        f = meta["features"]
        assert (f["sample_rate"], f["clip_samples"], f["nperseg"], f["noverlap"], f["nfft"]) \
            == (16000, 16000, 255, 124, 256)
        assert f["layout"] == "bins_frames" and f["std"] > 0
        assert meta["model"]["output"] == "softmax"

        from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415

        it = Interpreter(model_path=str(out / "kws.tflite"))
        it.allocate_tensors()
        inp, outp = it.get_input_details()[0], it.get_output_details()[0]
        assert list(inp["shape"]) == [1, 129, 124, 1]
        want = np.int8 if shipped == "int8" else np.float32
        assert inp["dtype"] == want and outp["dtype"] == want
        assert list(outp["shape"]) == [1, len(C.LABELS)]
        # One real clip through the exact runtime path: features, quantize, invoke.
        wavs = sorted(fx.glob("*.wav"))
        clip = None
        if wavs:
            clip, sr = sf.read(wavs[0], dtype="int16")
            assert sr == 16000 and clip.shape == (16000,)
        else:
            clip = np.zeros(16000, np.int16)
        x = F.normalize(F.log_magnitude(clip.astype(np.float32) / 32768), f["mean"], f["std"])
        if want == np.int8:
            s, zp = inp["quantization"]
            x = np.clip(np.round(x / s + zp), -128, 127).astype(np.int8)
        it.set_tensor(inp["index"], x.astype(want)[None, :, :, None])
        it.invoke()
        o = it.get_tensor(outp["index"])[0]
        if want == np.int8:
            s, zp = outp["quantization"]
            p = (o.astype(np.float32) - zp) * s
        else:
            p = o
        assert abs(float(p.sum()) - 1.0) < 0.05, p
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    passed = failed = 0
    for name, fn in list(globals().items()):
        if name.startswith("test_") and callable(fn):
            try:
                fn()
                passed += 1
                print(f"ok   {name}")
            except Exception as e:  # report and go on
                failed += 1
                print(f"FAIL {name}: {type(e).__name__}: {e}")
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
