#!/usr/bin/env python3
"""The quality study's harness (issue 6, docs/QUALITY.md): compress models with every variant at several targets
and measure each result against the original with the same protocol.

    python3 bench/quality/run_quality.py --models resources/demo-model,... --out build/quality \
        [--bits 4,3,2.5,2.1] [--objectives paper,paper-local,ecsq-l1,ecsq-mse] [--allocations uniform,global,depth]
        [--formats fp8,int8] [--calibrations none,self,self-compressed,self-shift,text-shift] [--calibration-text FILE]
        [--baselines rtn4,rtn3,rtn2,nf4] [--reference DIR]
        [--text FILE] [--max-windows N] [--compress-args "ARGS" --tag NAME]

For each model, target and variant: `entquant compress --json` (effective bits per weight, everything counted;
seconds), then `entquant compare --json` against the original on --text (perplexity by ENTQUANT.md section 8,
mean KL divergence of the next-token distributions, top-1 agreement). --reference DIR holds row log2-scales from
tools/reference/entquant_lbfgs.py (DIR/<model>/lambda-<L>.safetensors): each is coded with `--scales`, measured the
same way, and the reference's perplexity at each target is interpolated between the two lambdas whose effective
bits bracket it (log-perplexity linear in bits). Writes OUT/results.csv, OUT/results.md and, when
build/bench/plot_quality exists, OUT/chart-<model>-ppl.png. Rows already in results.csv are not measured again.
--compress-args adds options to every variant's compress (not the baselines' or the reference's), and --tag NAME
appends "/NAME" to those variants' names, so that such runs can share a results.csv with the plain ones.
"""
import argparse, csv, glob, json, math, os, re, subprocess, sys, time

ap = argparse.ArgumentParser()
ap.add_argument("--models", required=True)
ap.add_argument("--out", required=True)
ap.add_argument("--bits", default="4,3,2.5,2.1")
ap.add_argument("--objectives", default="paper")
ap.add_argument("--allocations", default="uniform")
ap.add_argument("--formats", default="fp8")
ap.add_argument("--calibrations", default="none")
ap.add_argument("--calibration-text", default="", help="FILE for the calibrations text, text-shift, text-original")
ap.add_argument("--baselines", default="")
ap.add_argument("--reference", default="")
ap.add_argument("--text", default="resources/demo-model/heldout.txt")
ap.add_argument("--ctx", default="512")
ap.add_argument("--max-windows", default="0")
ap.add_argument("--entquant", default="build/app/entquant")
ap.add_argument("--plot", default="build/bench/plot_quality")
ap.add_argument("--compress-args", default="", help="more compress options for every variant, e.g. \"--calibration-texts 64\"")
ap.add_argument("--tag", default="", help="appended to the variants' names as /TAG")
a = ap.parse_args()
os.makedirs(a.out, exist_ok=True)
FIELDS = ["model", "variant", "objective", "allocation", "calibration", "format", "target_bits", "effective_bpw", "model_bpw", "ppl",
          "ppl_original", "ppl_change_percent", "mean_kl", "top1", "compress_seconds"]
csv_path = os.path.join(a.out, "results.csv")
rows = list(csv.DictReader(open(csv_path))) if os.path.exists(csv_path) else []
done = {(r["model"], r["variant"], r["target_bits"]) for r in rows}


def entquant(*args):
    p = subprocess.run([a.entquant, *args], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"entquant {' '.join(args)} failed ({p.returncode}): {p.stderr.strip()}")
    return json.loads(p.stdout)


def save():
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, FIELDS)
        w.writeheader()
        w.writerows(rows)


def measure(model, name, variant, target, compress_args, objective="", allocation="", fmt="fp8", calibration=""):
    if (name, variant, target) in done:
        return
    eqz = os.path.join(a.out, "tmp.eqz")
    c = entquant("compress", model, "-o", eqz, "--json", "--quiet", *compress_args)
    m = entquant("compare", model, eqz, "--text", a.text, "--ctx", a.ctx, "--max-windows", a.max_windows, "--json")
    rows.append({"model": name, "variant": variant, "objective": objective, "allocation": allocation,
                 "calibration": calibration, "format": fmt,
                 "target_bits": target, "effective_bpw": round(c["effective_bpw"], 4),
                 "model_bpw": round(c["model_bpw"], 4), "ppl": round(m["ppl_compressed"], 4),
                 "ppl_original": round(m["ppl_original"], 4), "ppl_change_percent": round(m["ppl_change_percent"], 3),
                 "mean_kl": round(m["mean_kl"], 5), "top1": round(m["top1_agreement"], 4),
                 "compress_seconds": round(c["seconds"], 2)})
    done.add((name, variant, target))
    save()
    r = rows[-1]
    print(f"{name:12} {variant:28} {target:>5} bits {r['effective_bpw']:.3f}  ppl {r['ppl']:.3f} "
          f"({r['ppl_change_percent']:+.2f} %)  KL {r['mean_kl']:.4f}  top1 {r['top1']:.3f}  {r['compress_seconds']} s",
          flush=True)


targets = [t for t in a.bits.split(",") if t]
for model in a.models.split(","):
    name = os.path.basename(model.rstrip("/"))
    for fmt in a.formats.split(","):
        for objective in a.objectives.split(","):
            for allocation in a.allocations.split(","):
                for cal in a.calibrations.split(","):
                    variant = (f"{objective}/{allocation}" + ("" if fmt == "fp8" else f"/{fmt}") +
                               ("" if cal == "none" else f"/{cal}-calibrated") + (f"/{a.tag}" if a.tag else ""))
                    for t in targets:
                        args = ["--bits", t, "--format", fmt, "--allocation", allocation, "--objective", objective]
                        kind, _, inputs = cal.partition("-")
                        if kind == "text":  # text, text-shift, text-original: --calibration-text FILE
                            args += ["--calibration-text", a.calibration_text]
                        else:
                            args += ["--calibration", kind]
                        if inputs:  # self-compressed, self-shift, text-shift: --calibration-inputs
                            args += ["--calibration-inputs", inputs]
                        args += a.compress_args.split()
                        measure(model, name, variant, t, args, objective, allocation, fmt, cal)
    for b in [b for b in a.baselines.split(",") if b]:
        measure(model, name, b, "", ["--method", b], b, "", "")
    if a.reference:
        for path in sorted(glob.glob(os.path.join(a.reference, name, "lambda-*.safetensors")),
                           key=lambda p: float(re.search(r"lambda-([\d.]+)", p).group(1))):
            lam = re.search(r"lambda-([\d.]+)\.safetensors", path).group(1)
            measure(model, name, "reference-lbfgs", f"lambda={lam}", ["--scales", path], "reference-lbfgs", "", "fp8")
        pts = sorted((float(r["effective_bpw"]), r) for r in rows
                     if r["model"] == name and r["variant"] == "reference-lbfgs")
        for t in targets:
            tb = float(t)
            pair = [(lo, hi) for lo, hi in zip(pts, pts[1:]) if lo[0] <= tb <= hi[0]]
            key = (name, "reference-lbfgs@target", t)
            if not pair or key in done:
                continue
            (b0, r0), (b1, r1) = pair[0]
            f = (tb - b0) / (b1 - b0) if b1 > b0 else 0.0
            lerp = lambda k, log=False: (math.exp((1 - f) * math.log(float(r0[k])) + f * math.log(float(r1[k])))
                                         if log else (1 - f) * float(r0[k]) + f * float(r1[k]))
            ppl = lerp("ppl", True)
            orig = float(r0["ppl_original"])
            rows.append({"model": name, "variant": "reference-lbfgs@target", "objective": "reference-lbfgs",
                         "allocation": "global-lambda", "format": "fp8", "target_bits": t, "effective_bpw": tb,
                         "model_bpw": round(lerp("model_bpw"), 4), "ppl": round(ppl, 4), "ppl_original": orig,
                         "ppl_change_percent": round(100 * (ppl / orig - 1), 3), "mean_kl": round(lerp("mean_kl"), 5),
                         "top1": round(lerp("top1"), 4), "compress_seconds": ""})
            done.add(key)
            save()
save()

# Markdown table: every variant at each target, and the gain over the reference.
ref = {(r["model"], r["target_bits"]): float(r["ppl"]) for r in rows if r["variant"] == "reference-lbfgs@target"}
with open(os.path.join(a.out, "results.md"), "w") as f:
    f.write("| model | variant | target | eff. bpw | ppl | vs original | vs reference | mean KL | top-1 | s |\n"
            "|---|---|---|---|---|---|---|---|---|---|\n")
    for r in rows:
        if r["variant"] == "reference-lbfgs":
            continue
        vs = ref.get((r["model"], r["target_bits"]))
        vs = f"{100 * (float(r['ppl']) / vs - 1):+.2f} %" if vs else ""
        f.write(f"| {r['model']} | {r['variant']} | {r['target_bits']} | {float(r['effective_bpw']):.3f} | "
                f"{float(r['ppl']):.3f} | {float(r['ppl_change_percent']):+.2f} % | {vs} | {r['mean_kl']} | "
                f"{r['top1']} | {r['compress_seconds']} |\n")
print(open(os.path.join(a.out, "results.md")).read())
if os.path.exists(a.plot):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    subprocess.run([a.plot, csv_path, os.path.join(a.out, "chart")], env=env, check=True)
