#!/usr/bin/env bash
# Fetch the LiteRT runtime library (libLiteRt.so) that chatterbox links against.
#
# Why a script and not a crate download: litert-sys would fetch its prebuilt from a host that is
# not reachable from our build machines, and it cannot be built offline from source. The same
# library ships inside the PyPI wheel `ai-edge-litert`, which pip can download anywhere PyPI is
# reachable. We take libLiteRt.so out of that wheel and nothing else.
#
# The version is pinned to 2.1.4 ON PURPOSE: litert-sys 0.2.1 is generated from the 2.1.4 C
# headers; the 2.3.0 library is ABI-incompatible (fails with "Could not open ''" or segfaults).
# Both the wheel and the extracted library are checked against the sha256 sums below.
#
# Runtime needs of the library (objdump -T): x86_64 glibc >= 2.27; aarch64 glibc >= 2.34 and
# libstdc++ with GLIBCXX_3.4.30 (GCC 12), despite the wheel's manylinux_2_27 tag. So the Pi needs
# 64-bit Raspberry Pi OS Bookworm (glibc 2.36, GCC 12) or newer; Bullseye is too old.
#
# Usage: scripts/fetch-litert.sh [--arch x86_64|aarch64] [--dest DIR] [--wheel FILE]
#   --arch   which CPU the library is for (default: this machine's, from `uname -m`)
#   --dest   where libLiteRt.so goes (default: third_party/litert/<arch> in the repo)
#   --wheel  use an already-downloaded wheel instead of asking PyPI (offline installs)
#
# Idempotent: exits 0 without downloading when DEST/libLiteRt.so is already there with the
# right checksum. Needs python3 with pip (Debian: apt-get install python3-pip); pip's own
# settings apply (PIP_INDEX_URL, proxies, cache).
set -euo pipefail

readonly LITERT_VERSION="2.1.4"

# Pinned artefacts, from PyPI's ai-edge-litert 2.1.4 (cp311 manylinux_2_27 wheels): the wheel
# file name, its sha256, and the sha256 of the libLiteRt.so inside. The library is the same for
# every Python version; cp311 is just the one we pin.
pinned() {
	case "$1" in
	x86_64)
		wheel_name="ai_edge_litert-2.1.4-cp311-cp311-manylinux_2_27_x86_64.whl"
		wheel_sha="1bed8ccd8dfc4f2ec388bc79cb90920c261a244995ce378d396fb8967b7db640"
		lib_sha="c590f1124053ce6d2ceaef6d1174af15f8103a76872059414d18ff2e9cfaf681"
		;;
	aarch64)
		wheel_name="ai_edge_litert-2.1.4-cp311-cp311-manylinux_2_27_aarch64.whl"
		wheel_sha="f2f07d27211a6b64ed374733bcbdd78dcf0cdc70de5c5f7d0ce7f198d4890a23"
		lib_sha="332b30e12a0708279c44e883639ac4caa435f18f6333fc4f35f8293a90ea9819"
		;;
	esac
}

die() {
	echo "fetch-litert: error: $*" >&2
	exit 1
}
say() { echo "fetch-litert: $*" >&2; }

usage() {
	# The header comment from "Usage:" down to the first non-comment line.
	sed -n '/^# Usage:/,/^[^#]/{/^[^#]/d;s/^# \{0,1\}//;p}' "$0" >&2
	exit "${1:-0}"
}

sha256_of() {
	sha256sum "$1" | cut -d' ' -f1
}

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
arch=""
dest=""
wheel=""
while [[ $# -gt 0 ]]; do
	case "$1" in
	--arch)
		[[ $# -ge 2 ]] || die "--arch needs a value (x86_64 or aarch64)"
		arch="$2"
		shift 2
		;;
	--dest)
		[[ $# -ge 2 ]] || die "--dest needs a directory"
		dest="$2"
		shift 2
		;;
	--wheel)
		[[ $# -ge 2 ]] || die "--wheel needs a file"
		wheel="$2"
		shift 2
		;;
	-h | --help) usage 0 ;;
	*)
		echo "fetch-litert: unknown argument: $1" >&2
		usage 2
		;;
	esac
done

if [[ -z "$arch" ]]; then
	arch="$(uname -m)"
fi
case "$arch" in
x86_64 | amd64) arch="x86_64" ;;
aarch64 | arm64) arch="aarch64" ;;
*) die "no LiteRT build for arch '$arch': only x86_64 and aarch64 (64-bit Raspberry Pi OS) exist. A 32-bit (armv7) Pi OS cannot run it; install the 64-bit OS." ;;
esac

pinned "$arch"

dest="${dest:-$repo_root/third_party/litert/$arch}"
lib="$dest/libLiteRt.so"

command -v sha256sum >/dev/null || die "sha256sum not found (Debian: apt-get install coreutils)"

if [[ -f "$lib" ]]; then
	have="$(sha256_of "$lib")"
	if [[ "$have" == "$lib_sha" ]]; then
		say "$lib already present (LiteRT $LITERT_VERSION, $arch, sha256 ok)"
		exit 0
	fi
	say "$lib has sha256 $have, expected $lib_sha: replacing it"
fi

command -v python3 >/dev/null || die "python3 not found; it is needed to download and unpack the wheel (Debian: apt-get install python3 python3-pip)"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if [[ -n "$wheel" ]]; then
	[[ -f "$wheel" ]] || die "wheel file '$wheel' does not exist"
	cp -- "$wheel" "$work/$wheel_name"
else
	python3 -m pip --version >/dev/null 2>&1 ||
		die "python3 has no pip (Debian: apt-get install python3-pip), or pass --wheel FILE with $wheel_name downloaded elsewhere"
	say "downloading $wheel_name from PyPI"
	platform="manylinux_2_27_${arch}"
	if ! python3 -m pip download --quiet --no-deps --only-binary=:all: \
		--platform "$platform" --python-version 311 --implementation cp --abi cp311 \
		--dest "$work" "ai-edge-litert==${LITERT_VERSION}" >"$work/pip.log" 2>&1; then
		cat "$work/pip.log" >&2
		die "could not download ai-edge-litert==$LITERT_VERSION ($platform) from PyPI. Is PyPI reachable (check network, proxy, PIP_INDEX_URL)? Offline: fetch $wheel_name on a machine that reaches PyPI and rerun with --wheel FILE."
	fi
fi

[[ -f "$work/$wheel_name" ]] || die "pip did not produce $wheel_name; PyPI may serve a different build for $arch"
got="$(sha256_of "$work/$wheel_name")"
[[ "$got" == "$wheel_sha" ]] ||
	die "$wheel_name has sha256 $got, expected $wheel_sha. Refusing to use it (corrupt download or a changed upload)."

mkdir -p "$dest"
tmp_lib="$dest/.libLiteRt.so.partial"
python3 - "$work/$wheel_name" "$tmp_lib" <<'PY' || die "could not extract ai_edge_litert/libLiteRt.so from the wheel"
import shutil, sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z, z.open("ai_edge_litert/libLiteRt.so") as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
got="$(sha256_of "$tmp_lib")"
if [[ "$got" != "$lib_sha" ]]; then
	rm -f "$tmp_lib"
	die "extracted libLiteRt.so has sha256 $got, expected $lib_sha"
fi
chmod 0644 "$tmp_lib"
mv -f "$tmp_lib" "$lib"
say "installed $lib (LiteRT $LITERT_VERSION, $arch, sha256 $lib_sha)"
