#!/usr/bin/env bash
# Fuzz every reader of untrusted input (tests/fuzz/README.md).
#   tests/fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]
# Builds build-fuzz with clang (-DENTQUANT_FUZZ=ON: libFuzzer + ASan + UBSan), seeds each target's corpus from
# tests/data (plus .eqz files the normal build's entquant makes from the test models), and runs each target for
# SECONDS_PER_TARGET (default 120) on all cores. Findings land in build-fuzz/findings/TARGET/ (crash-*, leak-*,
# timeout-*, oom-*); the script exits 1 when there is any. Corpora grow in build-fuzz/corpus/TARGET/ across runs.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-120}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_safetensors fuzz_rans fuzz_rans_roundtrip fuzz_eqz fuzz_tokenizer_json
                                    fuzz_tokenize fuzz_jinja fuzz_model_config fuzz_engine fuzz_archive)
jobs=$(nproc)

if [ ! -f build-fuzz/CMakeCache.txt ]; then
  CC=clang CXX=clang++ cmake -S . -B build-fuzz -DENTQUANT_FUZZ=ON -DENTQUANT_GUI=OFF -DENTQUANT_TESTS=OFF \
    -DENTQUANT_CUDA=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build build-fuzz -j"$jobs" --target "${targets[@]}" entquant >/dev/null

seeds=build-fuzz/seeds
if [ ! -d "$seeds" ]; then
  mkdir -p "$seeds"/{safetensors,rans,rans_roundtrip,eqz,tokenizer_json,tokenize,jinja,model_config,engine,archive}
  cli=build-fuzz/app/entquant
  for m in tests/data/models/tiny-*/; do
    name=$(basename "$m")
    [ -f "$m/model.safetensors" ] && cp "$m/model.safetensors" "$seeds/safetensors/$name.safetensors"
    for f in config.json generation_config.json; do [ -f "$m/$f" ] && cp "$m/$f" "$seeds/model_config/$name-$f"; done
  done
  cp tests/data/corrupt/*.safetensors "$seeds/safetensors/"
  cp tests/data/corrupt/*.tar.gz tests/data/corrupt/*.zip "$seeds/archive/"
  tar -czf "$seeds/archive/tiny-llama.tar.gz" -C tests/data/models tiny-llama
  for f in tests/data/corrupt/config_*/config.json; do cp "$f" "$seeds/model_config/$(basename "$(dirname "$f")").json"; done
  for t in tests/data/tokenizers/*/tokenizer.json; do cp "$t" "$seeds/tokenizer_json/$(basename "$(dirname "$t")").json"; done
  cp tests/data/models/tiny-llama-tok/tokenizer.json "$seeds/tokenizer_json/tiny-llama-tok.json"
  cp tests/data/chat/templates/*.jinja "$seeds/jinja/"
  python3 - "$seeds/jinja" <<'PY'  # the differential cases' templates, over the conversation's names
import hashlib, json, sys
for c in json.load(open("tests/data/chat/jinja_fuzz_golden.json"))["cases"]:
    t = c["template"].replace("msgs", "messages")
    open(f"{sys.argv[1]}/rand-{hashlib.sha1(t.encode()).hexdigest()[:12]}", "w").write(t)
PY
  split -b 512 tests/data/text/sample.txt "$seeds/tokenize/sample-"
  # rans_roundtrip: two bytes of segment size (64 symbols), then symbols
  for f in "$seeds"/tokenize/sample-a?; do printf '\x3f\x00' | cat - "$f" >"$seeds/rans_roundtrip/$(basename "$f")"; done
  # .eqz seeds: small models in every encoding; their rANS streams (python3 reads the index) seed fuzz_rans.
  for spec in "tiny-llama-tok --bits 3" "tiny-llama --bits 2.1 --format int8" "tiny-mixtral --bits 2.5" \
              "tiny-gemma2 --method rtn4" "tiny-qwen3 --method nf4"; do
    set -- $spec
    out="$seeds/eqz/$1-${*:2}.eqz"; out=${out// /_}
    ASAN_OPTIONS=detect_leaks=0 "$cli" compress "tests/data/models/$1" -o "$out" "${@:2}" --quiet
  done
  python3 - "$seeds" <<'PY'
import json, pathlib, struct, sys
seeds = pathlib.Path(sys.argv[1])
for eqz in sorted((seeds / "eqz").glob("*.eqz")):
    b = eqz.read_bytes()
    off, n = struct.unpack_from("<QQ", b, 16)
    for t in json.loads(b[off:off + n])["tensors"]:
        s = t["sections"].get("stream")
        if s and s["bytes"] < 65536:
            (seeds / "rans" / f"{eqz.stem}-{t['name']}").write_bytes(b[s["offset"]:s["offset"] + s["bytes"]])
PY
fi
if [ ! -d "$seeds/engine" ] || [ -z "$(ls "$seeds/engine")" ]; then
  # engine: one byte choosing the model (the order of fuzz_engine.cpp's kModels), then its config.json
  mkdir -p "$seeds/engine"
  i=0
  for m in tiny-llama tiny-mistral tiny-qwen2 tiny-qwen3 tiny-phi3 tiny-mixtral tiny-gemma tiny-gemma2 tiny-llama-tok; do
    { printf "\\x$(printf %02x $i)"; cat "tests/data/models/$m/config.json"; } >"$seeds/engine/$m.json"
    i=$((i + 1))
  done
fi

status=0
for t in "${targets[@]}"; do
  kind=${t#fuzz_}
  corpus=build-fuzz/corpus/$kind findings=build-fuzz/findings/$kind
  mkdir -p "$corpus" "$findings"
  echo "== $t: ${seconds}s on $jobs jobs (seeds $(ls "$seeds/$kind" | wc -l), corpus $(ls "$corpus" | wc -l))"
  # leaks: a refused input may not free what a static cache keeps; real leaks show under the Qt tests' ASan run.
  ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1 \
    "build-fuzz/tests/fuzz/$t" "$corpus" "$seeds/$kind" -max_total_time="$seconds" -fork="$jobs" \
      -rss_limit_mb=4096 -malloc_limit_mb=2048 -timeout=20 -artifact_prefix="$findings/" -print_final_stats=1 \
      >"$findings/log.txt" 2>&1 || true
  grep -E "^#[0-9]+.*(DONE|cov:)" "$findings/log.txt" | tail -1 || true
  if ls "$findings" | grep -qvE '^log.txt$'; then
    echo "   findings: $(ls "$findings" | grep -vE '^log.txt$' | tr '\n' ' ')"
    status=1
  fi
done
exit $status
