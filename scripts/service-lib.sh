# The one description of how chatterbox sits in a system, shared (sourced, not run) by
# scripts/install.sh, scripts/uninstall.sh and the Debian package's maintainer scripts
# (scripts/build-deb.sh copies this file into each of them, because postrm runs after the
# package's own files are gone): the fixed paths, the user and its groups, the config and
# unit rendered from their templates, how the toy is started at boot and how a running one
# is stopped. POSIX sh, since dpkg runs maintainer scripts with /bin/sh.
#
# Sourcing it sets a default for every variable the caller has not set (the environment
# wins, which is how tests/install_script.rs points everything into a throwaway root). The
# caller defines `say` and `warn`; paths under a prefix (the binary, LIB_DIR) are the caller's.

: "${ROOT:=}"
: "${STATE_DIR:=/var/lib/chatterbox}"
: "${CONF_DIR:=/etc/chatterbox}"
: "${ALSA_DROPIN:=/etc/alsa/conf.d/60-chatterbox.conf}"
: "${ASOUND_CONF:=/etc/asound.conf}"
: "${CHATTERBOX_USER:=chatterbox}"
: "${ID:=id}"
: "${GETENT:=getent}"
: "${USERADD:=useradd}"
: "${USERMOD:=usermod}"
: "${USERDEL:=userdel}"
: "${CHOWN:=chown}"
: "${CRONTAB:=crontab}"
: "${SYSTEMCTL:=systemctl}"
: "${ALSACTL:=alsactl}"
: "${PKILL:=pkill}"
: "${PGREP:=pgrep}"
: "${START_STOP_DAEMON:=start-stop-daemon}"

CONFIG="$CONF_DIR/config.toml"
RECORDINGS="$STATE_DIR/recordings"
UNIT="chatterbox.service"
GROUPS_WANTED="audio gpio i2c"
# First line of every ALSA file `chatterbox setup-audio` writes: only those are ever removed.
ASOUND_MARKER="# Written by \`chatterbox setup-audio\`."

# The crontab line is recognised by this tag, so updating or removing it never touches
# the user's other lines.
CRON_TAG="# chatterbox-autostart"

# boot_command BIN LIB_DIR: what starts the toy - `supervise` restarts it after a crash
# (with a back-off; after a crash loop, red LED on and a try every 10 min) and holds the
# one-instance lock. Output goes to the journal (journalctl -t chatterbox).
boot_command() {
    printf 'LD_LIBRARY_PATH=%s %s --config %s supervise 2>&1 | logger -t chatterbox' \
        "$2" "$1" "$CONFIG"
}

# cron_line BIN LIB_DIR: the one @reboot line in the user's crontab.
cron_line() {
    printf '@reboot %s %s' "$(boot_command "$1" "$2")" "$CRON_TAG"
}

current_cron() { "$CRONTAB" -u "$CHATTERBOX_USER" -l 2>/dev/null || true; }

# has_cron_line: our line is in the user's crontab.
has_cron_line() {
    "$ID" -u "$CHATTERBOX_USER" >/dev/null 2>&1 && current_cron | grep -q -F -- "$CRON_TAG"
}

# set_cron_line LINE: our line becomes LINE (empty: removed); the user's other lines stay.
set_cron_line() {
    _line="$1"
    _old="$(current_cron)"
    _new="$(printf '%s\n' "$_old" | grep -v -F -- "$CRON_TAG" | sed '/^$/d' || true)"
    if [ -n "$_line" ]; then
        _new="${_new:+$_new
}$_line"
    fi
    if [ "$_new" = "$(printf '%s\n' "$_old" | sed '/^$/d')" ]; then
        return 0
    fi
    if [ -n "$_new" ]; then
        printf '%s\n' "$_new" | "$CRONTAB" -u "$CHATTERBOX_USER" -
    else
        "$CRONTAB" -u "$CHATTERBOX_USER" -r
    fi
    say "crontab of $CHATTERBOX_USER updated"
}

# ensure_user: the unprivileged system user the toy runs as, in whichever of the audio,
# gpio and i2c groups exist (gpio and i2c only on Raspberry Pi OS).
ensure_user() {
    if ! "$ID" -u "$CHATTERBOX_USER" >/dev/null 2>&1; then
        say "creating system user $CHATTERBOX_USER"
        "$USERADD" --system --home-dir "$STATE_DIR" --no-create-home \
            --shell /usr/sbin/nologin --user-group "$CHATTERBOX_USER"
    fi
    _groups=""
    for _g in $GROUPS_WANTED; do
        if "$GETENT" group "$_g" >/dev/null 2>&1; then
            _groups="${_groups:+$_groups,}$_g"
        else
            warn "group '$_g' does not exist (not Raspberry Pi OS?); skipping it"
        fi
    done
    if [ -n "$_groups" ]; then
        "$USERMOD" -a -G "$_groups" "$CHATTERBOX_USER"
    fi
}

# make_state_dirs: the state folder and the recordings in it, the user's alone.
make_state_dirs() {
    mkdir -p -- "$ROOT$STATE_DIR" "$ROOT$RECORDINGS"
    chmod 0750 -- "$ROOT$STATE_DIR" "$ROOT$RECORDINGS"
    "$CHOWN" "$CHATTERBOX_USER:$CHATTERBOX_USER" "$ROOT$STATE_DIR" "$ROOT$RECORDINGS"
}

# render_config EXAMPLE SOUNDS MODEL: config.example.toml with the installed recordings
# folder filled in (the example's paths are relative), on stdout. An empty SOUNDS or MODEL
# keeps the example's "" - the binary then finds the shipped ones itself.
render_config() {
    RECORDINGS="$RECORDINGS" SOUNDS="$2" MODEL="$3" awk '
        /^recordings_dir[ \t]*=/ { print "recordings_dir = \"" ENVIRON["RECORDINGS"] "\""; next }
        /^sounds_dir[ \t]*=/     { print "sounds_dir = \"" ENVIRON["SOUNDS"] "\""; next }
        /^model[ \t]*=/          { print "model = \"" ENVIRON["MODEL"] "\""; next }
        { print }
        ' "$1"
}

# render_unit TEMPLATE BIN LIB_DIR: scripts/chatterbox.service with its placeholders filled.
render_unit() {
    BIN="$2" CONFIG="$CONFIG" LIB_DIR="$3" STATE_DIR="$STATE_DIR" USER_NAME="$CHATTERBOX_USER" \
        awk '{
            gsub(/@BIN@/, ENVIRON["BIN"]); gsub(/@CONFIG@/, ENVIRON["CONFIG"])
            gsub(/@LIB_DIR@/, ENVIRON["LIB_DIR"]); gsub(/@STATE_DIR@/, ENVIRON["STATE_DIR"])
            gsub(/@USER@/, ENVIRON["USER_NAME"]); print
        }' "$1"
}

# migrate_config FILE LEGACY_DEVICES: brings a config written from an older example up to
# date, changing only lines that still hold that example's values, so an owner's own
# choices stay. `pace_capture = true` was the old default and overruns a real card about
# once an hour (the card's clock is not the Pi's): it becomes "auto". With LEGACY_DEVICES=1
# (the ALSA drop-in is in place and replaces an old /etc/asound.conf that made "default" the
# Codec Zero), `"default"` devices become the drop-in's named ones. `threshold = 0.85` was
# the old example's value, tuned for the STFT model only: it becomes "model", so each model
# (and a voice learned on the toy) runs at the threshold it was tuned to.
migrate_config() {
    [ -f "$1" ] || return 0
    _tmp="$1.chatterbox-new"
    LEGACY="$2" awk '
        /^pace_capture[ \t]*=[ \t]*true[ \t]*$/ { print "pace_capture = \"auto\""; next }
        /^threshold[ \t]*=[ \t]*0\.85[ \t]*$/ { print "threshold = \"model\""; next }
        ENVIRON["LEGACY"] == "1" && /^capture_device[ \t]*=[ \t]*"default"[ \t]*$/ {
            print "capture_device = \"chatterbox_mic\""; next }
        ENVIRON["LEGACY"] == "1" && /^playback_device[ \t]*=[ \t]*"default"[ \t]*$/ {
            print "playback_device = \"chatterbox_speaker\""; next }
        { print }
    ' "$1" >"$_tmp"
    if cmp -s "$_tmp" "$1"; then
        rm -f -- "$_tmp"
    else
        chmod --reference="$1" "$_tmp" 2>/dev/null || true
        mv -f -- "$_tmp" "$1"
        say "updated $1 from an older version's defaults (pace_capture = \"auto\"; named sound devices; threshold = \"model\")"
    fi
}

# retire_legacy_asound: versions before the drop-in wrote $ASOUND_CONF, sending every
# program's default device to the Codec Zero. Once the drop-in is in place, that file (our
# marker) goes and the file it had replaced, if any, comes back. Returns 1 if there was one.
retire_legacy_asound() {
    is_our_alsa_file "$ROOT$ASOUND_CONF" || return 1
    rm -f -- "$ROOT$ASOUND_CONF"
    if [ -f "$ROOT$ASOUND_CONF.chatterbox-backup" ]; then
        mv -- "$ROOT$ASOUND_CONF.chatterbox-backup" "$ROOT$ASOUND_CONF"
        say "restored your $ASOUND_CONF (an older chatterbox had replaced it)"
    else
        say "removed the $ASOUND_CONF an older chatterbox wrote"
    fi
    return 0
}

# is_our_alsa_file FILE: FILE was written by `chatterbox setup-audio` (its marker line).
is_our_alsa_file() {
    [ -f "$1" ] && [ "$(head -c ${#ASOUND_MARKER} -- "$1")" = "$ASOUND_MARKER" ]
}

# stop_toy: ends every process of the chatterbox user - the supervisor, the toy, and the
# restart loop an older install's crontab line ran - and waits until they are gone, so
# that nothing keeps retrying a removed binary and a new start mode never runs beside the
# old one. The user exists for the toy alone, so its processes are the toy's.
stop_toy() {
    "$ID" -u "$CHATTERBOX_USER" >/dev/null 2>&1 || return 0
    "$PKILL" -TERM -u "$CHATTERBOX_USER" >/dev/null 2>&1 || return 0 # none running
    for _i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
        if ! "$PGREP" -u "$CHATTERBOX_USER" >/dev/null 2>&1; then
            say "stopped the running chatterbox"
            return 0
        fi
        sleep 0.5
    done
    "$PKILL" -KILL -u "$CHATTERBOX_USER" >/dev/null 2>&1 || true
    say "chatterbox did not stop within 10 s; killed it"
}

# start_toy_now BIN LIB_DIR: runs the boot command now, as the user, in the background,
# unless a process of the user already runs (so never a second toy). The same command
# cron runs at boot, through the same /bin/sh cron uses.
start_toy_now() {
    _rc=0
    "$START_STOP_DAEMON" --start --quiet --background --user "$CHATTERBOX_USER" \
        --chuid "$CHATTERBOX_USER" --chdir "$ROOT$STATE_DIR" \
        --startas /bin/sh -- -c "$(boot_command "$1" "$2")" || _rc=$?
    case "$_rc" in
    0) say "started chatterbox (logs: journalctl -t chatterbox)" ;;
    1) say "chatterbox is already running" ;;
    *) warn "could not start chatterbox now (start-stop-daemon exit $_rc); it starts at the next boot" ;;
    esac
}
