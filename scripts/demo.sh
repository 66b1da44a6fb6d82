#!/usr/bin/env bash
# The chatterbox demo on any Debian/Ubuntu machine — no Pi, no sound card.
# The microphone is a sentence spoken by espeak-ng, fed through ALSA's `file` plugin; the
# speaker is a file. Everything runs in a temp folder with its own ~/.asoundrc: nothing on
# the system is touched. Afterwards, listen to what the toy played: the path is printed.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
scripts/deps.sh
[ -x scripts/fetch-litert.sh ] && scripts/fetch-litert.sh >/dev/null
cargo build --release --locked --quiet
bin="$repo/target/release/chatterbox"

work=$(mktemp -d /tmp/chatterbox-demo.XXXXXX)
# The microphone: espeak-ng speaking, converted to exactly the format chatterbox opens
# (48 kHz, 2 ch, S16_LE raw: the file plugin's infile cannot convert).
espeak-ng -s 150 -w "$work/speech.wav" \
  "Hello! I am the chatter box. Hold my button for ten seconds and I will remember what you say."
sox "$work/speech.wav" -r 48000 -c 2 -b 16 -e signed-integer -t raw "$work/mic.raw" pad 0 1 repeat 9
cat > "$work/.asoundrc" <<ASOUND
pcm.demo_mic { type file slave.pcm "null" file "/dev/null" infile "$work/mic.raw" format "raw" }
pcm.demo_speaker { type file slave.pcm "null" file "$work/speaker.raw" format "raw" }
ASOUND
cat > "$work/chatterbox.toml" <<CONFIG
[audio]
capture_device = "demo_mic"
playback_device = "demo_speaker"
[library]
recordings_dir = "recordings"
sounds_dir = "$repo/sounds"
[keywords]
model = "$repo/models/kws.toml"
CONFIG
echo "== chatterbox sim --virtual-time --script scripts/demo.sim"
HOME="$work" "$bin" --config "$work/chatterbox.toml" sim --allow-root --virtual-time --seed 7 \
  --script scripts/demo.sim 2> >(grep --line-buffered -v -e '^INFO: ' -e '^WARNING: All log' >&2)
sox -t raw -r 48000 -c 2 -b 16 -e signed-integer "$work/speaker.raw" "$work/speaker.wav"
echo
echo "What the toy played: $work/speaker.wav ($(soxi -d "$work/speaker.wav"))"
echo "Listen with: aplay $work/speaker.wav   (or play it from any file manager)"
