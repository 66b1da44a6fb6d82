#!/usr/bin/env bash
# `chatterbox listen FILE` streams the file: its peak memory must not grow with the file.
# Makes a 2-hour 48 kHz stereo WAV (1.4 GB, a quiet tone) in a temp folder, runs the release
# binary on it under /usr/bin/time and fails if the peak RSS reaches LIMIT_MB (default 50).
# Usage: scripts/check-listen-memory.sh [BINARY]   (default: target/release/chatterbox)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bin="${1:-target/release/chatterbox}"
limit_mb="${LIMIT_MB:-50}"
[ -x "$bin" ] || { echo "check-listen-memory: no binary at $bin (cargo build --release)" >&2; exit 1; }
command -v sox >/dev/null || scripts/deps.sh
[ -x /usr/bin/time ] || scripts/deps.sh time
work="$(mktemp -d)"
trap 'rm -rf -- "$work"' EXIT
sox -n -r 48000 -c 2 -b 16 "$work/two-hours.wav" synth 7200 sine 440 vol 0.05
# The repository's LiteRT library: a binary built for the .deb has only the installed run path.
LD_LIBRARY_PATH="$PWD/third_party/litert/$(uname -m)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    /usr/bin/time -f '%M' -o "$work/rss" "$bin" listen "$work/two-hours.wav" >/dev/null
rss_kb="$(tail -n 1 "$work/rss")"
rss_mb=$((rss_kb / 1024))
echo "check-listen-memory: listen on a 2-hour 48 kHz stereo file ($(du -m "$work/two-hours.wav" | cut -f1) MB): peak RSS ${rss_mb} MB (limit ${limit_mb} MB)"
[ "$rss_mb" -lt "$limit_mb" ] || { echo "check-listen-memory: peak RSS ${rss_mb} MB is not under ${limit_mb} MB" >&2; exit 1; }
