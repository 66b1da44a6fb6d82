#!/usr/bin/env bash
# Build chatterbox for the Raspberry Pi (aarch64, 64-bit Raspberry Pi OS) on an x86_64
# Debian/Ubuntu PC, and run the tests for that build under qemu. CI runs it (.ci/run); a maker
# can run it once to set up the cross build, then rebuild with the cargo command below.
#
# Usage: scripts/ci-aarch64.sh [--build-only]
#   --build-only  install, fetch and build the release binary; run no tests
#
# What it does (running it again skips whatever is already in place, so it is idempotent):
#   1. rustup target add aarch64-unknown-linux-gnu            (needs static.rust-lang.org)
#   2. dpkg --add-architecture arm64, then apt-get install      (needs the Debian mirror)
#        gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user pkg-config alsa-utils
#        libasound2-dev:arm64 libstdc++6:arm64
#      The system's apt sources are never edited. On Debian the arm64 packages come from the
#      same mirror; Ubuntu serves arm64 only from ports.ubuntu.com, which you would have to add
#      yourself (the script stops and says so).
#   3. scripts/fetch-litert.sh --arch aarch64                   (needs PyPI)
#   4. cargo build --release --target aarch64-unknown-linux-gnu (needs crates.io)
#      with LITERT_LIB_DIR=third_party/litert/aarch64, then checks the binary is aarch64 and
#      has the `$ORIGIN` run path.
#   5. cargo test --target aarch64-unknown-linux-gnu --lib --test kws_model ... under qemu
#      (.cargo/config.toml: runner = "qemu-aarch64 -cpu cortex-a72 -L /"): the unit tests, real
#      LiteRT inference with the aarch64 library, and the in-process ALSA tests through the
#      file/null plugins (the arm64 alsa-lib reads the same /usr/share/alsa config under -L /).
# It prints how long each step took and how many tests passed. When a server cannot be
# reached it stops with a message naming it.
#
# ---------------------------------------------------------------------------------------------
# Building on a PC for the Pi, by hand
#
# The Pi needs 64-bit Raspberry Pi OS Bookworm (Debian 12) or newer: the aarch64 LiteRT library
# needs glibc >= 2.34 and libstdc++ from GCC 12 (GLIBCXX_3.4.30). Bullseye and the 32-bit OS
# cannot run it. Check on the Pi: `uname -m` says aarch64, `ldd --version` says 2.36 or more.
#
# On the PC (Debian 12 x86_64; run this script once, or do its steps 1-3 yourself), from the
# checkout:
#
#   scripts/ci-aarch64.sh --build-only
#   # later builds, after changing the code:
#   LITERT_LIB_DIR=$PWD/third_party/litert/aarch64 \
#       cargo build --release --locked --target aarch64-unknown-linux-gnu
#
# The binary is target/aarch64-unknown-linux-gnu/release/chatterbox. .cargo/config.toml
# already has the cross linker, the qemu runner and the pkg-config settings (PKG_CONFIG_ALLOW_
# CROSS and PKG_CONFIG_LIBDIR for the arm64 alsa-lib), so nothing else needs setting. The
# LITERT_LIB_DIR override is required: the default in .cargo/config.toml is the x86_64 library,
# and build.rs refuses a library for the wrong CPU with a message saying what to set.
#
# Try it on the PC first (qemu runs aarch64 programs; `-L /` finds the arm64 libraries):
#
#   qemu-aarch64 -cpu cortex-a72 -L / target/aarch64-unknown-linux-gnu/release/chatterbox --help
#
# Then copy the checkout (with third_party/litert/aarch64/libLiteRt.so) and the binary to the Pi
# and install from there, which puts libLiteRt.so where the service finds it:
#
#   rsync -a --exclude target ./ you@raspberrypi.local:chatterbox/
#   scp target/aarch64-unknown-linux-gnu/release/chatterbox you@raspberrypi.local:chatterbox/
#   ssh you@raspberrypi.local 'cd chatterbox && sudo scripts/install.sh --binary ./chatterbox'
#
# To run the binary by hand on the Pi instead, put libLiteRt.so beside it: the binary's run path
# starts with `$ORIGIN` (its own directory).
set -euo pipefail

readonly TARGET="aarch64-unknown-linux-gnu"
# Integration tests run under qemu besides the unit tests (--lib). Left out: tests/sim_session.rs
# and tests/install_script.rs start the chatterbox binary as a child process, and an aarch64
# binary started that way (not through the cargo runner) only runs where binfmt_misc hands it
# to qemu, which containers usually lack (they fail with an empty "sim failed:" message).
readonly TESTS=(kws_model kws_features kws_detector kws_embedding screens alsa_capture alsa_player alsa_backend)
# alsa-utils: tests/alsa_backend.rs runs the host's arecord against its sandbox config.
# libstdc++6:arm64: libLiteRt.so is C++; under qemu it is loaded from /usr/lib/aarch64-linux-gnu.
readonly APT_PKGS=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user pkg-config alsa-utils
	libasound2-dev:arm64 libstdc++6:arm64)

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo="$PWD"
temps=()
trap 'rm -f "${temps[@]}"' EXIT

say() { echo "ci-aarch64: $*" >&2; }
die() {
	echo "ci-aarch64: error: $*" >&2
	exit 1
}

build_only=0
while [[ $# -gt 0 ]]; do
	case "$1" in
	--build-only) build_only=1 ;;
	-h | --help)
		sed -n '/^# Usage:/,/^# What it does/{/^# What it does/d;s/^# \{0,1\}//;p}' "$0"
		exit 0
		;;
	*) die "unknown argument '$1' (try --help)" ;;
	esac
	shift
done

# Per-step wall times, printed at the end.
timings=()
t_start=$(date +%s)
t_step=$t_start
step_done() {
	local now
	now=$(date +%s)
	timings+=("$(printf '%-28s %5ds' "$1" $((now - t_step)))")
	t_step=$now
}

[[ "$(uname -m)" == x86_64 ]] ||
	die "this script cross-builds on an x86_64 PC (this machine is $(uname -m)). On the Pi itself build natively: scripts/fetch-litert.sh && cargo build --release --locked"

sudo=()
[[ "$(id -u)" -eq 0 ]] || sudo=(sudo)

# ---------------------------------------------------------------------------------------------
# 1. The Rust standard library for the target.
command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust with rustup (https://rustup.rs)"
std_installed() {
	local libdir
	libdir="$(rustc --print target-libdir --target "$TARGET" 2>/dev/null)" || return 1
	compgen -G "$libdir/libstd-*.rlib" >/dev/null
}
if ! std_installed; then
	command -v rustup >/dev/null 2>&1 ||
		die "the Rust standard library for $TARGET is missing and rustup is not installed to add it. Install Rust with rustup (https://rustup.rs); a distribution's rustc has no cross targets."
	say "rustup target add $TARGET"
	if ! rustup target add "$TARGET"; then
		die "rustup could not download the $TARGET standard library: is ${RUSTUP_DIST_SERVER:-https://static.rust-lang.org} reachable (network, proxy, RUSTUP_DIST_SERVER)?"
	fi
fi
step_done "rustup target"

# ---------------------------------------------------------------------------------------------
# 2. Cross compiler, qemu and the arm64 alsa-lib (Debian multiarch).
installed() { [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]; }
missing=()
for p in "${APT_PKGS[@]}"; do installed "$p" || missing+=("$p"); done
command -v cc >/dev/null 2>&1 || missing+=(build-essential) # build scripts run on the host
if ! python3 -m pip --version >/dev/null 2>&1; then missing+=(python3-pip); fi

if [[ ${#missing[@]} -gt 0 ]]; then
	command -v apt-get >/dev/null 2>&1 ||
		die "missing ${missing[*]} and no apt-get: this script knows Debian/Ubuntu only. Install the equivalents (an aarch64 gcc, qemu-user, alsa-lib for arm64) yourself."
	export DEBIAN_FRONTEND=noninteractive
	apt_opts=(-o DPkg::Lock::Timeout=600)
	added_arch=0
	if [[ " $(dpkg --print-foreign-architectures | tr '\n' ' ') " != *" arm64 "* ]]; then
		say "dpkg --add-architecture arm64"
		"${sudo[@]}" dpkg --add-architecture arm64
		added_arch=1
	fi
	log="$(mktemp)"
	temps+=("$log")
	say "apt-get update"
	update_ok=1
	"${sudo[@]}" apt-get "${apt_opts[@]}" update >"$log" 2>&1 || update_ok=0
	say "apt-get install ${missing[*]}"
	if ! "${sudo[@]}" apt-get "${apt_opts[@]}" install -y -q --no-install-recommends "${missing[@]}" >>"$log" 2>&1; then
		grep -E '^(E:|W:|Err:)' "$log" >&2 || tail -n 20 "$log" >&2
		if [[ $added_arch == 1 ]]; then
			# Leave apt as we found it: an arm64 architecture the mirror cannot serve would make
			# every later `apt-get update` on this machine fail too.
			"${sudo[@]}" dpkg --remove-architecture arm64 2>/dev/null &&
				say "removed the arm64 architecture again"
		fi
		hint="Is the mirror in /etc/apt/sources.list(.d) reachable (network, proxy)?"
		[[ $update_ok == 1 ]] || hint="apt-get update failed. $hint"
		# apt-get update exits 0 when fetches fail (it warns and keeps the old lists), so name
		# the servers from its messages.
		unreachable="$(grep -oE '(Failed to fetch|Could not resolve|Err:[0-9]+) +[a-z]+://[^/ ]+' "$log" |
			grep -oE '[a-z]+://[^/ ]+' | sort -u | tr '\n' ' ' || true)"
		[[ -z "$unreachable" ]] || hint="apt could not reach ${unreachable% }. $hint"
		if grep -qi '^ID=ubuntu' /etc/os-release 2>/dev/null; then
			hint="$hint Ubuntu serves arm64 packages only from ports.ubuntu.com: add an arm64 source for it yourself (Architectures: arm64, and amd64 on the existing ones), then rerun. This script does not edit apt sources."
		else
			hint="$hint If amd64 and arm64 versions of a package differ, run apt-get upgrade first so both come from the same release."
		fi
		die "could not install ${missing[*]} (apt's messages above). $hint"
	fi
fi
for tool in aarch64-linux-gnu-gcc aarch64-linux-gnu-readelf qemu-aarch64; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool not found after installing ${APT_PKGS[*]}"
done
step_done "apt packages"

# ---------------------------------------------------------------------------------------------
# 3. The aarch64 LiteRT runtime (from the pinned PyPI wheel; no-op when present).
scripts/fetch-litert.sh --arch aarch64 ||
	die "could not get the aarch64 LiteRT library (message above; it comes from PyPI, https://pypi.org)"
export LITERT_LIB_DIR="$repo/third_party/litert/aarch64"
step_done "LiteRT aarch64"

# ---------------------------------------------------------------------------------------------
# 4. The release binary.
if ! cargo fetch --locked >/dev/null 2>&1; then
	cargo fetch --locked || true
	die "cargo could not download the crates in Cargo.lock: is crates.io (https://index.crates.io, https://static.crates.io) reachable (network, proxy, CARGO_HTTP_PROXY)?"
fi
step_done "cargo fetch"
say "cargo build --release --target $TARGET"
cargo build --locked --release --target "$TARGET"
step_done "release build"

target_dir="${CARGO_TARGET_DIR:-$repo/target}"
bin="$target_dir/$TARGET/release/chatterbox"
[[ -f "$bin" ]] || die "cargo reported success but $bin is missing"
machine="$(aarch64-linux-gnu-readelf -h "$bin" | sed -n 's/^ *Machine: *//p')"
[[ "$machine" == *AArch64* ]] || die "$bin is not an aarch64 binary (ELF machine: $machine)"
runpath="$(aarch64-linux-gnu-readelf -d "$bin" | sed -n 's/.*(RUNPATH).*\[\(.*\)\]/\1/p')"
[[ ":$runpath:" == *":\$ORIGIN:"* ]] ||
	die "$bin has run path '$runpath' without \$ORIGIN: build.rs should add it (it would not find libLiteRt.so beside it on the Pi)"
qemu-aarch64 -cpu cortex-a72 -L / "$bin" --help >/dev/null ||
	die "$bin does not start under qemu-aarch64 (missing arm64 libraries? ${APT_PKGS[*]})"
size=$(stat -c %s "$bin")
stripped_bin="$(mktemp)"
temps+=("$stripped_bin")
aarch64-linux-gnu-strip -o "$stripped_bin" "$bin"
stripped=$(stat -c %s "$stripped_bin")

# ---------------------------------------------------------------------------------------------
# 5. Tests under qemu.
total=0
if [[ $build_only == 0 ]]; then
	args=(--lib)
	for t in "${TESTS[@]}"; do args+=(--test "$t"); done
	say "cargo test --target $TARGET ${args[*]} (under qemu-aarch64)"
	out="$(mktemp)"
	temps+=("$out")
	if ! cargo test --locked --target "$TARGET" "${args[@]}" 2>&1 | tee "$out"; then
		die "tests failed under qemu-aarch64 (output above)"
	fi
	total=$(sed -n 's/^test result: ok\. \([0-9]*\) passed.*/\1/p' "$out" | awk '{s+=$1} END {print s+0}')
	[[ $total -gt 0 ]] || die "no test ran (cargo test printed no 'test result: ok' line)"
	step_done "tests under qemu"
fi

say "done: $bin"
say "  $machine, run path $runpath"
say "  size $size bytes ($((size / 1024)) KiB), stripped $stripped bytes ($((stripped / 1024)) KiB)"
if [[ $build_only == 0 ]]; then
	say "  $total tests passed under qemu-aarch64 -cpu cortex-a72 (lib + ${TESTS[*]})"
fi
for t in "${timings[@]}"; do say "  $t"; done
say "  total                        $(($(date +%s) - t_start))s"
