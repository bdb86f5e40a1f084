#!/usr/bin/env python3
"""Trains EntQuant Studio's demo chat model (and two study models for the quality study) on the GPU machine.

    python3 tools/demo-model/train.py DATA_DIR OUT_DIR [MODEL,...]

MODEL,... trains only these of demo-model, study-small, study-prose and study-large (default: the first three;
golden values only with demo-model). study-large (27 M parameters) was added in the study's second round.

DATA_DIR holds train.jsonl.gz and heldout.txt from prepare_data.py. Writes, under OUT_DIR:
- demo-model/: the demo model in HuggingFace format (bf16 safetensors, config.json, generation_config.json,
  tokenizer.json, tokenizer_config.json, chat_template.jinja): resources/demo-model in the repository;
- study-small/, study-prose/: two more models for the quality study (a smaller one on the same data, and one of
  other size trained on the prose alone, with no chats);
- demo_golden.json: golden values from transformers (float32, eager attention) on the saved demo model, which the
  CPU engine's tests check: tokenizer ids, chat-template renders, perplexity of heldout.txt by ENTQUANT.md
  section 8, last-position logits and per-position argmax of a prompt, greedy continuations;
- train_log.json: losses and held-out perplexity during training, for the model card.

The tokenizer is a byte-level BPE (8192 entries) trained here with `tokenizers`, pre-tokenized by the Llama-3
split regex; chats use ChatML (<|im_start|>role ... <|im_end|>).
"""
import gzip, json, math, os, random, sys, time

import torch
import torch.nn.functional as F
import transformers
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

data_dir, out_dir = sys.argv[1], sys.argv[2]
only = sys.argv[3].split(",") if len(sys.argv) > 3 else ["demo-model", "study-small", "study-prose"]
os.makedirs(out_dir, exist_ok=True)
torch.manual_seed(0)
random.seed(0)
dev = "cuda"
t_start = time.time()

CHAT_TEMPLATE = (
    "{%- for message in messages %}\n"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n"
    "{{- '<|im_start|>assistant\\n' }}\n"
    "{%- endif %}\n")
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def render(messages):  # what CHAT_TEMPLATE renders, without a generation prompt
    return "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)


records = [json.loads(line) for line in gzip.open(os.path.join(data_dir, "train.jsonl.gz"), "rt", encoding="utf-8")]
texts = [r["text"] if "text" in r else render(r["messages"]) for r in records]
is_prose = ["text" in r for r in records]
heldout = open(os.path.join(data_dir, "heldout.txt"), encoding="utf-8").read()
print(f"{len(texts)} records, {sum(map(len, texts)) / 1e6:.1f} MB", flush=True)

# --- tokenizer ----------------------------------------------------------------------------------------------
SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
         r"|\s+(?!\S)|\s+")
tok = Tokenizer(models.BPE())
tok.normalizer = normalizers.NFC()
tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(SPLIT), behavior="isolated"),
                                             pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
tok.decoder = decoders.ByteLevel()
trainer = trainers.BpeTrainer(vocab_size=8192, min_frequency=2, special_tokens=SPECIALS,
                              initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
tok.train_from_iterator(texts, trainer)
EOT, IM_START, IM_END = (tok.token_to_id(t) for t in SPECIALS)
hf_tok = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                              model_max_length=1024)
hf_tok.chat_template = CHAT_TEMPLATE
print(f"tokenizer: {tok.get_vocab_size()} entries ({time.time() - t_start:.0f} s)", flush=True)

encoded = tok.encode_batch(texts, add_special_tokens=False)
streams = {"all": [], "prose": []}
for enc, prose in zip(encoded, is_prose):
    streams["all"] += enc.ids + [EOT]
    if prose:
        streams["prose"] += enc.ids + [EOT]
heldout_ids = tok.encode(heldout, add_special_tokens=False).ids
print({k: len(v) for k, v in streams.items()}, "held-out tokens", len(heldout_ids), flush=True)


def heldout_ppl(model, ctx=512, dtype=torch.bfloat16):
    model.eval()
    nll, count = 0.0, 0
    with torch.no_grad(), torch.autocast("cuda", dtype=dtype, enabled=dtype != torch.float32):
        for s in range(0, len(heldout_ids) - ctx + 1, ctx):
            w = torch.tensor([heldout_ids[s:s + ctx]], device=dev)
            lp = torch.log_softmax(model(w).logits[0].double(), -1)
            nll -= lp[torch.arange(ctx - 1), w[0, 1:]].sum().item()
            count += ctx - 1
    model.train()
    return math.exp(nll / count)


def train(name, stream, hidden, layers, heads, kv_heads, inter, steps, lr, batch=64, seq=512):
    cfg = transformers.LlamaConfig(
        vocab_size=tok.get_vocab_size(), hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=kv_heads, max_position_embeddings=1024, rms_norm_eps=1e-5,
        tie_word_embeddings=True, bos_token_id=EOT, eos_token_id=[IM_END, EOT], pad_token_id=EOT)
    model = transformers.LlamaForCausalLM(cfg).to(dev)
    n_params = sum(p.numel() for p in model.parameters())
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=lr, betas=(0.9, 0.95), fused=True)
    data = torch.tensor(stream, dtype=torch.long)
    n_seq = (len(data) - 1) // seq
    log, best = [], (float("inf"), None)
    t0 = time.time()
    warmup = max(1, steps // 20)
    for step in range(1, steps + 1):
        for g in opt.param_groups:
            g["lr"] = lr * min(1.0, step / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / steps)))
        starts = torch.randint(0, n_seq, (batch,)) * seq + torch.randint(0, seq, (1,))
        starts.clamp_(max=len(data) - seq - 1)
        x = torch.stack([data[s:s + seq + 1] for s in starts.tolist()]).to(dev, non_blocking=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(input_ids=x[:, :-1]).logits
        loss = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 100 == 0 or step == steps:
            ppl = heldout_ppl(model)
            log.append({"step": step, "loss": round(loss.item(), 4), "heldout_ppl": round(ppl, 3),
                        "tokens_seen": step * batch * seq, "seconds": round(time.time() - t0, 1)})
            print(name, log[-1], flush=True)
            if ppl < best[0]:
                best = (ppl, {k: v.detach().clone() for k, v in model.state_dict().items()})
    model.load_state_dict(best[1])
    path = os.path.join(out_dir, name)
    model.to(torch.bfloat16).save_pretrained(path)
    hf_tok.save_pretrained(path)
    gen = transformers.GenerationConfig(bos_token_id=EOT, eos_token_id=[IM_END, EOT], pad_token_id=EOT,
                                        do_sample=True, temperature=0.7, top_p=0.9, max_new_tokens=128)
    gen.save_pretrained(path)
    print(f"{name}: {n_params / 1e6:.2f} M parameters, best held-out ppl {best[0]:.3f}, "
          f"{time.time() - t0:.0f} s", flush=True)
    return path, {"parameters": n_params, "tokens_per_step": batch * seq, "steps": steps, "lr": lr,
                  "best_heldout_ppl_bf16_autocast": best[0], "log": log}


budget = float(os.environ.get("TRAIN_STEPS_SCALE", "1"))
runs = {}
# name: stream, hidden, layers, heads, kv heads, MLP width, steps, learning rate
CONFIGS = {"demo-model": ("all", 320, 8, 5, 1, 896, 1200, 2e-3), "study-small": ("all", 192, 6, 3, 1, 512, 800, 3e-3),
           "study-prose": ("prose", 256, 8, 4, 2, 704, 500, 2e-3),
           "study-large": ("all", 512, 8, 8, 2, 1408, 1000, 1.5e-3)}
paths = {}
for name in only:
    stream, hidden, layers, heads, kv, inter, steps, lr = CONFIGS[name]
    paths[name], runs[name] = train(name, streams[stream], hidden, layers, heads, kv, inter, int(steps * budget), lr)
json.dump(runs, open(os.path.join(out_dir, "train_log.json"), "w"), indent=1)
if "demo-model" not in paths:
    sys.exit(0)
demo_path = paths["demo-model"]

# --- golden values from transformers on the saved demo model (float32, eager) --------------------------------
m = transformers.AutoModelForCausalLM.from_pretrained(demo_path, dtype=torch.float32, attn_implementation="eager").eval()
t = transformers.AutoTokenizer.from_pretrained(demo_path)
g = {"heldout_tokens": len(heldout_ids), "ppl": {}, "tokenizer": [], "chat": [], "greedy": []}
for ctx, maxw in ((512, 0), (128, 8)):
    nll, count, windows = 0.0, 0, 0
    for s in range(0, len(heldout_ids) - ctx + 1, ctx):
        if maxw and windows == maxw:
            break
        w = torch.tensor([heldout_ids[s:s + ctx]])
        with torch.no_grad():
            lp = torch.log_softmax(m(w).logits[0].double(), -1)
        nll -= lp[torch.arange(ctx - 1), w[0, 1:]].sum().item()
        count += ctx - 1
        windows += 1
    g["ppl"][f"{ctx}x{maxw}"] = {"ctx": ctx, "max_windows": maxw, "ppl": math.exp(nll / count), "windows": windows,
                                 "scored": count}
for s in ["Hello world!", "In the beginning God created the heaven and the earth.",
          "What is 12 + 30?  Numbers: 1234567, naïve café, 日本語 🙂\n\n\ttabs", "<|im_start|>user\nHi<|im_end|>\n"]:
    g["tokenizer"].append({"text": s, "ids": tok.encode(s, add_special_tokens=False).ids})
convs = [[{"role": "user", "content": "What is the capital of France?"}],
         [{"role": "system", "content": "You are a helpful assistant."},
          {"role": "user", "content": "Define hacker."},
          {"role": "assistant", "content": "A person who enjoys exploring the details of programmable systems."},
          {"role": "user", "content": "What is 7 plus 5?"}]]
for c in convs:
    text = t.apply_chat_template(c, tokenize=False, add_generation_prompt=True)
    ids = tok.encode(text, add_special_tokens=False).ids
    with torch.no_grad():
        out = m.generate(torch.tensor([ids]), max_new_tokens=64, do_sample=False, eos_token_id=[IM_END, EOT],
                         pad_token_id=EOT)
    new = out[0, len(ids):].tolist()
    g["chat"].append({"messages": c, "rendered": text, "prompt_ids": ids, "greedy_ids": new,
                      "greedy_text": t.decode(new, skip_special_tokens=True)})
prompt_ids = g["chat"][1]["prompt_ids"]
with torch.no_grad():
    logits = m(torch.tensor([prompt_ids])).logits[0]
g["logits"] = {"ids": prompt_ids, "argmax": logits.argmax(-1).tolist(), "logits_last": logits[-1].tolist()}
for p in ["In the beginning", "The capital of France is", "Jesus said unto them,"]:
    ids = tok.encode(p, add_special_tokens=False).ids
    cur = list(ids)
    with torch.no_grad():  # 32 greedy tokens, no stopping, so every position is compared
        for _ in range(32):
            cur.append(int(m(torch.tensor([cur])).logits[0, -1].argmax()))
    g["greedy"].append({"prompt": p, "prompt_ids": ids, "ids": cur[len(ids):], "text": tok.decode(cur[len(ids):])})
json.dump(g, open(os.path.join(out_dir, "demo_golden.json"), "w"), ensure_ascii=False)
print(json.dumps({"ppl": g["ppl"], "chat": [c["greedy_text"] for c in g["chat"]],
                  "greedy": [x["text"] for x in g["greedy"]]}, ensure_ascii=False, indent=1))
print(f"total {time.time() - t_start:.0f} s")
