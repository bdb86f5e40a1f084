#!/usr/bin/env bash
# On the GPU machine (the device tool's `run`): trains the quality study's extra models and runs the reference
# optimizer on them, in one go (docs/QUALITY.md, "Protocol" and "The reference").
#
#   bash bench/quality/train_study_models.sh DATA_DIR [MODELS] [LAMBDAS]
#
# DATA_DIR: train.jsonl.gz and heldout.txt from tools/demo-model/prepare_data.py (carry it along; it is not in the
# repository). MODELS: default study-small,study-prose,study-large. LAMBDAS: the reference's lambdas, default
# 8,12,16,24,36,54,80,120. Writes $OUT/study.tar.gz.part-aa, -ab, ... (15 MiB each, the most a file may have to come
# back): models/<name>/ (HuggingFace folders) and ref/<name>/lambda-<L>.safetensors. Unpack here with
#   cat study.tar.gz.part-* | tar -xz -C DIR
set -euo pipefail
cd "$(dirname "$0")/../.."
data=${1:?usage: train_study_models.sh DATA_DIR [MODELS] [LAMBDAS]}
models=${2:-study-small,study-prose,study-large}
lambdas=${3:-8,12,16,24,36,54,80,120}
out=${OUT:?OUT must name the folder whose files come back}
work=$(mktemp -d)
start=$(date +%s)
python3 tools/demo-model/train.py "$data" "$work/models" "$models"
trained=$(date +%s)
dirs=$(echo "$models" | tr ',' '\n' | sed "s|^|$work/models/|" | paste -sd, -)
python3 tools/reference/entquant_lbfgs.py "$work/ref" "$dirs" --lambdas "$lambdas" --workers "$(nproc)"
tar -C "$work" -czf - models ref | split -b 15m - "$out/study.tar.gz.part-"
echo "trained in $((trained - start)) s, reference in $(( $(date +%s) - trained )) s"
ls -la "$out"
