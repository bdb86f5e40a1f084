#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: install dependencies, build, and run EntQuant Studio on a bundled model:
# inspect it, compress it at 3 effective bits per weight, verify the .eqz file, and decompress it back to a
# HuggingFace folder. The bundled model is a tiny random-weight Llama from the tests until the demo chat model
# lands (issue 5), when this becomes compress -> perplexity before/after -> one chat turn.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
MODEL=${1:-tests/data/models/tiny-llama}
OUT=${OUT:-build/demo}
rm -rf "$OUT" && mkdir -p "$OUT"
EQ=./build/app/entquant
echo; echo "== entquant inspect $MODEL"
$EQ inspect "$MODEL"
echo; echo "== entquant compress $MODEL -o $OUT/model.eqz --bits 3"
$EQ compress "$MODEL" -o "$OUT/model.eqz" --bits 3
echo; echo "== entquant verify $OUT/model.eqz"
$EQ verify "$OUT/model.eqz"
echo; echo "== entquant decompress $OUT/model.eqz -o $OUT/decompressed"
$EQ decompress "$OUT/model.eqz" -o "$OUT/decompressed"
