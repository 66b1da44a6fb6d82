#!/usr/bin/env bash
# The keyword recognizer's bench, Python and Rust in one run on one machine (issue 3).
#
#   scripts/bench_kws.sh
#
# 1. Uses the training venv ${CHATTERBOX_VENV:-$HOME/.cache/chatterbox/venv-train} if it has
#    tensorflow, numpy, scipy and ai-edge-litert; otherwise creates target/bench/venv with the
#    versions pinned in scripts/requirements-train.txt (only those four packages).
# 2. Builds the ORIGINAL architecture (129x124 input, Resizing 32x32, Conv 32, Conv 64,
#    Dense 128; 6.5 MB float, about 16.4 M MACs) with seeded random weights as
#    target/bench/original.tflite — outside git (target/ is ignored); never commit it.
# 3. Times the Python loops (scripts/bench_kws_python.py) -> target/bench/python.toml.
# 4. Builds the release binary (for the daemon RSS figure) and runs
#    `cargo bench --bench kws_pipeline`, which prints every figure and one table with goals.
#
# Everything CPU-heavy runs under `nice -n 10`. On a shared machine compare the CPU-time
# figures: wall time there mostly measures waiting for a core.
#
# Environment: CARGO_TARGET_DIR (honoured), KWS_BENCH_ITERS (windows per Rust figure, 300),
# KWS_BENCH_LISTEN_SECONDS (300), KWS_BENCH_FRESH (Python windows, interpreter per window, 100),
# KWS_BENCH_ONCE (Python windows, interpreter once, 300), KWS_BENCH_SKIP_RSS (set: skip sim).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
out="$repo/target/bench"
mkdir -p "$out"

pin() { # the version pinned for package $1 in requirements-train.txt
	grep -E "^$1==" scripts/requirements-train.txt | head -n1
}

has_deps() {
	"$1/bin/python" -c 'import tensorflow, numpy, scipy, ai_edge_litert' >/dev/null 2>&1
}

venv="${CHATTERBOX_VENV:-$HOME/.cache/chatterbox/venv-train}"
if [[ ! -x "$venv/bin/python" ]] || ! has_deps "$venv"; then
	venv="$out/venv"
	if [[ ! -x "$venv/bin/python" ]] || ! has_deps "$venv"; then
		echo "bench_kws: creating $venv (tensorflow-cpu, numpy, scipy, ai-edge-litert as pinned in scripts/requirements-train.txt)"
		python3 -m venv "$venv"
		"$venv/bin/pip" install --quiet "$(pin tensorflow-cpu)" "$(pin numpy)" "$(pin scipy)" "$(pin ai-edge-litert)"
	fi
fi
echo "bench_kws: python venv $venv"
export TF_CPP_MIN_LOG_LEVEL=2

if [[ ! -s "$out/original.tflite" ]]; then
	nice -n 10 "$venv/bin/python" scripts/bench_kws_python.py build "$out/original.tflite"
fi
nice -n 10 "$venv/bin/python" scripts/bench_kws_python.py bench "$out/original.tflite" "$out/python.toml" \
	--fresh-windows "${KWS_BENCH_FRESH:-100}" --once-windows "${KWS_BENCH_ONCE:-300}"

scripts/fetch-litert.sh >/dev/null
if [[ -z "${KWS_BENCH_SKIP_RSS:-}" ]]; then
	nice -n 10 cargo build --release --quiet --bin chatterbox
fi
KWS_BENCH_ORIGINAL="$out/original.tflite" KWS_BENCH_PYTHON="$out/python.toml" \
	nice -n 10 cargo bench --quiet --bench kws_pipeline
