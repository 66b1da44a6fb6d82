"""Installs one training run as the shipped model, with the candidates table in its card.

Model searches train several runs into the cache (`train_kws.py --out CACHE/runN-models
--fixtures CACHE/runN-fixtures`, the log in CACHE/runN.log). This copies the chosen run's
files into models/ and its held-out clips into tests/fixtures/kws_clips/, adds every run's
figures to metrics.json as `candidates`, and rewrites models/README.md from it.

    python -m kws.install_candidate run3 run2 run3 run4 run5 run6   (from scripts/)

The first argument is the run to ship; choose it on validation accuracy, not on the test
figures (the card says so).
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

from . import config as C
from . import dataset, report, synth
from .pipeline import REPO

MODEL_FILES = ("kws.tflite", "kws-float.tflite", "kws.toml", "labels.txt", "kws.weights.h5")


def describe(m: dict) -> str:
    parts = [m.get("arch") or "ds-cnn-s", f"{m['train']['epochs']} epochs"]
    if m.get("balance_engines"):
        parts.append("--balance-engines")
    if m.get("speech_negatives"):
        parts.append(f"--speech-negatives {m['speech_negatives']:g}")
    if m.get("distill"):
        parts.append(f"distilled from {m['distill']['teacher_arch']}")
    return ", ".join(parts)


def train_accuracy(log: Path, epoch: int) -> float:
    """Training accuracy at `epoch`, from the run's log (metrics.json does not keep it)."""
    if log.exists():
        for line in log.read_text().splitlines():
            hit = re.search(rf"epoch {epoch}/\d+: loss [\d.]+ acc ([\d.]+)", line)
            if hit:
                return float(hit.group(1))
    return float("nan")


def candidate(cache: Path, run: str, shipped: bool) -> dict:
    m = json.loads((cache / f"{run}-models" / "metrics.json").read_text())
    stream = next(((r["hit_rate"], r["nonkw_fa_per_hour"])
                   for r in m.get("streaming", {}).get("sweep", [])
                   if abs(r["threshold"] - 0.85) < 1e-6), None)
    return {"name": f"{run}: {describe(m)}" + (" — **shipped**" if shipped else ""),
            "params": m["params"], "macs": m.get("macs"),
            "int8_kib": m["sizes"]["int8"] / 1024, "distilled": bool(m.get("distill")),
            "val": m["train"]["best_val_accuracy"], "test": m["int8_test"]["accuracy"],
            "test_clean": m["int8_test_clean"]["accuracy"],
            "train_acc": train_accuracy(cache / f"{run}.log", m["train"]["best_epoch"]),
            "stream": stream}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 2:
        print(__doc__)
        return 2
    cache = C.default_cache()
    chosen, runs = argv[0], argv[1:]
    src = cache / f"{chosen}-models"
    m = json.loads((src / "metrics.json").read_text())
    m["candidates"] = [candidate(cache, r, r == chosen) for r in runs]
    m.setdefault("scale", 2.0)
    m.setdefault("aug_copies", 3)
    if m.get("balance_engines") and not m.get("engine_copies"):
        settings = synth.make_settings(m["seed"], scale=m["scale"])
        m["engine_copies"] = dataset.engine_copies(settings, m["aug_copies"])
    out = REPO / "models"
    for f in MODEL_FILES:
        shutil.copy(src / f, out / f)
    (out / "metrics.json").write_text(json.dumps(m, indent=1))
    (out / "README.md").write_text(report.model_card(m))
    fixtures = REPO / "tests" / "fixtures" / "kws_clips"
    for old in fixtures.glob("*.wav"):
        old.unlink()
    for f in (cache / f"{chosen}-fixtures").iterdir():
        shutil.copy(f, fixtures / f.name)
    print(f"installed {chosen} from {src}; candidates: {', '.join(runs)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
