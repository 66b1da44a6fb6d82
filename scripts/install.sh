#!/usr/bin/env bash
# Install chatterbox on Raspberry Pi OS (64-bit) so it starts at boot.
#
#   sudo scripts/install.sh                         # build with cargo, start from cron
#   sudo scripts/install.sh --binary PATH           # use a binary built elsewhere
#   sudo scripts/install.sh --systemd               # start with systemd instead of cron
#
# Cargo usually lives in the invoking user's ~/.cargo, which sudo does not see: build first,
#   cargo build --release --locked && sudo scripts/install.sh --binary target/release/chatterbox
#
# What it does (running it again changes nothing):
#   * apt: libasound2 (libasound2t64 on newer releases) and alsa-utils
#   * an unprivileged system user `chatterbox` in the audio, gpio and i2c groups
#   * $PREFIX/bin/chatterbox, sounds + models in $SHARE_DIR, the LiteRT library in $LIB_DIR
#   * $STATE_DIR/recordings for the clips (kept by uninstall.sh unless --purge)
#   * $CONF_DIR/config.toml from config.example.toml, only if there is none (yours is kept)
#   * `chatterbox setup-audio` (Codec Zero mixer + the ALSA names chatterbox_mic and
#     chatterbox_speaker in $ALSA_DROPIN), then `alsactl store`. Other programs keep
#     their default device; an /etc/asound.conf an older version wrote is retired.
#   * ONE `@reboot` line in the chatterbox user's crontab, or with --systemd the unit
#     chatterbox.service instead (switching removes the other one)
#
# Every path and command can be overridden from the environment, which is how
# tests/install_script.rs runs it in a throwaway root with fake system commands:
#   ROOT (prefix for every file written, default empty), PREFIX (/usr/local),
#   SHARE_DIR, LIB_DIR, STATE_DIR, CONF_DIR, SYSTEMD_DIR, ALSA_DROPIN, ASOUND_CONF (only
#   retired, never written), CHATTERBOX_USER,
#   SRC_DIR (the checkout), ARCH (LiteRT folder under third_party/litert),
#   APT_GET, APT_CACHE, CARGO, ID, GETENT, USERADD, USERMOD, CHOWN, CRONTAB, SYSTEMCTL,
#   ALSACTL, PKILL, PGREP, SKIP_APT=1, SKIP_SETUP_AUDIO=1.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SRC_DIR="${SRC_DIR:-$(dirname "$SCRIPT_DIR")}"

PREFIX="${PREFIX:-/usr/local}"
SHARE_DIR="${SHARE_DIR:-$PREFIX/share/chatterbox}"
LIB_DIR="${LIB_DIR:-$PREFIX/lib/chatterbox}"
SYSTEMD_DIR="${SYSTEMD_DIR:-/etc/systemd/system}"
ARCH="${ARCH:-$(uname -m)}"
APT_GET="${APT_GET:-apt-get}"
APT_CACHE="${APT_CACHE:-apt-cache}"
CARGO="${CARGO:-cargo}"
BIN="$PREFIX/bin/chatterbox"

say() { printf 'install: %s\n' "$*"; }
# The state, config and ALSA paths, the user, the crontab line, stop_toy, ...
# shellcheck source=service-lib.sh
. "$SCRIPT_DIR/service-lib.sh"
warn() { printf 'install: warning: %s\n' "$*" >&2; }
die() {
    printf 'install: error: %s\n' "$*" >&2
    exit 1
}

usage() {
    sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

binary=""
use_systemd=0
while [ $# -gt 0 ]; do
    case "$1" in
    --binary)
        [ $# -ge 2 ] || die "--binary needs a path"
        binary="$2"
        shift 2
        ;;
    --binary=*)
        binary="${1#--binary=}"
        shift
        ;;
    --systemd)
        use_systemd=1
        shift
        ;;
    -h | --help)
        usage
        exit 0
        ;;
    *) die "unknown option '$1' (see --help)" ;;
    esac
done

# Paths end up inside TOML strings, a crontab line and a unit file: refuse characters
# that would need quoting there rather than quote them differently in three languages.
for p in "$PREFIX" "$SHARE_DIR" "$LIB_DIR" "$STATE_DIR" "$CONF_DIR"; do
    case "$p" in
    /*) ;;
    *) die "'$p' must be an absolute path" ;;
    esac
    case "$p" in
    *[!A-Za-z0-9/._+-]*) die "'$p' contains characters this installer does not quote; use letters, digits and / . _ + -" ;;
    esac
done
case "$CHATTERBOX_USER" in
[a-z_]*) ;;
*) die "'$CHATTERBOX_USER' is not a valid user name" ;;
esac
case "$CHATTERBOX_USER" in
*[!a-z0-9_-]*) die "'$CHATTERBOX_USER' is not a valid user name" ;;
esac

if [ -z "$ROOT" ] && [ "$(id -u)" -ne 0 ]; then
    die "run as root: sudo $0 $*"
fi

# install_file SRC DEST MODE: copy only when the content differs, so a second run leaves
# every file (and its timestamp) alone.
install_file() {
    local src="$1" dest="$2" mode="$3"
    mkdir -p -- "$(dirname -- "$dest")"
    if [ -f "$dest" ] && cmp -s -- "$src" "$dest"; then
        chmod -- "$mode" "$dest"
        return 0
    fi
    cp -- "$src" "$dest.chatterbox-new"
    chmod -- "$mode" "$dest.chatterbox-new"
    mv -f -- "$dest.chatterbox-new" "$dest"
    say "installed $dest"
}

# write_file DEST MODE: stdin to DEST, again only when it differs.
write_file() {
    local dest="$1" mode="$2" tmp
    tmp="$(mktemp)"
    cat >"$tmp"
    install_file "$tmp" "$dest" "$mode"
    rm -f -- "$tmp"
}

# copy_tree SRC DEST: every file under SRC to the same place under DEST, read-only.
copy_tree() {
    local src="$1" dest="$2" f rel
    [ -d "$src" ] || return 0
    while IFS= read -r -d '' f; do
        rel="${f#"$src"/}"
        install_file "$f" "$dest/$rel" 0644
    done < <(find "$src" -type f -print0)
}

# ---------------------------------------------------------------------------------------
# 1. Packages.
if [ "${SKIP_APT:-0}" != 1 ]; then
    libasound=libasound2
    if "$APT_CACHE" show libasound2t64 >/dev/null 2>&1; then
        libasound=libasound2t64 # Debian trixie renamed it; libasound2 is then virtual
    fi
    pkgs=("$libasound" alsa-utils)
    if [ -z "$binary" ]; then
        pkgs+=(libasound2-dev pkg-config)
    fi
    say "apt-get install ${pkgs[*]}"
    "$APT_GET" install -y --no-install-recommends "${pkgs[@]}"
fi

# ---------------------------------------------------------------------------------------
# 2. The binary.
if [ -z "$binary" ]; then
    command -v "$CARGO" >/dev/null 2>&1 ||
        die "cargo not found. Build as your user first (cargo build --release --locked), then: sudo $0 --binary target/release/chatterbox"
    say "building with cargo (this takes a while on a Pi)"
    "$CARGO" build --release --locked --manifest-path "$SRC_DIR/Cargo.toml"
    binary="${CARGO_TARGET_DIR:-$SRC_DIR/target}/release/chatterbox"
fi
[ -f "$binary" ] || die "no binary at '$binary'"
install_file "$binary" "$ROOT$BIN" 0755

# ---------------------------------------------------------------------------------------
# 3. The user.
ensure_user

# ---------------------------------------------------------------------------------------
# 4. Sounds, models, the LiteRT runtime.
copy_tree "$SRC_DIR/sounds" "$ROOT$SHARE_DIR/sounds"
copy_tree "$SRC_DIR/models" "$ROOT$SHARE_DIR/models"

litert=""
for a in "$ARCH" "$(case "$ARCH" in aarch64) echo arm64 ;; arm64) echo aarch64 ;; x86_64) echo amd64 ;; *) echo "$ARCH" ;; esac)"; do
    if [ -f "$SRC_DIR/third_party/litert/$a/libLiteRt.so" ]; then
        litert="$SRC_DIR/third_party/litert/$a/libLiteRt.so"
        break
    fi
done
if [ -n "$litert" ]; then
    install_file "$litert" "$ROOT$LIB_DIR/libLiteRt.so" 0644
else
    warn "no third_party/litert/$ARCH/libLiteRt.so: run scripts/fetch-litert.sh first, or keywords stay off"
fi

# ---------------------------------------------------------------------------------------
# 5. Recordings and config.
make_state_dirs

if [ -e "$ROOT$CONFIG" ]; then
    say "keeping your $CONFIG"
else
    [ -f "$SRC_DIR/config.example.toml" ] || die "no config.example.toml in $SRC_DIR"
    render_config "$SRC_DIR/config.example.toml" "$SHARE_DIR/sounds" "$SHARE_DIR/models/kws.toml" |
        write_file "$ROOT$CONFIG" 0644
fi

# ---------------------------------------------------------------------------------------
# 6. Audio set-up: the Codec Zero mixer and the ALSA names chatterbox_mic/_speaker.
# An /etc/asound.conf an older version wrote is retired only once the drop-in that replaces
# it is in place, and only then does the config move from "default" to the named devices:
# until then "default" is what reaches the Codec Zero.
dropin_ok=0
if [ "${SKIP_SETUP_AUDIO:-0}" != 1 ]; then
    mkdir -p -- "$(dirname -- "$ROOT$ALSA_DROPIN")"
    if LD_LIBRARY_PATH="$ROOT$LIB_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
        "$ROOT$BIN" setup-audio --output "$ROOT$ALSA_DROPIN"; then
        "$ALSACTL" store || warn "alsactl store failed: the mixer settings may not survive a reboot"
        dropin_ok=1
    else
        warn "setup-audio failed (see above). Fix it, then run: sudo $BIN setup-audio"
    fi
fi
legacy_devices=0
if [ "$dropin_ok" = 1 ] && retire_legacy_asound; then
    legacy_devices=1
fi
migrate_config "$ROOT$CONFIG" "$legacy_devices"

# ---------------------------------------------------------------------------------------
# 7. Start at boot: one crontab line, or the systemd unit.
# Either way `chatterbox supervise` runs the toy: it restarts it after a crash (with a
# back-off; after a crash loop, red LED on and a try every 10 min) and holds the one-instance
# lock. Cron output goes to the journal (journalctl -t chatterbox), not a file that grows.
cron_line="$(cron_line "$BIN" "$LIB_DIR")"

unit_path="$ROOT$SYSTEMD_DIR/$UNIT"
if [ "$use_systemd" = 1 ]; then
    if has_cron_line; then
        set_cron_line ""
        stop_toy # the one cron started: the unit must not run beside it
    fi
    [ -f "$SCRIPT_DIR/chatterbox.service" ] || die "missing $SCRIPT_DIR/chatterbox.service"
    render_unit "$SCRIPT_DIR/chatterbox.service" "$BIN" "$LIB_DIR" | write_file "$unit_path" 0644
    "$SYSTEMCTL" daemon-reload
    "$SYSTEMCTL" enable "$UNIT"
    say "enabled $UNIT: sudo systemctl start chatterbox (or reboot); logs: journalctl -u chatterbox"
else
    if [ -f "$unit_path" ]; then
        "$SYSTEMCTL" disable --now "$UNIT" || true
        rm -f -- "$unit_path"
        "$SYSTEMCTL" daemon-reload
        say "removed $UNIT (cron starts chatterbox now)"
    fi
    set_cron_line "$cron_line"
    say "chatterbox starts at boot from $CHATTERBOX_USER's crontab; logs: journalctl -t chatterbox"
fi

# ---------------------------------------------------------------------------------------
# Hints for what the installer does not change.
if [ -z "$ROOT" ]; then
    [ -e /dev/i2c-1 ] || warn "I2C is off, so the OLED stays dark: sudo raspi-config nonint do_i2c 0, then reboot"
fi
say "done"
