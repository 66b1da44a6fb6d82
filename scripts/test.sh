#!/usr/bin/env bash
# The whole test suite, from a fresh Debian/Ubuntu checkout:
#   installs missing packages, fetches the pinned LiteRT runtime, runs cargo test.
# Tests need no sound card, GPIO or display: ALSA runs through its userspace plugins
# with a private ~/.asoundrc in a temp HOME, GPIO and the OLED are simulated.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/deps.sh
if [ -x scripts/fetch-litert.sh ]; then scripts/fetch-litert.sh; fi
cargo test --locked "$@"
