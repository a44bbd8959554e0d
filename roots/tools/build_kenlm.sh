#!/usr/bin/env bash
# Build KenLM's `lmplz` and `build_binary` into DEST_DIR/bin.
#
# Why this exists: the `kenlm` wheel only ships the *query* side (the Python module). Training a
# perplexity model the way ROOTS/cc_net did needs the C++ estimation tools, which are not on PyPI
# as binaries and not in Debian/Ubuntu. We build them once from the kenlm source distribution on the
# package index (same project, same pinned version as the Python module when possible), so no git
# clone or ad-hoc URL is needed, and nothing is ever downloaded at test/run time.
#
# Usage: roots/tools/build_kenlm.sh DEST_DIR
#   Idempotent: exits 0 immediately if DEST_DIR/bin/lmplz and DEST_DIR/bin/build_binary exist.
# Environment:
#   PYTHON      interpreter whose pip downloads the sdist (default: <repo>/.venv/bin/python, then python3)
#   KENLM_SPEC  pip requirement to download (default: the installed kenlm version, else "kenlm")
#   JOBS        parallel build jobs (default 2)
set -euo pipefail

log() { printf '[build_kenlm] %s\n' "$*" >&2; }
die() { printf '[build_kenlm] ERROR: %s\n' "$*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 DEST_DIR"
DEST_DIR=$1
BIN_DIR="$DEST_DIR/bin"

if [ -x "$BIN_DIR/lmplz" ] && [ -x "$BIN_DIR/build_binary" ]; then
    log "lmplz and build_binary already present in $BIN_DIR; nothing to do"
    exit 0
fi

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
JOBS=${JOBS:-2}

# --- 1. system build dependencies (only install what dpkg says is missing) -----------------------
APT_DEPS=(cmake g++ make libboost-program-options-dev libboost-system-dev libboost-thread-dev
          libboost-test-dev zlib1g-dev libbz2-dev liblzma-dev)
missing=()
if command -v dpkg >/dev/null 2>&1; then
    for pkg in "${APT_DEPS[@]}"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
else
    log "dpkg not found: assuming a non-Debian system with the build deps already installed"
fi
if [ ${#missing[@]} -gt 0 ]; then
    log "installing missing packages: ${missing[*]}"
    SUDO=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || die "need root or sudo to apt-get install: ${missing[*]}"
        SUDO=(sudo)
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get update -qq || die "apt-get update failed"
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" \
        || die "apt-get install failed for: ${missing[*]}"
fi

# --- 2. kenlm source distribution from the package index ------------------------------------------
if [ -n "${PYTHON:-}" ]; then
    PY=$PYTHON
elif [ -x "$REPO_ROOT/.venv/bin/python" ]; then
    PY="$REPO_ROOT/.venv/bin/python"
else
    PY=python3
fi
if [ -z "${KENLM_SPEC:-}" ]; then
    # Same version as the installed query module, so training and scoring agree on the format.
    ver=$("$PY" -c 'import importlib.metadata as m; print(m.version("kenlm"))' 2>/dev/null || true)
    KENLM_SPEC=${ver:+kenlm==$ver}
    KENLM_SPEC=${KENLM_SPEC:-kenlm}
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/build_kenlm.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
log "downloading source distribution $KENLM_SPEC with $PY -m pip"
# --no-build-isolation: pip prepares the sdist's metadata, and with --no-binary :all: an isolated
# build env would compile setuptools and even CMake from source first (many minutes). If the
# interpreter lacks setuptools, fall back to an isolated env whose build deps may be wheels.
"$PY" -m pip download --quiet --no-binary :all: --no-deps --no-build-isolation -d "$WORK/dl" "$KENLM_SPEC" \
    || "$PY" -m pip download --quiet --no-binary kenlm --no-deps -d "$WORK/dl" "$KENLM_SPEC" \
    || die "pip download of the $KENLM_SPEC source distribution failed (needs the package index at build time)"

sdist=$(find "$WORK/dl" -maxdepth 1 -type f \( -name '*.tar.gz' -o -name '*.zip' \) | head -n 1)
[ -n "$sdist" ] || die "no source archive found in $WORK/dl"
mkdir -p "$WORK/src"
case "$sdist" in
    *.zip) (cd "$WORK/src" && "$PY" -m zipfile -e "$sdist" .) ;;
    *) tar -xzf "$sdist" -C "$WORK/src" ;;
esac
SRC=$(find "$WORK/src" -mindepth 1 -maxdepth 1 -type d | head -n 1)
[ -n "$SRC" ] || die "empty source archive $sdist"
for need in CMakeLists.txt lm/builder/lmplz_main.cc lm/build_binary_main.cc util/CMakeLists.txt; do
    [ -e "$SRC/$need" ] || die "source archive $(basename "$sdist") lacks $need: not the full C++ tree"
done
log "source tree OK: $(basename "$sdist")"

# --- 3. build just the two tools ------------------------------------------------------------------
log "configuring with cmake"
cmake -S "$SRC" -B "$WORK/build" -DCMAKE_BUILD_TYPE=Release >"$WORK/cmake.log" 2>&1 \
    || { tail -n 40 "$WORK/cmake.log" >&2; die "cmake configure failed"; }
log "building lmplz and build_binary (-j$JOBS)"
cmake --build "$WORK/build" --target lmplz build_binary -- -j"$JOBS" >"$WORK/make.log" 2>&1 \
    || { tail -n 40 "$WORK/make.log" >&2; die "build failed"; }

# --- 4. smoke-test, then install atomically (copy to a temp name, then rename) -------------------
# Test before installing: an installed-but-broken binary would make every later run exit 0 early.
# Both tools print usage and exit 1 when called without a model, so check the text, not the status.
declare -A BUILT
for tool in lmplz build_binary; do
    built=$(find "$WORK/build" -type f -name "$tool" -perm -u+x | head -n 1)
    [ -n "$built" ] || die "built $tool not found under $WORK/build"
    BUILT[$tool]=$built
done
out=$("${BUILT[lmplz]}" --help 2>&1 || true)
grep -q "Kneser-Ney" <<<"$out" || die "built lmplz does not run: ${out:0:500}"
out=$("${BUILT[build_binary]}" 2>&1 || true)
grep -qi "usage" <<<"$out" || die "built build_binary does not run: ${out:0:500}"

mkdir -p "$BIN_DIR"
for tool in lmplz build_binary; do
    install -m 0755 "${BUILT[$tool]}" "$BIN_DIR/.$tool.tmp.$$"
    mv -f "$BIN_DIR/.$tool.tmp.$$" "$BIN_DIR/$tool"
done
log "installed $BIN_DIR/lmplz and $BIN_DIR/build_binary"
