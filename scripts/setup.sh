#!/usr/bin/env bash
# Installs every Debian 12 package the build and the tests need (idempotent, non-interactive) and builds
# EntQuant Studio in Release into ./build (override with BUILD_DIR; extra CMake flags in ENTQUANT_CMAKE_ARGS).
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  qt6-base-dev qt6-svg-dev libqcustomplot-dev  # GUI (Qt 6 Widgets, SVG export, plots) and Qt Test
  libarchive-dev                         # model archives in (.zip/.tar.*), bundles out
  nlohmann-json3-dev libfmt-dev          # JSON headers/configs, formatting (g++ 12 has no <format>)
  libpcre2-dev libxxhash-dev libzstd-dev # tokenizer regexes, section checksums, compression
  libutf8proc-dev                        # Unicode normalization (NFC/NFKC) for tokenizers
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "== installing: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

BUILD_DIR=${BUILD_DIR:-build}
echo "== configuring ${BUILD_DIR} (Release)"
# shellcheck disable=SC2086
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release ${ENTQUANT_CMAKE_ARGS:-} >/dev/null
echo "== building"
cmake --build "$BUILD_DIR" -j "$(nproc)"
echo "== built: $BUILD_DIR/app/entquant"
