#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: install dependencies, build, and run EntQuant Studio on a bundled model:
# inspect it, compress it at 3 effective bits per weight, verify the .eqz file, compare perplexity before and after
# on a public-domain text, generate a continuation with the compressed model, and decompress it back to a
# HuggingFace folder. The bundled model is a tiny random-weight Llama with a real tokenizer from the tests until the
# trained demo chat model lands (issue 5); its text is gibberish, the pipeline is real.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
MODEL=${1:-tests/data/models/tiny-llama-tok}
TEXT=${TEXT:-tests/data/text/sample.txt}
OUT=${OUT:-build/demo}
rm -rf "$OUT" && mkdir -p "$OUT"
EQ=./build/app/entquant
echo; echo "== entquant inspect $MODEL"
$EQ inspect "$MODEL" | head -8
echo; echo "== entquant compress $MODEL -o $OUT/model.eqz --bits 3"
$EQ compress "$MODEL" -o "$OUT/model.eqz" --bits 3
echo; echo "== entquant verify $OUT/model.eqz"
$EQ verify "$OUT/model.eqz"
echo; echo "== perplexity on $TEXT, original then compressed"
$EQ ppl "$MODEL" --text "$TEXT" --ctx 64
$EQ ppl "$OUT/model.eqz" --text "$TEXT" --ctx 64
echo; echo "== entquant generate $OUT/model.eqz --prompt 'Alice was' --max-tokens 24"
$EQ generate "$OUT/model.eqz" --prompt "Alice was" --max-tokens 24
echo; echo "== entquant decompress $OUT/model.eqz -o $OUT/decompressed"
$EQ decompress "$OUT/model.eqz" -o "$OUT/decompressed"
echo; echo "The desktop GUI arrives with its own issue; everything above is the entquant CLI."
