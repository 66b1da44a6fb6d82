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
    "model": {"file", "sha256", "labels", "output"},
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


def test_shipped_weights_are_the_shipped_model():
    """models/kws.weights.h5 (where --finetune starts) must be the weights of the shipped
    models/kws-float.tflite: same architecture (metrics.json), same outputs."""
    import json  # noqa: PLC0415

    from kws.evaluate import TfliteModel  # noqa: PLC0415
    from kws.train import setup_tf  # noqa: PLC0415

    setup_tf(1, 0)  # the thread count the tiny pipeline run below uses: TF fixes it once
    from kws.model import build  # noqa: PLC0415

    models = HERE.parent / "models"
    arch = json.loads((models / "metrics.json").read_text()).get("arch", "ds-cnn-s")
    net = build(arch)
    net.load_weights(models / "kws.weights.h5")
    x = np.random.default_rng(3).standard_normal((4, 129, 124)).astype(np.float32)
    keras_p = net.predict(x[..., None], verbose=0)
    tflite_p = TfliteModel(models / "kws-float.tflite").predict(x)
    np.testing.assert_allclose(keras_p, tflite_p, atol=1e-5)


def test_legacy_stem_weights_load_into_the_folded_stem():
    """Weights saved before the stem was folded (kernel (10, 4, 1, C)) load into the current
    layout and give the same outputs: `--finetune` and `kws.reexport` rely on it."""
    from kws.train import setup_tf  # noqa: PLC0415

    setup_tf(1, 0)
    from kws.model import build, load_weights  # noqa: PLC0415

    legacy = build("ds-cnn-pyramid", legacy_stem=True)
    assert legacy.layers[1].kernel.shape == (10, 4, 1, 64)
    tmp = Path(tempfile.mkdtemp(prefix="kws-stem-"))
    try:
        legacy.save_weights(tmp / "legacy.weights.h5")
        folded = build("ds-cnn-pyramid")
        assert folded.get_layer("stem").kernel.shape == (10, 1, 4, 64)
        load_weights(folded, "ds-cnn-pyramid", tmp / "legacy.weights.h5")
        x = np.random.default_rng(5).standard_normal((3, 129, 124, 1)).astype(np.float32)
        np.testing.assert_allclose(folded.predict(x, verbose=0), legacy.predict(x, verbose=0),
                                   atol=1e-6)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _split_parts(cache: Path):
    from kws import sounds  # noqa: PLC0415

    rooms = sounds.split_rooms(sounds.load_named_rirs(cache, 1234))
    bgs = sounds.split_backgrounds(sounds.load_backgrounds(cache))
    speech = sounds.split_speech(sounds.load_asterisk(cache))
    return rooms, bgs, speech


def test_split_shares_no_speaker_variant_room_background_or_prompt():
    """The shipped split (seed 1234, scale 2.0): no recorded speaker, espeak-ng variant,
    room, background recording or real prompt in two of train / validation / test. Uses
    the real rooms and sounds where the machine has them (the default data cache)."""
    from kws import protocol_split as P  # noqa: PLC0415
    from kws import synth  # noqa: PLC0415

    settings = synth.make_settings(1234, scale=2.0)
    rooms, bgs, speech = _split_parts(C.default_cache())
    assert P.check(settings, rooms, bgs, speech) == []
    d = P.describe(settings, rooms, bgs, speech)
    for split in ("train", "val", "test"):
        assert d[split]["families"] and d[split]["espeak_variants"], split
        assert d[split]["rooms"], f"no rooms in {split}"
    # Roger (festival rab_diphone, festival en1_mbrola, espeak-ng mb-en1) is one family.
    roger = {s.split for s in settings if C.recorded_speaker(s.engine, s.voice) == "CSTR Roger"}
    assert roger == {"train"}, roger


def test_split_check_catches_planted_leaks():
    """The check is not a formality: each kind of leak, planted, is reported."""
    from kws import protocol_split as P  # noqa: PLC0415
    from kws import synth  # noqa: PLC0415

    settings = synth.make_settings(1234, scale=0.1)
    rooms = {"train": [("a", np.ones(4))], "val": [], "test": [("b", np.zeros(4))]}
    bgs = {"train": {"x": np.ones(3, np.int16)}, "val": {}, "test": {"y": np.zeros(3, np.int16)}}
    speech = {"val": {"p": np.ones(2, np.int16)}, "test": {"q": np.zeros(2, np.int16)}}
    assert P.check(settings, rooms, bgs, speech) == []
    # Roger's en1 under a test family name: the same recorded speaker in train and test.
    leak = synth.Setting(id="leak", family="cstr-don", engine="festival", voice="en1_mbrola")
    assert any("CSTR Roger" in p for p in P.check(settings + [leak], rooms, bgs, speech))
    # A training espeak-ng variant on the test accent.
    train_var = next(s.voice.split("+")[1] for s in settings
                     if s.engine == "espeak" and "+" in s.voice and s.split == "train")
    leak = synth.Setting(id="leak", family="espeak-en-029", engine="espeak",
                         voice=f"en-029+{train_var}")
    assert any(train_var in p for p in P.check(settings + [leak], rooms, bgs, speech))
    # The same room under another name in validation.
    bad_rooms = dict(rooms, val=[("c", np.ones(4))])
    assert any("room" in p for p in P.check(settings, bad_rooms, bgs, speech))
    # The same background under two names, and one name in two splits.
    bad_bgs = dict(bgs, val={"z": np.zeros(3, np.int16)})
    assert any("background" in p for p in P.check(settings, rooms, bad_bgs, speech))
    bad_bgs = dict(bgs, val={"x": np.full(3, 7, np.int16)})
    assert any("'x'" in p for p in P.check(settings, rooms, bad_bgs, speech))
    # A real prompt in both halves.
    bad_speech = {"val": {"p": np.ones(2, np.int16)}, "test": {"p": np.ones(2, np.int16)}}
    assert any("prompt" in p for p in P.check(settings, rooms, bgs, bad_speech))


def test_split_rules_divide_three_ways():
    """Rooms, backgrounds and prompts: every split gets a share, by fixed rules."""
    from kws import sounds  # noqa: PLC0415

    rooms = sounds.split_rooms([(f"r{i}", np.full(4, i)) for i in range(30)])
    assert [len(rooms[k]) for k in ("train", "val", "test")] == [22, 4, 4]
    names = [f"bundle#{i}" for i in range(400)]
    shares = {k: sum(sounds.background_split(n) == k for n in names) / 400
              for k in ("train", "val", "test")}
    assert 0.05 < shares["test"] < 0.15 and 0.05 < shares["val"] < 0.15, shares
    speech = [sounds.speech_split(f"prompt-{i}") for i in range(400)]
    assert set(speech) == {"val", "test"} and 0.4 < speech.count("val") / 400 < 0.6


def test_protocol_keyword_only_accuracy_ignores_the_easy_classes():
    """Keyword-only accuracy counts only clips that ARE a keyword; silence and unknown
    clips (easy, and many) cannot lift it."""
    from kws import protocol  # noqa: PLC0415

    n = len(C.LABELS)
    sil, unk = C.LABELS.index(C.SILENCE), C.LABELS.index(C.UNKNOWN)
    y = np.array([0, 1, 2, 3, sil, sil, sil, sil, unk, unk])
    pred = np.array([0, unk, unk, unk, sil, sil, sil, sil, unk, 5])  # 1 of 4 keywords right
    probs = np.eye(n, dtype=np.float32)[pred]
    r = protocol.clip_metrics(probs, y, ["a"] * 6 + ["b"] * 4)
    assert r["accuracy"] == 0.6  # 6 of 10 over all classes
    assert r["keyword_accuracy"] == 0.25
    assert r["unknown_as_keyword"] == 0.5  # one of the two unknown clips became "left"
    assert r["per_family_keyword"] == {"a": (0.25, 4)}


def test_protocol_stream_scoring_hits_false_accepts_and_latency():
    """A detection of the right word after the word's middle is a hit with its latency;
    the wrong word, or a detection outside the window, is a false accept."""
    from kws import evaluate, protocol  # noqa: PLC0415

    sr, hop = C.SAMPLE_RATE, evaluate.HOP
    # "go" from 2.0 s to 2.5 s, "stop" from 6.0 s to 6.4 s.
    st = evaluate.Stream(np.zeros(sr * 10, np.int16),
                         [(0, 2 * sr, int(2.5 * sr)), (3, 6 * sr, int(6.4 * sr))])
    # Window i ends at i*hop + 1 s: i=6 ends at 2.5 s (go's end), i=26 at 7.5 s.
    dets = [(0, 6), (5, 26), (3, 36)]  # go: hit; "left" at 7.5 s: wrong; stop at 10 s: late
    hits, fa, lat = protocol.hits_and_latency(st, dets)
    assert (hits, fa) == (1, 2)
    assert lat == [(6 * hop + sr - 2.5 * sr) / sr * 1000]


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
        check_eval_audio_only(cache)
        for f in ("kws.tflite", "labels.txt", "kws.toml", "README.md", "metrics.json"):
            assert (out / f).stat().st_size > 0, f
        import json  # noqa: PLC0415

        metrics = json.loads((out / "metrics.json").read_text())
        # After two steps the choice is a coin toss; both exports must exist and load.
        shipped = metrics["shipped"]
        assert shipped in ("int8", "float")
        # int8 vs float is decided on validation, never on test.
        gap = metrics["float_val"]["accuracy"] - metrics["int8_val"]["accuracy"]
        assert shipped == ("float" if gap > 0.015 else "int8"), (gap, shipped)
        # The protocol's figures: validation and test, keyword-only beside 10-class.
        for split in ("val", "test", "test_clean"):
            c = metrics["protocol"]["clips"][split]
            assert 0 <= c["accuracy"] <= 1 and c["keyword_accuracy"] is not None, split
        assert set(metrics["split"]) == {"train", "val", "test"}
        assert metrics["sizes"]["int8"] > 0 and metrics["sizes"]["float"] > 0
        assert (out / "kws-float.tflite").exists() == (shipped == "int8")
        labels = (out / "labels.txt").read_text().split("\n")[:-1]
        assert labels == C.LABELS
        meta = tomllib.loads((out / "kws.toml").read_text())
        assert set(meta) == set(TOML_KEYS) | {"front_end"}
        assert meta["front_end"] == "stft"
        for sec, keys in TOML_KEYS.items():
            assert set(meta[sec]) == keys, (sec, set(meta[sec]) ^ keys)
        # The runtime refuses a model file whose sha256 is not the pinned one.
        import hashlib
        pinned = hashlib.sha256((out / meta["model"]["file"]).read_bytes()).hexdigest()
        assert meta["model"]["sha256"] == pinned
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
        check_finetune(tmp, out, cache)
        check_finetune_embedding_head(tmp, cache)
        check_distill_and_reexport(tmp, out, cache)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check_eval_audio_only(cache: Path) -> None:
    """The protocol's evaluation clips made without the training set (what adapt_trial
    measures on) are the ones `dataset.build` made with it, value for value."""
    from kws import dataset, synth  # noqa: PLC0415

    settings = synth.synthesize(cache, 1234, jobs=1, scale=0.1, engines={"espeak"})
    for split in ("val", "test", "test_clean"):
        [f] = cache.glob(f"eval-{split}-*.npz")
        with np.load(f) as z:
            built = {k: z[k] for k in z.files}
        f.rename(f.with_name("built-" + f.name))
        again = dataset.eval_audio_only(cache, settings, 1234, split, aug_copies=1, workers=1)
        assert f.exists(), f"{f} written again under the name build() gives it"
        assert set(again) == set(built) and len(built["y"]) > 0, split
        for k in built:
            assert np.array_equal(built[k], again[k]), (split, k)


def make_takes(root: Path, words=("go", "stop"), per_word=6) -> None:
    """A `chatterbox enroll` folder: espeak-ng takes, every third one in testing_list.txt."""
    import subprocess  # noqa: PLC0415

    listed = []
    for w in words:
        (root / w).mkdir(parents=True)
        for i in range(per_word):
            name = f"owner_nohash_{i}.wav"
            # An argument list, never a shell: file names stay data.
            subprocess.run(["espeak-ng", "-s", str(140 + 20 * i), "-w", str(root / w / name), w],
                           check=True)
            if i % 3 == 2:
                listed.append(f"{w}/{name}")
    (root / "testing_list.txt").write_text("\n".join(listed) + "\n")


def check_finetune(tmp: Path, base: Path, cache: Path) -> None:
    """Fine-tune the tiny model on espeak 'owner' takes: new files in --out, the base model
    untouched, the feature contract (mean/std) unchanged, before/after figures reported."""
    import hashlib  # noqa: PLC0415
    import json  # noqa: PLC0415

    from kws.pipeline import main  # noqa: PLC0415

    assert (base / "kws.weights.h5").stat().st_size > 0
    takes, out = tmp / "takes", tmp / "owner-model"
    make_takes(takes, per_word=6)
    digest = {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in base.iterdir()}
    common = ["--cache", str(cache), "--engines", "espeak", "--scale", "0.1",
              "--aug-copies", "1", "--jobs", "1", "--threads", "1"]
    rc = main(["--finetune", str(takes), "--base", str(base), "--out", str(out),
               "--epochs", "1", "--max-steps", "2", "--owner-copies", "2", "--replay", "40",
               *common])
    assert rc == 0
    for f in ("kws.tflite", "labels.txt", "kws.toml", "kws.weights.h5", "README.md",
              "metrics.json"):
        assert (out / f).stat().st_size > 0, f
    assert {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in base.iterdir()} \
        == digest, "the base model changed"
    old = tomllib.loads((base / "kws.toml").read_text())["features"]
    new = tomllib.loads((out / "kws.toml").read_text())["features"]
    assert new == old, "fine-tuning must keep the feature contract"
    ft = json.loads((out / "metrics.json").read_text())["finetune"]
    # 6 takes per word: 3 train, 1 validation (decides), 2 held out (reported).
    assert (ft["train_takes"], ft["val_takes"], ft["test_takes"]) == (6, 2, 4)
    assert ft["before"]["owner_test"] is not None
    assert ft["after"][ft["shipped"]]["owner_test"] is not None
    assert ft["before"]["owner_val"] is not None and isinstance(ft["keep"], bool)
    assert "Fine-tuned on the owner's voice" in (out / "README.md").read_text()
    # Mistakes a person can make are refused with exit code 2, writing nothing.
    assert main(["--finetune", str(tmp / "no-such-dir"), "--base", str(base),
                 "--out", str(tmp / "x"), *common]) == 2
    assert main(["--finetune", str(takes), "--base", str(base), "--out", str(base),
                 "--epochs", "1", "--max-steps", "1", "--no-replay", *common]) == 2
    assert not (tmp / "x").exists()


def check_finetune_embedding_head(tmp: Path, cache: Path) -> None:
    """`--finetune` with an embedding model folder as --base retrains only the head: the
    feature models and their pins are copied unchanged, only the head's pin changes, and the
    head keeps its [1, N, 96] -> 10 contract. The base is an untrained head (no training in
    the smoke test), N = 4 to keep the embeddings cheap."""
    import hashlib  # noqa: PLC0415
    import json  # noqa: PLC0415

    from kws import contract  # noqa: PLC0415
    from kws import embedding as E  # noqa: PLC0415
    from kws import train_head as H  # noqa: PLC0415
    from kws.pipeline import main  # noqa: PLC0415

    base, out, takes = tmp / "emb-base", tmp / "emb-owner", tmp / "emb-takes"
    base.mkdir()
    n = 4
    head = H.make_head(n, 1, "shared", 8, 8)
    H.export(head, base / "head.tflite", n, False)
    (base / "labels.txt").write_text("\n".join(C.LABELS) + "\n")
    for f in (E.MEL_FILE, E.EMBEDDING_FILE):
        shutil.copy(E.MODELS_DIR / f, base / f)
    (base / "kws.toml").write_text(
        'front_end = "embedding"\n\n[embedding]\nmel_file = "melspectrogram.tflite"\n'
        f'embedding_file = "embedding_model.tflite"\nembeddings = {n}\n\n[model]\n'
        'file = "head.tflite"\nlabels = "labels.txt"\noutput = "softmax"\n')
    contract.pin(base / "kws.toml")
    (base / "metrics.json").write_text(json.dumps(
        {"arch": "shared", "head": {"shared": 8, "hidden": 8}, "embeddings": n}))
    make_takes(takes, per_word=6)
    digest = {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in base.iterdir()}
    rc = main(["--finetune", str(takes), "--base", str(base), "--out", str(out),
               "--cache", str(cache), "--epochs", "1", "--max-steps", "2",
               "--owner-copies", "1", "--no-replay", "--jobs", "1", "--threads", "1"])
    assert rc == 0
    assert {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in base.iterdir()} \
        == digest, "the base model changed"
    old, new = (tomllib.loads((d / "kws.toml").read_text()) for d in (base, out))
    assert new["embedding"] == old["embedding"], "the feature models must stay as they were"
    assert new["model"]["sha256"] == hashlib.sha256((out / "head.tflite").read_bytes()).hexdigest()
    for f in (E.MEL_FILE, E.EMBEDDING_FILE):
        assert (out / f).read_bytes() == (base / f).read_bytes(), f
    ft = json.loads((out / "metrics.json").read_text())["finetune"]
    assert (ft["train_takes"], ft["val_takes"], ft["test_takes"]) == (6, 2, 4)
    assert ft["after"]["float"]["owner_test"] is not None and isinstance(ft["keep"], bool)
    from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415

    it = Interpreter(model_path=str(out / "head.tflite"))
    it.allocate_tensors()
    assert list(it.get_input_details()[0]["shape"]) == [1, n, 96]
    assert list(it.get_output_details()[0]["shape"]) == [1, len(C.LABELS)]


def check_distill_and_reexport(tmp: Path, teacher: Path, cache: Path) -> None:
    """Distil the tiny model into a student on the same data; refuse teachers that cannot
    teach it; re-export a folder and get the same model back."""
    import json  # noqa: PLC0415

    from kws.pipeline import main  # noqa: PLC0415
    from kws.reexport import main as reexport  # noqa: PLC0415

    common = ["--cache", str(cache), "--engines", "espeak", "--scale", "0.1",
              "--aug-copies", "1", "--jobs", "1", "--threads", "1", "--no-stream",
              "--fixtures", ""]
    student = tmp / "student"
    assert main(["--distill", str(teacher), "--arch", "ds-cnn-pyramid-lite", "--out",
                 str(student), "--epochs", "1", "--max-steps", "2", *common]) == 0
    m = json.loads((student / "metrics.json").read_text())
    assert m["arch"] == "ds-cnn-pyramid-lite"
    assert m["distill"]["teacher_arch"] == json.loads(
        (teacher / "metrics.json").read_text())["arch"]
    assert "--distill" in m["command"]
    # A teacher trained on other data (the shipped model: other mean/std) or no teacher at
    # all is refused before any training, with exit code 2.
    for bad in (HERE.parent / "models", tmp / "no-such-teacher"):
        assert main(["--distill", str(bad), "--out", str(tmp / "y"), "--epochs", "1",
                     "--max-steps", "1", *common]) == 2, bad
    assert not (tmp / "y").exists()
    again = tmp / "reexported"
    assert reexport([str(student), "--out", str(again), "--cache", str(cache),
                     "--jobs", "1"]) == 0
    r = json.loads((again / "metrics.json").read_text())["reexport"]
    assert r["float_max_diff"] <= 1e-5, r
    assert r.get("int8_same_top_class", 1.0) >= 0.995, r
    assert reexport([str(student), "--out", str(student), "--cache", str(cache)]) == 2
    # A fine-tuned folder (check_finetune's) is refused: its int8 calibration came from the
    # owner's takes, which a re-export cannot rebuild.
    assert reexport([str(tmp / "owner-model"), "--out", str(tmp / "z"),
                     "--cache", str(cache)]) == 2
    assert not (tmp / "z").exists()


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
                import traceback  # noqa: PLC0415

                traceback.print_exc()
                print(f"FAIL {name}: {type(e).__name__}: {e}")
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
