#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages chatterbox needs to build and test, if missing.
# Idempotent: packages already installed are left alone and apt is not touched at all.
# Usage: scripts/deps.sh [extra-package ...]
set -euo pipefail
pkgs=(build-essential pkg-config libasound2-dev alsa-utils sox libsox-fmt-all espeak-ng python3 curl ca-certificates "$@")
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ! python3 -m pip --version >/dev/null 2>&1; then missing+=(python3-pip); fi
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then missing+=(python3-venv); fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "deps: cargo is missing. Install Rust with rustup (https://rustup.rs) or 'apt-get install cargo', then rerun." >&2
  exit 1
fi
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}"
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
