"""The whole pipeline as one command: synthesize -> augment -> train -> export -> check ->
write models/ (model, labels, feature metadata, model card) and the test fixtures.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from . import config as C
from . import contract, dataset, evaluate, features, protocol, protocol_split, report, sounds, synth

REPO = Path(__file__).resolve().parents[2]


def _optional_path(text: str) -> Path | None:
    """A path argument where '' means none (Path('') would be the current folder)."""
    return Path(text) if text else None


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog="train_kws.py",
        description="Train the chatterbox keyword model from offline synthesized speech.")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--cache", type=Path, default=C.default_cache(),
                   help="synthesized clips and arrays (default ~/.cache/chatterbox/kws-data "
                        "or $CHATTERBOX_KWS_DATA)")
    p.add_argument("--out", type=Path, default=REPO / "models",
                   help="where kws.tflite, labels.txt, kws.toml and README.md go")
    p.add_argument("--fixtures", type=_optional_path,
                   default=REPO / "tests" / "fixtures" / "kws_clips",
                   help="where held-out test clips for the runtime check go ('' to skip)")
    p.add_argument("--scale", type=float, default=2.0,
                   help="multiplier on the number of voice settings per family")
    p.add_argument("--aug-copies", type=int, default=3,
                   help="augmented copies of each training keyword clip")
    p.add_argument("--epochs", type=int, default=None,
                   help="training epochs (default 10; 6 with --finetune)")
    p.add_argument("--arch", default="ds-cnn-s",
                   help="network: ds-cnn-s (flat, 24 k parameters), ds-cnn-pyramid "
                        "(130 k parameters, same MACs) or ds-cnn-pyramid-lite (~70 k, ~60 %% "
                        "of the MACs)")
    p.add_argument("--distill", type=Path, default=None, metavar="TEACHER_DIR",
                   help="distil from this trained model folder (kws.weights.h5, metrics.json "
                        "with its arch; same data and feature normalization) into --arch")
    p.add_argument("--distill-alpha", type=float, default=0.5,
                   help="weight of the label loss; the rest is the teacher's soft targets")
    p.add_argument("--distill-temperature", type=float, default=3.0,
                   help="softening of both distributions in the distillation loss")
    p.add_argument("--max-steps", type=int, default=0, help="cap steps per epoch (smoke tests)")
    p.add_argument("--balance-engines", action="store_true",
                   help="more augmented copies for engines with few voices (see "
                        "dataset.engine_copies)")
    p.add_argument("--speech-negatives", type=float, default=0.0,
                   help="training crops of running non-keyword speech labelled unknown, as a "
                        "multiple of one keyword's example count (0 = none)")
    p.add_argument("--jobs", type=int, default=2, help="processes for synthesis/augmentation")
    p.add_argument("--threads", type=int, default=2, help="TensorFlow intra-op threads")
    p.add_argument("--speech-commands", type=Path, default=None,
                   help="a Google Speech Commands folder to add (official layout with "
                        "validation_list.txt/testing_list.txt)")
    p.add_argument("--speech-commands-only", action="store_true",
                   help="train on --speech-commands alone, without synthesized voices")
    p.add_argument("--engines", default="",
                   help="comma list to restrict engines (espeak,flite,pico,festival,piper,hibari)")
    p.add_argument("--stream-keywords", type=int, default=800,
                   help="keyword occurrences in the streaming test")
    p.add_argument("--no-stream", action="store_true", help="skip streaming evaluation")
    ft = p.add_argument_group(
        "fine-tuning on the owner's takes (see scripts/kws/finetune.py)")
    ft.add_argument("--finetune", type=Path, default=None, metavar="TAKES_DIR",
                    help="fine-tune the --base model on this `chatterbox enroll` folder "
                         "instead of training from scratch")
    ft.add_argument("--base", type=Path, default=REPO / "models",
                    help="model to start from (needs kws.weights.h5; an embedding model "
                         "folder such as models/embedding: only its head is retrained, from "
                         "head.tflite; default models/)")
    ft.add_argument("--owner-copies", type=int, default=30,
                    help="augmented copies of each take")
    ft.add_argument("--replay", type=int, default=4000,
                    help="synthetic training examples mixed in, so nothing is forgotten")
    ft.add_argument("--no-replay", action="store_true",
                    help="skip the replay set (no synthetic data needed; riskier)")
    ft.add_argument("--lr", type=float, default=3e-4, help="fine-tuning learning rate")
    args = p.parse_args(argv)
    if args.epochs is None:
        args.epochs = 6 if args.finetune else 10
    if args.finetune and args.out == REPO / "models":
        args.out = REPO / "models-owner"
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    t_start = time.time()
    args.cache.mkdir(parents=True, exist_ok=True)
    logf = open(args.cache / "pipeline.log", "a")

    def log(msg):
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        print(line, flush=True)
        logf.write(line + "\n")
        logf.flush()

    log(f"pipeline: {' '.join(sys.argv)}")
    if args.finetune is not None:
        from . import finetune, finetune_head  # noqa: PLC0415

        if finetune_head.is_embedding(args.base):  # retrain only the embedding model's head
            return finetune_head.run(args, log)
        return finetune.run(args, log)
    engines = set(args.engines.split(",")) if args.engines else None
    if args.speech_commands_only:
        if args.speech_commands is None:
            log("--speech-commands-only needs --speech-commands DIR")
            return 2
        engines = set()
    stages: dict[str, float] = {}
    t_stage = time.time()

    def stage(name):
        nonlocal t_stage
        stages[name] = time.time() - t_stage
        t_stage = time.time()

    split_info = _check_split(args, log)
    if isinstance(split_info, str):
        log(split_info)
        return 2
    settings = synth.synthesize(args.cache, args.seed, jobs=args.jobs, scale=args.scale,
                                engines=engines, log=log)
    if not args.no_stream:
        synth.synthesize_confusers(args.cache, settings, args.seed, jobs=args.jobs, log=log)
    stage("synthesis")
    data, ds_path = dataset.build(args.cache, settings, args.seed, aug_copies=args.aug_copies,
                                  workers=args.jobs, speech_commands=args.speech_commands,
                                  balance_engines=args.balance_engines,
                                  speech_negatives=args.speech_negatives, log=log)
    stage("augmentation+features")
    counts = {s: np.bincount(y, minlength=len(C.LABELS)).tolist() for s, (_, y, _) in
              data.items()}
    mean, std = _norm(data, args.seed)
    log(f"features: mean {mean:.4f} std {std:.4f}")

    teacher = None
    if args.distill is not None:
        teacher = _teacher(args.distill, mean, std)
        if isinstance(teacher, str):
            log(teacher)
            return 2
    from . import train as T  # noqa: PLC0415  (TensorFlow loads only from here on)

    core, tinfo = T.train(data, mean, std, args.epochs, args.seed, args.threads,
                          max_steps=args.max_steps or None, arch=args.arch, teacher=teacher,
                          alpha=args.distill_alpha, temperature=args.distill_temperature,
                          log=log)
    stage("training")
    rng = np.random.default_rng(args.seed)
    Xtr = data["train"][0]
    rep = Xtr[rng.choice(len(Xtr), size=min(400, len(Xtr)), replace=False)]
    tmp_out = args.cache / "export"
    paths = T.export(core, tmp_out, rep, log=log)

    metrics = {"seed": args.seed, "arch": args.arch, "scale": args.scale,
               "balance_engines": args.balance_engines, "engines": args.engines,
               "speech_negatives": args.speech_negatives,
               "distill": ({"teacher": str(args.distill), "teacher_arch": teacher[0],
                            "alpha": args.distill_alpha,
                            "temperature": args.distill_temperature} if teacher else None),
               "engine_copies": dataset.engine_copies(settings, args.aug_copies)
               if args.balance_engines else {},
               "aug_copies": args.aug_copies, "counts": counts, "train": tinfo, "mean": mean, "std": std,
               "settings": _setting_summary(settings), "params": int(core.count_params())}
    from .model import count_macs  # noqa: PLC0415

    metrics["macs"] = count_macs(core)
    metrics["split"] = split_info
    models = {k: evaluate.TfliteModel(p) for k, p in paths.items()}
    for kind, m in models.items():
        for split in ("test", "test_clean", "val"):
            X, y, fam = data[split]
            probs = m.predict(X)
            metrics[f"{kind}_{split}"] = protocol.clip_metrics(probs, y, fam)
            log(f"eval {kind} {split}: accuracy {metrics[f'{kind}_{split}']['accuracy']:.4f}")
    chosen = "int8"
    if metrics["float_val"]["accuracy"] - metrics["int8_val"]["accuracy"] > 0.015:
        chosen = "float"  # int8 must not cost more than 1.5 points on VALIDATION
    metrics["shipped"] = chosen
    metrics["sizes"] = {k: p.stat().st_size for k, p in paths.items()}
    stage("export+clip checks")

    scorer = protocol.StftTfliteScorer(paths[chosen], mean, std)
    metrics["protocol"] = protocol.measure(scorer, ds_path, args.cache, settings, args.seed,
                                           args.stream_keywords, not args.no_stream, log)
    stage("protocol (validation + test streams)")
    metrics["stage_seconds"] = stages

    # --- write models/ ---------------------------------------------------------------
    args.out.mkdir(parents=True, exist_ok=True)
    shutil.copy(paths[chosen], args.out / "kws.tflite")
    if chosen == "int8":
        shutil.copy(paths["float"], args.out / "kws-float.tflite")
    (args.out / "labels.txt").write_text("\n".join(C.LABELS) + "\n")
    (args.out / "kws.toml").write_text(features.toml_text(mean, std))
    contract.pin(args.out / "kws.toml")  # the runtime refuses unpinned model files
    # The trained weights, so `--finetune` can start from the shipped model.
    core.save_weights(args.out / "kws.weights.h5")
    metrics["wall_seconds"] = time.time() - t_start
    metrics["command"] = _command(args)
    if args.fixtures is not None:
        metrics["fixtures"] = _fixtures(args, ds_path, data, models[chosen], mean, std, log)
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    (args.out / "README.md").write_text(report.model_card(metrics))
    log(f"pipeline: done in {metrics['wall_seconds'] / 60:.1f} min -> {args.out}")
    return 0


def _norm(data, seed):
    from .train import norm_stats, normalize_inplace  # noqa: PLC0415

    mean, std = norm_stats(data["train"][0], seed)
    for split in data:
        normalize_inplace(data[split][0], mean, std)
    return mean, std


def _teacher(folder: Path, mean: float, std: float) -> tuple[str, Path] | str:
    """(arch, weights) of a distillation teacher, or why it cannot teach this run."""
    weights, metrics = folder / "kws.weights.h5", folder / "metrics.json"
    for f in (weights, metrics):
        if not f.is_file():
            return (f"--distill {folder}: {f.name} is missing; point it at a folder written by "
                    "train_kws.py (models/ or a --out folder)")
    m = json.loads(metrics.read_text())
    # The teacher only knows inputs normalized the way it was trained.
    if not (np.isclose(m.get("mean", np.nan), mean, rtol=1e-6)
            and np.isclose(m.get("std", np.nan), std, rtol=1e-6)):
        return (f"--distill {folder}: the teacher was trained with feature mean/std "
                f"{m.get('mean')}/{m.get('std')}, this data set has {mean}/{std}; train the "
                "student on the teacher's data (same --seed, --scale, --aug-copies, engines)")
    return m.get("arch", "ds-cnn-s"), weights


def _command(args) -> str:
    parts = ["scripts/setup-train-venv.sh &&",
             "nice -n 15 ${CHATTERBOX_VENV:-$HOME/.cache/chatterbox/venv-train}/bin/python",
             "scripts/train_kws.py", f"--seed {args.seed}", f"--scale {args.scale}",
             f"--aug-copies {args.aug_copies}", f"--epochs {args.epochs}"]
    if args.arch != "ds-cnn-s":
        parts.append(f"--arch {args.arch}")
    if args.distill:
        parts.append(f"--distill {args.distill} --distill-alpha {args.distill_alpha} "
                     f"--distill-temperature {args.distill_temperature}")
    if args.balance_engines:
        parts.append("--balance-engines")
    if args.speech_negatives:
        parts.append(f"--speech-negatives {args.speech_negatives}")
    if args.speech_commands:
        parts.append(f"--speech-commands {args.speech_commands}")
    if args.speech_commands_only:
        parts.append("--speech-commands-only")
    return " ".join(parts)


def _setting_summary(settings):
    out = {}
    for s in settings:
        d = out.setdefault(s.family, {"split": s.split, "engine": set(), "settings": 0})
        d["engine"].add(s.engine)
        d["settings"] += 1
    for d in out.values():
        d["engine"] = sorted(d["engine"])
    return out


def _check_split(args, log) -> dict | str:
    """What each split holds (for the card), or why training must not start: a speaker,
    espeak-ng variant, room, background or real prompt in two splits."""
    settings = synth.make_settings(args.seed, scale=args.scale)
    rooms = sounds.split_rooms(sounds.load_named_rirs(args.cache, args.seed, log))
    bgs = sounds.split_backgrounds(sounds.load_backgrounds(args.cache, log))
    speech = sounds.split_speech(sounds.load_asterisk(args.cache, log))
    problems = protocol_split.check(settings, rooms, bgs, speech)
    if problems:
        return ("split: the train/validation/test split leaks; fix scripts/kws/config.py:\n  "
                + "\n  ".join(problems))
    log("split: no speaker, espeak-ng variant, room, background or prompt in two splits")
    return protocol_split.describe(settings, rooms, bgs, speech)


def _fixtures(args, ds_path, data, model, mean, std, log):
    """A few held-out clips per label that the shipped model gets right with margin, for
    the Rust runtime's parity check (file name: <label>__<voice>.wav)."""
    h = ds_path.stem.split("-")[-1]
    audio_p = args.cache / f"test-clean-audio-{h}.npy"
    if not audio_p.exists():
        log("fixtures: no clean test audio cached; skipped")
        return []
    audio = np.load(audio_p)
    X, y, fam = data["test_clean"]
    probs = model.predict(X)
    args.fixtures.mkdir(parents=True, exist_ok=True)
    for old in args.fixtures.glob("*.wav"):
        old.unlink()
    rng = np.random.default_rng([args.seed, 11])
    written = []
    for li, label in enumerate(C.LABELS):
        cand = [i for i in np.nonzero(y == li)[0] if probs[i].argmax() == li
                and probs[i][li] >= 0.8]
        rng.shuffle(cand)
        used_fam = set()
        for i in cand:
            if fam[i] in used_fam:
                continue
            used_fam.add(fam[i])
            name = f"{label}__{fam[i]}.wav"
            sf.write(args.fixtures / name, audio[i], C.SAMPLE_RATE, subtype="PCM_16")
            written.append({"file": name, "label": label, "p": float(probs[i][li])})
            if len(used_fam) >= 2:
                break
    (args.fixtures / "expected.json").write_text(json.dumps(written, indent=1))
    (args.fixtures / "README.md").write_text(
        "# Keyword clips from test-split voices (a parity check)\n\n"
        "Written by `scripts/train_kws.py` with the model in `models/`. Each file is 1 s of "
        "16 kHz mono int16 audio named `<label>__<voice family>.wav`; every voice family here "
        "is in the test split (never heard in training). Clips were picked among "
        "those the shipped model classifies right with probability >= 0.8 in Python "
        "(ai-edge-litert), so the Rust runtime must classify them right too: this is a "
        "parity check of the runtime (features, quantization, invoke), not an accuracy "
        "figure. `expected.json` lists the label and the Python probability.\n")
    log(f"fixtures: {len(written)} clips in {args.fixtures}")
    return written
