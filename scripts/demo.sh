#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: install dependencies, build, and run EntQuant Studio on the bundled demo
# chat model (resources/demo-model, 11.5 M parameters, trained on public-domain texts): compress it at the default
# 3 effective bits per weight with progress and a summary, verify the .eqz file, compare it with the original on
# held-out text (perplexity before / after, KL divergence, top-1 agreement), and chat one turn with the compressed
# model. Headless; nothing is downloaded besides Debian packages. Pass another model folder as $1 to use it instead
# (then set TEXT to a text file for the comparison and PROMPT to a question).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
MODEL=${1:-resources/demo-model}
TEXT=${TEXT:-resources/demo-model/heldout.txt}
PROMPT=${PROMPT:-What is the capital of France?}
OUT=${OUT:-build/demo}
rm -rf "$OUT" && mkdir -p "$OUT"
EQ=./build/app/entquant
echo; echo "== entquant inspect $MODEL"
# (into a file first: under pipefail, `inspect | head` dies of SIGPIPE whenever head exits before inspect is done)
$EQ inspect "$MODEL" > "$OUT/inspect.txt"
head -8 "$OUT/inspect.txt"
echo; echo "== entquant compress $MODEL -o $OUT/model.eqz   (default: 3.0 effective bits per weight)"
$EQ compress "$MODEL" -o "$OUT/model.eqz"
echo; echo "== entquant verify $OUT/model.eqz"
$EQ verify "$OUT/model.eqz"
echo; echo "== entquant compare $MODEL $OUT/model.eqz --text $TEXT   (perplexity before / after)"
$EQ compare "$MODEL" "$OUT/model.eqz" --text "$TEXT"
echo; echo "== entquant generate $OUT/model.eqz --chat --prompt \"$PROMPT\"   (one chat turn, compressed model)"
$EQ generate "$OUT/model.eqz" --chat --prompt "$PROMPT" --max-tokens 64
echo; echo "== entquant-studio --screenshot $OUT/studio.png $MODEL   (the desktop app, rendered offscreen)"
./build/app/entquant-studio --screenshot "$OUT/studio.png" "$MODEL" --bits 3
echo "wrote $OUT/studio.png"
echo
echo "Next: open the app (./build/app/entquant-studio $MODEL), talk with the compressed model"
echo "(entquant chat $OUT/model.eqz), or see entquant --help."
