#!/usr/bin/env bash
# Undo scripts/install.sh.
#
#   sudo scripts/uninstall.sh            # remove everything but the recordings
#   sudo scripts/uninstall.sh --purge    # also the recordings and the chatterbox user
#
# Stops the running toy, then removes: the crontab line (only ours) or the systemd unit,
# $PREFIX/bin/chatterbox, $SHARE_DIR, $LIB_DIR, $CONF_DIR (your config too: copy it first),
# and the ALSA files setup-audio wrote ($ALSA_DROPIN; an older version's /etc/asound.conf,
# restoring its backup).
# Keeps: $STATE_DIR/recordings and the user that owns them, unless --purge.
# The mixer settings stay as they are; the Codec Zero keeps working for other programs.
#
# Takes the same environment overrides as install.sh (ROOT, PREFIX, CRONTAB, SYSTEMCTL,
# PKILL, PGREP, ...), plus USERDEL.
set -euo pipefail

PREFIX="${PREFIX:-/usr/local}"
SHARE_DIR="${SHARE_DIR:-$PREFIX/share/chatterbox}"
LIB_DIR="${LIB_DIR:-$PREFIX/lib/chatterbox}"
SYSTEMD_DIR="${SYSTEMD_DIR:-/etc/systemd/system}"

say() { printf 'uninstall: %s\n' "$*"; }
warn() { printf 'uninstall: warning: %s\n' "$*" >&2; }
# The state, config and ALSA paths, the user, the crontab line, stop_toy, ...
# shellcheck source=service-lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/service-lib.sh"
die() {
    printf 'uninstall: error: %s\n' "$*" >&2
    exit 1
}

purge=0
while [ $# -gt 0 ]; do
    case "$1" in
    --purge)
        purge=1
        shift
        ;;
    -h | --help)
        sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *) die "unknown option '$1' (see --help)" ;;
    esac
done

if [ -z "$ROOT" ] && [ "$(id -u)" -ne 0 ]; then
    die "run as root: sudo $0 $*"
fi

# remove_tree DIR: rm -rf $ROOT$DIR, but only for a folder of ours (DIR itself names
# chatterbox), so a mistyped override can never remove /usr/local or /.
remove_tree() {
    local dir="$1"
    case "$dir" in
    */chatterbox | */chatterbox/*) ;;
    *) die "refusing to remove '$dir': not a chatterbox folder" ;;
    esac
    if [ -e "$ROOT$dir" ]; then
        rm -rf -- "$ROOT$dir"
        say "removed $dir"
    fi
}

# 1. Autostart off (our crontab line - the user's other lines stay - or the systemd unit),
# then whatever is still running stopped, before any of its files go.
if has_cron_line; then
    set_cron_line ""
    say "removed the @reboot line from $CHATTERBOX_USER's crontab"
fi
if [ -f "$ROOT$SYSTEMD_DIR/$UNIT" ]; then
    "$SYSTEMCTL" disable --now "$UNIT" || true
    rm -f -- "$ROOT$SYSTEMD_DIR/$UNIT"
    "$SYSTEMCTL" daemon-reload
    say "removed $UNIT"
fi
stop_toy

# 2. Program, data, config.
if [ -e "$ROOT$PREFIX/bin/chatterbox" ]; then
    rm -f -- "$ROOT$PREFIX/bin/chatterbox"
    say "removed $PREFIX/bin/chatterbox"
fi
remove_tree "$SHARE_DIR"
remove_tree "$LIB_DIR"
remove_tree "$CONF_DIR"

# 3. The ALSA config, only files setup-audio wrote (our marker on the first line). An
#    older version wrote $ASOUND_CONF and kept the file it replaced beside it.
if is_our_alsa_file "$ROOT$ALSA_DROPIN"; then
    rm -f -- "$ROOT$ALSA_DROPIN"
    say "removed $ALSA_DROPIN"
fi
asound="$ROOT$ASOUND_CONF"
if is_our_alsa_file "$asound"; then
    rm -f -- "$asound"
    say "removed $ASOUND_CONF"
    if [ -f "$asound.chatterbox-backup" ]; then
        mv -- "$asound.chatterbox-backup" "$asound"
        say "restored the previous $ASOUND_CONF"
    fi
fi

# 4. Recordings and the user: only with --purge.
if [ "$purge" = 1 ]; then
    remove_tree "$STATE_DIR"
    if "$ID" -u "$CHATTERBOX_USER" >/dev/null 2>&1; then
        if "$USERDEL" "$CHATTERBOX_USER"; then
            say "removed user $CHATTERBOX_USER"
        else
            warn "could not remove user $CHATTERBOX_USER (see above); everything else is gone. Try again after a reboot: sudo userdel $CHATTERBOX_USER"
        fi
    fi
else
    # Everything in the state folder but the recordings.
    if [ -d "$ROOT$STATE_DIR" ]; then
        find "$ROOT$STATE_DIR" -mindepth 1 -maxdepth 1 ! -name recordings -exec rm -rf -- {} +
    fi
    say "kept $STATE_DIR/recordings and user $CHATTERBOX_USER (--purge removes them)"
fi
say "done"
