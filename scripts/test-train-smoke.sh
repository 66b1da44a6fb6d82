#!/usr/bin/env bash
# Smoke test of the keyword-model training pipeline (scripts/train_kws.py): a tiny
# espeak-ng-only data set, a couple of steps, export, LiteRT check, and the files the Rust
# runtime reads. Needs TensorFlow, so it is not part of `cargo test`; CI runs it.
# First run: ~75 s to install the pinned venv (scripts/requirements-train.txt).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/deps.sh                      # espeak-ng, sox (the full voice set is not needed here)
scripts/setup-train-venv.sh --no-apt
"${CHATTERBOX_VENV:-$HOME/.cache/chatterbox/venv-train}/bin/python" scripts/test_train_smoke.py
