#!/usr/bin/env python3
"""A model with outlier channels that computes exactly what the given one computes (the quality study, issue 6,
docs/QUALITY.md "Outlier channels"). Pure Python, no NumPy, so it runs on the CPU machine and on the GPU machine:

    python3 bench/quality/make_outlier_model.py MODEL_DIR OUT_DIR [--seed 1] [--norm-up 4] [--norm-down 2]
        [--inner-up 2] [--inner-down 2]

Large language models have a few channels whose activations are 10-100x the others' (LLM.int8(), SmoothQuant,
"massive activations") and a few weights far larger than the rest ("super weights"). The small study models have
neither. This tool moves scale between a layer and the next by exact powers of two, which leaves every product the
same bit for bit (multiplying a bf16 or float32 number by 2^e only changes its exponent), so the new model's
logits equal the old one's while its weights and activations get outliers:

- per block and per RMSNorm (input_layernorm -> q/k/v, post_attention_layernorm -> gate/up): `--norm-up` channels
  j get gain x 2^e and the following projections' column j / 2^e (activation outliers entering q/k/v or gate/up,
  small weight columns), `--norm-down` channels gain / 2^e and columns x 2^e (weight columns 8-64x the rest);
- per block, in the MLP's inner width: `--inner-up` channels i get up_proj row i x 2^e and down_proj column i / 2^e
  (massive inner activations, a small column of down), `--inner-down` channels the reverse (a large column of down,
  as super weights are);

with e drawn from 3..6 (8x to 64x) and the channels drawn without repeats, from --seed. Llama-style checkpoints
(separate q/k/v and gate/up projections, bf16, gains used as x * g, not x * (1 + g)) only. Writes OUT_DIR with
the model's other files copied and OUT_DIR/outliers.json listing every channel and factor.
"""
import argparse, json, os, random, re, shutil, struct, sys

ap = argparse.ArgumentParser()
ap.add_argument("model")
ap.add_argument("out")
ap.add_argument("--seed", type=int, default=1)
ap.add_argument("--norm-up", type=int, default=4)
ap.add_argument("--norm-down", type=int, default=2)
ap.add_argument("--inner-up", type=int, default=2)
ap.add_argument("--inner-down", type=int, default=2)
a = ap.parse_args()

cfg = json.load(open(os.path.join(a.model, "config.json")))
if cfg.get("model_type") not in ("llama", "mistral", "qwen2"):
    sys.exit(f"{a.model}: model_type {cfg.get('model_type')!r} is not a Llama-style model this tool handles")
files = sorted(f for f in os.listdir(a.model) if f.endswith(".safetensors"))
if len(files) != 1:
    sys.exit(f"{a.model}: expected one .safetensors file, found {len(files)}")
path = os.path.join(a.model, files[0])
raw = open(path, "rb").read()
(n,) = struct.unpack("<Q", raw[:8])
header = json.loads(raw[8:8 + n])
data = bytearray(raw[8 + n:])
H, I, L = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]


def tensor(name, rows, cols):
    t = header.get(name)
    if t is None or t["dtype"] != "BF16":
        sys.exit(f"{path}: no bf16 tensor {name}")
    shape = t["shape"] if len(t["shape"]) == 2 else [1, t["shape"][0]]
    if shape != [rows, cols]:
        sys.exit(f"{path}: {name} has shape {t['shape']}, expected [{rows}, {cols}]")
    return t["data_offsets"][0]


def scale(offset, index, e):  # element `index` of the bf16 tensor at `offset`, times 2^e, exactly
    at = offset + 2 * index
    (u,) = struct.unpack_from("<H", data, at)
    if u & 0x7FFF == 0:
        return
    (f,) = struct.unpack("<f", struct.pack("<I", u << 16))
    (v,) = struct.unpack("<I", struct.pack("<f", f * 2.0 ** e))
    if v & 0xFFFF or (v >> 23) & 0xFF in (0, 0xFF):
        sys.exit(f"{path}: scaling by 2^{e} would not be exact at byte {at}")
    struct.pack_into("<H", data, at, v >> 16)


def column(name, rows, cols, j, e):
    off = tensor(name, rows, cols)
    for r in range(rows):
        scale(off, r * cols + j, e)


def row(name, rows, cols, i, e):
    off = tensor(name, rows, cols)
    for c in range(cols):
        scale(off, i * cols + c, e)


rng = random.Random(a.seed)
kvd = cfg.get("num_key_value_heads", cfg["num_attention_heads"]) * cfg.get("head_dim", H // cfg["num_attention_heads"])
qd = cfg["num_attention_heads"] * cfg.get("head_dim", H // cfg["num_attention_heads"])
record = []
for l in range(L):
    p = f"model.layers.{l}."
    for norm, targets in (("input_layernorm", [("self_attn.q_proj", qd), ("self_attn.k_proj", kvd),
                                               ("self_attn.v_proj", kvd)]),
                          ("post_attention_layernorm", [("mlp.gate_proj", I), ("mlp.up_proj", I)])):
        channels = rng.sample(range(H), a.norm_up + a.norm_down)
        for k, j in enumerate(channels):
            e = rng.randint(3, 6) * (1 if k < a.norm_up else -1)
            scale(tensor(p + norm + ".weight", 1, H), j, e)
            for t, rows in targets:
                column(p + t + ".weight", rows, H, j, -e)
            record.append({"layer": l, "norm": norm, "channel": j, "gain_log2": e})
    for k, i in enumerate(rng.sample(range(I), a.inner_up + a.inner_down)):
        e = rng.randint(3, 6) * (1 if k < a.inner_up else -1)
        row(p + "mlp.up_proj.weight", I, H, i, e)
        column(p + "mlp.down_proj.weight", H, I, i, -e)
        record.append({"layer": l, "inner_channel": i, "up_row_log2": e})

os.makedirs(a.out, exist_ok=True)
for f in os.listdir(a.model):
    src = os.path.join(a.model, f)
    if os.path.isfile(src) and not f.endswith(".safetensors"):
        shutil.copy(src, os.path.join(a.out, f))
with open(os.path.join(a.out, files[0]), "wb") as f:
    f.write(raw[:8 + n])
    f.write(data)
json.dump({"source": os.path.abspath(a.model), "seed": a.seed, "channels": record},
          open(os.path.join(a.out, "outliers.json"), "w"), indent=1)
print(f"{a.out}: {len(record)} channels moved in {L} blocks")
