# Shared by install.sh and uninstall.sh (sourced, not run): how the toy is started at boot
# and how a running one is stopped, so the two scripts cannot drift apart.
#
# Needs: CHATTERBOX_USER, CRONTAB, ID, PKILL, PGREP and a `say` function.

# The crontab line is recognised by this tag, so updating or removing it never touches
# the user's other lines.
CRON_TAG="# chatterbox-autostart"

current_cron() { "$CRONTAB" -u "$CHATTERBOX_USER" -l 2>/dev/null || true; }

# set_cron_line LINE: our line becomes LINE (empty: removed); the user's other lines stay.
set_cron_line() {
    local line="$1" old new
    old="$(current_cron)"
    new="$(printf '%s\n' "$old" | grep -v -F -- "$CRON_TAG" | sed '/^$/d' || true)"
    if [ -n "$line" ]; then
        new="${new:+$new
}$line"
    fi
    if [ "$new" = "$(printf '%s\n' "$old" | sed '/^$/d')" ]; then
        return 0
    fi
    if [ -n "$new" ]; then
        printf '%s\n' "$new" | "$CRONTAB" -u "$CHATTERBOX_USER" -
    else
        "$CRONTAB" -u "$CHATTERBOX_USER" -r
    fi
    say "crontab of $CHATTERBOX_USER updated"
}

# stop_toy: ends every process of the chatterbox user - the supervisor, the toy, and the
# restart loop an older install's crontab line ran - and waits until they are gone, so
# that nothing keeps retrying a removed binary and a new start mode never runs beside the
# old one. The user exists for the toy alone, so its processes are the toy's.
stop_toy() {
    "$ID" -u "$CHATTERBOX_USER" >/dev/null 2>&1 || return 0
    "$PKILL" -TERM -u "$CHATTERBOX_USER" >/dev/null 2>&1 || return 0 # none running
    local i
    for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
        if ! "$PGREP" -u "$CHATTERBOX_USER" >/dev/null 2>&1; then
            say "stopped the running chatterbox"
            return 0
        fi
        sleep 0.5
    done
    "$PKILL" -KILL -u "$CHATTERBOX_USER" >/dev/null 2>&1 || true
    say "chatterbox did not stop within 10 s; killed it"
}
