#!/usr/bin/env bash
# Sets up everything the keyword-model pipeline needs, idempotently:
#   1. Debian packages for the offline speech synthesizers, the sound effects and the
#      real-speech test prompts (mbrola/pico live in contrib/non-free, which this script
#      enables through its OWN sources file, never by editing the system's).
#   2. A Python venv at ${CHATTERBOX_VENV:-$HOME/.cache/chatterbox/venv-train} with the
#      pinned packages of scripts/requirements-train.txt.
# Usage: scripts/setup-train-venv.sh [--no-apt]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${CHATTERBOX_VENV:-$HOME/.cache/chatterbox/venv-train}"
do_apt=1
[[ "${1:-}" == "--no-apt" ]] && do_apt=0

apt_pkgs=(
  espeak-ng sox libsox-fmt-all
  mbrola mbrola-us1 mbrola-us2 mbrola-us3 mbrola-en1
  # Foreign mbrola speakers that espeak-ng drives with English phonemes (accented English):
  mbrola-de1 mbrola-de2 mbrola-de3 mbrola-de4 mbrola-de5 mbrola-de6 mbrola-fr1 mbrola-fr4
  mbrola-nl2 mbrola-af1 mbrola-sw1 mbrola-sw2 mbrola-pl1 mbrola-hu1 mbrola-gr2 mbrola-ro1
  festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts
  festvox-rablpc16k festvox-don festvox-us1 festvox-us2 festvox-us3 festvox-en1
  flite libttspico-utils
  gcompris-qt-data asterisk-core-sounds-en-wav
)

if [[ $do_apt == 1 ]]; then
  if [[ $(id -u) != 0 ]]; then SUDO=sudo; else SUDO=; fi
  src=/etc/apt/sources.list.d/chatterbox-contrib-nonfree.sources
  if [[ ! -f $src ]]; then
    # Same mirror and suite as the system's main sources, only the extra components.
    codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")"
    $SUDO tee "$src" >/dev/null <<SRC
Types: deb
URIs: http://deb.debian.org/debian
Suites: ${codename}
Components: contrib non-free
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    $SUDO apt-get update -q
  fi
  missing=()
  for p in "${apt_pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if (( ${#missing[@]} )); then
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" \
      || { $SUDO apt-get update -q && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"; }
  fi
fi

py="${PYTHON:-python3}"
if [[ ! -x "$venv/bin/python" ]]; then
  mkdir -p "$(dirname "$venv")"
  "$py" -m venv "$venv"
fi
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$here/requirements-train.txt" | cut -d' ' -f1)"
if [[ ! -f $stamp || "$(cat "$stamp")" != "$want" ]]; then
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q -r "$here/requirements-train.txt"
  echo "$want" > "$stamp"
fi
echo "venv ready: $venv"
