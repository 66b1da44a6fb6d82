#!/usr/bin/env bash
# Install the amd64 package FOR REAL on this machine, check it, and purge it again.
# CI runs it (.ci/run). On a dev machine it changes the system: it installs chatterbox
# system-wide (/usr/bin, /usr/share/chatterbox, /etc/chatterbox, user chatterbox, its
# crontab), then purges it. It refuses to run without root and when chatterbox is already
# installed from another source (it would purge your install).
#
# Usage: sudo scripts/test-deb.sh [PATH.deb]   (default: the newest target/debian/*_amd64.deb)
#
# Checks, in order: lintian has no errors; `dpkg -i` succeeds; `chatterbox --version` prints the
# package version; `chatterbox listen` on a fixture clip, run from another folder, hears its
# word (and how many lines it printed on stderr); `chatterbox adapt` as user chatterbox learns
# the fixture owner's takes into /var/lib/chatterbox and `adapt --undo` goes back; the crontab of user chatterbox has the one @reboot line;
# the toy runs as user chatterbox; then `dpkg --purge` leaves no file, no user, no crontab line
# and no process behind.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo="$PWD"

say() { echo "test-deb: $*" >&2; }
fail() {
    echo "test-deb: FAILED: $*" >&2
    exit 1
}

[[ "$(id -u)" -eq 0 ]] || fail "this installs a real package system-wide (then purges it): run as root, e.g. sudo $0"
deb="${1:-$(ls -t target/debian/chatterbox_*_amd64.deb 2>/dev/null | head -n 1)}"
[[ -n "$deb" && -f "$deb" ]] || fail "no package: build it first with scripts/build-deb.sh --arch amd64 (or pass its path)"
deb="$(realpath "$deb")"
if dpkg-query -W -f='${Status}' chatterbox 2>/dev/null | grep -q 'installed'; then
    fail "chatterbox is already installed here; this test would purge it. Remove it first (sudo dpkg --purge chatterbox)"
fi
version="$(dpkg-deb -f "$deb" Version)"

t0=$(date +%s)
# Tools the checks need (CI machines are fresh): lintian, and cron for the crontab.
missing=()
command -v lintian >/dev/null 2>&1 || missing+=(lintian)
command -v crontab >/dev/null 2>&1 || missing+=(cron)
if [[ ${#missing[@]} -gt 0 ]]; then
    say "apt-get install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null ||
        fail "could not install ${missing[*]} with apt-get"
fi

work="$(mktemp -d)"
cleanup() {
    # Never leave a half-tested package behind.
    if dpkg-query -W -f='${Status}' chatterbox 2>/dev/null | grep -q 'installed'; then
        dpkg --purge chatterbox >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# 1. lintian: errors fail, warnings are shown.
say "lintian $(basename "$deb")"
lintian --allow-root "$deb" >"$work/lintian" 2>&1 || true
cat "$work/lintian" >&2
if grep -q '^E:' "$work/lintian"; then fail "lintian reports errors (above)"; fi

# 2. Install for real (dependencies from apt, as `apt install ./file.deb` would).
say "apt-get install $deb"
DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$deb" >"$work/install" 2>&1 ||
    { cat "$work/install" >&2; fail "installing $deb failed"; }
grep '^chatterbox:' "$work/install" >&2 || true

# 3. The binary, from another folder, without the checkout.
cd "$work"
got="$(chatterbox --version)"
[[ "$got" == "chatterbox ${version%-*}" ]] || fail "chatterbox --version printed '$got', want 'chatterbox ${version%-*}'"
say "chatterbox --version: $got"
clip="$repo/tests/fixtures/kws_clips/up__mbrola-en1.wav"
cp "$clip" "$work/clip.wav"
# --all prints every hop's top scores: the one-second clip is too short for the averaged
# detection, so check that its best word is "up".
chatterbox listen --all clip.wav >"$work/listen.out" 2>"$work/listen.err" ||
    { cat "$work/listen.err" >&2; fail "chatterbox listen failed in $work"; }
top="$(awk '{print $3; exit}' "$work/listen.out")"
[[ "$top" == up ]] || fail "chatterbox listen heard '$top' in an 'up' clip: $(cat "$work/listen.out")"
say "chatterbox listen clip.wav (from $work): $(head -n 1 "$work/listen.out")"
# Nothing from the libraries on a normal start (LiteRT's lines go to our debug log).
[[ ! -s "$work/listen.err" ]] || fail "chatterbox listen printed on stderr: $(cat "$work/listen.err")"
say "stderr of chatterbox listen: empty"
# 3b. Learning a voice on the installed toy, as its user: `adapt` finds the shipped
# speech-embedding model with its replay set and weight layout, and writes the owner's
# model into the state folder (beside the recordings); `--undo` goes back.
chmod 755 "$work"
cp -r "$repo/tests/fixtures/adapt_owner" "$work/takes"
chmod -R a+rX "$work/takes"
runuser -u chatterbox -- chatterbox --config /etc/chatterbox/config.toml adapt --takes "$work/takes" \
    >"$work/adapt.out" 2>&1 || { cat "$work/adapt.out" >&2; fail "chatterbox adapt failed as user chatterbox"; }
grep -q '^switched to the adapted model /var/lib/chatterbox/models-owner' "$work/adapt.out" ||
    fail "chatterbox adapt did not switch to an owner model in /var/lib/chatterbox: $(cat "$work/adapt.out")"
[[ "$(stat -c %U /var/lib/chatterbox/models-owner/kws.toml)" == chatterbox ]] ||
    fail "the owner model is not the chatterbox user's"
say "chatterbox adapt: $(grep '^held-out' "$work/adapt.out")"
runuser -u chatterbox -- chatterbox --config /etc/chatterbox/config.toml adapt --undo >"$work/undo.out" 2>&1 ||
    { cat "$work/undo.out" >&2; fail "chatterbox adapt --undo failed"; }
[[ ! -e /var/lib/chatterbox/models-owner/kws.toml ]] || fail "adapt --undo left the owner model in use"
say "chatterbox adapt --undo: $(cat "$work/undo.out")"
cd "$repo"

# 4. Start at boot: the one crontab line; the toy running now, as its own user.
cron="$(crontab -u chatterbox -l 2>/dev/null || true)"
[[ "$(grep -c '^@reboot .*/usr/bin/chatterbox --config /etc/chatterbox/config.toml supervise' <<<"$cron")" == 1 ]] ||
    fail "crontab of chatterbox lacks the one @reboot line: '$cron'"
say "crontab: $cron"
pgrep -u chatterbox -f 'chatterbox --config /etc/chatterbox/config.toml supervise' >/dev/null ||
    fail "no 'chatterbox supervise' process of user chatterbox after install"
say "running: $(pgrep -a -u chatterbox -f supervise | head -n 1)"
[[ -d /var/lib/chatterbox/recordings && "$(stat -c %U /var/lib/chatterbox/recordings)" == chatterbox ]] ||
    fail "/var/lib/chatterbox/recordings missing or not owned by chatterbox"

# 5. Purge: nothing left.
say "dpkg --purge chatterbox"
dpkg --purge chatterbox >"$work/purge" 2>&1 || { cat "$work/purge" >&2; fail "dpkg --purge failed"; }
left=()
for p in /usr/bin/chatterbox /usr/lib/chatterbox /usr/share/chatterbox /usr/share/doc/chatterbox \
    /etc/chatterbox /var/lib/chatterbox /lib/systemd/system/chatterbox.service \
    /etc/alsa/conf.d/60-chatterbox.conf /var/spool/cron/crontabs/chatterbox; do
    [[ ! -e "$p" ]] || left+=("$p")
done
[[ ${#left[@]} -eq 0 ]] || fail "purge left ${left[*]}"
! id chatterbox >/dev/null 2>&1 || fail "purge left the user chatterbox"
! getent group chatterbox >/dev/null 2>&1 || fail "purge left the group chatterbox"
! pgrep -f '/usr/bin/chatterbox' >/dev/null || fail "purge left a chatterbox process running"
say "purged: no files, user, group, crontab or process left"
say "done in $(($(date +%s) - t0))s"
