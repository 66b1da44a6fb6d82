#!/usr/bin/env bash
# Build the Debian packages with cargo-deb, on an x86_64 Debian/Ubuntu PC:
#   target/debian/chatterbox_<version>-1_amd64.deb   (PCs)
#   target/debian/chatterbox_<version>-1_arm64.deb   (Raspberry Pi OS 64-bit, Bookworm or newer)
#
# Usage: scripts/build-deb.sh [--arch amd64|arm64|all]   (default: all)
#
# Needs cargo-deb (`cargo install cargo-deb --locked`). The arm64 package uses the cross
# set-up of scripts/ci-aarch64.sh, which this script runs (--build-only) when the cross
# compiler or the aarch64 LiteRT library is missing.
#
# What goes in: [package.metadata.deb] in Cargo.toml lists it. This script renders the parts
# that depend on the installed layout into target/deb-assets/:
#   * the maintainer scripts, packaging/deb/{postinst,prerm,postrm} with scripts/service-lib.sh
#     pasted in at their SERVICE-LIB marker: install.sh and the package share one description
#     of paths, user and start-up, and postrm still has it after the package's files are gone;
#   * /etc/chatterbox/config.toml (a conffile): config.example.toml with the recordings in
#     /var/lib/chatterbox; models and sounds are left "", so the binary finds them in
#     /usr/share/chatterbox;
#   * the systemd unit (shipped disabled; cron starts the toy);
#   * libLiteRt.so for the target, installed in /usr/lib/chatterbox, which the binary finds
#     through its run path ($ORIGIN/../lib/chatterbox, set via CHATTERBOX_INSTALL_RPATH).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo="$PWD"

say() { echo "build-deb: $*" >&2; }
warn() { echo "build-deb: warning: $*" >&2; }
die() {
    echo "build-deb: error: $*" >&2
    exit 1
}

arches=(amd64 arm64)
while [[ $# -gt 0 ]]; do
    case "$1" in
    --arch)
        [[ $# -ge 2 ]] || die "--arch needs amd64, arm64 or all"
        case "$2" in
        amd64 | arm64) arches=("$2") ;;
        all) arches=(amd64 arm64) ;;
        *) die "unknown --arch '$2': use amd64, arm64 or all" ;;
        esac
        shift 2
        ;;
    -h | --help)
        sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *) die "unknown argument '$1' (try --help)" ;;
    esac
done

command -v cargo-deb >/dev/null 2>&1 || die "cargo-deb is not installed: cargo install cargo-deb --locked"
[[ "$(uname -m)" == x86_64 ]] || [[ "${arches[*]}" != *arm64* ]] ||
    die "the arm64 package is cross-built on an x86_64 PC; on this $(uname -m) machine use --arch amd64 only if it is amd64, or build on a PC"

target_dir="${CARGO_TARGET_DIR:-$repo/target}"
assets="$repo/target/deb-assets" # Cargo.toml names this path
rm -rf "$assets"
mkdir -p "$assets/maintainer-scripts"

# The installed layout (the prefix is /usr for a package).
BIN=/usr/bin/chatterbox
LIB_DIR=/usr/lib/chatterbox
# shellcheck source=service-lib.sh
. scripts/service-lib.sh

for script in postinst prerm postrm; do
    grep -q '^#SERVICE-LIB#$' "packaging/deb/$script" || die "packaging/deb/$script lacks its #SERVICE-LIB# line"
    awk -v lib="scripts/service-lib.sh" '
        $0 == "#SERVICE-LIB#" {
            print "# ---- scripts/service-lib.sh, pasted in by scripts/build-deb.sh ----"
            while ((getline line < lib) > 0) print line
            print "# ---- end of scripts/service-lib.sh ----"
            next
        }
        { print }' "packaging/deb/$script" >"$assets/maintainer-scripts/$script"
    chmod 0755 "$assets/maintainer-scripts/$script"
done
render_config config.example.toml "" "" >"$assets/config.toml"
render_unit scripts/chatterbox.service "$BIN" "$LIB_DIR" >"$assets/chatterbox.service"

# Where the binary finds libLiteRt.so once installed (instead of this build tree).
export CHATTERBOX_INSTALL_RPATH="\$ORIGIN/../lib/chatterbox"

timings=()
for arch in "${arches[@]}"; do
    t0=$(date +%s)
    case "$arch" in
    amd64)
        scripts/fetch-litert.sh
        cp third_party/litert/x86_64/libLiteRt.so "$assets/libLiteRt.so"
        say "cargo deb (amd64)"
        cargo deb --locked --output "$target_dir/debian/"
        ;;
    arm64)
        if ! command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 ||
            [[ ! -f third_party/litert/aarch64/libLiteRt.so ]]; then
            say "setting up the cross build (scripts/ci-aarch64.sh --build-only)"
            # (its own check runs the binary under qemu from the build tree: build-tree run path)
            env -u CHATTERBOX_INSTALL_RPATH scripts/ci-aarch64.sh --build-only
        fi
        cp third_party/litert/aarch64/libLiteRt.so "$assets/libLiteRt.so"
        say "cargo deb (arm64)"
        LITERT_LIB_DIR="$repo/third_party/litert/aarch64" \
            cargo deb --locked --target aarch64-unknown-linux-gnu --output "$target_dir/debian/"
        ;;
    esac
    timings+=("$(printf '%-6s %5ds' "$arch" $(($(date +%s) - t0)))")
done

for arch in "${arches[@]}"; do
    deb="$(ls -t "$target_dir"/debian/chatterbox_*_"$arch".deb 2>/dev/null | head -n 1)"
    [[ -n "$deb" ]] || die "cargo deb reported success but no chatterbox_*_$arch.deb is in $target_dir/debian"
    say "$deb ($(($(stat -c %s "$deb") / 1024)) KiB)"
done
for t in "${timings[@]}"; do say "  built $t"; done
