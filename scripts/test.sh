#!/usr/bin/env bash
# Runs the whole test suite: a Release build with ctest, then the same tests under AddressSanitizer and
# UndefinedBehaviorSanitizer (a second build directory), which is where corrupt inputs must prove they never
# crash or read out of bounds, and the desktop app's tests (closing the window while the chat generates, among them)
# run under AddressSanitizer too. Set EQ_SKIP_SANITIZERS=1 to run only the first pass.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

bash scripts/setup.sh
echo "== tests (Release)"
ctest --test-dir build --output-on-failure -j "$jobs"

if [ "${EQ_SKIP_SANITIZERS:-0}" != 1 ]; then
  echo "== tests (AddressSanitizer + UBSan)"
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DENTQUANT_SANITIZE=ON -DENTQUANT_GUI=ON >/dev/null
  cmake --build build-asan -j "$jobs"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure -j "$jobs"
fi
