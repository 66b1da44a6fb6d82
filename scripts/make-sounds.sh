#!/usr/bin/env bash
# Synthesizes the cue sounds in sounds/ with sox — no downloads, no samples.
# Usage: scripts/make-sounds.sh [OUTDIR]   (default: sounds/ beside this script's repo)
# Deterministic: dithering is off (-D), so a rerun gives identical files.
# Needs: sox (apt-get install sox). Output: 48 kHz, 2 ch, S16_LE WAVs, the Codec Zero's
# native format, so the player never has to resample a cue (fastest start).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-"$here/sounds"}
command -v sox >/dev/null || { echo "make-sounds: sox is missing: apt-get install sox" >&2; exit 1; }
mkdir -p "$out"
fmt=(-r 48000 -c 2 -b 16 -e signed-integer)

# burp: held 10 s, recording is about to start. A gurgly falling growl: a sawtooth
# sweeping 140 -> 55 Hz, amplitude-wobbled at 28 Hz, low-passed, with a fast fade.
sox -D -n "${fmt[@]}" "$out/burp.wav" \
  synth 0.55 sawtooth 140:55 synth 0.55 sine amod 28 gain -8 \
  lowpass 900 overdrive 8 gain -n -3 fade q 0.01 0.55 0.18

# erase: held 20 s, let go to erase everything. Two falling burps, the second lower,
# so it is clearly not the first cue.
sox -D -n "${fmt[@]}" "$out/erase-a.wav" \
  synth 0.35 sawtooth 160:90 synth 0.35 sine amod 24 gain -8 lowpass 900 overdrive 8 fade q 0.01 0.35 0.1
sox -D -n "${fmt[@]}" "$out/erase-b.wav" \
  synth 0.45 sawtooth 90:40 synth 0.45 sine amod 20 gain -8 lowpass 700 overdrive 8 fade q 0.01 0.45 0.15
sox -D -n "${fmt[@]}" "$out/gap.wav" trim 0 0.08
sox -D "$out/erase-a.wav" "$out/gap.wav" "$out/erase-b.wav" "$out/erase.wav" gain -n -3
rm -f "$out/erase-a.wav" "$out/erase-b.wav" "$out/gap.wav"

# empty: short press with no recordings. A soft two-note "uh-oh" (A4 then E4).
sox -D -n "${fmt[@]}" "$out/empty-a.wav" synth 0.14 sine 440 fade q 0.01 0.14 0.04
sox -D -n "${fmt[@]}" "$out/empty-b.wav" synth 0.22 sine 330 fade q 0.01 0.22 0.08
sox -D "$out/empty-a.wav" "$out/empty-b.wav" "$out/empty.wav" gain -n -6
rm -f "$out/empty-a.wav" "$out/empty-b.wav"

for f in burp erase empty; do
  printf '%-10s %s s\n' "$f.wav" "$(soxi -D "$out/$f.wav")"
done
