#!/usr/bin/env bash
# The app's worker code under ThreadSanitizer: builds the thread pool's, the model session's, the desktop app's and the chat pane's
# tests with -fsanitize=thread (a build directory of its own, build-tsan) and runs them on the offscreen platform.
# A data race fails the run. Not part of scripts/test.sh (a third full build would pass CI's time budget); run it
# after changing ui/jobs, ui/model_document or common/thread_pool. Qt itself is not instrumented: tests/tsan.supp
# names the Qt internals TSan cannot see synchronize.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DENTQUANT_TSAN=ON >/dev/null
cmake --build build-tsan -j "$(nproc)" --target test_thread_pool test_session test_studio test_chat entquant
# die_after_fork=0: the tests start the CLI with QProcess (fork, then exec), which TSan otherwise refuses in a
# process that has threads.
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 die_after_fork=0 suppressions=$PWD/tests/tsan.supp"
export QT_QPA_PLATFORM=offscreen
for t in test_thread_pool test_session test_studio test_chat; do
  echo "== $t (ThreadSanitizer)"
  ./build-tsan/tests/$t
done
echo "ThreadSanitizer: no data races"
