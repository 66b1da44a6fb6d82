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
  --script scripts/demo.sim
sox -t raw -r 48000 -c 2 -b 16 -e signed-integer "$work/speaker.raw" "$work/speaker.wav"

# Part 2: voice commands heard from the microphone, not typed. espeak-ng says a few
# keywords between other words, two seconds apart; the session runs in real time so the
# recognizer hears them as they are "spoken" (about 20 s).
phrases=("Hello there, little box." "Go!" "Then turn it up." "Please stop." "Yes." "Turn left.")
parts=()
for i in "${!phrases[@]}"; do
  espeak-ng -s 140 -w "$work/phrase$i.wav" "${phrases[$i]}"
  sox "$work/phrase$i.wav" -r 48000 -c 2 "$work/phrase$i-padded.wav" pad 0 2
  parts+=("$work/phrase$i-padded.wav")
done
sox "${parts[@]}" "$work/voice.wav"
sox "$work/voice.wav" -b 16 -e signed-integer -t raw "$work/voice.raw" pad 0 3
cat >> "$work/.asoundrc" <<ASOUND
pcm.demo_voice { type file slave.pcm "null" file "/dev/null" infile "$work/voice.raw" format "raw" }
ASOUND
sed 's/^capture_device = .*/capture_device = "demo_voice"/' "$work/chatterbox.toml" >"$work/voice.toml"
echo
echo "== the microphone says: ${phrases[*]}"
echo "== chatterbox sim --script scripts/demo-voice.sim   (real time)"
HOME="$work" "$bin" --config "$work/voice.toml" sim --allow-root --seed 7 \
  --script scripts/demo-voice.sim 2>&1 | grep --line-buffered -e '^>' -e '\[screen\] heard' -e '\[status\]'
echo
echo "What the toy played in part 1: $work/speaker.wav ($(soxi -d "$work/speaker.wav"))"
echo "Listen with: aplay $work/speaker.wav   (or play it from any file manager)"
