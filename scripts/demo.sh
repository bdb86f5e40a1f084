#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: install dependencies, build, and run EntQuant Studio on a bundled model.
# Until the demo chat model lands (issue 5), the main job is `entquant inspect` on a tiny Llama fixture; then it
# becomes compress -> perplexity before/after -> one chat turn.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
MODEL=${1:-tests/data/models/tiny-llama}
echo
echo "== entquant inspect $MODEL"
./build/app/entquant inspect "$MODEL"
