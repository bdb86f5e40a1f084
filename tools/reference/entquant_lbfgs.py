#!/usr/bin/env python3
"""A faithful PyTorch re-implementation of the EntQuant paper's scale optimizer, the reference of the quality study
(issue 6, docs/QUALITY.md). Run on the GPU machine:

    python3 tools/reference/entquant_lbfgs.py OUT_DIR MODEL_DIR[,MODEL_DIR...] --lambdas 8,11,16,...

For every model and every lambda it optimizes each compressed weight matrix alone (the 2-D q/k/v/o/gate/up/down
projections of the transformer blocks; embeddings, lm_head and norms stay bf16) and writes
OUT_DIR/<model>/lambda-<L>.safetensors: one float32 tensor of row log2-scales per weight, named like the weight.
`entquant compress MODEL --scales FILE` then quantizes with exactly these scales, codes them with our rANS coder and
the study measures effective bits and perplexity with the same protocol as every other variant.

The optimizer, as ENTQUANT.md sections 1-3 describe the reference code:
- parameters: per-row log2 scales l, initialized at log2(absmax_r / 448);
- forward: s = 2^bf16(l); t = bf16(w / s); t = clamp(t, -448, 448); q = fp8_e4m3(t) (round to nearest even);
  w_hat = bf16(q * s); every rounding, the clamp and the FP8 cast pass gradients straight through (STE);
- loss: sum|w_hat - w| / sum|w| + lambda * 4 * mean|q|;
- torch.optim.LBFGS(history_size=100, line_search_fn="strong_wolfe", max_iter=500), lr 1.0 for lambda <= 14.5 and
  0.25 above, one matrix after another (here: several (model, lambda) jobs at once in separate processes, which
  changes nothing in any matrix's optimization). The matrices of these small models are too small for a GPU to
  help: 12 processes sharing one H200 took about 40 ms per loss evaluation, so the default is one CPU thread a
  worker process.
- Where the strong-Wolfe line search overflows float (seen on matrices with 8-64x outlier columns, docs/QUALITY.md
  "Outlier channels"), the paper's code would stop with an error; here the best iterate evaluated so far is kept
  and the matrix is listed under "failed" in reference_runs.json.
"""
import argparse, json, math, os, re, time
from concurrent.futures import ProcessPoolExecutor

import torch

PROJ = re.compile(r"^model\.layers\.\d+\.(self_attn\.[qkvo]_proj|mlp\.(gate|up|down)_proj)\.weight$")


def ste(x, y):  # forward value y, gradient of x
    return x + (y - x).detach()


def bf16(x):
    return x.to(torch.bfloat16).float()


def optimize(w, lam, max_iter=500):
    w = w.float()
    absmax = w.abs().amax(1).clamp_min(1e-30)
    l = torch.log2(absmax / 448.0).clone().requires_grad_(True)
    denom = w.abs().sum()
    opt = torch.optim.LBFGS([l], lr=1.0 if lam <= 14.5 else 0.25, max_iter=max_iter, history_size=100,
                            line_search_fn="strong_wolfe")
    evals = [0]
    best = [l.detach().clone(), math.inf]  # the lowest-loss iterate, for a line search that overflows (below)

    def closure():
        opt.zero_grad()
        s = torch.exp2(ste(l, bf16(l)))[:, None]
        t = w / s
        t = ste(t, bf16(t))
        t = ste(t, t.clamp(-448.0, 448.0))
        q = ste(t, t.to(torch.float8_e4m3fn).float())
        w_hat = q * s
        w_hat = ste(w_hat, bf16(w_hat))
        loss = (w_hat - w).abs().sum() / denom + lam * 4.0 * q.abs().mean()
        loss.backward()
        evals[0] += 1
        if math.isfinite(loss.item()) and loss.item() < best[1]:
            best[0], best[1] = l.detach().clone(), loss.item()
        return loss

    try:
        opt.step(closure)
    except RuntimeError as e:
        # On matrices with outlier columns (docs/QUALITY.md, "Outlier channels") the strong-Wolfe line search can
        # grow its step until it overflows float ("value cannot be converted to type float without overflow"); the
        # paper's code would stop there. We keep the best iterate it had evaluated and record the failure.
        state = opt.state[opt._params[0]]
        return best[0], {"iterations": int(state.get("n_iter", 0)), "evals": evals[0], "failed": str(e)}
    state = opt.state[opt._params[0]]
    return l.detach(), {"iterations": int(state.get("n_iter", 0)), "evals": evals[0]}


def job(args):
    model_dir, lam, out_path, device = args
    from safetensors import safe_open
    from safetensors.torch import save_file
    if device == "cpu":
        torch.set_num_threads(1)
    files = [f for f in sorted(os.listdir(model_dir)) if f.endswith(".safetensors")]
    scales, stats, t0 = {}, [], time.time()
    for f in files:
        with safe_open(os.path.join(model_dir, f), "pt", device=device) as st:
            for name in st.keys():
                if PROJ.match(name):
                    l, info = optimize(st.get_tensor(name), lam)
                    scales[name] = l.float().cpu().contiguous()
                    stats.append({"name": name, **info})
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    save_file(scales, out_path)
    return {"model": os.path.basename(model_dir.rstrip("/")), "lambda": lam, "seconds": time.time() - t0,
            "matrices": len(stats), "iterations_mean": sum(s["iterations"] for s in stats) / len(stats),
            "iterations_max": max(s["iterations"] for s in stats), "evals": sum(s["evals"] for s in stats),
            "failed": [{"name": s["name"], "error": s["failed"]} for s in stats if "failed" in s]}


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("models")
    ap.add_argument("--lambdas", default="8,11,16,22,32,45,64,90,128")
    ap.add_argument("--workers", type=int, default=12)
    ap.add_argument("--device", default="cpu", help="cpu (one thread a worker) or cuda")
    a = ap.parse_args()
    jobs = [(m, float(lam), os.path.join(a.out, os.path.basename(m.rstrip("/")), f"lambda-{lam}.safetensors"), a.device)
            for m in a.models.split(",") for lam in a.lambdas.split(",")]
    jobs = [j for j in jobs if not os.path.exists(j[2])]  # resumable
    t0 = time.time()
    results = []
    ctx = torch.multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=a.workers, mp_context=ctx) as ex:
        for r in ex.map(job, jobs):
            print(json.dumps(r), flush=True)
            results.append(r)
    log = os.path.join(a.out, "reference_runs.json")
    old = json.load(open(log))["runs"] if os.path.exists(log) else []
    json.dump({"device": a.device, "torch": torch.__version__, "runs": old + results}, open(log, "w"), indent=1)
    print(f"total {time.time() - t0:.0f} s")
